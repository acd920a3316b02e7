"""`HttpClient`: the `Client` protocol over HTTPS with aiohttp, configured from a kubeconfig.

One `aiohttp.ClientSession` (a pooled, keep-alive connector) per client, created on first use inside
the running loop and closed by `close()` / `async with`.  Bodies are JSON through orjson.  Failed
responses become `ApiError` built from the server's Status body, transport failures
`TransportError`; both are translated here and nowhere else (see `kubelite.client.errors`).

A watch is one streaming GET read as newline-delimited JSON.  Every open watch holds one pooled
connection until its iterator ends, is closed, or its task is cancelled; cancellation closes the
connection at once.  The read timeout of a watch is its `timeout_seconds` plus a margin, so a dead
connection is noticed even when the server never ends the stream.
"""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from kubelite.client.errors import TransportError, api_error_from_response, api_error_from_status, is_status
from kubelite.client.interface import PATCH_CONTENT_TYPES, PatchType, PropagationPolicy, WatchEvent, require_namespace
from kubelite.client.kubeconfig import KubeConfig, KubeConfigError, kubeconfig_from_dict, load_kubeconfig
from kubelite.machinery.errors import ApiError
from kubelite.machinery.resources import Resource

DEFAULT_REQUEST_TIMEOUT = 60.0
WATCH_READ_MARGIN = 30.0  # seconds a watch may stay silent beyond its timeoutSeconds
MAX_WATCH_EVENT_BYTES = 64 * 1024 * 1024  # one event larger than this is refused (bounded buffer)
USER_AGENT = "kubelite/0.1"


