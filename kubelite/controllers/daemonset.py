"""DaemonSets run one pod on every eligible node (upstream pkg/controller/daemon).

The decisions are pure functions in `daemonset_placement` (which nodes), `daemonset_update`
(which pods to create and delete, rolling updates, status) and `history` (ControllerRevisions);
this module is the shell that reads the informer caches and applies them through the API, with
the revision writes in `daemonset_history`.

Contracts:

* Watches apps/v1 DaemonSets, ControllerRevisions, core Pods and Nodes.  Pod and revision events
  wake the DaemonSet named by their controller reference (kind and uid must match); orphans wake
  every DaemonSet in their namespace whose selector matches them, so one can adopt them.  A node
  added, deleted, or whose labels or taints change so that a DaemonSet's eligibility changes
  wakes that DaemonSet (a change of `spec.unschedulable` alone wakes nobody: daemon pods tolerate
  the unschedulable taint).
* A sync (upstream syncDaemonSet), for a DaemonSet that exists, has a non-empty selector
  (an empty one gets a `SelectingAll` warning and nothing else) and is not being deleted:
  1. history: adopt/release ControllerRevisions, find or create the current one, dedupe;
  2. when expectations are not met (pods it created or deleted not yet seen), only the status
     counts are refreshed, observedGeneration stays;
  3. manage: per node, create the missing pod, delete pods on nodes that may not keep them,
     surplus pods, succeeded pods and failed pods (the latter at most once per back-off period
     per node: 1 s doubling to 15 min, keyed by DaemonSet uid, observedGeneration and node, as
     upstream's failedPodsBackoff), and unbound pods for nodes that no longer exist;
  4. when nothing from step 3 is outstanding and the strategy is RollingUpdate: replace old pods
     within maxUnavailable / maxSurge (OnDelete replaces only pods the user deleted);
  5. trim the history to revisionHistoryLimit; 6. write the status if it changed.
  Pod creations and deletions are capped at 250 per sync (upstream BurstReplicas); creations go
  in slow-start batches and stop at the first failing batch.  Failures are raised after the
  status is written, so the work queue retries with back-off.
* New pods: the template with the daemon tolerations, labels `controller-revision-hash` and
  `pod-template-generation`, a controller reference to the DaemonSet and a required node affinity
  pinning them to their node; the default scheduler binds them.
* A ControllerRevision name clash with different data bumps `status.collisionCount` and retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubelite.client.errors import TransportError
from kubelite.client.events import NORMAL, WARNING
from kubelite.client.interface import builtin, key_of
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.daemonset_history import API_VERSION, DAEMONSETS, KIND, DaemonSetHistory, ignore_not_found
from kubelite.controllers.daemonset_placement import Eligibility, node_should_run, pin_to_node
from kubelite.controllers.daemonset_status import next_status, status_changed, status_counts
from kubelite.controllers.daemonset_update import (
    ROLLING_UPDATE,
    FailedPodBackoff,
    allows_surge,
    by_age,
    daemon_pod_template,
    group_by_node,
    min_ready_seconds,
    plan_node,
    plan_rolling_update,
    rolling_limits,
    strategy_type,
    template_generation,
    unscheduled_without_node,
)
from kubelite.controllers.expectations import EXPECTATIONS_TIMEOUT, Expectations
from kubelite.controllers.history import (
    CONTROLLER_REVISIONS,
    REVISION_OWNER_INDEX,
    owner_uid_index,
    revision_hash,
)
from kubelite.controllers.ownership import PODS, PodControl, claim, controller_ref, pod_from_template, slow_start_batch
from kubelite.controllers.podutil import is_ready, is_terminating
from kubelite.controllers.replicaset import POD_OWNER_INDEX, orphan_index_key, pod_owner_index
from kubelite.controllers.replicaset_status import next_availability_check
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, name_of, namespace_of
from kubelite.machinery.selectors import LabelSelector, SelectorError, label_selector_from_dict

log = logging.getLogger(__name__)

NODES = builtin("", "nodes")

BURST_REPLICAS = 250  # upstream's BurstReplicas for DaemonSets
SLOW_START_INITIAL_BATCH = 1
BACKOFF_GC_INTERVAL = 60.0

# event reasons (upstream daemon_controller.go)
SELECTING_ALL = "SelectingAll"
FAILED_PLACEMENT = "FailedPlacement"  # upstream keeps the reason; the scheduler now places pods, so it is unused
FAILED_DAEMON_POD = "FailedDaemonPod"
SUCCEEDED_DAEMON_POD = "SucceededDaemonPod"
SELECTING_ALL_MESSAGE = "This daemon set is selecting all pods. A non-empty selector is required."

_SyncError = (ApiError, TransportError)


@dataclass
class _Sync:
    """What one sync works from: the cached DaemonSet and facts derived from it once."""

    key: str
    daemonset: dict[str, Any]
    selector: LabelSelector
    node_names: list[str]
    eligibility: dict[str, Eligibility]
    now: datetime
    hash_value: str = ""
    generation: int | None = None

    @property
    def namespace(self) -> str:
        return namespace_of(self.daemonset)


class _NamespaceTerminating(Exception):
    """Pod creation was refused because the namespace is going away: stop, but not a failure."""


def _is_namespace_terminating(exc: ApiError) -> bool:
    return any(cause.reason == "NamespaceTerminating" for cause in exc.causes)


def _selector_of(daemonset: dict[str, Any]) -> LabelSelector | None:
    """The DaemonSet's pod selector; None when it is invalid or empty (selects nothing here)."""
    try:
        selector = label_selector_from_dict((daemonset.get("spec") or {}).get("selector"))
    except SelectorError:
        return None
    return None if selector.empty else selector


