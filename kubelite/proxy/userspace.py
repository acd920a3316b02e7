"""`UserspaceProxier`: Services through asyncio listeners, when nftables cannot be used.

What it serves:

* as root: every ClusterIP is added (/32) to a dummy interface ``kubelite-svc`` in the node's namespace (as
  IPVS mode's ``kube-ipvs0``; a bridge without ports where the kernel has no dummy driver, as on the project's
  machines), so the node and its pods reach it as a local address, and a TCP listener (UDP relay) runs per
  ClusterIP:port;
* always: NodePort listeners on 0.0.0.0;
* without root: only those NodePort listeners; ClusterIPs are unreachable (logged once).

A listener exists only while its service port has endpoints for that kind of traffic, so with none a client
gets "connection refused" at once.  externalIPs and LoadBalancer ingress IPs are not served (they are not
local addresses), and `externalTrafficPolicy: Local` picks local endpoints but cannot keep the client's source
address (the proxy opens its own connection): both are nftables-mode features.

Connections: endpoints in `Balancer` order (ClientIP affinity, then round robin); a connect that fails or takes
longer than `CONNECT_TIMEOUT` moves on to the next endpoint; if all fail the client's connection is reset.
Bytes are copied in `CHUNK`-sized reads with back-pressure (`drain`), so a slow side never makes the proxy
buffer more than a few chunks per connection.  UDP: one backend socket per client address (at most
`MAX_UDP_SESSIONS` per relay, idle ones closed after `UDP_IDLE_SECONDS`); datagrams wait in a bounded queue and
are dropped, as the network would, when it is full.

`sync(plans)` is level-based and idempotent; listeners whose endpoints change are updated in place (open
connections carry on); removed ones stop accepting and their open connections carry on until they end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from kubelite.proxy.balancer import Balancer
from kubelite.proxy.commands import CommandError, Shell
from kubelite.proxy.model import Endpoint, ServicePortName, ServicePortPlan
from kubelite.proxy.sockets import SocketFactory

log = logging.getLogger(__name__)

__all__ = ["DUMMY_INTERFACE", "ListenerKey", "UserspaceProxier", "desired_listeners"]

DUMMY_INTERFACE = "kubelite-svc"
CONNECT_TIMEOUT = 5.0
CHUNK = 64 * 1024
MAX_UDP_SESSIONS = 1024
UDP_QUEUE = 1024
UDP_IDLE_SECONDS = 60.0


@dataclass(frozen=True, order=True, slots=True)
class ListenerKey:
    address: str
    port: int
    protocol: str


@dataclass(frozen=True, slots=True)
class ListenerSpec:
    name: ServicePortName
    endpoints: tuple[Endpoint, ...]
    affinity_seconds: int


def desired_listeners(
    plans: Mapping[ServicePortName, ServicePortPlan], *, cluster_ips: bool
) -> dict[ListenerKey, ListenerSpec]:
    """The listeners that serve `plans`: ClusterIP:port (when `cluster_ips`) and 0.0.0.0:nodePort, each only
    while it has endpoints.  SCTP is not proxied in userspace.  Pure."""
    wanted: dict[ListenerKey, ListenerSpec] = {}
    for name, plan in sorted(plans.items()):
        if plan.protocol not in ("TCP", "UDP"):
            continue
        if cluster_ips and plan.cluster_endpoints:
            for ip in plan.cluster_ips:
                spec = ListenerSpec(name, plan.cluster_endpoints, plan.affinity_seconds)
                wanted[ListenerKey(ip, plan.port, plan.protocol)] = spec
        if plan.node_port and plan.external_endpoints:
            spec = ListenerSpec(name, plan.external_endpoints, plan.affinity_seconds)
            wanted[ListenerKey("0.0.0.0", plan.node_port, plan.protocol)] = spec
    return wanted


@dataclass(eq=False)
class _Listener:
    key: ListenerKey
    name: ServicePortName
    balancer: Balancer
    server: asyncio.AbstractServer | None = None
    relay: _UdpRelay | None = None
    connections: set[asyncio.Task[None]] = field(default_factory=set)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.transport.abort()


class UserspaceProxier:
    """See the module docstring.  `root` decides ClusterIP support; `shell` runs `ip` in the node netns."""

    mode = "userspace"

    def __init__(self, shell: Shell, sockets: SocketFactory, *, root: bool) -> None:
        self.shell = shell
        self.sockets = sockets
        self.root = root
        self._listeners: dict[ListenerKey, _Listener] = {}
        self._dummy_ready = False
        self._warned = False

    # -- sync -------------------------------------------------------------------------------------

    async def sync(self, plans: Mapping[ServicePortName, ServicePortPlan]) -> None:
        if not self.root and not self._warned:
            self._warned = True
            log.warning("userspace proxy without root: only NodePorts are served, ClusterIPs are unreachable")
        wanted = desired_listeners(plans, cluster_ips=self.root)
        if self.root:
            # every ClusterIP, with endpoints or not: a local address without a listener refuses at once
            await self._sync_addresses({ip for plan in plans.values() for ip in plan.cluster_ips})
        for key in sorted(set(self._listeners) - set(wanted)):
            self._close_listener(self._listeners.pop(key))
        failures = []
        for key, spec in sorted(wanted.items()):
            current = self._listeners.get(key)
            if current is not None:
                current.balancer.update(spec.endpoints, spec.affinity_seconds)
                current.name = spec.name
                continue
            try:
                self._listeners[key] = await self._open(key, spec)
            except OSError as exc:
                log.warning("cannot open a proxy listener", extra={"listener": str(key), "error": str(exc)})
                failures.append(key)
        if failures:
            raise OSError(f"cannot open {len(failures)} proxy listener(s), first {failures[0]}")

    async def close(self) -> None:
        for listener in self._listeners.values():
            self._close_listener(listener)
        tasks = [task for listener in self._listeners.values() for task in listener.connections]
        self._listeners.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def listeners(self) -> list[ListenerKey]:
        return sorted(self._listeners)

    async def _sync_addresses(self, wanted: set[str]) -> None:
        """Make ``kubelite-svc``'s addresses exactly `wanted` (each /32)."""
        if not self._dummy_ready:
            for kind in ("dummy", "bridge"):  # kernels without the dummy driver: a port-less bridge does as well
                try:
                    await self.shell.run(["ip", "link", "add", DUMMY_INTERFACE, "type", kind])
                except CommandError as exc:
                    if "exists" in exc.stderr:
                        break
                    if kind == "dummy" and "Unknown device type" in exc.stderr:
                        continue
                    raise
                break
            await self.shell.run(["ip", "link", "set", DUMMY_INTERFACE, "up"])
            self._dummy_ready = True
        text = await self.shell.run(["ip", "-j", "-4", "addr", "show", "dev", DUMMY_INTERFACE])
        have = {info["local"] for link in json.loads(text or "[]") for info in link.get("addr_info", [])}
        batch = [f"addr del {ip}/32 dev {DUMMY_INTERFACE}" for ip in sorted(have - wanted)]
        batch += [f"addr add {ip}/32 dev {DUMMY_INTERFACE}" for ip in sorted(wanted - have)]
        if batch:
            await self.shell.run(["ip", "-batch", "-"], stdin="\n".join(batch) + "\n")

    # -- listeners --------------------------------------------------------------------------------

    async def _open(self, key: ListenerKey, spec: ListenerSpec) -> _Listener:
        listener = _Listener(key, spec.name, Balancer(spec.endpoints, spec.affinity_seconds))
        kind = socket.SOCK_STREAM if key.protocol == "TCP" else socket.SOCK_DGRAM
        sock = await self.sockets.socket(kind)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((key.address, key.port))
            if key.protocol == "TCP":
                sock.listen(socket.SOMAXCONN)

                async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                    await self._serve(listener, reader, writer)

                listener.server = await asyncio.start_server(accept, sock=sock, limit=CHUNK)
            else:
                listener.relay = await _UdpRelay.start(sock, listener.balancer, self.sockets)
        except BaseException:
            sock.close()
            raise
        log.info("proxy listener opened", extra={"listener": str(key), "service": str(spec.name)})
        return listener

    def _close_listener(self, listener: _Listener) -> None:
        if listener.server is not None:
            listener.server.close()
        if listener.relay is not None:
            listener.relay.close()
        log.info("proxy listener closed", extra={"listener": str(listener.key), "service": str(listener.name)})

    async def _serve(self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        listener.connections.add(task)
        try:
            upstream = await self._connect(listener, writer.get_extra_info("peername")[0])
            if upstream is None:
                writer.transport.abort()  # every endpoint failed: reset, as a refused connection would
                return
            up_reader, up_writer = upstream
            try:
                async with asyncio.TaskGroup() as pumps:
                    pumps.create_task(_copy(reader, up_writer))
                    pumps.create_task(_copy(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            writer.close()
            listener.connections.discard(task)

    async def _connect(
        self, listener: _Listener, client_ip: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        loop = asyncio.get_running_loop()
        for endpoint in listener.balancer.candidates(client_ip, time.monotonic()):
            sock = await self.sockets.socket(socket.SOCK_STREAM)
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await loop.sock_connect(sock, (endpoint.ip, endpoint.port))
                streams = await asyncio.open_connection(sock=sock, limit=CHUNK)
            except (OSError, TimeoutError) as exc:
                sock.close()
                log.debug("endpoint connect failed", extra={"endpoint": str(endpoint), "error": str(exc)})
                continue
            listener.balancer.connected(client_ip, endpoint, time.monotonic())
            return streams
        return None


class _UdpRelay(asyncio.DatagramProtocol):
    """One UDP service address: client datagrams → a per-client backend socket → replies back to the client."""

    def __init__(self, balancer: Balancer, sockets: SocketFactory) -> None:
        self.balancer = balancer
        self.sockets = sockets
        self.transport: asyncio.DatagramTransport | None = None
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue(UDP_QUEUE)
        self.sessions: dict[tuple[str, int], tuple[asyncio.DatagramTransport, list[float]]] = {}
        self.worker: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, sock: socket.socket, balancer: Balancer, sockets: SocketFactory) -> _UdpRelay:
        relay = cls(balancer, sockets)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: relay, sock=sock)
        relay.worker = asyncio.get_running_loop().create_task(relay._work())
        return relay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a full queue drops, as a congested network would
            self.queue.put_nowait((data, addr))

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data, client = await self.queue.get()
            now = time.monotonic()
            self._expire(now)
            session = self.sessions.get(client)
            if session is None and len(self.sessions) < MAX_UDP_SESSIONS:
                session = await self._open_session(loop, client, now)
            if session is not None:
                session[1][0] = now
                session[0].sendto(data)

    async def _open_session(
        self, loop: asyncio.AbstractEventLoop, client: tuple[str, int], now: float
    ) -> tuple[asyncio.DatagramTransport, list[float]] | None:
        for endpoint in self.balancer.candidates(client[0], now):
            sock = await self.sockets.socket(socket.SOCK_DGRAM)
            try:
                sock.connect((endpoint.ip, endpoint.port))
                transport, _ = await loop.create_datagram_endpoint(lambda: _UdpReturn(self, client), sock=sock)
            except OSError:
                sock.close()
                continue
            self.balancer.connected(client[0], endpoint, now)
            session = (transport, [now])
            self.sessions[client] = session
            return session
        return None

    def _expire(self, now: float) -> None:
        for client in [c for c, (_, used) in self.sessions.items() if now - used[0] > UDP_IDLE_SECONDS]:
            self.sessions.pop(client)[0].close()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
        if self.transport is not None:
            self.transport.close()
        for transport, _ in self.sessions.values():
            transport.close()
        self.sessions.clear()


class _UdpReturn(asyncio.DatagramProtocol):
    """A backend's replies to one client, sent back from the service address."""

    def __init__(self, relay: _UdpRelay, client: tuple[str, int]) -> None:
        self.relay = relay
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.relay.transport is not None:
            self.relay.transport.sendto(data, self.client)


def running_as_root() -> bool:
    return os.geteuid() == 0
