"""kubectl verbs that change objects: label, annotate, patch, scale, replace, edit, diff, delete, wait, get -w."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

from kubelite.testing.server import KUBECTL, ServerProcess


def _deployment(server: ServerProcess, name: str, replicas: int = 1) -> None:
    server.kubectl("create", "deployment", name, "--image=nginx:1.27", f"--replicas={replicas}")


def _get(server: ServerProcess, *args: str) -> dict:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


def test_label_annotate_and_all_patch_types(server: ServerProcess) -> None:
    _deployment(server, "p1")
    server.kubectl("label", "deploy", "p1", "team=blue")
    server.kubectl("annotate", "deploy", "p1", "note=hello")
    server.kubectl(
        "patch",
        "deploy",
        "p1",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}',
    )
    server.kubectl("patch", "deploy", "p1", "--type=merge", "-p", '{"metadata":{"labels":{"extra":"yes"}}}')
    server.kubectl(
        "patch",
        "deploy",
        "p1",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/minReadySeconds","value":5}]',
    )
    obj = _get(server, "deploy", "p1")
    assert obj["metadata"]["labels"]["team"] == "blue"
    assert obj["metadata"]["labels"]["extra"] == "yes"
    assert obj["metadata"]["annotations"]["note"] == "hello"
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert obj["spec"]["minReadySeconds"] == 5
    assert obj["metadata"]["generation"] == 3  # two spec changes after creation
    failed = server.kubectl(
        "patch",
        "deploy",
        "p1",
        "--type=json",
        "-p",
        '[{"op":"test","path":"/spec/replicas","value":7}]',
        check=False,
    )
    assert failed.returncode != 0
    server.kubectl("label", "deploy", "p1", "team-")
    assert "team" not in _get(server, "deploy", "p1")["metadata"]["labels"]


def test_scale_uses_scale_subresource(server: ServerProcess) -> None:
    _deployment(server, "s1")
    out = server.kubectl("scale", "deploy", "s1", "--replicas=4").stdout
    assert "deployment.apps/s1 scaled" in out
    assert _get(server, "deploy", "s1")["spec"]["replicas"] == 4
    precondition = server.kubectl(
        "scale", "deploy", "s1", "--current-replicas=2", "--replicas=1", check=False
    )
    assert precondition.returncode != 0
    assert _get(server, "deploy", "s1")["spec"]["replicas"] == 4


def test_replace_with_stale_resource_version_conflicts(server: ServerProcess, tmp_path: Path) -> None:
    _deployment(server, "r1")
    obj = _get(server, "deploy", "r1")
    obj["spec"]["replicas"] = 3
    manifest = tmp_path / "r1.json"
    manifest.write_text(json.dumps(obj))
    server.kubectl("replace", "-f", str(manifest))
    assert _get(server, "deploy", "r1")["spec"]["replicas"] == 3
    obj["spec"]["replicas"] = 5  # still carries the old resourceVersion
    manifest.write_text(json.dumps(obj))
    stale = server.kubectl("replace", "-f", str(manifest), check=False)
    assert stale.returncode != 0
    assert "the object has been modified" in stale.stderr
    assert _get(server, "deploy", "r1")["spec"]["replicas"] == 3


def test_edit_with_editor_script(server: ServerProcess, tmp_path: Path) -> None:
    server.kubectl("create", "configmap", "e1", "--from-literal=color=red")
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/color: red/color: green/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    server.kubectl("edit", "configmap", "e1", env={"KUBE_EDITOR": str(editor)})
    assert _get(server, "cm", "e1")["data"]["color"] == "green"


def test_diff_reports_changes_without_storing(server: ServerProcess, tmp_path: Path) -> None:
    server.kubectl("create", "configmap", "d1", "--from-literal=x=1")
    manifest = tmp_path / "d1.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d1\ndata:\n  x: '2'\n")
    result = server.kubectl("diff", "-f", str(manifest), check=False)
    assert result.returncode == 1, result.stderr
    assert 'x: "2"' in result.stdout or "x: '2'" in result.stdout
    assert _get(server, "cm", "d1")["data"]["x"] == "1"


def test_describe_deployment_and_namespace(server: ServerProcess) -> None:
    _deployment(server, "desc1", 2)
    out = server.kubectl("describe", "deployment", "desc1").stdout
    assert "Name:" in out and "desc1" in out
    assert "Replicas:" in out
    assert "Active" in server.kubectl("describe", "namespace", "default").stdout


def test_delete_by_label_and_wait_for_delete(server: ServerProcess) -> None:
    for name in ("w1", "w2"):
        server.kubectl("create", "configmap", name, "--from-literal=a=b")
        server.kubectl("label", "configmap", name, "batch=gone")
    out = server.kubectl("delete", "configmap", "-l", "batch=gone", "--wait").stdout
    assert 'configmap "w1" deleted' in out and 'configmap "w2" deleted' in out
    server.kubectl("create", "configmap", "w3", "--from-literal=a=b")
    waiter = subprocess.Popen(
        [KUBECTL, "wait", "--for=delete", "configmap/w3", "--timeout=30s"],
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(server.data_dir / "home"),
            "KUBECONFIG": str(server.kubeconfig),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    server.kubectl("delete", "configmap", "w3")
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert "condition met" in out


def test_get_watch_prints_later_changes(server: ServerProcess) -> None:
    server.kubectl("create", "configmap", "watched", "--from-literal=a=1")
    watcher = subprocess.Popen(
        [KUBECTL, "get", "configmaps", "-w", "--request-timeout=20s"],
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(server.data_dir / "home"),
            "KUBECONFIG": str(server.kubeconfig),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        server.kubectl("create", "configmap", "appeared", "--from-literal=b=2")
        deadline = time.monotonic() + 20
        seen = ""
        assert watcher.stdout is not None
        while time.monotonic() < deadline and "appeared" not in seen:
            seen += watcher.stdout.readline()
        assert "appeared" in seen
        assert "watched" in seen
    finally:
        watcher.kill()
        watcher.communicate()
