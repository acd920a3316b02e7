"""Probes and lifecycle hooks against real loopback servers (kubelite.agent.pods.probes / hooks)."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubelite.agent.pods.hooks import run_handler
from kubelite.agent.pods.probes import GRPC_UNSUPPORTED, ProbeContext, Prober, ProbeResult, run_probe
from kubelite.agent.runtime.interface import ExecResult, NotFoundError
from kubelite.testing.fake_clock import FakeClock

# -- a loopback HTTP server -------------------------------------------------------------------------


@dataclass
class Request:
    target: str
    headers: dict[str, str]


@dataclass
class HttpServer:
    """Answers by path; records every request.  `routes` maps a path to (status, headers, body)."""

    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if not line:
                return
            try:
                target = line.decode().split(" ")[1]
            except (UnicodeDecodeError, IndexError):  # not HTTP (a TLS hello): answer as Go's server does
                writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
                return
            headers: dict[str, str] = {}
            while (raw := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = raw.decode().partition(":")
                headers[name.strip()] = value.strip()
            self.requests.append(Request(target, headers))
            path = target.partition("?")[0]
            if path == "/slow":
                await reader.read()  # until the client gives up
                return
            if path == "/raw":
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                return
            status, extra, body = self.routes.get(path, (404, {}, b"not found"))
            head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            writer.write(head.encode() + b"\r\n" + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


@pytest.fixture
async def http() -> AsyncIterator[HttpServer]:
    server = HttpServer()
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = server.server.sockets[0].getsockname()[1]
    yield server
    server.server.close()
    await server.server.wait_closed()


def self_signed(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "probe-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (directory / "tls.key").write_bytes(pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "tls.crt", directory / "tls.key")
    return context


@pytest.fixture
async def https(tmp_path: Path) -> AsyncIterator[HttpServer]:
    server = HttpServer(routes={"/ok": (200, {}, b"secure")})
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=self_signed(tmp_path))
    server.port = server.server.sockets[0].getsockname()[1]
    yield server
    server.server.close()
    await server.server.wait_closed()


async def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


# -- a scripted exec_sync ---------------------------------------------------------------------------


class ScriptedExec:
    """`exec_sync` answering from a script: ExecResults, or exceptions to raise; the last repeats."""

    def __init__(self, *script: ExecResult | BaseException) -> None:
        self.script = list(script)
        self.calls: list[tuple[list[str], float]] = []

    async def __call__(self, command: list[str], timeout: float) -> ExecResult:
        self.calls.append((command, timeout))
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        return step


OK = ExecResult(0, b"all good\n", b"")
BAD = ExecResult(1, b"out\n", b"err\n")
CONTAINER = {
    "name": "app",
    "ports": [{"name": "http", "containerPort": 8080}],
    "env": [{"name": "FILE", "value": "/tmp/healthy"}, {"name": "FROM", "valueFrom": {"fieldRef": {}}}],
}


def ctx(exec_sync: Callable[..., Any] | None = None, container: dict[str, Any] | None = None) -> ProbeContext:
    pod = {"metadata": {"name": "web", "namespace": "shop", "uid": "u1"}}
    return ProbeContext("127.0.0.1", container or CONTAINER, exec_sync or ScriptedExec(OK), pod=pod)


# -- exec -------------------------------------------------------------------------------------------


async def test_exec_probe_success_and_failure_carry_output() -> None:
    fake = ScriptedExec(OK, BAD)
    probe = {"exec": {"command": ["cat", "$(FILE)", "$(FROM)", "$(NOPE)"]}, "timeoutSeconds": 3}
    assert await run_probe(probe, ctx(fake)) == ProbeResult(True, "all good\n")
    assert await run_probe(probe, ctx(fake)) == ProbeResult(False, "out\nerr\n")
    assert fake.calls[0] == (["cat", "/tmp/healthy", "", "$(NOPE)"], 3.0)


async def test_exec_probe_timeout_is_a_failure_with_the_kubelets_message() -> None:
    result = await run_probe({"exec": {"command": ["sleep", "10"]}}, ctx(ScriptedExec(TimeoutError())))
    assert result == ProbeResult(False, 'command "sleep 10" timed out')


async def test_exec_probe_runtime_error_is_thrown_away() -> None:
    result = await run_probe({"exec": {"command": ["true"]}}, ctx(ScriptedExec(NotFoundError("gone"))))
    assert result.errored


async def test_grpc_probe_is_reported_unsupported() -> None:
    assert await run_probe({"grpc": {"port": 9000}}, ctx()) == ProbeResult(False, GRPC_UNSUPPORTED)


# -- httpGet ----------------------------------------------------------------------------------------


def get(port: int | str, path: str = "/ok", **more: Any) -> dict[str, Any]:
    return {"httpGet": {"port": port, "path": path, **more}, "timeoutSeconds": 1}


async def test_http_probe_success_sends_the_kubelets_headers(http: HttpServer) -> None:
    http.routes["/ok"] = (200, {}, b"fine")
    result = await run_probe(get(http.port, "/ok?x=1"), ctx())
    assert result == ProbeResult(True, "fine")
    request = http.requests[0]
    assert request.target == "/ok?x=1"
    assert request.headers["User-Agent"] == "kube-probe/1.32"
    assert request.headers["Accept"] == "*/*"
    assert request.headers["Host"] == f"127.0.0.1:{http.port}"
    assert request.headers["Connection"] == "close"


async def test_http_probe_custom_headers_host_and_empty_accept(http: HttpServer) -> None:
    http.routes["/ok"] = (200, {}, b"")
    headers = [
        {"name": "x-token", "value": "abc"},
        {"name": "Host", "value": "example.com"},
        {"name": "Accept", "value": ""},
        {"name": "User-Agent", "value": "mine"},
    ]
    assert (await run_probe(get(http.port, httpHeaders=headers), ctx())).success
    sent = http.requests[0].headers
    assert (sent["X-Token"], sent["Host"], sent["User-Agent"]) == ("abc", "example.com", "mine")
    assert "Accept" not in sent


async def test_http_probe_named_port(http: HttpServer) -> None:
    http.routes["/ok"] = (200, {}, b"")
    container = {"name": "app", "ports": [{"name": "web", "containerPort": http.port}]}
    assert (await run_probe(get("web"), ctx(container=container))).success
    assert (await run_probe(get(str(http.port)), ctx(container=container))).success
    unknown = await run_probe(get("nope"), ctx(container=container))
    assert unknown.errored
    assert unknown.message == 'strconv.Atoi: parsing "nope": invalid syntax'


@pytest.mark.parametrize("status", [500, 404, 400])
async def test_http_probe_error_status_fails(http: HttpServer, status: int) -> None:
    http.routes["/ok"] = (status, {}, b"secret body")
    assert await run_probe(get(http.port), ctx()) == ProbeResult(False, f"HTTP probe failed with statuscode: {status}")


async def test_http_probe_follows_same_host_redirects(http: HttpServer) -> None:
    http.routes["/ok"] = (200, {}, b"landed")
    http.routes["/moved"] = (302, {"Location": "/ok"}, b"")
    assert await run_probe(get(http.port, "/moved"), ctx()) == ProbeResult(True, "landed")
    assert [r.target for r in http.requests] == ["/moved", "/ok"]


async def test_http_probe_redirect_to_another_host_is_a_success_warning(http: HttpServer) -> None:
    http.routes["/away"] = (301, {"Location": f"http://localhost:{http.port}/ok"}, b"bye")
    result = await run_probe(get(http.port, "/away"), ctx())
    assert result == ProbeResult(True, "Probe terminated redirects, Response body: bye")
    assert len(http.requests) == 1


async def test_http_probe_stops_after_ten_redirects(http: HttpServer) -> None:
    http.routes["/loop"] = (307, {"Location": "/loop"}, b"")
    result = await run_probe(get(http.port, "/loop"), ctx())
    assert result == ProbeResult(False, 'Get "/loop": stopped after 10 redirects')
    assert len(http.requests) == 10


async def test_http_probe_connection_refused() -> None:
    port = await free_port()
    result = await run_probe(get(port, "/healthz"), ctx())
    expected = f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: connection refused'
    assert result == ProbeResult(False, expected)


async def test_http_probe_timeout(http: HttpServer) -> None:
    result = await run_probe(get(http.port, "/slow"), ctx())
    reason = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    assert result == ProbeResult(False, f'Get "http://127.0.0.1:{http.port}/slow": {reason}')


async def test_http_probe_response_without_body(http: HttpServer) -> None:
    assert await run_probe(get(http.port, "/raw"), ctx()) == ProbeResult(True, "")


async def test_https_probe_skips_verification(https: HttpServer) -> None:
    assert await run_probe(get(https.port, scheme="HTTPS"), ctx()) == ProbeResult(True, "secure")


async def test_https_probe_against_plain_http(http: HttpServer) -> None:
    result = await run_probe(get(http.port, scheme="HTTPS"), ctx())
    expected = f'Get "https://127.0.0.1:{http.port}/ok": http: server gave HTTP response to HTTPS client'
    assert result == ProbeResult(False, expected)


# -- tcpSocket --------------------------------------------------------------------------------------


async def test_tcp_probe(http: HttpServer) -> None:
    assert await run_probe({"tcpSocket": {"port": http.port}}, ctx()) == ProbeResult(True)
    port = await free_port()
    refused = await run_probe({"tcpSocket": {"port": port, "host": "127.0.0.1"}}, ctx())
    assert refused == ProbeResult(False, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


# -- Prober -----------------------------------------------------------------------------------------


@dataclass
class Recorder:
    changes: list[bool] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def start(kind: str, probe: dict[str, Any], fake: ScriptedExec, clock: FakeClock) -> tuple[Prober, Recorder]:
    seen = Recorder()
    prober = Prober(
        kind,  # type: ignore[arg-type]
        {"exec": {"command": ["check"]}, **probe},
        ctx(fake),
        clock=clock,
        on_change=seen.changes.append,
        on_failure=seen.failures.append,
    )
    return prober, seen


async def settled(clock: FakeClock, task: asyncio.Task[None]) -> None:
    """Wait until the prober sleeps until its next attempt (or is done)."""
    waiter = asyncio.create_task(clock.wait_for_sleepers(1))
    try:
        await asyncio.wait([task, waiter], timeout=5, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    assert task.done() or clock.sleepers() > 0


async def tick(clock: FakeClock, task: asyncio.Task[None], seconds: float = 10) -> None:
    """Wait until the prober sleeps (or is done), then move time on by `seconds`."""
    await settled(clock, task)
    await clock.step(seconds)


async def test_readiness_flips_only_at_thresholds() -> None:
    clock = FakeClock()
    fake = ScriptedExec(BAD, OK, OK, BAD, BAD, OK, BAD, BAD, BAD, OK)
    prober, seen = await start("readiness", {"successThreshold": 2}, fake, clock)
    assert prober.state is False
    task = asyncio.create_task(prober.run())
    try:
        states = []
        for _ in range(10):
            await settled(clock, task)
            states.append(prober.state)
            if len(states) < 10:
                await clock.step(10)
        assert states == [False, False, True, True, True, True, True, True, False, False]
        assert seen.changes == [True, False]
        assert seen.failures == ["out\nerr\n"] * 6
        assert not task.done()  # readiness runs until cancelled
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_liveness_failure_reports_once_and_ends_the_loop() -> None:
    clock = FakeClock()
    fake = ScriptedExec(OK, BAD, OK, BAD, BAD)
    prober, seen = await start("liveness", {"failureThreshold": 2, "periodSeconds": 5}, fake, clock)
    assert prober.state is True
    task = asyncio.create_task(prober.run())
    for _ in range(4):
        await tick(clock, task, 5)
    async with asyncio.timeout(5):
        await task
    assert seen.changes == [False]
    assert len(seen.failures) == 3
    assert len(fake.calls) == 5


async def test_initial_delay_and_period_use_the_clock() -> None:
    clock = FakeClock()
    fake = ScriptedExec(OK)
    prober, _ = await start("liveness", {"initialDelaySeconds": 30, "periodSeconds": 7}, fake, clock)
    task = asyncio.create_task(prober.run())
    try:
        await clock.wait_for_sleepers(1)
        assert fake.calls == []
        assert clock.next_deadline() == clock.now() + 30
        await clock.step(30)
        await clock.wait_for_sleepers(1)
        assert len(fake.calls) == 1
        assert clock.next_deadline() == clock.now() + 7
        assert fake.calls[0][1] == 1.0  # timeoutSeconds defaults to 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.parametrize(("script", "changes"), [((BAD, OK), [True]), ((BAD, BAD, BAD), [False])])
async def test_startup_reports_its_outcome_once_and_stops(script: tuple[ExecResult, ...], changes: list[bool]) -> None:
    clock = FakeClock()
    fake = ScriptedExec(*script)
    prober, seen = await start("startup", {}, fake, clock)
    assert prober.state is None
    task = asyncio.create_task(prober.run())
    for _ in script:
        await tick(clock, task)
    async with asyncio.timeout(5):
        await task
    assert seen.changes == changes
    assert len(fake.calls) == len(script)


async def test_errored_attempts_do_not_count() -> None:
    clock = FakeClock()
    fake = ScriptedExec(NotFoundError("x"), NotFoundError("x"), NotFoundError("x"), BAD)
    prober, seen = await start("liveness", {"failureThreshold": 1}, fake, clock)
    task = asyncio.create_task(prober.run())
    for _ in range(4):
        await tick(clock, task)
    async with asyncio.timeout(5):
        await task
    assert seen.changes == [False]
    assert seen.failures == ["out\nerr\n"]


# -- lifecycle hooks --------------------------------------------------------------------------------


async def test_exec_hook_success_and_failure_message() -> None:
    handler = {"exec": {"command": ["sh", "-c", "exit 1"]}}
    assert await run_handler(handler, ctx(ScriptedExec(OK)), timeout=5) is None
    message = await run_handler(handler, ctx(ScriptedExec(BAD)), timeout=5)
    assert message == (
        'Exec lifecycle hook ([sh -c exit 1]) for Container "app" in Pod "web_shop(u1)" failed - error: '
        "command 'sh -c exit 1' exited with 1: err\n, message: \"out\\nerr\\n\""
    )


async def test_http_hook_accepts_any_response_and_reports_transport_errors(http: HttpServer) -> None:
    http.routes["/stop"] = (500, {}, b"")
    assert await run_handler({"httpGet": {"port": http.port, "path": "/stop"}}, ctx(), timeout=5) is None
    assert http.requests[0].headers["User-Agent"] == "kube-lifecycle/1.32"
    port = await free_port()
    message = await run_handler({"httpGet": {"port": port, "path": "/stop"}}, ctx(), timeout=5)
    assert message == (
        'HTTP lifecycle hook (/stop) for Container "app" in Pod "web_shop(u1)" failed - error: '
        f'Get "http://127.0.0.1:{port}/stop": dial tcp 127.0.0.1:{port}: connect: connection refused'
    )


async def test_https_hook_falls_back_to_http(http: HttpServer) -> None:
    http.routes["/stop"] = (200, {}, b"")
    headers = [{"name": "Authorization", "value": "Bearer x"}]
    handler = {"httpGet": {"port": http.port, "path": "/stop", "scheme": "HTTPS", "httpHeaders": headers}}
    assert await run_handler(handler, ctx(), timeout=5) is None
    assert [r.target for r in http.requests][-1] == "/stop"
    assert "Authorization" not in http.requests[-1].headers


async def test_sleep_hook() -> None:
    assert await run_handler({"sleep": {"seconds": 0}}, ctx(), timeout=5) is None
    message = await run_handler({"sleep": {"seconds": 30}}, ctx(), timeout=0.01)
    assert message == (
        'Sleep lifecycle hook (30) for Container "app" in Pod "web_shop(u1)" failed - error: '
        "container terminated before sleep hook finished"
    )


async def test_unknown_handler() -> None:
    assert (await run_handler({}, ctx(), timeout=1) or "").startswith("Cannot run handler: invalid handler")
