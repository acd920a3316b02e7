"""In-memory `Backend` for unit tests, and the subscriber fan-out the local backends share.

`MemoryBackend` has the semantics of the persistent backends (one global revision, compare-and-swap, a
bounded event log with `Compacted`, ordered `subscribe`) and keeps everything in dicts.  No method awaits
between reading and changing state, so every write is atomic with respect to the event loop, which is what
the SQLite backend's single writer gives it by construction.

`Fanout` delivers committed events to in-process subscribers.  Its overflow policy (bounded buffer, then
catch-up from the event log, then `Compacted`) is described on the class.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from kubelite.storage.interface import (
    Compacted,
    Event,
    EventType,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionMismatch,
    StorageError,
)

logger = logging.getLogger(__name__)

__all__ = ["Fanout", "MemoryBackend", "Subscription"]


class Fanout:
    """Delivers committed events to in-process subscribers, in revision order and without gaps.

    Lives on the event loop.  The backend calls `publish` once per commit, after the commit, with that
    commit's events in revision order; `publish` never blocks and never awaits, so a slow subscriber cannot
    hold up writers.

    Overflow policy: each subscriber buffers at most `buffer` events.  A subscriber that falls further
    behind is not dropped: it stops buffering, consumes what it has, then replays what it missed from the
    backend's event log (`replay` is the backend's `events`) until it has caught up with `publish`.  If the
    log has been compacted past its position meanwhile, iteration raises `Compacted` and the consumer must
    re-list, which is what the watch cache does for its own watchers.  When the backend closes, a
    subscriber ends after its buffered events (a subscriber that was lagging at that moment may miss the
    tail; it is shutting down too).
    """

    def __init__(
        self, replay: Callable[[int], Awaitable[list[Event]]], *, revision: int, buffer: int = 10_000
    ) -> None:
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        self._replay = replay
        self._buffer = buffer
        self._revision = revision  # the last published revision
        self._closed = False
        self._subscriptions: weakref.WeakSet[Subscription] = weakref.WeakSet()

    @property
    def revision(self) -> int:
        """The last revision handed to subscribers."""
        return self._revision

    def publish(self, events: Sequence[Event]) -> None:
        """Hand one commit's events (in revision order, contiguous with the previous commit) to everyone."""
        if not events:
            return
        self._revision = events[-1].revision
        for subscription in list(self._subscriptions):
            subscription._push(events)

    def subscribe(self) -> Subscription:
        """A subscription that starts after the last published revision (registered immediately)."""
        subscription = Subscription(self, self._revision)
        if self._closed:
            subscription._close()
        else:
            self._subscriptions.add(subscription)
        return subscription

    def close(self) -> None:
        """End every subscription (after the events already buffered for it).  Idempotent."""
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription._close()
        self._subscriptions.clear()

    def _discard(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)


class Subscription(AsyncIterator[Event]):
    """One subscriber's view of a `Fanout`: an async iterator of events, see `Fanout` for the policy."""

    def __init__(self, fanout: Fanout, revision: int) -> None:
        self._fanout = fanout
        self._delivered = revision  # the last revision returned to the consumer
        self._buffer: deque[Event] = deque()
        self._lagging = False
        self._closed = False
        self._wakeup = asyncio.Event()

    def _push(self, events: Sequence[Event]) -> None:
        if self._lagging or self._closed:
            return
        if len(self._buffer) + len(events) > self._fanout._buffer:
            self._lagging = True
            logger.debug("subscriber fell behind, will replay from the event log")
        else:
            self._buffer.extend(events)
        self._wakeup.set()

    def _close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def __anext__(self) -> Event:
        while True:
            while self._buffer:
                event = self._buffer.popleft()
                if event.revision > self._delivered:  # replay may have delivered it already
                    self._delivered = event.revision
                    return event
            if self._closed:
                raise StopAsyncIteration
            if self._lagging:
                await self._catch_up()
                continue
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _catch_up(self) -> None:
        """Refill the buffer from the event log; stop lagging once nothing published is missing."""
        events = [e for e in await self._fanout._replay(self._delivered) if e.revision > self._delivered]
        seen = events[-1].revision if events else self._delivered
        if not events and seen < self._fanout.revision:
            raise StorageError(f"event log ends at {seen} but revision {self._fanout.revision} was published")
        self._buffer.extend(events)
        # No await between this check and the flag change: a commit published from now on is buffered.
        if seen >= self._fanout.revision:
            self._lagging = False

    async def aclose(self) -> None:
        """Stop receiving events (the buffer is dropped)."""
        self._closed = True
        self._buffer.clear()
        self._fanout._discard(self)


