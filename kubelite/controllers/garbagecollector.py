"""The garbage collector: deletes objects whose owners are gone, and carries out Foreground and
Orphan deletions (upstream's pkg/controller/garbagecollector).

How it works:

* Informers on every deletable resource feed a `DependencyGraph` (gc_graph.py) of objects by uid,
  each knowing its owners (ownerReferences) and dependents.  The graph answers each change with
  the uids worth a look; they go to the work queue as items of three kinds:
  `delete/<uid>` (attemptToDelete), `virtual/<uid>` (verify an owner nobody has observed) and
  `orphan/<uid>` (attemptToOrphan).
* attemptToDelete on a dependent reads it and each of its owners live from the API (an owner is
  gone when the GET by name in the dependent's namespace answers 404 or another uid; absent owners
  are cached by identity).  `plan_for_dependent` then decides: keep it, remove the references to
  gone owners (when a live owner remains), or delete it — in Foreground when an owner waits for
  its dependents and it has dependents itself, else honouring its own orphan/foregroundDeletion
  finalizer, else Background.  Deletes carry uid and resourceVersion preconditions, so an object
  that gained an owner meanwhile is not deleted.
* An owner being deleted with the `foregroundDeletion` finalizer first has its dependents deleted;
  when no dependent with `blockOwnerDeletion: true` remains, the finalizer is removed and the API
  server deletes the owner.  An owner being deleted with the `orphan` finalizer has its reference
  removed from every dependent, then the finalizer removed.
* Level-based and restart-safe: the graph is rebuilt from the informers' first lists, which replay
  every pending Foreground/Orphan deletion and every dangling reference; items are retried with
  the queue's back-off.  Workers start only once every informer has synced.  An update whose uid
  differs from the cached one (deleted and re-created, seen only through a re-list) counts as a
  deletion and an addition, so the old incarnation's dependents are not forgotten.
* Owner references to namespaced kinds resolve only in the dependent's namespace; a cluster-scoped
  dependent naming a namespaced kind can never be collected.  When the owner's uid is seen in
  another namespace, a Warning `OwnerRefInvalidNamespace` event is recorded on the dependent.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kubelite.client.events import WARNING
from kubelite.client.interface import PropagationPolicy, resource_for
from kubelite.client.workqueue import ItemExponentialRateLimiter
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.gc_graph import (
    FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER,
    DependencyGraph,
    GraphActions,
    Identity,
    Node,
    OwnerRef,
    being_deleted,
    finalizers_of,
    owner_refs_of,
    remove_finalizer_patch,
    remove_references_merge_patch,
    remove_references_patch,
    unblock_references_merge_patch,
    unblock_references_patch,
)
from kubelite.machinery.errors import ApiError
from kubelite.machinery.resources import BUILTIN_RESOURCES, Resource

log = logging.getLogger(__name__)

DEFAULT_GC_WORKERS = 20  # upstream's ConcurrentGCSyncs
REQUIRED_VERBS = frozenset({"delete", "list", "watch"})
IGNORED_RESOURCES = frozenset({("", "events"), ("events.k8s.io", "events")})  # upstream's DefaultIgnoredResources
FINALIZER_ATTEMPTS = 5

DELETE_ITEM = "delete"
VIRTUAL_ITEM = "virtual"
ORPHAN_ITEM = "orphan"


def deletable_resources(candidates: Sequence[Resource] = BUILTIN_RESOURCES) -> tuple[Resource, ...]:
    """What the collector watches: preferred versions that support delete, list and watch, minus
    the ignored ones (events)."""
    return tuple(
        r
        for r in candidates
        if r.preferred and REQUIRED_VERBS <= set(r.verbs) and (r.group, r.plural) not in IGNORED_RESOURCES
    )


# -- decisions (pure) -------------------------------------------------------------------------------


class OwnerState(enum.Enum):
    SOLID = "solid"  # exists and is not waiting for its dependents
    DANGLING = "dangling"  # absent, or another object (uid) under that name
    WAITING = "waitingForDependentsDeletion"  # being deleted with the foregroundDeletion finalizer


def owner_state(ref: OwnerRef, live: dict[str, Any] | None) -> OwnerState:
    """Classify one owner reference from the live read of the owner (None: 404)."""
    if live is None or (live.get("metadata") or {}).get("uid") != ref.uid:
        return OwnerState.DANGLING
    if being_deleted(live) and FOREGROUND_FINALIZER in finalizers_of(live):
        return OwnerState.WAITING
    return OwnerState.SOLID


class Verdict(enum.Enum):
    KEEP = "keep"
    REMOVE_REFERENCES = "removeReferences"
    DELETE = "delete"


@dataclass(frozen=True)
class Plan:
    """What to do with one dependent."""

    verdict: Verdict
    owner_uids: tuple[str, ...] = ()  # REMOVE_REFERENCES: the references to drop
    propagation: PropagationPolicy | None = None  # DELETE
    unblock_first: bool = False  # DELETE: first stop its own references from blocking (breaks cycles)


KEEP = Plan(Verdict.KEEP)


def plan_for_dependent(
    states: Sequence[tuple[OwnerRef, OwnerState]],
    *,
    finalizers: Sequence[str] = (),
    has_dependents: bool = False,
    a_dependent_is_deleting_dependents: bool = False,
) -> Plan:
    """Upstream's attemptToDeleteItem decision for an object with owner references.

    A live owner keeps the object (references to gone or waiting owners are removed, or the
    waiting owners would wait for ever); with none, it is deleted.
    """
    solid = [ref for ref, state in states if state is OwnerState.SOLID]
    dangling = [ref for ref, state in states if state is OwnerState.DANGLING]
    waiting = [ref for ref, state in states if state is OwnerState.WAITING]
    if not states:
        return KEEP
    if solid:
        if not dangling and not waiting:
            return KEEP
        return Plan(Verdict.REMOVE_REFERENCES, owner_uids=tuple(ref.uid for ref in dangling + waiting))
    if waiting and has_dependents:
        return Plan(Verdict.DELETE, propagation="Foreground", unblock_first=a_dependent_is_deleting_dependents)
    if ORPHAN_FINALIZER in finalizers:
        return Plan(Verdict.DELETE, propagation="Orphan")
    if FOREGROUND_FINALIZER in finalizers:
        return Plan(Verdict.DELETE, propagation="Foreground")
    return Plan(Verdict.DELETE, propagation="Background")


# -- the controller ---------------------------------------------------------------------------------


class UnresolvableKind(LookupError):
    """An apiVersion/kind no served resource matches (yet): retried with back-off, quietly."""


class NamespacedOwnerOfClusterScopedObject(Exception):
    """A cluster-scoped object names a namespaced kind as owner: it can never be resolved."""


class GarbageCollector(Controller):
    """See the module docstring.  `graph` is exposed for tests and debugging (read-only)."""

    name = "garbage-collector"

    def __init__(
        self,
        context: ControllerContext,
        *,
        resources: Sequence[Resource] | None = None,
        workers: int = DEFAULT_GC_WORKERS,
    ) -> None:
        super().__init__(context, workers=workers)
        self.resources = tuple(resources) if resources is not None else deletable_resources()
        self._by_kind = {(r.api_version, r.kind): r for r in self.resources}
        self.graph = DependencyGraph()
        self._polls = ItemExponentialRateLimiter()  # virtual owners and unknown kinds, per uid
        for resource in self.resources:
            self.informer(resource).add_handler(*self._handlers(resource))

    def _handlers(
        self, resource: Resource
    ) -> tuple[
        Callable[[dict[str, Any]], None],
        Callable[[dict[str, Any], dict[str, Any]], None],
        Callable[[dict[str, Any]], None],
    ]:
        api_version, kind = resource.api_version, resource.kind

        def on_add(obj: dict[str, Any]) -> None:
            self._apply(self.graph.observe(obj, api_version=api_version, kind=kind))

        def on_update(old: dict[str, Any], new: dict[str, Any]) -> None:
            if _uid(old) != _uid(new):
                # deleted and re-created under the same name, seen only as a re-list's difference
                self._apply(self.graph.observe_deletion(old, api_version=api_version, kind=kind))
                self._apply(self.graph.observe(new, api_version=api_version, kind=kind))
                return
            self._apply(self.graph.observe(new, api_version=api_version, kind=kind, old=old))

        def on_delete(obj: dict[str, Any]) -> None:
            self._apply(self.graph.observe_deletion(obj, api_version=api_version, kind=kind))

        return on_add, on_update, on_delete

    def _apply(self, actions: GraphActions) -> None:
        for uid in actions.attempt_to_delete:
            self._attempt(uid)
        for uid in actions.attempt_to_delete_later:
            self.queue.add_after(f"{VIRTUAL_ITEM}/{uid}", self._polls.when(uid))
        for uid in actions.attempt_to_orphan:
            self.queue.add(f"{ORPHAN_ITEM}/{uid}")
        for dependent, ref in actions.invalid_namespace_refs:
            message = (
                f'ownerRef {ref.identity(dependent.namespace)} does not exist in namespace "{dependent.namespace}"'
            )
            self.recorder.event(dependent.as_object(), WARNING, "OwnerRefInvalidNamespace", message)

    def _attempt(self, uid: str) -> None:
        node = self.graph.get(uid)
        if node is not None:
            self.queue.add(f"{DELETE_ITEM if node.observed else VIRTUAL_ITEM}/{uid}")

    # -- the work -----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        kind, _, uid = key.partition("/")
        node = self.graph.get(uid)
        if node is None or (kind == VIRTUAL_ITEM and node.observed):
            self._polls.forget(uid)
            return
        try:
            if kind == ORPHAN_ITEM:
                await self._attempt_to_orphan(node)
                return
            exists = await self._attempt_to_delete(node)
        except UnresolvableKind as exc:
            log.info("cannot resolve kind; retrying later", extra={"controller": self.name, "error": str(exc)})
            self.queue.add_after(key, self._polls.when(uid))
            return
        except NamespacedOwnerOfClusterScopedObject:
            log.info("cluster-scoped object refers to a namespaced owner", extra={"item": str(node.identity)})
            return
        current = self.graph.get(uid)
        if exists and current is not None and not current.observed:
            # the owner exists but no informer has shown it yet: look again until one does
            self.queue.add_after(f"{VIRTUAL_ITEM}/{uid}", self._polls.when(uid))
        else:
            self._polls.forget(uid)

    async def _attempt_to_delete(self, node: Node) -> bool:
        """attemptToDeleteItem; False when the object turned out not to exist (graph updated)."""
        if node.being_deleted and not node.deleting_dependents:
            return True  # on its way out: its dependents are looked at once it is gone
        identity = node.identity
        resource = self._resource(identity.api_version, identity.kind)
        latest = await self._read(resource, identity)
        if latest is None or (latest.get("metadata") or {}).get("uid") != identity.uid:
            self._apply(self.graph.virtual_delete(identity))
            return False
        if node.deleting_dependents:
            await self._process_deleting_dependents(node)
            return True
        refs = owner_refs_of(latest)
        if not refs:
            return True
        states = [(ref, await self._owner_state(ref, identity)) for ref in refs]
        current = self.graph.get(identity.uid) or node
        plan = plan_for_dependent(
            states,
            finalizers=finalizers_of(latest),
            has_dependents=bool(current.dependents),
            a_dependent_is_deleting_dependents=any(d.deleting_dependents for d in self.graph.dependents(current)),
        )
        if plan.verdict is Verdict.REMOVE_REFERENCES:
            log.info(
                "removing references to absent owners",
                extra={"item": str(identity), "owners": list(plan.owner_uids)},
            )
            await self._patch(
                resource,
                identity,
                remove_references_patch(identity.uid, plan.owner_uids),
                lambda live: remove_references_merge_patch(live, plan.owner_uids),
            )
        elif plan.verdict is Verdict.DELETE:
            if plan.unblock_first and (body := unblock_references_patch(latest)) is not None:
                await self._patch(resource, identity, body, unblock_references_merge_patch)
            return await self._delete(resource, identity, latest, plan.propagation or "Background")
        return True

    async def _owner_state(self, ref: OwnerRef, item: Identity) -> OwnerState:
        """isDangling + classifyReferences for one reference of `item`."""
        cluster_key = ref.identity("")
        namespaced_key = ref.identity(item.namespace)
        if cluster_key in self.graph.absent or namespaced_key in self.graph.absent:
            return OwnerState.DANGLING
        resource = self._resource(ref.api_version, ref.kind)
        if resource.namespaced and not item.namespace:
            raise NamespacedOwnerOfClusterScopedObject(str(item))
        key = namespaced_key if resource.namespaced else cluster_key
        live = await self._read(resource, key)
        state = owner_state(ref, live)
        if state is OwnerState.DANGLING:
            self.graph.absent.add(key)
        return state

    async def _process_deleting_dependents(self, node: Node) -> None:
        """An owner in foreground deletion: done when no blocking dependent is left."""
        blocking = self.graph.blocking_dependents(node)
        if not blocking:
            log.info("dependents gone; removing finalizer", extra={"item": str(node.identity)})
            await self._remove_finalizer(node.identity, FOREGROUND_FINALIZER)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self._attempt(dep.uid)

    async def _attempt_to_orphan(self, node: Node) -> None:
        """Remove the owner's reference from every dependent, then its `orphan` finalizer."""
        owner_uid = node.uid
        results = await asyncio.gather(
            *(self._remove_reference(dep, owner_uid) for dep in self.graph.dependents(node)),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        log.info("dependents orphaned; removing finalizer", extra={"item": str(node.identity)})
        await self._remove_finalizer(node.identity, ORPHAN_FINALIZER)

    async def _remove_reference(self, dependent: Node, owner_uid: str) -> None:
        identity = dependent.identity
        resource = self._resource(identity.api_version, identity.kind)
        try:
            await self._patch(
                resource,
                identity,
                remove_references_patch(identity.uid, [owner_uid]),
                lambda live: remove_references_merge_patch(live, [owner_uid]),
            )
        except ApiError as exc:
            if exc.code != 404:
                raise

    # -- API operations -----------------------------------------------------------------------------

    def _resource(self, api_version: str, kind: str) -> Resource:
        found = self._by_kind.get((api_version, kind))
        if found is not None:
            return found
        try:
            return resource_for(api_version, kind)
        except LookupError as exc:
            raise UnresolvableKind(str(exc)) from None

    async def _read(self, resource: Resource, identity: Identity) -> dict[str, Any] | None:
        """The object at `identity`'s name (whatever its uid); None when there is none."""
        if resource.namespaced and not identity.namespace:
            return None  # a namespaced kind guessed without a namespace is nowhere
        try:
            return await self.client.get(resource, identity.name, identity.namespace if resource.namespaced else None)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def _delete(
        self, resource: Resource, identity: Identity, latest: dict[str, Any], policy: PropagationPolicy
    ) -> bool:
        """DELETE with uid+resourceVersion preconditions; on a conflict that changed no ownerReference,
        once more with the uid alone.  False when it was gone already."""
        log.info("deleting object", extra={"item": str(identity), "propagationPolicy": policy})
        meta = latest.get("metadata") or {}
        version = meta.get("resourceVersion")
        namespace = identity.namespace if resource.namespaced else None
        preconditions = {"uid": identity.uid, **({"resourceVersion": version} if version else {})}
        try:
            await self.client.delete(
                resource, identity.name, namespace, propagation_policy=policy, preconditions=preconditions
            )
            return True
        except ApiError as exc:
            if exc.code == 404:
                self._apply(self.graph.virtual_delete(identity))
                return False
            if exc.code != 409 or not version:
                raise
            conflict = exc
        live = await self._read(resource, identity)
        if live is None:
            self._apply(self.graph.virtual_delete(identity))
            return False
        live_meta = live.get("metadata") or {}
        unchanged_owners = (live_meta.get("ownerReferences") or []) == (meta.get("ownerReferences") or [])
        if live_meta.get("uid") != identity.uid or not unchanged_owners:
            raise conflict  # something that matters changed: decide again
        try:
            await self.client.delete(
                resource, identity.name, namespace, propagation_policy=policy, preconditions={"uid": identity.uid}
            )
        except ApiError as exc:
            if exc.code != 404:
                raise
            self._apply(self.graph.virtual_delete(identity))
            return False
        return True

    async def _patch(
        self,
        resource: Resource,
        identity: Identity,
        strategic: dict[str, Any],
        merge: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        """A strategic merge patch; where the resource refuses those (415), a JSON merge patch built
        from a fresh read."""
        namespace = identity.namespace if resource.namespaced else None
        try:
            await self.client.patch(resource, identity.name, strategic, namespace, patch_type="strategic")
            return
        except ApiError as exc:
            if exc.code != 415:
                raise
        live = await self._read(resource, identity)
        if live is None or (live.get("metadata") or {}).get("uid") != identity.uid:
            raise ApiError(404, "NotFound", f"{identity} is gone")
        await self.client.patch(resource, identity.name, merge(live), namespace, patch_type="merge")

    async def _remove_finalizer(self, identity: Identity, finalizer: str) -> None:
        """Remove `finalizer` from the live object (compare-and-swap, a few attempts on conflicts)."""
        resource = self._resource(identity.api_version, identity.kind)
        namespace = identity.namespace if resource.namespaced else None
        await _retry_on_conflict(lambda: self._remove_finalizer_once(resource, identity, namespace, finalizer))

    async def _remove_finalizer_once(
        self, resource: Resource, identity: Identity, namespace: str | None, finalizer: str
    ) -> None:
        live = await self._read(resource, identity)
        if live is None or (live.get("metadata") or {}).get("uid") != identity.uid:
            return
        body = remove_finalizer_patch(live, finalizer)
        if body is None:
            return
        try:
            await self.client.patch(resource, identity.name, body, namespace, patch_type="merge")
        except ApiError as exc:
            if exc.code != 404:
                raise


def _uid(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


async def _retry_on_conflict(call: Callable[[], Awaitable[None]], attempts: int = FINALIZER_ATTEMPTS) -> None:
    for attempt in range(attempts):
        try:
            await call()
            return
        except ApiError as exc:
            if exc.code != 409 or attempt == attempts - 1:
                raise


__all__ = [
    "DEFAULT_GC_WORKERS",
    "IGNORED_RESOURCES",
    "GarbageCollector",
    "OwnerState",
    "Plan",
    "Verdict",
    "deletable_resources",
    "owner_state",
    "plan_for_dependent",
]
