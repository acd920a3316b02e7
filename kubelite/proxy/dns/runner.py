"""`run_dns(client, DnsConfig(...))`: one node's cluster DNS — informers, the zone, the server, the slice.

    config = DnsConfig(node_name="node1", listen_ip="10.42.0.1", cluster=ClusterNetwork())
    await run_dns(client, config)        # runs until cancelled

Start-up order: the Service and EndpointSlice informers start at once; the server binds as soon as it can
(retrying while the listen address does not exist yet) and answers names outside the cluster right away and
names inside it once both caches have synced (SERVFAIL before, never a wrong NXDOMAIN); the node's kube-dns
EndpointSlice is published once the server listens, with the port it really got (``port=0`` picks a free one:
tests).  Queries are answered from the caches only: `ZoneCache` marks a Service dirty on every event that
touches it and re-derives just that Service's records on the next query, so a burst of changes costs one
rebuild per Service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubelite.client.clock import Clock, RealClock
from kubelite.client.informer import Informer, SharedInformerFactory
from kubelite.client.interface import Client, builtin, key_of
from kubelite.machinery.network import ClusterNetwork
from kubelite.proxy.dns.publisher import SlicePublisher
from kubelite.proxy.dns.records import DEFAULT_TTL, SERVICE_NAME_LABEL, service_records
from kubelite.proxy.dns.server import DnsServer
from kubelite.proxy.dns.upstream import Forwarder, parse_upstream
from kubelite.proxy.dns.zone import Zone

__all__ = ["DnsConfig", "ZoneCache", "run_dns"]

log = logging.getLogger(__name__)

SERVICES = builtin("", "services")
ENDPOINT_SLICES = builtin("discovery.k8s.io", "endpointslices")
SERVICE_INDEX = "dns-service"


@dataclass(frozen=True)
class DnsConfig:
    """One node's DNS server.

    `upstreams` ("ip" or "ip:port") replace the nameservers of `resolv_conf` (tests point them at a fake
    server); `publish_slice` False skips the kube-dns EndpointSlice (a server not tied to a node).
    """

    node_name: str
    listen_ip: str
    port: int = 53
    cluster: ClusterNetwork = field(default_factory=ClusterNetwork)
    resolv_conf: str = "/etc/resolv.conf"
    upstreams: tuple[str, ...] = ()
    upstream_timeout: float = 2.0
    max_inflight: int = 1000
    ttl: int = DEFAULT_TTL
    publish_slice: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "upstreams", tuple(self.upstreams))
        for text in self.upstreams:
            parse_upstream(text)


def _slice_service_key(obj: dict[str, Any]) -> list[str]:
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{meta.get('namespace') or ''}/{name}"] if name else []


class ZoneCache:
    """The `Zone` kept in step with a Service and an EndpointSlice informer, lazily (module docstring)."""

    def __init__(
        self, services: Informer, slices: Informer, cluster: ClusterNetwork, *, ttl: int = DEFAULT_TTL, clock: Clock
    ) -> None:
        self._services = services
        self._slices = slices
        self._clock = clock
        self._zone = Zone(cluster, ttl=ttl)
        self._dirty: set[str] = set()
        self._all_dirty = True
        slices.add_index(SERVICE_INDEX, _slice_service_key)
        services.add_handler(
            on_add=self._service_changed,
            on_update=lambda _old, new: self._service_changed(new),
            on_delete=self._service_changed,
        )
        slices.add_handler(
            on_add=self._slice_changed,
            on_update=self._slice_updated,
            on_delete=self._slice_changed,
        )

    def ready(self) -> bool:
        return self._services.has_synced and self._slices.has_synced

    def zone(self) -> Zone:
        """The zone with every pending change applied."""
        if self._all_dirty:
            self._all_dirty = False
            self._dirty = set(self._zone.services()) | {key_of(s) for s in self._services.list()}
        if self._dirty:
            origin = self._zone.origin
            for key in self._dirty:
                service = self._services.get(key)
                if service is None:
                    self._zone.remove_service(key)
                else:
                    slices = self._slices.by_index(SERVICE_INDEX, key)
                    self._zone.set_service(key, service_records(service, slices, origin=origin))
            self._dirty.clear()
            self._zone.serial = max(self._zone.serial + 1, int(self._clock.utcnow().timestamp()))
        return self._zone

    def _service_changed(self, service: dict[str, Any]) -> None:
        self._dirty.add(key_of(service))

    def _slice_changed(self, endpoint_slice: dict[str, Any]) -> None:
        self._dirty.update(_slice_service_key(endpoint_slice))

    def _slice_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._dirty.update(_slice_service_key(old))
        self._dirty.update(_slice_service_key(new))


async def run_dns(
    client: Client,
    config: DnsConfig,
    *,
    factory: SharedInformerFactory | None = None,
    clock: Clock | None = None,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Serve cluster DNS for `config` until cancelled (module docstring).

    Pass the process's `factory` to share its Service/EndpointSlice watches (it must be running or be run by
    the caller); without one, run_dns runs its own.  `on_listening(port)` is called once the server listens.
    """
    clock = clock or RealClock()
    own_factory = factory is None
    informers = factory if factory is not None else SharedInformerFactory(client, clock=clock)
    cache = ZoneCache(
        informers.informer(SERVICES), informers.informer(ENDPOINT_SLICES), config.cluster, ttl=config.ttl, clock=clock
    )
    forwarder = Forwarder(
        cluster=config.cluster,
        listen_ip=config.listen_ip,
        port=config.port,
        resolv_conf=config.resolv_conf,
        explicit=[parse_upstream(u) for u in config.upstreams],
        timeout=config.upstream_timeout,
        clock=clock,
    )
    server = DnsServer(cache.zone, forwarder, ready=cache.ready, max_inflight=config.max_inflight, clock=clock)
    listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def _listening(port: int) -> None:
        forwarder.port = port
        if not listening.done():
            listening.set_result(port)
        if on_listening is not None:
            on_listening(port)

    async with asyncio.TaskGroup() as tasks:
        if own_factory:
            tasks.create_task(informers.run())
        tasks.create_task(server.serve(config.listen_ip, config.port, on_listening=_listening))
        port = await listening
        if config.publish_slice:
            publisher = SlicePublisher(
                client, informers, node_name=config.node_name, listen_ip=config.listen_ip, port=port, clock=clock
            )
            tasks.create_task(publisher.run())
