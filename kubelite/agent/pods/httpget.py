"""The kubelet's HTTP GET for probes and lifecycle hooks: one request per connection, no verification.

What it reproduces from the kubelet's Go client, because users read it in events:

* the request: ``GET`` with ``Host`` (the URL's host:port, or an ``httpHeaders`` ``Host``),
  ``User-Agent: kube-<purpose>/1.32`` and ``Accept: */*`` unless set (an empty ``Accept`` drops it),
  ``Connection: close``, then the probe's headers; no compression, no proxy; HTTPS without
  certificate verification;
* redirects: followed while they stay on the same host name (any port, any scheme), at most 10
  requests in all; a redirect to another host ends with that 3xx response;
* errors worded as Go's ``*url.Error``: ``Get "http://10.0.0.1:8080/healthz": dial tcp
  10.0.0.1:8080: connect: connection refused``, ``... context deadline exceeded (Client.Timeout
  exceeded while awaiting headers)``, ``Get "<location>": stopped after 10 redirects``.

The body is read up to 10 KiB (the kubelet's limit) and then the connection is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

__all__ = [
    "KUBE_MINOR",
    "HttpGetError",
    "Response",
    "close_stream",
    "errno_text",
    "http_get",
    "join_host_port",
    "probe_url",
    "resolve_port",
]

KUBE_MINOR = "1.32"
MAX_BODY = 10 * 1024
MAX_REQUESTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class HttpGetError(Exception):
    """No response: `message` is what the kubelet reports (Go's wording)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    url: str


def join_host_port(host: str, port: int | str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve_port(port: Any, container: dict[str, Any]) -> int:
    """A probe's port: a number, a named container port, or a number written as a string.
    Raises ValueError with the kubelet's message."""
    if isinstance(port, str):
        for declared in container.get("ports") or ():
            if declared.get("name") == port:
                port = int(declared.get("containerPort") or 0)
                break
        else:
            try:
                port = int(port, 10)
            except ValueError:
                raise ValueError(f'strconv.Atoi: parsing "{port}": invalid syntax') from None
    if not isinstance(port, int) or isinstance(port, bool):
        raise ValueError(f"intOrString had no kind: {port!r}")
    if 0 < port < 65536:
        return port
    raise ValueError(f"invalid port number: {port}")


def probe_url(action: dict[str, Any], container: dict[str, Any], default_host: str) -> str:
    """The URL an ``httpGet`` action asks for (scheme lower-cased, host defaulting to the pod IP)."""
    scheme = str(action.get("scheme") or "http").lower()
    host = str(action.get("host") or default_host)
    port = resolve_port(action.get("port"), container)
    parts = urlsplit(str(action.get("path") or ""))
    path = parts.path
    if path and not path.startswith("/"):
        path = "/" + path
    return urlunsplit((scheme, join_host_port(host, port), path, parts.query, ""))


def _canonical(name: str) -> str:
    """Go's CanonicalMIMEHeaderKey for ordinary header names: ``x-my-header`` → ``X-My-Header``."""
    if not all(c.isalnum() or c == "-" for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _headers(pairs: Iterable[dict[str, Any]], purpose: str) -> tuple[list[tuple[str, str]], str | None]:
    """The headers to send and the Host override, with the kubelet's User-Agent and Accept defaults."""
    headers = [(_canonical(str(h.get("name") or "")), str(h.get("value") or "")) for h in pairs]
    names = {name for name, _ in headers}
    host = next((value for name, value in headers if name == "Host"), None)
    headers = [(n, v) for n, v in headers if n != "Host"]
    if "User-Agent" not in names:
        headers.insert(0, ("User-Agent", f"kube-{purpose}/{KUBE_MINOR}"))
    if "Accept" not in names:
        headers.append(("Accept", "*/*"))
    elif next(v for n, v in headers if n == "Accept") == "":
        headers = [(n, v) for n, v in headers if n != "Accept"]
    return headers, host


def errno_text(exc: OSError) -> str:
    """An errno as Go prints it: ``connection refused``."""
    text = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _connect(scheme: str, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Dial as Go's ``dial tcp`` (and the TLS handshake for https), translating errors to its words."""
    context: ssl.SSLContext | None = None
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    hostport = join_host_port(host, port)
    try:
        return await asyncio.open_connection(
            host, port, ssl=context, server_hostname=(None if context is None else "" if _is_ip(host) else host)
        )
    except socket.gaierror:
        raise HttpGetError(f"dial tcp: lookup {host}: no such host") from None
    except ssl.SSLError as exc:
        if exc.reason == "WRONG_VERSION_NUMBER":
            raise HttpGetError("http: server gave HTTP response to HTTPS client") from None
        raise HttpGetError(f"remote error: tls: {exc.reason or exc}") from None
    except ConnectionRefusedError as exc:
        raise HttpGetError(f"dial tcp {hostport}: connect: {errno_text(exc)}") from None
    except OSError as exc:
        if exc.errno is None:  # the peer hung up during the TLS handshake
            raise HttpGetError("EOF") from None
        if exc.errno in (errno.ECONNRESET, errno.EPIPE):
            raise HttpGetError(f"read tcp {hostport}: read: {errno_text(exc)}") from None
        raise HttpGetError(f"dial tcp {hostport}: connect: {errno_text(exc)}") from None


async def close_stream(writer: asyncio.StreamWriter) -> None:
    """Drop the connection at once (no TLS close_notify, no waiting for the peer)."""
    writer.transport.abort()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while len(body) < MAX_BODY:
            size_line = await reader.readline()
            try:
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                break
            if size == 0:
                break
            body += await reader.readexactly(size)
            await reader.readline()
        return body[:MAX_BODY]
    length = headers.get("content-length")
    if length is not None and length.strip().isdigit():
        wanted = min(int(length), MAX_BODY)
        return await reader.readexactly(wanted) if wanted else b""
    body = b""
    while len(body) < MAX_BODY and (chunk := await reader.read(MAX_BODY - len(body))):
        body += chunk
    return body


async def _exchange(url: str, headers: list[tuple[str, str]], host_header: str) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: status, headers (lower-cased names) and the first 10 KiB of body."""
    parts = urlsplit(url)
    scheme, host = parts.scheme, parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    reader, writer = await _connect(scheme, host, port)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace"))
        await writer.drain()
        while True:
            status_line = await reader.readline()
            if not status_line:
                raise HttpGetError("EOF")
            fields = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
                text = status_line.decode("latin-1").rstrip("\r\n")
                raise HttpGetError(f'net/http: HTTP/1.x transport connection broken: malformed HTTP response "{text}"')
            status = int(fields[1])
            received: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                received[name.strip().lower()] = value.strip()
            if not 100 <= status < 200 or status == 101:
                break
        return status, received, await _read_body(reader, received)
    except asyncio.IncompleteReadError:
        raise HttpGetError("unexpected EOF") from None
    except (ConnectionResetError, BrokenPipeError) as exc:
        local = writer.get_extra_info("sockname")
        where = f"{join_host_port(str(local[0]), local[1])}->" if local else ""
        raise HttpGetError(f"read tcp {where}{join_host_port(host, port)}: read: {errno_text(exc)}") from None
    finally:
        await close_stream(writer)


async def http_get(
    url: str, http_headers: Iterable[dict[str, Any]] = (), *, timeout: float, purpose: str = "probe"
) -> Response:
    """GET `url` as the kubelet does (see the module docstring); raises `HttpGetError` when there
    is no response.  `timeout` bounds the whole exchange, redirects included."""
    headers, custom_host = _headers(http_headers, purpose)
    first_host = urlsplit(url).hostname
    current, host_override = url, custom_host
    requests = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    host_header = host_override or urlsplit(current).netloc
                    status, received, body = await _exchange(current, headers, host_header)
                except HttpGetError as exc:
                    raise HttpGetError(f'Get "{current}": {exc.message}') from None
                requests += 1
                location = received.get("location")
                if status not in REDIRECTS or not location:
                    return Response(status, body.decode("utf-8", errors="replace"), current)
                following = urljoin(current, location)
                if urlsplit(following).hostname != first_host:
                    return Response(status, body.decode("utf-8", errors="replace"), current)
                if requests >= MAX_REQUESTS:
                    raise HttpGetError(f'Get "{location}": stopped after {MAX_REQUESTS} redirects')
                # as Go: a custom Host header is kept through relative redirects only
                host_override = custom_host if not urlsplit(location).scheme else None
                current = following
    except TimeoutError:
        reason = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        raise HttpGetError(f'Get "{current}": {reason}') from None
