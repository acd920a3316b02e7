"""`NftablesProxier`: applies service port plans to the table ``ip kubelite`` (rendering in `nftables`).

Contracts:

* `sync(plans)` is level-based: after it returns the table serves exactly `plans`.  The first sync, every sync
  after a failure, and one every `full_sync_period` seconds write the whole table (delete + re-create in one
  transaction, so there is never a moment without rules); the others write only the chains, sets and map
  elements of service ports whose plan changed (upstream's partial sync).  A full sync forgets the affinity
  sets' contents (clients are re-balanced once) but not established connections (conntrack keeps their NAT).
* A failed transaction changes nothing (nft is atomic); the error propagates so the caller retries, and the
  next attempt is a full sync.
* Only the table ``ip kubelite`` is ever written.  `close` leaves it in place on purpose: a proxy or agent
  restart must not interrupt traffic; the next start replaces it with its first (full) sync.
* Not safe for concurrent `sync` calls: one owner (the proxy's sync loop).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from kubelite.client.clock import Clock, RealClock
from kubelite.proxy.commands import Shell
from kubelite.proxy.conntrack import flush_stale_udp
from kubelite.proxy.model import ServicePortName, ServicePortPlan
from kubelite.proxy.nftables import TABLE, Unit, render_full, render_partial, render_unit

log = logging.getLogger(__name__)

__all__ = ["FULL_SYNC_PERIOD", "NftablesProxier"]

FULL_SYNC_PERIOD = 3600.0  # upstream's nftables mode also re-writes everything about once an hour


class NftablesProxier:
    """See the module docstring."""

    mode = "nftables"

    def __init__(
        self,
        shell: Shell,
        *,
        cluster_cidr: str,
        node_ips: Iterable[str],
        full_sync_period: float = FULL_SYNC_PERIOD,
        clock: Clock | None = None,
    ) -> None:
        self.shell = shell
        self.cluster_cidr = cluster_cidr
        self.node_ips = tuple(node_ips)
        self.full_sync_period = full_sync_period
        self._clock = clock or RealClock()
        self._units: dict[ServicePortName, Unit] = {}
        self._plans: dict[ServicePortName, ServicePortPlan] = {}
        self._last_full: float | None = None
        self.full_syncs = 0
        self.partial_syncs = 0

    async def sync(self, plans: Mapping[ServicePortName, ServicePortPlan]) -> None:
        units = {name: render_unit(plan, cluster_cidr=self.cluster_cidr) for name, plan in plans.items()}
        now = self._clock.now()
        full = self._last_full is None or now - self._last_full >= self.full_sync_period
        script = render_full(units, node_ips=self.node_ips) if full else render_partial(self._units, units)
        try:
            await self.shell.nft(script)
        except Exception:
            self._last_full = None  # the table may not be what we think: rewrite it all next time
            raise
        if full:
            self._last_full = now
            self.full_syncs += 1
        elif script:
            self.partial_syncs += 1
        log.debug("nftables synced", extra={"full": full, "service_ports": len(units), "bytes": len(script)})
        await flush_stale_udp(self.shell, self._plans, plans)
        self._units, self._plans = units, dict(plans)

    async def close(self) -> None:
        """Leaves ``ip kubelite`` in place (module docstring)."""
        log.info("proxy stopped; nftables rules left in place", extra={"table": f"ip {TABLE}"})
