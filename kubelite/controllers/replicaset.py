"""ReplicaSets and ReplicationControllers keep `spec.replicas` active pods from their template
(upstream pkg/controller/replicaset; ReplicationControllers run the same code, as upstream's
pkg/controller/replication does through conversion).

Contracts:

* One implementation, `ReplicaController`, parameterised by a `ReplicaKind`: the resource, the
  kind and apiVersion written into pods' controller references, and how `spec.selector` reads (a
  LabelSelector for ReplicaSets, a plain label map for ReplicationControllers).  An empty selector
  selects nothing (the API refuses one; this keeps a stray one from adopting a whole namespace).
* Pod events wake the owner named by the pod's controller reference (kind and uid must match the
  cached owner); an orphan wakes every owner in its namespace whose selector matches it, so one
  of them can adopt it.  Owned pods are found through a pod index by controller uid (orphans under
  a per-namespace key), never by scanning every pod.
* A sync counts the active pods it owns after `claim` (adopt matching orphans, release owned pods
  whose labels stopped matching).  Only when the owner's expectations are satisfied — every pod it
  created or deleted has come back through the informer — does it create or delete pods: at most
  `burst_replicas` (500) per sync, creations in slow-start batches (1, 2, 4 …, stopping at the
  first failing batch), deletions concurrently in `deletion_order`.  An owner being deleted
  neither creates, deletes nor adopts; its status is still kept.
* The status (see `replicaset_status`) is written through the `status` subresource only when it
  changed.  A failed creation/deletion adds the `ReplicaFailure` condition and the sync raises, so
  the work queue retries with back-off; the next sync that does not fail removes the condition.
  Pods that are ready but not yet ready for `minReadySeconds` requeue the owner for the moment the
  first of them becomes available.
* Terminal pods (Succeeded/Failed) and pods being deleted are not active: they are neither counted
  nor deleted (the pod garbage collector removes finished ones), so a RS replaces them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from kubelite.client.errors import TransportError
from kubelite.client.interface import builtin, key_of
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.expectations import EXPECTATIONS_TIMEOUT, Expectations
from kubelite.controllers.ownership import (
    PODS,
    PodControl,
    claim,
    controller_ref,
    pod_from_template,
    slow_start_batch,
)
from kubelite.controllers.podutil import deletion_order, is_active, is_terminating
from kubelite.controllers.replicaset_status import (
    FAILED_CREATE,
    FAILED_DELETE,
    ReplicaFailure,
    calculate_status,
    min_ready_seconds,
    next_availability_check,
    status_changed,
)
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, name_of, namespace_of
from kubelite.machinery.resources import Resource
from kubelite.machinery.selectors import (
    NOTHING,
    LabelSelector,
    SelectorError,
    label_selector_from_dict,
    selector_from_set,
)

log = logging.getLogger(__name__)

BURST_REPLICAS = 500  # upstream's BurstReplicas: pods created or deleted per sync at most
SLOW_START_INITIAL_BATCH = 1  # upstream's SlowStartInitialBatchSize
POD_OWNER_INDEX = "replica-controllers/controller-uid"
_ORPHAN = "orphan:"  # index value prefix for pods without a controller, per namespace

_SyncError = (ApiError, TransportError)


@dataclass(frozen=True)
class ReplicaKind:
    """What differs between the resources this controller keeps."""

    resource: Resource
    kind: str
    api_version: str
    map_selector: bool  # `spec.selector` is a plain label map (ReplicationController)

    def selector(self, owner: dict[str, Any]) -> LabelSelector:
        """The owner's pod selector; SelectorError for an invalid one; NOTHING for an empty one."""
        raw = (owner.get("spec") or {}).get("selector")
        selector = selector_from_set(raw) if self.map_selector else label_selector_from_dict(raw)
        return NOTHING if selector.empty else selector


REPLICA_SET = ReplicaKind(builtin("apps", "replicasets"), "ReplicaSet", "apps/v1", map_selector=False)
REPLICATION_CONTROLLER = ReplicaKind(
    builtin("", "replicationcontrollers"), "ReplicationController", "v1", map_selector=True
)


