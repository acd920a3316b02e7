"""StatefulSets: pods with stable names and storage, created, replaced and removed in order
(upstream pkg/controller/statefulset).

The decisions are pure functions in `statefulset_plan` (what a sync does) and `statefulset_utils`
(identities, claims, retention, status); pod and claim writes with their events are in
`statefulset_pods`; this module is the shell: informers, ControllerRevisions, status.

Contracts:

* Watches apps/v1 StatefulSets, core Pods, ControllerRevisions and PersistentVolumeClaims.  Pod
  events wake the set named by the pod's controller reference (kind and uid must match); orphans
  wake the sets in their namespace whose selector matches.  A pod turning Ready wakes its set
  again after minReadySeconds.  A claim changed or deleted wakes the set it names as owner (or
  whose pod it names), so a creation blocked by a claim awaiting garbage collection resumes.
* A sync (upstream sync + UpdateStatefulSet), for a set with a valid selector:
  1. adopt matching orphan ControllerRevisions and pods (pods only when their name is
     `<set>-<ordinal>`, upstream isMemberOf); release owned ones whose labels stopped matching;
  2. revisions: the update revision is the newest revision whose data is the set's template, a
     newer number given to an older equal one (a rollback), or a new revision named
     `<set>-<hash>` (on a name clash with other data `collisionCount` goes up and the hash is
     taken again); the current revision is the one `status.currentRevision` names, else the
     update revision;
  3. the plan of `statefulset_plan.plan_sync`, executed phase by phase: OrderedReady stops at the
     first failure, Parallel after the first phase with one (chains in slow-start batches);
  4. the status (written when it changed, even after a failure; a conflict re-reads once);
  5. old revisions beyond revisionHistoryLimit deleted, never one the current or update revision
     or a pod names; the first failure is raised for the work queue's back-off.
* Nothing but the status is touched while the set is being deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubelite.client.errors import TransportError
from kubelite.client.events import NORMAL, WARNING
from kubelite.client.interface import key_of
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.history import (
    CONTROLLER_REVISIONS,
    REVISION_OWNER_INDEX,
    by_revision,
    hash_revision_data,
    max_revision,
    new_revision,
    orphan_key,
    owner_uid_index,
    template_patch,
)
from kubelite.controllers.ownership import PODS, claim, controller_ref, slow_start_batch
from kubelite.controllers.podutil import is_ready, is_terminating
from kubelite.controllers.replicaset import POD_OWNER_INDEX, orphan_index_key, pod_owner_index
from kubelite.controllers.statefulset_plan import Action, Revisions, Step, SyncPlan, Why, plan_sync
from kubelite.controllers.statefulset_pods import StatefulPodControl
from kubelite.controllers.statefulset_utils import (
    API_VERSION,
    KIND,
    PERSISTENT_VOLUME_CLAIMS,
    STATEFULSETS,
    allows_burst,
    count_replicas,
    history_limit,
    is_member_of,
    live_revision_names,
    min_ready_seconds,
    next_status,
    parent_and_ordinal,
    replicas_of,
    revisions_to_delete,
    status_changed,
    with_template,
)
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, name_of, namespace_of
from kubelite.machinery.selectors import LabelSelector, SelectorError, label_selector_from_dict

log = logging.getLogger(__name__)

SLOW_START_INITIAL_BATCH = 1
_SyncError = (ApiError, TransportError)


def _selector_of(sts: dict[str, Any]) -> LabelSelector | None:
    try:
        return label_selector_from_dict((sts.get("spec") or {}).get("selector"))
    except SelectorError:
        return None


@dataclass
class _Revisions:
    current: dict[str, Any]
    update: dict[str, Any]
    collision_count: int


class StatefulSetController(Controller):
    """apps/v1 StatefulSets; see the module docstring."""

    name = "statefulset-controller"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.pod_control = StatefulPodControl(self.client, self.recorder)
        self.sets = self.informer(STATEFULSETS)
        self.pods = self.informer(PODS)
        self.revisions = self.informer(CONTROLLER_REVISIONS)
        self.claims = self.informer(PERSISTENT_VOLUME_CLAIMS)
        self.pods.add_index(POD_OWNER_INDEX, pod_owner_index)  # shared with the replica controllers
        self.revisions.add_index(REVISION_OWNER_INDEX, owner_uid_index)
        self.sets.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.pods.add_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        self.claims.add_handler(None, lambda old, new: self._on_claim(new), self._on_claim)

    # -- handlers: only enqueueing ---------------------------------------------------------------------

    def _resolve(self, namespace: str, ref: dict[str, Any] | None) -> dict[str, Any] | None:
        if ref is None or ref.get("kind") != KIND:
            return None
        found = self.sets.get(f"{namespace}/{ref.get('name')}")
        if found is None or (found.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return found

    def _enqueue_selecting(self, pod: dict[str, Any]) -> None:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        for sts in self.sets.by_index("namespace", namespace_of(pod)):
            selector = _selector_of(sts)
            if selector is not None and not selector.empty and selector.matches(labels):
                self.enqueue(sts)

    def _on_pod_add(self, pod: dict[str, Any]) -> None:
        ref = controller_ref(pod)
        if ref is None:
            if not is_terminating(pod):
                self._enqueue_selecting(pod)
            return
        owner = self._resolve(namespace_of(pod), ref)
        if owner is not None:
            self.enqueue(owner)

    def _on_pod_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
        if old_meta.get("resourceVersion") == new_meta.get("resourceVersion"):
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
            self.queue.add_after(key_of(owner), wait)

    def _on_pod_delete(self, pod: dict[str, Any]) -> None:
        owner = self._resolve(namespace_of(pod), controller_ref(pod))
        if owner is not None:
            self.enqueue(owner)

    def _on_claim(self, pvc: dict[str, Any]) -> None:
        namespace = namespace_of(pvc)
        for ref in (pvc.get("metadata") or {}).get("ownerReferences") or ():
            if ref.get("kind") == KIND:
                name = str(ref.get("name") or "")
            elif ref.get("kind") == "Pod":
                name = parent_and_ordinal({"metadata": {"name": ref.get("name")}})[0]
            else:
                continue
            if name and self.sets.get(f"{namespace}/{name}") is not None:
                self.enqueue_key(f"{namespace}/{name}")

    # -- the sync --------------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        sts = self.sets.get(key)
        if sts is None:
            return
        selector = _selector_of(sts)
        if selector is None:
            log.warning("invalid pod selector; not syncing", extra={"key": key})
            return  # a permanent error: retrying cannot help
        revisions = by_revision(await self._claim_revisions(sts, selector))
        pods = await self._claim_pods(sts, selector)
        chosen = await self._choose_revisions(sts, [dict(r) for r in revisions])
        plan_input = Revisions(
            current_set=with_template(sts, chosen.current),
            update_set=with_template(sts, chosen.update),
            current=name_of(chosen.current),
            update=name_of(chosen.update),
        )
        claims = {name_of(c): c for c in self.claims.by_index("namespace", namespace_of(sts))}
        now = self.clock.utcnow()
        plan = plan_sync(sts, pods, plan_input, claims=claims, now=now)
        failure: BaseException | None = None
        done = _Done()
        try:
            await self._execute(sts, plan, plan_input, claims, done)
        except _SyncError as exc:
            failure = exc
        counted = [p for p in pods if name_of(p) not in done.recreated]
        counts = count_replicas(
            counted,
            min_ready=min_ready_seconds(sts),
            now=now,
            current_revision=plan_input.current,
            update_revision=plan_input.update,
        )
        counts.current = max(0, counts.current - done.rolled)
        status = next_status(
            sts,
            counts,
            current_revision=plan_input.current,
            update_revision=plan_input.update,
            collision_count=chosen.collision_count,
        )
        try:
            await self._write_status(sts, status)
        except _SyncError as exc:
            failure = failure or exc
        try:
            await self._truncate_history(sts, pods, revisions, status, plan_input)
        except _SyncError as exc:
            failure = failure or exc
        if failure is not None:
            raise failure
        wait = min_ready_seconds(sts)
        if wait > 0 and counts.available != replicas_of(sts):
            self.queue.add_after(key, wait)

    async def _fresh(self, sts: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return await self.client.get(STATEFULSETS, name_of(sts), namespace_of(sts))
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def _claim_pods(self, sts: dict[str, Any], selector: LabelSelector) -> list[dict[str, Any]]:
        uid = str((sts.get("metadata") or {}).get("uid") or "")
        owned = self.pods.by_index(POD_OWNER_INDEX, uid) if uid else []
        orphans = [
            p for p in self.pods.by_index(POD_OWNER_INDEX, orphan_index_key(namespace_of(sts))) if is_member_of(sts, p)
        ]
        return await claim(
            self.client,
            PODS,
            sts,
            selector,
            [*owned, *orphans],
            owner_api_version=API_VERSION,
            owner_kind=KIND,
            fresh_owner=lambda: self._fresh(sts),
        )

    async def _claim_revisions(self, sts: dict[str, Any], selector: LabelSelector) -> list[dict[str, Any]]:
        uid = str((sts.get("metadata") or {}).get("uid") or "")
        candidates = [
            *self.revisions.by_index(REVISION_OWNER_INDEX, uid),
            *self.revisions.by_index(REVISION_OWNER_INDEX, orphan_key(namespace_of(sts))),
        ]
        return await claim(
            self.client,
            CONTROLLER_REVISIONS,
            sts,
            selector,
            candidates,
            owner_api_version=API_VERSION,
            owner_kind=KIND,
            fresh_owner=lambda: self._fresh(sts),
        )

    # -- revisions -------------------------------------------------------------------------------------

    async def _choose_revisions(self, sts: dict[str, Any], revisions: list[dict[str, Any]]) -> _Revisions:
        """Upstream getStatefulSetRevisions; `revisions` sorted oldest first."""
        status = sts.get("status") or {}
        collision_count = int(status.get("collisionCount") or 0)
        data = template_patch((sts.get("spec") or {}).get("template") or {})
        next_number = max_revision(revisions) + 1
        equal = [r for r in revisions if r.get("data") == data]
        if equal and equal[-1] is revisions[-1]:
            update = revisions[-1]
        elif equal:
            body = deep_copy(equal[-1])
            body["revision"] = next_number
            update = await self.client.update(CONTROLLER_REVISIONS, body, namespace_of(sts))
        else:
            update, collision_count = await self._create_revision(sts, data, next_number, collision_count)
        wanted = status.get("currentRevision")
        current = next((r for r in revisions if name_of(r) == wanted), update)
        return _Revisions(current=current, update=update, collision_count=collision_count)

    async def _create_revision(
        self, sts: dict[str, Any], data: dict[str, Any], number: int, collision_count: int
    ) -> tuple[dict[str, Any], int]:
        """Create the revision; a name taken by other data raises the collision count and hashes
        again (upstream CreateControllerRevision).  Returns (the revision, the collision count)."""
        template = (sts.get("spec") or {}).get("template") or {}
        namespace = namespace_of(sts)
        while True:
            revision = new_revision(
                sts,
                api_version=API_VERSION,
                kind=KIND,
                data=data,
                revision=number,
                hash_value=hash_revision_data(data, collision_count),
                labels=(template.get("metadata") or {}).get("labels"),
            )
            try:
                return await self.client.create(CONTROLLER_REVISIONS, revision, namespace), collision_count
            except ApiError as exc:
                if exc.code != 409 or exc.reason != "AlreadyExists":
                    raise
            existing = await self.client.get(CONTROLLER_REVISIONS, name_of(revision), namespace)
            if existing.get("data") == data:
                return existing, collision_count
            collision_count += 1
            log.info(
                "hash collision; bumping collisionCount",
                extra={"statefulset": key_of(sts), "collisionCount": collision_count},
            )

    async def _truncate_history(
        self,
        sts: dict[str, Any],
        pods: Sequence[dict[str, Any]],
        revisions: Sequence[Any],
        status: dict[str, Any],
        plan_input: Revisions,
    ) -> None:
        live = live_revision_names(pods, plan_input.current, plan_input.update)
        for revision in revisions_to_delete(revisions, live, history_limit(sts)):
            try:
                await self.client.delete(CONTROLLER_REVISIONS, name_of(dict(revision)), namespace_of(sts))
            except ApiError as exc:
                if exc.code != 404:
                    raise

    # -- executing the plan ----------------------------------------------------------------------------

    async def _execute(
        self, sts: dict[str, Any], plan: SyncPlan, plan_input: Revisions, claims: dict[str, Any], done: _Done
    ) -> None:
        for phase in plan.phases:
            if allows_burst(sts):
                await self._run_parallel(sts, phase, plan_input, claims, done)
                continue
            for chain in phase:
                await self._run_chain(sts, chain, plan_input, claims, done)

    async def _run_parallel(
        self,
        sts: dict[str, Any],
        phase: Sequence[Sequence[Step]],
        plan_input: Revisions,
        claims: dict[str, Any],
        done: _Done,
    ) -> None:
        """The chains of one phase in slow-start batches; the first failure is raised after its batch."""
        chains = iter(phase)
        failures: list[BaseException] = []

        async def run_next() -> None:
            try:
                await self._run_chain(sts, next(chains), plan_input, claims, done)
            except _SyncError as exc:
                failures.append(exc)
                raise

        await slow_start_batch(len(phase), SLOW_START_INITIAL_BATCH, run_next)
        if failures:
            raise failures[0]

    async def _run_chain(
        self, sts: dict[str, Any], chain: Sequence[Step], plan_input: Revisions, claims: dict[str, Any], done: _Done
    ) -> None:
        for step in chain:
            pod = dict(step.pod)
            if step.action is Action.CREATE:
                await self.pod_control.create(sts, pod, claims)
            elif step.action is Action.DELETE:
                if step.why in (Why.RECREATE_FAILED, Why.RECREATE_TERMINATED):
                    what = "failed" if step.why is Why.RECREATE_FAILED else "terminated"
                    message = f"StatefulSet {namespace_of(sts)}/{name_of(sts)} is recreating {what} Pod {step.name}"
                    event_type = WARNING if step.why is Why.RECREATE_FAILED else NORMAL
                    self.recorder.event(sts, event_type, step.why.value, message)
                await self.pod_control.delete(sts, pod)
                if step.why in (Why.RECREATE_FAILED, Why.RECREATE_TERMINATED):
                    done.recreated.add(step.name)
                elif step.why is Why.UPDATE:
                    done.rolled += 1
            elif step.action is Action.CREATE_CLAIMS:
                await self.pod_control.create_claims(sts, pod, claims)
            elif step.action is Action.UPDATE:
                await self.pod_control.update(plan_input.update_set, pod, claims)
            elif step.action is Action.FIX_CLAIMS:
                await self.pod_control.fix_claim_refs(plan_input.update_set, pod, claims)

    # -- status ----------------------------------------------------------------------------------------

    async def _write_status(self, sts: dict[str, Any], status: dict[str, Any]) -> None:
        """PUT the status if it changed; after a conflict once more onto a fresh read."""
        if not status_changed(sts, status):
            return
        body = deep_copy(sts)
        body["status"] = status
        try:
            await self.client.update(STATEFULSETS, body, namespace_of(sts), subresource="status")
            return
        except ApiError as exc:
            if exc.code == 404:
                return
            if exc.code != 409:
                raise
        fresh = await self._fresh(sts)
        if fresh is None or (fresh.get("metadata") or {}).get("uid") != (sts.get("metadata") or {}).get("uid"):
            return
        fresh["status"] = status
        try:
            await self.client.update(STATEFULSETS, fresh, namespace_of(sts), subresource="status")
        except ApiError as exc:
            if exc.code != 404:
                raise


@dataclass
class _Done:
    """What a sync's execution did that the status counts depend on."""

    rolled: int = 0
    recreated: set[str] = field(default_factory=set)


__all__ = ["STATEFULSETS", "StatefulSetController"]
