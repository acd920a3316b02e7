"""Pods really run on a single-node cluster, driven with the real kubectl: run, logs, exec, cp,
port-forward, restarts, OOM, probes, graceful deletion, scheduling messages."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import textwrap
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from kubelite.testing.cluster import NODE_NAME, get_json, kubectl_popen, wait_for
from kubelite.testing.server import ServerProcess


def _apply(cluster: ServerProcess, manifest: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=textwrap.dedent(manifest))


def _pod(cluster: ServerProcess, name: str) -> dict[str, Any]:
    return get_json(cluster, "pod", name)


def _container_status(cluster: ServerProcess, name: str) -> dict[str, Any]:
    statuses = _pod(cluster, name)["status"].get("containerStatuses") or [{}]
    return statuses[0]


def _wait_running(cluster: ServerProcess, name: str, timeout: float = 60) -> None:
    cluster.kubectl("wait", "--for=condition=Ready", f"pod/{name}", f"--timeout={int(timeout)}s", timeout=timeout + 10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_server_pod(cluster: ServerProcess, name: str, *, probe: str) -> int:
    """A pod serving `/` over HTTP on all its addresses (its own network, or the node's for host-network pods:
    hence a port that is free here), Ready through `probe`."""
    port = _free_port()
    _apply(
        cluster,
        f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}}}
        spec:
          containers:
          - name: web
            image: python:3.11
            command: ["python3", "-m", "http.server", "{port}", "--bind", "0.0.0.0", "--directory", "/"]
            readinessProbe:
              {probe.replace("PORT", str(port))}
              periodSeconds: 1
        """,
    )
    return port


def _pids_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and b"kubectl" not in cmdline:
            found.append(int(entry))
    return found


