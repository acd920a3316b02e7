"""Container probes: one attempt (`run_probe`) and the thresholded loop around it (`Prober`).

`run_probe` runs one ``exec``, ``httpGet``, ``tcpSocket`` or ``grpc`` check within ``timeoutSeconds``
(default 1) and answers as the kubelet's prober does:

* exec: exit code 0 is success; the message is the command's output (stdout then stderr, at most
  10 KiB); a timeout fails with ``command "<cmd>" timed out``.  ``$(VAR)`` in the command expands
  against the container's literal ``env`` values only (as upstream: no envFrom, no valueFrom).
* httpGet: 200–399 succeed (a redirect to another host ends the probe successfully with the 3xx,
  upstream's "warning"); otherwise ``HTTP probe failed with statuscode: <code>``; no response fails
  with Go's error text (see `kubelite.agent.pods.httpget`).
* tcpSocket: a connection that opens succeeds; else ``dial tcp <addr>: connect: connection refused``
  or ``dial tcp <addr>: i/o timeout``.
* grpc: fails with ``grpc probe not supported`` (no gRPC library in this build).

A probe that cannot run at all (a named port the container does not declare, the runtime's exec
failing) returns ``errored=True``: as in the kubelet the attempt is thrown away; it counts neither
as success nor failure.

`Prober` contracts (as the kubelet's probe worker): the first attempt after ``initialDelaySeconds``,
then one every ``periodSeconds`` (default 10) on the injected clock.  The state starts false for
readiness, true for liveness and unknown (None) for startup; it changes only after
``successThreshold`` consecutive successes / ``failureThreshold`` (default 3) consecutive failures,
and `on_change` is called exactly when it changes.  `on_failure` gets each failed attempt's message.
`run()` returns once a liveness or startup probe has failed (the container will be restarted with a
new Prober) or a startup probe has succeeded (it is not probed again); readiness runs until cancelled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from kubelite.agent.pods.env import expand, mapping_for
from kubelite.agent.pods.httpget import (
    HttpGetError,
    close_stream,
    errno_text,
    http_get,
    join_host_port,
    probe_url,
    resolve_port,
)
from kubelite.agent.runtime.interface import ContainerRuntimeError, ExecResult
from kubelite.client.clock import Clock

log = logging.getLogger(__name__)

__all__ = ["ProbeContext", "ProbeResult", "Prober", "exec_command", "go_quote", "run_probe"]

MAX_OUTPUT = 10 * 1024
DEFAULT_TIMEOUT = 1
DEFAULT_PERIOD = 10
DEFAULT_FAILURE_THRESHOLD = 3
GRPC_UNSUPPORTED = "grpc probe not supported"

ProbeKind = Literal["liveness", "readiness", "startup"]


@dataclass
class ProbeResult:
    """One attempt.  `errored`: the probe could not run; the attempt does not count."""

    success: bool
    message: str = ""
    errored: bool = False


@dataclass
class ProbeContext:
    """What probes and hooks of one container attempt need.  `exec_sync(command, timeout)` runs in
    the container and raises TimeoutError when the command outlives `timeout`.  `pod` (optional)
    names the pod in lifecycle hook messages."""

    pod_ip: str
    container: dict[str, Any]
    exec_sync: Callable[[list[str], float], Awaitable[ExecResult]]
    pod: dict[str, Any] | None = None


def go_quote(text: str) -> str:
    """Close to Go's %q for the strings shown here."""
    return json.dumps(text, ensure_ascii=False)


def exec_command(command: list[Any], container: dict[str, Any]) -> list[str]:
    """``$(VAR)`` in a probe command, against the container's literal env values (upstream's
    ExpandContainerCommandOnlyStatic: a valueFrom variable expands to the empty string)."""
    static = {str(v.get("name")): str(v.get("value") or "") for v in container.get("env") or ()}
    lookup = mapping_for(static)
    return [expand(str(part), lookup) for part in command]


def _output(result: ExecResult) -> str:
    return (result.stdout + result.stderr)[:MAX_OUTPUT].decode("utf-8", errors="replace")


async def _exec_probe(action: dict[str, Any], ctx: ProbeContext, timeout: float) -> ProbeResult:
    command = exec_command(list(action.get("command") or ()), ctx.container)
    try:
        async with asyncio.timeout(timeout + 5):  # a guard: exec_sync enforces `timeout` itself
            result = await ctx.exec_sync(command, timeout)
    except TimeoutError:
        return ProbeResult(False, f"command {go_quote(' '.join(command))} timed out")
    except ContainerRuntimeError as exc:
        return ProbeResult(False, str(exc), errored=True)
    return ProbeResult(result.exit_code == 0, _output(result))


