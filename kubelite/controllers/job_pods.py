"""The pods of a Job: completion indexes, how many pods to run and which to delete, and the pod
built for each new attempt (upstream's indexed_job_utils.go, success_policy.go and manageJob).

Pure: objects in, values out.  Pods passed in are read-only cache objects.

Contracts:

* A completion index is the pod's `batch.kubernetes.io/job-completion-index` annotation, a
  non-negative decimal; anything else (missing, unparsable, negative) is "no index" (`None`), and
  such pods of an Indexed Job are deleted as strays, as are duplicates of an index.
* `Intervals` is the compressed form of `status.completedIndexes` / `status.failedIndexes`:
  sorted, disjoint, never adjacent ("0-2,4" is (0,2),(4,4)).  Two consecutive indexes print with a
  comma ("3,4"), three or more as a range ("3-5"), exactly as upstream, because clients parse it.
* `plan_pods` runs at most `parallelism` pods and never more than the completions still missing;
  in one sync it either deletes or creates, never both; creations wait out the failure back-off.
* `new_pod` gives every pod the tracking finalizer, and for Indexed Jobs the index annotation and
  label, hostname `<job>-<index>`, name prefix `<job>-<index>-` and the `JOB_COMPLETION_INDEX`
  variable in every container (a downward-API reference to the annotation).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubelite.controllers.job_policy import (
    DEFAULT_POD_FAILURE_BACKOFF,
    MAX_POD_FAILURE_BACKOFF,
    Pod,
    finished_time,
    is_suspended,
    match_pod_failure_policy,
    remaining_backoff,
    spec_of,
)
from kubelite.controllers.ownership import pod_from_template
from kubelite.controllers.podutil import deletion_order, is_terminal, is_terminating
from kubelite.machinery.meta import MAX_GENERATE_NAME_PREFIX, deep_copy, name_of

if TYPE_CHECKING:
    from kubelite.controllers.job_status import JobSync

JOB_API_VERSION = "batch/v1"
JOB_KIND = "Job"
JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-ignored-failure-count"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
MAX_INT32 = 2**31 - 1
MAX_POD_CREATE_DELETE_PER_SYNC = 500

_DECIMAL = re.compile(r"[+-]?[0-9]+")


# -- spec accessors --------------------------------------------------------------------------------


def is_indexed(job: Mapping[str, Any]) -> bool:
    return spec_of(job).get("completionMode") == "Indexed"


def completions_of(job: Mapping[str, Any]) -> int | None:
    value = spec_of(job).get("completions")
    return None if value is None else int(value)


def parallelism_of(job: Mapping[str, Any]) -> int:
    value = spec_of(job).get("parallelism")
    return 1 if value is None else int(value)


def has_backoff_limit_per_index(job: Mapping[str, Any]) -> bool:
    return spec_of(job).get("backoffLimitPerIndex") is not None


def only_replace_failed_pods(job: Mapping[str, Any]) -> bool:
    """Replacements wait until a deleted pod is really gone (podReplacementPolicy Failed, which a
    podFailurePolicy implies)."""
    spec = spec_of(job)
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: Pod, job: Mapping[str, Any]) -> bool:
    """Failed, or — unless replacements wait for terminal pods — being deleted before it succeeded
    (an orphan pod may never reach the Failed phase)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return is_terminating(pod) and phase != "Succeeded"


def has_tracking_finalizer(pod: Pod) -> bool:
    return JOB_TRACKING_FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or ())


def uid_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def terminating_pods(pods: Iterable[Pod]) -> list[Pod]:
    """Being deleted and not finished yet (upstream's FilterTerminatingPods)."""
    return [p for p in pods if is_terminating(p) and not is_terminal(p)]


# -- completion indexes ----------------------------------------------------------------------------


def _parse_int(text: Any) -> int | None:
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        return None
    return int(text)