# -- the decisions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaPlan:
    """What one sync does about the pod count: create `create` pods, or delete `delete`."""

    create: int = 0
    delete: tuple[dict[str, Any], ...] = ()


def desired_replicas(owner: dict[str, Any]) -> int:
    replicas = (owner.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def plan_replicas(pods: Sequence[dict[str, Any]], desired: int, *, burst: int = BURST_REPLICAS) -> ReplicaPlan:
    """Too few active pods: create the difference; too many: delete the difference, those first in
    `deletion_order` (unscheduled, pending, not ready … first).  Either way at most `burst`."""
    diff = len(pods) - desired
    if diff < 0:
        return ReplicaPlan(create=min(-diff, burst))
    if diff > 0:
        return ReplicaPlan(delete=tuple(deletion_order(pods)[: min(diff, burst)]))
    return ReplicaPlan()


def pod_owner_index(pod: dict[str, Any]) -> list[str]:
    """Index values of a pod: its controller's uid, or `orphan:<namespace>` when it has none."""
    ref = controller_ref(pod)
    if ref is None:
        return [_ORPHAN + namespace_of(pod)]
    uid = ref.get("uid")
    return [str(uid)] if uid else []


def orphan_index_key(namespace: str) -> str:
    return _ORPHAN + namespace


def owners_selecting(pod: dict[str, Any], owners: Iterable[dict[str, Any]], kind: ReplicaKind) -> list[dict[str, Any]]:
    """The owners (of one namespace) whose selector matches `pod`'s labels: candidates to adopt it.
    Owners with an invalid selector match nothing."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    found = []
    for owner in owners:
        try:
            selector = kind.selector(owner)
        except SelectorError:
            continue
        if selector.matches(labels):
            found.append(owner)
    return found


# -- the controller ---------------------------------------------------------------------------------


class _NamespaceTerminating(Exception):
    """Pod creation was refused because the namespace is going away: stop, but not a failure."""


def _is_namespace_terminating(exc: ApiError) -> bool:
    return any(cause.reason == "NamespaceTerminating" for cause in exc.causes)


class ReplicaController(Controller):
    """Keeps the replicas of one `ReplicaKind`; subclasses set `name` and `kind`."""

    kind: ClassVar[ReplicaKind]

    def __init__(self, context: ControllerContext, *, burst_replicas: int = BURST_REPLICAS) -> None:
        super().__init__(context)
        self.burst_replicas = burst_replicas
        self.expectations = Expectations(self.clock)
        self.pod_control = PodControl(self.client, self.recorder)
        self.owners = self.informer(self.kind.resource)
        self.pods = self.informer(PODS)
        self.pods.add_index(POD_OWNER_INDEX, pod_owner_index)  # the same index for every replica controller
        self.owners.add_handler(self.enqueue, self._on_owner_update, self._on_owner_delete)
        self.pods.add_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)

    # -- handlers: only bookkeeping and enqueueing ---------------------------------------------------

    def _on_owner_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if (old.get("metadata") or {}).get("uid") != (new.get("metadata") or {}).get("uid"):
            self.expectations.forget(key_of(old))  # re-created under the same name: start clean
        self.enqueue(new)

    def _on_owner_delete(self, owner: dict[str, Any]) -> None:
        self.expectations.forget(key_of(owner))
        self.enqueue(owner)

    def _resolve(self, namespace: str, ref: dict[str, Any] | None) -> dict[str, Any] | None:
        """The cached owner a controller reference names, if it is of our kind and the same uid."""
        if ref is None or ref.get("kind") != self.kind.kind:
            return None
        owner = self.owners.get(f"{namespace}/{ref.get('name')}")
        if owner is None or (owner.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return owner

    def _enqueue_selecting(self, pod: dict[str, Any]) -> None:
        namespace = namespace_of(pod)
        for owner in owners_selecting(pod, self.owners.by_index("namespace", namespace), self.kind):
            self.enqueue(owner)

    def _on_pod_add(self, pod: dict[str, Any]) -> None:
        if is_terminating(pod):
            self._on_pod_delete(pod)  # seen for the first time already going: not a creation
            return
        ref = controller_ref(pod)
        if ref is not None:
            owner = self._resolve(namespace_of(pod), ref)
            if owner is not None:
                key = key_of(owner)
                self.expectations.creation_observed(key)
                self.enqueue_key(key)
            return
        self._enqueue_selecting(pod)

    def _on_pod_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
        if old_meta.get("resourceVersion") == new_meta.get("resourceVersion"):
            return  # a resync: nothing changed
        labels_changed = old_meta.get("labels") != new_meta.get("labels")
        if is_terminating(new):
            # counts as deleted as soon as the grace period starts, so a replacement starts now
            self._on_pod_delete(new)
            if labels_changed:
                self._on_pod_delete(old)
            return
        new_ref, old_ref = controller_ref(new), controller_ref(old)
        if new_ref != old_ref and old_ref is not None:
            previous = self._resolve(namespace_of(old), old_ref)
            if previous is not None:
                self.enqueue(previous)
        if new_ref is not None:
            owner = self._resolve(namespace_of(new), new_ref)
            if owner is not None:
                self.enqueue(owner)
            return
        if labels_changed or new_ref != old_ref:
            self._enqueue_selecting(new)

    def _on_pod_delete(self, pod: dict[str, Any]) -> None:
        owner = self._resolve(namespace_of(pod), controller_ref(pod))
        if owner is None:
            return  # nobody waits for an orphan to go
        key = key_of(owner)
        self.expectations.deletion_observed(key, key_of(pod))
        self.enqueue_key(key)

    # -- the sync -----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.forget(key)
            return
        try:
            selector = self.kind.selector(owner)
        except SelectorError as exc:
            log.warning(
                "invalid pod selector; not syncing", extra={"controller": self.name, "key": key, "error": str(exc)}
            )
            return
        needs_sync = self.expectations.satisfied(key)
        pods = await claim(
            self.client,
            PODS,
            owner,
            selector,
            self._candidates(owner),
            owner_api_version=self.kind.api_version,
            owner_kind=self.kind.kind,
            fresh_owner=lambda: self._fresh(owner),
        )
        failure = None
        if needs_sync and not is_terminating(owner):
            failure = await self._manage(key, owner, pods)
        now = self.clock.utcnow()
        status = calculate_status(owner, pods, now=now, failure=failure)
        await self._write_status(owner, status)
        if failure is not None and failure.error is not None:
            raise failure.error
        delay = next_availability_check(pods, min_ready_seconds(owner), now)
        if delay is not None:
            self.queue.add_after(key, delay)

    def _candidates(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        """Active pods this owner controls (whatever their labels) and active orphans beside it."""
        uid = str((owner.get("metadata") or {}).get("uid") or "")
        owned = self.pods.by_index(POD_OWNER_INDEX, uid) if uid else []
        orphans = self.pods.by_index(POD_OWNER_INDEX, orphan_index_key(namespace_of(owner)))
        return [pod for pod in (*owned, *orphans) if is_active(pod)]

    async def _fresh(self, owner: dict[str, Any]) -> dict[str, Any] | None:
        """The owner as the API has it now (adoption must not trust the cache); None when gone."""
        try:
            return await self.client.get(self.kind.resource, name_of(owner), namespace_of(owner))
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def _manage(self, key: str, owner: dict[str, Any], pods: list[dict[str, Any]]) -> ReplicaFailure | None:
        plan = plan_replicas(pods, desired_replicas(owner), burst=self.burst_replicas)
        if plan.create:
            log.debug("too few replicas", extra={"controller": self.name, "key": key, "creating": plan.create})
            failure = await self._create(key, owner, plan.create)
        elif plan.delete:
            log.debug("too many replicas", extra={"controller": self.name, "key": key, "deleting": len(plan.delete)})
            failure = await self._delete(key, owner, plan.delete)
        else:
            return None
        if not self.expectations.satisfied(key):
            # a lost watch event must not wedge the owner: look again when expectations go stale
            self.queue.add_after(key, EXPECTATIONS_TIMEOUT + 1)
        return failure

    async def _create(self, key: str, owner: dict[str, Any], count: int) -> ReplicaFailure | None:
        """Create `count` pods in slow-start batches; pods never created are no longer expected."""
        self.expectations.expect(key, adds=count)
        template = (owner.get("spec") or {}).get("template") or {}
        errors: list[BaseException] = []

        async def create_one() -> None:
            pod = pod_from_template(template, owner, api_version=self.kind.api_version, kind=self.kind.kind)
            try:
                await self.pod_control.create(pod, owner)
            except ApiError as exc:
                if _is_namespace_terminating(exc):
                    raise _NamespaceTerminating from exc
                errors.append(exc)
                raise
            except TransportError as exc:
                errors.append(exc)
                raise

        created = await slow_start_batch(count, SLOW_START_INITIAL_BATCH, create_one)
        if created < count:
            self.expectations.creation_failed(key, count - created)
        if not errors:
            return None
        return ReplicaFailure(FAILED_CREATE, str(errors[0]), errors[0])

    async def _delete(self, key: str, owner: dict[str, Any], pods: Sequence[dict[str, Any]]) -> ReplicaFailure | None:
        """Delete `pods` concurrently; a deletion that failed, or that the informer saw before the
        expectation was recorded, is marked observed at once."""
        self.expectations.expect(key, deletes={key_of(pod) for pod in pods})
        results = await asyncio.gather(*(self.pod_control.delete(pod, owner) for pod in pods), return_exceptions=True)
        first_error: BaseException | None = None
        for pod, result in zip(pods, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, _SyncError):
                self.expectations.deletion_observed(key, key_of(pod))
                first_error = first_error or result
            elif isinstance(result, BaseException):
                raise result
            elif self._deletion_seen(pod):
                self.expectations.deletion_observed(key, key_of(pod))
        if first_error is None:
            return None
        return ReplicaFailure(FAILED_DELETE, str(first_error), first_error)

    def _deletion_seen(self, pod: dict[str, Any]) -> bool:
        """The cache already shows `pod` gone or going (the event came before the expectation, or
        the pod was gone before we asked: PodControl treats 404 as deleted)."""
        cached = self.pods.get(key_of(pod))
        if cached is None or is_terminating(cached):
            return True
        return (cached.get("metadata") or {}).get("uid") != (pod.get("metadata") or {}).get("uid")

    async def _write_status(self, owner: dict[str, Any], status: dict[str, Any]) -> None:
        """PUT the status if it changed; after a conflict, once more onto a fresh read (as
        upstream's single GET/PUT retry).  An owner gone meanwhile needs no status."""
        if not status_changed(owner, status):
            return
        body = deep_copy(owner)
        body["status"] = status
        resource, namespace = self.kind.resource, namespace_of(owner)
        try:
            await self.client.update(resource, body, namespace, subresource="status")
            return
        except ApiError as exc:
            if exc.code == 404:
                return
            if exc.code != 409:
                raise
        fresh = await self._fresh(owner)
        if fresh is None or (fresh.get("metadata") or {}).get("uid") != (owner.get("metadata") or {}).get("uid"):
            return
        fresh["status"] = status
        try:
            await self.client.update(resource, fresh, namespace, subresource="status")
        except ApiError as exc:
            if exc.code != 404:
                raise


class ReplicaSetController(ReplicaController):
    """apps/v1 ReplicaSets."""

    name = "replicaset-controller"
    kind = REPLICA_SET


class ReplicationControllerController(ReplicaController):
    """core/v1 ReplicationControllers."""

    name = "replicationcontroller-controller"
    kind = REPLICATION_CONTROLLER


__all__ = [
    "BURST_REPLICAS",
    "POD_OWNER_INDEX",
    "REPLICATION_CONTROLLER",
    "REPLICA_SET",
    "ReplicaController",
    "ReplicaKind",
    "ReplicaPlan",
    "ReplicaSetController",
    "ReplicationControllerController",
    "desired_replicas",
    "orphan_index_key",
    "owners_selecting",
    "plan_replicas",
    "pod_owner_index",
]
