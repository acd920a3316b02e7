"""Time, injected: every component that waits or measures durations takes a `Clock`.

`RealClock` is the loop's monotonic time plus the wall clock; `kubelite.testing.fake_clock.FakeClock`
moves only when a test says so, so work queues, informers and leader election are tested without
real sleeps.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Monotonic time for durations and deadlines; wall time only for timestamps written to objects."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""
        ...

    def utcnow(self) -> datetime:
        """The wall-clock time, timezone-aware UTC (for `renewTime`, `acquireTime`, ...)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds` of this clock's time have passed; cancellable."""
        ...


class RealClock:
    """`time.monotonic()`, `datetime.now(UTC)` and `asyncio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    def utcnow(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


__all__ = ["Clock", "RealClock"]
