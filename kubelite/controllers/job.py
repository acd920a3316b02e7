"""The Job controller: runs a Job's pods to completion and keeps its status (upstream's
pkg/controller/job).  The decisions live in `job_status`, `job_pods` and `job_policy`; this module
is the shell that reads the caches, calls the API and records events.

Contracts:

* Keys are Job keys (`ns/name`) and, for pods whose tracking finalizer must go because their Job
  is gone, finished, or no longer owns them, `pod:ns/name`.  Pod events sync their Job after
  `sync_batch_seconds` (1 s, as upstream, so that a burst of pod updates costs one sync); Job
  creation, deletion and spec changes sync at once.
* Every pod carries the `batch.kubernetes.io/job-tracking` finalizer until its outcome is in
  `status.succeeded`/`status.failed` (see `job_status` for the two-phase counting that survives a
  restart at any point).  Status writes are compare-and-swap on the cached resourceVersion, so a
  sync working from a stale cache fails with 409 and is retried instead of double counting.
* Creations and deletions are recorded in `Expectations`; pods are only created or deleted for a
  key once the informer has shown the previous ones.  Finalizer removals in flight are tracked per
  pod uid so a lagging cache does not count a pod twice.
* Failure back-off (10 s doubling, capped) is in memory per Job, as upstream; creation waits with
  `queue.add_after`, never by sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubelite.client.events import NORMAL, WARNING
from kubelite.client.indexer import NAMESPACE_INDEX
from kubelite.client.interface import builtin, key_of
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.expectations import Expectations
from kubelite.controllers.job_pods import (
    JOB_API_VERSION,
    JOB_KIND,
    JOB_TRACKING_FINALIZER,
    PodPlan,
    has_tracking_finalizer,
    is_indexed,
    new_pod,
    plan_pods,
    uid_of,
)
from kubelite.controllers.job_policy import BackoffRecord, deadline_left, is_finished, managed_by_other
from kubelite.controllers.job_status import (
    JobSync,
    Tracking,
    assess_finish,
    enact_finished,
    finished_events,
    is_complete,
    normalize_status,
    observe,
    settle_uncounted,
    success_condition,
    track_finished_pods,
    update_suspended_condition,
)
from kubelite.controllers.ownership import PODS, PodControl, claim, controller_ref, is_controlled_by, slow_start_batch
from kubelite.controllers.podutil import is_ready, is_terminating
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, name_of, namespace_of
from kubelite.machinery.selectors import SelectorError, label_selector_from_dict

log = logging.getLogger(__name__)

JOBS = builtin("batch", "jobs")
SYNC_JOB_BATCH_PERIOD = 1.0  # seconds; upstream's syncJobBatchPeriod
SLOW_START_INITIAL_BATCH_SIZE = 1
ORPHAN_POD_PREFIX = "pod:"
REMOVE_FINALIZER_PATCH = {"metadata": {"$deleteFromPrimitiveList/finalizers": [JOB_TRACKING_FINALIZER]}}


class FinalizerExpectations:
    """Per Job key, the pod uids whose finalizer removal was sent and not yet seen in the cache."""

    def __init__(self) -> None:
        self._by_key: dict[str, set[str]] = {}

    def expect_removed(self, key: str, uids: set[str]) -> None:
        self._by_key.setdefault(key, set()).update(uids)

    def removal_observed(self, key: str, uid: str) -> None:
        found = self._by_key.get(key)
        if found is not None:
            found.discard(uid)
            if not found:
                del self._by_key[key]

    def expected(self, key: str) -> frozenset[str]:
        return frozenset(self._by_key.get(key, ()))

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)


def _namespace_terminating(exc: ApiError) -> bool:
    return any(c.reason == "NamespaceTerminating" for c in exc.causes) or "because it is being terminated" in (
        exc.message or ""
    )


class JobController(Controller):
    """Watches batch/v1 Jobs and pods; see the module docstring."""

    name = "job-controller"

    def __init__(self, context: ControllerContext, *, sync_batch_seconds: float = SYNC_JOB_BATCH_PERIOD) -> None:
        super().__init__(context)
        self.sync_batch_seconds = sync_batch_seconds
        self.expectations = Expectations(context.clock)
        self.finalizer_expectations = FinalizerExpectations()
        self.pod_control = PodControl(context.client, context.recorder)
        self._backoff: dict[str, BackoffRecord] = {}
        self._superseded: dict[str, set[str]] = {}  # Job key -> resourceVersions our status writes replaced
        self.jobs = self.informer(JOBS)
        self.pods = self.informer(PODS)
        self.jobs.add_handler(self._job_added, self._job_updated, self._job_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, lambda pod: self._pod_deleted(pod, final=True))

    # -- event handlers: they only enqueue keys and note what they observed --------------------------

    def _enqueue_batched(self, job: dict[str, Any], delay: float | None = None) -> None:
        self.queue.add_after(key_of(job), max(delay or 0.0, self.sync_batch_seconds))

    def _enqueue_orphan(self, pod: dict[str, Any]) -> None:
        self.queue.add(ORPHAN_POD_PREFIX + key_of(pod))

    def _job_for(self, namespace: str, ref: dict[str, Any] | None) -> dict[str, Any] | None:
        """The cached Job a controller reference points to (same name and uid), else None."""
        if ref is None or ref.get("kind") != JOB_KIND:
            return None
        job = self.jobs.get(f"{namespace}/{ref.get('name')}")
        return job if job is not None and uid_of(job) == ref.get("uid") else None

    def _jobs_selecting(self, pod: dict[str, Any]) -> list[dict[str, Any]]:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        found = []
        for job in self.jobs.by_index(NAMESPACE_INDEX, namespace_of(pod)):
            try:
                selector = label_selector_from_dict((job.get("spec") or {}).get("selector"))
            except SelectorError:
                continue
            if selector.matches(labels):
                found.append(job)
        return found

    def _pod_added(self, pod: dict[str, Any]) -> None:
        if is_terminating(pod):
            # a restarted controller meets pods already being deleted: not a creation it waits for
            self._pod_deleted(pod, final=False)
            return
        ref = controller_ref(pod)
        if ref is not None:
            job = self._job_for(namespace_of(pod), ref)
            if job is not None:
                self.expectations.creation_observed(key_of(job))
                self._enqueue_batched(job)
            return
        if has_tracking_finalizer(pod):
            self._enqueue_orphan(pod)
        for job in self._jobs_selecting(pod):
            self._enqueue_batched(job)

    def _pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if (old.get("metadata") or {}).get("resourceVersion") == (new.get("metadata") or {}).get("resourceVersion"):
            return
        if is_terminating(new):
            self._pod_deleted(new, final=False)
            return
        finalizer_gone = not has_tracking_finalizer(new)
        ref, old_ref = controller_ref(new), controller_ref(old)
        if ref != old_ref and old_ref is not None:
            previous = self._job_for(namespace_of(old), old_ref)
            if previous is not None:
                if finalizer_gone:
                    self.finalizer_expectations.removal_observed(key_of(previous), uid_of(new))
                self._enqueue_batched(previous)
        if ref is not None:
            job = self._job_for(namespace_of(new), ref)
            if job is not None:
                if finalizer_gone:
                    self.finalizer_expectations.removal_observed(key_of(job), uid_of(new))
                self._enqueue_batched(job)
            return
        if has_tracking_finalizer(new):
            self._enqueue_orphan(new)
        labels_changed = (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels")
        if labels_changed or ref != old_ref:
            for job in self._jobs_selecting(new):
                self._enqueue_batched(job)

    def _pod_deleted(self, pod: dict[str, Any], *, final: bool) -> None:
        """A pod went away (`final`) or got its deletionTimestamp."""
        has_finalizer = has_tracking_finalizer(pod)
        job = self._job_for(namespace_of(pod), controller_ref(pod))
        if job is None or is_finished(job):
            if has_finalizer:
                self._enqueue_orphan(pod)  # no sync of a live Job will remove this finalizer
            return
        key = key_of(job)
        self.expectations.deletion_observed(key, key_of(pod))
        if final or not has_finalizer:
            self.finalizer_expectations.removal_observed(key, uid_of(pod))
        self._enqueue_batched(job)

    def _job_added(self, job: dict[str, Any]) -> None:
        self.enqueue(job)

    def _job_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if (old.get("metadata") or {}).get("generation") == (new.get("metadata") or {}).get("generation"):
            self._enqueue_batched(new)  # a status write, usually our own: batch it with pod events
        else:
            self.enqueue(new)
        if is_finished(new):
            self._release_pod_finalizers(new)
        deadline = (new.get("spec") or {}).get("activeDeadlineSeconds")
        if deadline is not None and deadline != (old.get("spec") or {}).get("activeDeadlineSeconds"):
            left = deadline_left(new, self.clock.utcnow())
            if left is not None:
                self.queue.add_after(key_of(new), left)

    def _job_deleted(self, job: dict[str, Any]) -> None:
        self.enqueue(job)
        self._release_pod_finalizers(job)

    def _release_pod_finalizers(self, job: dict[str, Any]) -> None:
        """Queue the Job's pods that still hold the tracking finalizer for its removal."""
        try:
            selector = label_selector_from_dict((job.get("spec") or {}).get("selector"))
        except SelectorError:
            return
        for pod in self.pods.by_index(NAMESPACE_INDEX, namespace_of(job)):
            labels = (pod.get("metadata") or {}).get("labels") or {}
            if has_tracking_finalizer(pod) and selector.matches(labels) and is_controlled_by(pod, job):
                self._enqueue_orphan(pod)

    # -- reconcile -----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        if key.startswith(ORPHAN_POD_PREFIX):
            await self._sync_orphan_pod(key.removeprefix(ORPHAN_POD_PREFIX))
        else:
            await self._sync_job(key)

    async def _sync_orphan_pod(self, key: str) -> None:
        """Remove the tracking finalizer of a pod no live Job will count."""
        pod = self.pods.get(key)
        if pod is None or not has_tracking_finalizer(pod):
            return
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != JOB_KIND or ref.get("apiVersion") != JOB_API_VERSION:
                return  # someone else's pod: not our finalizer to remove
            job = self._job_for(namespace_of(pod), ref)
            if job is not None and (managed_by_other(job) is not None or not is_finished(job)):
                return  # a live Job (or its external manager) counts it
        await self._remove_finalizer(pod)

    async def _remove_finalizer(self, pod: dict[str, Any]) -> None:
        try:
            await self.client.patch(
                PODS, name_of(pod), REMOVE_FINALIZER_PATCH, namespace_of(pod), patch_type="strategic"
            )
        except ApiError as exc:
            if exc.code != 404:
                raise

    def _job_to_sync(self, key: str) -> dict[str, Any] | None:
        """The cached Job under `key` when there is work for this controller, else None."""
        cached = self.jobs.get(key)
        if cached is None:
            self.expectations.forget(key)
            self.finalizer_expectations.forget(key)
            self._backoff.pop(key, None)
            self._superseded.pop(key, None)
            return None
        if (cached.get("metadata") or {}).get("resourceVersion") in self._superseded.get(key, ()):
            return None  # the cache still shows what our own status write replaced; its event brings us back
        self._superseded.pop(key, None)
        if managed_by_other(cached) is not None:
            return None
        if is_finished(cached):
            self._backoff.pop(key, None)
            return None
        if (cached.get("spec") or {}).get("completionMode") not in (None, "NonIndexed", "Indexed"):
            message = "Skipped Job sync because completion mode is unknown"
            self.recorder.event(cached, WARNING, "UnknownCompletionMode", message)
            return None
        return cached

    async def _sync_job(self, key: str) -> None:
        """Upstream's syncJob: count, decide, create or delete pods, then write the status."""
        cached = self._job_to_sync(key)
        if cached is None:
            return
        job = deep_copy(cached)
        # expectations first: a pod created after this read is seen by the next sync, not lost
        satisfied = self.expectations.satisfied(key)
        pods = await self._pods_for_job(job)
        sync = observe(
            job,
            pods,
            now=self.clock.utcnow(),
            backoff=self._backoff.get(key, BackoffRecord()),
            expected_removed=self.finalizer_expectations.expected(key),
        )
        look_again = assess_finish(sync)
        if look_again is not None:
            self.queue.add_after(key, look_again)
        active, condition_event, error = await self._act(key, sync, satisfied)
        status = sync.status
        needs_update = (
            condition_event is not None
            or active != int(status.get("active") or 0)
            or sync.ready != status.get("ready")
            or sync.terminating != status.get("terminating")
        )
        status["active"], status["ready"], status["terminating"] = active, sync.ready, sync.terminating
        await self._track(key, sync, needs_update)
        if condition_event is not None:  # written: a sync retried after a conflict does not repeat it
            self.recorder.event(sync.job, NORMAL, *condition_event)
        if error is not None:
            raise error

    async def _act(
        self, key: str, sync: JobSync, satisfied: bool
    ) -> tuple[int, tuple[str, str] | None, BaseException | None]:
        """Delete the pods of a finishing Job, or manage the pods of a running one and see whether
        it completed.  Returns the active count, a Suspended/Resumed event to record and an error."""
        active = len(sync.active)
        if sync.finished is not None:
            ready_deleted, deleted, error = await self._delete_active_pods(sync.job, sync.active)
            if deleted != active or not satisfied:
                sync.finished = None  # pods may still be unseen, or finalizers left: not finished yet
            sync.terminating += deleted
            sync.ready -= ready_deleted
            return active - deleted, None, error
        managed, error = False, None
        if satisfied and not (sync.job.get("metadata") or {}).get("deletionTimestamp"):
            active, error = await self._manage(key, sync)
            managed = True
        if is_complete(sync.job, sync.succeeded, active):
            sync.finished = success_condition(sync.now)
            return active, None, error
        # conditions change only in a sync that managed the pods, as upstream
        return active, update_suspended_condition(sync) if managed else None, error

    async def _pods_for_job(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """The pods the Job controls after adopting matching orphans (which get the tracking
        finalizer) and releasing pods it controls that no longer match."""
        selector = label_selector_from_dict((job.get("spec") or {}).get("selector"))
        candidates = self.pods.by_index(NAMESPACE_INDEX, namespace_of(job))

        async def fresh() -> dict[str, Any] | None:
            try:
                return await self.client.get(JOBS, name_of(job), namespace_of(job))
            except ApiError as exc:
                if exc.code == 404:
                    return None
                raise

        return await claim(
            self.client, PODS, job, selector, candidates,
            owner_api_version=JOB_API_VERSION, owner_kind=JOB_KIND, fresh_owner=fresh,
            finalizers=[JOB_TRACKING_FINALIZER],
        )  # fmt: skip

    # -- creating and deleting pods ------------------------------------------------------------------

    async def _manage(self, key: str, sync: JobSync) -> tuple[int, BaseException | None]:
        """Act on `plan_pods`; returns the active count afterwards and the first error."""
        plan = plan_pods(sync)
        active = len(sync.active)
        if plan.delete:
            self.expectations.expect(key, deletes={key_of(p) for p in plan.delete})
            ready_removed, removed, error = await self._delete_job_pods(key, sync.job, list(plan.delete))
            sync.terminating += removed
            sync.ready -= ready_removed
            return active - removed, error
        if plan.wait > 0:
            self._enqueue_batched(sync.job, plan.wait)
            return active, None
        if plan.create <= 0:
            return active, None
        created, error = await self._create_pods(key, sync.job, plan)
        return active + created, error

    async def _create_pods(self, key: str, job: dict[str, Any], plan: PodPlan) -> tuple[int, BaseException | None]:
        self.expectations.expect(key, adds=plan.create)
        indexes = list(plan.indexes) if is_indexed(job) else []
        errors: list[ApiError] = []

        async def create_one() -> None:
            index = indexes.pop(0) if indexes else None
            counts = plan.failure_counts.get(index) if index is not None else None
            try:
                await self.pod_control.create(new_pod(job, index, failure_counts=counts), job)
            except ApiError as exc:
                if not _namespace_terminating(exc):  # nothing more can be created there anyway
                    errors.append(exc)
                raise

        created = await slow_start_batch(plan.create, SLOW_START_INITIAL_BATCH_SIZE, create_one)
        # failed and skipped creations will never be observed
        self.expectations.creation_failed(key, plan.create - created)
        return created, errors[0] if errors else None

    async def _delete_job_pods(
        self, key: str, job: dict[str, Any], pods: list[dict[str, Any]]
    ) -> tuple[int, int, BaseException | None]:
        """Delete pods the Job no longer wants (too many, or suspended): their finalizer first, so
        they are not counted as failures.  Returns (ready deleted, deleted, first error)."""

        async def delete(pod: dict[str, Any]) -> bool:
            try:
                if has_tracking_finalizer(pod):
                    await self._remove_finalizer(pod)
                await self.pod_control.delete(pod, job)
            except ApiError:
                self.expectations.deletion_observed(key, key_of(pod))  # never coming
                raise
            return is_ready(pod)

        return _tally(await asyncio.gather(*(delete(p) for p in pods), return_exceptions=True))

    async def _delete_active_pods(
        self, job: dict[str, Any], pods: list[dict[str, Any]]
    ) -> tuple[int, int, BaseException | None]:
        """Delete the pods of a Job that is finishing, keeping their finalizers (they are counted
        and released by `_track`)."""

        async def delete(pod: dict[str, Any]) -> bool:
            await self.pod_control.delete(pod, job)
            return is_ready(pod)

        return _tally(await asyncio.gather(*(delete(p) for p in pods), return_exceptions=True))

    # -- counting ------------------------------------------------------------------------------------

    async def _track(self, key: str, sync: JobSync, needs_update: bool) -> None:
        """Write newly finished pods into status before removing their finalizers, then count
        them, then — when nothing is left in flight — the terminal condition (see job_status)."""
        tracking = track_finished_pods(sync, needs_update)
        needs_flush = tracking.needs_flush
        if needs_flush:
            await self._write_status(sync)
            self._backoff[key] = sync.backoff
            needs_flush = False
        removal_error: BaseException | None = None
        if tracking.remove_finalizer:
            removal_error = await self._remove_finalizers(key, tracking)
        if settle_uncounted(sync.status, tracking.uids_with_finalizer):
            needs_flush = True
        if removal_error is not None:
            if needs_flush:
                await self._write_status(sync)
            raise removal_error
        finished = not tracking.reached_max_uncounted and enact_finished(sync)
        if finished or needs_flush:
            await self._write_status(sync)
        if finished and sync.finished is not None:
            for event_type, reason, message in finished_events(sync.job, sync.finished):
                self.recorder.event(sync.job, event_type, reason, message)

    async def _remove_finalizers(self, key: str, tracking: Tracking) -> BaseException | None:
        pods = tracking.remove_finalizer
        self.finalizer_expectations.expect_removed(key, {uid_of(p) for p in pods})

        async def remove(pod: dict[str, Any]) -> None:
            try:
                await self._remove_finalizer(pod)
            except BaseException:
                self.finalizer_expectations.removal_observed(key, uid_of(pod))  # not coming
                raise

        results = await asyncio.gather(*(remove(p) for p in pods), return_exceptions=True)
        first: BaseException | None = None
        for pod, result in zip(pods, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                first = first or result
            else:
                tracking.uids_with_finalizer.discard(uid_of(pod))
        return first

    async def _write_status(self, sync: JobSync) -> None:
        """PUT the status, compare-and-swap on the resourceVersion the sync started from (409 when
        the cache was stale: the sync is retried)."""
        normalize_status(sync.status)
        meta = sync.job.setdefault("metadata", {})
        replaced = meta.get("resourceVersion")
        written = await self.client.update(JOBS, sync.job, namespace_of(sync.job), subresource="status")
        # keep working on what we sent, under the new resourceVersion
        meta["resourceVersion"] = (written.get("metadata") or {}).get("resourceVersion")
        if replaced is not None and meta["resourceVersion"] != replaced:
            self._superseded.setdefault(key_of(sync.job), set()).add(str(replaced))


def _tally(results: list[Any]) -> tuple[int, int, BaseException | None]:
    """(ready, succeeded, first error) from gathered per-pod results (a bool: was it ready)."""
    ready = done = 0
    first: BaseException | None = None
    for result in results:
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            first = first or result
            continue
        done += 1
        ready += 1 if result else 0
    return ready, done, first


__all__ = ["JOBS", "ORPHAN_POD_PREFIX", "SYNC_JOB_BATCH_PERIOD", "FinalizerExpectations", "JobController"]
