"""The Job controller: its pure decisions table-tested, then the controller run against a FakeClient
with a FakeClock while the test plays the kubelet (patching pod status as a node would)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.job import JOBS, JobController
from kubelite.controllers.job_pods import (
    COMPLETION_INDEX_KEY,
    JOB_TRACKING_FINALIZER,
    Intervals,
    active_pods_for_removal,
    first_pending_indexes,
    generate_name_for_index,
    match_success_policy,
    new_pod,
    plan_pods,
    wanted_active,
)
from kubelite.controllers.job_policy import (
    BackoffRecord,
    backoff_delay,
    ensure_condition,
    finished_time,
    match_pod_failure_policy,
    new_condition,
    next_backoff_record,
    remaining_backoff,
)
from kubelite.controllers.job_status import (
    assess_finish,
    enact_finished,
    is_complete,
    observe,
    settle_uncounted,
    track_finished_pods,
)
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import rfc3339
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import DEFAULT_START, FakeClock

PODS = builtin("", "pods")
EVENTS = builtin("", "events")
NS = "ns"
NOW = DEFAULT_START
T = TypeVar("T")


def make_job(name: str = "work", *, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """A Job as the API server stores it after defaulting (selector on the job-name label)."""
    labels = {"batch.kubernetes.io/job-name": name, "job-name": name}
    full_spec: dict[str, Any] = {
        "parallelism": 1,
        "completions": 1,
        "backoffLimit": 6,
        "completionMode": "NonIndexed",
        "suspend": False,
        "podReplacementPolicy": "TerminatingOrFailed",
        "selector": {"matchLabels": {"batch.kubernetes.io/job-name": name}},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
        },
    }
    full_spec.update(spec)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1, "resourceVersion": "1"},
        "spec": full_spec,
        "status": status or {},
    }


def make_pod(
    name: str,
    *,
    phase: str = "Running",
    index: int | None = None,
    finalizer: bool = True,
    exit_code: int | None = None,
    finished: datetime | None = None,
    deleting: bool = False,
    ready: bool = False,
    created: datetime = NOW,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "uid": f"uid-{name}",
        "creationTimestamp": rfc3339(created),
        "labels": {"batch.kubernetes.io/job-name": "work"},
        "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "Job", "name": "work", "uid": "uid-work", "controller": True}
        ],
    }
    if finalizer:
        meta["finalizers"] = [JOB_TRACKING_FINALIZER]
    if index is not None:
        meta["annotations"] = {COMPLETION_INDEX_KEY: str(index)}
    if deleting:
        meta["deletionTimestamp"] = rfc3339(NOW)
    status: dict[str, Any] = {"phase": phase, "conditions": list(conditions or [])}
    if ready:
        status["conditions"].append({"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(created)})
    if exit_code is not None:
        terminated = {"exitCode": exit_code, "finishedAt": rfc3339(finished or NOW)}
        status["containerStatuses"] = [{"name": "c", "state": {"terminated": terminated}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": status}


def names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


# -- indexes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "completions", "spans", "shown"),
    [
        ("", 5, (), ""),
        ("0-2,4", 5, ((0, 2), (4, 4)), "0-2,4"),
        ("3,4", 5, ((3, 4),), "3,4"),
        ("1,2,3", 5, ((1, 3),), "1-3"),
        ("0-9", 5, ((0, 4),), "0-4"),
        ("a,3", 5, ((3, 3),), "3"),
        ("1,7", 5, ((1, 1),), "1"),
        ("0-1,2-3", 10, ((0, 3),), "0-3"),
    ],
)
def test_completed_indexes_parse_and_print_as_upstream(
    text: str, completions: int, spans: tuple[tuple[int, int], ...], shown: str
) -> None:
    parsed = Intervals.parse(text, completions)
    assert parsed.spans == spans
    assert str(parsed) == shown


def test_intervals_merge_new_indexes_and_answer_membership() -> None:
    merged = Intervals.parse("0-2,6", 10).with_indexes([4, 3, 8])
    assert str(merged) == "0-4,6,8"
    assert merged.total() == 7
    assert merged.has(3) and merged.has(8) and not merged.has(5) and not merged.has(9)
    assert str(Intervals.of([5, 6])) == "5,6"


@pytest.mark.parametrize(
    ("count", "completions", "active", "succeeded", "failed", "want"),
    [
        (3, 5, [], "", None, [0, 1, 2]),
        (2, 5, [0], "1", None, [2, 3]),
        (5, 5, [1], "3", None, [0, 2, 4]),
        (2, 5, [], "0-4", None, []),
        (2, 6, [], "0", "1-2", [3, 4]),
        (0, 5, [], "", None, []),
    ],
)
def test_first_pending_indexes_skip_running_succeeded_and_failed(
    count: int, completions: int, active: list[int], succeeded: str, failed: str | None, want: list[int]
) -> None:
    pods = [make_pod(f"p{i}", index=i) for i in active]
    got = first_pending_indexes(
        count,
        completions,
        active=pods,
        succeeded=Intervals.parse(succeeded, completions),
        failed=None if failed is None else Intervals.parse(failed, completions),
    )
    assert got == want


def test_generate_name_with_index_keeps_room_for_the_random_suffix() -> None:
    assert generate_name_for_index("work", 3) == "work-3-"
    long = generate_name_for_index("x" * 70, 12)
    assert len(long) == 58 and long.endswith("-12-")


def test_indexed_pod_gets_index_annotation_label_hostname_env_and_finalizer() -> None:
    job = make_job(completionMode="Indexed", completions=3, parallelism=3)
    job["spec"]["template"]["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    pod = new_pod(job, 2)
    meta = pod["metadata"]
    assert meta["generateName"] == "work-2-"
    assert meta["annotations"][COMPLETION_INDEX_KEY] == "2"
    assert meta["labels"][COMPLETION_INDEX_KEY] == "2"
    assert meta["labels"]["batch.kubernetes.io/job-name"] == "work"
    assert meta["finalizers"] == [JOB_TRACKING_FINALIZER]
    assert meta["ownerReferences"][0]["kind"] == "Job" and meta["ownerReferences"][0]["controller"] is True
    assert pod["spec"]["hostname"] == "work-2"
    env = {
        "name": "JOB_COMPLETION_INDEX",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}},
    }
    for container in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
        assert container["env"] == [env]
    assert "env" not in job["spec"]["template"]["spec"]["containers"][0]  # the Job is not changed


def test_non_indexed_pod_is_named_after_the_job_and_tracked() -> None:
    pod = new_pod(make_job())
    assert pod["metadata"]["generateName"] == "work-"
    assert pod["metadata"]["finalizers"] == [JOB_TRACKING_FINALIZER]
    assert "hostname" not in pod["spec"]
    assert "env" not in pod["spec"]["containers"][0]


def test_removal_takes_strays_and_duplicates_of_indexes_first() -> None:
    job = make_job(completionMode="Indexed", completions=3, parallelism=3)
    pods = [
        make_pod("a0", index=0, ready=True),
        make_pod("b0", index=0, phase="Pending"),
        make_pod("stray"),
        make_pod("past", index=7),
        make_pod("c1", index=1),
    ]
    assert sorted(names(active_pods_for_removal(job, pods, 0))) == ["b0", "past", "stray"]
    assert len(active_pods_for_removal(job, pods, 4)) == 4


# -- policies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("failures", "delay"), [(0, 0), (1, 10), (2, 20), (3, 40), (6, 320), (7, 600), (30, 600)])
def test_failure_backoff_doubles_from_ten_seconds_up_to_the_cap(failures: int, delay: float) -> None:
    assert backoff_delay(failures) == delay


def test_remaining_backoff_counts_from_the_last_failure() -> None:
    assert remaining_backoff(2, NOW, NOW + timedelta(seconds=5)) == 15
    assert remaining_backoff(2, NOW, NOW + timedelta(seconds=25)) == 0
    assert remaining_backoff(0, None, NOW) == 0


def test_backoff_record_counts_failures_since_the_last_success() -> None:
    failed_1 = make_pod("f1", phase="Failed", exit_code=1, finished=NOW)
    failed_2 = make_pod("f2", phase="Failed", exit_code=1, finished=NOW + timedelta(seconds=30))
    succeeded = make_pod("s", phase="Succeeded", exit_code=0, finished=NOW + timedelta(seconds=10))
    record = next_backoff_record(BackoffRecord(), [], [failed_1])
    assert record == BackoffRecord(1, NOW)
    record = next_backoff_record(record, [], [failed_2])
    assert record.failures_after_last_success == 2
    assert next_backoff_record(record, [succeeded], [failed_1, failed_2]) == BackoffRecord(
        1, NOW + timedelta(seconds=30)
    )
    assert next_backoff_record(record, [succeeded], []) == BackoffRecord()


def test_finish_time_falls_back_to_ready_false_then_deletion_then_creation() -> None:
    assert finished_time(make_pod("p", phase="Failed", exit_code=1, finished=NOW)) == NOW
    later = NOW + timedelta(seconds=9)
    not_ready = make_pod(
        "q", phase="Failed", conditions=[{"type": "Ready", "status": "False", "lastTransitionTime": rfc3339(later)}]
    )
    assert finished_time(not_ready) == later
    deleting = make_pod("r", deleting=True)
    deleting["metadata"]["deletionGracePeriodSeconds"] = 30
    assert finished_time(deleting) == NOW - timedelta(seconds=30)
    assert finished_time(make_pod("s", created=later)) == later


POLICY = {
    "rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        {"action": "Count", "onExitCodes": {"operator": "In", "values": [42]}},
        {"action": "FailIndex", "onExitCodes": {"operator": "NotIn", "values": [1, 2, 3, 42]}},
    ]
}


def failed_pod(exit_code: int, container: str = "main", **kwargs: Any) -> dict[str, Any]:
    pod = make_pod("p", phase="Failed", **kwargs)
    pod["status"]["containerStatuses"] = [
        {"name": container, "state": {"terminated": {"exitCode": exit_code, "finishedAt": rfc3339(NOW)}}}
    ]
    return pod


@pytest.mark.parametrize(
    ("pod", "message", "counts", "action"),
    [
        (
            failed_pod(42),
            "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1",
            True,
            "FailJob",
        ),
        (failed_pod(42, container="side"), None, True, "Count"),
        (failed_pod(7), None, True, "FailIndex"),
        (failed_pod(1), None, True, None),
        (failed_pod(0), None, True, None),  # exit code 0 never matches
        (
            failed_pod(42, conditions=[{"type": "DisruptionTarget", "status": "True"}]),
            None,
            False,
            "Ignore",
        ),
    ],
)
def test_pod_failure_policy_applies_the_first_matching_rule(
    pod: dict[str, Any], message: str | None, counts: bool, action: str | None
) -> None:
    match = match_pod_failure_policy(POLICY, pod)
    assert (match.fail_job_message, match.counts, match.action) == (message, counts, action)


def test_pod_failure_policy_reads_init_containers_and_condition_messages() -> None:
    pod = make_pod("p", phase="Failed")
    pod["status"]["initContainerStatuses"] = [{"name": "init", "state": {"terminated": {"exitCode": 5}}}]
    rules = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [5]}}]}
    assert match_pod_failure_policy(rules, pod).fail_job_message == (
        "Container init for pod ns/p failed with exit code 5 matching FailJob rule at index 0"
    )
    by_condition = {"rules": [{"action": "FailJob", "onPodConditions": [{"type": "ConfigIssue"}]}]}
    pod["status"]["conditions"] = [{"type": "ConfigIssue", "status": "True"}]
    assert match_pod_failure_policy(by_condition, pod).fail_job_message == (
        "Pod ns/p has condition ConfigIssue matching FailJob rule at index 0"
    )


@pytest.mark.parametrize(
    ("rules", "succeeded", "message"),
    [
        ([{"succeededIndexes": "0,2"}], "0-2", "Matched rules at index 0"),
        ([{"succeededIndexes": "0,2"}], "0,1", None),
        ([{"succeededIndexes": "0-3", "succeededCount": 2}], "1,3", "Matched rules at index 0"),
        ([{"succeededCount": 5}, {"succeededCount": 2}], "4,5", "Matched rules at index 1"),
        ([{"succeededCount": 1}], "", None),
    ],
)
def test_success_policy_matches_indexes_and_counts(
    rules: list[dict[str, Any]], succeeded: str, message: str | None
) -> None:
    assert match_success_policy({"rules": rules}, 10, Intervals.parse(succeeded, 10)) == message


# -- decisions --------------------------------------------------------------------------------------


def test_ensure_condition_replaces_on_change_and_never_adds_false() -> None:
    conditions: list[dict[str, Any]] = []
    assert not ensure_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", NOW)
    assert ensure_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", NOW)
    assert not ensure_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", NOW)
    later = NOW + timedelta(seconds=5)
    assert ensure_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", later)
    assert conditions == [new_condition("Suspended", "False", "JobResumed", "Job resumed", later)]
    assert set(conditions[0]) == {"type", "status", "lastProbeTime", "lastTransitionTime", "reason", "message"}


@pytest.mark.parametrize(
    ("completions", "parallelism", "succeeded", "active", "want"),
    [
        (5, 2, 0, 0, 2),
        (5, 2, 4, 1, 1),
        (5, 2, 5, 0, 0),
        (None, 3, 0, 0, 3),
        (None, 3, 1, 2, 2),  # a work queue: after a success no new pods, running ones finish
    ],
)
def test_wanted_active_is_parallelism_capped_by_remaining_completions(
    completions: int | None, parallelism: int, succeeded: int, active: int, want: int
) -> None:
    assert wanted_active(make_job(completions=completions, parallelism=parallelism), succeeded, active) == want


@pytest.mark.parametrize(
    ("completions", "succeeded", "active", "done"),
    [(3, 3, 0, True), (3, 3, 1, False), (3, 2, 0, False), (None, 1, 0, True), (None, 1, 1, False), (None, 0, 0, False)],
)
def test_completion_needs_successes_and_no_active_pods(
    completions: int | None, succeeded: int, active: int, done: bool
) -> None:
    assert is_complete(make_job(completions=completions), succeeded, active) is done


def sync_of(job: dict[str, Any], pods: list[dict[str, Any]], now: datetime = NOW, **kwargs: Any) -> Any:
    sync = observe(job, pods, now=now, **kwargs)
    assess_finish(sync)
    return sync


def test_plan_creates_up_to_parallelism_and_deletes_the_surplus() -> None:
    job = make_job(completions=5, parallelism=2)
    assert plan_pods(sync_of(job, [])).create == 2
    assert plan_pods(sync_of(make_job(completions=5, parallelism=2), [make_pod("a")])).create == 1
    status = {"succeeded": 4}
    surplus = sync_of(make_job(completions=5, parallelism=2, status=status), [make_pod("a"), make_pod("b", ready=True)])
    assert names(list(plan_pods(surplus).delete)) == ["a"]


def test_plan_deletes_everything_when_suspended() -> None:
    sync = sync_of(make_job(completions=5, parallelism=2, suspend=True), [make_pod("a"), make_pod("b")])
    assert sorted(names(list(plan_pods(sync).delete))) == ["a", "b"]


def test_plan_waits_out_the_failure_backoff_before_replacing() -> None:
    failed = make_pod("f", phase="Failed", exit_code=1, finished=NOW)
    sync = sync_of(make_job(), [failed], now=NOW + timedelta(seconds=4))
    assert sync.backoff == BackoffRecord(1, NOW)
    assert plan_pods(sync).wait == 6
    later = sync_of(make_job(), [failed], now=NOW + timedelta(seconds=10))
    assert plan_pods(later).create == 1


def test_plan_creates_lowest_missing_indexes() -> None:
    job = make_job(completionMode="Indexed", completions=4, parallelism=3, status={"completedIndexes": "0"})
    plan = plan_pods(sync_of(job, [make_pod("one", index=1)]))
    assert plan.indexes == (2, 3) and plan.create == 2


def test_backoff_limit_exceeded_targets_failure_first() -> None:
    pods = [make_pod(f"f{i}", phase="Failed", exit_code=1) for i in range(3)]
    sync = sync_of(make_job(backoffLimit=2), pods)
    assert sync.failed == 3
    assert sync.finished == new_condition(
        "FailureTarget", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit", NOW
    )


def test_deadline_fails_the_job_or_says_when_to_look_again() -> None:
    started = {"startTime": rfc3339(NOW)}
    job = make_job(activeDeadlineSeconds=30, status=dict(started))
    sync = observe(job, [make_pod("a")], now=NOW + timedelta(seconds=12))
    assert assess_finish(sync) == 18 and sync.finished is None
    job = make_job(activeDeadlineSeconds=30, status=dict(started))
    sync = observe(job, [make_pod("a")], now=NOW + timedelta(seconds=30))
    assess_finish(sync)
    assert sync.finished is not None and sync.finished["reason"] == "DeadlineExceeded"
    assert sync.finished["message"] == "Job was active longer than specified deadline"


def test_existing_failure_target_turns_into_failed() -> None:
    target = new_condition("FailureTarget", "True", "PodFailurePolicy", "why", NOW)
    sync = sync_of(make_job(status={"conditions": [target]}), [])
    assert sync.finished is not None
    assert (sync.finished["type"], sync.finished["reason"], sync.finished["message"]) == (
        "Failed",
        "PodFailurePolicy",
        "why",
    )


def test_fail_job_rule_targets_failure_with_the_rule_message() -> None:
    job = make_job(podFailurePolicy=POLICY, podReplacementPolicy="Failed")
    sync = sync_of(job, [failed_pod(42)])
    assert sync.finished is not None and sync.finished["reason"] == "PodFailurePolicy"
    assert "matching FailJob rule at index 1" in sync.finished["message"]


def test_counting_goes_through_uncounted_before_the_counters() -> None:
    job = make_job(completions=2, parallelism=2)
    done = make_pod("done", phase="Succeeded", exit_code=0)
    sync = sync_of(job, [done, make_pod("running")])
    tracking = track_finished_pods(sync, False)
    assert tracking.needs_flush
    assert names(tracking.remove_finalizer) == ["done"]
    assert job["status"]["uncountedTerminatedPods"] == {"succeeded": ["uid-done"], "failed": []}
    assert "succeeded" not in job["status"]
    # the finalizer came off: the uid moves into the counter, once
    tracking.uids_with_finalizer.discard("uid-done")
    assert settle_uncounted(job["status"], tracking.uids_with_finalizer)
    assert job["status"]["succeeded"] == 1 and job["status"]["uncountedTerminatedPods"]["succeeded"] == []
    assert not settle_uncounted(job["status"], tracking.uids_with_finalizer)


def test_uncounted_pod_already_released_is_counted_without_being_listed_again() -> None:
    # a controller stopped after removing the finalizer but before counting: the next one counts it
    job = make_job(completions=2, parallelism=2, status={"uncountedTerminatedPods": {"succeeded": ["uid-done"]}})
    released = make_pod("done", phase="Succeeded", exit_code=0, finalizer=False)
    sync = sync_of(job, [released])
    assert sync.succeeded == 1
    tracking = track_finished_pods(sync, False)
    assert tracking.remove_finalizer == [] and tracking.needs_flush
    assert job["status"]["succeeded"] == 1
    assert job["status"]["uncountedTerminatedPods"]["succeeded"] == []


def test_success_adds_success_criteria_met_then_complete_when_nothing_is_in_flight() -> None:
    job = make_job(completions=1)
    sync = sync_of(job, [make_pod("done", phase="Succeeded", exit_code=0)])
    assert is_complete(job, sync.succeeded, 0)
    sync.finished = new_condition(
        "SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods", NOW
    )
    tracking = track_finished_pods(sync, False)
    assert [c["type"] for c in job["status"]["conditions"]] == ["SuccessCriteriaMet"]
    assert not enact_finished(sync)  # the pod is still uncounted
    settle_uncounted(job["status"], set())
    sync.terminating = 1
    assert not enact_finished(sync)  # a pod is still terminating
    sync.terminating = 0
    assert enact_finished(sync) and tracking.remove_finalizer
    complete = job["status"]["conditions"][1]
    assert (complete["type"], complete["reason"]) == ("Complete", "CompletionsReached")
    assert job["status"]["completionTime"] == rfc3339(NOW)


def test_failing_job_counts_its_remaining_pods_as_failed() -> None:
    job = make_job(completions=3, parallelism=2, backoffLimit=0)
    sync = sync_of(job, [make_pod("f", phase="Failed", exit_code=1), make_pod("running")])
    tracking = track_finished_pods(sync, False)
    assert sorted(job["status"]["uncountedTerminatedPods"]["failed"]) == ["uid-f", "uid-running"]
    assert sorted(names(tracking.remove_finalizer)) == ["f", "running"]
    assert [c["type"] for c in job["status"]["conditions"]] == ["FailureTarget"]
    assert sync.finished is not None and sync.finished["type"] == "Failed"


def test_indexed_success_is_recorded_in_completed_indexes() -> None:
    job = make_job(completionMode="Indexed", completions=3, parallelism=3, status={"completedIndexes": "0"})
    sync = sync_of(job, [make_pod("two", index=2, phase="Succeeded", exit_code=0)])
    track_finished_pods(sync, False)
    assert job["status"]["completedIndexes"] == "0,2"
    assert job["status"]["succeeded"] == 2


def per_index_job(**spec: Any) -> dict[str, Any]:
    return make_job(completionMode="Indexed", backoffLimitPerIndex=1, backoffLimit=2**31 - 1, **spec)


def failed_at_index(name: str, index: int, failures: int = 0) -> dict[str, Any]:
    pod = make_pod(name, phase="Failed", index=index, exit_code=1, finished=NOW)
    pod["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] = str(failures)
    return pod


def test_per_index_backoff_keeps_the_failed_pod_until_its_replacement_exists() -> None:
    failed = failed_at_index("f0", 0)
    early = sync_of(per_index_job(completions=1), [failed], now=NOW + timedelta(seconds=4))
    assert early.failed_indexes == Intervals() and plan_pods(early).wait == 6
    tracking = track_finished_pods(early, False)
    assert tracking.remove_finalizer == []  # it carries the index's failure count to the replacement
    assert early.job["status"]["failedIndexes"] == ""
    due = sync_of(per_index_job(completions=1), [failed], now=NOW + timedelta(seconds=10))
    plan = plan_pods(due)
    assert (plan.create, plan.indexes, dict(plan.failure_counts)) == (1, (0,), {0: (1, 0)})
    pod = new_pod(due.job, 0, failure_counts=plan.failure_counts[0])
    assert pod["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "1"


def test_index_failing_past_its_limit_is_a_failed_index() -> None:
    sync = sync_of(per_index_job(completions=1), [failed_at_index("f0", 0, failures=1)])
    assert str(sync.failed_indexes) == "0"
    assert sync.finished is not None
    assert (sync.finished["type"], sync.finished["reason"]) == ("FailureTarget", "FailedIndexes")
    track_finished_pods(sync, False)
    assert sync.job["status"]["failedIndexes"] == "0"
    many = sync_of(per_index_job(completions=3, maxFailedIndexes=0), [failed_at_index("f1", 1, failures=1)])
    assert many.finished is not None and many.finished["reason"] == "MaxFailedIndexesExceeded"


def test_success_policy_marks_success_criteria_met() -> None:
    policy = {"rules": [{"succeededIndexes": "0"}]}
    job = make_job(completionMode="Indexed", completions=3, parallelism=3, successPolicy=policy)
    sync = sync_of(job, [make_pod("z", index=0, phase="Succeeded", exit_code=0), make_pod("o", index=1)])
    assert sync.finished is not None
    assert (sync.finished["type"], sync.finished["reason"], sync.finished["message"]) == (
        "SuccessCriteriaMet",
        "SuccessPolicy",
        "Matched rules at index 0",
    )


# -- the controller against a fake API --------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(client: FakeClient, clock: FakeClock, *, batch: float = 0.0) -> AsyncIterator[JobController]:
    """The controller with its informers and event recorder, until the block ends; then checks that
    the controller changed no object in the informer caches."""
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "job-controller", clock=clock)
    controller = JobController(ControllerContext(client, factory, recorder, clock), sync_batch_seconds=batch)
    tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
    try:
        await asyncio.wait_for(factory.wait_for_sync(), 5)
        yield controller
        await idle(controller)
        assert_caches_match_the_api(client, controller)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def assert_caches_match_the_api(client: FakeClient, controller: JobController) -> None:
    """Every cached object equals what the API stored at its resourceVersion: nothing was edited in
    place (objects from a cache are read-only)."""
    for informer, resource in ((controller.jobs, JOBS), (controller.pods, PODS)):
        stored = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in client.objects(resource)}
        for cached in informer.list():
            meta = cached["metadata"]
            current = stored.get((meta["namespace"], meta["name"]))
            if current is not None and current["metadata"]["resourceVersion"] == meta["resourceVersion"]:
                assert cached == current, f"{resource.plural} {meta['name']} was changed in the cache"


async def eventually(check: Callable[[], T | None], *, timeout: float = 5.0) -> T:
    """Yield to the loop until `check()` is truthy (real time, at most `timeout`)."""
    async with asyncio.timeout(timeout):
        while True:
            if result := check():
                return result
            await asyncio.sleep(0.001)


async def idle(controller: JobController) -> None:
    """Until informer events have been handled and no key is queued or being reconciled."""
    queue = controller.queue
    quiet = 0
    async with asyncio.timeout(5):
        while quiet < 3:
            await asyncio.sleep(0.001)
            quiet = quiet + 1 if not len(queue) and not queue.processing() else 0


async def step(controller: JobController, clock: FakeClock, seconds: float) -> None:
    """Move the fake clock once the controller is idle (so every wait it started is registered on
    the clock), then let it work through what came due."""
    await idle(controller)
    await clock.step(seconds)
    await idle(controller)


async def advance_until(controller: JobController, clock: FakeClock, check: Callable[[], T]) -> T:
    """Step the fake clock from one due time to the next until `check()` holds, so a test sees
    the first moment it does."""
    async with asyncio.timeout(5):
        while True:
            await idle(controller)
            if result := check():
                return result
            deadline = clock.next_deadline()
            assert deadline is not None, "nothing is due and the condition does not hold"
            await clock.step(max(0.0, deadline - clock.now()))


def job_pods(client: FakeClient, name: str = "work") -> list[dict[str, Any]]:
    return [
        p
        for p in client.objects(PODS)
        if (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/job-name") == name
    ]


def active_pods(client: FakeClient, name: str = "work") -> list[dict[str, Any]]:
    return [
        p
        for p in job_pods(client, name)
        if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
        and not p["metadata"].get("deletionTimestamp")
    ]


def n_active(client: FakeClient, count: int, name: str = "work") -> list[dict[str, Any]] | None:
    """The Job's active pods once there are exactly `count` of them."""
    found = active_pods(client, name)
    return found if len(found) == count else None


