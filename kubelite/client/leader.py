"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection package.

Contracts:

* At most one elector holds the Lease at a time, as far as the API can tell: every write is a
  compare-and-swap on the Lease's resourceVersion, so two candidates racing for it cannot both win.
* A candidate takes the Lease only when it is free (no holder) or its holder has not renewed it for
  `leaseDurationSeconds` as measured on the candidate's own clock since it last saw the Lease change
  — no comparison of clocks across machines.
* The leader renews every `retry_period`; when it cannot renew within `renew_deadline` it stops
  leading: its work is cancelled before the Lease can expire for the others
  (`lease_duration > renew_deadline`), so leaders do not overlap unless clocks run at very
  different rates.
* `run()` campaigns until elected, then runs `on_started_leading()` as a task while it leads.  It
  returns when leadership is lost or that coroutine returns; then it calls `on_stopped_leading()`
  (only if it led).  An exception from `on_started_leading` ends leadership too and propagates in
  an ExceptionGroup.  With `release_on_cancel` the Lease is handed back on the way out, so the next
  candidate need not wait for it to expire.

Written fields: `holderIdentity`, `leaseDurationSeconds`, `acquireTime`, `renewTime` (MicroTime,
`2026-01-01T00:00:00.000000Z`) and `leaseTransitions` (incremented when the holder changes).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Coroutine
from typing import Any

from kubelite.client.clock import Clock, RealClock
from kubelite.client.errors import TransportError
from kubelite.client.interface import Client, builtin
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import rfc3339_micro

log = logging.getLogger(__name__)

LEASES = builtin("coordination.k8s.io", "leases")
JITTER_FACTOR = 1.2


