"""One sync of one Deployment: read the caches, ask the pure planners, write the results.

Contracts:

* Starts from a copy of the cached Deployment and keeps it current: every write to it (the
  revision annotation through the main resource, the status through `status`) carries the
  resourceVersion it was read at, so a Deployment changed meanwhile fails the write with 409 and
  the whole sync runs again from the new state; a write's answer becomes the working copy.
* ReplicaSets are claimed (adopted or released by selector) before anything is decided, and every
  ReplicaSet written is remembered, so later steps of the same sync see their own writes even
  though the informer has not yet.
* Writes happen in upstream's order and stop at the first failure (the work queue retries the
  key with back-off); each is idempotent, so a retry after a partial sync converges.
* No ReplicaSet is created for a Deployment being deleted: only its status is kept up to date.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kubelite.client.events import NORMAL, WARNING
from kubelite.client.interface import builtin
from kubelite.controllers.deployment.annotations import (
    replicas_annotations_need_update,
    set_new_replica_set_annotations,
    set_replicas_annotations,
)
from kubelite.controllers.deployment.progress import (
    FAILED_RS_CREATE,
    FOUND_NEW_RS,
    NEW_RS_CREATED,
    PROGRESSING,
    calculate_status,
    deployment_complete,
    get_condition,
    new_condition,
    paused_status,
    requeue_after,
    rollout_status,
    set_condition,
)
from kubelite.controllers.deployment.recreate import old_pods_running, plan_scale_down_old
from kubelite.controllers.deployment.rolling import plan_new_replica_set, plan_old_replica_sets
from kubelite.controllers.deployment.sync import (
    ScaleStep,
    is_scaling_event,
    new_replica_set,
    plan_history_cleanup,
    plan_scale,
)
from kubelite.controllers.deployment.util import (
    RECREATE,
    REVISION_ANNOTATION,
    ROLLBACK_TO_ANNOTATION,
    ROLLING_UPDATE,
    active,
    annotations_of,
    equal_ignore_hash,
    find_new_replica_set,
    find_old_replica_sets,
    generation,
    has_progress_deadline,
    is_paused,
    max_revision,
    max_surge,
    min_ready_seconds,
    replicas,
    strategy_type,
    template_of,
    uid_of,
)
from kubelite.controllers.ownership import claim, controller_ref, is_controlled_by
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, name_of, namespace_of
from kubelite.machinery.selectors import LabelSelector, SelectorError, label_selector_from_dict

if TYPE_CHECKING:
    from kubelite.controllers.deployment.controller import DeploymentController

log = logging.getLogger(__name__)

DEPLOYMENTS = builtin("apps", "deployments")
REPLICA_SETS = builtin("apps", "replicasets")

SELECTING_ALL = "SelectingAll"
SELECTING_ALL_MESSAGE = "This deployment is selecting all pods. A non-empty selector is required."
SCALING_REPLICA_SET = "ScalingReplicaSet"


class DeploymentSync:
    """The state of one reconcile of the Deployment at `key` (see the module docstring)."""

    def __init__(self, controller: DeploymentController, key: str, deployment: dict[str, Any]) -> None:
        self.controller = controller
        self.client = controller.client
        self.recorder = controller.recorder
        self.clock = controller.clock
        self.key = key
        self.d = deployment
        self.namespace = namespace_of(deployment)
        self.rss: list[dict[str, Any]] = []

    # -- the top: syncDeployment --------------------------------------------------------------------

    async def run(self) -> None:
        try:
            selector = label_selector_from_dict((self.d.get("spec") or {}).get("selector"))
        except SelectorError as exc:
            log.warning("deployment has an invalid selector", extra={"deployment": self.key, "error": str(exc)})
            return
        if selector.empty:
            await self._selecting_all()
            return
        self.rss = await self._claim_replica_sets(selector)
        if (self.d.get("metadata") or {}).get("deletionTimestamp"):
            await self.sync_status_only()
            return
        await self._check_paused_conditions()
        if is_paused(self.d):
            await self.sync()
            return
        new_rs, old_rss = await self.get_all_replica_sets(create=False)
        if is_scaling_event(self.d, [*old_rss, new_rs]):
            await self.sync()
            return
        kind = strategy_type(self.d)
        if kind == RECREATE:
            await self.rollout_recreate(selector)
        elif kind == ROLLING_UPDATE:
            await self.rollout_rolling()
        else:
            raise ValueError(f"unexpected deployment strategy type: {kind}")

    async def _selecting_all(self) -> None:
        self.recorder.event(self.d, WARNING, SELECTING_ALL, SELECTING_ALL_MESSAGE)
        status = dict(self.d.get("status") or {})
        if int(status.get("observedGeneration") or 0) < generation(self.d):
            status["observedGeneration"] = generation(self.d)
            await self.write_status(status)

    async def _claim_replica_sets(self, selector: LabelSelector) -> list[dict[str, Any]]:
        async def fresh_owner() -> dict[str, Any] | None:
            try:
                return await self.client.get(DEPLOYMENTS, name_of(self.d), self.namespace)
            except ApiError as exc:
                if exc.code == 404:
                    return None
                raise

        candidates = self.controller.replica_sets.by_index("namespace", self.namespace)
        return await claim(
            self.client,
            REPLICA_SETS,
            self.d,
            selector,
            candidates,
            owner_api_version="apps/v1",
            owner_kind="Deployment",
            fresh_owner=fresh_owner,
        )

    # -- the strategies -----------------------------------------------------------------------------

    async def sync_status_only(self) -> None:
        new_rs, old_rss = await self.get_all_replica_sets(create=False)
        await self.write_status(calculate_status([*old_rss, new_rs], new_rs, self.d, now=self.clock.utcnow()))

    async def sync(self) -> None:
        """A resize or a paused Deployment: scale, prune history when paused, record the status."""
        new_rs, old_rss = await self.get_all_replica_sets(create=False)
        await self.apply(plan_scale(self.d, new_rs, old_rss))
        new_rs, old_rss = self.fresh_one(new_rs), self.fresh(old_rss)
        if is_paused(self.d) and ROLLBACK_TO_ANNOTATION not in annotations_of(self.d):
            await self.cleanup(old_rss)
            old_rss = self.fresh(old_rss)
        await self.write_status(calculate_status([*old_rss, new_rs], new_rs, self.d, now=self.clock.utcnow()))

    async def rollout_rolling(self) -> None:
        new_rs, old_rss = await self.get_all_replica_sets(create=True)
        assert new_rs is not None  # created above, or the creation raised
        all_rss = [*old_rss, new_rs]
        target = plan_new_replica_set(self.d, all_rss, new_rs)
        if target is not None:
            await self.scale(new_rs, target)
            await self.sync_rollout_status(new_rs, old_rss)
            return
        steps = plan_old_replica_sets(self.d, all_rss, active(old_rss), new_rs)
        if steps:
            await self.apply(steps)
            await self.sync_rollout_status(new_rs, old_rss)
            return
        if deployment_complete(self.d, self.d.get("status") or {}):
            await self.cleanup(old_rss)
        await self.sync_rollout_status(new_rs, old_rss)

    async def rollout_recreate(self, selector: LabelSelector) -> None:
        new_rs, old_rss = await self.get_all_replica_sets(create=False)
        if await self.apply(plan_scale_down_old(active(old_rss))):
            await self.sync_rollout_status(new_rs, old_rss)
            return
        if old_pods_running(new_rs, self.fresh(old_rss), self._pods_by_replica_set(selector)):
            await self.sync_rollout_status(new_rs, old_rss)
            return
        if new_rs is None:
            new_rs, old_rss = await self.get_all_replica_sets(create=True)
            assert new_rs is not None
        await self.scale(new_rs, replicas(self.d))
        if deployment_complete(self.d, self.d.get("status") or {}):
            await self.cleanup(old_rss)
        await self.sync_rollout_status(new_rs, old_rss)

    def _pods_by_replica_set(self, selector: LabelSelector) -> dict[str, list[dict[str, Any]]]:
        """The Deployment's pods by the uid of the ReplicaSet controlling them, finished or not."""
        by_uid: dict[str, list[dict[str, Any]]] = {uid_of(rs): [] for rs in self.rss}
        for pod in self.controller.pods.by_index("namespace", self.namespace):
            if not selector.matches((pod.get("metadata") or {}).get("labels")):
                continue
            ref = controller_ref(pod)
            if ref is not None and ref.get("uid") in by_uid:
                by_uid[ref["uid"]].append(pod)
        return by_uid

    # -- the new ReplicaSet and revisions: getAllReplicaSetsAndSyncRevision ---------------------------

    async def get_all_replica_sets(self, *, create: bool) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """(new ReplicaSet or None, every old one), with the new one's annotations, revision and
        minReadySeconds brought up to date and the Deployment's revision following it."""
        existing = find_new_replica_set(self.d, self.rss)
        _, old_rss = find_old_replica_sets(self.d, self.rss)
        new_revision = str(max_revision(old_rss) + 1)
        if existing is not None:
            return await self._sync_existing_new(existing, new_revision), old_rss
        if not create:
            return None, old_rss
        return await self._create_new(old_rss, new_revision), old_rss

    async def _sync_existing_new(self, existing: dict[str, Any], new_revision: str) -> dict[str, Any]:
        rs = deep_copy(existing)
        annotations_changed = set_new_replica_set_annotations(self.d, rs, new_revision, exists=True)
        if annotations_changed or min_ready_seconds(rs) != min_ready_seconds(self.d):
            _set_min_ready_seconds(rs, min_ready_seconds(self.d))
            return self.remember(await self.client.update(REPLICA_SETS, rs, self.namespace))
        await self.set_revision(str(annotations_of(rs).get(REVISION_ANNOTATION) or ""))
        if has_progress_deadline(self.d) and get_condition(self.d.get("status"), PROGRESSING) is None:
            status = deep_copy(dict(self.d.get("status") or {}))
            message = f'Found new replica set "{name_of(rs)}"'
            set_condition(status, new_condition(PROGRESSING, "True", FOUND_NEW_RS, message, self.clock.utcnow()))
            await self.write_status(status)
        return existing

    async def _create_new(self, old_rss: Sequence[dict[str, Any]], new_revision: str) -> dict[str, Any]:
        manifest = new_replica_set(self.d, old_rss, new_revision)
        name = name_of(manifest)
        count = replicas(manifest)
        already_there = False
        try:
            created = await self.client.create(REPLICA_SETS, manifest, self.namespace)
        except ApiError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                created = await self._existing_namesake(name, exc)
                already_there = True
            else:
                await self._creation_failed(name, exc)
                raise
        self.remember(created)
        if not already_there and count > 0:
            message = f"Scaled up replica set {name} from 0 to {count}"
            self.recorder.event(self.d, NORMAL, SCALING_REPLICA_SET, message)
        await self.set_revision(new_revision)
        if not already_there and has_progress_deadline(self.d):
            status = deep_copy(dict(self.d.get("status") or {}))
            message = f'Created new replica set "{name}"'
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_CREATED, message, self.clock.utcnow()))
            await self.write_status(status)
        return created

    async def _existing_namesake(self, name: str, exc: ApiError) -> dict[str, Any]:
        """The ReplicaSet that made our create fail with AlreadyExists: ours when this Deployment
        controls it and its template is ours (a lagging cache), else a hash collision — then
        `status.collisionCount` goes up (a different name next time) and the error stands."""
        found = self.controller.replica_sets.get(f"{self.namespace}/{name}")
        if found is None:
            try:
                found = await self.client.get(REPLICA_SETS, name, self.namespace)
            except ApiError as gone:
                if gone.code == 404:
                    raise exc from None
                raise
        if is_controlled_by(found, self.d) and equal_ignore_hash(template_of(self.d), template_of(found)):
            return found
        status = deep_copy(dict(self.d.get("status") or {}))
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        try:
            await self.write_status(status)
        except ApiError:
            pass  # the create's error is what gets retried
        else:
            log.info(
                "hash collision; bumping collisionCount",
                extra={"deployment": self.key, "replicaset": name, "collisionCount": status["collisionCount"]},
            )
        raise exc

    async def _creation_failed(self, name: str, exc: ApiError) -> None:
        message = f'Failed to create new replica set "{name}": {exc.message}'
        if has_progress_deadline(self.d):
            status = deep_copy(dict(self.d.get("status") or {}))
            set_condition(status, new_condition(PROGRESSING, "False", FAILED_RS_CREATE, message, self.clock.utcnow()))
            try:
                await self.write_status(status)
            except ApiError:
                pass  # the failed create is the bigger problem, and it is retried
        self.recorder.event(self.d, WARNING, FAILED_RS_CREATE, message)

    # -- writes -------------------------------------------------------------------------------------

    async def apply(self, steps: Sequence[ScaleStep]) -> bool:
        """Apply scale steps in order; True when some ReplicaSet changed size."""
        changed = False
        for step in steps:
            current = self._by_name(step.name)
            if current is None:
                continue
            before = replicas(current)
            updated = await self.scale(current, step.replicas, sync_annotations=step.sync_annotations)
            changed = changed or replicas(updated) != before
        return changed

    async def scale(self, rs: dict[str, Any], count: int, *, sync_annotations: bool = False) -> dict[str, Any]:
        """Set a ReplicaSet's size and its desired/max-replicas annotations; records a
        ScalingReplicaSet event when the size changes (scaleReplicaSet)."""
        rs = self.fresh_one(rs) or rs
        before = replicas(rs)
        if before == count and not sync_annotations:
            return rs
        desired = replicas(self.d)
        most = desired + max_surge(self.d)
        if before == count and not replicas_annotations_need_update(rs, desired, most):
            return rs
        changed = deep_copy(rs)
        changed.setdefault("spec", {})["replicas"] = count
        set_replicas_annotations(changed, desired, most)
        updated = self.remember(await self.client.update(REPLICA_SETS, changed, self.namespace))
        if before != count:
            direction = "up" if before < count else "down"
            message = f"Scaled {direction} replica set {name_of(updated)} from {before} to {count}"
            self.recorder.event(self.d, NORMAL, SCALING_REPLICA_SET, message)
        return updated

    async def cleanup(self, old_rss: Sequence[dict[str, Any]]) -> None:
        """Delete old ReplicaSets beyond the revision history limit (cleanupDeployment)."""
        for rs in plan_history_cleanup(self.d, self.fresh(old_rss)):
            try:
                await self.client.delete(REPLICA_SETS, name_of(rs), self.namespace)
            except ApiError as exc:
                if exc.code != 404:
                    raise
            self.rss = [kept for kept in self.rss if uid_of(kept) != uid_of(rs)]

    async def set_revision(self, revision: str) -> None:
        """The Deployment's revision annotation follows its new ReplicaSet's (SetDeploymentRevision);
        written through the main resource, since a status write keeps metadata as it was."""
        if annotations_of(self.d).get(REVISION_ANNOTATION) == revision:
            return
        meta = self.d.get("metadata") or {}
        body = {
            "metadata": {"annotations": {REVISION_ANNOTATION: revision}, "resourceVersion": meta.get("resourceVersion")}
        }
        self.d = await self.client.patch(DEPLOYMENTS, name_of(self.d), body, self.namespace, patch_type="merge")

    async def write_status(self, status: dict[str, Any]) -> bool:
        """Write `status` unless it says what the Deployment's status says already; True if written."""
        if _normalized(status) == _normalized(self.d.get("status")):
            return False
        body = deep_copy(self.d)
        body["status"] = status
        self.d = await self.client.update(DEPLOYMENTS, body, self.namespace, subresource="status")
        return True

    async def sync_rollout_status(self, new_rs: dict[str, Any] | None, old_rss: Sequence[dict[str, Any]]) -> None:
        """Record the rollout's status; when nothing changed, look again when the progress deadline
        would pass (requeueStuckDeployment)."""
        new_rs, old_rss = self.fresh_one(new_rs), self.fresh(old_rss)
        now = self.clock.utcnow()
        status = rollout_status([*old_rss, new_rs], new_rs, self.d, now=now)
        if await self.write_status(status):
            return
        after = requeue_after(self.d, status, now)
        if after == 0:
            self.controller.queue.add_rate_limited(self.key)
        elif after is not None:
            self.controller.queue.add_after(self.key, after)

    async def _check_paused_conditions(self) -> None:
        status = paused_status(self.d, self.clock.utcnow())
        if status is not None:
            await self.write_status(status)

    # -- this sync's view of the ReplicaSets --------------------------------------------------------

    def remember(self, rs: dict[str, Any]) -> dict[str, Any]:
        """Make `rs` (a write's answer) the version later steps of this sync see."""
        uid = uid_of(rs)
        self.rss = [kept for kept in self.rss if uid_of(kept) != uid] + [rs]
        return rs

    def fresh_one(self, rs: dict[str, Any] | None) -> dict[str, Any] | None:
        if rs is None:
            return None
        uid = uid_of(rs)
        for kept in self.rss:
            if uid_of(kept) == uid:
                return kept
        return rs

    def fresh(self, rss: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        uids = {uid_of(kept): kept for kept in self.rss}
        return [uids.get(uid_of(rs), rs) for rs in rss]

    def _by_name(self, name: str) -> dict[str, Any] | None:
        for rs in self.rss:
            if name_of(rs) == name:
                return rs
        return None


def _set_min_ready_seconds(rs: dict[str, Any], seconds: int) -> None:
    spec = rs.setdefault("spec", {})
    if seconds:
        spec["minReadySeconds"] = seconds
    else:
        spec.pop("minReadySeconds", None)


def _normalized(status: Any) -> dict[str, Any]:
    """A status without zero counts and empty lists: Go leaves those out, so {} and {"replicas": 0}
    say the same."""
    return {k: v for k, v in (status or {}).items() if v not in (None, 0, [], {})}


__all__ = [
    "DEPLOYMENTS",
    "REPLICA_SETS",
    "SCALING_REPLICA_SET",
    "SELECTING_ALL",
    "SELECTING_ALL_MESSAGE",
    "DeploymentSync",
]
