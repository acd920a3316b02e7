"""`pods/log`, `pods/exec`, `pods/attach`, `pods/portforward`: proxied to the pod's node agent.

The API server checks the request as upstream's pod registry does (the pod, its container, its node),
finds the node's kubelet endpoint (`status.addresses` InternalIP, then ExternalIP, then Hostname;
port `status.daemonEndpoints.kubeletEndpoint.Port`, default 10250) and forwards:

* `log`: a GET of `/containerLogs/{ns}/{pod}/{container}`, the text body streamed back as it arrives
  (`follow`), until the kubelet ends it or the client goes away.
* `exec`/`attach`/`portforward`: a message-level WebSocket relay.  The kubelet WebSocket is opened first,
  offering the client's subprotocols; a refusal (non-101) reaches the client as an ordinary error response
  (a kubelet `Status` body passes through unchanged).  Only then is the client's upgrade accepted, with
  exactly the subprotocol the kubelet chose, and binary/text messages are relayed unchanged both ways
  until one side closes; its close code goes to the other side and both are closed.

kubectl falls back to raw SPDY (a POST with `Upgrade: SPDY/3.1`) when the WebSocket handshake fails for
any reason; kubelite does not serve raw SPDY.  Such a request gets the refusal the WebSocket attempt just
got (remembered briefly, so kubectl prints the real reason), else a 400 naming the supported protocols.

TLS: `kubelet_client_context` builds the client context (cluster CA, client certificate, hostname check
against the serving certificate's IP/DNS SANs); without a context the kubelet is reached over plain HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import tempfile
import time
from collections import OrderedDict
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import WSCloseCode, WSMsgType, web
from yarl import URL

from kubelite.apiserver.objects import ObjectStore
from kubelite.machinery import errors
from kubelite.machinery.errors import ApiError, Cause
from kubelite.machinery.meta import parse_time
from kubelite.machinery.resources import ResourceRegistry

log = logging.getLogger(__name__)

DEFAULT_KUBELET_PORT = 10250
ADDRESS_PREFERENCE = ("InternalIP", "ExternalIP", "Hostname")
STREAMING_SUBRESOURCES = ("log", "exec", "attach", "portforward")
MAX_ERROR_BODY_BYTES = 64 * 1024
CLIENT_CHECK_SECONDS = 2.0  # how often an idle `follow` stream looks whether its client is still there
REFUSAL_MEMORY_SECONDS = 30.0
REFUSAL_MEMORY_SIZE = 256
CONNECT_TIMEOUT_SECONDS = 10.0
UNSENDABLE_CLOSE_CODES = (1005, 1006, 1015)
SPDY_MESSAGE = (
    "Upgrade request required: kubelite serves pods/exec, pods/attach and pods/portforward over WebSocket only "
    "(subprotocols v5.channel.k8s.io, v4.channel.k8s.io and SPDY/3.1+portforward.k8s.io), not raw SPDY; "
    "kubectl 1.31 and newer use WebSocket unless KUBECTL_REMOTE_COMMAND_WEBSOCKETS or "
    "KUBECTL_PORT_FORWARD_WEBSOCKETS is set to false"
)

# the body of a refused kubelet handshake, captured while aiohttp still holds the response (see _TRACE)
_refusals: ContextVar[list[tuple[int, bytes, str]] | None] = ContextVar("kubelet_handshake_refusals", default=None)


def kubelet_client_context(ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """Client context for kubelet endpoints: trusts only the cluster CA, checks the host name/IP against the
    serving certificate, presents the API server's kubelet-client certificate; ALPN http/1.1 (upgrades)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem.decode("ascii"))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    # the ssl module loads key material only from files: a private directory, removed at once
    with tempfile.TemporaryDirectory(prefix="kubelite-kubelet-client-") as directory:
        cert, key = Path(directory, "client.crt"), Path(directory, "client.key")
        cert.write_bytes(cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        context.load_cert_chain(cert, key)
    return context


# -- pure checks ----------------------------------------------------------------------------------


def choose_container(pod: dict[str, Any], container: str) -> str:
    """Upstream's validateContainer: the named container must exist (any kind); without a name the pod's only
    container is used."""
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    if not container:
        containers = spec.get("containers") or []
        if len(containers) == 1:
            return str(containers[0].get("name", ""))
        if not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        names = " ".join(all_container_names(spec))
        raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: [{names}]")
    if container not in all_container_names(spec):
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


def all_container_names(spec: dict[str, Any]) -> list[str]:
    """Init, regular, then ephemeral containers: upstream's VisitContainers order."""
    return [
        str(c.get("name", ""))
        for kind in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(kind) or []
    ]


def kubelet_endpoint(node: dict[str, Any]) -> tuple[str, int]:
    """(host, port) of a node's kubelet endpoint; 500 (as upstream) when the node publishes no usable address."""
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    host = ""
    for kind in ADDRESS_PREFERENCE:
        host = next((str(a.get("address")) for a in addresses if a.get("type") == kind and a.get("address")), "")
        if host:
            break
    if not host:
        raise errors.internal(f"no preferred addresses found; known addresses: {_known(addresses)}")
    endpoint = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
    port = endpoint.get("Port") or DEFAULT_KUBELET_PORT
    return host, int(port)


def _known(addresses: list[dict[str, Any]]) -> str:
    return "[" + " ".join(f"{{{a.get('type')} {a.get('address')}}}" for a in addresses) + "]"


def log_params(query: Any, name: str) -> list[tuple[str, str]]:
    """PodLogOptions from the query, validated as upstream (422 PodLogOptions), in the kubelet's form."""
    params: list[tuple[str, str]] = []
    for flag in ("follow", "previous", "timestamps"):
        if _bool_param(query, flag):
            params.append((flag, "true"))
    numbers = {key: _int_param(query, key) for key in ("sinceSeconds", "tailLines", "limitBytes")}
    since_time = query.get("sinceTime") or ""
    if since_time:
        try:
            parse_time(since_time)
        except ValueError:
            raise errors.bad_request(f'invalid value for sinceTime: "{since_time}"') from None
    causes = []
    if numbers["tailLines"] is not None and numbers["tailLines"] < 0:
        causes.append(Cause("FieldValueInvalid", f"Invalid value: {numbers['tailLines']}: must be greater than or "
                                                 "equal to 0", "tailLines"))
    if numbers["limitBytes"] is not None and numbers["limitBytes"] < 1:
        causes.append(Cause("FieldValueInvalid", f"Invalid value: {numbers['limitBytes']}: must be greater than 0",
                            "limitBytes"))
    if numbers["sinceSeconds"] is not None and since_time:
        causes.append(Cause("FieldValueForbidden", "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be "
                                                   "specified"))
    elif numbers["sinceSeconds"] is not None and numbers["sinceSeconds"] < 1:
        causes.append(Cause("FieldValueInvalid", f"Invalid value: {numbers['sinceSeconds']}: must be greater than 0",
                            "sinceSeconds"))
    if causes:
        raise errors.invalid("PodLogOptions", "", name, causes)
    for key in ("sinceSeconds", "tailLines", "limitBytes"):
        if numbers[key] is not None:
            params.append((key, str(numbers[key])))
    if since_time:
        params.append(("sinceTime", since_time))
    return params


def stream_params(subresource: str, query: Any) -> list[tuple[str, str]]:
    """exec/attach options as the kubelet reads them (`stdin=1`, `command=` repeated); port-forward's `ports`
    passed as sent and also as upstream's comma-joined `port`."""
    params: list[tuple[str, str]] = []
    if subresource in ("exec", "attach"):
        for flag in ("stdin", "stdout", "stderr", "tty"):
            if _bool_param(query, flag):
                params.append((flag, "1"))
        if subresource == "exec":
            params.extend(("command", c) for c in query.getall("command", []))
        return params
    ports: list[str] = []
    for value in query.getall("ports", []):
        params.append(("ports", value))
        for part in value.split(","):
            if not part.strip().isdigit() or not 0 < int(part) < 65536:
                raise errors.bad_request(f'invalid port "{part}": must be a number between 1 and 65535')
            ports.append(str(int(part)))
    if ports:
        params.append(("port", ",".join(ports)))
    return params


def _bool_param(query: Any, key: str) -> bool:
    value = query.get(key)
    if value is None or value == "":
        return False
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise errors.bad_request(f'invalid value for {key}: "{value}"')


def _int_param(query: Any, key: str) -> int | None:
    value = query.get(key)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f'invalid value for {key}: "{value}"') from None


