"""The decisions of one Job sync, as pure functions over a `JobSync` (upstream's syncJobCtx and the
counting half of job_controller.go).  The controller shell in `job.py` runs them in this order,
doing the I/O between the steps:

1. `observe` — the pods, what is active/ready/terminating, what finished and is not counted yet;
2. `assess_finish` — whether the Job has failed or met its success criteria (and when to look
   again for activeDeadlineSeconds);
3. `plan_pods` — how many pods to create (which indexes) or which to delete, or how long the
   failure back-off still holds creations;
4. `track_finished_pods` — which finished pods to count, recorded in
   `status.uncountedTerminatedPods` *before* their tracking finalizers are removed;
5. `settle_uncounted` — once finalizers are gone, move those uids into `succeeded`/`failed`;
6. `enact_finished` — the terminal `Complete`/`Failed` condition, only when nothing is left
   uncounted and no pod is still terminating.

Why the two-phase counting: a finished pod is counted exactly once even if the controller stops
between any two writes.  A uid is written to `uncountedTerminatedPods` first; only then is the
pod's finalizer removed; only when the finalizer is seen gone (or the pod is gone) is the uid
moved into the counters.  A pod without the finalizer is never counted again, a uid already in
the uncounted lists is never added twice.

Conditions as a 1.32 cluster shows them (JobManagedBy, JobPodReplacementPolicy, JobSuccessPolicy
and JobBackoffLimitPerIndex at their 1.32 defaults): a failure first adds `FailureTarget`, then
`Failed` with the same reason and message once no pod is terminating; success first adds
`SuccessCriteriaMet`, then `Complete`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubelite.controllers.job_pods import (
    Intervals,
    absolute_failure_count,
    completion_index,
    completions_of,
    has_backoff_limit_per_index,
    has_tracking_finalizer,
    index_failure_count,
    indexes_of,
    is_indexed,
    is_pod_failed,
    match_success_policy,
    terminating_pods,
    uid_of,
    valid_index,
)
from kubelite.controllers.job_policy import (
    BACKOFF_LIMIT_EXCEEDED,
    COMPLETE,
    COMPLETIONS_REACHED,
    DEADLINE_EXCEEDED,
    FAIL_INDEX,
    FAILED,
    FAILED_INDEXES,
    FAILURE_TARGET,
    MAX_FAILED_INDEXES_EXCEEDED,
    REASON_POD_FAILURE_POLICY,
    REASON_SUCCESS_POLICY,
    SUCCESS_CRITERIA_MET,
    SUSPENDED,
    BackoffRecord,
    Pod,
    backoff_limit_of,
    deadline_left,
    ensure_condition,
    finished_time,
    is_success_criteria_met,
    is_suspended,
    match_pod_failure_policy,
    new_condition,
    next_backoff_record,
    spec_of,
    true_condition,
)
from kubelite.controllers.podutil import is_active, is_ready
from kubelite.machinery.meta import rfc3339

MAX_UNCOUNTED_PODS = 500  # keeps status.uncountedTerminatedPods under ~20 KB


# -- the sync state --------------------------------------------------------------------------------


@dataclass
class JobSync:
    """One sync of one Job.  `job` is the controller's working copy (its status is edited in place);
    `pods` are the Job's pods from the cache (read-only)."""

    job: dict[str, Any]
    pods: list[Pod]
    now: datetime
    expected_removed: frozenset[str] = frozenset()  # pod uids whose finalizer removal is in flight
    active: list[Pod] = field(default_factory=list)
    ready: int = 0
    terminating: int = 0
    uncounted_succeeded: frozenset[str] = frozenset()  # as read at the start of the sync
    uncounted_failed: frozenset[str] = frozenset()
    succeeded: int = 0
    failed: int = 0
    backoff: BackoffRecord = field(default_factory=BackoffRecord)
    finished: dict[str, Any] | None = None  # the condition the Job is heading to
    prev_succeeded_indexes: Intervals = field(default_factory=Intervals)
    succeeded_indexes: Intervals = field(default_factory=Intervals)
    failed_indexes: Intervals | None = None
    delayed_deletion: dict[int, Pod] = field(default_factory=dict)  # per index: failed pod kept for its count

    @property
    def status(self) -> dict[str, Any]:
        found = self.job.get("status")
        if not isinstance(found, dict):
            found = self.job["status"] = {}
        return found

    @property
    def uncounted(self) -> dict[str, Any]:
        found = self.status.get("uncountedTerminatedPods")
        if not isinstance(found, dict):
            found = self.status["uncountedTerminatedPods"] = {}
        return found