def stored_job(client: FakeClient, name: str = "work") -> dict[str, Any]:
    return next(j for j in client.objects(JOBS) if j["metadata"]["name"] == name)


def condition_types(client: FakeClient, name: str = "work") -> list[str]:
    return [c["type"] for c in stored_job(client, name).get("status", {}).get("conditions", [])]


def events(client: FakeClient) -> list[tuple[str, str, str]]:
    return [(e["type"], e["reason"], e["message"]) for e in client.objects(EVENTS)]


def event_counts(client: FakeClient) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in client.objects(EVENTS):
        counts[event["reason"]] = counts.get(event["reason"], 0) + int(event.get("count") or 1)
    return counts


async def create_job(client: FakeClient, name: str = "work", **spec: Any) -> dict[str, Any]:
    job = make_job(name, **spec)
    for key in ("uid", "generation", "resourceVersion"):
        del job["metadata"][key]
    return await client.create(JOBS, job, NS)


async def kubelet_finish(client: FakeClient, clock: FakeClock, pod: dict[str, Any], *, exit_code: int = 0) -> None:
    """End the pod's container as a node would report it."""
    terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                  "finishedAt": rfc3339(clock.utcnow())}  # fmt: skip
    status = {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": rfc3339(clock.utcnow())}],
        "containerStatuses": [{"name": "c", "ready": False, "restartCount": 0, "state": {"terminated": terminated}}],
    }
    await client.patch(PODS, pod["metadata"]["name"], {"status": status}, NS, subresource="status")


