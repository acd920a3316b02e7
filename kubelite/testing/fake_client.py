"""`FakeClient`: the `Client` protocol in memory, for controller, scheduler and agent unit tests.

What it does as the API server does:

* one global integer revision; every write bumps it and becomes the object's resourceVersion;
  uid, creationTimestamp and generation (bumped when anything but metadata/status changes);
* 404 NotFound, 409 AlreadyExists, 409 Conflict on a stale resourceVersion (update, patch, delete
  preconditions), 422 Invalid for a missing name, 400 for bad selectors, 410 Expired for a watch
  from a compacted resourceVersion; messages as upstream's;
* the `status` subresource split (a main-resource update keeps the status, a status update keeps
  everything else); finalizers and `deletionTimestamp`; graceful deletion of bound pods;
  Foreground/Orphan propagation add their finalizers; `pods/binding` and `pods/eviction`;
* merge, JSON and strategic merge patches (`kubelite.machinery.patch`);
* label and field selectors on list and watch, with watch transitions (an object that stops
  matching is DELETED for that watcher); watch from a resourceVersion replays the history.

What it does not: validation and defaulting beyond the above, namespace existence, admission,
version conversion (each resource is stored as given), PodDisruptionBudgets for evictions, garbage
collection, `timeout_seconds` (watches end when the test calls `close_watches()`).

Test helpers: `actions` (every call, in order), `inject_error(...)`, `close_watches()`,
`expire_watches()`, `send_bookmarks()`, `compact()`, `wait_for_watchers(n)`.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import collections
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple

from kubelite.client.interface import PatchType, PropagationPolicy, WatchEvent, require_namespace
from kubelite.machinery import errors, patch, selectors
from kubelite.machinery.meta import deep_copy, generate_name, new_uid, now, rfc3339
from kubelite.machinery.resources import Resource

DEFAULT_POD_GRACE_SECONDS = 30
OPTIMISTIC_LOCK_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again"


class Action(NamedTuple):
    """One recorded call: verb ("get", "list", "watch", "create", "update", "patch", "delete",
    "create_subresource"), the resource's plural, namespace, name, subresource and body."""

    verb: str
    resource: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    body: Any = None


@dataclass
class _Rule:
    verb: str
    resource: Resource | None
    error: BaseException
    times: int


@dataclass
class _Change:
    revision: int
    type: str
    group_resource: tuple[str, str]
    obj: dict[str, Any]
    prev: dict[str, Any] | None


_CLOSE = object()
_EXPIRE = object()


@dataclass(eq=False)
class _Watcher:
    resource: Resource
    namespace: str | None
    labels: selectors.LabelSelector | None
    fields: selectors.FieldSelector | None
    bookmarks: bool
    limit: int
    queue: collections.deque[Any] = field(default_factory=collections.deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, item: Any) -> None:
        if len(self.queue) >= self.limit and item is not _CLOSE:
            # fell too far behind: as the server, close with 410 so the client lists again
            self.queue.clear()
            item = _EXPIRE
        self.queue.append(item)
        self.ready.set()

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.resource.namespaced and self.namespace and meta.get("namespace") != self.namespace:
            return False
        return _matches(self.resource, obj, self.labels, self.fields)


