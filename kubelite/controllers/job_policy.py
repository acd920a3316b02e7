"""What a Job's spec and conditions say: its terminal and interim conditions, the pod failure
policy, and the back-off between re-creations after failures (upstream's pod_failure_policy.go,
backoff_utils.go and the condition helpers of job_controller.go).  Pure functions.

Contracts:

* Reasons and messages are upstream's, word for word: clients and users match on them.
* `ensure_condition` replaces a condition only when its status, reason or message change (so
  lastTransitionTime moves only then) and never adds a False condition where there was none.
* `match_pod_failure_policy` applies the first rule that matches a failed pod, in rule order: on
  exit codes of terminated containers (exit code 0 never matches; regular containers are looked
  at before init containers) or on pod conditions (pattern status defaults to True).  No rule
  matching counts the failure.
* The back-off before creating a replacement is 10 s doubled per failure since the last success,
  capped at 10 minutes (upstream's DefaultJobPodFailureBackOff / MaxJobPodFailureBackOff), and
  runs from the finish time of the last failure, not from when the controller noticed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubelite.controllers.podutil import condition
from kubelite.machinery.meta import parse_time, rfc3339

DEFAULT_POD_FAILURE_BACKOFF = 10.0  # seconds, upstream's DefaultJobPodFailureBackOff
MAX_POD_FAILURE_BACKOFF = 600.0  # seconds, upstream's MaxJobPodFailureBackOff (10 minutes since 1.27)

COMPLETE = "Complete"
FAILED = "Failed"
FAILURE_TARGET = "FailureTarget"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"
SUSPENDED = "Suspended"

BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
MAX_FAILED_INDEXES_EXCEEDED = (
    "MaxFailedIndexesExceeded",
    "Job has exceeded the specified maximal number of failed indexes",
)
FAILED_INDEXES = ("FailedIndexes", "Job has failed indexes")
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")
REASON_POD_FAILURE_POLICY = "PodFailurePolicy"
REASON_SUCCESS_POLICY = "SuccessPolicy"

DEFAULT_BACKOFF_LIMIT = 6
JOB_CONTROLLER_MANAGER = "kubernetes.io/job-controller"  # spec.managedBy of Jobs this controller syncs

IGNORE = "Ignore"
COUNT = "Count"
FAIL_JOB = "FailJob"
FAIL_INDEX = "FailIndex"

Pod = dict[str, Any]


def spec_of(job: Mapping[str, Any]) -> Mapping[str, Any]:
    return job.get("spec") or {}


# -- conditions and what the spec says -------------------------------------------------------------


def new_condition(kind: str, status: str, reason: str, message: str, now: datetime) -> dict[str, Any]:
    stamp = rfc3339(now)
    return {
        "type": kind,
        "status": status,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def find_condition(conditions: Iterable[Mapping[str, Any]] | None, kind: str) -> Mapping[str, Any] | None:
    for cond in conditions or ():
        if cond.get("type") == kind:
            return cond
    return None


def ensure_condition(
    conditions: list[dict[str, Any]], kind: str, status: str, reason: str, message: str, now: datetime
) -> bool:
    """Set condition `kind` (replacing it when status, reason or message differ); a False condition
    is never added where none was.  Returns whether `conditions` changed."""
    for i, cond in enumerate(conditions):
        if cond.get("type") == kind:
            if (cond.get("status"), cond.get("reason", ""), cond.get("message", "")) == (status, reason, message):
                return False
            conditions[i] = new_condition(kind, status, reason, message, now)
            return True
    if status == "False":
        return False
    conditions.append(new_condition(kind, status, reason, message, now))
    return True


def true_condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    cond = find_condition((job.get("status") or {}).get("conditions"), kind)
    return cond if cond is not None and cond.get("status") == "True" else None


def is_finished(job: Mapping[str, Any]) -> bool:
    """`Complete` or `Failed` is True: nothing more happens to the Job."""
    return true_condition(job, COMPLETE) is not None or true_condition(job, FAILED) is not None


def finish_time(job: Mapping[str, Any]) -> datetime | None:
    """When a finished Job finished (its terminal condition's lastTransitionTime)."""
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") in (COMPLETE, FAILED) and cond.get("status") == "True" and cond.get("lastTransitionTime"):
            return parse_time(cond["lastTransitionTime"])
    return None


def managed_by_other(job: Mapping[str, Any]) -> str | None:
    """The external controller named in spec.managedBy, when it is not the built-in one."""
    manager = spec_of(job).get("managedBy")
    return manager if manager is not None and manager != JOB_CONTROLLER_MANAGER else None


def is_suspended(job: Mapping[str, Any]) -> bool:
    return bool(spec_of(job).get("suspend"))


def backoff_limit_of(job: Mapping[str, Any]) -> int:
    value = spec_of(job).get("backoffLimit")
    return DEFAULT_BACKOFF_LIMIT if value is None else int(value)


def is_success_criteria_met(cond: Mapping[str, Any] | None) -> bool:
    return cond is not None and cond.get("type") == SUCCESS_CRITERIA_MET and cond.get("status") == "True"


def deadline_left(job: Mapping[str, Any], now: datetime) -> float | None:
    """Seconds until activeDeadlineSeconds passes (<= 0: passed); None when no deadline runs
    (none set, not started, or suspended)."""
    deadline = spec_of(job).get("activeDeadlineSeconds")
    started = (job.get("status") or {}).get("startTime")
    if deadline is None or not started or is_suspended(job):
        return None
    return int(deadline) - (now - parse_time(started)).total_seconds()


# -- pod failure policy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyMatch:
    """How a failed pod counts: `fail_job_message` set for a FailJob rule, `counts` False for an
    Ignore rule, `action` the matched rule's action (None when no rule matched)."""

    fail_job_message: str | None = None
    counts: bool = True
    action: str | None = None


NO_MATCH = PolicyMatch()


def _terminated(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return (status.get("state") or {}).get("terminated")


def _exit_code_matches(code: int, requirement: Mapping[str, Any]) -> bool:
    values = [int(v) for v in requirement.get("values") or ()]
    operator = requirement.get("operator")
    if operator == "In":
        return code in values
    if operator == "NotIn":
        return code not in values
    return False


def _matching_container(
    statuses: Iterable[Mapping[str, Any]], requirement: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    wanted = requirement.get("containerName")
    for status in statuses:
        terminated = _terminated(status)
        if terminated is None:
            continue  # still terminating: no exit code to match yet
        if wanted is not None and wanted != status.get("name"):
            continue
        code = int(terminated.get("exitCode") or 0)
        if code != 0 and _exit_code_matches(code, requirement):
            return status
    return None


def _matching_condition(pod: Pod, patterns: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    patterns = list(patterns)
    for cond in (pod.get("status") or {}).get("conditions") or ():
        for pattern in patterns:
            if cond.get("type") == pattern.get("type") and cond.get("status") == (pattern.get("status") or "True"):
                found: Mapping[str, Any] = cond
                return found
    return None


def match_pod_failure_policy(policy: Mapping[str, Any] | None, pod: Pod) -> PolicyMatch:
    """Which rule of `policy` (a Job's spec.podFailurePolicy) applies to the failed `pod`."""
    if policy is None:
        return NO_MATCH
    meta = pod.get("metadata") or {}
    where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    status = pod.get("status") or {}
    for position, rule in enumerate(policy.get("rules") or ()):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            requirement = rule["onExitCodes"]
            found = _matching_container(status.get("containerStatuses") or (), requirement) or _matching_container(
                status.get("initContainerStatuses") or (), requirement
            )
            if found is None:
                continue
            code = int((_terminated(found) or {}).get("exitCode") or 0)
            message = (
                f"Container {found.get('name')} for pod {where} failed with exit code {code} "
                f"matching {action} rule at index {position}"
            )
        elif rule.get("onPodConditions") is not None:
            cond = _matching_condition(pod, rule["onPodConditions"])
            if cond is None:
                continue
            message = f"Pod {where} has condition {cond.get('type')} matching {action} rule at index {position}"
        else:
            continue
        if action == IGNORE:
            return PolicyMatch(None, False, IGNORE)
        if action == COUNT:
            return PolicyMatch(None, True, COUNT)
        if action == FAIL_INDEX:
            return PolicyMatch(None, True, FAIL_INDEX)
        if action == FAIL_JOB:
            return PolicyMatch(message, True, FAIL_JOB)
        # an action this version does not know: look at the next rule, as upstream's switch does
    return NO_MATCH


# -- back-off --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackoffRecord:
    """Failures since the last success and when the last of them finished (kept per Job in memory)."""

    failures_after_last_success: int = 0
    last_failure_time: datetime | None = None


def _time(text: Any) -> datetime | None:
    try:
        return parse_time(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def finished_time(pod: Pod) -> datetime:
    """When a finished pod finished: its last container's end, else when it stopped being Ready,
    else its deletion time less the grace period, else its creation (upstream's getFinishedTime)."""
    status = pod.get("status") or {}
    latest: datetime | None = None
    all_finished = True
    for container in status.get("containerStatuses") or ():
        ended = _time((_terminated(container) or {}).get("finishedAt"))
        if ended is None:
            all_finished = False
            break
        latest = ended if latest is None or ended > latest else latest
    if all_finished and latest is not None:
        return latest
    ready = condition(pod, "Ready")
    if ready and ready.get("status") == "False" and (since := _time(ready.get("lastTransitionTime"))) is not None:
        return since
    meta = pod.get("metadata") or {}
    if (deleted := _time(meta.get("deletionTimestamp"))) is not None:
        return deleted - timedelta(seconds=int(meta.get("deletionGracePeriodSeconds") or 0))
    created = _time(meta.get("creationTimestamp"))
    return created if created is not None else datetime.min.replace(tzinfo=UTC)


def next_backoff_record(old: BackoffRecord, succeeded: Iterable[Pod], failed: Iterable[Pod]) -> BackoffRecord:
    """The record after counting newly succeeded and failed pods: a success resets the count to the
    failures that finished after the latest success."""
    succeeded_times = sorted(finished_time(p) for p in succeeded)
    failed_times = sorted(finished_time(p) for p in failed)
    if not succeeded_times:
        if not failed_times:
            return old
        return BackoffRecord(old.failures_after_last_success + len(failed_times), failed_times[-1])
    last_success = succeeded_times[-1]
    after = [t for t in failed_times if t > last_success]
    return BackoffRecord(len(after), after[-1] if after else None)


def backoff_delay(
    failures: int, *, base: float = DEFAULT_POD_FAILURE_BACKOFF, cap: float = MAX_POD_FAILURE_BACKOFF
) -> float:
    """The wait after `failures` consecutive failures: base, 2×base, 4×base, … at most `cap`."""
    if failures <= 0:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            return cap
    return min(delay, cap)


def remaining_backoff(
    failures: int,
    last_failure: datetime | None,
    now: datetime,
    *,
    base: float = DEFAULT_POD_FAILURE_BACKOFF,
    cap: float = MAX_POD_FAILURE_BACKOFF,
) -> float:
    """Seconds still to wait before creating a replacement (0 when none)."""
    if failures <= 0 or last_failure is None:
        return 0.0
    elapsed = (now - last_failure).total_seconds()
    return max(0.0, backoff_delay(failures, base=base, cap=cap) - elapsed)


__all__ = [
    "BACKOFF_LIMIT_EXCEEDED",
    "COMPLETE",
    "COMPLETIONS_REACHED",
    "COUNT",
    "DEADLINE_EXCEEDED",
    "DEFAULT_BACKOFF_LIMIT",
    "DEFAULT_POD_FAILURE_BACKOFF",
    "FAILED",
    "FAILED_INDEXES",
    "FAILURE_TARGET",
    "FAIL_INDEX",
    "FAIL_JOB",
    "IGNORE",
    "JOB_CONTROLLER_MANAGER",
    "MAX_FAILED_INDEXES_EXCEEDED",
    "MAX_POD_FAILURE_BACKOFF",
    "NO_MATCH",
    "REASON_POD_FAILURE_POLICY",
    "REASON_SUCCESS_POLICY",
    "SUCCESS_CRITERIA_MET",
    "SUSPENDED",
    "BackoffRecord",
    "Pod",
    "PolicyMatch",
    "backoff_delay",
    "backoff_limit_of",
    "deadline_left",
    "ensure_condition",
    "find_condition",
    "finish_time",
    "finished_time",
    "is_finished",
    "is_success_criteria_met",
    "is_suspended",
    "managed_by_other",
    "match_pod_failure_policy",
    "new_condition",
    "next_backoff_record",
    "remaining_backoff",
    "spec_of",
    "true_condition",
]