def completion_index(pod: Pod) -> int | None:
    """The pod's completion index, or None when it has none that is valid."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    value = _parse_int(annotations.get(COMPLETION_INDEX_KEY))
    return value if value is not None and value >= 0 else None


def valid_index(pod: Pod, completions: int) -> int | None:
    index = completion_index(pod)
    return index if index is not None and index < completions else None


def indexes_of(pods: Iterable[Pod]) -> set[int]:
    return {ix for p in pods if (ix := completion_index(p)) is not None}


@dataclass(frozen=True)
class Intervals:
    """Sorted, disjoint, non-adjacent closed intervals of indexes."""

    spans: tuple[tuple[int, int], ...] = ()

    @classmethod
    def parse(cls, text: str | None, completions: int) -> Intervals:
        """Read `status.completedIndexes`-style text, dropping what lies at or past `completions`
        and skipping corrupt pieces (as upstream's parseIndexesFromString)."""
        if not text:
            return cls()
        spans: list[tuple[int, int]] = []
        for piece in text.split(","):
            limits = piece.split("-")
            first = _parse_int(limits[0])
            if first is None:
                continue
            if first >= completions:
                break
            if len(limits) > 1:
                last = _parse_int(limits[1])
                if last is None:
                    continue
                last = min(last, completions - 1)
            else:
                last = first
            if spans and spans[-1][1] == first - 1:
                spans[-1] = (spans[-1][0], last)
            else:
                spans.append((first, last))
        return cls(tuple(spans))

    @classmethod
    def of(cls, indexes: Iterable[int]) -> Intervals:
        return cls().with_indexes(indexes)

    def __str__(self) -> str:
        parts = []
        for first, last in self.spans:
            if last == first:
                parts.append(str(first))
            elif last == first + 1:
                parts.append(f"{first},{last}")
            else:
                parts.append(f"{first}-{last}")
        return ",".join(parts)

    def total(self) -> int:
        return sum(last - first + 1 for first, last in self.spans)

    def has(self, index: int) -> bool:
        return any(first <= index <= last for first, last in self.spans)

    def merge(self, other: Intervals) -> Intervals:
        merged: list[tuple[int, int]] = []
        for first, last in sorted(self.spans + other.spans):
            if merged and first <= merged[-1][1] + 1:
                if last > merged[-1][1]:
                    merged[-1] = (merged[-1][0], last)
            else:
                merged.append((first, last))
        return Intervals(tuple(merged))

    def with_indexes(self, indexes: Iterable[int]) -> Intervals:
        return self.merge(Intervals(tuple((i, i) for i in sorted(set(indexes)))))


def first_pending_indexes(
    count: int,
    completions: int,
    *,
    active: Iterable[Pod],
    succeeded: Intervals,
    failed: Intervals | None = None,
    terminating: Iterable[Pod] = (),
) -> list[int]:
    """The `count` lowest indexes below `completions` that no active pod runs and that are neither
    succeeded nor failed (nor held by a terminating pod, when replacements wait for those)."""
    if count <= 0:
        return []
    busy = succeeded.with_indexes(indexes_of(active) | indexes_of(terminating))
    if failed is not None:
        busy = busy.merge(failed)
    found: list[int] = []
    candidate = 0
    for first, last in (*busy.spans, (completions, completions)):
        while candidate < min(first, completions) and len(found) < count:
            found.append(candidate)
            candidate += 1
        if len(found) >= count or candidate >= completions:
            break
        candidate = max(candidate, last + 1)
    return found


def generate_name_for_index(job_name: str, index: int) -> str:
    """`<job>-<index>-`, the job name cut so that the prefix leaves room for the random suffix."""
    suffix = f"-{index}-"
    prefix = job_name + suffix
    if len(prefix) > MAX_GENERATE_NAME_PREFIX:
        prefix = prefix[: MAX_GENERATE_NAME_PREFIX - len(suffix)] + suffix
    return prefix


# -- building pods ---------------------------------------------------------------------------------


def _add_index_env(template: dict[str, Any]) -> None:
    spec = template.setdefault("spec", {})
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or ():
            env = container.setdefault("env", [])
            if any(var.get("name") == COMPLETION_INDEX_ENV for var in env):
                continue
            env.append(
                {
                    "name": COMPLETION_INDEX_ENV,
                    "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX_KEY}']"}},
                }
            )