def _valid_uncounted_candidates(sync: JobSync, skip: frozenset[str]) -> list[Pod]:
    """Pods still tracked (finalizer present, no removal in flight, not in `skip`) with, for Indexed
    Jobs, a valid index (upstream's getValidPodsWithFilter)."""
    completions = completions_of(sync.job) or 0
    found = []
    for pod in sync.pods:
        uid = uid_of(pod)
        if not has_tracking_finalizer(pod) or uid in skip or uid in sync.expected_removed:
            continue
        if is_indexed(sync.job) and valid_index(pod, completions) is None:
            continue
        found.append(pod)
    return found


def observe(
    job: dict[str, Any],
    pods: list[Pod],
    *,
    now: datetime,
    backoff: BackoffRecord = BackoffRecord(),
    expected_removed: Iterable[str] = (),
) -> JobSync:
    """Count what the pods show; set status.startTime on the first unsuspended sync."""
    sync = JobSync(job=job, pods=pods, now=now, expected_removed=frozenset(expected_removed))
    uncounted = sync.uncounted
    sync.uncounted_succeeded = frozenset(str(u) for u in uncounted.get("succeeded") or ())
    sync.uncounted_failed = frozenset(str(u) for u in uncounted.get("failed") or ())
    sync.active = [p for p in pods if is_active(p)]
    sync.ready = sum(1 for p in sync.active if is_ready(p))
    sync.terminating = len(terminating_pods(pods))
    new_succeeded = [
        p
        for p in _valid_uncounted_candidates(sync, sync.uncounted_succeeded)
        if (p.get("status") or {}).get("phase") == "Succeeded"
    ]
    new_failed = [p for p in _valid_uncounted_candidates(sync, sync.uncounted_failed) if is_pod_failed(p, job)]
    policy = spec_of(job).get("podFailurePolicy")
    counted_failures = sum(1 for p in new_failed if match_pod_failure_policy(policy, p).counts)
    status = sync.status
    sync.succeeded = int(status.get("succeeded") or 0) + len(new_succeeded) + len(sync.uncounted_succeeded)
    sync.failed = int(status.get("failed") or 0) + counted_failures + len(sync.uncounted_failed)
    if status.get("startTime") is None and not is_suspended(job):
        status["startTime"] = rfc3339(now)
    sync.backoff = next_backoff_record(backoff, new_succeeded, new_failed)
    return sync


# -- is the Job done? ------------------------------------------------------------------------------


def _fail_job_message(job: Mapping[str, Any], pods: Iterable[Pod]) -> str | None:
    policy = spec_of(job).get("podFailurePolicy")
    if policy is None:
        return None
    for pod in pods:
        if is_pod_failed(pod, job):
            message = match_pod_failure_policy(policy, pod).fail_job_message
            if message is not None:
                return message
    return None