async def test_completions_never_exceed_parallelism_and_end_complete() -> None:
    client, clock = FakeClient(), FakeClock()
    most = 0

    async def watch_active() -> None:
        nonlocal most
        seen: dict[str, bool] = {}
        async for event in client.watch(PODS, NS):
            pod = event.object
            phase = pod.get("status", {}).get("phase")
            live = (
                event.type != "DELETED"
                and phase not in ("Succeeded", "Failed")
                and not pod["metadata"].get("deletionTimestamp")
            )
            seen[pod["metadata"]["name"]] = live
            most = max(most, sum(seen.values()))

    watcher = asyncio.create_task(watch_active())
    try:
        async with running(client, clock):
            await create_job(client, completions=5, parallelism=2)
            for done in range(5):
                # parallelism 2 while at least 2 completions remain, then the last one
                pod = (await eventually(functools.partial(n_active, client, min(2, 5 - done))))[0]
                await kubelet_finish(client, clock, pod)
            await eventually(lambda: "Complete" in condition_types(client))
            await eventually(lambda: ("Normal", "Completed", "Job completed") in events(client))
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert most == 2
    status = stored_job(client)["status"]
    assert status["succeeded"] == 5 and "failed" not in status and "active" not in status
    assert status["ready"] == 0 and status["terminating"] == 0 and status["uncountedTerminatedPods"] == {}
    assert condition_types(client) == ["SuccessCriteriaMet", "Complete"]
    complete = status["conditions"][1]
    assert (complete["reason"], complete["message"]) == (
        "CompletionsReached",
        "Reached expected number of succeeded pods",
    )
    assert status["completionTime"] == complete["lastTransitionTime"] and status["startTime"]
    assert len(job_pods(client)) == 5
    assert all(JOB_TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or ()) for p in job_pods(client))
    created = [e for e in events(client) if e[1] == "SuccessfulCreate"]
    assert len(created) == 5 and created[0][2].startswith("Created pod: work-")


