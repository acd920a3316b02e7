"""The DNS server on 127.0.0.1 (ephemeral ports), queried with dnspython; a fake upstream on another port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from kubelite.machinery.network import ClusterNetwork
from kubelite.proxy.dns.records import service_records
from kubelite.proxy.dns.server import DnsServer
from kubelite.proxy.dns.upstream import Forwarder, Upstream
from kubelite.proxy.dns.zone import Zone
from kubelite.testing.cluster import eventually
from kubelite.testing.fake_clock import FakeClock

LOOPBACK = "127.0.0.1"


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers every A question with 192.0.2.1 (UDP and TCP), or stays silent; counts what it was asked."""

    def __init__(self, *, silent: bool = False) -> None:
        self.silent = silent
        self.asked: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        self.asked.append(query.question[0].name.to_text())
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.RA
        if query.question[0].rdtype == dns.rdatatype.A:
            reply.answer.append(dns.rrset.from_text(query.question[0].name, 300, "IN", "A", "192.0.2.1"))
        return reply.to_wire()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # 3.11's selector transport is not a subclass

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.silent and self.transport is not None:
            self.transport.sendto(self.answer(data), addr)

    async def tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = self.answer(await reader.readexactly(length))
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def fake_upstream(*, silent: bool = False) -> AsyncIterator[tuple[FakeUpstream, int]]:
    fake = FakeUpstream(silent=silent)
    loop = asyncio.get_running_loop()
    for _attempt in range(20):  # an ephemeral UDP port whose TCP twin is free too
        transport, _ = await loop.create_datagram_endpoint(lambda: fake, local_addr=(LOOPBACK, 0))
        port = transport.get_extra_info("sockname")[1]
        try:
            tcp = await asyncio.start_server(fake.tcp, LOOPBACK, port)
            break
        except OSError:
            transport.close()
    else:
        raise RuntimeError("no free port pair for the fake upstream")
    try:
        yield fake, port
    finally:
        transport.close()
        tcp.close()
        await tcp.wait_closed()