def refusal_response(status: int, body: bytes, content_type: str = "") -> web.Response:
    """A kubelet's non-success answer for the client: a `Status` body passes through as it is; plain text
    becomes a Status as upstream's response checker makes it (400 → BadRequest, 500 → InternalError)."""
    decoded: Any = None
    with contextlib.suppress(ValueError):
        decoded = orjson.loads(body)
    if isinstance(decoded, dict) and decoded.get("kind") == "Status":
        return web.Response(body=body, status=status, content_type="application/json")
    text = body.decode("utf-8", "replace").strip()
    if status == 400:
        error = errors.bad_request(text)
    elif status == 500:
        error = errors.internal(text)
    else:
        reason = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 503: "ServiceUnavailable"}
        error = ApiError(status, reason.get(status, ""), text or f"the server responded with the status code {status} "
                         "but did not return more information")
    return web.Response(body=error.body(), status=error.code, content_type="application/json")


# -- the proxy ------------------------------------------------------------------------------------


async def _keep_refusal_body(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams
) -> None:
    """aiohttp drops a refused handshake's body; read it here, while the response is still open."""
    sink = _refusals.get()
    response = params.response
    if sink is None or response.status == 101:
        return
    body = b""
    while len(body) < MAX_ERROR_BODY_BYTES:
        chunk = await response.content.read(MAX_ERROR_BODY_BYTES - len(body))
        if not chunk:
            break
        body += chunk
    sink.append((response.status, body, response.headers.get("Content-Type", "")))


