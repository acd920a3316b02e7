"""A de-duplicating, delaying, rate-limited work queue with client-go's `util/workqueue` guarantees.

* Fair: items are handed out in the order they were added.
* Stingy: an item added several times before it is processed is processed once.
* Exclusive: an item is never processed by two workers at once.  An item added again while it is
  being processed is marked dirty and queued again when the worker calls `done(item)`.
* Delayed: `add_after(item, delay)` adds the item once `delay` seconds have passed on the queue's
  `Clock`; an item waiting twice keeps the earlier time.  `add_rate_limited(item)` adds it after
  the rate limiter's delay (per-item exponential back-off: 5 ms, 10 ms, ... up to 1000 s, combined
  with an overall 10 qps / 100 burst bucket, as client-go's default controller rate limiter);
  `forget(item)` resets the item's back-off once it has been processed successfully.
* Shutdown: after `shutdown()` `add*` do nothing and delayed items are dropped; `get()` still hands
  out what was queued, then raises `QueueShutDown`.

Items must be hashable (controllers queue `ObjectKey`s).  All methods except `get()` and
`shutdown_with_drain()` are synchronous and never block.  Every worker follows this shape::

    while True:
        try:
            key = await queue.get()
        except QueueShutDown:
            return
        try:
            await reconcile(key)
        except Exception:
            queue.add_rate_limited(key)     # failed: retry with back-off
        else:
            queue.forget(key)               # succeeded: reset its back-off
        finally:
            queue.done(key)

No background task: delayed items become ready inside `get()` (which sleeps on the clock until the
earliest one is due), so a queue needs no owner to run it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Hashable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from kubelite.client.clock import Clock, RealClock

if TYPE_CHECKING:
    from kubelite.client.metrics import QueueMetrics

T = TypeVar("T", bound=Hashable)

DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0
DEFAULT_QPS = 10.0
DEFAULT_BURST = 100


class QueueShutDown(Exception):
    """`get()` on a queue that is shut down and empty."""


class RateLimiter(Protocol):
    def when(self, item: Hashable) -> float:
        """The delay before `item` may be retried; counts one more failure of it."""
        ...

    def forget(self, item: Hashable) -> None:
        """Stop tracking `item` (it succeeded)."""
        ...

    def retries(self, item: Hashable) -> int:
        """How many failures of `item` are counted."""
        ...


class ItemExponentialRateLimiter:
    """`base_delay * 2**failures`, capped at `max_delay`, per item."""

    def __init__(self, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        failures = self._failures.get(item, 0)
        self._failures[item] = failures + 1
        if failures >= 64:  # 2**64 * anything exceeds any sane cap
            return self.max_delay
        return min(self.base_delay * (2**failures), self.max_delay)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def retries(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """An overall token bucket (`qps` refill, `burst` size) shared by all items; each `when` takes a
    token and returns how long until that token exists."""

    def __init__(self, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST, *, clock: Clock) -> None:
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.now()

    def when(self, item: Hashable) -> float:
        now = self._clock.now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: Hashable) -> None:
        pass

    def retries(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay of several limiters (each counts every failure)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, item: Hashable) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def retries(self, item: Hashable) -> int:
        return max(limiter.retries(item) for limiter in self.limiters)


def default_controller_rate_limiter(
    clock: Clock,
    *,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    qps: float = DEFAULT_QPS,
    burst: int = DEFAULT_BURST,
) -> RateLimiter:
    """client-go's DefaultControllerRateLimiter: per-item 5 ms..1000 s back-off, overall 10 qps/100 burst."""
    return MaxOfRateLimiter(
        ItemExponentialRateLimiter(base_delay, max_delay), BucketRateLimiter(qps, burst, clock=clock)
    )