class MemoryBackend:
    """`Backend` in a dict, with a bounded event log (by count and by age, `clock` seconds).

    Closing ends subscriptions and makes every later call raise `StorageError`; nothing survives it.
    """

    def __init__(
        self,
        *,
        history_max_events: int = 10_000,
        history_max_age_seconds: float = 3600.0,
        subscriber_buffer: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_events = history_max_events
        self._max_age = history_max_age_seconds
        self._clock = clock
        self._items: dict[str, KeyValue] = {}
        self._log: deque[tuple[float, Event]] = deque()
        self._revision = 0
        self._compacted = 0
        self._closed = False
        self._fanout = Fanout(self.events, revision=0, buffer=subscriber_buffer)

    async def start(self) -> None:
        self._check_open()

    async def close(self) -> None:
        self._closed = True
        self._fanout.close()

    async def get(self, key: str) -> KeyValue | None:
        self._check_open()
        return self._items.get(key)

    async def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        self._check_open()
        keys = sorted(k for k in self._items if k.startswith(prefix))
        return [self._items[k] for k in keys], self._revision

    async def create(self, key: str, value: bytes) -> int:
        self._check_open()
        if key in self._items:
            raise KeyExists(key)
        revision = self._revision + 1
        self._items[key] = KeyValue(key, bytes(value), revision, revision)
        self._commit(Event(EventType.PUT, key, revision, bytes(value), None))
        return revision

    async def update(self, key: str, value: bytes, *, expected_revision: int | None) -> int:
        self._check_open()
        old = self._current(key, expected_revision)
        revision = self._revision + 1
        self._items[key] = KeyValue(key, bytes(value), old.create_revision, revision)
        self._commit(Event(EventType.PUT, key, revision, bytes(value), old.value))
        return revision

    async def delete(self, key: str, *, expected_revision: int | None) -> tuple[int, bytes]:
        self._check_open()
        old = self._current(key, expected_revision)
        revision = self._revision + 1
        del self._items[key]
        self._commit(Event(EventType.DELETE, key, revision, None, old.value))
        return revision, old.value

    async def current_revision(self) -> int:
        self._check_open()
        return self._revision

    async def compacted_revision(self) -> int:
        self._check_open()
        return self._compacted

    async def events(self, since_revision: int) -> builtins.list[Event]:
        self._check_open()
        self._trim()
        if since_revision < self._compacted:
            raise Compacted(since_revision, self._compacted)
        return [event for _, event in self._log if event.revision > since_revision]

    def subscribe(self) -> AsyncIterator[Event]:
        return self._fanout.subscribe()

    async def compact(self, revision: int) -> None:
        self._check_open()
        self._compact_to(min(revision, self._revision))

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("backend is closed")

    def _current(self, key: str, expected_revision: int | None) -> KeyValue:
        old = self._items.get(key)
        if old is None:
            raise KeyNotFound(key)
        if expected_revision is not None and old.mod_revision != expected_revision:
            raise RevisionMismatch(key, old.mod_revision)
        return old

    def _commit(self, event: Event) -> None:
        self._revision = event.revision
        self._log.append((self._clock(), event))
        self._trim()
        self._fanout.publish([event])

    def _trim(self) -> None:
        """Apply the history limits: at most `max_events` events, none older than `max_age`."""
        cutoff = self._clock() - self._max_age
        target = self._revision - self._max_events
        for created_at, event in self._log:
            if created_at >= cutoff:
                break
            target = max(target, event.revision)
        self._compact_to(target)

    def _compact_to(self, revision: int) -> None:
        if revision <= self._compacted:
            return
        self._compacted = revision
        while self._log and self._log[0][1].revision <= revision:
            self._log.popleft()
