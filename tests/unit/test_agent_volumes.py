"""Volumes as pure logic: the atomic writer's layout, payloads, hostPath type checks, container mounts
(subPath, subPathExpr), the container root's fstab, and env from a missing key."""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.pods.env import CREATE_CONTAINER_CONFIG_ERROR, EnvError, container_env
from kubelite.agent.runtime import containerroot
from kubelite.agent.runtime.interface import Mount
from kubelite.agent.volumes.atomic import DATA_DIR, AtomicWriter, FileProjection
from kubelite.agent.volumes.mounts import VolumePath, container_mounts, sub_path
from kubelite.agent.volumes.sources import (
    VolumeError,
    check_host_path,
    config_map_payload,
    downward_payload,
    secret_payload,
)
from kubelite.client.interface import builtin
from kubelite.testing.fake_client import FakeClient

# -- atomic writer ----------------------------------------------------------------------------------


def test_atomic_writer_layout_is_timestamped_dir_data_link_and_key_links(tmp_path: Path) -> None:
    writer = AtomicWriter(tmp_path / "v")
    assert writer.write({"a": FileProjection(b"1"), "sub/b": FileProjection(b"2", 0o600)})
    data = os.readlink(tmp_path / "v" / DATA_DIR)
    assert data.startswith("..20") and (tmp_path / "v" / data).is_dir()
    assert os.readlink(tmp_path / "v" / "a") == "..data/a" and os.readlink(tmp_path / "v" / "sub") == "..data/sub"
    assert (tmp_path / "v" / "sub" / "b").read_bytes() == b"2"
    assert (tmp_path / "v" / "sub" / "b").stat().st_mode & 0o777 == 0o600


def test_atomic_writer_swaps_data_removes_gone_keys_and_skips_unchanged(tmp_path: Path) -> None:
    writer = AtomicWriter(tmp_path)
    writer.write({"a": FileProjection(b"1"), "b": FileProjection(b"2")})
    first = os.readlink(tmp_path / DATA_DIR)
    assert not writer.write({"a": FileProjection(b"1"), "b": FileProjection(b"2")})
    assert os.readlink(tmp_path / DATA_DIR) == first
    assert writer.write({"a": FileProjection(b"new")})
    assert os.readlink(tmp_path / DATA_DIR) != first and not (tmp_path / first).exists()
    assert (tmp_path / "a").read_bytes() == b"new" and not os.path.lexists(tmp_path / "b")


@pytest.mark.parametrize("bad", ["/abs", "../up", "a/../b", "..hidden"])
def test_atomic_writer_refuses_paths_outside_or_reserved(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid path"):
        AtomicWriter(tmp_path).write({bad: FileProjection(b"x")})


# -- payloads ---------------------------------------------------------------------------------------

CM = {"data": {"a": "1", "b": "2"}, "binaryData": {"bin": base64.b64encode(b"\x00\x01").decode()}}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"name": "c"}, {"a": (b"1", 0o644), "b": (b"2", 0o644), "bin": (b"\x00\x01", 0o644)}),
        ({"name": "c", "defaultMode": 0o400, "items": [{"key": "a", "path": "x/y"}]}, {"x/y": (b"1", 0o400)}),
        ({"name": "c", "items": [{"key": "b", "path": "b", "mode": 0o600}]}, {"b": (b"2", 0o600)}),
        ({"name": "c", "optional": True, "items": [{"key": "zz", "path": "z"}]}, {}),
    ],
)
def test_config_map_payload(source: dict[str, Any], expected: dict[str, tuple[bytes, int]]) -> None:
    payload = config_map_payload(CM, source)
    assert {k: (v.data, v.mode) for k, v in payload.items()} == expected


@pytest.mark.parametrize(
    ("obj", "source", "message"),
    [
        (None, {"name": "c"}, 'configmap "c" not found'),
        (CM, {"name": "c", "items": [{"key": "zz", "path": "z"}]}, "configmap references non-existent config key: zz"),
    ],
)
def test_config_map_payload_errors_are_upstreams(obj: Any, source: dict[str, Any], message: str) -> None:
    with pytest.raises(VolumeError) as caught:
        config_map_payload(obj, source)
    assert str(caught.value) == message


