"""`DnsServer`: the cluster DNS on one address, UDP and TCP on the same port, answering from a `Zone`.

Per query (both transports):

* Unparseable → FORMERR when a header can be read, else dropped; an opcode other than QUERY → NOTIMP; not
  exactly one question → FORMERR; a class other than IN → REFUSED.
* In the zone (`Zone.authority_for`): answered at once from the zone, authoritative (``qr aa rd``, no ``ra``,
  as CoreDNS' kubernetes plugin); SERVFAIL while `ready()` is false (the caches have not synced yet: an empty
  cache would answer NXDOMAIN for names that exist).  An A/AAAA answer ending in an out-of-zone CNAME
  (ExternalName) gets the target's records from upstream appended when upstream answers.
* Anything else is forwarded (`Forwarder`) over the transport it came in on; SERVFAIL when no upstream answers.
  At most `max_inflight` forwarded queries are pending at once; beyond that a query is REFUSED at once (as
  CoreDNS' forward plugin does past max_concurrent), so a flood cannot grow memory without bound.
* UDP answers are cut to 512 bytes, or to the EDNS buffer size the client advertises: whole RRsets are left out
  and TC is set, so the client retries over TCP.  TCP connections (at most `max_connections`) carry any number of
  length-prefixed queries, answered in order, and are closed after `TCP_IDLE_SECONDS` without one.

Local answers are computed synchronously in the protocol callback (no task per query); forwarded ones run in a
TaskGroup the server owns, so cancelling `serve()` ends them.  Binding is retried with back-off (the listen
address may appear only when the node bridge is up); the first failure is logged, the retries are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from kubelite.client.clock import Clock, RealClock
from kubelite.proxy.dns.upstream import Forwarder
from kubelite.proxy.dns.zone import Answer, Zone

__all__ = ["DnsServer"]

log = logging.getLogger(__name__)

UDP_DEFAULT_SIZE = 512
OUR_PAYLOAD = 1232  # the EDNS buffer size we advertise (the DNS flag day 2020 value)
TCP_IDLE_SECONDS = 10.0
BIND_BACKOFF_INITIAL = 0.5
BIND_BACKOFF_MAX = 10.0
EPHEMERAL_BIND_ATTEMPTS = 20


@dataclass
class _Pending:
    """A query that needs upstream: forward it whole, or chase `answer.chase` for a local CNAME answer."""

    query: dns.message.Message
    answer: Answer | None = None


class DnsServer:
    """UDP+TCP DNS on one address (module docstring).  `zone()` is called per query (cheap when unchanged)."""

    def __init__(
        self,
        zone: Callable[[], Zone],
        forwarder: Forwarder,
        *,
        ready: Callable[[], bool] = lambda: True,
        max_inflight: int = 1000,
        max_connections: int = 256,
        clock: Clock | None = None,
    ) -> None:
        self._zone = zone
        self._forwarder = forwarder
        self._ready = ready
        self.max_inflight = max_inflight
        self.max_connections = max_connections
        self._clock = clock or RealClock()
        self._inflight = 0
        self._tasks: asyncio.TaskGroup | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def inflight(self) -> int:
        """Forwarded queries waiting for upstream now."""
        return self._inflight

    # -- serving ----------------------------------------------------------------------------------

    async def serve(self, listen_ip: str, port: int = 53, *, on_listening: Callable[[int], None] | None = None) -> None:
        """Bind (retrying), call `on_listening(port)` with the real port, serve until cancelled."""
        udp_sock, tcp_sock = await self._bind_with_retry(listen_ip, port)
        self.port = udp_sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        transport: asyncio.DatagramTransport | None = None
        tcp_server: asyncio.Server | None = None
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=udp_sock)
                tcp_server = await asyncio.start_server(self._tcp_client, sock=tcp_sock)
                log.info("cluster DNS listening", extra={"address": listen_ip, "port": self.port})
                if on_listening is not None:
                    on_listening(self.port)
                await asyncio.Event().wait()
        finally:
            self._tasks = None
            if transport is not None:
                transport.close()
            else:
                udp_sock.close()
            if tcp_server is not None:
                tcp_server.close()
            else:
                tcp_sock.close()
            for task in list(self._connections):
                task.cancel()
            if self._connections:
                await asyncio.gather(*self._connections, return_exceptions=True)

    async def _bind_with_retry(self, listen_ip: str, port: int) -> tuple[socket.socket, socket.socket]:
        delay, failures = BIND_BACKOFF_INITIAL, 0
        while True:
            try:
                return _bind_pair(listen_ip, port)
            except OSError as exc:
                failures += 1
                if failures == 1:
                    log.warning(
                        "cannot listen yet; retrying with back-off",
                        extra={"address": listen_ip, "port": port, "error": str(exc)},
                    )
                await self._clock.sleep(delay)
                delay = min(delay * 2, BIND_BACKOFF_MAX)

    # -- one query --------------------------------------------------------------------------------

    def respond(self, wire: bytes, *, tcp: bool) -> bytes | _Pending | None:
        """The reply to `wire` when it can be made at once, a `_Pending` when it needs upstream, None to drop."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return _header_only_reply(wire, dns.rcode.FORMERR)
        if query.flags & dns.flags.QR:
            return None  # a response sent to us: never answer it (reflection loops)
        if query.opcode() != dns.opcode.QUERY:
            return self._render(_reply(query, dns.rcode.NOTIMP), query, tcp=tcp)
        if len(query.question) != 1:
            return self._render(_reply(query, dns.rcode.FORMERR), query, tcp=tcp)
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN:
            return self._render(_reply(query, dns.rcode.REFUSED), query, tcp=tcp)
        zone = self._zone()
        if zone.authority_for(question.name) is not None and not self._ready():
            return self._render(_reply(query, dns.rcode.SERVFAIL), query, tcp=tcp)
        answer = zone.lookup(question.name, question.rdtype)
        if answer is None:
            return self._admit(_Pending(query), tcp=tcp)
        if answer.chase is not None and question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            return self._admit(_Pending(query, answer), tcp=tcp)
        return self._render(_local_reply(query, answer), query, tcp=tcp)

    def _admit(self, pending: _Pending, *, tcp: bool) -> bytes | _Pending:
        if self._inflight >= self.max_inflight:
            return self._render(_reply(pending.query, dns.rcode.REFUSED), pending.query, tcp=tcp)
        self._inflight += 1  # reserved here, released when `complete` ends
        return pending

    async def complete(self, pending: _Pending, *, tcp: bool) -> bytes:
        """The reply to a query `respond` could not answer alone (`respond` counted it against `max_inflight`)."""
        try:
            query = pending.query
            if pending.answer is None:
                upstream = await self._forwarder.forward(query, tcp=tcp)
                reply = upstream if upstream is not None else _reply(query, dns.rcode.SERVFAIL)
                reply.id = query.id
                return self._render(reply, query, tcp=tcp)
            reply = _local_reply(query, pending.answer)
            assert pending.answer.chase is not None
            chase = dns.message.make_query(pending.answer.chase, query.question[0].rdtype)
            upstream = await self._forwarder.forward(chase, tcp=tcp)
            if upstream is not None and upstream.rcode() == dns.rcode.NOERROR:
                reply.answer.extend(upstream.answer)
            return self._render(reply, query, tcp=tcp)
        finally:
            self._inflight -= 1

    @staticmethod
    def _render(reply: dns.message.Message, query: dns.message.Message, *, tcp: bool) -> bytes:
        if tcp:
            return reply.to_wire(max_size=65535, prefer_truncation=True)
        limit = UDP_DEFAULT_SIZE
        if query.edns >= 0:
            limit = max(UDP_DEFAULT_SIZE, min(query.payload, 65535))
        try:
            return reply.to_wire(max_size=limit, prefer_truncation=True)
        except dns.exception.TooBig:
            bare = dns.message.make_response(query)
            bare.set_rcode(reply.rcode())
            bare.flags = reply.flags | dns.flags.TC
            return bare.to_wire(max_size=limit)

    # -- transports -------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._tasks is None:
            coro.close()  # shutting down: the client retries elsewhere
        else:
            self._tasks.create_task(coro)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._connections) >= self.max_connections:
            writer.close()
            return
        self._connections.add(task)
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_SECONDS):
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                    wire = await reader.readexactly(length)
                reply = self.respond(wire, tcp=True)
                if isinstance(reply, _Pending):
                    reply = await self.complete(reply, tcp=True)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # 3.11's selector transport is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        reply = self.server.respond(data, tcp=False)
        if isinstance(reply, _Pending):
            self.server._spawn(self._answer_later(reply, addr))
        elif reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    async def _answer_later(self, pending: _Pending, addr: tuple[str | object, ...]) -> None:
        reply = await self.server.complete(pending, tcp=False)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error", extra={"error": str(exc)})