async def test_failing_job_backs_off_between_retries_and_fails_at_the_backoff_limit() -> None:
    client, clock = FakeClient(), FakeClock()
    gaps = []
    async with running(client, clock) as controller:
        await create_job(client, backoffLimit=2)
        for attempt in range(3):
            pod = (await eventually(lambda: active_pods(client)))[0]
            failed_at = clock.now()
            await kubelet_finish(client, clock, pod, exit_code=1)
            if attempt < 2:
                await advance_until(controller, clock, lambda: active_pods(client))
                gaps.append(clock.now() - failed_at)
        await eventually(lambda: "Failed" in condition_types(client))
        await eventually(lambda: "BackoffLimitExceeded" in event_counts(client))
    assert gaps == [pytest.approx(10, abs=0.1), pytest.approx(20, abs=0.1)]
    status = stored_job(client)["status"]
    assert status["failed"] == 3 and "succeeded" not in status and "completionTime" not in status
    assert condition_types(client) == ["FailureTarget", "Failed"]
    failed = status["conditions"][1]
    assert (failed["reason"], failed["message"]) == (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert ("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit") in events(client)
    assert len(job_pods(client)) == 3


async def test_indexed_job_gives_each_pod_its_index() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock):
        await create_job(client, completionMode="Indexed", completions=3, parallelism=3)
        pods = await eventually(lambda: n_active(client, 3))
        indexes = sorted(int(p["metadata"]["annotations"][COMPLETION_INDEX_KEY]) for p in pods)
        assert indexes == [0, 1, 2]
        for pod in pods:
            index = pod["metadata"]["annotations"][COMPLETION_INDEX_KEY]
            assert pod["metadata"]["labels"][COMPLETION_INDEX_KEY] == index
            assert pod["metadata"]["name"].startswith(f"work-{index}-")
            assert pod["spec"]["hostname"] == f"work-{index}"
            assert pod["spec"]["containers"][0]["env"][0]["name"] == "JOB_COMPLETION_INDEX"
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
            await kubelet_finish(client, clock, pod)
        await eventually(lambda: "Complete" in condition_types(client))
    status = stored_job(client)["status"]
    assert status["completedIndexes"] == "0-2" and status["succeeded"] == 3