class LeaderElector:
    """Campaign for and hold the Lease `namespace/name` as `identity`.  See the module docstring."""

    def __init__(
        self,
        client: Client,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Clock | None = None,
        release_on_cancel: bool = False,
        on_new_leader: Callable[[str], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not identity:
            raise ValueError("identity must not be empty")
        if lease_duration <= renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if renew_deadline <= JITTER_FACTOR * retry_period:
            raise ValueError(f"renew_deadline must be greater than {JITTER_FACTOR} × retry_period")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self._clock = clock or RealClock()
        self._on_new_leader = on_new_leader
        self._rng = rng or random.Random()
        self._observed: dict[str, Any] | None = None  # the Lease as last read or written
        self._observed_at = 0.0  # our clock when the Lease's spec last changed
        self._leader = ""
        self._leading = False
        self._failing = False

    @property
    def is_leader(self) -> bool:
        """True while this elector holds the Lease and runs `on_started_leading`."""
        return self._leading

    @property
    def leader(self) -> str:
        """The holder identity last observed ("" if none)."""
        return self._leader

    async def run(
        self,
        on_started_leading: Callable[[], Coroutine[Any, Any, None]],
        on_stopped_leading: Callable[[], None] | None = None,
    ) -> None:
        await self._acquire()
        self._leading = True
        log.info("became leader", extra=self._fields())
        try:
            async with asyncio.TaskGroup() as tasks:
                renewer = tasks.create_task(self._renew_until_lost())
                work = tasks.create_task(on_started_leading())
                await asyncio.wait((renewer, work), return_when=asyncio.FIRST_COMPLETED)
                renewer.cancel()
                work.cancel()
        finally:
            self._leading = False
            log.info("stopped leading", extra=self._fields())
            if self.release_on_cancel:
                await self._release()
            if on_stopped_leading is not None:
                on_stopped_leading()

    # -- campaigning and renewing -----------------------------------------------------------------

    async def _acquire(self) -> None:
        while not await self._attempt(self.renew_deadline):
            await self._clock.sleep(self.retry_period * (1 + JITTER_FACTOR * self._rng.random()))

    async def _renew_until_lost(self) -> None:
        while True:
            await self._clock.sleep(self.retry_period)
            deadline = self._clock.now() + self.renew_deadline
            while not await self._attempt(deadline - self._clock.now()):
                if self._clock.now() + self.retry_period >= deadline:
                    log.warning("failed to renew the lease in time; leadership lost", extra=self._fields())
                    return
                await self._clock.sleep(self.retry_period)

    async def _attempt(self, time_left: float) -> bool:
        """One try to take or renew the Lease, bounded by `time_left` seconds; False if not ours."""
        try:
            async with asyncio.timeout(max(time_left, 0.001)):
                ok = await self._try_acquire_or_renew()
        except (ApiError, TransportError, TimeoutError) as exc:
            if not self._failing:
                log.warning("lease request failed: %s", exc, extra=self._fields(error=str(exc)))
            self._failing = True
            return False
        self._failing = False
        return ok

    async def _try_acquire_or_renew(self) -> bool:
        now = self._clock.now()
        stamp = rfc3339_micro(self._clock.utcnow())
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except ApiError as exc:
            if exc.code != 404:
                raise
            spec = self._spec(acquire_time=stamp, renew_time=stamp, transitions=0)
            body = {
                "apiVersion": LEASES.api_version,
                "kind": LEASES.kind,
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": spec,
            }
            try:
                created = await self.client.create(LEASES, body, self.namespace)
            except ApiError as conflict:
                if conflict.code == 409:
                    return False
                raise
            self._observe(created, now)
            return True

        self._observe(lease, now)
        old = lease.get("spec") or {}
        holder = old.get("holderIdentity") or ""
        duration = old.get("leaseDurationSeconds") or self.lease_duration
        if holder and holder != self.identity and self._observed_at + duration > now:
            return False  # somebody else holds a lease that has not expired
        transitions = int(old.get("leaseTransitions") or 0)
        if holder == self.identity:
            spec = self._spec(acquire_time=old.get("acquireTime") or stamp, renew_time=stamp, transitions=transitions)
        else:
            spec = self._spec(acquire_time=stamp, renew_time=stamp, transitions=transitions + 1)
        updated = {**lease, "spec": {**old, **spec}}  # keeps metadata.resourceVersion: compare-and-swap
        try:
            written = await self.client.update(LEASES, updated, self.namespace)
        except ApiError as exc:
            if exc.code == 409:
                return False
            raise
        self._observe(written, now)
        return True

    async def _release(self) -> None:
        """Hand the Lease back (holder "" and a 1 s duration), if we still hold it.  Best effort."""
        try:
            async with asyncio.timeout(self.renew_deadline):
                lease = await self.client.get(LEASES, self.name, self.namespace)
                old = lease.get("spec") or {}
                if old.get("holderIdentity") != self.identity:
                    return
                stamp = rfc3339_micro(self._clock.utcnow())
                spec = {
                    **old,
                    "holderIdentity": "",
                    "leaseDurationSeconds": 1,
                    "acquireTime": stamp,
                    "renewTime": stamp,
                }
                written = await self.client.update(LEASES, {**lease, "spec": spec}, self.namespace)
                self._observe(written, self._clock.now())
        except (ApiError, TransportError, TimeoutError) as exc:
            log.warning("failed to release the lease: %s", exc, extra=self._fields(error=str(exc)))

    # -- bookkeeping ------------------------------------------------------------------------------

    def _spec(self, *, acquire_time: str, renew_time: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, math.ceil(self.lease_duration)),
            "acquireTime": acquire_time,
            "renewTime": renew_time,
            "leaseTransitions": transitions,
        }

    def _observe(self, lease: dict[str, Any], now: float) -> None:
        spec = lease.get("spec") or {}
        if self._observed is None or (self._observed.get("spec") or {}) != spec:
            self._observed_at = now
        self._observed = lease
        holder = spec.get("holderIdentity") or ""
        if holder != self._leader:
            self._leader = holder
            log.info("new leader observed", extra=self._fields(leader=holder))
            if self._on_new_leader is not None and holder:
                self._on_new_leader(holder)

    def _fields(self, **extra: Any) -> dict[str, Any]:
        return {"lease": f"{self.namespace}/{self.name}", "identity": self.identity, **extra}


__all__ = ["LEASES", "LeaderElector"]