def _reply(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    reply = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
    reply.set_rcode(rcode)
    return reply


def _local_reply(query: dns.message.Message, answer: Answer) -> dns.message.Message:
    reply = _reply(query, answer.rcode)
    reply.flags |= dns.flags.AA
    reply.answer.extend(answer.answer)
    reply.authority.extend(answer.authority)
    reply.additional.extend(answer.additional)
    return reply


def _header_only_reply(wire: bytes, rcode: dns.rcode.Rcode) -> bytes | None:
    """A bare reply with `wire`'s id and `rcode` (no question), or None when there is no header to answer."""
    if len(wire) < 12:
        return None
    query_id, flags = struct.unpack("!HH", wire[:4])
    if flags & dns.flags.QR:
        return None
    reply_flags = dns.flags.QR | (flags & dns.flags.RD) | (flags & 0x7800) | int(rcode)
    return struct.pack("!HHHHHH", query_id, reply_flags, 0, 0, 0, 0)


def _bind_pair(listen_ip: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to (listen_ip, port); with port 0, one ephemeral number for both."""
    family = socket.AF_INET6 if ipaddress.ip_address(listen_ip).version == 6 else socket.AF_INET
    attempts = EPHEMERAL_BIND_ATTEMPTS if port == 0 else 1
    for attempt in range(attempts):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            udp.bind((listen_ip, port))
            chosen = udp.getsockname()[1]
            tcp = socket.socket(family, socket.SOCK_STREAM)
            try:
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((listen_ip, chosen))
                tcp.listen(128)
            except OSError as exc:
                tcp.close()
                if port == 0 and exc.errno == errno.EADDRINUSE and attempt + 1 < attempts:
                    udp.close()
                    continue
                raise
        except BaseException:
            udp.close()
            raise
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp
    raise OSError(errno.EADDRINUSE, "no free port for both UDP and TCP")