async def test_failed_index_is_recreated_with_the_same_index() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await create_job(client, completionMode="Indexed", completions=2, parallelism=2)
        pods = await eventually(lambda: n_active(client, 2))
        one = next(p for p in pods if p["metadata"]["annotations"][COMPLETION_INDEX_KEY] == "1")
        await kubelet_finish(client, clock, one, exit_code=1)
        await eventually(lambda: stored_job(client).get("status", {}).get("failed") == 1)
        await step(controller, clock, 10)

        def replacements() -> list[dict[str, Any]]:
            return [
                p
                for p in active_pods(client)
                if p["metadata"]["uid"] != one["metadata"]["uid"]
                and p["metadata"]["annotations"][COMPLETION_INDEX_KEY] == "1"
            ]

        again = await eventually(replacements)
        assert len(again) == 1


async def test_active_deadline_fails_the_job_and_deletes_its_pods() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await create_job(client, completions=4, parallelism=2, activeDeadlineSeconds=30)
        await eventually(lambda: len(active_pods(client)) == 2)
        await step(controller, clock, 29)
        assert "FailureTarget" not in condition_types(client)
        await step(controller, clock, 1)
        await eventually(lambda: "Failed" in condition_types(client))
        await eventually(
            lambda: ("Warning", "DeadlineExceeded", "Job was active longer than specified deadline") in events(client)
        )
    assert job_pods(client) == []  # deleted; their finalizers released them
    status = stored_job(client)["status"]
    assert status["failed"] == 2 and "active" not in status
    assert condition_types(client) == ["FailureTarget", "Failed"]
    assert status["conditions"][1]["reason"] == "DeadlineExceeded"