def test_missing_optional_config_map_is_empty() -> None:
    assert config_map_payload(None, {"name": "c", "optional": True}) == {}


def test_secret_payload_decodes_and_errors_name_the_secret() -> None:
    secret = {"data": {"k": base64.b64encode(b"v").decode()}}
    assert secret_payload(secret, {"secretName": "s"})["k"].data == b"v"
    with pytest.raises(VolumeError, match=r'^secret "s" not found$'):
        secret_payload(None, {"secretName": "s"})
    with pytest.raises(VolumeError, match=r"^secret references non-existent secret key: x$"):
        secret_payload(secret, {"secretName": "s", "items": [{"key": "x", "path": "x"}]})


def test_downward_payload_fields_labels_and_resources() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"b": "2", "a": "1"}},
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}}}]},
    }
    source = {
        "items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}, "mode": 0o400},
            {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}},
        ]
    }
    payload = downward_payload(pod, source)
    assert {k: v.data.decode() for k, v in payload.items()} == {
        "labels": 'a="1"\nb="2"',
        "ns": "ns",
        "uid": "u1",
        "mem": "64",
        "cpu": "500",
    }
    assert payload["ns"].mode == 0o400 and payload["uid"].mode == 0o644


# -- hostPath ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "path_type", "error"),
    [
        ("dir", "Directory", None),
        ("file", "Directory", "is not a directory"),
        (None, "Directory", "is not a directory"),
        ("file", "File", None),
        ("dir", "File", "is not a file"),
        ("file", "FileOrCreate", None),
        ("dir", "FileOrCreate", "is not a file"),
        ("file", "DirectoryOrCreate", "is not a directory"),
        ("file", "Socket", "is not a socket file"),
        ("socket", "Socket", None),
        ("file", "CharDevice", "is not a character device"),
        ("file", "BlockDevice", "is not a block device"),
        ("file", "", None),
    ],
)
def test_host_path_type_checks(tmp_path: Path, make: str | None, path_type: str, error: str | None) -> None:
    path = tmp_path / "p"
    if make == "dir":
        path.mkdir()
    elif make == "file":
        path.write_text("x")
    elif make == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    if error is None:
        check_host_path(str(path), path_type)
    else:
        with pytest.raises(VolumeError) as caught:
            check_host_path(str(path), path_type)
        assert str(caught.value) == f"hostPath type check failed: {path} {error}"


def test_host_path_or_create_types_create_what_is_missing(tmp_path: Path) -> None:
    check_host_path(str(tmp_path / "d" / "e"), "DirectoryOrCreate")
    check_host_path(str(tmp_path / "f" / "g"), "FileOrCreate")
    assert (tmp_path / "d" / "e").is_dir() and (tmp_path / "f" / "g").is_file()
    assert check_host_path(str(Path("/dev/null")), "CharDevice") is None


# -- container mounts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mount", "env", "expected"),
    [
        ({"subPath": "a/b"}, {}, "a/b"),
        ({"subPathExpr": "$(POD_NAME)/logs"}, {"POD_NAME": "web-0"}, "web-0/logs"),
        ({"subPathExpr": "$(MISSING)"}, {}, "$(MISSING)"),
        ({"subPathExpr": "$$(X)"}, {"X": "y"}, "$(X)"),
        ({}, {}, ""),
    ],
)
def test_sub_path_and_sub_path_expr(mount: dict[str, Any], env: dict[str, str], expected: str) -> None:
    assert sub_path(mount, env) == expected


@pytest.mark.parametrize(("value", "message"), [("/abs", "must not be an absolute path"), ("a/../..", "'..'")])
def test_sub_path_outside_the_volume_is_a_config_error(value: str, message: str) -> None:
    with pytest.raises(EnvError, match=message) as caught:
        sub_path({"subPath": value}, {})
    assert caught.value.reason == CREATE_CONTAINER_CONFIG_ERROR


