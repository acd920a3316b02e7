"""pods/binding, pods/log, pods/exec|attach|portforward through a real API server and a fake kubelet.

The API server runs in process on loopback (memory backend, plain HTTP unless a test says TLS); the
"kubelet" is a small aiohttp app implementing the four kubelet paths: an echo-style exec speaking a
minimal v5.channel.k8s.io, a log endpoint that streams on request, and refusals as Status bodies.
The official `kubernetes` client drives what it supports (binding, logs, exec), aiohttp the rest.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType, web
from kubernetes import client as k8s
from kubernetes.stream import stream

from kubelite.agent.tls import kubelet_server_context
from kubelite.apiserver.app import ApiServer, ApiServerConfig, serve
from kubelite.apiserver.auth import certs
from kubelite.apiserver.kubeletproxy import SPDY_MESSAGE, kubelet_client_context
from kubelite.storage.memory import MemoryBackend

# the in-process server stores `request["view"]` (handlers.py); aiohttp 3.14 warns about plain-string keys
NS = "default"
KUBECTL = "/usr/bin/kubectl"
WAIT = 20.0  # generous bound for conditions (never a timed assertion)


# -- the fake kubelet -------------------------------------------------------------------------------


@dataclass
class FakeKubelet:
    """Records what reached it; `release` lets a follow log stream finish; `log_done` is set when the log
    handler ends (the proxy closed the connection or the stream finished)."""

    requests: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    log_done: asyncio.Event = field(default_factory=asyncio.Event)
    exec_done: asyncio.Event = field(default_factory=asyncio.Event)
    exec_close_code: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.logs)
        app.router.add_get("/exec/{ns}/{pod}/{container}", self.exec)
        app.router.add_get("/attach/{ns}/{pod}/{container}", self.exec)
        app.router.add_get("/portForward/{ns}/{pod}", self.port_forward)
        return app

    def _record(self, request: web.Request) -> None:
        self.requests.append((request.path, list(request.query.items())))

    async def logs(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        container = request.match_info["container"]
        if container == "stopped":
            return _status(400, 'container "stopped" in pod "web" is waiting to start: ContainerCreating')
        response = web.StreamResponse()
        response.content_type = "text/plain"
        try:
            await response.prepare(request)
            await response.write(b"line 1\n")
            if request.query.get("follow") == "true":
                if container == "chatty":
                    while True:  # until the proxy goes away and a write fails
                        await asyncio.sleep(0.05)
                        await response.write(b"tick\n")
                await self.release.wait()
                await response.write(b"line 2\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.log_done.set()
        return response

    async def exec(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        container = request.match_info["container"]
        if container == "stopped":
            return _status(400, 'unable to upgrade connection: container not found ("stopped")')
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"), max_msg_size=0)
        await ws.prepare(request)
        if container == "closer":  # closes at once with a private close code
            await ws.close(code=4001, message=b"bye")
            return ws
        await ws.send_bytes(b"\x01ready\n")
        async for msg in ws:
            raw = msg.data.encode() if msg.type is WSMsgType.TEXT else msg.data  # the Python client writes text
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT) or not raw:
                continue
            channel, data = raw[0], raw[1:]
            if (channel == 0 and data.strip() == b"exit") or channel == 255:  # v5: 255 closes a channel (stdin)
                await ws.send_bytes(b"\x03" + orjson.dumps({"metadata": {}, "status": "Success"}))
                await ws.close()
                break
            if channel == 0:
                await ws.send_bytes(b"\x01" + data.upper())
        self.exec_close_code = ws.close_code
        self.exec_done.set()
        return ws

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        ws = web.WebSocketResponse(protocols=("SPDY/3.1+portforward.k8s.io", "v4.channel.k8s.io"))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws


def _status(code: int, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": "BadRequest", "code": code}
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


# -- fixtures -------------------------------------------------------------------------------------


@dataclass
class Cluster:
    url: str
    kubelet: FakeKubelet
    kubelet_port: int
    http: aiohttp.ClientSession

    def core(self) -> k8s.CoreV1Api:
        configuration = k8s.Configuration()
        configuration.host = self.url
        return k8s.CoreV1Api(k8s.ApiClient(configuration))


@contextlib.asynccontextmanager
async def _start_cluster(
    tmp: Path, *, kubelet_ssl: ssl.SSLContext | None = None, api_kubelet_ssl: ssl.SSLContext | None = None
) -> AsyncIterator[Cluster]:
    fake = FakeKubelet()
    kubelet_runner = web.AppRunner(fake.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await kubelet_runner.setup()
    site = web.TCPSite(kubelet_runner, "127.0.0.1", 0, ssl_context=kubelet_ssl)
    await site.start()
    kubelet_port = kubelet_runner.addresses[0][1]
    backend = MemoryBackend()
    await backend.start()
    server = ApiServer(backend, ApiServerConfig(kubelet_ssl_context=api_kubelet_ssl))
    await server.start()
    runner, port = await serve(server, "127.0.0.1", 0, None)
    http = aiohttp.ClientSession()
    try:
        yield Cluster(f"http://127.0.0.1:{port}", fake, kubelet_port, http)
    finally:
        await http.close()
        await runner.cleanup()
        await server.close()
        await backend.close()
        await kubelet_runner.cleanup()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with _start_cluster(tmp_path) as value:
        yield value


async def _create(c: Cluster, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with c.http.post(c.url + path, json=body) as response:
        assert response.status == 201, await response.text()
        return dict(await response.json())


async def _node(c: Cluster, name: str = "node-a", address: str = "127.0.0.1", port: int = 0) -> None:
    await _create(c, "/api/v1/nodes", {"metadata": {"name": name}})
    status = {
        "status": {
            "addresses": [{"type": "Hostname", "address": "does-not-resolve.invalid"},
                          {"type": "InternalIP", "address": address}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port or c.kubelet_port}},
        }
    }
    async with c.http.patch(
        f"{c.url}/api/v1/nodes/{name}/status", data=orjson.dumps(status),
        headers={"Content-Type": "application/merge-patch+json"},
    ) as response:
        assert response.status == 200, await response.text()


async def _pod(c: Cluster, name: str = "web", containers: tuple[str, ...] = ("app",), node: str = "",
               init: tuple[str, ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": n, "image": "busybox"} for n in containers]}
    if init:
        spec["initContainers"] = [{"name": n, "image": "busybox"} for n in init]
    if node:
        spec["nodeName"] = node
    return await _create(c, f"/api/v1/namespaces/{NS}/pods", {"metadata": {"name": name}, "spec": spec})


async def _get_pod(c: Cluster, name: str = "web") -> dict[str, Any]:
    async with c.http.get(f"{c.url}/api/v1/namespaces/{NS}/pods/{name}") as response:
        return dict(await response.json())


def _binding(pod: str, node: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod, **meta},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


def _upgrade_headers(protocols: str = "v5.channel.k8s.io") -> dict[str, str]:
    return {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), "Sec-WebSocket-Protocol": protocols}


# -- binding --------------------------------------------------------------------------------------


async def test_binding_sets_node_name_condition_and_annotations_then_second_binding_conflicts(
    cluster: Cluster,
) -> None:
    await _pod(cluster)
    core = cluster.core()
    body = k8s.V1Binding(metadata=k8s.V1ObjectMeta(name="web", annotations={"note": "by-test"}),
                         target=k8s.V1ObjectReference(kind="Node", name="node-a"))
    try:
        raw = await asyncio.to_thread(core.create_namespaced_pod_binding, "web", NS, body, _preload_content=False)
        assert raw.status == 201
        assert orjson.loads(raw.data) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                          "code": 201}
        pod = await _get_pod(cluster)
        assert pod["spec"]["nodeName"] == "node-a"
        assert pod["metadata"]["annotations"]["note"] == "by-test"
        scheduled = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
        assert scheduled[0]["status"] == "True" and scheduled[0]["lastTransitionTime"]

        with pytest.raises(k8s.ApiException) as refused:
            await asyncio.to_thread(core.create_namespaced_pod_binding, "web", NS,
                                    k8s.V1Binding(metadata=k8s.V1ObjectMeta(name="web"),
                                                  target=k8s.V1ObjectReference(kind="Node", name="node-b")),
                                    _preload_content=False)
        assert refused.value.status == 409
        status = orjson.loads(refused.value.body)
        assert status["reason"] == "Conflict"
        assert status["message"] == ('Operation cannot be fulfilled on pods/binding "web": '
                                     'pod web is already assigned to node "node-a"')
    finally:
        await asyncio.to_thread(core.api_client.close)


async def test_concurrent_bindings_of_one_pod_exactly_one_wins(cluster: Cluster) -> None:
    await _pod(cluster)

    async def bind(node: str) -> int:
        async with cluster.http.post(f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/binding",
                                     json=_binding("web", node)) as response:
            return response.status

    statuses = await asyncio.gather(*(bind(f"node-{i}") for i in range(6)))
    assert sorted(statuses) == [201] + [409] * 5
    pod = await _get_pod(cluster)
    assert pod["spec"]["nodeName"].startswith("node-")


async def test_legacy_bindings_collection_binds_the_pod_named_in_the_body(cluster: Cluster) -> None:
    await _pod(cluster)
    status = await _create(cluster, f"/api/v1/namespaces/{NS}/bindings", _binding("web", "node-a"))
    assert status["status"] == "Success"
    assert (await _get_pod(cluster))["spec"]["nodeName"] == "node-a"


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        (_binding("other", "node-a"), 400, "BadRequest"),  # name in body differs from the URL
        ({"metadata": {"name": "web"}, "target": {"kind": "Pod", "name": "x"}}, 422, "Invalid"),
        ({"metadata": {"name": "web"}, "target": {"kind": "Node"}}, 422, "Invalid"),
        (_binding("web", "node-a", uid="not-the-uid"), 409, "Conflict"),
        (_binding("web", "node-a", namespace="elsewhere"), 400, "BadRequest"),
    ],
)
async def test_invalid_bindings_are_refused_and_leave_the_pod_unbound(
    cluster: Cluster, body: dict[str, Any], code: int, reason: str
) -> None:
    await _pod(cluster)
    async with cluster.http.post(f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/binding", json=body) as response:
        assert response.status == code
        assert (await response.json())["reason"] == reason
    assert not (await _get_pod(cluster))["spec"].get("nodeName")


async def test_binding_with_matching_uid_and_dry_run_writes_nothing(cluster: Cluster) -> None:
    pod = await _pod(cluster)
    url = f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/binding"
    body = _binding("web", "node-a", uid=pod["metadata"]["uid"])
    async with cluster.http.post(url + "?dryRun=All", json=body) as response:
        assert response.status == 201
    assert not (await _get_pod(cluster))["spec"].get("nodeName")
    async with cluster.http.post(url, json=body) as response:
        assert response.status == 201
    assert (await _get_pod(cluster))["spec"]["nodeName"] == "node-a"


async def test_binding_a_missing_pod_is_not_found(cluster: Cluster) -> None:
    async with cluster.http.post(f"{cluster.url}/api/v1/namespaces/{NS}/pods/nope/binding",
                                 json=_binding("nope", "node-a")) as response:
        assert response.status == 404


# -- logs -----------------------------------------------------------------------------------------


async def test_log_follow_streams_chunks_before_the_kubelet_ends_the_stream(cluster: Cluster) -> None:
    await _node(cluster)
    await _pod(cluster, node="node-a")
    url = f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/log?follow=true"
    async with cluster.http.get(url) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        received = b""
        while b"line 1\n" not in received:
            received += await response.content.readany()
        assert not cluster.kubelet.release.is_set()  # the first line arrived while the stream is still open
        cluster.kubelet.release.set()
        received += await response.content.read()
    assert received == b"line 1\nline 2\n"
    assert cluster.kubelet.requests[-1] == ("/containerLogs/default/web/app", [("follow", "true")])


async def test_log_through_the_python_client_forwards_options(cluster: Cluster) -> None:
    await _node(cluster)
    await _pod(cluster, containers=("app", "side"), node="node-a")
    core = cluster.core()
    try:
        text = await asyncio.to_thread(
            core.read_namespaced_pod_log, "web", NS, container="side", tail_lines=5, timestamps=True,
            since_seconds=60,
        )
    finally:
        await asyncio.to_thread(core.api_client.close)
    assert text == "line 1\n"
    path, query = cluster.kubelet.requests[-1]
    assert path == "/containerLogs/default/web/side"
    assert sorted(query) == [("sinceSeconds", "60"), ("tailLines", "5"), ("timestamps", "true")]


async def test_log_stream_stops_when_the_client_goes_away(cluster: Cluster) -> None:
    await _node(cluster)
    await _pod(cluster, containers=("app", "chatty"), node="node-a")
    url = f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/log?follow=true&container=chatty"
    async with cluster.http.get(url) as response:
        assert b"line 1" in await response.content.readuntil(b"\n")
    response.close()
    async with asyncio.timeout(WAIT):
        await cluster.kubelet.log_done.wait()


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        ("", 400, "a container name must be specified for pod web, choose one of: [setup app side]"),
        ("?container=nope", 400, "container nope is not valid for pod web"),
        ("?container=app&tailLines=-1", 422,
         'PodLogOptions "web" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0'),
        ("?container=stopped", 400, 'container "stopped" in pod "web" is waiting to start: ContainerCreating'),
    ],
)
async def test_log_errors_name_the_problem(cluster: Cluster, query: str, code: int, message: str) -> None:
    await _node(cluster)
    await _pod(cluster, containers=("app", "side", "stopped"), init=("setup",), node="node-a")
    if query == "":
        await _pod(cluster, name="two", containers=("app", "side"), init=("setup",), node="node-a")
        message = message.replace("pod web", "pod two")
    name = "two" if query == "" else "web"
    async with cluster.http.get(f"{cluster.url}/api/v1/namespaces/{NS}/pods/{name}/log{query}") as response:
        assert response.status == code
        status = await response.json()
    assert status["message"] == message


async def test_log_of_a_pod_without_a_node_is_empty(cluster: Cluster) -> None:
    await _pod(cluster)
    async with cluster.http.get(f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/log") as response:
        assert response.status == 200
        assert await response.read() == b""
    assert cluster.kubelet.requests == []


# -- exec / attach / portforward ------------------------------------------------------------------


def _exec_with_python_client(core: k8s.CoreV1Api) -> tuple[str, str, int | None]:
    resp = stream(core.connect_get_namespaced_pod_exec, "web", NS, command=["sh", "-c", "cat"], stdin=True,
                  stdout=True, stderr=True, tty=False, _preload_content=False)
    try:
        out = ""
        deadline = 200
        while "ready" not in out and deadline:
            resp.update(timeout=0.1)
            out += resp.read_stdout(timeout=0)
            deadline -= 1
        resp.write_stdin("hello relay\n")
        while "HELLO RELAY" not in out and deadline:
            resp.update(timeout=0.1)
            out += resp.read_stdout(timeout=0)
            deadline -= 1
        resp.write_stdin("exit\n")
        while resp.is_open() and deadline:
            resp.update(timeout=0.1)
            deadline -= 1
        return resp.subprotocol, out, resp.returncode
    finally:
        resp.close()
        raw = getattr(resp.sock, "sock", None)
        if raw is not None:  # websocket-client leaves its socket open after a server-initiated close
            raw.close()


async def test_exec_with_the_python_client_negotiates_v5_and_relays_both_ways(cluster: Cluster) -> None:
    await _node(cluster)
    await _pod(cluster, node="node-a")
    core = cluster.core()
    try:
        protocol, out, returncode = await asyncio.to_thread(_exec_with_python_client, core)
    finally:
        await asyncio.to_thread(core.api_client.close)
    assert protocol == "v5.channel.k8s.io"
    assert out == "ready\nHELLO RELAY\n"
    assert returncode == 0
    path, query = cluster.kubelet.requests[-1]
    assert path == "/exec/default/web/app"
    assert sorted(query) == [("command", "-c"), ("command", "cat"), ("command", "sh"), ("stderr", "1"),
                             ("stdin", "1"), ("stdout", "1")]


async def test_exec_relays_large_messages_and_the_kubelet_close_code(cluster: Cluster) -> None:
    await _node(cluster)
    await _pod(cluster, containers=("app", "closer"), node="node-a")
    base = f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/exec?command=cat&stdin=true&stdout=true"
    payload = os.urandom(6 * 1024 * 1024).hex().encode()[: 6 * 1024 * 1024]
    async with cluster.http.ws_connect(base + "&container=app", protocols=("v5.channel.k8s.io",),
                                       max_msg_size=0) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        assert (await ws.receive_bytes()) == b"\x01ready\n"
        await ws.send_bytes(b"\x00" + payload)
        assert (await ws.receive_bytes()) == b"\x01" + payload.upper()
    async with cluster.http.ws_connect(base + "&container=closer", protocols=("v4.channel.k8s.io",)) as ws:
        assert ws.protocol == "v4.channel.k8s.io"
        msg = await ws.receive()
        assert msg.type is WSMsgType.CLOSE
        assert (msg.data, msg.extra) == (4001, "bye")


async def test_client_closing_an_exec_closes_the_kubelet_side(cluster: Cluster) -> None:
    await _node(cluster)
    await _pod(cluster, node="node-a")
    url = f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/exec?command=sh&stdin=true"
    async with cluster.http.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        assert await ws.receive_bytes() == b"\x01ready\n"
        await ws.close(code=4002, message=b"client done")
    async with asyncio.timeout(WAIT):
        await cluster.kubelet.exec_done.wait()
    assert cluster.kubelet.exec_close_code == 4002


async def test_kubelet_refusal_reaches_the_client_and_its_spdy_fallback(cluster: Cluster) -> None:
    await _node(cluster)
    await _pod(cluster, containers=("app", "stopped"), node="node-a")
    url = f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/attach?container=stopped&stdout=true"
    kubelet_message = 'unable to upgrade connection: container not found ("stopped")'
    async with cluster.http.get(url, headers=_upgrade_headers()) as response:
        assert response.status == 400
        assert (await response.json())["message"] == kubelet_message
    spdy = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v4.channel.k8s.io"}
    async with cluster.http.post(url, headers=spdy) as response:  # kubectl's fallback: same refusal
        assert response.status == 400
        assert (await response.json())["message"] == kubelet_message
    async with cluster.http.post(url, headers=spdy) as response:  # nothing remembered: the protocol message
        assert response.status == 400
        assert (await response.json())["message"] == SPDY_MESSAGE


@pytest.mark.parametrize(
    ("pod_node", "query", "message"),
    [
        ("", "?container=app", "pod web does not have a host assigned"),
        ("node-a", "", "a container name must be specified for pod web, choose one of: [app side]"),
        ("node-a", "?container=nope", "container nope is not valid for pod web"),
    ],
)
async def test_exec_errors_before_reaching_the_kubelet(
    cluster: Cluster, pod_node: str, query: str, message: str
) -> None:
    await _node(cluster)
    await _pod(cluster, containers=("app", "side"), node=pod_node)
    url = f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/exec{query}"
    async with cluster.http.get(url, headers=_upgrade_headers()) as response:
        assert response.status == 400
        assert (await response.json())["message"] == message
    assert cluster.kubelet.requests == []


async def test_portforward_relays_with_the_kubelet_chosen_protocol(cluster: Cluster) -> None:
    await _node(cluster)
    await _pod(cluster, node="node-a")
    url = f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/portforward?ports=8080,9090"
    async with cluster.http.ws_connect(url, protocols=("SPDY/3.1+portforward.k8s.io",)) as ws:
        assert ws.protocol == "SPDY/3.1+portforward.k8s.io"
        await ws.send_bytes(b"\x80\x03\x00\x01frame")
        assert await ws.receive_bytes() == b"\x80\x03\x00\x01frame"
    path, query = cluster.kubelet.requests[-1]
    assert path == "/portForward/default/web"
    assert sorted(query) == [("port", "8080,9090"), ("ports", "8080,9090")]


async def test_unreachable_kubelet_is_an_internal_error(cluster: Cluster) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    await _node(cluster, port=closed_port)
    await _pod(cluster, node="node-a")
    async with cluster.http.get(f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/log") as response:
        assert response.status == 500
        assert (await response.json())["message"].startswith("Internal error occurred: error dialing backend")


# -- TLS to the kubelet ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _tls_cluster(tmp: Path, serving_ips: list[str]) -> AsyncIterator[Cluster]:
    pki = certs.ensure_cluster_pki(tmp / "pki")
    serving_cert, serving_key = certs.issue_serving_certificate(pki, ["node-a"], serving_ips)
    client_cert, client_key = certs.issue_client_certificate(pki, "kube-apiserver-kubelet-client", ["system:masters"])
    async with _start_cluster(
        tmp,
        kubelet_ssl=kubelet_server_context(pki.ca_cert_pem, serving_cert, serving_key),
        api_kubelet_ssl=kubelet_client_context(pki.ca_cert_pem, client_cert, client_key),
    ) as value:
        yield value


async def test_logs_reach_a_kubelet_over_mutual_tls(tmp_path: Path) -> None:
    async with _tls_cluster(tmp_path, ["127.0.0.1"]) as cluster:
        await _node(cluster)
        await _pod(cluster, node="node-a")
        async with cluster.http.get(f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/log") as response:
            assert response.status == 200
            assert await response.read() == b"line 1\n"
        async with cluster.http.ws_connect(f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/exec?command=sh&stdin=1",
                                           protocols=("v5.channel.k8s.io",)) as ws:
            assert await ws.receive_bytes() == b"\x01ready\n"


async def test_kubelet_certificate_without_the_node_address_is_refused(tmp_path: Path) -> None:
    async with _tls_cluster(tmp_path, ["10.255.255.1"]) as cluster:
        await _node(cluster)
        await _pod(cluster, node="node-a")
        async with cluster.http.get(f"{cluster.url}/api/v1/namespaces/{NS}/pods/web/log") as response:
            assert response.status == 500
            assert "certificate" in (await response.json())["message"].lower()
        assert cluster.kubelet.requests == []


# -- the real kubectl ---------------------------------------------------------------------------------


def _kubectl(c: Cluster, tmp: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: '{c.url}'}}}}]\n"
        "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "KUBECONFIG": str(kubeconfig)}
    return subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl is not installed")
async def test_real_kubectl_exec_and_logs_through_the_proxy(cluster: Cluster, tmp_path: Path) -> None:
    await _node(cluster)
    await _pod(cluster, containers=("app", "stopped"), node="node-a")
    result = await asyncio.to_thread(_kubectl, cluster, tmp_path, "exec", "-i", "web", "--", "cat", stdin="piped\n")
    assert (result.returncode, result.stdout) == (0, "ready\nPIPED\n"), result.stderr
    assert cluster.kubelet.requests[-1][0] == "/exec/default/web/app"
    result = await asyncio.to_thread(_kubectl, cluster, tmp_path, "logs", "web", "--tail=3")
    assert (result.returncode, result.stdout) == (0, "line 1\n"), result.stderr
    result = await asyncio.to_thread(_kubectl, cluster, tmp_path, "exec", "web", "-c", "nope", "--", "true")
    assert result.returncode != 0
    assert "container nope is not valid for pod web" in result.stderr
    # a kubelet refusal: kubectl falls back to SPDY after the failed WebSocket handshake and still gets it
    result = await asyncio.to_thread(_kubectl, cluster, tmp_path, "exec", "web", "-c", "stopped", "--", "true")
    assert result.returncode != 0
    assert 'unable to upgrade connection: container not found ("stopped")' in result.stderr