async def test_suspend_deletes_active_pods_and_resume_restarts_the_clock() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await create_job(client, completions=2, parallelism=2, suspend=True)
        await eventually(lambda: "Suspended" in condition_types(client))
        job = stored_job(client)
        assert job_pods(client) == [] and "startTime" not in job["status"]
        suspended = job["status"]["conditions"][0]
        assert (suspended["status"], suspended["reason"], suspended["message"]) == (
            "True",
            "JobSuspended",
            "Job suspended",
        )

        await step(controller, clock, 60)
        await client.patch(JOBS, "work", {"spec": {"suspend": False}}, NS)
        await eventually(lambda: len(active_pods(client)) == 2)
        await eventually(lambda: stored_job(client)["status"]["conditions"][0]["status"] == "False")
        job = stored_job(client)
        assert job["status"]["conditions"][0]["reason"] == "JobResumed"
        assert job["status"]["startTime"] == rfc3339(clock.utcnow())

        await client.patch(JOBS, "work", {"spec": {"suspend": True}}, NS)
        await eventually(lambda: not job_pods(client))
        await eventually(lambda: stored_job(client)["status"]["conditions"][0]["status"] == "True")
        # the recorder folds a repeated event into its count, as upstream's correlator
        await eventually(lambda: event_counts(client).get("Suspended") == 2)
    assert "failed" not in stored_job(client)["status"]  # pods removed for a suspend are no failures
    counts = event_counts(client)
    assert counts["Resumed"] == 1 and counts["SuccessfulDelete"] == 2


