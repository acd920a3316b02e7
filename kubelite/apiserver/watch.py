"""WATCH: a chunked stream of `{"type":…,"object":…}` lines served from the watch cache.

Semantics (upstream's, see KUBECTL-COMPAT.md §2.1):
* no resourceVersion or "0": synthetic ADDED events for the current matches, then live changes;
* resourceVersion N: every change after N from the cache's window, then live; too old → 410;
* selectors are applied to events with transitions: an object that starts matching arrives as
  ADDED, one that stops matching as DELETED;
* bookmarks only when `allowWatchBookmarks=true`; `sendInitialEvents=true` ends the initial set
  with a bookmark annotated `k8s.io/initial-events-end`;
* `timeoutSeconds` ends the stream cleanly; without it the stream ends after 30–60 minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from kubelite.apiserver import negotiation, tables
from kubelite.machinery import errors
from kubelite.machinery.conversion import convert
from kubelite.machinery.resources import Resource
from kubelite.storage.cache import CacheEvent, WatchCache, WatchClosed
from kubelite.storage.interface import Compacted

if TYPE_CHECKING:
    from kubelite.apiserver.handlers import ObjectMatcher

BOOKMARK_INTERVAL_SECONDS = 60.0
MIN_REQUEST_TIMEOUT = 1800


async def serve_watch(
    request: web.Request,
    cache: WatchCache,
    resource: Resource,
    namespace: str | None,
    name: str | None,
    view: Resource | None = None,
) -> web.StreamResponse:
    from kubelite.apiserver.handlers import ObjectMatcher

    query = request.query
    matcher = ObjectMatcher.from_query(resource, query)
    if name is not None:
        # GET …/pods/x?watch=true is a watch narrowed to one name
        matcher = _NameMatcher(matcher, name)
    form = negotiation.response_form(request.headers.get("Accept"))
    bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
    send_initial = query.get("sendInitialEvents") in ("true", "1")
    rv_text = query.get("resourceVersion", "")
    try:
        since = int(rv_text) if rv_text not in ("", "0") else None
    except ValueError:
        raise errors.bad_request(f"invalid resource version: {rv_text}") from None
    if send_initial:
        since = None
    timeout_text = query.get("timeoutSeconds")
    if timeout_text:
        try:
            timeout = float(int(timeout_text))
        except ValueError:
            raise errors.bad_request(f"invalid timeoutSeconds: {timeout_text}") from None
    else:
        timeout = float(random.randint(MIN_REQUEST_TIMEOUT, 2 * MIN_REQUEST_TIMEOUT))

    prefix = resource.collection_prefix(namespace)
    initial: list[Any] = []
    try:
        watcher = cache.watch(prefix, since)
    except Compacted as exc:
        raise errors.gone_too_old(exc.requested, exc.compacted) from None
    if since is None:
        # registered without yielding after taking the snapshot: no change can fall between them
        initial = [e for e in cache.list(prefix) if matcher.matches(e.obj)]
    start_revision = cache.revision

    response = web.StreamResponse(status=200)
    response.content_type = "application/json"
    response.enable_chunked_encoding()
    writer = _EventWriter(view or resource, form)
    try:
        await response.prepare(request)
        for entry in initial:
            await response.write(writer.synthetic("ADDED", entry.obj, entry.data))
        if send_initial and bookmarks:
            await response.write(_bookmark(resource, start_revision, initial_end=True))
        await _pump(response, watcher, matcher, writer, resource, cache, timeout, bookmarks)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        watcher.close()
    return response


async def _pump(
    response: web.StreamResponse,
    watcher: Any,
    matcher: Any,
    writer: _EventWriter,
    resource: Resource,
    cache: WatchCache,
    timeout: float,
    bookmarks: bool,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    next_bookmark = loop.time() + BOOKMARK_INTERVAL_SECONDS
    while True:
        now = loop.time()
        if now >= deadline:
            return
        wait = deadline - now
        if bookmarks:
            wait = min(wait, max(next_bookmark - now, 0))
        try:
            async with asyncio.timeout(wait):
                event = await watcher.next()
        except TimeoutError:
            if bookmarks and loop.time() >= next_bookmark:
                await response.write(_bookmark(resource, cache.revision))
                next_bookmark = loop.time() + BOOKMARK_INTERVAL_SECONDS
            continue
        except WatchClosed:
            if watcher.overflowed:
                status = errors.expired("watch closed: the client fell too far behind; re-list").status()
                await response.write(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
            return
        data = writer.for_event(event, matcher)
        if data:
            await response.write(data)


class _NameMatcher:
    def __init__(self, inner: ObjectMatcher, name: str) -> None:
        self.inner = inner
        self.name = name
        self.everything = False

    def matches(self, obj: dict[str, Any]) -> bool:
        return (obj.get("metadata") or {}).get("name") == self.name and self.inner.matches(obj)


class _EventWriter:
    """Encodes events in the requested form; JSON events reuse the cache's shared bytes."""

    def __init__(self, resource: Resource, form: negotiation.ResponseForm) -> None:
        self.resource = resource
        self.form = form
        self.columns_sent = False

    def for_event(self, event: CacheEvent, matcher: Any) -> bytes | None:
        event_type = event.type
        if not matcher.everything:
            now_matches = matcher.matches(event.entry.obj)
            before = event.prev is not None and event_type != "ADDED" and matcher.matches(event.prev.obj)
            if event_type == "DELETED":
                if not before and not now_matches:
                    return None
            elif now_matches and not before:
                event_type = "ADDED"
            elif before and not now_matches:
                event_type = "DELETED"
            elif not now_matches:
                return None
        if self.form.shape == "object" and event.entry.obj.get("apiVersion") == self.resource.api_version:
            return event.encoded(event_type)
        return self.synthetic(event_type, event.entry.obj, event.entry.data)

    def synthetic(self, event_type: str, obj: dict[str, Any], data: bytes) -> bytes:
        if obj.get("apiVersion") != self.resource.api_version:
            obj = convert(obj, self.resource.api_version)
            data = orjson.dumps(obj)
        if self.form.shape == "object":
            return b'{"type":"' + event_type.encode() + b'","object":' + data + b"}\n"
        if self.form.shape == "partial":
            partial = {
                "kind": "PartialObjectMetadata",
                "apiVersion": self.form.api_version,
                "metadata": obj.get("metadata") or {},
            }
            return orjson.dumps({"type": event_type, "object": partial}) + b"\n"
        table = tables.build_table(
            self.resource.group,
            self.resource.plural,
            [obj],
            include_object="Object",
            resource_version=(obj.get("metadata") or {}).get("resourceVersion", ""),
            continue_token=None,
            now=datetime.now(UTC),
            api_version=self.form.api_version,
            with_columns=not self.columns_sent,
        )
        self.columns_sent = True
        return orjson.dumps({"type": event_type, "object": table}) + b"\n"


def _bookmark(resource: Resource, revision: int, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return (
        orjson.dumps(
            {
                "type": "BOOKMARK",
                "object": {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": meta},
            }
        )
        + b"\n"
    )
