"""`EventRecorder`: what a user should see about an object, written as core/v1 Events.

Contracts (as client-go's `record.EventRecorder` with its broadcaster and correlator):

* `event()` never blocks and never raises: it only queues.  The queue is bounded
  (`max_queued`); when full the oldest queued event is dropped and a line is logged.
* `run()` is the single writer; it creates each Event in the involved object's namespace
  (cluster-scoped objects such as Nodes: "default") named `<object name>.<hex nanoseconds>`.
* Identical events — the same involvedObject, type, reason, message and source — seen again within
  `AGGREGATION_WINDOW` (10 minutes) are one Event: its `count` and `lastTimestamp` are patched
  instead of a new Event being created.  If that Event has gone (404), a new one is created.
* Failures to write are logged and the event dropped after a few retries for transient errors
  (transport, 429, 5xx); nothing is ever raised to callers of `event()`.
* `flush()` waits until everything queued so far is written (or dropped); it needs `run()` running.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass
from typing import Any

from kubelite.client.clock import Clock, RealClock
from kubelite.client.errors import is_retryable
from kubelite.client.interface import Client, builtin
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import rfc3339

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
AGGREGATION_WINDOW = 600.0  # seconds in which an identical event bumps `count` instead of creating one
MAX_QUEUED = 1000  # as client-go's broadcaster queue
MAX_CORRELATED = 4096  # as client-go's correlator LRU
WRITE_ATTEMPTS = 3
RETRY_DELAY = 1.0

EVENTS = builtin("", "events")


@dataclass
class _Seen:
    """The Event last written for one correlation key."""

    namespace: str
    name: str
    count: int
    last_seen: float  # clock.now() of the last write


class EventRecorder:
    """Queues Events from synchronous code and writes them with one background loop (`run()`)."""

    def __init__(
        self,
        client: Client,
        component: str,
        host: str | None = None,
        *,
        clock: Clock | None = None,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._client = client
        self._component = component
        self._host = host
        self._clock: Clock = clock or RealClock()
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._max_queued = max_queued
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writing = False
        self._seen: collections.OrderedDict[tuple[Any, ...], _Seen] = collections.OrderedDict()
        self._last_suffix = 0
        self.dropped = 0

    # -- producers --------------------------------------------------------------------------------

    def event(
        self, obj: dict[str, Any], event_type: str, reason: str, message: str, *, field_path: str | None = None
    ) -> None:
        """Queue an Event about `obj` (a full object or at least kind/apiVersion/metadata)."""
        try:
            built = self._build(obj, event_type, reason, message, field_path)
        except Exception:  # a malformed object must not break the caller
            log.exception("cannot build event", extra={"reason": reason})
            return
        if len(self._queue) >= self._max_queued:
            gone = self._queue.popleft()
            self.dropped += 1
            log.warning(
                "event queue full, dropping oldest event",
                extra={"reason": gone.get("reason"), "object": gone["involvedObject"].get("name")},
            )
        self._queue.append(built)
        self._idle.clear()
        self._ready.set()

    def _build(
        self, obj: dict[str, Any], event_type: str, reason: str, message: str, field_path: str | None
    ) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or "")
        involved: dict[str, Any] = {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion")}
        if meta.get("namespace"):
            involved["namespace"] = meta["namespace"]
        involved["name"] = name
        for src, dst in (("uid", "uid"), ("resourceVersion", "resourceVersion")):
            if meta.get(src):
                involved[dst] = meta[src]
        if field_path:
            involved["fieldPath"] = field_path
        involved = {k: v for k, v in involved.items() if v is not None}
        stamp = rfc3339(self._clock.utcnow())
        source: dict[str, Any] = {"component": self._component}
        if self._host:
            source["host"] = self._host
        namespace = str(meta.get("namespace") or "default")
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{self._unique_suffix()}", "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": event_type,
            "eventTime": None,
            "reportingComponent": self._component,
            "reportingInstance": self._host or "",
        }

    def _unique_suffix(self) -> str:
        """Hex nanoseconds of the wall clock as upstream, kept strictly increasing per recorder."""
        nanos = int(self._clock.utcnow().timestamp() * 1_000_000_000)
        self._last_suffix = max(nanos, self._last_suffix + 1)
        return format(self._last_suffix, "x")

    # -- the writer -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Write queued events until cancelled."""
        while True:
            while not self._queue:
                self._idle.set()
                self._ready.clear()
                await self._ready.wait()
            item = self._queue.popleft()
            self._writing = True
            try:
                await self._write(item)
            except Exception:  # supervision point: one bad event must not stop the writer
                log.exception("unexpected error writing event", extra={"reason": item.get("reason")})
            finally:
                self._writing = False
            if not self._queue:
                self._idle.set()

    async def flush(self) -> None:
        """Wait until every event queued before this call has been written or dropped."""
        while self._queue or self._writing:
            await self._idle.wait()
            if self._queue or self._writing:
                await asyncio.sleep(0)

    async def _write(self, event: dict[str, Any]) -> None:
        key = _correlation_key(event)
        seen = self._seen.get(key)
        now = self._clock.now()
        if seen is not None and now - seen.last_seen <= AGGREGATION_WINDOW:
            seen.count += 1
            seen.last_seen = now
            self._seen.move_to_end(key)
            patch = {"count": seen.count, "lastTimestamp": event["lastTimestamp"], "message": event["message"]}
            try:
                await self._attempt(lambda: self._client.patch(EVENTS, seen.name, patch, seen.namespace))
                return
            except ApiError as exc:
                if exc.code != 404:
                    log.warning("cannot update event", extra={"event": seen.name, "error": str(exc)})
                    return
            # the aggregated Event is gone (deleted or expired by its TTL): start a new one
        try:
            created = await self._attempt(lambda: self._client.create(EVENTS, event, event["metadata"]["namespace"]))
        except Exception as exc:  # logged once, here, where it is handled
            log.warning(
                "cannot write event",
                extra={"reason": event.get("reason"), "object": event["involvedObject"].get("name"), "error": str(exc)},
            )
            return
        meta = created.get("metadata") or event["metadata"]
        self._seen[key] = _Seen(str(meta.get("namespace")), str(meta.get("name")), 1, now)
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_CORRELATED:
            self._seen.popitem(last=False)

    async def _attempt(self, call: Any) -> dict[str, Any]:
        """`call()` with a few retries for transient failures; the last error is raised."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                result: dict[str, Any] = await call()
                return result
            except Exception as exc:
                if not is_retryable(exc) or attempt == WRITE_ATTEMPTS - 1:
                    raise
            await self._clock.sleep(RETRY_DELAY * (attempt + 1))
        raise AssertionError("unreachable")


def _correlation_key(event: dict[str, Any]) -> tuple[Any, ...]:
    involved = event["involvedObject"]
    source = event["source"]
    return (
        source.get("component"),
        source.get("host"),
        involved.get("kind"),
        involved.get("namespace"),
        involved.get("name"),
        involved.get("uid"),
        involved.get("apiVersion"),
        involved.get("fieldPath"),
        event["type"],
        event["reason"],
        event["message"],
    )


__all__ = ["AGGREGATION_WINDOW", "NORMAL", "WARNING", "EventRecorder"]