async def test_work_queue_job_completes_when_one_pod_succeeded_and_the_rest_finished() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock):
        await create_job(client, completions=None, parallelism=2)
        first, second = await eventually(lambda: n_active(client, 2))
        await kubelet_finish(client, clock, first)
        await eventually(lambda: stored_job(client)["status"].get("succeeded") == 1)
        assert len(job_pods(client)) == 2 and "Complete" not in condition_types(client)  # no new pod
        await kubelet_finish(client, clock, second)
        await eventually(lambda: "Complete" in condition_types(client))
    assert stored_job(client)["status"]["succeeded"] == 2


async def test_pod_failure_policy_fail_job_fails_at_once() -> None:
    client, clock = FakeClient(), FakeClock()
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    async with running(client, clock):
        await create_job(client, completions=3, parallelism=2, podFailurePolicy=policy, podReplacementPolicy="Failed")
        pod = (await eventually(lambda: n_active(client, 2)))[0]
        await kubelet_finish(client, clock, pod, exit_code=42)
        await eventually(lambda: "Failed" in condition_types(client))
    failed = stored_job(client)["status"]["conditions"][1]
    assert failed["reason"] == "PodFailurePolicy"
    assert failed["message"] == (
        f"Container c for pod ns/{pod['metadata']['name']} failed with exit code 42 matching FailJob rule at index 0"
    )