async def _http_probe(action: dict[str, Any], ctx: ProbeContext, timeout: float) -> ProbeResult:
    try:
        url = probe_url(action, ctx.container, ctx.pod_ip)
    except ValueError as exc:
        return ProbeResult(False, str(exc), errored=True)
    try:
        response = await http_get(url, action.get("httpHeaders") or (), timeout=timeout, purpose="probe")
    except HttpGetError as exc:
        return ProbeResult(False, exc.message)
    if 200 <= response.status < 300:
        return ProbeResult(True, response.body)
    if 300 <= response.status < 400:
        return ProbeResult(True, f"Probe terminated redirects, Response body: {response.body}")
    return ProbeResult(False, f"HTTP probe failed with statuscode: {response.status}")


async def _tcp_probe(action: dict[str, Any], ctx: ProbeContext, timeout: float) -> ProbeResult:
    try:
        port = resolve_port(action.get("port"), ctx.container)
    except ValueError as exc:
        return ProbeResult(False, str(exc), errored=True)
    host = str(action.get("host") or ctx.pod_ip)
    address = join_host_port(host, port)
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return ProbeResult(False, f"dial tcp {address}: i/o timeout")
    except socket.gaierror:
        return ProbeResult(False, f"dial tcp: lookup {host}: no such host")
    except OSError as exc:
        return ProbeResult(False, f"dial tcp {address}: connect: {errno_text(exc)}")
    await close_stream(writer)
    return ProbeResult(True)


async def run_probe(probe: dict[str, Any], ctx: ProbeContext) -> ProbeResult:
    """One attempt of `probe` (see the module docstring)."""
    timeout = float(probe.get("timeoutSeconds") or DEFAULT_TIMEOUT)
    if probe.get("exec") is not None:
        return await _exec_probe(probe["exec"], ctx, timeout)
    if probe.get("httpGet") is not None:
        return await _http_probe(probe["httpGet"], ctx, timeout)
    if probe.get("tcpSocket") is not None:
        return await _tcp_probe(probe["tcpSocket"], ctx, timeout)
    if probe.get("grpc") is not None:
        return ProbeResult(False, GRPC_UNSUPPORTED)
    return ProbeResult(False, f"missing probe handler for container {ctx.container.get('name', '')}", errored=True)


class Prober:
    """The probe loop of one (container attempt, probe kind); see the module docstring."""

    def __init__(
        self,
        kind: ProbeKind,
        probe: dict[str, Any],
        ctx: ProbeContext,
        *,
        clock: Clock,
        on_change: Callable[[bool], None],
        on_failure: Callable[[str], None],
    ) -> None:
        self.kind, self.probe, self.ctx = kind, probe, ctx
        self._clock, self._on_change, self._on_failure = clock, on_change, on_failure
        self.state: bool | None = {"readiness": False, "liveness": True, "startup": None}[kind]
        self._last: bool | None = None
        self._run = 0

    def _setting(self, name: str, default: int) -> int:
        value = self.probe.get(name)
        return int(value) if isinstance(value, int) and value > 0 else default

    async def run(self) -> None:
        """Probe until this probe's job is done (see the module docstring); cancel to stop early."""
        delay = self.probe.get("initialDelaySeconds") or 0
        if delay > 0:
            await self._clock.sleep(float(delay))
        period = float(self._setting("periodSeconds", DEFAULT_PERIOD))
        while True:
            began = self._clock.now()
            result = await run_probe(self.probe, self.ctx)
            if self.record(result):
                return
            await self._clock.sleep(max(0.0, period - (self._clock.now() - began)))

    def record(self, result: ProbeResult) -> bool:
        """Count one attempt; True when the loop is done."""
        if result.errored:
            log.info("probe errored", extra={"kind": self.kind, "error": result.message})
            return False
        if not result.success:
            self._on_failure(result.message)
        if result.success == self._last:
            self._run += 1
        else:
            self._last, self._run = result.success, 1
        if result.success:
            threshold = self._setting("successThreshold", 1)
        else:
            threshold = self._setting("failureThreshold", DEFAULT_FAILURE_THRESHOLD)
        if self._run < threshold:
            return False
        if self.state != result.success:
            self.state = result.success
            self._on_change(result.success)
        if self.kind == "readiness":
            return False
        return self.kind == "startup" or not result.success