class FakeClient:
    """An in-memory API for one event loop.  Returned objects are copies the caller owns."""

    def __init__(self, *, history_limit: int = 10_000, watch_buffer: int = 1000) -> None:
        self._objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._revision = 0
        self._history: collections.deque[_Change] = collections.deque(maxlen=history_limit)
        self._oldest = 0  # a watch may start from this revision or later
        self._watchers: set[_Watcher] = set()
        self._watch_buffer = watch_buffer
        self._rules: builtins.list[_Rule] = []
        self._watchers_changed = asyncio.Event()
        self.actions: builtins.list[Action] = []

    # -- test helpers -----------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._revision

    def inject_error(
        self, verb: str, error: BaseException, *, resource: Resource | None = None, times: int = 1
    ) -> None:
        """The next `times` calls of `verb` (on `resource`, or any) raise `error` instead."""
        self._rules.append(_Rule(verb, resource, error, times))

    def clear_actions(self) -> None:
        self.actions.clear()

    def objects(self, resource: Resource) -> builtins.list[dict[str, Any]]:
        """Copies of every stored object of `resource`, in (namespace, name) order."""
        stored = self._objects.get(_group_resource(resource), {})
        return [deep_copy(stored[k]) for k in sorted(stored)]

    def close_watches(self) -> None:
        """End every open watch normally, as a server-side timeout does."""
        for watcher in self._watchers:
            watcher.push(_CLOSE)

    def expire_watches(self) -> None:
        """End every open watch with an ERROR 410 Expired."""
        for watcher in self._watchers:
            watcher.push(_EXPIRE)

    def send_bookmarks(self) -> None:
        """Send a BOOKMARK at the current revision to every watch that asked for bookmarks."""
        for watcher in self._watchers:
            if watcher.bookmarks:
                bookmark = {
                    "kind": watcher.resource.kind,
                    "apiVersion": watcher.resource.api_version,
                    "metadata": {"resourceVersion": str(self._revision)},
                }
                watcher.push(WatchEvent("BOOKMARK", bookmark))

    def compact(self, revision: int | None = None) -> None:
        """Forget the history up to `revision` (default: now): watches from before it get 410."""
        revision = self._revision if revision is None else revision
        while self._history and self._history[0].revision <= revision:
            self._history.popleft()
        self._oldest = max(self._oldest, revision)

    @property
    def watch_count(self) -> int:
        return len(self._watchers)

    async def wait_for_watchers(self, count: int = 1, *, timeout: float = 5.0) -> None:
        """Until at least `count` watches are open (real time, at most `timeout`)."""
        async with asyncio.timeout(timeout):
            while len(self._watchers) < count:
                changed = self._watchers_changed
                await changed.wait()

    # -- reads ------------------------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        namespace = require_namespace(resource, namespace)
        self._record("get", resource, namespace, name)
        return deep_copy(self._current(resource, namespace, name))

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        self._record("list", resource, namespace)
        labels, fields = _selectors(resource, label_selector, field_selector)
        stored = self._objects.get(_group_resource(resource), {})
        keys = sorted(k for k in stored if not (resource.namespaced and namespace) or k[0] == namespace)
        if continue_token:
            start = _decode_continue(continue_token)
            keys = [k for k in keys if k > start]
        items = [stored[k] for k in keys if _matches(resource, stored[k], labels, fields)]
        meta: dict[str, Any] = {"resourceVersion": str(self._revision)}
        if limit and limit > 0 and len(items) > limit:
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
            meta["continue"] = _encode_continue(_key(items[-1]))
        return {
            "kind": resource.list_kind,
            "apiVersion": resource.api_version,
            "metadata": meta,
            "items": [deep_copy(o) for o in items],
        }

    async def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[WatchEvent]:
        self._record("watch", resource, namespace)
        labels, fields = _selectors(resource, label_selector, field_selector)
        watcher = _Watcher(resource, namespace, labels, fields, allow_bookmarks, self._watch_buffer)
        if resource_version in (None, "", "0"):
            backlog = [WatchEvent("ADDED", deep_copy(o)) for o in self._objects_in(resource) if watcher.matches(o)]
        else:
            since = _parse_revision(resource_version)
            if since < self._oldest:
                raise errors.gone_too_old(since, self._oldest + 1)
            backlog = []
            for change in self._history:
                if change.revision > since and change.group_resource == _group_resource(resource):
                    event = _event_for(watcher, change)
                    if event is not None:
                        backlog.append(event)
        self._watchers.add(watcher)
        self._signal_watchers()
        try:
            for event in backlog:
                yield event
            while True:
                while not watcher.queue:
                    watcher.ready.clear()
                    await watcher.ready.wait()
                item = watcher.queue.popleft()
                if item is _CLOSE:
                    return
                if item is _EXPIRE:
                    raise errors.expired("too old resource version: the watch was closed by the fake (expired)")
                yield item
        finally:
            self._watchers.discard(watcher)
            self._signal_watchers()

    # -- writes -----------------------------------------------------------------------------------

    async def create(
        self, resource: Resource, obj: dict[str, Any], namespace: str | None = None, *, dry_run: bool = False
    ) -> dict[str, Any]:
        namespace = require_namespace(resource, namespace, obj)
        self._record("create", resource, namespace, (obj.get("metadata") or {}).get("name"), body=obj)
        new = deep_copy(obj)
        meta = new.setdefault("metadata", {})
        if namespace:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])
        if not meta.get("name"):
            cause = errors.Cause(
                "FieldValueRequired", "Required value: name or generateName is required", "metadata.name"
            )
            raise errors.invalid(resource.kind, resource.group, "", [cause])
        if (namespace or "", meta["name"]) in self._objects.get(_group_resource(resource), {}):
            raise errors.already_exists(resource.plural, resource.group, meta["name"])
        for owned in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(owned, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = rfc3339(now())
        meta["generation"] = 1
        new["apiVersion"] = resource.api_version
        new["kind"] = resource.kind
        if dry_run:
            return new
        return deep_copy(self._commit(resource, "ADDED", new, None))

    async def update(
        self,
        resource: Resource,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        namespace = require_namespace(resource, namespace, obj)
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("update needs metadata.name")
        self._record("update", resource, namespace, name, subresource, obj)
        current = self._current(resource, namespace, name)
        wanted = (obj.get("metadata") or {}).get("resourceVersion")
        if wanted and str(wanted) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(resource.plural, resource.group, name, OPTIMISTIC_LOCK_MESSAGE)
        return deep_copy(self._write(resource, current, deep_copy(obj), subresource))

    async def patch(
        self,
        resource: Resource,
        name: str,
        body: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        namespace = require_namespace(resource, namespace)
        self._record("patch", resource, namespace, name, subresource, body)
        current = self._current(resource, namespace, name)
        try:
            if patch_type == "merge":
                patched = patch.apply_merge_patch(current, body)
            elif patch_type == "json":
                patched = patch.apply_json_patch(current, body)
            else:
                patched = _strategic(resource, current, body)
        except patch.PatchError as exc:
            raise exc.to_api_error() from None
        patched = deep_copy(patched)  # the patch functions may share parts with `current`
        wanted = (patched.get("metadata") or {}).get("resourceVersion")
        if wanted and str(wanted) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(resource.plural, resource.group, name, OPTIMISTIC_LOCK_MESSAGE)
        return deep_copy(self._write(resource, current, patched, subresource))

    async def delete(
        self,
        resource: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: PropagationPolicy | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        namespace = require_namespace(resource, namespace)
        self._record("delete", resource, namespace, name)
        current = self._current(resource, namespace, name)
        meta = current["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            why = f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}"
            raise errors.conflict(resource.plural, resource.group, name, why)
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            why = (
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                f"ResourceVersion in object meta: {meta.get('resourceVersion')}"
            )
            raise errors.conflict(resource.plural, resource.group, name, why)
        finalizers = list(meta.get("finalizers") or ())
        if propagation_policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        elif propagation_policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        grace = _pod_grace(resource, current, grace_period_seconds)
        if not finalizers and not grace and not _awaits_finalize(resource, current):
            gone = self._commit(resource, "DELETED", deep_copy(current), current)
            return _deleted_answer(resource, gone)
        if meta.get("deletionTimestamp"):
            return deep_copy(current)  # being deleted already
        marked = deep_copy(current)
        marked_meta = marked["metadata"]
        if finalizers:
            marked_meta["finalizers"] = finalizers
        marked_meta["deletionTimestamp"] = rfc3339(now() + timedelta(seconds=grace or 0))
        marked_meta["deletionGracePeriodSeconds"] = grace or 0
        if _awaits_finalize(resource, current):
            marked.setdefault("status", {})["phase"] = "Terminating"
        return deep_copy(self._commit(resource, "MODIFIED", marked, current))

    async def create_subresource(
        self, resource: Resource, name: str, subresource: str, body: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        namespace = require_namespace(resource, namespace, body)
        self._record("create_subresource", resource, namespace, name, subresource, body)
        if (resource.group, resource.plural) != ("", "pods") or subresource not in ("binding", "eviction"):
            raise errors.method_not_supported(f"{resource.plural}/{subresource}", resource.group, "create")
        current = self._current(resource, namespace, name)
        if subresource == "eviction":
            options = body.get("deleteOptions") or {}
            await self.delete(
                resource,
                name,
                namespace,
                grace_period_seconds=options.get("gracePeriodSeconds"),
                preconditions=options.get("preconditions"),
            )
            return _success(201)
        node = ((body.get("target") or {}).get("name")) or ""
        assigned = (current.get("spec") or {}).get("nodeName")
        if assigned:
            why = f"pod {name} is already assigned to node {assigned!r}"
            raise errors.conflict(resource.plural, resource.group, name, why)
        if current["metadata"].get("deletionTimestamp"):
            why = f"pod {name} is being deleted, cannot be assigned to a host"
            raise errors.conflict(resource.plural, resource.group, name, why)
        bound = deep_copy(current)
        bound.setdefault("spec", {})["nodeName"] = node
        self._commit(resource, "MODIFIED", bound, current)
        return _success(201)

    # -- internals --------------------------------------------------------------------------------

    def _record(
        self,
        verb: str,
        resource: Resource,
        namespace: str | None,
        name: str | None = None,
        subresource: str | None = None,
        body: Any = None,
    ) -> None:
        self.actions.append(
            Action(verb, resource.plural, namespace, name, subresource, deep_copy(body) if body else body)
        )
        for rule in self._rules:
            if rule.verb == verb and (rule.resource is None or rule.resource == resource):
                rule.times -= 1
                if rule.times <= 0:
                    self._rules.remove(rule)
                raise rule.error

    def _current(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        found = self._objects.get(_group_resource(resource), {}).get((namespace or "", name))
        if found is None:
            raise errors.not_found(resource.plural, resource.group, name)
        return found

    def _objects_in(self, resource: Resource) -> builtins.list[dict[str, Any]]:
        stored = self._objects.get(_group_resource(resource), {})
        return [stored[k] for k in sorted(stored)]

    def _write(
        self, resource: Resource, current: dict[str, Any], new: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        """Replace `current` by `new` with the server's rules for owned metadata and subresources."""
        has_status = resource.subresource("status") is not None
        if subresource == "status":
            if not has_status:
                raise errors.path_not_found()
            status = new.get("status")
            new = deep_copy(current)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif subresource == "finalize" and (resource.group, resource.plural) == ("", "namespaces"):
            finalizers = (new.get("spec") or {}).get("finalizers")
            new = deep_copy(current)
            new.setdefault("spec", {})["finalizers"] = finalizers or []
            if not finalizers:
                new["spec"].pop("finalizers")
        elif subresource:
            raise errors.method_not_supported(f"{resource.plural}/{subresource}", resource.group, "update")
        elif has_status:
            if "status" in current:
                new["status"] = deep_copy(current["status"])
            else:
                new.pop("status", None)
        meta = new.setdefault("metadata", {})
        old_meta = current["metadata"]
        for owned in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if owned in old_meta:
                meta[owned] = old_meta[owned]
            else:
                meta.pop(owned, None)
        meta["name"] = old_meta["name"]
        if "namespace" in old_meta:
            meta["namespace"] = old_meta["namespace"]
        meta["resourceVersion"] = old_meta["resourceVersion"]
        new["apiVersion"] = resource.api_version
        new["kind"] = resource.kind
        if _spec_of(new) != _spec_of(current):
            meta["generation"] = int(old_meta.get("generation") or 0) + 1
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not _awaits_finalize(resource, new):
            return self._commit(resource, "DELETED", new, current)
        if new == current:
            return current
        return self._commit(resource, "MODIFIED", new, current)

    def _commit(
        self, resource: Resource, event_type: str, obj: dict[str, Any], prev: dict[str, Any] | None
    ) -> dict[str, Any]:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        group_resource = _group_resource(resource)
        stored = self._objects.setdefault(group_resource, {})
        key = _key(obj)
        if event_type == "DELETED":
            stored.pop(key, None)
        else:
            stored[key] = obj
        change = _Change(self._revision, event_type, group_resource, obj, prev)
        self._history.append(change)
        if len(self._history) == self._history.maxlen:
            self._oldest = max(self._oldest, self._history[0].revision - 1)
        for watcher in self._watchers:
            if _group_resource(watcher.resource) == group_resource:
                event = _event_for(watcher, change)
                if event is not None:
                    watcher.push(event)
        return obj

    def _signal_watchers(self) -> None:
        self._watchers_changed.set()
        self._watchers_changed = asyncio.Event()


def _group_resource(resource: Resource) -> tuple[str, str]:
    group = resource.storage_group if resource.storage_group is not None else resource.group
    return (group, resource.plural)


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _event_for(watcher: _Watcher, change: _Change) -> WatchEvent | None:
    """The event `watcher` sees for `change`, with selector transitions; None if none."""
    now_matches = change.type != "DELETED" and watcher.matches(change.obj)
    before = change.prev is not None and watcher.matches(change.prev)
    if change.type == "DELETED":
        return WatchEvent("DELETED", deep_copy(change.obj)) if before else None
    if now_matches:
        return WatchEvent("MODIFIED" if before else "ADDED", deep_copy(change.obj))
    if before:
        return WatchEvent("DELETED", deep_copy(change.obj))
    return None


def _selectors(
    resource: Resource, label_selector: str | None, field_selector: str | None
) -> tuple[selectors.LabelSelector | None, selectors.FieldSelector | None]:
    try:
        labels = selectors.parse_label_selector(label_selector) if label_selector else None
        fields = (
            selectors.convert_field_selector(
                resource.plural, selectors.parse_field_selector(field_selector), group=resource.group
            )
            if field_selector
            else None
        )
    except selectors.SelectorError as exc:
        raise errors.bad_request(str(exc)) from None
    return labels, fields


def _matches(
    resource: Resource,
    obj: dict[str, Any],
    labels: selectors.LabelSelector | None,
    fields: selectors.FieldSelector | None,
) -> bool:
    if labels is not None and not labels.matches((obj.get("metadata") or {}).get("labels") or {}):
        return False
    return fields is None or fields.matches(selectors.field_set(resource.plural, obj, group=resource.group))


def _strategic(resource: Resource, current: dict[str, Any], body: Any) -> dict[str, Any]:
    from kubelite.machinery.schema import GroupVersionKind, load_schemas

    schemas = load_schemas()
    schema = schemas.for_kind(GroupVersionKind(resource.group, resource.version, resource.kind))
    if schema is None:
        raise errors.unsupported_media_type(
            "application/strategic-merge-patch+json",
            ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"],
        )
    return patch.apply_strategic_merge_patch(current, body, schema, schemas)


def _awaits_finalize(resource: Resource, obj: dict[str, Any]) -> bool:
    """A namespace stays (Terminating) until the namespace controller empties `spec.finalizers`."""
    return (resource.group, resource.plural) == ("", "namespaces") and bool((obj.get("spec") or {}).get("finalizers"))


def _pod_grace(resource: Resource, obj: dict[str, Any], requested: int | None) -> int | None:
    """Seconds of graceful deletion for bound, unfinished pods (as the server); None otherwise."""
    if (resource.group, resource.plural) != ("", "pods"):
        return None
    spec = obj.get("spec") or {}
    if not spec.get("nodeName") or (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    if requested is not None:
        return max(requested, 0)
    grace = spec.get("terminationGracePeriodSeconds")
    return DEFAULT_POD_GRACE_SECONDS if grace is None else int(grace)


def _deleted_answer(resource: Resource, gone: dict[str, Any]) -> dict[str, Any]:
    if (resource.group, resource.plural) in (("", "pods"), ("", "services"), ("", "namespaces")):
        return deep_copy(gone)
    details: dict[str, Any] = {"name": gone["metadata"]["name"]}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    details["uid"] = gone["metadata"].get("uid")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _success(code: int) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}


def _parse_revision(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        raise errors.bad_request(f"invalid resource version: {text}") from None


def _encode_continue(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}/{key[1]}".encode()).decode()


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        namespace, _, name = base64.urlsafe_b64decode(token.encode()).decode().partition("/")
    except ValueError:
        raise errors.bad_request("continue key is not valid: invalid continue token") from None
    return (namespace, name)


__all__ = ["Action", "FakeClient"]