class DaemonSetController(Controller):
    """apps/v1 DaemonSets; see the module docstring."""

    name = "daemonset-controller"

    def __init__(
        self,
        context: ControllerContext,
        *,
        burst_replicas: int = BURST_REPLICAS,
        failed_pod_backoff: FailedPodBackoff | None = None,
    ) -> None:
        super().__init__(context)
        self.burst_replicas = burst_replicas
        self.expectations = Expectations(self.clock)
        self.pod_control = PodControl(self.client, self.recorder)
        self.backoff = failed_pod_backoff or FailedPodBackoff()
        self._last_backoff_gc = self.clock.now()
        self.daemonsets = self.informer(DAEMONSETS)
        self.revisions = self.informer(CONTROLLER_REVISIONS)
        self.history = DaemonSetHistory(self.client, self.revisions, fresh_owner=self._fresh)
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.pods.add_index(POD_OWNER_INDEX, pod_owner_index)  # shared with the replica controllers
        self.revisions.add_index(REVISION_OWNER_INDEX, owner_uid_index)
        self.daemonsets.add_handler(self.enqueue, self._on_daemonset_update, self._on_daemonset_delete)
        self.pods.add_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        self.revisions.add_handler(self._on_revision_add, self._on_revision_update, self._on_revision_delete)
        self.nodes.add_handler(self._on_node_add, self._on_node_update, self._on_node_delete)

    # -- handlers: only bookkeeping and enqueueing ---------------------------------------------------

    def _on_daemonset_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if (old.get("metadata") or {}).get("uid") != (new.get("metadata") or {}).get("uid"):
            self.expectations.forget(key_of(old))  # re-created under the same name: start clean
        self.enqueue(new)

    def _on_daemonset_delete(self, daemonset: dict[str, Any]) -> None:
        self.expectations.forget(key_of(daemonset))
        self.enqueue(daemonset)

    def _resolve(self, namespace: str, ref: dict[str, Any] | None) -> dict[str, Any] | None:
        """The cached DaemonSet a controller reference names, if the kind and uid match."""
        if ref is None or ref.get("kind") != KIND:
            return None
        found = self.daemonsets.get(f"{namespace}/{ref.get('name')}")
        if found is None or (found.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return found

    def _enqueue_selecting(self, obj: dict[str, Any]) -> None:
        """Wake the DaemonSets whose selector matches an orphan (pod or revision)."""
        labels = (obj.get("metadata") or {}).get("labels") or {}
        for daemonset in self.daemonsets.by_index("namespace", namespace_of(obj)):
            selector = _selector_of(daemonset)
            if selector is not None and selector.matches(labels):
                self.enqueue(daemonset)

    def _on_pod_add(self, pod: dict[str, Any]) -> None:
        if is_terminating(pod):
            self._on_pod_delete(pod)  # seen for the first time already going: not a creation
            return
        ref = controller_ref(pod)
        if ref is None:
            self._enqueue_selecting(pod)
            return
        owner = self._resolve(namespace_of(pod), ref)
        if owner is not None:
            key = key_of(owner)
            self.expectations.creation_observed(key)
            self.enqueue_key(key)

    def _on_pod_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
        if old_meta.get("resourceVersion") == new_meta.get("resourceVersion"):
            return  # a resync: nothing changed
        if is_terminating(new):
            # counts as deleted as soon as the grace period starts
            self._on_pod_delete(new)
            return
        new_ref, old_ref = controller_ref(new), controller_ref(old)
        if new_ref != old_ref and old_ref is not None:
            previous = self._resolve(namespace_of(old), old_ref)
            if previous is not None:
                self.enqueue(previous)
        if new_ref is None:
            if old_meta.get("labels") != new_meta.get("labels") or new_ref != old_ref:
                self._enqueue_selecting(new)
            return
        owner = self._resolve(namespace_of(new), new_ref)
        if owner is None:
            return
        self.enqueue(owner)
        wait = min_ready_seconds(owner)
        if wait > 0 and not is_ready(old) and is_ready(new):
            self.queue.add_after(key_of(owner), wait + 1)  # when it becomes available

    def _on_pod_delete(self, pod: dict[str, Any]) -> None:
        owner = self._resolve(namespace_of(pod), controller_ref(pod))
        if owner is None:
            return  # nobody waits for an orphan to go
        key = key_of(owner)
        self.expectations.deletion_observed(key, key_of(pod))
        self.enqueue_key(key)

    def _on_revision_add(self, revision: dict[str, Any]) -> None:
        if is_terminating(revision):
            self._on_revision_delete(revision)
            return
        if controller_ref(revision) is None:
            self._enqueue_selecting(revision)

    def _on_revision_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
        if old_meta.get("resourceVersion") == new_meta.get("resourceVersion"):
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
        elif old_meta.get("labels") != new_meta.get("labels") or new_ref != old_ref:
            self._enqueue_selecting(new)

    def _on_revision_delete(self, revision: dict[str, Any]) -> None:
        owner = self._resolve(namespace_of(revision), controller_ref(revision))
        if owner is not None:
            self.enqueue(owner)

    def _on_node_add(self, node: dict[str, Any]) -> None:
        for daemonset in self.daemonsets.list():
            if node_should_run(node, daemonset).should_run:
                self.enqueue(daemonset)

    def _on_node_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        same_labels = (old.get("metadata") or {}).get("labels") == (new.get("metadata") or {}).get("labels")
        if same_labels and (old.get("spec") or {}).get("taints") == (new.get("spec") or {}).get("taints"):
            return  # nothing eligibility depends on changed
        for daemonset in self.daemonsets.list():
            if node_should_run(old, daemonset) != node_should_run(new, daemonset):
                self.enqueue(daemonset)

    def _on_node_delete(self, node: dict[str, Any]) -> None:
        # unbound pods meant for the node can go now (bound ones are the pod GC's)
        for daemonset in self.daemonsets.list():
            self.enqueue(daemonset)

    # -- the sync -----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        daemonset = self.daemonsets.get(key)
        if daemonset is None:
            self.expectations.forget(key)
            return
        self._gc_backoff()
        raw_selector = (daemonset.get("spec") or {}).get("selector")
        try:
            selector = label_selector_from_dict(raw_selector)
        except SelectorError as exc:
            log.warning("invalid pod selector; not syncing", extra={"key": key, "error": str(exc)})
            return
        if selector.empty:
            self.recorder.event(daemonset, WARNING, SELECTING_ALL, SELECTING_ALL_MESSAGE)
            return
        if is_terminating(daemonset):
            return  # its history may be going already: nothing reliable to compute
        nodes = sorted(self.nodes.list(), key=name_of)
        sync = _Sync(
            key=key,
            daemonset=daemonset,
            selector=selector,
            node_names=[name_of(node) for node in nodes],
            eligibility={name_of(node): node_should_run(node, daemonset) for node in nodes},
            now=self.clock.utcnow(),
            generation=template_generation(daemonset),
        )
        current, old = await self.history.construct(daemonset, selector, pods=lambda: self._daemon_pods(sync))
        sync.hash_value = revision_hash(current)
        if not self.expectations.satisfied(key):
            await self._update_status(sync, observe=False)
            return
        failure: BaseException | None = None
        try:
            await self._update_daemonset(sync, old)
        except _SyncError as exc:
            failure = exc
        try:
            await self._update_status(sync, observe=True)
        except _SyncError as exc:
            if failure is None:
                raise
            log.warning("status update failed", extra={"key": key, "error": str(exc)})
        if failure is not None:
            raise failure

    def _gc_backoff(self) -> None:
        now = self.clock.now()
        if now - self._last_backoff_gc >= BACKOFF_GC_INTERVAL:
            self.backoff.gc(now)
            self._last_backoff_gc = now

    async def _daemon_pods(self, sync: _Sync) -> list[dict[str, Any]]:
        """The pods the DaemonSet controls after adopting matching orphans and releasing pods
        whose labels stopped matching (upstream getDaemonPods) — finished ones included."""
        daemonset = sync.daemonset
        uid = str((daemonset.get("metadata") or {}).get("uid") or "")
        owned = self.pods.by_index(POD_OWNER_INDEX, uid) if uid else []
        orphans = self.pods.by_index(POD_OWNER_INDEX, orphan_index_key(sync.namespace))
        return await claim(
            self.client,
            PODS,
            daemonset,
            sync.selector,
            [*owned, *orphans],
            owner_api_version=API_VERSION,
            owner_kind=KIND,
            fresh_owner=lambda: self._fresh(daemonset),
        )

    async def _fresh(self, daemonset: dict[str, Any]) -> dict[str, Any] | None:
        """The DaemonSet as the API has it now (adoption must not trust the cache); None when gone."""
        try:
            return await self.client.get(DAEMONSETS, name_of(daemonset), namespace_of(daemonset))
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def _update_daemonset(self, sync: _Sync, old: list[dict[str, Any]]) -> None:
        await self._manage(sync)
        if self.expectations.satisfied(sync.key) and strategy_type(sync.daemonset) == ROLLING_UPDATE:
            await self._rolling_update(sync)
        await self.history.cleanup(sync.daemonset, old, pods=lambda: self._daemon_pods(sync))

    async def _manage(self, sync: _Sync) -> None:
        """Upstream manage: per node what `plan_node` says, plus unbound pods of deleted nodes."""
        node_pods = group_by_node(await self._daemon_pods(sync))
        surge = allows_surge(sync.daemonset)
        wait = min_ready_seconds(sync.daemonset)
        create_on: list[str] = []
        delete: list[dict[str, Any]] = []
        for node in sync.node_names:
            plan = plan_node(
                node_pods.get(node, ()),
                sync.eligibility[node],
                hash_value=sync.hash_value,
                surge=surge,
                min_ready=wait,
                now=sync.now,
            )
            if plan.create:
                create_on.append(node)
            delete.extend(plan.delete)
            for pod in plan.succeeded:
                where = f"{namespace_of(pod)}/{name_of(pod)} on node {node}"
                message = f"Found succeeded daemon pod {where}, will try to delete it"
                self.recorder.event(sync.daemonset, NORMAL, SUCCEEDED_DAEMON_POD, message)
                delete.append(pod)
            delete.extend(self._failed_pods_to_delete(sync, node, plan.failed))
        delete.extend(unscheduled_without_node(node_pods, sync.node_names))
        await self._sync_nodes(sync, delete, create_on)

    def _failed_pods_to_delete(self, sync: _Sync, node: str, failed: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Failed pods to delete now: a node that keeps rejecting its daemon (the kubelet fails the
        pod at once) must not make the controller hot-loop, so each node's failed pods are deleted
        at most once per back-off period; a pod in back-off is looked at again when it ends."""
        status = sync.daemonset.get("status") or {}
        uid = (sync.daemonset.get("metadata") or {}).get("uid")
        backoff_key = f"{uid}/{int(status.get('observedGeneration') or 0)}/{node}"
        chosen: list[dict[str, Any]] = []
        for pod in failed:
            now = self.clock.now()
            left = self.backoff.remaining(backoff_key, now)
            if left > 0:
                log.debug("failed daemon pod deletion in back-off", extra={"pod": name_of(pod), "node": node})
                self.queue.add_after(sync.key, left)
                continue
            self.backoff.next(backoff_key, now)
            message = f"Found failed daemon pod {namespace_of(pod)}/{name_of(pod)} on node {node}, will try to kill it"
            self.recorder.event(sync.daemonset, WARNING, FAILED_DAEMON_POD, message)
            chosen.append(pod)
        return chosen

    async def _rolling_update(self, sync: _Sync) -> None:
        node_pods: dict[str, Sequence[dict[str, Any]]] = dict(group_by_node(await self._daemon_pods(sync)))
        desired = 0
        for node, eligibility in sync.eligibility.items():
            if eligibility.should_run:
                desired += 1
                node_pods.setdefault(node, [])
        max_surge, max_unavailable = rolling_limits(sync.daemonset, desired)
        plan = plan_rolling_update(
            node_pods,
            hash_value=sync.hash_value,
            generation=sync.generation,
            max_surge=max_surge,
            max_unavailable=max_unavailable,
            desired=desired,
            should_run={node: e.should_run for node, e in sync.eligibility.items()},
            min_ready=min_ready_seconds(sync.daemonset),
            now=sync.now,
        )
        await self._sync_nodes(sync, plan.delete, plan.create_on)

    async def _sync_nodes(self, sync: _Sync, delete: Iterable[dict[str, Any]], create_on: Iterable[str]) -> None:
        """Delete `delete` and create a pod on each of `create_on`, at most `burst_replicas` of
        each, recording expectations first; raises the first failure after trying everything."""
        pods = list(delete)[: self.burst_replicas]
        nodes = list(create_on)[: self.burst_replicas]
        if not pods and not nodes:
            return
        self.expectations.expect(sync.key, adds=len(nodes), deletes={key_of(pod) for pod in pods})
        create_error = await self._create_pods(sync, nodes)
        delete_error = await self._delete_pods(sync, pods)
        if not self.expectations.satisfied(sync.key):
            # a lost watch event must not wedge the DaemonSet: look again when expectations go stale
            self.queue.add_after(sync.key, EXPECTATIONS_TIMEOUT + 1)
        failure = create_error or delete_error
        if failure is not None:
            raise failure

    async def _create_pods(self, sync: _Sync, nodes: Sequence[str]) -> BaseException | None:
        """One pod per node in slow-start batches; pods never created are no longer expected."""
        if not nodes:
            return None
        template = daemon_pod_template(sync.daemonset, sync.hash_value)
        remaining = iter(nodes)
        failures: list[BaseException] = []

        async def create_one() -> None:
            node = next(remaining)
            pod = pod_from_template(template, sync.daemonset, api_version=API_VERSION, kind=KIND)
            pod["spec"]["affinity"] = pin_to_node(pod["spec"].get("affinity"), node)
            try:
                await self.pod_control.create(pod, sync.daemonset)
            except ApiError as exc:
                if _is_namespace_terminating(exc):
                    raise _NamespaceTerminating from exc
                failures.append(exc)
                raise
            except TransportError as exc:
                failures.append(exc)
                raise

        created = await slow_start_batch(len(nodes), SLOW_START_INITIAL_BATCH, create_one)
        if created < len(nodes):
            self.expectations.creation_failed(sync.key, len(nodes) - created)
        return failures[0] if failures else None

    async def _delete_pods(self, sync: _Sync, pods: Sequence[dict[str, Any]]) -> BaseException | None:
        """Delete concurrently; a deletion that failed, or that the cache already shows, is marked
        observed at once (its informer event may have come before the expectation)."""
        if not pods:
            return None
        results = await asyncio.gather(
            *(self.pod_control.delete(pod, sync.daemonset) for pod in pods), return_exceptions=True
        )
        first: BaseException | None = None
        for pod, result in zip(pods, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, _SyncError):
                self.expectations.deletion_observed(sync.key, key_of(pod))
                first = first or result
            elif isinstance(result, BaseException):
                raise result
            elif self._deletion_seen(pod):
                self.expectations.deletion_observed(sync.key, key_of(pod))
        return first

    def _deletion_seen(self, pod: dict[str, Any]) -> bool:
        cached = self.pods.get(key_of(pod))
        if cached is None or is_terminating(cached):
            return True
        return (cached.get("metadata") or {}).get("uid") != (pod.get("metadata") or {}).get("uid")

    # -- status -------------------------------------------------------------------------------------

    async def _update_status(self, sync: _Sync, *, observe: bool) -> None:
        """Write the counts if they changed; `observe` raises observedGeneration (only a sync that
        acted on this generation may).  Requeues for the moment a ready pod becomes available."""
        node_pods = group_by_node(await self._daemon_pods(sync))
        wait = min_ready_seconds(sync.daemonset)
        counts = status_counts(
            sync.node_names,
            sync.eligibility,
            node_pods,
            hash_value=sync.hash_value,
            generation=sync.generation,
            min_ready=wait,
            now=sync.now,
        )
        generation = int((sync.daemonset.get("metadata") or {}).get("generation") or 0) if observe else None
        await self._write_status(sync, counts, generation)
        if wait > 0 and counts["numberReady"] != counts["numberAvailable"]:
            reported = [by_age(node_pods[n])[0] for n in sync.node_names if node_pods.get(n)]
            delay = next_availability_check(reported, wait, sync.now)
            self.queue.add_after(sync.key, delay if delay is not None else wait)

    async def _write_status(self, sync: _Sync, counts: dict[str, int], generation: int | None) -> None:
        """PUT the status if it changed; after a conflict once more onto a fresh read (upstream's
        StatusUpdateRetries = 1).  A DaemonSet gone meanwhile needs no status."""
        daemonset = sync.daemonset
        status = next_status(daemonset, counts, observed_generation=generation)
        if not status_changed(daemonset, status):
            return
        body = deep_copy(daemonset)
        body["status"] = status
        try:
            await self.client.update(DAEMONSETS, body, sync.namespace, subresource="status")
            return
        except ApiError as exc:
            if exc.code == 404:
                return
            if exc.code != 409:
                raise
        fresh = await self._fresh(daemonset)
        if fresh is None or (fresh.get("metadata") or {}).get("uid") != (daemonset.get("metadata") or {}).get("uid"):
            return
        fresh["status"] = next_status(fresh, counts, observed_generation=generation)
        await ignore_not_found(self.client.update(DAEMONSETS, fresh, sync.namespace, subresource="status"))


__all__ = [
    "BURST_REPLICAS",
    "DAEMONSETS",
    "FAILED_DAEMON_POD",
    "FAILED_PLACEMENT",
    "NODES",
    "SELECTING_ALL",
    "SUCCEEDED_DAEMON_POD",
    "DaemonSetController",
    "FailedPodBackoff",
]