class KubeletProxy:
    """Serves the streaming pod subresources.  One HTTP session (created on first use, closed by `close`)."""

    def __init__(self, store: ObjectStore, registry: ResourceRegistry, ssl_context: ssl.SSLContext | None) -> None:
        self.store = store
        pods, nodes = registry.get("", "v1", "pods"), registry.get("", "v1", "nodes")
        assert pods is not None and nodes is not None
        self.pods, self.nodes = pods, nodes
        self.ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._recent_refusals: OrderedDict[tuple[str, str], tuple[float, int, bytes]] = OrderedDict()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            trace = aiohttp.TraceConfig()
            trace.on_request_end.append(_keep_refusal_body)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context is not None else False),
                timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_SECONDS),
                trace_configs=[trace],
            )
        return self._session

    async def serve(self, request: web.Request, subresource: str, namespace: str, name: str) -> web.StreamResponse:
        method = request.method
        allowed = ("GET",) if subresource == "log" else ("GET", "POST")
        if method not in allowed:
            raise errors.method_not_supported(f"pods/{subresource}", "", method.lower())
        pod = self.store.get(self.pods, namespace, name)
        if subresource == "log":
            return await self._log(request, pod, namespace, name)
        return await self._stream(request, subresource, pod, namespace, name)

    def _location(self, pod: dict[str, Any], path: str) -> URL:
        node_name = (pod.get("spec") or {}).get("nodeName")
        host, port = kubelet_endpoint(self.store.get(self.nodes, None, node_name))
        scheme = "https" if self.ssl_context is not None else "http"
        return URL.build(scheme=scheme, host=host, port=port, path=path)

    # -- logs -------------------------------------------------------------------------------------

    async def _log(self, request: web.Request, pod: dict[str, Any], namespace: str, name: str) -> web.StreamResponse:
        params = log_params(request.query, name)
        container = choose_container(pod, request.query.get("container", ""))
        if not (pod.get("spec") or {}).get("nodeName"):
            # upstream answers an empty log for a pod no node runs yet
            return web.Response(body=b"", content_type="text/plain")
        url = self._location(pod, f"/containerLogs/{namespace}/{name}/{container}")
        try:
            upstream = await self._http().get(url, params=params)
        except (aiohttp.ClientError, OSError) as exc:
            raise _dial_error(exc) from None
        async with upstream:
            if upstream.status != 200:
                body = await upstream.content.read(MAX_ERROR_BODY_BYTES)
                return refusal_response(upstream.status, body, upstream.headers.get("Content-Type", ""))
            response = web.StreamResponse(status=200)
            response.content_type = "text/plain"
            response.enable_chunked_encoding()
            try:
                await response.prepare(request)
                while chunk := await _next_chunk(upstream, request):
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientPayloadError):
                pass  # the client went away, or the kubelet broke the stream: nothing left to tell anyone
            return response

    # -- exec / attach / portforward --------------------------------------------------------------

    async def _stream(
        self, request: web.Request, subresource: str, pod: dict[str, Any], namespace: str, name: str
    ) -> web.StreamResponse:
        container = ""
        if subresource in ("exec", "attach"):
            container = choose_container(pod, request.query.get("container", ""))
        if not (pod.get("spec") or {}).get("nodeName"):
            raise errors.bad_request(f"pod {name} does not have a host assigned")
        params = stream_params(subresource, request.query)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            remembered = self._recall_refusal(request)
            if remembered is not None:
                return remembered
            raise errors.bad_request(SPDY_MESSAGE)
        path = (
            f"/portForward/{namespace}/{name}"
            if subresource == "portforward"
            else f"/{subresource}/{namespace}/{name}/{container}"
        )
        url = self._location(pod, path)
        offered = [p.strip() for p in request.headers.getall("Sec-WebSocket-Protocol", []) for p in p.split(",")]
        offered = [p for p in offered if p]
        refusals: list[tuple[int, bytes, str]] = []
        token = _refusals.set(refusals)
        try:
            kubelet = await self._http().ws_connect(
                url,
                params=params,
                protocols=offered,
                autoclose=False,
                autoping=True,
                max_msg_size=0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CONNECT_TIMEOUT_SECONDS),
            )
        except aiohttp.WSServerHandshakeError as exc:
            status, body, content_type = refusals[0] if refusals else (exc.status, b"", "")
            refused = refusal_response(status, body or exc.message.encode(), content_type)
            self._remember_refusal(request, refused)
            return refused
        except (aiohttp.ClientError, OSError) as exc:
            raise _dial_error(exc) from None
        finally:
            _refusals.reset(token)
        try:
            client = web.WebSocketResponse(
                protocols=[kubelet.protocol] if kubelet.protocol else (),
                autoclose=False,
                autoping=True,
                max_msg_size=0,
                compress=False,
            )
            await client.prepare(request)
            try:
                await relay(client, kubelet)
            finally:
                with contextlib.suppress(Exception):
                    await client.close(code=WSCloseCode.GOING_AWAY)
        finally:
            await kubelet.close(code=WSCloseCode.GOING_AWAY)
        return client

    def _remember_refusal(self, request: web.Request, response: web.Response) -> None:
        body = response.body if isinstance(response.body, bytes) else b""
        self._recent_refusals[(request.path, request.query_string)] = (time.monotonic(), response.status, body)
        while len(self._recent_refusals) > REFUSAL_MEMORY_SIZE:
            self._recent_refusals.popitem(last=False)

    def _recall_refusal(self, request: web.Request) -> web.Response | None:
        found = self._recent_refusals.pop((request.path, request.query_string), None)
        if found is None or time.monotonic() - found[0] > REFUSAL_MEMORY_SECONDS:
            return None
        return web.Response(body=found[2], status=found[1], content_type="application/json")