def cluster_zone() -> Zone:
    zone = Zone(ClusterNetwork())
    web = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": "10.43.0.20", "ports": []}}
    zone.set_service("default/web", service_records(web, [], origin=zone.origin))
    endpoints = [{"addresses": [f"10.42.{i // 250}.{i % 250 + 1}"]} for i in range(100)]
    big_slice = {
        "metadata": {"name": "big-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "big"}},
        "addressType": "IPv4",
        "endpoints": endpoints,
    }
    big = {"metadata": {"name": "big", "namespace": "default"}, "spec": {"clusterIP": "None"}}
    zone.set_service("default/big", service_records(big, [big_slice], origin=zone.origin))
    ext = {
        "metadata": {"name": "ext", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": "example.org"},
    }
    zone.set_service("default/ext", service_records(ext, [], origin=zone.origin))
    return zone


@contextlib.asynccontextmanager
async def running(
    upstream_port: int | None,
    *,
    ready: Callable[[], bool] = lambda: True,
    max_inflight: int = 100,
    timeout: float = 2.0,
) -> AsyncIterator[tuple[DnsServer, int]]:
    zone = cluster_zone()
    explicit = [Upstream(LOOPBACK, upstream_port)] if upstream_port else []
    forwarder = Forwarder(
        cluster=ClusterNetwork(),
        listen_ip=LOOPBACK,
        port=0,
        resolv_conf="/nonexistent/resolv.conf",
        explicit=explicit,
        timeout=timeout,
    )
    server = DnsServer(lambda: zone, forwarder, ready=ready, max_inflight=max_inflight)
    listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.serve(LOOPBACK, 0, on_listening=listening.set_result))
    try:
        port = await asyncio.wait_for(asyncio.shield(listening), 5)
        yield server, port
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def udp(name: str, rdtype: str, port: int, **kw: Any) -> dns.message.Message:
    return await dns.asyncquery.udp(dns.message.make_query(name, rdtype, **kw), LOOPBACK, port=port, timeout=5)


async def tcp(name: str, rdtype: str, port: int) -> dns.message.Message:
    return await dns.asyncquery.tcp(dns.message.make_query(name, rdtype), LOOPBACK, port=port, timeout=5)


async def test_cluster_names_are_answered_authoritatively_over_udp_and_tcp() -> None:
    async with running(None) as (_, port):
        for ask in (udp, tcp):
            reply = await ask("web.default.svc.cluster.local.", "A", port)
            assert reply.rcode() == dns.rcode.NOERROR
            assert reply.flags & dns.flags.AA and not reply.flags & dns.flags.RA
            assert [str(r) for r in reply.answer[0]] == ["10.43.0.20"]
            missing = await ask("nope.default.svc.cluster.local.", "A", port)
            assert missing.rcode() == dns.rcode.NXDOMAIN
            assert missing.authority[0].rdtype == dns.rdatatype.SOA


async def test_udp_answers_over_512_bytes_are_truncated_and_complete_over_tcp() -> None:
    async with running(None) as (_, port):
        small = await udp("big.default.svc.cluster.local.", "A", port)
        assert small.flags & dns.flags.TC
        full = await tcp("big.default.svc.cluster.local.", "A", port)
        assert not full.flags & dns.flags.TC
        assert len(full.answer[0]) == 100


async def test_udp_answers_fit_the_edns_buffer_the_client_advertises() -> None:
    async with running(None) as (_, port):
        reply = await udp("big.default.svc.cluster.local.", "A", port, use_edns=0, payload=4096)
        assert not reply.flags & dns.flags.TC
        assert len(reply.answer[0]) == 100
        assert reply.edns == 0


async def test_outside_names_are_forwarded_over_the_transport_they_came_in_on() -> None:
    async with fake_upstream() as (fake, upstream_port), running(upstream_port) as (_, port):
        for ask in (udp, tcp):
            reply = await ask("example.org.", "A", port)
            assert reply.rcode() == dns.rcode.NOERROR
            assert [str(r) for r in reply.answer[0]] == ["192.0.2.1"]
            assert reply.flags & dns.flags.RA
        assert fake.asked == ["example.org.", "example.org."]


async def test_external_name_targets_are_resolved_upstream_after_the_cname() -> None:
    async with fake_upstream() as (_, upstream_port), running(upstream_port) as (_, port):
        reply = await udp("ext.default.svc.cluster.local.", "A", port)
        assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
        assert str(reply.answer[1][0]) == "192.0.2.1"


async def test_a_silent_upstream_gives_servfail_and_no_upstream_too() -> None:
    async with fake_upstream(silent=True) as (_, upstream_port), running(upstream_port, timeout=0.2) as (_, port):
        assert (await udp("example.org.", "A", port)).rcode() == dns.rcode.SERVFAIL
    async with running(None) as (_, port):
        assert (await udp("example.org.", "A", port)).rcode() == dns.rcode.SERVFAIL


async def test_forwarded_queries_beyond_the_in_flight_bound_are_refused() -> None:
    async with (
        fake_upstream(silent=True) as (_, upstream_port),
        running(upstream_port, max_inflight=1, timeout=1.0) as (server, port),
    ):
        first = asyncio.create_task(udp("one.example.org.", "A", port))
        await eventually(lambda: server.inflight == 1, timeout=5)  # the first waits for upstream now
        second = await udp("two.example.org.", "A", port)
        assert second.rcode() == dns.rcode.REFUSED
        local = await udp("web.default.svc.cluster.local.", "A", port)
        assert local.rcode() == dns.rcode.NOERROR  # local answers are not bounded
        assert (await first).rcode() == dns.rcode.SERVFAIL


async def test_cluster_names_get_servfail_until_the_caches_have_synced() -> None:
    synced = False
    async with fake_upstream() as (_, upstream_port), running(upstream_port, ready=lambda: synced) as (_, port):
        assert (await udp("web.default.svc.cluster.local.", "A", port)).rcode() == dns.rcode.SERVFAIL
        assert (await udp("example.org.", "A", port)).rcode() == dns.rcode.NOERROR
        synced = True
        assert (await udp("web.default.svc.cluster.local.", "A", port)).rcode() == dns.rcode.NOERROR


@pytest.mark.parametrize(
    ("build", "rcode"),
    [
        (lambda: dns.message.make_query("web.default.svc.cluster.local.", "A", rdclass="CH"), dns.rcode.REFUSED),
        (lambda: _with_opcode(dns.message.make_query("x.", "A"), 4), dns.rcode.NOTIMP),
        (lambda: _two_questions(), dns.rcode.FORMERR),
    ],
)
async def test_queries_we_do_not_serve_get_the_right_error(
    build: Callable[[], dns.message.Message], rcode: int
) -> None:
    async with running(None) as (_, port):
        reply = await dns.asyncquery.udp(build(), LOOPBACK, port=port, timeout=5)
        assert reply.rcode() == rcode


def _with_opcode(query: dns.message.Message, opcode: int) -> dns.message.Message:
    query.set_opcode(opcode)
    return query


def _two_questions() -> dns.message.Message:
    query = dns.message.make_query("a.example.", "A")
    query.question.append(dns.message.make_query("b.example.", "A").question[0])
    return query


async def test_garbage_gets_formerr_with_its_id() -> None:
    async with running(None) as (_, port):
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, (LOOPBACK, port))
            await loop.sock_sendall(sock, struct.pack("!HH", 0x1234, 0x0100) + b"\xff" * 20)
            reply = await asyncio.wait_for(loop.sock_recv(sock, 512), 5)
        query_id, flags = struct.unpack("!HH", reply[:4])
        assert query_id == 0x1234
        assert flags & dns.flags.QR and flags & 0xF == dns.rcode.FORMERR


async def test_binding_is_retried_until_the_address_is_free() -> None:
    clock = FakeClock()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind((LOOPBACK, 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    forwarder = Forwarder(cluster=ClusterNetwork(), listen_ip=LOOPBACK, port=port, resolv_conf="/nonexistent")
    zone = cluster_zone()
    server = DnsServer(lambda: zone, forwarder, clock=clock)
    listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.serve(LOOPBACK, port, on_listening=listening.set_result))
    try:
        await clock.wait_for_sleepers(1)
        assert not listening.done()
        blocker.close()
        clock.advance(1.0)
        assert await asyncio.wait_for(listening, 5) == port
        assert (await tcp("web.default.svc.cluster.local.", "A", port)).rcode() == dns.rcode.NOERROR
    finally:
        blocker.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