class WorkQueue(Generic[T]):
    """See the module docstring for the guarantees.  Use from tasks of one event loop."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rate_limiter: RateLimiter | None = None,
        name: str = "",
        metrics: QueueMetrics | None = None,
    ) -> None:
        """`metrics`: record client-go's ``workqueue_*`` metrics (`kubelite.client.metrics`); None: none."""
        self.name = name
        self._clock = clock or RealClock()
        self._metrics = metrics
        if metrics is not None:
            metrics.bind(self._clock)
        self._limiter = rate_limiter or default_controller_rate_limiter(self._clock)
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._waiting: dict[T, float] = {}  # item → when it becomes ready
        self._heap: list[tuple[float, int, T]] = []  # may hold stale entries; `_waiting` decides
        self._seq = itertools.count()
        self._shutting_down = False
        self._changed = asyncio.Event()  # replaced after every set: waiters see each change

    # -- adding -----------------------------------------------------------------------------------

    def add(self, item: T) -> None:
        """Queue `item` unless it is queued already; if it is being processed, after `done(item)`."""
        if self._shutting_down or item in self._dirty:
            return
        if self._metrics is not None:
            self._metrics.add(item)
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        self._notify()

    def add_after(self, item: T, delay: float) -> None:
        """`add(item)` once `delay` seconds have passed; at once if `delay <= 0`."""
        if self._shutting_down:
            return
        if self._metrics is not None:
            self._metrics.retry()  # client-go counts every delayed add as a retry
        if delay <= 0:
            self.add(item)
            return
        ready_at = self._clock.now() + delay
        current = self._waiting.get(item)
        if current is not None and current <= ready_at:
            return
        self._waiting[item] = ready_at
        heapq.heappush(self._heap, (ready_at, next(self._seq), item))
        self._notify()

    def add_rate_limited(self, item: T) -> None:
        """`add_after(item, <the rate limiter's delay for item>)`; counts one more failure of it."""
        self.add_after(item, self._limiter.when(item))

    def forget(self, item: T) -> None:
        """Reset `item`'s back-off (call after it was processed successfully)."""
        self._limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self._limiter.retries(item)

    # -- processing -------------------------------------------------------------------------------

    async def get(self) -> T:
        """The next item, which the caller now owns until `done(item)`; waits while none is ready.

        Raises `QueueShutDown` once the queue is shut down and empty.  Cancelling a waiting `get()`
        takes nothing from the queue.
        """
        while True:
            self._promote_ready()
            if self._queue:
                item = self._queue.popleft()
                self._processing.add(item)
                self._dirty.discard(item)
                if self._metrics is not None:
                    self._metrics.get(item)
                return item
            if self._shutting_down:
                raise QueueShutDown(self.name)
            changed = self._changed
            if self._heap:
                await self._wait(changed, self._heap[0][0])
            else:
                await changed.wait()

    def done(self, item: T) -> None:
        """The caller finished `item`; if it was added meanwhile, it is queued again now."""
        if self._metrics is not None and item in self._processing:
            self._metrics.done(item)
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
        self._notify()

    def shutdown(self) -> None:
        """Stop accepting items and drop delayed ones; waiting `get()` calls raise once queued items are gone."""
        self._shutting_down = True
        self._waiting.clear()
        self._heap.clear()
        self._notify()

    async def shutdown_with_drain(self) -> None:
        """`shutdown()`, then wait until every queued and in-process item is done."""
        self.shutdown()
        while self._queue or self._processing:
            changed = self._changed
            await changed.wait()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def processing(self) -> int:
        """How many items workers hold (between `get()` and `done()`)."""
        return len(self._processing)

    def waiting(self) -> int:
        """How many items wait for their delay."""
        return len(self._waiting)

    def __len__(self) -> int:
        """How many items are ready to be handed out (not the delayed or in-process ones)."""
        return len(self._queue)

    def len(self) -> int:
        """Same as `len(queue)`, as client-go's `Len()`."""
        return len(self._queue)

    # -- internals --------------------------------------------------------------------------------

    def _promote_ready(self) -> None:
        now = self._clock.now()
        while self._heap and self._heap[0][0] <= now:
            ready_at, _, item = heapq.heappop(self._heap)
            if self._waiting.get(item) == ready_at:
                del self._waiting[item]
                self.add(item)

    async def _wait(self, changed: asyncio.Event, ready_at: float) -> None:
        """Until the queue changes or the clock reaches `ready_at`, whichever comes first."""
        if ready_at <= self._clock.now():
            return
        waiter = asyncio.ensure_future(changed.wait())
        sleeper = asyncio.ensure_future(self._sleep_until(ready_at))
        try:
            await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()
            await asyncio.gather(waiter, sleeper, return_exceptions=True)

    async def _sleep_until(self, ready_at: float) -> None:
        # the delay is measured when the sleep starts: a clock moved in between must not postpone the wake-up
        await self._clock.sleep(ready_at - self._clock.now())

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


__all__ = [
    "BucketRateLimiter",
    "ItemExponentialRateLimiter",
    "MaxOfRateLimiter",
    "QueueShutDown",
    "RateLimiter",
    "WorkQueue",
    "default_controller_rate_limiter",
]
