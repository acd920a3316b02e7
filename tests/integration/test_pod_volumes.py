"""Pod volumes end to end: a PodManager with the isolated process runtime and a FakeClient (root).

emptyDir shared by two containers, configMap files with modes and an update that swaps ``..data``,
secret files, downwardAPI labels, hostPath type errors and missing configMaps as FailedMount events, a
PVC-backed pod whose data outlives it, and emptyDir sizeLimit eviction.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from kubelite.client.interface import builtin
from kubelite.testing.fake_clock import FakeClock
from tests.integration import test_pod_worker as _worker
from tests.integration.test_pod_worker import Node, container, create, pod_manifest, until, wait_for

# the pod worker tests' fixtures: a PodManager on an isolated ProcessRuntime with a FakeClient
node, cgroup_root, clock = _worker.node, _worker.cgroup_root, _worker.clock

CONFIGMAPS = builtin("", "configmaps")
SECRETS = builtin("", "secrets")
PVS = builtin("", "persistentvolumes")
PVCS = builtin("", "persistentvolumeclaims")
PODS = builtin("", "pods")


def running(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


async def exec_in(node: Node, pod: str, name: str, script: str) -> str:
    worker = node.manager.worker("default", pod)
    assert worker is not None
    container_id = worker.find_container(name)
    assert container_id is not None
    result = await node.runtime.exec_sync(container_id, ["sh", "-c", script], timeout=10)
    assert result.exit_code == 0, result.stderr
    return result.stdout.decode()


def failed_mounts(node: Node) -> list[str]:
    return [message for _, reason, message in node.recorder.events if reason == "FailedMount"]


async def test_empty_dir_is_shared_between_the_containers_of_a_pod(node: Node) -> None:
    pod = pod_manifest(
        "shared",
        [
            container(
                "writer",
                ["sh", "-c", "echo hello > /data/f; sleep 300"],
                volumeMounts=[{"name": "d", "mountPath": "/data"}],
            ),
            container("reader", ["sleep", "300"], volumeMounts=[{"name": "d", "mountPath": "/in"}]),
        ],
        volumes=[{"name": "d", "emptyDir": {}}],
    )
    created = await create(node, pod)
    await wait_for(node, "shared", running)
    await until(lambda: _has(node, "shared", "reader", "/in/f"))
    assert await exec_in(node, "shared", "reader", "cat /in/f") == "hello\n"
    uid = created["metadata"]["uid"]
    assert (node.tmp / "pods" / uid / "volumes" / "kubernetes.io~empty-dir" / "d" / "f").read_text() == "hello\n"
    assert not Path("/data/f").exists()


async def _has(node: Node, pod: str, name: str, path: str) -> bool:
    worker = node.manager.worker("default", pod)
    container_id = worker.find_container(name) if worker else None
    if container_id is None:
        return False
    return (await node.runtime.exec_sync(container_id, ["test", "-e", path], timeout=10)).exit_code == 0


async def test_config_map_files_have_their_modes_and_an_update_swaps_data(node: Node) -> None:
    await node.client.create(
        CONFIGMAPS, {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"a": "1", "b": "2"}}
    )
    pod = pod_manifest(
        "cm",
        [
            container(
                "app",
                ["sleep", "300"],
                volumeMounts=[
                    {"name": "cfg", "mountPath": "/etc/config"},
                    {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "a"},
                ],
            )
        ],
        volumes=[
            {
                "name": "cfg",
                "configMap": {
                    "name": "cfg",
                    "defaultMode": 0o400,
                    "items": [{"key": "a", "path": "a"}, {"key": "b", "path": "sub/b", "mode": 0o600}],
                },
            }
        ],
    )
    await create(node, pod)
    await wait_for(node, "cm", running)
    out = await exec_in(
        node,
        "cm",
        "app",
        "cat /etc/config/a; echo; cat /etc/config/sub/b; echo; "
        "stat -L -c %a /etc/config/a /etc/config/sub/b; readlink /etc/config/a",
    )
    assert out.split("\n")[:5] == ["1", "2", "400", "600", "..data/a"]
    before = await exec_in(node, "cm", "app", "readlink /etc/config/..data")
    await node.client.patch(CONFIGMAPS, "cfg", {"data": {"a": "changed", "b": "2"}}, "default", patch_type="merge")
    worker = node.manager.worker("default", "cm")
    assert worker is not None
    await worker.volumes.refresh(worker.pod)  # what the periodic re-sync does
    after = await exec_in(node, "cm", "app", "readlink /etc/config/..data; cat /etc/config/a; echo; cat /etc/app.conf")
    link, content, sub_path = after.split("\n")[:3]
    assert link != before.strip() and link.startswith("..20")
    assert content == "changed"
    assert sub_path == "1"  # subPath mounts do not update (as upstream)


async def test_secret_files_are_decoded_and_read_only(node: Node) -> None:
    data = {"password": base64.b64encode(b"s3cret").decode()}
    await node.client.create(SECRETS, {"metadata": {"name": "creds", "namespace": "default"}, "data": data})
    pod = pod_manifest(
        "sec",
        [container("app", ["sleep", "300"], volumeMounts=[{"name": "s", "mountPath": "/var/run/creds"}])],
        volumes=[{"name": "s", "secret": {"secretName": "creds"}}],
    )
    await create(node, pod)
    await wait_for(node, "sec", running)
    out = await exec_in(
        node,
        "sec",
        "app",
        "cat /var/run/creds/password; echo; stat -L -c %a /var/run/creds/password; "
        "touch /var/run/creds/x 2>/dev/null || echo ro",
    )
    assert out.split("\n")[:3] == ["s3cret", "644", "ro"]


async def test_downward_api_labels_file(node: Node) -> None:
    pod = pod_manifest(
        "down",
        [container("app", ["sleep", "300"], volumeMounts=[{"name": "info", "mountPath": "/etc/podinfo"}])],
        volumes=[
            {
                "name": "info",
                "downwardAPI": {
                    "items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                    ]
                },
            }
        ],
    )
    pod["metadata"]["labels"] = {"app": "web", "tier": "front"}
    await create(node, pod)
    await wait_for(node, "down", running)
    out = await exec_in(node, "down", "app", "cat /etc/podinfo/labels; echo; cat /etc/podinfo/name")
    assert out.split("\n")[:3] == ['app="web"', 'tier="front"', "down"]


async def test_host_path_type_error_and_missing_config_map_are_failed_mount_events(node: Node, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    pod = pod_manifest(
        "hp",
        [container("app", ["sleep", "300"], volumeMounts=[{"name": "h", "mountPath": "/host"}])],
        volumes=[{"name": "h", "hostPath": {"path": str(missing), "type": "Directory"}}],
    )
    await create(node, pod)
    pod2 = pod_manifest(
        "nocm",
        [container("app", ["sleep", "300"], volumeMounts=[{"name": "c", "mountPath": "/c"}])],
        volumes=[{"name": "c", "configMap": {"name": "nope"}}],
    )
    await create(node, pod2)
    expected = [
        f'MountVolume.SetUp failed for volume "h" : hostPath type check failed: {missing} is not a directory',
        'MountVolume.SetUp failed for volume "c" : configmap "nope" not found',
    ]

    async def both() -> bool:
        return all(e in failed_mounts(node) for e in expected)

    await until(both)
    for name in ("hp", "nocm"):
        pod = await node.client.get(PODS, name, "default")
        waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        assert pod["status"]["phase"] == "Pending" and waiting["reason"] == "ContainerCreating"
    assert not missing.exists()


async def test_pvc_backed_pod_data_survives_pod_deletion(node: Node, tmp_path: Path) -> None:
    data = tmp_path / "pv-data"
    pv = {
        "metadata": {"name": "pv1", "annotations": {"pv.kubernetes.io/provisioned-by": "kubelite.io/local-path"}},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": str(data)},
            "claimRef": {"name": "claim", "namespace": "default"},
        },
        "status": {"phase": "Bound"},
    }
    await node.client.create(PVS, pv)
    claim = {
        "metadata": {"name": "claim", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv1"},
        "status": {"phase": "Bound"},
    }
    await node.client.create(PVCS, claim)
    pod = pod_manifest(
        "db",
        [
            container(
                "app",
                ["sh", "-c", "echo persisted > /var/lib/db/f; sleep 300"],
                volumeMounts=[{"name": "v", "mountPath": "/var/lib/db"}],
            )
        ],
        volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "claim"}}],
    )
    created = await create(node, pod)
    await wait_for(node, "db", running)
    await until(lambda: _exists(data / "f"))
    await node.client.delete(PODS, "db", "default")

    async def deleted() -> bool:
        return node.manager.worker("default", "db") is None

    await until(deleted)
    assert (data / "f").read_text() == "persisted\n"
    assert not (node.tmp / "pods" / created["metadata"]["uid"] / "volumes").exists()


async def _exists(path: Path) -> bool:
    return path.exists()


@pytest.mark.parametrize("clock", ["fake"], indirect=True)
async def test_empty_dir_over_its_size_limit_evicts_the_pod(node: Node) -> None:
    assert isinstance(node.clock, FakeClock)
    pod = pod_manifest(
        "big",
        [
            container(
                "app",
                ["sh", "-c", "head -c 3000000 /dev/zero > /scratch/f; sleep 300"],
                volumeMounts=[{"name": "s", "mountPath": "/scratch"}],
            )
        ],
        volumes=[{"name": "s", "emptyDir": {"sizeLimit": "1Mi"}}],
    )
    created = await create(node, pod)
    await wait_for(node, "big", running)
    usage = node.tmp / "pods" / created["metadata"]["uid"] / "volumes" / "kubernetes.io~empty-dir" / "s" / "f"
    await until(lambda: _size_at_least(usage, 3000000))
    node.clock.advance(11)
    evicted = await wait_for(node, "big", lambda p: p["status"].get("reason") == "Evicted")
    message = 'Usage of EmptyDir volume "s" exceeds the limit "1Mi". '
    assert evicted["status"]["phase"] == "Failed" and evicted["status"]["message"] == message
    assert ("Warning", "Evicted", message) in node.recorder.events
    assert evicted["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137


async def _size_at_least(path: Path, size: int) -> bool:
    return path.exists() and os.path.getsize(path) >= size
