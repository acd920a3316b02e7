"""The scheduling queue: which pending pod to try next, and when to retry one that did not fit
(kube-scheduler's PriorityQueue, 1.32, with queueing hints on as is the 1.32 default).

Three places a pending pod can be, exactly one at a time (or "in flight" between `pop` and the
attempt's end):

* active — ready to try; `pop` returns the highest `spec.priority` first, then the one queued
  longest (earliest timestamp);
* backoff — failed recently; it becomes active once `timestamp + backoff(attempts)` has passed
  (1 s after the first attempt, doubling, capped at 10 s) and the shell calls
  `flush_backoff_completed` (upstream: every second);
* unschedulable — rejected, waiting for a cluster event that may change that: a
  `move_all_to_active_or_backoff(event)` whose event one of the pod's rejecting plugins registered
  (see events.py) moves it on — to backoff if still backing off, else to active.  Pods parked
  longer than 5 minutes are moved by `flush_unschedulable_leftover` (upstream: every 30 s).
  Pods with `spec.schedulingGates` wait here until an update removes the gates.

Events seen while pods are in flight are remembered, so a pod whose attempt fails because of a
state that changed meanwhile is not parked waiting for an event that already happened.

Everything is synchronous and time comes from the injected clock (anything with `now()` in
seconds), so tests need no sleeps.  `pop_wait` is the async shell's blocking pop: it also runs
the two timers upstream runs in goroutines (backoff completion, the 30 s unschedulable flush), so
it needs a clock with `sleep` too.  Not thread-safe: one owner, one event loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from kubelite.scheduler.events import (
    EVENT_UNSCHEDULABLE_TIMEOUT,
    POD,
    ActionType,
    ClusterEvent,
    pod_update_action,
)
from kubelite.scheduler.nodeinfo import PodInfo, as_pod_info

DEFAULT_INITIAL_BACKOFF = 1.0
DEFAULT_MAX_BACKOFF = 10.0
DEFAULT_MAX_IN_UNSCHEDULABLE = 300.0
UNSCHEDULABLE_FLUSH_INTERVAL = 30.0

SCHEDULING_GATES = "SchedulingGates"
SCHEDULING_GATES_EVENTS = (ClusterEvent(POD, ActionType.UPDATE_POD_SCHEDULING_GATES_ELIMINATED),)

ACTIVE = "activeQ"
BACKOFF = "backoffQ"
UNSCHEDULABLE = "unschedulablePods"


class Clock(Protocol):
    def now(self) -> float: ...


class SleepingClock(Clock, Protocol):
    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class Strategy(Enum):
    """queueingStrategy: what an event means for a parked pod."""

    SKIP = "skip"
    AFTER_BACKOFF = "after-backoff"
    IMMEDIATELY = "immediately"


@dataclass(eq=False)
class QueuedPodInfo:
    """A pending pod and its scheduling history (framework.QueuedPodInfo)."""

    pod_info: PodInfo
    timestamp: float
    initial_attempt_timestamp: float | None = None
    attempts: int = 0
    unschedulable_count: int = 0
    consecutive_errors_count: int = 0
    unschedulable_plugins: frozenset[str] = frozenset()
    pending_plugins: frozenset[str] = frozenset()
    gated: bool = False

    @property
    def key(self) -> str:
        return self.pod_info.key

    @property
    def pod(self) -> Mapping[str, Any]:
        return self.pod_info.pod

    @property
    def priority(self) -> int:
        return self.pod_info.priority


def backoff_duration(attempts: int, *, initial: float, maximum: float) -> float:
    """calculateBackoffDuration: 0 before any attempt, then initial * 2^(attempts-1), capped."""
    if attempts == 0:
        return 0.0
    duration = initial
    for _ in range(1, attempts):
        if duration > maximum - duration:
            return maximum
        duration += duration
    return duration


def _pod_updated(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """isPodUpdated: a change beyond resourceVersion, generation, status, managedFields, finalizers."""

    def strip(pod: Mapping[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in (pod.get("metadata") or {}).items() if k not in _VOLATILE_META}
        return {**{k: v for k, v in pod.items() if k != "status"}, "metadata": meta}

    return strip(old) != strip(new)


_VOLATILE_META = frozenset({"resourceVersion", "generation", "managedFields", "finalizers"})


class SchedulingQueue:
    """See the module docstring.  `events_to_register` maps plugin names to the events that may
    undo their rejections (plugins.default_events_to_register())."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        events_to_register: Mapping[str, Iterable[ClusterEvent]] | None = None,
        initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        max_in_unschedulable: float = DEFAULT_MAX_IN_UNSCHEDULABLE,
    ) -> None:
        self._clock = clock or MonotonicClock()
        self._events_to_register = {name: tuple(events) for name, events in (events_to_register or {}).items()}
        self._events_to_register.setdefault(SCHEDULING_GATES, SCHEDULING_GATES_EVENTS)
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_in_unschedulable = max_in_unschedulable
        self._seq = itertools.count()
        self._active: dict[str, QueuedPodInfo] = {}
        self._active_heap: list[tuple[int, float, int, str]] = []
        self._active_seq: dict[str, int] = {}
        self._backoff: dict[str, QueuedPodInfo] = {}
        self._backoff_heap: list[tuple[float, int, str]] = []
        self._backoff_seq: dict[str, int] = {}
        self._unschedulable: dict[str, QueuedPodInfo] = {}
        self._in_flight: dict[str, int] = {}  # pod key → index of the first event it has not seen
        self._events: list[ClusterEvent] = []
        self._events_base = 0  # absolute index of self._events[0]
        self.scheduling_cycle = 0
        self._changed = asyncio.Event()  # set when a pod becomes active or a backoff may end sooner
        self._last_leftover_flush = self._clock.now()

    # --- the informer side: pending pods come and go --------------------------------------------

    def add(self, pod: PodInfo | Mapping[str, Any]) -> None:
        """A new pending pod (or one seen again): queue it as active, or park it if gated."""
        info = as_pod_info(pod)
        existing = self._get(info.key)
        if existing is not None or info.key in self._in_flight:
            self.update(existing.pod if existing is not None else info.pod, info)
            return
        self._move_to_active(QueuedPodInfo(info, self._clock.now()))

    def update(self, old: Mapping[str, Any], new: PodInfo | Mapping[str, Any]) -> None:
        """A pending pod changed.  A parked pod moves on only if the change is one of its rejecting
        plugins' events (tolerations added, scheduling gates removed, ...)."""
        info = as_pod_info(new)
        key = info.key
        event = ClusterEvent(POD, pod_update_action(old, info.pod), "UnscheduledPodUpdate", pod_key=key)
        if key in self._in_flight:
            self._events.append(event)
            return
        if (queued := self._active.get(key)) is not None:
            queued.pod_info = info
            self._push_active(queued)
        elif (queued := self._backoff.get(key)) is not None:
            queued.pod_info = info
        elif (queued := self._unschedulable.get(key)) is not None:
            queued.pod_info = info
            if _pod_updated(old, info.pod):
                strategy = self._worth_requeuing(queued, event)
                if strategy is not Strategy.SKIP:
                    del self._unschedulable[key]
                    self._requeue(queued, strategy)
        else:
            self._move_to_active(QueuedPodInfo(info, self._clock.now()))

    def delete(self, pod: PodInfo | Mapping[str, Any]) -> None:
        """The pod is gone (deleted, or bound by someone else)."""
        key = pod.key if isinstance(pod, PodInfo) else as_pod_info(pod).key
        self._active.pop(key, None)
        self._active_seq.pop(key, None)
        self._backoff.pop(key, None)
        self._backoff_seq.pop(key, None)
        self._unschedulable.pop(key, None)

    # --- the scheduling loop side -----------------------------------------------------------------

    def pop(self) -> QueuedPodInfo | None:
        """The next pod to try, or None when none is active.  It is in flight until `done` or
        `add_unschedulable_if_not_present`."""
        while self._active_heap:
            _, _, seq, key = heapq.heappop(self._active_heap)
            if self._active_seq.get(key) != seq:
                continue
            del self._active_seq[key]
            queued = self._active.pop(key)
            queued.attempts += 1
            self.scheduling_cycle += 1
            self._in_flight[key] = self._events_base + len(self._events)
            return queued
        return None

    async def pop_wait(self) -> QueuedPodInfo:
        """Wait until a pod is active and pop it (see `pop`).  Meanwhile, moves pods whose backoff
        ended to active, and every `UNSCHEDULABLE_FLUSH_INTERVAL` requeues pods parked longer than
        `max_in_unschedulable`.  Cancel to stop."""
        clock: SleepingClock = self._clock  # type: ignore[assignment]
        while True:
            now = clock.now()
            self.flush_backoff_completed()
            if now - self._last_leftover_flush >= UNSCHEDULABLE_FLUSH_INTERVAL:
                self._last_leftover_flush = now
                self.flush_unschedulable_leftover()
            queued = self.pop()
            if queued is not None:
                return queued
            deadlines = [d for d in (self.next_backoff_expiry(),) if d is not None]
            if self._unschedulable:
                deadlines.append(self._last_leftover_flush + UNSCHEDULABLE_FLUSH_INTERVAL)
            self._changed.clear()
            if not deadlines:
                await self._changed.wait()
                continue
            await _first_of(self._changed.wait(), clock.sleep(max(min(deadlines) - now, 0.0)))

    def done(self, key: str) -> None:
        """The attempt for `key` is over (bound, or given up); forget its in-flight events."""
        if self._in_flight.pop(key, None) is None:
            return
        if not self._in_flight:
            self._events_base += len(self._events)
            self._events.clear()
            return
        oldest = min(self._in_flight.values())
        if oldest > self._events_base:
            del self._events[: oldest - self._events_base]
            self._events_base = oldest

    def add_unschedulable_if_not_present(
        self,
        queued: QueuedPodInfo,
        *,
        unschedulable_plugins: Iterable[str] = (),
        pending_plugins: Iterable[str] = (),
    ) -> str:
        """Return a pod whose attempt failed.  `unschedulable_plugins` are the plugins that rejected
        it (FitError.diagnosis.unschedulable_plugins); none means an error, retried after backoff.
        Returns the queue it went to.  Raises ValueError if the pod is already queued."""
        key = queued.key
        try:
            if self._get(key) is not None:
                raise ValueError(f"pod {key} is already queued")
            queued.unschedulable_plugins = frozenset(unschedulable_plugins)
            queued.pending_plugins = frozenset(pending_plugins)
            if queued.unschedulable_plugins or queued.pending_plugins:
                queued.unschedulable_count += 1
                queued.consecutive_errors_count = 0
            else:
                queued.consecutive_errors_count += 1
            queued.timestamp = self._clock.now()
            return self._requeue(queued, self._hint_for_in_flight(queued))
        finally:
            self.done(key)

    def activate(self, keys: Iterable[str]) -> int:
        """Move the given parked or backing-off pods straight to active (upstream's Activate)."""
        moved = 0
        for key in keys:
            queued = self._unschedulable.pop(key, None) or self._pop_backoff(key)
            if queued is not None and self._move_to_active(queued):
                moved += 1
        return moved

    # --- events and timers ------------------------------------------------------------------------

    def move_all_to_active_or_backoff(
        self, event: ClusterEvent, *, pre_check: Callable[[QueuedPodInfo], bool] | None = None
    ) -> int:
        """A cluster event happened: requeue the parked pods it may help (and that pass
        `pre_check`).  Returns how many left the unschedulable set."""
        if not self._interesting(event):
            return 0
        candidates = [q for q in self._unschedulable.values() if pre_check is None or pre_check(q)]
        moved = self._move_pods(candidates, event)
        if self._in_flight:
            self._events.append(event)
        return moved

    def flush_backoff_completed(self) -> int:
        """Move every pod whose backoff has expired to active; returns how many."""
        now = self._clock.now()
        moved = 0
        while self._backoff_heap and self._backoff_heap[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff_heap)
            if self._backoff_seq.get(key) != seq:
                continue
            del self._backoff_seq[key]
            if self._move_to_active(self._backoff.pop(key)):
                moved += 1
        return moved

    def flush_unschedulable_leftover(self) -> int:
        """Requeue pods parked longer than `max_in_unschedulable` (the UnschedulableTimeout event)."""
        now = self._clock.now()
        stale = [q for q in self._unschedulable.values() if now - q.timestamp > self.max_in_unschedulable]
        return self._move_pods(stale, EVENT_UNSCHEDULABLE_TIMEOUT) if stale else 0

    def next_backoff_expiry(self) -> float | None:
        """When the earliest backing-off pod becomes ready (clock time), for a shell that sleeps."""
        while self._backoff_heap and self._backoff_seq.get(self._backoff_heap[0][2]) != self._backoff_heap[0][1]:
            heapq.heappop(self._backoff_heap)
        return self._backoff_heap[0][0] if self._backoff_heap else None

    # --- inspection -------------------------------------------------------------------------------

    def where(self, key: str) -> str | None:
        """Which queue holds the pod: activeQ, backoffQ, unschedulablePods, or None."""
        if key in self._active:
            return ACTIVE
        if key in self._backoff:
            return BACKOFF
        if key in self._unschedulable:
            return UNSCHEDULABLE
        return None

    def lengths(self) -> tuple[int, int, int]:
        """(active, backoff, unschedulable)."""
        return len(self._active), len(self._backoff), len(self._unschedulable)

    def pending_pods(self) -> tuple[list[QueuedPodInfo], str]:
        """Every queued pod and upstream's summary line."""
        pods = [*self._active.values(), *self._backoff.values(), *self._unschedulable.values()]
        active, backoff, unschedulable = self.lengths()
        return pods, f"activeQ:{active}; backoffQ:{backoff}; unschedulablePods:{unschedulable}"

    def __len__(self) -> int:
        return sum(self.lengths())

    def is_backing_off(self, queued: QueuedPodInfo) -> bool:
        if queued.gated:
            return False
        return self._backoff_expiry(queued) > self._clock.now()

    # --- internals --------------------------------------------------------------------------------

    def _get(self, key: str) -> QueuedPodInfo | None:
        return self._active.get(key) or self._backoff.get(key) or self._unschedulable.get(key)

    def _backoff_expiry(self, queued: QueuedPodInfo) -> float:
        duration = backoff_duration(queued.attempts, initial=self.initial_backoff, maximum=self.max_backoff)
        return queued.timestamp + duration

    def _push_active(self, queued: QueuedPodInfo) -> None:
        seq = next(self._seq)
        self._active[queued.key] = queued
        self._active_seq[queued.key] = seq
        heapq.heappush(self._active_heap, (-queued.priority, queued.timestamp, seq, queued.key))
        self._changed.set()

    def _push_backoff(self, queued: QueuedPodInfo) -> None:
        seq = next(self._seq)
        self._backoff[queued.key] = queued
        self._backoff_seq[queued.key] = seq
        heapq.heappush(self._backoff_heap, (self._backoff_expiry(queued), seq, queued.key))
        self._changed.set()

    def _pop_backoff(self, key: str) -> QueuedPodInfo | None:
        self._backoff_seq.pop(key, None)
        return self._backoff.pop(key, None)

    def _move_to_active(self, queued: QueuedPodInfo) -> bool:
        """moveToActiveQ: run the gate check; a gated pod is parked instead (False)."""
        queued.gated = bool((queued.pod.get("spec") or {}).get("schedulingGates"))
        if queued.gated:
            queued.unschedulable_plugins = frozenset({SCHEDULING_GATES})
            if queued.key not in self._active and queued.key not in self._backoff:
                self._unschedulable[queued.key] = queued
            return False
        if queued.initial_attempt_timestamp is None:
            queued.initial_attempt_timestamp = self._clock.now()
        self._unschedulable.pop(queued.key, None)
        self._pop_backoff(queued.key)
        self._push_active(queued)
        return True

    def _requeue(self, queued: QueuedPodInfo, strategy: Strategy) -> str:
        """requeuePodViaQueueingHint: park, back off, or activate."""
        if strategy is Strategy.SKIP:
            self._unschedulable[queued.key] = queued
            return UNSCHEDULABLE
        if strategy is Strategy.AFTER_BACKOFF and self.is_backing_off(queued):
            self._push_backoff(queued)
            return BACKOFF
        return ACTIVE if self._move_to_active(queued) else UNSCHEDULABLE

    def _move_pods(self, pods: Iterable[QueuedPodInfo], event: ClusterEvent) -> int:
        moved = 0
        for queued in list(pods):
            if queued.gated and SCHEDULING_GATES in queued.unschedulable_plugins:
                continue  # only the pod's own update (see `update`) can lift its gates
            strategy = self._worth_requeuing(queued, event)
            if strategy is Strategy.SKIP:
                continue
            del self._unschedulable[queued.key]
            if self._requeue(queued, strategy) != UNSCHEDULABLE:
                moved += 1
        return moved

    def _interesting(self, event: ClusterEvent) -> bool:
        if event.resource == "*":
            return True
        return any(r.matches(event) for events in self._events_to_register.values() for r in events)

    def _worth_requeuing(self, queued: QueuedPodInfo, event: ClusterEvent) -> Strategy:
        """isPodWorthRequeuing, with every matching registration taken as "Queue"."""
        rejectors = queued.unschedulable_plugins | queued.pending_plugins
        if not rejectors:
            return Strategy.AFTER_BACKOFF
        if event.pod_key is not None and event.pod_key != queued.key:
            return Strategy.SKIP
        if event.is_wildcard:
            return Strategy.AFTER_BACKOFF
        strategy = Strategy.SKIP
        for plugin in rejectors:
            if not any(r.matches(event) for r in self._events_to_register.get(plugin, ())):
                continue
            if plugin in queued.pending_plugins:
                return Strategy.IMMEDIATELY
            if not queued.pending_plugins:
                return Strategy.AFTER_BACKOFF
            strategy = Strategy.AFTER_BACKOFF
        return strategy

    def _hint_for_in_flight(self, queued: QueuedPodInfo) -> Strategy:
        """determineSchedulingHintForInFlightPod: did an event during the attempt help?"""
        if not (queued.unschedulable_plugins or queued.pending_plugins):
            return Strategy.AFTER_BACKOFF
        start = self._in_flight.get(queued.key)
        if start is None:
            return Strategy.SKIP
        strategy = Strategy.SKIP
        for event in self._events[max(start - self._events_base, 0) :]:
            hint = self._worth_requeuing(queued, event)
            if hint is Strategy.IMMEDIATELY:
                return hint
            if hint is Strategy.AFTER_BACKOFF:
                strategy = hint
                if not queued.pending_plugins:
                    return hint
        return strategy


async def _first_of(*waits: Any) -> None:
    """Await whichever coroutine finishes first; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = [
    "ACTIVE",
    "BACKOFF",
    "DEFAULT_INITIAL_BACKOFF",
    "DEFAULT_MAX_BACKOFF",
    "DEFAULT_MAX_IN_UNSCHEDULABLE",
    "SCHEDULING_GATES",
    "UNSCHEDULABLE",
    "UNSCHEDULABLE_FLUSH_INTERVAL",
    "Clock",
    "MonotonicClock",
    "QueuedPodInfo",
    "SchedulingQueue",
    "SleepingClock",
    "Strategy",
    "backoff_duration",
]