async def test_tracking_finalizer_is_removed_only_after_the_pod_is_counted() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock):
        await create_job(client, completions=2, parallelism=1)
        pod = (await eventually(lambda: active_pods(client)))[0]
        assert pod["metadata"]["finalizers"] == [JOB_TRACKING_FINALIZER]
        client.clear_actions()
        await kubelet_finish(client, clock, pod)
        await eventually(lambda: stored_job(client)["status"].get("succeeded") == 1)
    uid, name = pod["metadata"]["uid"], pod["metadata"]["name"]

    def first(found: Callable[[Any], bool]) -> int:
        return next(i for i, action in enumerate(client.actions) if found(action))

    listed = first(
        lambda a: (
            a.resource == "jobs"
            and uid in ((a.body or {}).get("status", {}).get("uncountedTerminatedPods") or {}).get("succeeded", ())
        )
    )
    released = first(lambda a: a.verb == "patch" and a.resource == "pods" and a.name == name and not a.subresource)
    counted = first(lambda a: a.resource == "jobs" and (a.body or {}).get("status", {}).get("succeeded") == 1)
    assert listed < released < counted  # uncounted first, then the finalizer, then the counter


class CrashingClient(FakeClient):
    """Fails the first call `crash_on(verb, resource, body)` picks, as a controller dying there would
    leave things."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_on: Callable[[str, str, str | None, Any], bool] | None = None

    def _record(self, verb: str, resource: Any, namespace: str | None, name: str | None = None,
                subresource: str | None = None, body: Any = None) -> None:  # fmt: skip
        super()._record(verb, resource, namespace, name, subresource, body)
        if self.crash_on is not None and self.crash_on(verb, resource.plural, subresource, body):
            self.crash_on = None
            raise ApiError(500, "InternalError", "the controller died here")


@pytest.mark.parametrize("crash", ["finalizer-removal", "counting"])
async def test_restart_mid_job_neither_loses_nor_double_counts(crash: str) -> None:
    client, clock = CrashingClient(), FakeClock()
    async with running(client, clock):
        await create_job(client, completions=3, parallelism=3)
        pods = await eventually(lambda: n_active(client, 3))
        if crash == "finalizer-removal":  # after the uids were written to uncountedTerminatedPods
            client.crash_on = lambda verb, resource, sub, body: verb == "patch" and resource == "pods" and not sub
        else:  # after the finalizers came off, before the counters were written

            def counting(verb: str, resource: str, sub: str | None, body: Any) -> bool:
                status = body["status"] if verb == "update" and resource == "jobs" else {}
                return bool(status.get("succeeded")) and not (status.get("uncountedTerminatedPods") or {}).get(
                    "succeeded"
                )

            client.crash_on = counting
        await kubelet_finish(client, clock, pods[0])
        await kubelet_finish(client, clock, pods[1])
        await eventually(lambda: client.crash_on is None)
    await clock.step(1)  # the new recorder names its events after the wall clock: no clash with the old one's
    # a new controller takes over the same API
    async with running(client, clock):
        await eventually(lambda: stored_job(client)["status"].get("succeeded") == 2)
        await kubelet_finish(client, clock, pods[2])
        await eventually(lambda: "Complete" in condition_types(client))
    status = stored_job(client)["status"]
    assert status["succeeded"] == 3 and status["uncountedTerminatedPods"] == {}
    assert len(job_pods(client)) == 3


async def test_pods_of_a_deleted_job_lose_their_tracking_finalizer() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock):
        await create_job(client, completions=2, parallelism=2)
        await eventually(lambda: len(active_pods(client)) == 2)
        await client.delete(JOBS, "work", NS)
        await eventually(lambda: all(not p["metadata"].get("finalizers") for p in job_pods(client)))


async def test_matching_orphan_pod_is_adopted_tracked_and_counted() -> None:
    client, clock = FakeClient(), FakeClock()
    orphan = {
        "metadata": {"name": "stray", "labels": {"batch.kubernetes.io/job-name": "work"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Running"},
    }
    async with running(client, clock) as controller:
        await client.create(PODS, orphan, NS)
        job = await create_job(client, completions=1, parallelism=1)
        adopted = await eventually(
            lambda: next((p for p in job_pods(client) if p["metadata"].get("ownerReferences")), None)
        )
        await eventually(lambda: JOB_TRACKING_FINALIZER in (job_pods(client)[0]["metadata"].get("finalizers") or ()))
        assert adopted["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
        await idle(controller)
        assert len(job_pods(client)) == 1  # the adopted pod runs the completion: none created
        await kubelet_finish(client, clock, adopted)
        await eventually(lambda: "Complete" in condition_types(client))
    assert stored_job(client)["status"]["succeeded"] == 1
    assert not job_pods(client)[0]["metadata"].get("finalizers")


async def test_orphan_pod_with_a_tracking_finalizer_is_released() -> None:
    client, clock = FakeClient(), FakeClock()
    orphan = {
        "metadata": {"name": "left", "finalizers": [JOB_TRACKING_FINALIZER], "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    async with running(client, clock):
        await client.create(PODS, orphan, NS)
        await eventually(lambda: not client.objects(PODS)[0]["metadata"].get("finalizers"))


async def test_pod_events_are_batched_into_one_sync_per_second() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock, batch=1.0) as controller:
        await create_job(client, completions=2, parallelism=1)
        pod = (await eventually(lambda: active_pods(client)))[0]
        await kubelet_finish(client, clock, pod)
        await idle(controller)
        assert "succeeded" not in stored_job(client)["status"]  # waiting for the batch period
        await step(controller, clock, 1)
        await eventually(lambda: stored_job(client)["status"].get("succeeded") == 1)