def resource_path(
    resource: Resource, namespace: str | None = None, name: str | None = None, subresource: str | None = None
) -> str:
    """`/api/v1/namespaces/ns/pods/name/status`: the URL path of a collection, object or subresource."""
    parts = [f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"]
    if resource.namespaced and namespace:
        parts += ["namespaces", quote(namespace, safe="")]
    parts.append(resource.plural)
    if name:
        parts.append(quote(name, safe=""))
        if subresource:
            parts.append(quote(subresource, safe=""))
    elif subresource:
        raise ValueError("a subresource needs an object name")
    return "/".join(parts)


class HttpClient:
    """The API over HTTPS.  Safe for any number of concurrent calls from tasks of one event loop."""

    def __init__(
        self,
        config: KubeConfig,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_connections: int = 100,
        user_agent: str = USER_AGENT,
    ) -> None:
        """Builds the TLS context (blocking: it may write the client key to a private temp file for
        the `ssl` module and delete it at once); the HTTP session is created on first use."""
        self.config = config
        self._base = config.server.rstrip("/")
        self._ssl = _ssl_context(config) if self._base.startswith("https:") else None
        self._request_timeout = request_timeout
        self._max_connections = max_connections
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        if config.token:
            self._headers["Authorization"] = f"Bearer {config.token}"
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @classmethod
    def from_kubeconfig(
        cls, source: str | Path | dict[str, Any] | KubeConfig, *, context: str | None = None, **options: Any
    ) -> HttpClient:
        """From a kubeconfig path, a parsed kubeconfig dict, or a `KubeConfig` (blocking file I/O)."""
        if isinstance(source, KubeConfig):
            config = source
        elif isinstance(source, dict):
            config = kubeconfig_from_dict(source, context=context)
        else:
            config = load_kubeconfig(source, context=context)
        return cls(config, **options)

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every pooled connection; open watches end with `TransportError`.  Idempotent."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # -- verbs ------------------------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        return await self._json("GET", resource_path(resource, require_namespace(resource, namespace), name))

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        params = _params(
            labelSelector=label_selector,
            fieldSelector=field_selector,
            limit=limit,
            resourceVersion=resource_version,
            **{"continue": continue_token},
        )
        return await self._json("GET", resource_path(resource, namespace), params=params)

    async def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[WatchEvent]:
        params = _params(
            watch=True,
            resourceVersion=resource_version,
            labelSelector=label_selector,
            fieldSelector=field_selector,
            timeoutSeconds=timeout_seconds,
            allowWatchBookmarks=True if allow_bookmarks else None,
        )
        read_timeout = timeout_seconds + WATCH_READ_MARGIN if timeout_seconds else None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._request_timeout, sock_read=read_timeout)
        path = resource_path(resource, namespace)
        try:
            async with self._open().get(self._url(path), params=params, timeout=timeout, **self._tls()) as resp:
                if resp.status >= 400:
                    raise _failure(resp.status, await resp.read())
                splitter = _LineSplitter()
                async for chunk in resp.content.iter_any():
                    for line in splitter.feed(chunk):
                        yield _watch_event(line)
                tail = splitter.rest()
                if tail:
                    yield _watch_event(tail)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"watch {path}: {_describe(exc)}") from exc

    async def create(
        self, resource: Resource, obj: dict[str, Any], namespace: str | None = None, *, dry_run: bool = False
    ) -> dict[str, Any]:
        path = resource_path(resource, require_namespace(resource, namespace, obj))
        return await self._json("POST", path, body=obj, params=_params(dryRun="All" if dry_run else None))

    async def update(
        self,
        resource: Resource,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("update needs metadata.name")
        path = resource_path(resource, require_namespace(resource, namespace, obj), name, subresource)
        return await self._json("PUT", path, body=obj)

    async def patch(
        self,
        resource: Resource,
        name: str,
        body: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        path = resource_path(resource, require_namespace(resource, namespace), name, subresource)
        return await self._json("PATCH", path, body=body, content_type=PATCH_CONTENT_TYPES[patch_type])

    async def delete(
        self,
        resource: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: PropagationPolicy | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = dict(preconditions)
        path = resource_path(resource, require_namespace(resource, namespace), name)
        return await self._json("DELETE", path, body=options)

    async def create_subresource(
        self, resource: Resource, name: str, subresource: str, body: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        path = resource_path(resource, require_namespace(resource, namespace, body), name, subresource)
        return await self._json("POST", path, body=body)

    async def get_raw(self, path: str, params: dict[str, Any] | None = None) -> bytes:
        """GET any path (`/version`, `/api`, a pod's `log`); the body as bytes, failures as ApiError."""
        status, raw = await self._send("GET", path, params=_params(**(params or {})))
        if status >= 400:
            raise _failure(status, raw)
        return raw

    # -- plumbing ---------------------------------------------------------------------------------

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        status, raw = await self._send(method, path, params=params, body=body, content_type=content_type)
        if status >= 400:
            raise _failure(status, raw)
        if not raw.strip():
            return {}
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise TransportError(f"{method} {path}: the response is not JSON") from exc
        if not isinstance(decoded, dict):
            raise TransportError(f"{method} {path}: the response is not a JSON object")
        return decoded

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        session = self._open()
        try:
            async with session.request(
                method, self._url(path), params=params, data=data, headers=headers, timeout=timeout, **self._tls()
            ) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"{method} {path}: {_describe(exc)}") from exc

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                ssl=self._ssl if self._ssl is not None else True, limit=self._max_connections
            )
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        return self._session

    def _url(self, path: str) -> URL:
        return URL(self._base + path, encoded=True)

    def _tls(self) -> dict[str, Any]:
        return {"server_hostname": self.config.tls_server_name} if self.config.tls_server_name else {}


class _LineSplitter:
    """Cuts a byte stream into lines; a line longer than MAX_WATCH_EVENT_BYTES is an error."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        lines = []
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            if end > start:
                lines.append(bytes(self._buffer[start:end]))
            start = end + 1
        del self._buffer[:start]
        if len(self._buffer) > MAX_WATCH_EVENT_BYTES:
            raise TransportError(f"a watch event is larger than {MAX_WATCH_EVENT_BYTES} bytes")
        return [line for line in lines if line.strip()]

    def rest(self) -> bytes:
        rest = bytes(self._buffer).strip()
        self._buffer.clear()
        return rest


def _watch_event(line: bytes) -> WatchEvent:
    try:
        decoded = orjson.loads(line)
        event_type, obj = decoded["type"], decoded["object"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise TransportError("a watch event is not a JSON {type, object} document") from exc
    if event_type == "ERROR":
        if is_status(obj):
            raise api_error_from_status(obj)
        raise ApiError(500, "InternalError", f"watch ERROR event: {obj!r:.300}")
    return WatchEvent(str(event_type), obj)


def _failure(status: int, raw: bytes) -> ApiError:
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    return api_error_from_response(status, body, raw.decode("utf-8", errors="replace"))


def _params(**values: Any) -> dict[str, str]:
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def load_cert_chain_pem(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """`context.load_cert_chain` from PEM bytes.  The ssl module loads key material only from files: they go
    into a private temporary directory that is removed at once (blocking file I/O)."""
    with tempfile.TemporaryDirectory(prefix="kubelite-tls-") as directory:
        cert, key = Path(directory, "tls.crt"), Path(directory, "tls.key")
        cert.write_bytes(cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        context.load_cert_chain(cert, key)


def _ssl_context(config: KubeConfig) -> ssl.SSLContext:
    cadata = config.certificate_authority_data.decode("ascii") if config.certificate_authority_data else None
    context = ssl.create_default_context(cadata=cadata)
    if config.insecure_skip_tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.client_certificate_data and config.client_key_data:
        load_cert_chain_pem(context, config.client_certificate_data, config.client_key_data)
    elif config.client_certificate_data or config.client_key_data:
        raise KubeConfigError("a client certificate needs both the certificate and the key")
    return context


__all__ = ["HttpClient", "KubeConfig", "load_cert_chain_pem", "load_kubeconfig", "resource_path"]
