"""The service proxy of one node: Services + EndpointSlices (informers) → plans → nftables or userspace.

    config = ProxyConfig(node_name="node1", node_ips=("10.0.0.5",), cluster=ClusterNetwork())
    await run_proxy(client, config)        # runs until cancelled

Mode ("auto"): nftables when running as root and ``nft`` answers (``nft list tables`` in the target namespace),
else the userspace proxy; the choice and the reason are logged once at start.  "nftables" and "userspace" force
one (a forced nftables mode that cannot work fails at start).

The sync loop is level-based: every Service/EndpointSlice event marks the proxy dirty; a sync recomputes every
plan from the informer caches and hands them to the back end, which applies only what changed.  Syncs are at
least `min_sync_period` apart (default 1 s, as kube-proxy's --min-sync-period: the first change after a quiet
spell is applied at once, a burst is folded into one sync a second later, so readiness changes are live
within about a second).  Without events the loop still syncs every `sync_period` (30 s, kube-proxy's
--sync-period), which repairs rules someone removed and lets the nftables back end do its periodic full sync.
A failed sync is logged and retried with capped back-off.

`netns` (tests) makes every command, listener and outgoing socket act inside that named namespace, so a test
never touches the machine's own network.  On cancellation the nftables table is left in place (traffic keeps
flowing across a restart); userspace listeners close.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kubelite.client.clock import Clock, RealClock
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import Client, builtin
from kubelite.machinery.network import ClusterNetwork
from kubelite.proxy.commands import CommandError, Shell
from kubelite.proxy.model import ServicePortName, ServicePortPlan, build_plans
from kubelite.proxy.nftproxier import FULL_SYNC_PERIOD, NftablesProxier
from kubelite.proxy.sockets import SocketFactory
from kubelite.proxy.userspace import UserspaceProxier

log = logging.getLogger(__name__)

__all__ = ["MODES", "Proxier", "ProxyConfig", "choose_mode", "make_proxier", "run_proxy"]

MODES = ("auto", "nftables", "userspace")
SERVICES = builtin("", "services")
ENDPOINT_SLICES = builtin("discovery.k8s.io", "endpointslices")
RETRY_INITIAL = 0.5
RETRY_MAX = 30.0


@dataclass(frozen=True)
class ProxyConfig:
    """One node's proxy.  `node_ips` are the node's addresses that serve NodePorts (its InternalIPs)."""

    node_name: str
    node_ips: tuple[str, ...]
    cluster: ClusterNetwork = field(default_factory=ClusterNetwork)
    mode: str = "auto"
    netns: str | None = None
    min_sync_period: float = 1.0
    sync_period: float = 30.0
    full_sync_period: float = FULL_SYNC_PERIOD

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"proxy mode {self.mode!r} is not one of {', '.join(MODES)}")
        object.__setattr__(self, "node_ips", tuple(self.node_ips))


class Proxier(Protocol):
    """A back end: makes the node serve exactly the given plans (level-based, idempotent)."""

    mode: str

    async def sync(self, plans: Mapping[ServicePortName, ServicePortPlan]) -> None: ...

    async def close(self) -> None: ...


async def choose_mode(config: ProxyConfig, shell: Shell) -> tuple[str, str]:
    """(mode, why) for `config.mode`; "auto" probes root and nft.  Raises `CommandError` when nftables is
    forced and nft does not work."""
    if config.mode == "userspace":
        return "userspace", "asked for"
    if os.geteuid() != 0:
        if config.mode == "nftables":
            raise CommandError(["nft"], -1, "nftables mode needs root")
        return "userspace", "not running as root"
    try:
        await shell.run(["nft", "list", "tables"])
    except CommandError as exc:
        if config.mode == "nftables":
            raise
        return "userspace", f"nft does not work: {exc.stderr.strip() or exc}"
    return "nftables", "asked for" if config.mode == "nftables" else "root and nft available"


async def make_proxier(config: ProxyConfig, *, clock: Clock | None = None) -> Proxier:
    shell = Shell(config.netns)
    mode, why = await choose_mode(config, shell)
    log.info("service proxy mode chosen", extra={"mode": mode, "reason": why, "node": config.node_name})
    if mode == "nftables":
        return NftablesProxier(
            shell,
            cluster_cidr=config.cluster.cluster_cidr,
            node_ips=config.node_ips,
            full_sync_period=config.full_sync_period,
            clock=clock,
        )
    return UserspaceProxier(shell, SocketFactory(config.netns), root=os.geteuid() == 0)


async def _wait(event: asyncio.Event, clock: Clock, seconds: float) -> None:
    """Until `event` is set or `seconds` pass on `clock`, whichever is first."""
    if event.is_set():
        return
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, sleeper):
            task.cancel()
        await asyncio.gather(waiter, sleeper, return_exceptions=True)


async def run_proxy(
    client: Client,
    config: ProxyConfig,
    *,
    clock: Clock | None = None,
    informers: SharedInformerFactory | None = None,
    on_sync: Callable[[str, Mapping[ServicePortName, ServicePortPlan]], None] | None = None,
    proxier: Proxier | None = None,
) -> None:
    """Run the proxy until cancelled (module docstring).  `informers`: a factory the caller already runs (its
    Service and EndpointSlice informers are shared); without one the proxy runs its own.  `on_sync(mode,
    plans)` is called after every successful sync (tests, benchmarks).  `proxier`: a back end to use instead of
    the one `config.mode` picks (tests); it is closed on exit all the same."""
    clock = clock or RealClock()
    proxier = proxier or await make_proxier(config, clock=clock)
    own_factory = informers is None
    factory = informers or SharedInformerFactory(client, clock=clock)
    services = factory.informer(SERVICES)
    slices = factory.informer(ENDPOINT_SLICES)
    dirty = asyncio.Event()

    def mark(*_: object) -> None:
        dirty.set()

    handlers = [inf.add_handler(mark, mark, mark) for inf in (services, slices)]
    try:
        async with asyncio.TaskGroup() as tasks:
            if own_factory:
                tasks.create_task(factory.run())
            await services.wait_for_sync()
            await slices.wait_for_sync()
            await _sync_loop(proxier, config, clock, dirty, services.list, slices.list, on_sync)
    finally:
        for informer, handler in zip((services, slices), handlers, strict=True):
            informer.remove_handler(handler)
        await proxier.close()


async def _sync_loop(
    proxier: Proxier,
    config: ProxyConfig,
    clock: Clock,
    dirty: asyncio.Event,
    list_services: Callable[[], list[dict]],
    list_slices: Callable[[], list[dict]],
    on_sync: Callable[[str, Mapping[ServicePortName, ServicePortPlan]], None] | None,
) -> None:
    last_sync: float | None = None
    retry = RETRY_INITIAL
    while True:
        if last_sync is not None:
            await _wait(dirty, clock, config.sync_period)
            wait = config.min_sync_period - (clock.now() - last_sync)
            if wait > 0:
                await clock.sleep(wait)
        dirty.clear()
        last_sync = clock.now()
        plans = build_plans(list_services(), list_slices(), node_name=config.node_name)
        try:
            await proxier.sync(plans)
        except (CommandError, OSError) as exc:
            log.warning("proxy sync failed", extra={"mode": proxier.mode, "error": str(exc), "retry": retry})
            await clock.sleep(retry)
            retry = min(retry * 2, RETRY_MAX)
            dirty.set()
            continue
        retry = RETRY_INITIAL
        if on_sync is not None:
            on_sync(proxier.mode, plans)