async def _next_chunk(upstream: aiohttp.ClientResponse, request: web.Request) -> bytes:
    """The next bytes of the kubelet's body, b"" at its end or once the client has gone away."""
    while True:
        try:
            async with asyncio.timeout(CLIENT_CHECK_SECONDS):
                return await upstream.content.readany()
        except TimeoutError:
            transport = request.transport
            if transport is None or transport.is_closing():
                return b""


async def relay(client: web.WebSocketResponse, kubelet: aiohttp.ClientWebSocketResponse) -> None:
    """Relay messages both ways until one side closes; its close code and reason go to the other side.

    Both sockets must have autoclose off.  Returns once both are closed; no task outlives it."""
    finished = False

    async def finish(first: Any, second: Any, code: int, reason: str) -> None:
        nonlocal finished
        if finished:
            return
        finished = True
        message = reason.encode()
        with contextlib.suppress(Exception):
            await first.close(code=code, message=message)
        with contextlib.suppress(Exception):
            await second.close(code=code, message=message)

    async def pump(source: Any, sink: Any) -> None:
        while True:
            msg = await source.receive()
            try:
                if msg.type is WSMsgType.BINARY:
                    await sink.send_bytes(msg.data)
                    continue
                if msg.type is WSMsgType.TEXT:
                    await sink.send_str(msg.data)
                    continue
            except (ConnectionResetError, RuntimeError):
                await finish(source, sink, WSCloseCode.GOING_AWAY, "")
                return
            if msg.type in (WSMsgType.PING, WSMsgType.PONG):
                continue
            if msg.type is WSMsgType.CLOSE:
                code = msg.data if isinstance(msg.data, int) and msg.data not in UNSENDABLE_CLOSE_CODES else 1000
                await finish(sink, source, code, msg.extra or "")
            elif msg.type is WSMsgType.CLOSING:
                pass  # the other pump is closing this socket
            else:  # CLOSED (connection lost) or ERROR
                code = WSCloseCode.INTERNAL_ERROR if msg.type is WSMsgType.ERROR else WSCloseCode.GOING_AWAY
                await finish(sink, source, code, "")
            return

    async with asyncio.TaskGroup() as group:
        group.create_task(pump(client, kubelet))
        group.create_task(pump(kubelet, client))


def _dial_error(exc: BaseException) -> ApiError:
    return errors.internal(f"error dialing backend: {exc}")


__all__ = [
    "STREAMING_SUBRESOURCES",
    "KubeletProxy",
    "all_container_names",
    "choose_container",
    "kubelet_client_context",
    "kubelet_endpoint",
    "log_params",
    "refusal_response",
    "relay",
    "stream_params",
]