def test_container_mounts_create_sub_paths_and_keep_pod_mounts_not_overridden(tmp_path: Path) -> None:
    volume = tmp_path / "vol"
    volume.mkdir()
    container = {
        "name": "c",
        "volumeMounts": [
            {"name": "v", "mountPath": "/data"},
            {"name": "v", "mountPath": "/logs", "subPathExpr": "$(POD)", "readOnly": True},
            {"name": "cfg", "mountPath": "/etc/hosts"},
        ],
    }
    pod_mounts = (Mount("/node/hosts", "/etc/hosts"), Mount("/node/resolv", "/etc/resolv.conf"))
    volumes = {"v": VolumePath(str(volume)), "cfg": VolumePath("/cfg", readonly=True)}
    mounts = container_mounts(container, {"POD": "p1"}, volumes, pod_mounts=pod_mounts)
    assert mounts == (
        Mount(str(volume), "/data", False),
        Mount(os.path.realpath(volume / "p1"), "/logs", True),
        Mount("/cfg", "/etc/hosts", True),
        Mount("/node/resolv", "/etc/resolv.conf"),
    )
    assert (volume / "p1").is_dir() and (volume / "p1").stat().st_mode & 0o777 == 0o750


def test_container_mount_of_an_unknown_volume_is_a_config_error() -> None:
    with pytest.raises(EnvError, match='cannot find volume "x" to mount into container "c"'):
        container_mounts({"name": "c", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}, {}, {})


# -- container root ---------------------------------------------------------------------------------


def test_top_mount_points_skip_shared_dirs_and_nested_mounts() -> None:
    points = [
        "/",
        "/proc",
        "/sys/fs/cgroup",
        "/work",
        "/work/inner",
        "/run/netns",
        "/run/netns/a",
        "/etc/hosts",
        "/tmp/x",
    ]
    assert containerroot.top_mount_points(points) == ["/etc/hosts", "/run/netns", "/work"]


def test_mountinfo_paths_are_unescaped_and_fstab_paths_escaped() -> None:
    info = "27 1 254:0 / / rw - ext4 /dev/vda rw\n40 27 0:3 / /mnt/with\\040space rw - tmpfs t rw\n"
    assert containerroot.host_mount_points(info) == ["/", "/mnt/with space"]
    assert containerroot.fstab_escape("/a b\\c") == "/a\\040b\\134c"


def test_root_fstab_overlays_the_host_root_then_binds_and_a_new_proc() -> None:
    lines = containerroot.root_fstab("/r", mount_points=["/", "/proc", "/etc/hosts"]).splitlines()
    assert lines[0] == "overlay /r/root overlay lowerdir=/,upperdir=/r/upper,workdir=/r/work 0 0"
    assert "/sys /r/root/sys none rbind 0 0" in lines and "/tmp /r/root/tmp none rbind 0 0" in lines
    assert "/etc/hosts /r/root/etc/hosts none rbind 0 0" in lines
    assert lines[-1] == "proc /r/root/proc proc nosuid,nodev,noexec 0 0"


def test_bind_fstab_creates_directories_by_option_and_lists_file_targets(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    text, files = containerroot.bind_fstab(
        "/r", [(str(tmp_path), "/data", False), (str(tmp_path / "f"), "/etc/x.conf", True)]
    )
    assert text.splitlines() == [
        f"{tmp_path} /r/data none bind,X-mount.mkdir 0 0",
        f"{tmp_path}/f /r/etc/x.conf none bind,ro 0 0",
    ]
    assert files == ["/r/etc/x.conf"]


# -- env from a missing key (kubelite/agent/pods/env.py) ---------------------------------------------


async def test_env_from_a_missing_config_map_key_is_create_container_config_error() -> None:
    client = FakeClient()
    await client.create(builtin("", "configmaps"), {"metadata": {"name": "cfg", "namespace": "ns"}, "data": {"a": "1"}})
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {}}
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope"}}}]}
    with pytest.raises(EnvError) as caught:
        await container_env(client, pod, container, node_name="n", node_ip="1.2.3.4", pod_ip="", services=[])
    assert caught.value.reason == "CreateContainerConfigError"
    assert caught.value.message == "couldn't find key nope in ConfigMap ns/cfg"