def new_pod(
    job: dict[str, Any], index: int | None = None, *, failure_counts: tuple[int, int] | None = None
) -> dict[str, Any]:
    """The pod to create for `job` (for completion `index` when Indexed).  `failure_counts` is
    (failures, ignored failures) of the index so far, written as annotations when the Job uses a
    per-index back-off limit."""
    template = deep_copy(spec_of(job).get("template") or {})
    meta = template.setdefault("metadata", {})
    if is_indexed(job):
        _add_index_env(template)
    finalizers = list(meta.get("finalizers") or ())
    if JOB_TRACKING_FINALIZER not in finalizers:
        finalizers.append(JOB_TRACKING_FINALIZER)
    meta["finalizers"] = finalizers
    generate_name = None
    if index is not None:
        meta["annotations"] = {**(meta.get("annotations") or {}), COMPLETION_INDEX_KEY: str(index)}
        meta["labels"] = {**(meta.get("labels") or {}), COMPLETION_INDEX_KEY: str(index)}
        template.setdefault("spec", {})["hostname"] = f"{name_of(job)}-{index}"
        generate_name = generate_name_for_index(name_of(job), index)
        if failure_counts is not None:
            failures, ignored = failure_counts
            meta["annotations"][INDEX_FAILURE_COUNT_KEY] = str(failures)
            if ignored > 0:
                meta["annotations"][INDEX_IGNORED_FAILURE_COUNT_KEY] = str(ignored)
    return pod_from_template(template, job, api_version=JOB_API_VERSION, kind=JOB_KIND, generate_name=generate_name)


# -- per-index failure counts ----------------------------------------------------------------------


def _annotation_count(pod: Pod, key: str) -> int:
    value = _parse_int(((pod.get("metadata") or {}).get("annotations") or {}).get(key))
    return value if value is not None and 0 <= value <= MAX_INT32 else 0


def index_failure_count(pod: Pod) -> int:
    return _annotation_count(pod, INDEX_FAILURE_COUNT_KEY)


def index_ignored_failure_count(pod: Pod) -> int:
    return _annotation_count(pod, INDEX_IGNORED_FAILURE_COUNT_KEY)


# -- success policy (over succeeded indexes) -------------------------------------------------------


def _covered(required: Intervals, succeeded: Intervals) -> int:
    """How many indexes of `required` are in `succeeded`."""
    count = 0
    for first, last in required.spans:
        for s_first, s_last in succeeded.spans:
            overlap = min(last, s_last) - max(first, s_first) + 1
            if overlap > 0:
                count += overlap
    return count


def match_success_policy(policy: Mapping[str, Any] | None, completions: int, succeeded: Intervals) -> str | None:
    """The SuccessCriteriaMet message ("Matched rules at index N") for the first rule of an Indexed
    Job's spec.successPolicy that the succeeded indexes satisfy, else None."""
    if policy is None or not succeeded.spans:
        return None
    for position, rule in enumerate(policy.get("rules") or ()):
        wanted_count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = Intervals.parse(rule["succeededIndexes"], completions)
            if not required.spans:
                continue
            covered = _covered(required, succeeded)
            if covered == required.total() or (wanted_count is not None and covered >= int(wanted_count)):
                return f"Matched rules at index {position}"
        elif wanted_count is not None and succeeded.total() >= int(wanted_count):
            return f"Matched rules at index {position}"
    return None


def absolute_failure_count(pod: Pod) -> int:
    return index_failure_count(pod) + index_ignored_failure_count(pod)


# -- choosing pods to delete -----------------------------------------------------------------------


def active_pods_for_removal(job: Mapping[str, Any], active: Sequence[Pod], at_least: int) -> list[Pod]:
    """Active pods to delete: for Indexed Jobs every pod without a valid index and every duplicate of
    an index (keeping the one furthest along), then — to reach `at_least` — the pods least far
    along (pending before running, not ready before ready, …)."""
    remove: list[Pod] = []
    left: list[Pod] = list(active)
    if is_indexed(job):
        completions = completions_of(job) or 0
        left = []
        by_index: dict[int, list[Pod]] = {}
        for pod in active:
            index = completion_index(pod)
            if index is None or index >= completions:
                remove.append(pod)
            else:
                by_index.setdefault(index, []).append(pod)
        for index in sorted(by_index):
            ordered = deletion_order(by_index[index])
            remove.extend(ordered[:-1])
            left.append(ordered[-1])
    if len(remove) < at_least:
        remove.extend(deletion_order(left)[: at_least - len(remove)])
    return remove


# -- how many pods ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodPlan:
    """What `manageJob` does this sync: delete `delete` (finalizers first), or create `create` pods
    (for `indexes` when Indexed, with `failure_counts` per index when a per-index limit applies),
    or wait `wait` seconds of failure back-off before creating."""

    delete: tuple[Pod, ...] = ()
    create: int = 0
    indexes: tuple[int, ...] = ()
    failure_counts: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    wait: float = 0.0