def _past_backoff_limit_on_failure(job: Mapping[str, Any], pods: Iterable[Pod]) -> bool:
    """restartPolicy OnFailure: container restarts of running/pending pods count as failures."""
    if ((spec_of(job).get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") in ("Running", "Pending"):
            for field_name in ("initContainerStatuses", "containerStatuses"):
                restarts += sum(int(c.get("restartCount") or 0) for c in status.get(field_name) or ())
    limit = backoff_limit_of(job)
    return restarts > 0 if limit == 0 else restarts >= limit


def _is_index_failed(job: Mapping[str, Any], pod: Pod) -> bool:
    counted = False
    if is_pod_failed(pod, job):
        match = match_pod_failure_policy(spec_of(job).get("podFailurePolicy"), pod)
        if match.action == FAIL_INDEX:
            return True
        counted = match.counts
    return counted and index_failure_count(pod) >= int(spec_of(job).get("backoffLimitPerIndex") or 0)


def _indexes_of_tracked(pods: Iterable[Pod], completions: int, predicate: Any) -> set[int]:
    found = set()
    for pod in pods:
        index = valid_index(pod, completions)
        if index is not None and has_tracking_finalizer(pod) and predicate(pod):
            found.add(index)
    return found


def _pods_with_delayed_deletion(sync: JobSync) -> dict[int, Pod]:
    """Per index without a running, succeeded or failed verdict: the latest failed pod, whose
    finalizer stays until its replacement exists (it carries the index's failure count)."""
    completions = completions_of(sync.job) or 0
    active_indexes = indexes_of(sync.active)
    kept: dict[int, Pod] = {}
    failed_indexes = sync.failed_indexes or Intervals()
    for pod in _valid_uncounted_candidates(sync, frozenset()):
        if not is_pod_failed(pod, sync.job):
            continue
        index = valid_index(pod, completions)
        if index is None or sync.succeeded_indexes.has(index) or failed_indexes.has(index) or index in active_indexes:
            continue
        previous = kept.get(index)
        if previous is None or (
            absolute_failure_count(previous) <= absolute_failure_count(pod)
            and finished_time(pod) >= finished_time(previous)
        ):
            kept[index] = pod
    return kept


def assess_finish(sync: JobSync) -> float | None:
    """Set `sync.finished` to the condition the Job is heading to, if any; return seconds after
    which activeDeadlineSeconds passes when it is still running (to look again then)."""
    job, now = sync.job, sync.now
    look_again: float | None = None
    sync.finished = dict(met) if (met := true_condition(job, SUCCESS_CRITERIA_MET)) is not None else None
    if sync.finished is None:
        if (target := true_condition(job, FAILURE_TARGET)) is not None:
            sync.finished = new_condition(FAILED, "True", target.get("reason", ""), target.get("message", ""), now)
        elif (message := _fail_job_message(job, sync.pods)) is not None:
            sync.finished = new_condition(FAILURE_TARGET, "True", REASON_POD_FAILURE_POLICY, message, now)
    if sync.finished is None:
        left = deadline_left(job, now)
        if sync.failed > backoff_limit_of(job) or _past_backoff_limit_on_failure(job, sync.pods):
            sync.finished = new_condition(FAILURE_TARGET, "True", *BACKOFF_LIMIT_EXCEEDED, now)
        elif left is not None and left <= 0:
            sync.finished = new_condition(FAILURE_TARGET, "True", *DEADLINE_EXCEEDED, now)
        elif left is not None:
            look_again = left
    if is_indexed(job):
        completions = completions_of(job) or 0
        status = sync.status
        sync.prev_succeeded_indexes = Intervals.parse(status.get("completedIndexes"), completions)
        newly = _indexes_of_tracked(
            sync.pods, completions, lambda p: (p.get("status") or {}).get("phase") == "Succeeded"
        )
        sync.succeeded_indexes = sync.prev_succeeded_indexes.with_indexes(newly)
        sync.succeeded = sync.succeeded_indexes.total()
        if has_backoff_limit_per_index(job):
            previous = Intervals.parse(status.get("failedIndexes"), completions)
            sync.failed_indexes = previous.with_indexes(
                _indexes_of_tracked(sync.pods, completions, lambda p: _is_index_failed(job, p))
            )
            if sync.finished is None:
                max_failed = spec_of(job).get("maxFailedIndexes")
                failed = sync.failed_indexes.total()
                if max_failed is not None and failed > int(max_failed):
                    sync.finished = new_condition(FAILURE_TARGET, "True", *MAX_FAILED_INDEXES_EXCEEDED, now)
                elif failed > 0 and failed + sync.succeeded_indexes.total() >= completions:
                    sync.finished = new_condition(FAILURE_TARGET, "True", *FAILED_INDEXES, now)
            sync.delayed_deletion = _pods_with_delayed_deletion(sync)
        if sync.finished is None:
            message = match_success_policy(spec_of(job).get("successPolicy"), completions, sync.succeeded_indexes)
            if message is not None:
                sync.finished = new_condition(SUCCESS_CRITERIA_MET, "True", REASON_SUCCESS_POLICY, message, now)
    return look_again


def is_complete(job: Mapping[str, Any], succeeded: int, active: int) -> bool:
    """Done when `completions` pods succeeded — or, without completions (a work queue), when any
    pod succeeded and none is still running."""
    completions = completions_of(job)
    if completions is None:
        return succeeded > 0 and active == 0
    return succeeded >= completions and active == 0


def success_condition(now: datetime) -> dict[str, Any]:
    return new_condition(SUCCESS_CRITERIA_MET, "True", *COMPLETIONS_REACHED, now)


def update_suspended_condition(sync: JobSync) -> tuple[str, str] | None:
    """Keep the `Suspended` condition in step with spec.suspend; a resume restarts startTime (the
    activeDeadlineSeconds clock measures continuous activity).  Returns the event (reason,
    message) to record when the condition changed."""
    conditions = sync.status.setdefault("conditions", [])
    if is_suspended(sync.job):
        if ensure_condition(conditions, SUSPENDED, "True", "JobSuspended", "Job suspended", sync.now):
            return ("Suspended", "Job suspended")
        return None
    if ensure_condition(conditions, SUSPENDED, "False", "JobResumed", "Job resumed", sync.now):
        sync.status["startTime"] = rfc3339(sync.now)
        return ("Resumed", "Job resumed")
    return None


# -- counting finished pods ------------------------------------------------------------------------


@dataclass
class Tracking:
    """The outcome of `track_finished_pods`: pods whose finalizer to remove, whether the status must
    be written before that, and the uids still holding a finalizer (for `settle_uncounted`)."""

    remove_finalizer: list[Pod]
    needs_flush: bool
    reached_max_uncounted: bool
    uids_with_finalizer: set[str]


def settle_uncounted(status: dict[str, Any], uids_with_finalizer: set[str]) -> bool:
    """Move the uncounted uids whose pods no longer hold the finalizer (or are gone) into
    `succeeded`/`failed`.  Returns whether the status changed."""
    uncounted = status.get("uncountedTerminatedPods")
    if not isinstance(uncounted, dict):
        return False
    changed = False
    for kind in ("succeeded", "failed"):
        listed = [str(u) for u in uncounted.get(kind) or ()]
        kept = [u for u in listed if u in uids_with_finalizer]
        if len(kept) != len(listed):
            changed = True
            status[kind] = int(status.get(kind) or 0) + len(listed) - len(kept)
            uncounted[kind] = kept
    return changed


def _can_remove_finalizer(sync: JobSync, pod: Pod, failed: bool) -> bool:
    if (sync.job.get("metadata") or {}).get("deletionTimestamp") or sync.finished is not None:
        return True
    if (pod.get("status") or {}).get("phase") == "Succeeded":
        return True
    if not failed:
        return False
    if has_backoff_limit_per_index(sync.job):
        index = completion_index(pod)
        kept = sync.delayed_deletion.get(index) if index is not None else None
        if kept is not None and uid_of(kept) == uid_of(pod):
            return False  # its replacement must exist first: it carries the index's failure count
    return True


def _by_index(pod: Pod) -> int:
    index = completion_index(pod)
    return -1 if index is None else index


def track_finished_pods(sync: JobSync, needs_flush: bool) -> Tracking:
    """Record newly finished pods in status.uncountedTerminatedPods (Indexed: in completedIndexes),
    add the interim FailureTarget / SuccessCriteriaMet condition, and choose the pods whose
    finalizer may go.  Turns `sync.finished` into the terminal condition to add later."""
    job, status = sync.job, sync.status
    indexed = is_indexed(job)
    completions = completions_of(job) or 0
    pods = sorted(sync.pods, key=_by_index) if indexed else list(sync.pods)
    with_finalizer = {uid_of(p) for p in pods if has_tracking_finalizer(p) and uid_of(p) not in sync.expected_removed}
    if settle_uncounted(status, with_finalizer):
        needs_flush = True
    uncounted = sync.uncounted
    uncounted_succeeded = uncounted.setdefault("succeeded", [])
    uncounted_failed = uncounted.setdefault("failed", [])
    policy = spec_of(job).get("podFailurePolicy")
    failing_job = sync.finished is not None and not is_success_criteria_met(sync.finished)
    remove: list[Pod] = []
    new_indexes: list[int] = []
    reached_max = False
    for pod in pods:
        uid = uid_of(pod)
        if not has_tracking_finalizer(pod) or uid in sync.expected_removed:
            continue  # counted in an earlier sync
        failed = is_pod_failed(pod, job)
        if not _can_remove_finalizer(sync, pod, failed):
            continue
        remove.append(pod)
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Succeeded" and uid not in sync.uncounted_failed:
            if indexed:
                index = valid_index(pod, completions)
                if index is not None and not sync.prev_succeeded_indexes.has(index):
                    new_indexes.append(index)
                    needs_flush = True
            elif uid not in sync.uncounted_succeeded:
                uncounted_succeeded.append(uid)
                needs_flush = True
        elif failed or failing_job:
            # a failing Job counts every pod it still tracks that has not succeeded as failed
            if uid not in sync.uncounted_failed and (not indexed or valid_index(pod, completions) is not None):
                if policy is None or match_pod_failure_policy(policy, pod).counts:
                    uncounted_failed.append(uid)
                    needs_flush = True
        if len(new_indexes) + len(uncounted_succeeded) + len(uncounted_failed) >= MAX_UNCOUNTED_PODS:
            reached_max = True  # the rest waits for the next sync: status stays small, others get a turn
            break
    if indexed:
        sync.succeeded_indexes = sync.succeeded_indexes.with_indexes(new_indexes)
        text = str(sync.succeeded_indexes)
        if text != (status.get("completedIndexes") or ""):
            needs_flush = True
        status["succeeded"] = sync.succeeded_indexes.total()
        status["completedIndexes"] = text
        failed_text = None if sync.failed_indexes is None else str(sync.failed_indexes)
        if status.get("failedIndexes") != failed_text:
            status["failedIndexes"] = failed_text
            needs_flush = True
    needs_flush = _add_interim_condition(sync) or needs_flush
    return Tracking(remove, needs_flush, reached_max, with_finalizer)


def _add_interim_condition(sync: JobSync) -> bool:
    finished = sync.finished
    if finished is None:
        return False
    conditions = sync.status.setdefault("conditions", [])
    if finished.get("type") == FAILURE_TARGET:
        conditions.append(finished)
        sync.finished = new_condition(FAILED, "True", finished["reason"], finished["message"], sync.now)
        return True
    if is_success_criteria_met(finished):
        added = true_condition(sync.job, SUCCESS_CRITERIA_MET) is None
        if added:
            conditions.append(finished)
        sync.finished = new_condition(
            COMPLETE, "True", finished.get("reason", ""), finished.get("message", ""), sync.now
        )
        return added
    return False


def enact_finished(sync: JobSync) -> bool:
    """Add the terminal condition once no finished pod is uncounted and none is terminating;
    `Complete` also sets completionTime.  Returns whether the Job is finished now."""
    finished = sync.finished
    if finished is None:
        return False
    uncounted = sync.uncounted
    if uncounted.get("succeeded") or uncounted.get("failed") or sync.terminating > 0:
        return False
    conditions = sync.status.setdefault("conditions", [])
    ensure_condition(
        conditions, finished["type"], finished["status"], finished["reason"], finished["message"], sync.now
    )
    if finished["type"] == COMPLETE:
        sync.status["completionTime"] = finished["lastTransitionTime"]
    return True


def finished_events(job: Mapping[str, Any], finished: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The events (type, reason, message) a newly finished Job gets."""
    if finished.get("type") == COMPLETE:
        events = []
        completions = completions_of(job)
        if completions is not None and int((job.get("status") or {}).get("succeeded") or 0) > completions:
            events.append(
                ("Warning", "TooManySucceededPods", "Too many succeeded pods running after completion count reached")
            )
        events.append(("Normal", "Completed", "Job completed"))
        return events
    return [("Warning", str(finished.get("reason", "")), str(finished.get("message", "")))]


def normalize_status(status: dict[str, Any]) -> dict[str, Any]:
    """The status as the API serializes it: zero counters, empty strings and empty lists left out
    (Go's omitempty), `ready`, `terminating` and `uncountedTerminatedPods` kept."""
    for key in ("active", "succeeded", "failed"):
        if not status.get(key):
            status.pop(key, None)
    if not status.get("completedIndexes"):
        status.pop("completedIndexes", None)
    if not status.get("conditions"):
        status.pop("conditions", None)
    if status.get("failedIndexes") is None:
        status.pop("failedIndexes", None)
    uncounted = status.get("uncountedTerminatedPods")
    if isinstance(uncounted, dict):
        for key in ("succeeded", "failed"):
            if not uncounted.get(key):
                uncounted.pop(key, None)
    return status


__all__ = [
    "MAX_UNCOUNTED_PODS",
    "JobSync",
    "Tracking",
    "assess_finish",
    "enact_finished",
    "finished_events",
    "is_complete",
    "normalize_status",
    "observe",
    "settle_uncounted",
    "success_condition",
    "track_finished_pods",
    "update_suspended_condition",
]
