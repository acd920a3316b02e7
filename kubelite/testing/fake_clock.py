"""A `Clock` that moves only when the test advances it.

`sleep()` parks the caller until `advance()` moves time past its deadline; `wait_for_sleepers(n)`
lets a test wait until the code under test is blocked on the clock before advancing it, so tests
are deterministic and need no real sleeps.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    """Monotonic time starts at `start_monotonic`; wall time at `start_wall`; both move together."""

    def __init__(self, *, start_monotonic: float = 1000.0, start_wall: datetime = DEFAULT_START) -> None:
        self._now = start_monotonic
        self._start_monotonic = start_monotonic
        self._start_wall = start_wall
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._changed: asyncio.Event | None = None

    def now(self) -> float:
        return self._now

    def utcnow(self) -> datetime:
        return self._start_wall + timedelta(seconds=self._now - self._start_monotonic)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        self._notify()
        try:
            await future
        finally:
            if not future.done():
                future.cancel()
            self._sleepers = [s for s in self._sleepers if s[2] is not future]
            heapq.heapify(self._sleepers)
            self._notify()

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has come (in deadline order).

        The woken tasks run at the caller's next `await`; use `step()` to advance and let them run.
        """
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def step(self, seconds: float, *, settle: int = 20) -> None:
        """`advance(seconds)`, then yield to the loop `settle` times so woken tasks make progress."""
        self.advance(seconds)
        for _ in range(settle):
            await asyncio.sleep(0)

    def sleepers(self) -> int:
        """How many tasks are blocked in `sleep()` right now."""
        return sum(1 for s in self._sleepers if not s[2].done())

    def next_deadline(self) -> float | None:
        """The earliest sleeper's wake-up time, or None."""
        pending = [s[0] for s in self._sleepers if not s[2].done()]
        return min(pending) if pending else None

    async def wait_for_sleepers(self, count: int = 1, *, timeout: float = 5.0) -> None:
        """Wait (in real time, at most `timeout`) until at least `count` tasks sleep on this clock."""
        async with asyncio.timeout(timeout):
            while self.sleepers() < count:
                self._changed = self._changed or asyncio.Event()
                changed = self._changed
                await changed.wait()

    async def run_until_idle(self, *, limit: float = 3600.0, settle: int = 20) -> None:
        """Advance to each next deadline in turn until nobody sleeps or `limit` seconds have passed."""
        end = self._now + limit
        while (deadline := self.next_deadline()) is not None and deadline <= end:
            await self.step(deadline - self._now, settle=settle)

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None


__all__ = ["FakeClock"]