def _new_index_failure_counts(job: Mapping[str, Any], replaced: Pod | None) -> tuple[int, int]:
    if replaced is None:
        return (0, 0)
    failures, ignored = index_failure_count(replaced), index_ignored_failure_count(replaced)
    policy = spec_of(job).get("podFailurePolicy")
    if policy is not None and not match_pod_failure_policy(policy, replaced).counts:
        return (failures, ignored + 1)
    return (failures + 1, ignored)


def _index_backoff_left(sync: JobSync, index: int, base: float, cap: float) -> float:
    replaced = sync.delayed_deletion.get(index)
    if replaced is None:
        return 0.0
    return remaining_backoff(
        absolute_failure_count(replaced) + 1, finished_time(replaced), sync.now, base=base, cap=cap
    )


def wanted_active(job: Mapping[str, Any], succeeded: int, active: int) -> int:
    completions = completions_of(job)
    parallelism = parallelism_of(job)
    if completions is None:
        # a work queue: once one pod succeeded, let the running ones finish and start no more
        return active if succeeded > 0 else parallelism
    return max(0, min(completions - succeeded, parallelism))


def plan_pods(
    sync: JobSync, *, base: float = DEFAULT_POD_FAILURE_BACKOFF, cap: float = MAX_POD_FAILURE_BACKOFF
) -> PodPlan:
    """Upstream's manageJob decision (deletion takes precedence over creation in one sync)."""
    job = sync.job
    active = len(sync.active)
    if is_suspended(job):
        return PodPlan(delete=tuple(active_pods_for_removal(job, sync.active, active)))
    want = wanted_active(job, sync.succeeded, active)
    to_delete = active_pods_for_removal(job, sync.active, max(0, active - want))
    if to_delete:
        return PodPlan(delete=tuple(to_delete[:MAX_POD_CREATE_DELETE_PER_SYNC]))
    terminating = sync.terminating if only_replace_failed_pods(job) else 0
    missing = want - terminating - active
    if missing <= 0:
        return PodPlan()
    per_index = has_backoff_limit_per_index(job)
    if not per_index:
        wait = remaining_backoff(
            sync.backoff.failures_after_last_success, sync.backoff.last_failure_time, sync.now, base=base, cap=cap
        )
        if wait > 0:
            return PodPlan(wait=wait)
    missing = min(missing, MAX_POD_CREATE_DELETE_PER_SYNC)
    if not is_indexed(job):
        return PodPlan(create=missing)
    indexes = first_pending_indexes(
        missing,
        completions_of(job) or 0,
        active=sync.active,
        succeeded=sync.succeeded_indexes,
        failed=sync.failed_indexes,
        terminating=terminating_pods(sync.pods) if only_replace_failed_pods(job) else (),
    )
    counts: dict[int, tuple[int, int]] = {}
    if per_index:
        waits = {ix: _index_backoff_left(sync, ix, base, cap) for ix in indexes}
        ready_now = [ix for ix in indexes if waits[ix] <= 0]
        if indexes and not ready_now:
            return PodPlan(wait=min(waits.values()))
        indexes = ready_now
        counts = {ix: _new_index_failure_counts(job, sync.delayed_deletion.get(ix)) for ix in indexes}
    return PodPlan(create=len(indexes), indexes=tuple(indexes), failure_counts=counts)


__all__ = [
    "COMPLETION_INDEX_ENV",
    "COMPLETION_INDEX_KEY",
    "INDEX_FAILURE_COUNT_KEY",
    "INDEX_IGNORED_FAILURE_COUNT_KEY",
    "JOB_API_VERSION",
    "JOB_KIND",
    "JOB_TRACKING_FINALIZER",
    "MAX_INT32",
    "MAX_POD_CREATE_DELETE_PER_SYNC",
    "Intervals",
    "PodPlan",
    "absolute_failure_count",
    "active_pods_for_removal",
    "completion_index",
    "completions_of",
    "first_pending_indexes",
    "generate_name_for_index",
    "has_backoff_limit_per_index",
    "has_tracking_finalizer",
    "index_failure_count",
    "index_ignored_failure_count",
    "indexes_of",
    "is_indexed",
    "is_pod_failed",
    "match_success_policy",
    "new_pod",
    "only_replace_failed_pods",
    "parallelism_of",
    "plan_pods",
    "terminating_pods",
    "uid_of",
    "valid_index",
    "wanted_active",
]