def test_run_pod_is_scheduled_and_runs(cluster: ServerProcess) -> None:
    cluster.kubectl("run", "hello", "--image=busybox", "--restart=Never", "--", "sh", "-c", "echo hi; sleep 3600")
    _wait_running(cluster, "hello")
    pod = _pod(cluster, "hello")
    assert pod["spec"]["nodeName"] == NODE_NAME
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["PodScheduled"] == "True" and conditions["Ready"] == "True"
    assert pod["status"]["phase"] == "Running"
    node = json.loads(cluster.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    internal_ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert pod["status"]["hostIP"] == internal_ip
    running = pod["status"]["containerStatuses"][0]["state"]["running"]
    assert running["startedAt"]
    table = cluster.kubectl("get", "pod", "hello").stdout
    assert "1/1" in table and "Running" in table
    reasons = cluster.kubectl(
        "get", "events", "--field-selector", "involvedObject.name=hello", "-o", "jsonpath={.items[*].reason}"
    ).stdout.split()
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        assert reason in reasons
    assert wait_for(lambda: "hi" in cluster.kubectl("logs", "hello").stdout, what="logs")


def test_logs_follow_streams_new_lines(cluster: ServerProcess) -> None:
    cluster.kubectl(
        "run",
        "ticker",
        "--image=busybox",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "i=0; while [ $i -lt 100 ]; do echo tick $i; i=$((i+1)); sleep 0.5; done",
    )
    _wait_running(cluster, "ticker")
    follower = kubectl_popen(cluster, "logs", "-f", "ticker", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert follower.stdout is not None
        seen = [follower.stdout.readline().strip() for _ in range(6)]
        assert seen[0].startswith("tick ")
        first, last = int(seen[0].split()[1]), int(seen[-1].split()[1])
        assert last == first + 5  # consecutive lines, delivered while the container keeps writing
    finally:
        follower.kill()
        follower.communicate()
    tail = cluster.kubectl("logs", "ticker", "--tail=1", "--timestamps").stdout.strip().splitlines()
    assert len(tail) == 1 and "tick" in tail[0] and tail[0][:4].isdigit()


def test_exec_exit_code_and_stdin(cluster: ServerProcess) -> None:
    cluster.kubectl("run", "shell", "--image=busybox", "--restart=Never", "--", "sleep", "3600")
    _wait_running(cluster, "shell")
    failed = cluster.kubectl("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert failed.returncode == 3
    assert "out" in failed.stdout and "err" in failed.stderr
    echoed = cluster.kubectl("exec", "-i", "shell", "--", "cat", input="hello through stdin\n")
    assert echoed.stdout == "hello through stdin\n"
    hostname = cluster.kubectl("exec", "shell", "--", "hostname").stdout.strip()
    assert hostname == "shell"


def test_cp_both_ways(cluster: ServerProcess, tmp_path: Path) -> None:
    cluster.kubectl("run", "files", "--image=busybox", "--restart=Never", "--", "sleep", "3600")
    _wait_running(cluster, "files")
    source = tmp_path / "in.txt"
    payload = "copied " + uuid.uuid4().hex + "\n" + "x" * 100_000
    source.write_text(payload)
    remote = f"/tmp/kubelite-e2e-{uuid.uuid4().hex}.txt"
    try:
        cluster.kubectl("cp", str(source), f"files:{remote}")
        assert cluster.kubectl("exec", "files", "--", "cat", remote).stdout == payload
        back = tmp_path / "out.txt"
        cluster.kubectl("cp", f"files:{remote}", str(back))
        assert back.read_text() == payload
    finally:
        cluster.kubectl("exec", "files", "--", "rm", "-f", remote, check=False)


def test_port_forward_reaches_http_server_in_pod(cluster: ServerProcess) -> None:
    remote = _http_server_pod(cluster, "web", probe="tcpSocket: {port: PORT}")
    _wait_running(cluster, "web")
    local = _free_port()
    forward = kubectl_popen(
        cluster, "port-forward", "pod/web", f"{local}:{remote}", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        assert "Forwarding from" in line, line
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as response:
            assert response.status == 200
            assert b"Directory listing" in response.read()
    finally:
        forward.send_signal(signal.SIGINT)
        try:
            forward.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            forward.kill()
            forward.communicate()


def test_crash_looping_container_backs_off(cluster: ServerProcess) -> None:
    cluster.kubectl("run", "crasher", "--image=busybox", "--", "sh", "-c", "echo dying; exit 1")

    def backing_off() -> dict[str, Any] | None:
        status = _container_status(cluster, "crasher")
        waiting = status.get("state", {}).get("waiting", {})
        if waiting.get("reason") == "CrashLoopBackOff" and "back-off 20s" in waiting.get("message", ""):
            return status
        return None

    status = wait_for(backing_off, timeout=90, what="CrashLoopBackOff with a doubled delay")
    assert status["restartCount"] >= 2
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert status["lastState"]["terminated"]["reason"] == "Error"
    table = cluster.kubectl("get", "pod", "crasher").stdout
    assert "CrashLoopBackOff" in table
    assert "dying" in cluster.kubectl("logs", "crasher", "--previous").stdout
    cluster.kubectl("delete", "pod", "crasher", "--wait=false")


def test_memory_hog_is_oom_killed(cluster: ServerProcess) -> None:
    _apply(
        cluster,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: hog}
        spec:
          restartPolicy: Never
          containers:
          - name: hog
            image: python:3.11
            command: ["python3", "-c", "import time; b = bytearray(300 * 1024 * 1024); time.sleep(60)"]
            resources:
              limits: {memory: 50Mi}
        """,
    )

    def terminated() -> dict[str, Any] | None:
        return _container_status(cluster, "hog").get("state", {}).get("terminated")

    state = wait_for(terminated, timeout=60, what="the hog to be killed")
    assert state["reason"] == "OOMKilled"
    assert state["exitCode"] == 137
    assert _pod(cluster, "hog")["status"]["phase"] == "Failed"


def test_failing_liveness_probe_restarts_the_container(cluster: ServerProcess) -> None:
    _apply(
        cluster,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: unhealthy}
        spec:
          containers:
          - name: app
            image: busybox
            command: ["sleep", "3600"]
            livenessProbe:
              exec: {command: ["sh", "-c", "exit 1"]}
              periodSeconds: 1
              failureThreshold: 2
        """,
    )
    wait_for(
        lambda: _container_status(cluster, "unhealthy").get("restartCount", 0) >= 1,
        timeout=60,
        what="a liveness restart",
    )
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=unhealthy", "-o", "json").stdout
    messages = [e["message"] for e in json.loads(events)["items"] if e["reason"] == "Unhealthy"]
    assert any(m.startswith("Liveness probe failed") for m in messages)
    cluster.kubectl("delete", "pod", "unhealthy", "--wait=false")


def test_failing_readiness_probe_keeps_pod_not_ready(cluster: ServerProcess) -> None:
    _apply(
        cluster,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: notready}
        spec:
          containers:
          - name: app
            image: busybox
            command: ["sleep", "3600"]
            readinessProbe:
              exec: {command: ["false"]}
              periodSeconds: 1
        """,
    )
    wait_for(lambda: _pod(cluster, "notready")["status"].get("phase") == "Running", what="Running")
    wait_for(
        lambda: any(
            e["reason"] == "Unhealthy"
            for e in get_json(cluster, "events", "--field-selector", "involvedObject.name=notready")["items"]
        ),
        what="a failed readiness probe",
    )
    pod = _pod(cluster, "notready")
    conditions = {c["type"]: c for c in pod["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["ContainersReady"]["reason"] == "ContainersNotReady"
    assert pod["status"]["containerStatuses"][0]["ready"] is False
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    cluster.kubectl("delete", "pod", "notready", "--wait=false")


def test_delete_kills_processes_within_grace_period(cluster: ServerProcess) -> None:
    marker = str(900000 + uuid.uuid4().int % 99999)
    _apply(
        cluster,
        f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: stubborn}}
        spec:
          terminationGracePeriodSeconds: 3
          containers:
          - name: app
            image: busybox
            command: ["sh", "-c", "trap '' TERM; sleep {marker} & wait"]
        """,
    )
    _wait_running(cluster, "stubborn")
    assert _pids_with(marker), "the container's process should be running"
    cluster.kubectl("delete", "pod", "stubborn", "--timeout=30s", timeout=40)
    assert not _pids_with(marker), "a process of the deleted pod survived"


def test_pod_too_big_for_any_node_stays_pending_with_upstream_message(cluster: ServerProcess) -> None:
    _apply(
        cluster,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: huge}
        spec:
          containers:
          - name: app
            image: busybox
            command: ["sleep", "3600"]
            resources:
              requests: {cpu: "500"}
        """,
    )

    def unschedulable() -> dict[str, Any] | None:
        for condition in _pod(cluster, "huge")["status"].get("conditions", []):
            if condition["type"] == "PodScheduled" and condition["status"] == "False":
                return condition
        return None

    condition = wait_for(unschedulable, what="PodScheduled=False")
    assert condition["reason"] == "Unschedulable"
    assert condition["message"].startswith("0/1 nodes are available: 1 Insufficient cpu.")
    events = get_json(cluster, "events", "--field-selector", "involvedObject.name=huge")["items"]
    assert any(e["reason"] == "FailedScheduling" and e["type"] == "Warning" for e in events)
    cluster.kubectl("delete", "pod", "huge")


def test_cordoned_node_gets_no_new_pods(cluster: ServerProcess) -> None:
    cluster.kubectl("cordon", NODE_NAME)
    try:
        cluster.kubectl("run", "waiting", "--image=busybox", "--restart=Never", "--", "sleep", "3600")

        def message() -> str:
            for condition in _pod(cluster, "waiting")["status"].get("conditions", []):
                if condition["type"] == "PodScheduled" and condition["status"] == "False":
                    return str(condition["message"])
            return ""

        assert "1 node(s) were unschedulable" in wait_for(message, what="Unschedulable")
        assert not _pod(cluster, "waiting")["spec"].get("nodeName")
    finally:
        cluster.kubectl("uncordon", NODE_NAME)
    # no polling in the scheduler: the node update alone brings the pod back
    _wait_running(cluster, "waiting")


def test_python_client_exec_and_port_forward(cluster: ServerProcess) -> None:
    from kubernetes import client, config
    from kubernetes.stream import portforward, stream

    remote = _http_server_pod(cluster, "pyclient", probe="httpGet: {port: PORT, path: /}")
    _wait_running(cluster, "pyclient")
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        core = client.CoreV1Api(api_client)
        exec_stream = stream(
            core.connect_get_namespaced_pod_exec,
            "pyclient",
            "default",
            command=["sh", "-c", "echo from-python; exit 5"],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
        exec_stream.run_forever(timeout=20)
        assert "from-python" in exec_stream.read_stdout()
        assert exec_stream.returncode == 5
        exec_stream.close()
        exec_stream.sock.shutdown()

        forward = portforward(core.connect_get_namespaced_pod_portforward, "pyclient", "default", ports=str(remote))
        sock = forward.socket(remote)
        sock.settimeout(10)
        sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        assert received.startswith(b"HTTP/1.0 200") and b"Directory listing" in received
        sock.close()
        forward.close()
        # the client's proxy thread closes the WebSocket once its ports are closed
        wait_for(lambda: not forward.connected, timeout=15, what="the port-forward WebSocket to close")
        # websocket-client leaves the socket open when the server closed first: shut it down ourselves
        forward.websocket.shutdown()
    finally:
        api_client.close()


def test_attach_streams_output_and_passes_stdin(cluster: ServerProcess) -> None:
    _apply(
        cluster,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: reader}
        spec:
          containers:
          - name: app
            image: busybox
            stdin: true
            command: ["sh", "-c", "while read line; do echo got $line; done"]
        """,
    )
    _wait_running(cluster, "reader")
    attached = kubectl_popen(
        cluster, "attach", "-i", "reader", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    answered = threading.Event()

    def keep_typing() -> None:  # lines typed before attach follows the output are not echoed back to us
        assert attached.stdin is not None
        while not answered.wait(0.5):
            try:
                attached.stdin.write("hello-attach\n")
                attached.stdin.flush()
            except (BrokenPipeError, ValueError):
                return

    typist = threading.Thread(target=keep_typing, daemon=True)
    deadline = threading.Timer(30, attached.kill)  # bounds the blocking reads below
    typist.start()
    deadline.start()
    try:
        assert attached.stdout is not None
        for line in attached.stdout:
            if line.strip() == "got hello-attach":
                answered.set()
                break
        assert answered.is_set(), "the attached container never echoed its input"
    finally:
        answered.set()
        deadline.cancel()
        attached.kill()
        typist.join()
        attached.communicate()
    assert "got hello-attach" in cluster.kubectl("logs", "reader").stdout
