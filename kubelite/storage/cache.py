"""The watch cache: every current object in memory, and a bounded window of recent events.

GET, LIST and WATCH are served from here, never from the database.  The cache subscribes to the
backend, so it sees every committed write in revision order; writers wait for `wait_for_revision`
after their write so a client reads its own writes.

Objects are stored in the backend without `metadata.resourceVersion` (the revision is the key's
mod_revision, as with etcd).  The cache decodes each value once, sets the resourceVersion, and keeps
the object both as a dict (read-only: callers copy before changing) and as JSON bytes; a LIST is a
join of those bytes and a watch event's bytes are built once and shared by every watcher.

Watchers are bounded: a watcher whose queue is full is closed (the client re-lists and watches
again, as client-go's reflector does after any watch ends), so one slow client cannot make the
cache hold unbounded memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubelite.storage.interface import Backend, Compacted, Event, EventType

log = logging.getLogger(__name__)

REGISTRY_PREFIX = "/registry/"


@dataclass(slots=True)
class Entry:
    """One object as the cache holds it.  `obj` must not be mutated."""

    key: str
    obj: dict[str, Any]
    data: bytes
    revision: int


@dataclass(slots=True)
class CacheEvent:
    type: str  # ADDED | MODIFIED | DELETED
    key: str
    revision: int
    entry: Entry  # the new state; for DELETED the last state, with the delete's revision
    prev: Entry | None
    _encoded: dict[str, bytes] = field(default_factory=dict)

    def encoded(self, event_type: str) -> bytes:
        """`{"type":...,"object":...}\n`, built once per type and shared by all watchers."""
        data = self._encoded.get(event_type)
        if data is None:
            data = b'{"type":"' + event_type.encode() + b'","object":' + self.entry.data + b"}\n"
            self._encoded[event_type] = data
        return data


class WatchClosed(Exception):
    """The watcher fell too far behind or the cache stopped; the client should re-list."""


class Watcher:
    """A subscription to events under a prefix.  Iterate with `next()`; `close()` is idempotent."""

    def __init__(self, cache: WatchCache, prefix: str, max_queue: int) -> None:
        self.cache = cache
        self.prefix = prefix
        self.queue: asyncio.Queue[CacheEvent | None] = asyncio.Queue(max_queue)
        self.overflowed = False
        self.closed = False

    def _offer(self, event: CacheEvent) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    async def next(self) -> CacheEvent:
        """Next event; raises WatchClosed when the watcher was closed."""
        if self.closed and self.queue.empty():
            raise WatchClosed()
        event = await self.queue.get()
        if event is None:
            raise WatchClosed()
        return event

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.cache._watchers.discard(self)
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        if self.overflowed:
            # make room for the sentinel so the reader wakes up
            while True:
                try:
                    self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            self.queue.put_nowait(None)


def decode_entry(key: str, value: bytes, revision: int) -> Entry:
    obj = orjson.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return Entry(key, obj, orjson.dumps(obj), revision)


class WatchCache:
    """In-memory mirror of the backend (see module docstring).

    `history_size` bounds the events kept for watches that resume from a resourceVersion; a watch
    from before the window gets `Compacted` (HTTP 410), as from upstream's watch cache.
    """

    def __init__(self, backend: Backend, *, history_size: int = 20000, watcher_queue: int = 10000) -> None:
        self.backend = backend
        self.history_size = history_size
        self.watcher_queue = watcher_queue
        self.revision = 0
        self._objects: dict[str, dict[str, Entry]] = {}  # resource prefix -> key -> entry
        self._sorted_keys: dict[str, list[str] | None] = {}
        self._history: deque[CacheEvent] = deque(maxlen=history_size)
        self._oldest = 0  # events with revision > _oldest are in _history
        self._watchers: set[Watcher] = set()
        self._revision_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.listeners: list[Callable[[CacheEvent], None]] = []

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        subscription = self.backend.subscribe()
        items, revision = await self.backend.list(REGISTRY_PREFIX)
        for kv in items:
            entry = decode_entry(kv.key, kv.value, kv.mod_revision)
            self._bucket(kv.key)[kv.key] = entry
        self.revision = revision
        await self._load_history(revision)
        self._task = asyncio.create_task(self._follow(subscription, revision), name="watch-cache")
        self.ready.set()

    async def _load_history(self, revision: int) -> None:
        """Replay the backend's event log into the window so watches survive a server restart."""
        compacted = await self.backend.compacted_revision()
        try:
            events = await self.backend.events(compacted)
        except Compacted as exc:
            compacted, events = exc.compacted, []
        events = [e for e in events if e.revision <= revision][-self.history_size :]
        self._oldest = events[0].revision - 1 if events else revision
        if events and events[0].revision - 1 < compacted:
            self._oldest = compacted
        for event in events:
            self._history.append(self._to_cache_event(event))

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for watcher in list(self._watchers):
            watcher.close()

    async def _follow(self, subscription: Any, listed_revision: int) -> None:
        try:
            async for event in subscription:
                if event.revision <= listed_revision:
                    continue
                self._apply(event)
        except asyncio.CancelledError:
            raise
        except Exception:  # supervision point: a broken cache must not serve stale data silently
            log.exception("watch cache stopped following the backend")
            raise
        finally:
            for watcher in list(self._watchers):
                watcher.close()

    # -- applying events --------------------------------------------------------------------------

    @staticmethod
    def bucket_of(key: str) -> str:
        """`/registry/apps/deployments/ns/name` → `/registry/apps/deployments/`."""
        parts = key.split("/", 4)
        return "/".join(parts[:4]) + "/"

    def _bucket(self, key: str) -> dict[str, Entry]:
        name = self.bucket_of(key)
        bucket = self._objects.get(name)
        if bucket is None:
            bucket = self._objects[name] = {}
        self._sorted_keys[name] = None
        return bucket

    def _to_cache_event(self, event: Event) -> CacheEvent:
        prev = decode_entry(event.key, event.prev_value, event.revision) if event.prev_value is not None else None
        if event.type is EventType.DELETE:
            assert prev is not None
            return CacheEvent("DELETED", event.key, event.revision, prev, prev)
        assert event.value is not None
        entry = decode_entry(event.key, event.value, event.revision)
        return CacheEvent("ADDED" if prev is None else "MODIFIED", event.key, event.revision, entry, prev)

    def _apply(self, event: Event) -> None:
        cache_event = self._to_cache_event(event)
        bucket_name = self.bucket_of(event.key)
        bucket = self._objects.setdefault(bucket_name, {})
        if cache_event.type == "DELETED":
            current = bucket.pop(event.key, None)
            if current is not None:
                cache_event.prev = current
            self._sorted_keys[bucket_name] = None
        else:
            if cache_event.type == "MODIFIED" and event.key in bucket:
                cache_event.prev = bucket[event.key]
            if event.key not in bucket:
                self._sorted_keys[bucket_name] = None
            bucket[event.key] = cache_event.entry
        self.revision = event.revision
        if len(self._history) == self._history.maxlen:
            self._oldest = self._history[0].revision
        self._history.append(cache_event)
        for watcher in list(self._watchers):
            if event.key.startswith(watcher.prefix):
                watcher._offer(cache_event)
        for listener in self.listeners:
            listener(cache_event)
        self._wake_revision_waiters()

    def _wake_revision_waiters(self) -> None:
        if not self._revision_waiters:
            return
        still = []
        for revision, future in self._revision_waiters:
            if revision <= self.revision:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((revision, future))
        self._revision_waiters = still

    async def wait_for_revision(self, revision: int, timeout: float = 10.0) -> None:
        """Return once every write up to `revision` is visible here."""
        if revision <= self.revision:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._revision_waiters.append((revision, future))
        async with asyncio.timeout(timeout):
            await future

    # -- reads ------------------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        bucket = self._objects.get(self.bucket_of(key))
        return bucket.get(key) if bucket else None

    def list(self, prefix: str) -> list[Entry]:
        """Entries under `prefix` (a resource's prefix, optionally narrowed to a namespace), sorted by key."""
        name = self.bucket_of(prefix)
        bucket = self._objects.get(name)
        if not bucket:
            return []
        keys = self._sorted_keys.get(name)
        if keys is None:
            keys = sorted(bucket)
            self._sorted_keys[name] = keys
        if prefix == name:
            return [bucket[k] for k in keys]
        return [bucket[k] for k in keys if k.startswith(prefix)]

    def watch(self, prefix: str, since_revision: int | None) -> Watcher:
        """Register a watcher; with `since_revision`, first replay the window's events after it.

        Registration and replay happen without yielding to the loop, so no event falls between them.
        Raises `Compacted` when the window no longer reaches back to `since_revision`.
        """
        watcher = Watcher(self, prefix, self.watcher_queue)
        if since_revision is not None and since_revision < self.revision:
            if since_revision < self._oldest:
                raise Compacted(since_revision, self._oldest)
            for event in self._history:
                if event.revision > since_revision and event.key.startswith(prefix):
                    watcher._offer(event)
        self._watchers.add(watcher)
        return watcher

    @property
    def oldest_revision(self) -> int:
        return self._oldest
