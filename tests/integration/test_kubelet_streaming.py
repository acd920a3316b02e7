"""The node agent's streaming server against a real (isolated) ProcessRuntime: container logs, exec
and attach over WebSocket (v5/v4 channel protocol), port-forward over the channel protocol and over
SPDY/3.1 in WebSocket, and the real kubectl (exec exit codes, port-forward) through an in-process API
server that mounts these handlers under the pod subresource paths."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from kubelite.agent.runtime.cgroups import detect_layout
from kubelite.agent.runtime.interface import ContainerConfig, PodSandboxConfig
from kubelite.agent.runtime.launch import Tools
from kubelite.agent.runtime.process import ProcessRuntime, detect_isolation
from kubelite.agent.streaming import spdy
from kubelite.agent.streaming.server import KubeletServer
from kubelite.testing.runtime_contract import wait_for_log

_why_not = "not Linux" if sys.platform != "linux" else detect_isolation(Tools.find())
pytestmark = pytest.mark.skipif(_why_not is not None, reason=f"isolated containers need root: {_why_not}")

WAIT = 20.0
KUBECTL = "/usr/bin/kubectl"


@dataclass
class FakePods:
    """`PodTarget` over a dict; ports are on 127.0.0.1 (the test's servers), remapped by `ports`."""

    containers: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)

    def find_container(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> str | None:
        ids = self.containers.get((namespace, pod, container), [])
        index = -2 if previous else -1
        return ids[index] if len(ids) >= -index else None

    async def open_port(self, namespace: str, pod: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if pod != "p":
            raise LookupError(f"pod {namespace}/{pod} not found")
        return await asyncio.open_connection("127.0.0.1", self.ports.get(port, port))


@dataclass
class Node:
    runtime: ProcessRuntime
    sandbox: str
    pods: FakePods
    server: KubeletServer
    url: str

    async def container(self, name: str, script: str, *, attempt: int = 0) -> str:
        cid = await self.runtime.create_container(
            self.sandbox, ContainerConfig(name=name, command=["sh", "-c", script], attempt=attempt)
        )
        await self.runtime.start_container(cid)
        self.pods.containers.setdefault(("ns", "p", name), []).append(cid)
        return cid


@pytest.fixture
def cgroup_root() -> Iterator[str]:
    from tests.integration.test_process_runtime import purge_cgroup_root

    root = f"kubelite-test-{uuid.uuid4().hex[:8]}"
    yield root
    purge_cgroup_root(detect_layout(), root)


@pytest.fixture
async def node(tmp_path: Path, cgroup_root: str) -> AsyncIterator[Node]:
    runtime = ProcessRuntime(tmp_path / "runtime", isolated=True, cgroup_root=cgroup_root)
    await runtime.start()
    server: KubeletServer | None = None
    try:
        sandbox = await runtime.run_pod_sandbox(PodSandboxConfig(uid=uuid.uuid4().hex, name="p", namespace="ns"))
        pods = FakePods()
        server = KubeletServer(runtime, pods, ssl_context=None, host="127.0.0.1", port=0)
        port = await server.start()
        yield Node(runtime, sandbox, pods, server, f"http://127.0.0.1:{port}")
    finally:
        if server is not None:
            await server.close()
        for sandbox_status in await runtime.list_pod_sandboxes():
            await runtime.remove_pod_sandbox(sandbox_status.id)
        await runtime.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """A TCP echo server on 127.0.0.1 that closes after echoing a line ending in "bye\\n"."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
                if data.endswith(b"bye\n"):
                    break
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def ws_frames(ws: aiohttp.ClientWebSocketResponse) -> dict[int, bytes]:
    """Everything received per channel until the server closes the WebSocket."""
    out: dict[int, bytes] = {}
    async with asyncio.timeout(WAIT):
        async for message in ws:
            assert message.type == WSMsgType.BINARY
            if message.data:
                out[message.data[0]] = out.get(message.data[0], b"") + message.data[1:]
    return out


# -- logs ---------------------------------------------------------------------------------------------


async def test_logs_follow_ends_when_the_container_exits(node: Node, http: aiohttp.ClientSession) -> None:
    cid = await node.container("c", "echo one; echo two >&2; read x < /dev/null; sleep 1; echo three")
    await wait_for_log(node.runtime, cid, "two")
    async with http.get(f"{node.url}/containerLogs/ns/p/c?follow=true&timestamps=true") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        async with asyncio.timeout(WAIT):
            body = (await response.read()).decode()
    lines = body.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["one", "two", "three"]
    assert all(line[:4].isdigit() and line.split(" ", 1)[0].endswith("Z") for line in lines)


async def test_logs_tail_and_previous(node: Node, http: aiohttp.ClientSession) -> None:
    first = await node.container("c", "echo first-run")
    await node.runtime.wait_container(first)
    second = await node.container("c", "echo a; echo b; echo c; sleep 30", attempt=1)
    await wait_for_log(node.runtime, second, "c")
    async with http.get(f"{node.url}/containerLogs/ns/p/c?tailLines=2") as response:
        assert await response.text() == "b\nc\n"
    async with http.get(f"{node.url}/containerLogs/ns/p/c?previous=true") as response:
        assert await response.text() == "first-run\n"


async def test_logs_errors_are_status_objects(node: Node, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{node.url}/containerLogs/ns/p/missing") as response:
        assert response.status == 400
        status = await response.json()
    assert status["kind"] == "Status" and status["reason"] == "BadRequest"
    assert status["message"] == 'container "missing" in pod "p" is waiting to start: ContainerCreating'
    await node.container("only", "sleep 30")
    async with http.get(f"{node.url}/containerLogs/ns/p/only?previous=true") as response:
        assert response.status == 400
        assert (await response.json())["message"] == 'previous terminated container "only" in pod "p" not found'


# -- exec / attach ------------------------------------------------------------------------------------


async def test_exec_v5_reports_output_and_non_zero_exit_code(node: Node, http: aiohttp.ClientSession) -> None:
    await node.container("c", "sleep 60")
    query = [("command", "sh"), ("command", "-c"), ("command", "echo out; echo err >&2; exit 3")]
    query += [("stdout", "true"), ("stderr", "true")]
    async with http.ws_connect(f"{node.url}/exec/ns/p/c", params=query, protocols=["v5.channel.k8s.io"]) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        frames = await ws_frames(ws)
    assert frames[1] == b"out\n" and frames[2] == b"err\n"
    status = json.loads(frames[3])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_exec_stdin_ends_with_the_v5_close_channel(node: Node, http: aiohttp.ClientSession) -> None:
    await node.container("c", "sleep 60")
    url = f"{node.url}/exec/ns/p/c?command=cat&stdin=true&stdout=true&stderr=true"
    async with http.ws_connect(url, protocols=["v5.channel.k8s.io", "v4.channel.k8s.io"]) as ws:
        await ws.send_bytes(b"\x00hello ")
        await ws.send_bytes(b"\x00world")
        await ws.send_bytes(b"\xff\x00")
        frames = await ws_frames(ws)
    assert frames[1] == b"hello world"
    assert json.loads(frames[3]) == {"metadata": {}, "status": "Success"}


async def test_exec_with_a_tty_merges_stderr_and_resizes(node: Node, http: aiohttp.ClientSession) -> None:
    await node.container("c", "sleep 60")
    query = [("command", "sh"), ("command", "-c"), ("command", "read x; stty size; echo to-stderr >&2")]
    query += [("stdin", "true"), ("stdout", "true"), ("tty", "true")]
    async with http.ws_connect(f"{node.url}/exec/ns/p/c", params=query, protocols=["v4.channel.k8s.io"]) as ws:
        assert ws.protocol == "v4.channel.k8s.io"
        await ws.send_bytes(b"\x04" + json.dumps({"Width": 91, "Height": 27}).encode())
        await ws.send_bytes(b"\x00go\n")
        frames = await ws_frames(ws)
    assert 2 not in frames
    assert b"27 91" in frames[1] and b"to-stderr" in frames[1], frames
    assert json.loads(frames[3])["status"] == "Success", frames


def host_processes_with(token: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


async def test_exec_command_is_killed_when_the_client_leaves(node: Node, http: aiohttp.ClientSession) -> None:
    await node.container("c", "sleep 60")
    token = str(900000 + os.getpid() % 99999)
    query = [("command", "sh"), ("command", "-c"), ("command", f"echo up; sleep {token}"), ("stdout", "true")]
    async with http.ws_connect(f"{node.url}/exec/ns/p/c", params=query, protocols=["v5.channel.k8s.io"]) as ws:
        async with asyncio.timeout(WAIT):
            assert await ws.receive_bytes() == b"\x01up\n"
        assert host_processes_with(f"sleep {token}")
    async with asyncio.timeout(WAIT):
        while host_processes_with(f"sleep {token}"):  # noqa: ASYNC110 (polling /proc, bounded)
            await asyncio.sleep(0.05)


async def test_exec_in_a_missing_container_is_refused(node: Node, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{node.url}/exec/ns/p/nope?command=true&stdout=true") as response:
        assert response.status == 400
        assert (await response.json())["message"] == 'container not found ("nope")'
    cid = await node.container("done", "true")
    await node.runtime.wait_container(cid)
    async with http.get(f"{node.url}/exec/ns/p/done?command=true&stdout=true") as response:
        assert response.status == 400


async def test_attach_streams_live_output_until_the_container_exits(node: Node, http: aiohttp.ClientSession) -> None:
    cid = await node.container("c", "echo before; read x < /tmp/go-$$ 2>/dev/null; sleep 1; echo after; sleep 1")
    await wait_for_log(node.runtime, cid, "before")
    url = f"{node.url}/attach/ns/p/c?stdout=true&stderr=true"
    async with http.ws_connect(url, protocols=["v5.channel.k8s.io"]) as ws:
        frames = await ws_frames(ws)
    assert b"after\n" in frames[1] and b"before" not in frames[1]
    assert json.loads(frames[3])["status"] == "Success"


# -- port-forward: channel protocol ------------------------------------------------------------------


async def test_port_forward_channels_prefix_and_echo(node: Node, http: aiohttp.ClientSession, echo_port: int) -> None:
    node.pods.ports = {80: echo_port, 81: closed_port()}
    url = f"{node.url}/portForward/ns/p?ports=80,81"
    async with http.ws_connect(url, protocols=["v4.channel.k8s.io"]) as ws:
        assert ws.protocol == "v4.channel.k8s.io"
        firsts = {}
        async with asyncio.timeout(WAIT):
            while len(firsts) < 4:
                message = await ws.receive_bytes()
                firsts.setdefault(message[0], message)
        assert firsts == {0: b"\x00\x50\x00", 1: b"\x01\x50\x00", 2: b"\x02\x51\x00", 3: b"\x03\x51\x00"}
        await ws.send_bytes(b"\x00hello bye\n")
        frames = await ws_frames(ws)
    assert frames[0] == b"hello bye\n"
    assert frames[3].startswith(b"error forwarding port 81 to pod ns/p")


# -- port-forward: SPDY in WebSocket -----------------------------------------------------------------


class SpdyClient:
    """A minimal client side of kubectl's port-forward, built on the same frame codec."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.writer = spdy.FrameWriter()
        self.parser = spdy.FrameParser()
        self.pending: list[spdy.Frame] = []
        self.next_id = 1

    async def send(self, *frames: spdy.Frame) -> None:
        wire = b"".join(self.writer.encode(frame) for frame in frames)
        # split the byte stream at odd places, as a transport may
        await self.ws.send_bytes(wire[:5])
        await self.ws.send_bytes(wire[5:])

    async def frame(self) -> spdy.Frame:
        async with asyncio.timeout(WAIT):
            while not self.pending:
                self.pending.extend(self.parser.feed(await self.ws.receive_bytes()))
        return self.pending.pop(0)

    async def open_pair(self, port: int, request_id: int) -> tuple[int, int]:
        error_id, data_id = self.next_id, self.next_id + 2
        self.next_id += 4
        headers = {"port": [str(port)], "requestid": [str(request_id)]}
        await self.send(spdy.SynStreamFrame(error_id, {"streamtype": ["error"], **headers}))
        await self.send(spdy.DataFrame(error_id, b"", spdy.DATA_FLAG_FIN))  # kubectl closes its error side
        await self.send(spdy.SynStreamFrame(data_id, {"streamtype": ["data"], **headers}))
        return error_id, data_id

    async def read_streams(self, *ids: int) -> dict[int, bytes]:
        """Data per stream until each of `ids` got FIN (other frames are checked on the way)."""
        data = {i: b"" for i in ids}
        open_ids = set(ids)
        while open_ids:
            frame = await self.frame()
            if isinstance(frame, spdy.DataFrame):
                data[frame.stream_id] += frame.data
                if frame.fin:
                    open_ids.discard(frame.stream_id)
            elif isinstance(frame, spdy.SynReplyFrame):
                assert frame.stream_id in ids
        return data


async def test_port_forward_spdy_forwards_and_reports_errors(
    node: Node, http: aiohttp.ClientSession, echo_port: int
) -> None:
    node.pods.ports = {80: echo_port, 81: closed_port()}
    url = f"{node.url}/portForward/ns/p"
    async with http.ws_connect(url, protocols=["SPDY/3.1+portforward.k8s.io"]) as ws:
        assert ws.protocol == "SPDY/3.1+portforward.k8s.io"
        client = SpdyClient(ws)
        error_id, data_id = await client.open_pair(80, 0)
        replies = [await client.frame(), await client.frame()]
        assert {f.stream_id for f in replies if isinstance(f, spdy.SynReplyFrame)} == {error_id, data_id}
        await client.send(spdy.PingFrame(1))
        assert await client.frame() == spdy.PingFrame(1)
        big = os.urandom(200_000) + b"bye\n"
        await client.send(spdy.DataFrame(data_id, big))
        received = await client.read_streams(error_id, data_id)
        assert received[data_id] == big and received[error_id] == b""
        # a second connection on the same session, to a port nobody listens on
        error_id, data_id = await client.open_pair(81, 1)
        received = await client.read_streams(error_id, data_id)
        assert received[error_id].startswith(b"error forwarding port 81 to pod ns/p")
        assert received[data_id] == b""


async def test_port_forward_spdy_client_half_close_still_gets_the_reply(
    node: Node, http: aiohttp.ClientSession
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read()  # until the client's half-close
        writer.write(b"got " + request)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        node.pods.ports = {80: server.sockets[0].getsockname()[1]}
        async with http.ws_connect(f"{node.url}/portForward/ns/p", protocols=["SPDY/3.1+portforward.k8s.io"]) as ws:
            client = SpdyClient(ws)
            error_id, data_id = await client.open_pair(80, 0)
            await client.send(spdy.DataFrame(data_id, b"ping", spdy.DATA_FLAG_FIN))
            received = await client.read_streams(error_id, data_id)
        assert received[data_id] == b"got ping"
    finally:
        server.close()
        await server.wait_closed()


async def test_port_forward_spdy_honours_a_client_that_does_flow_control(
    node: Node, http: aiohttp.ClientSession, echo_port: int
) -> None:
    node.pods.ports = {80: echo_port}
    async with http.ws_connect(f"{node.url}/portForward/ns/p", protocols=["SPDY/3.1+portforward.k8s.io"]) as ws:
        client = SpdyClient(ws)
        await client.send(spdy.SettingsFrame(((0, spdy.SETTINGS_INITIAL_WINDOW_SIZE, 8),)))
        error_id, data_id = await client.open_pair(80, 0)
        payload = b"0123456789abcdef bye\n"
        await client.send(spdy.DataFrame(data_id, payload))
        updates: list[spdy.WindowUpdateFrame] = []
        while True:  # the server acknowledges what the pod took, and sends only what our window allows
            frame = await client.frame()
            if isinstance(frame, spdy.WindowUpdateFrame):
                updates.append(frame)
            if isinstance(frame, spdy.DataFrame) and frame.stream_id == data_id:
                break
        assert frame.data == payload[:8]
        await client.send(spdy.WindowUpdateFrame(data_id, 1000))
        received = await client.read_streams(error_id, data_id)
        assert frame.data + received[data_id] == payload
        updates += [f for f in client.pending if isinstance(f, spdy.WindowUpdateFrame)]
        assert spdy.WindowUpdateFrame(data_id, len(payload)) in updates


async def test_requests_need_authorization_but_healthz_does_not(node: Node, http: aiohttp.ClientSession) -> None:
    server = KubeletServer(
        node.runtime, node.pods, ssl_context=None, host="127.0.0.1", port=0, authorize=lambda r: False
    )
    port = await server.start()
    try:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert (response.status, await response.text()) == (200, "ok")
        async with http.get(f"http://127.0.0.1:{port}/containerLogs/ns/p/c") as response:
            assert response.status == 403
            assert (await response.json())["reason"] == "Forbidden"
    finally:
        await server.close()


# -- the real kubectl through an API server -----------------------------------------------------------


@pytest.fixture
async def api(tmp_path: Path, node: Node) -> AsyncIterator[Path]:
    """An in-process API server (TLS, admin kubeconfig) whose pod exec/portforward subresources are
    served by the node's streaming handlers; returns the kubeconfig path."""
    from kubelite.apiserver.app import ApiServer, ApiServerConfig, serve
    from kubelite.apiserver.auth import certs
    from kubelite.apiserver.auth.kubeconfig import render_kubeconfig, write_kubeconfig
    from kubelite.storage.memory import MemoryBackend

    if not os.path.exists(KUBECTL):
        pytest.skip("kubectl is not installed")
    pki = certs.ensure_cluster_pki(tmp_path / "tls", ips=["127.0.0.1"])

    def routes(app: web.Application) -> None:
        base = "/api/v1/namespaces/{namespace}/pods/{pod}"
        app.router.add_get(base + "/portforward", node.server.port_forward)
        app.router.add_get(base + "/exec", node.server.exec)
        app.router.add_post(base + "/exec", node.server.exec)

    backend = MemoryBackend()
    await backend.start()
    server = ApiServer(backend, ApiServerConfig(extra_routes=[routes]))
    await server.start()
    runner, port = await serve(server, "127.0.0.1", 0, certs.server_ssl_context(pki))
    kubeconfig = tmp_path / "kubeconfig.yaml"
    write_kubeconfig(
        kubeconfig,
        render_kubeconfig(f"https://127.0.0.1:{port}", pki.ca_cert_pem, pki.admin_cert_pem, pki.admin_key_pem),
    )
    try:
        yield kubeconfig
    finally:
        await runner.cleanup()
        await server.close()
        await backend.close()


async def kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    home = kubeconfig.parent / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": str(kubeconfig)}
    return await asyncio.to_thread(
        subprocess.run, [KUBECTL, *args], input=input, capture_output=True, text=True, timeout=60, env=env
    )


POD = """
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns}
spec:
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
"""


async def running_pod(kubeconfig: Path) -> None:
    for args, text in (
        (("create", "namespace", "ns"), None),
        (("apply", "-f", "-"), POD),
        (
            (
                "patch",
                "pod",
                "p",
                "-n",
                "ns",
                "--subresource=status",
                "--type=merge",
                "-p",
                '{"status":{"phase":"Running"}}',
            ),
            None,
        ),
    ):
        result = await kubectl(kubeconfig, *args, input=text)
        assert result.returncode == 0, result.stderr



async def test_real_kubectl_exec_exit_code_and_output(node: Node, api: Path) -> None:
    await node.container("c", "sleep 60")
    await running_pod(api)
    result = await kubectl(api, "exec", "-n", "ns", "p", "--", "sh", "-c", "echo hi; exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "hi\n"
    assert "command terminated with exit code 3" in result.stderr
    result = await kubectl(api, "exec", "-i", "-n", "ns", "p", "--", "cat", input="piped\n")
    assert (result.returncode, result.stdout) == (0, "piped\n"), result.stderr


async def test_real_kubectl_port_forward(node: Node, api: Path) -> None:
    async def http_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b"x" * 100_000
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    target = await asyncio.start_server(http_answer, "127.0.0.1", 0)
    node.pods.ports = {8080: target.sockets[0].getsockname()[1]}
    await running_pod(api)
    local = closed_port()
    home = api.parent / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": str(api)}
    process = await asyncio.create_subprocess_exec(
        KUBECTL,
        "port-forward",
        "-n",
        "ns",
        "pod/p",
        f"{local}:8080",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(WAIT):
            line = await process.stdout.readline()
        assert b"Forwarding from 127.0.0.1:" in line, line
        for _ in range(2):  # two connections over the same session
            reader, writer = await asyncio.open_connection("127.0.0.1", local)
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            async with asyncio.timeout(WAIT):
                response = await reader.read()
            writer.close()
            await writer.wait_closed()
            assert response.startswith(b"HTTP/1.0 200 OK") and response.endswith(b"x" * 100_000)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT):
            stderr = await process.stderr.read() if process.stderr else b""
            await process.wait()
        target.close()
        await target.wait_closed()
    assert b"error" not in stderr.lower(), stderr


def test_kubectl_is_the_real_one() -> None:
    if shutil.which(KUBECTL) is None:
        pytest.skip("kubectl is not installed")
