"""Informers: a list+watch reflector feeding an indexed local cache and event handlers.

Contracts (after client-go's shared_informer.go):

* The cache follows the API: `run()` lists, then watches from the list's resourceVersion; when a
  watch ends it watches again from the last resourceVersion seen (bookmarks advance it).  When
  that version is too old (410 Expired, as an HTTP status or an ERROR event) it lists again and
  delivers the differences.  Watches ask for bookmarks and a random 5–10 minute server timeout, so
  they are renewed regularly.  Any other failure (server down, 5xx) is retried for ever with a
  capped exponential back-off; a failure streak is logged once.
* Handlers see the cache's transitions, in the order the cache applies them: `on_add(obj)` for a
  new key, `on_update(old, new)` for a new resourceVersion of a key (and, every `resync_seconds`,
  for every object with `old is new`), `on_delete(obj)` for a key that went away — with the
  DELETED event's object, or after a re-list with the last state the cache knew.  A handler added
  to an informer that holds objects first gets `on_add` for each of them.  Handlers are plain
  synchronous callables run on the event loop, one after the other in registration order; they
  must be quick (enqueue a key, nothing more) and must not block.  An exception in a handler is
  logged and does not stop the informer or the other handlers.
* Objects given to handlers and returned by `get`/`list`/`by_index` are the cache's own: read-only.
  Copy before changing (`kubelite.machinery.meta.deep_copy`).
* `has_synced` turns true once the first list has been delivered to the handlers and stays true;
  the cache may lag behind the API but never goes back in resourceVersion for a key.
* `SharedInformerFactory` hands out one informer per (resource, namespace, selectors) so that
  components in one process share a watch and a cache.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from kubelite.client.clock import Clock, RealClock
from kubelite.client.errors import TransportError, api_error_from_status, is_status
from kubelite.client.indexer import Indexer, IndexFunc
from kubelite.client.interface import Client, ObjectKey, WatchEvent, key_of
from kubelite.client.metrics import ReflectorMetrics, ReflectorRecorder
from kubelite.machinery.errors import ApiError
from kubelite.machinery.resources import Resource

log = logging.getLogger(__name__)

MIN_WATCH_TIMEOUT = 300  # seconds; each watch asks for a random timeout in [min, 2*min)
DEFAULT_PAGE_SIZE = 500
BACKOFF_INITIAL = 0.8
BACKOFF_CAP = 30.0
SHORT_WATCH = 1.0  # a watch that ends this fast with no event counts as a failure

OnAdd = Callable[[dict[str, Any]], None]
OnUpdate = Callable[[dict[str, Any], dict[str, Any]], None]
OnDelete = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, eq=False)
class EventHandler:
    """One registration; pass it to `remove_handler` to stop receiving events."""

    on_add: OnAdd | None = None
    on_update: OnUpdate | None = None
    on_delete: OnDelete | None = None


class Backoff:
    """Capped exponential delays with jitter: initial, ×factor each failure, at most `cap`."""

    def __init__(
        self,
        *,
        initial: float = BACKOFF_INITIAL,
        cap: float = BACKOFF_CAP,
        factor: float = 2.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        self.initial, self.cap, self.factor, self.jitter = initial, cap, factor, jitter
        self._rng = rng or random.Random()
        self._next = initial

    def next_delay(self) -> float:
        delay = min(self._next * (1 + self.jitter * self._rng.random()), self.cap)
        self._next = min(self._next * self.factor, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.initial


class _ShortWatch(Exception):
    pass


class Informer:
    """List+watch one resource into an `Indexer` and tell handlers; see the module docstring."""

    def __init__(
        self,
        client: Client,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_seconds: float | None = None,
        clock: Clock | None = None,
        page_size: int | None = DEFAULT_PAGE_SIZE,
        rng: random.Random | None = None,
        metrics: ReflectorRecorder | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self._metrics = metrics
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_seconds = resync_seconds
        self.page_size = page_size
        self._clock = clock or RealClock()
        self._rng = rng or random.Random()
        self._backoff = Backoff(rng=self._rng)
        self._indexer = Indexer()
        self._handlers: builtins.list[EventHandler] = []
        self._synced = asyncio.Event()
        self._resource_version = ""
        self._running = False
        self._failures = 0
        self._events_since_list = 0

    # -- the cache --------------------------------------------------------------------------------

    @property
    def indexer(self) -> Indexer:
        return self._indexer

    def get(self, key: str | ObjectKey) -> dict[str, Any] | None:
        """The cached object under `"ns/name"` (or `ObjectKey`), read-only; None if absent."""
        return self._indexer.get(key)

    def list(self) -> builtins.list[dict[str, Any]]:
        return self._indexer.list()

    def add_index(self, name: str, func: IndexFunc) -> None:
        self._indexer.add_index(name, func)

    def by_index(self, name: str, value: str) -> builtins.list[dict[str, Any]]:
        return self._indexer.by_index(name, value)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_for_sync(self) -> None:
        await self._synced.wait()

    @property
    def last_resource_version(self) -> str:
        """The resourceVersion the cache is at ("" before the first list)."""
        return self._resource_version

    # -- handlers ---------------------------------------------------------------------------------

    def add_handler(
        self, on_add: OnAdd | None = None, on_update: OnUpdate | None = None, on_delete: OnDelete | None = None
    ) -> EventHandler:
        """Register callbacks; `on_add` is called at once for every object already cached."""
        handler = EventHandler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if on_add is not None:
            for obj in self._indexer.list():
                _call(on_add, obj)
        return handler

    def remove_handler(self, handler: EventHandler) -> None:
        self._handlers = [h for h in self._handlers if h is not handler]

    # -- running ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch until cancelled (run it in a TaskGroup).  Never returns on its own."""
        if self._running:
            raise RuntimeError("this informer is already running")
        self._running = True
        try:
            async with asyncio.TaskGroup() as tasks:
                if self.resync_seconds:
                    tasks.create_task(self._resync_loop(self.resync_seconds))
                await self._reflect()
        finally:
            self._running = False

    async def _reflect(self) -> None:
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    self._recovered()
                await self._watch()
                continue
            except ApiError as exc:
                need_list = True
                if exc.code == 410 and self._events_since_list:
                    log.info("watch expired; listing again", extra=self._fields(error=str(exc)))
                    continue
                # any other refusal, or 410 straight after a list: list again after a back-off
                self._failed(exc)
            except (TransportError, _ShortWatch) as exc:
                # unreachable for now: watch again from where we were (a 410 then makes us list)
                self._failed(exc)
            except Exception as exc:  # supervision point: a bad object or client bug must not end the informer
                log.exception("informer failed", extra=self._fields())
                need_list = True
                self._failed(exc, logged=True)
            await self._clock.sleep(self._backoff.next_delay())

    async def _list(self) -> None:
        self._events_since_list = 0
        started = self._clock.now()
        items: builtins.list[dict[str, Any]] = []
        token: str | None = None
        resource_version = ""
        while True:
            page = await self.client.list(
                self.resource,
                self.namespace,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
                limit=self.page_size,
                continue_token=token,
            )
            meta = page.get("metadata") or {}
            # the first page's version: events after it are replayed, none are missed
            resource_version = resource_version or str(meta.get("resourceVersion") or "")
            items.extend(page.get("items") or ())
            token = meta.get("continue")
            if not token:
                break
        self._replace(items, resource_version)
        if self._metrics is not None:
            elapsed = self._clock.now() - started
            self._metrics.listed(seconds=elapsed, items=len(items), resource_version=resource_version)

    async def _watch(self) -> None:
        """One watch from the current resourceVersion until the server ends it."""
        started = self._clock.now()
        delivered = False
        events = 0
        stream = self.client.watch(
            self.resource,
            self.namespace,
            resource_version=self._resource_version or None,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=self._rng.randrange(MIN_WATCH_TIMEOUT, 2 * MIN_WATCH_TIMEOUT),
            allow_bookmarks=True,
        )
        try:
            async for event in stream:
                self._apply(event)
                self._events_since_list += 1
                events += 1
                if not delivered:
                    delivered = True
                    self._recovered()
        finally:
            await _aclose(stream)
            if self._metrics is not None:
                short = not delivered and self._clock.now() - started < SHORT_WATCH
                self._metrics.watched(events=events, short=short, resource_version=self._resource_version)
        if not delivered and self._clock.now() - started < SHORT_WATCH:
            raise _ShortWatch("the watch ended at once without events")

    async def _resync_loop(self, period: float) -> None:
        while True:
            await self._clock.sleep(period)
            if self.has_synced:
                for obj in self._indexer.list():
                    self._dispatch_update(obj, obj)

    # -- applying changes -------------------------------------------------------------------------

    def _apply(self, event: WatchEvent) -> None:
        obj = event.object
        if event.type == "ERROR":
            raise api_error_from_status(obj) if is_status(obj) else ApiError(500, "InternalError", repr(obj))
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if event.type in ("ADDED", "MODIFIED"):
            self._upsert(obj)
        elif event.type == "DELETED":
            old = self._indexer.remove(key_of(obj))
            if old is not None:
                self._dispatch_delete(obj)
        elif event.type != "BOOKMARK":
            log.warning("unknown watch event type", extra=self._fields(type=event.type))
            return
        if version:
            self._resource_version = version

    def _upsert(self, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        old = self._indexer.get(key)
        if old is not None and _version(old) == _version(obj):
            return  # seen already (a replayed event, or a list page and an event overlapping)
        self._indexer.put(obj)
        if old is None:
            self._dispatch_add(obj)
        else:
            self._dispatch_update(old, obj)

    def _replace(self, items: builtins.list[dict[str, Any]], resource_version: str) -> None:
        """Make the cache equal to a fresh list; tell handlers only what changed."""
        fresh: set[str] = set()
        for obj in items:
            # list items may come without apiVersion/kind; watch events always have them
            obj.setdefault("apiVersion", self.resource.api_version)
            obj.setdefault("kind", self.resource.kind)
            fresh.add(key_of(obj))
            self._upsert(obj)
        for key in [k for k in self._indexer.keys() if k not in fresh]:
            old = self._indexer.remove(key)
            if old is not None:
                self._dispatch_delete(old)
        self._resource_version = resource_version
        self._synced.set()

    def _dispatch_add(self, obj: dict[str, Any]) -> None:
        for handler in list(self._handlers):
            if handler.on_add is not None:
                _call(handler.on_add, obj)

    def _dispatch_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        for handler in list(self._handlers):
            if handler.on_update is not None:
                _call(handler.on_update, old, new)

    def _dispatch_delete(self, obj: dict[str, Any]) -> None:
        for handler in list(self._handlers):
            if handler.on_delete is not None:
                _call(handler.on_delete, obj)

    # -- failure streaks --------------------------------------------------------------------------

    def _failed(self, exc: BaseException, *, logged: bool = False) -> None:
        self._failures += 1
        if self._failures == 1 and not logged:
            log.warning("list/watch failing; retrying with back-off: %s", exc, extra=self._fields(error=str(exc)))
        else:
            log.debug("list/watch still failing: %s", exc, extra=self._fields(failures=self._failures))

    def _recovered(self) -> None:
        if self._failures:
            log.info("list/watch recovered", extra=self._fields(failures=self._failures))
        self._failures = 0
        self._backoff.reset()

    def _fields(self, **extra: Any) -> dict[str, Any]:
        return {"resource": self.resource.qualified, "namespace": self.namespace or "", **extra}


def _version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _call(callback: Callable[..., None], *args: dict[str, Any]) -> None:
    try:
        callback(*args)
    except Exception:  # supervision point: one broken handler must not starve the others
        log.exception("informer event handler failed", extra={"handler": getattr(callback, "__qualname__", "")})


async def _aclose(stream: AsyncIterator[WatchEvent]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


class SharedInformerFactory:
    """One informer per (resource, namespace, label selector, field selector), shared by all users.

    `run()` runs every informer handed out — also those asked for while it runs — in its own
    TaskGroup until cancelled.
    """

    def __init__(
        self,
        client: Client,
        *,
        resync_seconds: float | None = None,
        clock: Clock | None = None,
        metrics: ReflectorMetrics | None = None,
    ) -> None:
        """`metrics`: every informer records ``reflector_*`` under its resource's name (None: no metrics)."""
        self.client = client
        self._metrics = metrics
        self.resync_seconds = resync_seconds
        self._clock = clock or RealClock()
        self._informers: dict[tuple[Resource, str | None, str | None, str | None], Informer] = {}
        self._tasks: asyncio.TaskGroup | None = None

    def informer(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Informer:
        key = (resource, namespace or None, label_selector or None, field_selector or None)
        found = self._informers.get(key)
        if found is None:
            found = self._informers[key] = Informer(
                self.client,
                resource,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                resync_seconds=self.resync_seconds,
                clock=self._clock,
                metrics=self._metrics.reflector(resource.qualified) if self._metrics is not None else None,
            )
            if self._tasks is not None:
                self._tasks.create_task(found.run())
        return found

    def informers(self) -> builtins.list[Informer]:
        return list(self._informers.values())

    @property
    def has_synced(self) -> bool:
        return all(i.has_synced for i in self._informers.values())

    async def wait_for_sync(self) -> None:
        """Until every informer handed out so far has synced."""
        for informer in list(self._informers.values()):
            await informer.wait_for_sync()

    async def run(self) -> None:
        if self._tasks is not None:
            raise RuntimeError("this factory is already running")
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                for informer in self._informers.values():
                    tasks.create_task(informer.run())
                await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            self._tasks = None


__all__ = ["Backoff", "EventHandler", "Informer", "SharedInformerFactory"]
