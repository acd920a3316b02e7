"""The node agent's streaming server (the kubelet API's streaming part): logs, exec, attach,
port-forward.

Routes (the kubelet's paths; the API server proxies ``pods/{name}/log|exec|attach|portforward`` here)::

    GET /healthz                                        ok
    GET /containerLogs/{namespace}/{pod}/{container}    text/plain, chunked (see `logs`)
    GET /exec/{namespace}/{pod}/{container}?command=…   WebSocket, v5/v4.channel.k8s.io (see `exec`)
    GET /attach/{namespace}/{pod}/{container}           WebSocket, likewise
    GET /portForward/{namespace}/{pod}[?ports=…]        WebSocket: SPDY/3.1+portforward.k8s.io (kubectl)
                                                        or v4.channel.k8s.io (Python clients)
    GET /stats/summary                                  the Summary API (JSON; see `kubelite.agent.statsformat`)
    GET /metrics/resource                               resource metrics (Prometheus text), read by the
                                                        API server's metrics scraper
    GET /metrics                                        the kubelet's own metrics (`agentmetrics`), when given

A request that fails before streaming starts is answered with a `metav1.Status` (code, reason,
message), as the kubelet does; once a WebSocket is open, failures travel on its error channel.
`authorize`, when given, decides every request but ``/healthz`` (``False`` → 403).

`close()` ends every open stream (log follows, exec sessions, port-forwards) and stops listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from kubelite.agent.agentmetrics import AgentMetrics
from kubelite.agent.runtime.interface import (
    ContainerRuntimeError,
    ContainerState,
    InvalidStateError,
    NotFoundError,
    Runtime,
)
from kubelite.agent.stats import StatsCollector
from kubelite.agent.statsformat import RESOURCE_METRICS_CONTENT_TYPE, resource_metrics, summary
from kubelite.agent.streaming import channels
from kubelite.agent.streaming.exec import StreamOptions, run_attach, run_exec
from kubelite.agent.streaming.interface import PodTarget
from kubelite.agent.streaming.logs import parse_log_options, read_logs
from kubelite.agent.streaming.portforward import parse_ports, serve_channel_port_forward, serve_spdy_port_forward
from kubelite.machinery import errors
from kubelite.machinery.errors import ApiError

__all__ = ["KubeletServer"]

log = logging.getLogger(__name__)

WS_MAX_MESSAGE = 16 * 1024 * 1024


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    return value in ("1", "t", "T", "true", "TRUE", "True")


def _status_response(exc: ApiError) -> web.Response:
    return web.Response(body=exc.body(), status=exc.code, content_type="application/json")


class KubeletServer:
    """Serves the streaming endpoints for the containers of `runtime`, resolved through `pods`."""

    def __init__(
        self,
        runtime: Runtime,
        pods: PodTarget,
        *,
        ssl_context: ssl.SSLContext | None,
        host: str,
        port: int,
        authorize: Callable[[web.Request], bool] | None = None,
        stats: StatsCollector | None = None,
        prometheus: AgentMetrics | None = None,
    ) -> None:
        """`prometheus`: serve the kubelet's ``/metrics`` from it (None: no such path)."""
        self.runtime = runtime
        self.prometheus = prometheus
        self.stats = stats if stats is not None else StatsCollector(runtime)
        self.pods = pods
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self.authorize = authorize
        self._runner: web.AppRunner | None = None
        self._active: set[asyncio.Task[object]] = set()
        self.app = self._build_app()

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        runner = web.AppRunner(self.app, shutdown_timeout=2.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1] if runner.addresses else self.port
        return self.port

    async def close(self) -> None:
        for task in list(self._active):
            task.cancel()
        if self._active:
            await asyncio.wait(list(self._active), timeout=5.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- HTTP -------------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        app.router.add_get("/exec/{namespace}/{pod}/{container}", self.exec)
        app.router.add_get("/attach/{namespace}/{pod}/{container}", self.attach)
        app.router.add_get("/portForward/{namespace}/{pod}", self.port_forward)
        app.router.add_get("/stats/summary", self.stats_summary)
        app.router.add_get("/stats/summary/", self.stats_summary)
        app.router.add_get("/metrics/resource", self.metrics_resource)
        if self.prometheus is not None:
            app.router.add_get("/metrics", self.prometheus.handle)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._active.add(task)
        try:
            if request.path != "/healthz" and self.authorize is not None and not self.authorize(request):
                raise ApiError(403, "Forbidden", f"Forbidden (path={request.path})")
            return await handler(request)
        except ApiError as exc:
            return _status_response(exc)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # supervision point: one broken stream must not take the server down
            log.exception("kubelet request failed", extra={"path": request.path})
            return _status_response(errors.internal(str(exc)))
        finally:
            self._active.discard(task)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _target(self, request: web.Request) -> tuple[str, str, str]:
        """(namespace, pod, container) from the path; the container may also come from the query
        (``?container=``), so these handlers can be mounted under the API's pod subresource paths."""
        info = request.match_info
        return info["namespace"], info["pod"], info.get("container") or request.query.get("container", "")

    # -- stats ------------------------------------------------------------------------------------

    async def stats_summary(self, request: web.Request) -> web.Response:
        snapshot = await self.stats.snapshot()
        return web.Response(body=orjson.dumps(summary(snapshot)), content_type="application/json")

    async def metrics_resource(self, request: web.Request) -> web.Response:
        snapshot = await self.stats.snapshot()
        response = web.Response(body=resource_metrics(snapshot).encode())
        response.headers["Content-Type"] = RESOURCE_METRICS_CONTENT_TYPE
        return response

    # -- logs -------------------------------------------------------------------------------------

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        namespace, pod, container = self._target(request)
        try:
            options = parse_log_options(request.query)
        except ValueError as exc:
            raise errors.bad_request(str(exc)) from None
        container_id = self.pods.find_container(namespace, pod, container, previous=options.previous)
        if container_id is None:
            if options.previous:
                message = f'previous terminated container "{container}" in pod "{pod}" not found'
            else:
                message = f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating'
            raise errors.bad_request(message)
        try:
            path = self.runtime.container_log_path(container_id)
        except NotFoundError:
            raise errors.bad_request(
                f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating'
            ) from None
        until: asyncio.Task[object] | None = None
        if options.follow and not options.previous:
            until = asyncio.ensure_future(self._container_exit(container_id))
        elif options.follow:
            options = dataclasses.replace(options, follow=False)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            async for chunk in read_logs(path, options, until=until):
                await response.write(chunk)
        except ConnectionResetError:
            return response
        finally:
            if until is not None:
                until.cancel()
        await response.write_eof()
        return response

    async def _container_exit(self, container_id: str) -> None:
        with contextlib.suppress(ContainerRuntimeError):
            await self.runtime.wait_container(container_id)

    # -- exec / attach ------------------------------------------------------------------------------

    def _stream_options(self, request: web.Request) -> StreamOptions:
        options = StreamOptions(
            stdin=_flag(request, "stdin"),
            stdout=_flag(request, "stdout", True) if "output" not in request.query else _flag(request, "output"),
            stderr=_flag(request, "stderr", True),
            tty=_flag(request, "tty"),
        )
        if not (options.stdin or options.stdout or options.stderr or options.tty):
            raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
        return options

    def _running_container(self, namespace: str, pod: str, container: str) -> str:
        container_id = self.pods.find_container(namespace, pod, container)
        if container_id is None:
            raise errors.bad_request(f'container not found ("{container}")')
        return container_id

    async def exec(self, request: web.Request) -> web.StreamResponse:
        namespace, pod, container = self._target(request)
        command = request.query.getall("command", [])
        if not command:
            raise errors.bad_request("you must specify at least one command for the container")
        options = self._stream_options(request)
        container_id = self._running_container(namespace, pod, container)
        try:
            process = await self.runtime.exec(container_id, command, stdin=options.stdin, tty=options.tty)
        except (NotFoundError, InvalidStateError):  # gone, or not running (any more)
            raise errors.bad_request(f'container not found ("{container}")') from None
        except ContainerRuntimeError as exc:
            raise errors.internal(f"error executing command in container: {exc}") from None
        ws = web.WebSocketResponse(protocols=channels.EXEC_PROTOCOLS, max_msg_size=WS_MAX_MESSAGE)
        try:
            await ws.prepare(request)
        except BaseException:
            await process.aclose()
            raise
        await run_exec(ws, process, command=command, options=options)
        return ws

    async def attach(self, request: web.Request) -> web.StreamResponse:
        namespace, pod, container = self._target(request)
        options = self._stream_options(request)
        container_id = self._running_container(namespace, pod, container)
        try:
            status = await self.runtime.container_status(container_id)
            path = self.runtime.container_log_path(container_id)
        except NotFoundError:
            raise errors.bad_request(f'container not found ("{container}")') from None
        if status.state != ContainerState.RUNNING:
            raise errors.bad_request(f'container not found ("{container}")')
        stdin = await self.runtime.attach_stdin(container_id) if options.stdin else None
        ws = web.WebSocketResponse(protocols=channels.EXEC_PROTOCOLS, max_msg_size=WS_MAX_MESSAGE)
        try:
            await ws.prepare(request)
        except BaseException:
            if stdin is not None:
                stdin.close()
            raise
        exit_task: asyncio.Task[None] = asyncio.ensure_future(self._container_exit(container_id))
        await run_attach(ws, path, container_exit=exit_task, options=options, stdin=stdin)
        return ws

    # -- port-forward -------------------------------------------------------------------------------

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        namespace, pod, _ = self._target(request)
        try:
            ports = parse_ports(request.query.getall("ports", []))
        except ValueError as exc:
            raise errors.bad_request(str(exc)) from None
        ws = web.WebSocketResponse(protocols=channels.PORT_FORWARD_PROTOCOLS, max_msg_size=WS_MAX_MESSAGE)
        ready = ws.can_prepare(request)
        if not ready.ok:
            raise errors.bad_request("port-forward needs a WebSocket upgrade")
        if ready.protocol == channels.SPDY_PORT_FORWARD:
            await ws.prepare(request)
            await serve_spdy_port_forward(ws, self.pods, namespace, pod)
            return ws
        if not ports:
            raise errors.bad_request('query parameter "port" or "ports" is required')
        await ws.prepare(request)
        await serve_channel_port_forward(ws, self.pods, namespace, pod, ports)
        return ws
