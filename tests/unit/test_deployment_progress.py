"""Deployment status and conditions: counts, Available, Progressing (progress, completion, the
deadline), pause/resume, ReplicaSet failures and when to look again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubelite.controllers.deployment.progress import (
    calculate_status,
    get_condition,
    new_condition,
    paused_status,
    requeue_after,
    rollout_status,
    set_condition,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
EARLIER = "2026-01-01T11:00:00Z"


def deployment(
    replicas: int = 3, *, status: dict[str, Any] | None = None, deadline: int | None = 600, generation: int = 1
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
    }
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    return {"metadata": {"name": "web", "generation": generation}, "spec": spec, "status": status or {}}


def rs(name: str, spec: int, actual: int, ready: int, available: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"replicas": spec},
        "status": {"replicas": actual, "readyReplicas": ready, "availableReplicas": available},
    }


def progressing(reason: str, *, status: str = "True", at: str = EARLIER) -> dict[str, Any]:
    return {
        "type": "Progressing",
        "status": status,
        "lastUpdateTime": at,
        "lastTransitionTime": at,
        "reason": reason,
        "message": "m",
    }


def test_status_counts_and_available_condition() -> None:
    new, old = rs("new", 2, 2, 2, 1), rs("old", 2, 2, 2, 2)
    status = calculate_status([old, new], new, deployment(3), now=NOW)
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 1,
        "replicas": 4,
        "updatedReplicas": 2,
        "readyReplicas": 4,
        "availableReplicas": 3,
        "unavailableReplicas": 1,
    }
    (available,) = status["conditions"]
    assert available == {
        "type": "Available",
        "status": "True",
        "lastUpdateTime": "2026-01-01T12:00:00Z",
        "lastTransitionTime": "2026-01-01T12:00:00Z",
        "reason": "MinimumReplicasAvailable",
        "message": "Deployment has minimum availability.",
    }


def test_zero_counts_are_left_out_and_collision_count_kept() -> None:
    status = calculate_status([None], None, deployment(0, status={"collisionCount": 2}), now=NOW)
    assert {k for k in status if k != "conditions"} == {"observedGeneration", "collisionCount"}


def test_available_false_below_the_minimum() -> None:
    new = rs("new", 3, 3, 1, 1)
    cond = get_condition(calculate_status([new], new, deployment(3), now=NOW), "Available")
    assert cond is not None
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "False",
        "MinimumReplicasUnavailable",
        "Deployment does not have minimum availability.",
    )


def test_set_condition_keeps_transition_time_while_status_is_unchanged() -> None:
    status: dict[str, Any] = {"conditions": [progressing("NewReplicaSetCreated")]}
    set_condition(status, new_condition("Progressing", "True", "ReplicaSetUpdated", "moving", NOW))
    (cond,) = status["conditions"]
    assert (cond["reason"], cond["lastTransitionTime"], cond["lastUpdateTime"]) == (
        "ReplicaSetUpdated",
        EARLIER,
        "2026-01-01T12:00:00Z",
    )
    set_condition(status, new_condition("Progressing", "True", "ReplicaSetUpdated", "other", NOW + timedelta(1)))
    assert status["conditions"][0]["message"] == "moving"  # same status and reason: untouched


def test_complete_rollout_reports_new_replica_set_available() -> None:
    new = rs("web-abc", 3, 3, 3, 3)
    d = deployment(3, status={"conditions": [progressing("ReplicaSetUpdated")]})
    cond = get_condition(rollout_status([new], new, d, now=NOW), "Progressing")
    assert cond is not None
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "True",
        "NewReplicaSetAvailable",
        'ReplicaSet "web-abc" has successfully progressed.',
    )


def test_progress_refreshes_the_update_time_but_not_the_transition_time() -> None:
    new, old = rs("web-abc", 2, 2, 2, 2), rs("old", 2, 2, 2, 2)
    before = {"replicas": 4, "updatedReplicas": 1, "conditions": [progressing("ReplicaSetUpdated")]}
    status = rollout_status([old, new], new, deployment(3, status=before), now=NOW)
    cond = get_condition(status, "Progressing")
    assert cond is not None
    assert (cond["reason"], cond["message"]) == ("ReplicaSetUpdated", 'ReplicaSet "web-abc" is progressing.')
    assert (cond["lastUpdateTime"], cond["lastTransitionTime"]) == ("2026-01-01T12:00:00Z", EARLIER)


def test_no_progress_past_the_deadline_times_out() -> None:
    new, old = rs("web-abc", 2, 2, 0, 0), rs("old", 2, 2, 2, 2)
    counts = {"replicas": 4, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}
    stuck = deployment(3, status={**counts, "conditions": [progressing("ReplicaSetUpdated")]}, deadline=60)
    cond = get_condition(rollout_status([old, new], new, stuck, now=NOW), "Progressing")
    assert cond is not None
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "False",
        "ProgressDeadlineExceeded",
        'ReplicaSet "web-abc" has timed out progressing.',
    )
    waiting = deployment(3, status={**counts, "conditions": [progressing("ReplicaSetUpdated")]}, deadline=7200)
    cond = get_condition(rollout_status([old, new], new, waiting, now=NOW), "Progressing")
    assert cond is not None and cond["reason"] == "ReplicaSetUpdated"


def test_without_deadline_there_is_no_progressing_condition() -> None:
    new = rs("new", 1, 1, 1, 1)
    d = deployment(1, status={"conditions": [progressing("ReplicaSetUpdated")]}, deadline=2**31 - 1)
    assert get_condition(rollout_status([new], new, d, now=NOW), "Progressing") is None


def test_replica_failure_of_the_new_replica_set_is_reported_and_cleared() -> None:
    new = rs("new", 1, 0, 0, 0)
    failure = {
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": "quota",
        "lastTransitionTime": EARLIER,
    }
    new["status"]["conditions"] = [failure]
    status = rollout_status([new], new, deployment(1), now=NOW)
    cond = get_condition(status, "ReplicaFailure")
    assert cond is not None and (cond["reason"], cond["lastUpdateTime"]) == ("FailedCreate", EARLIER)
    new["status"]["conditions"] = []
    assert (
        get_condition(rollout_status([new], new, {**deployment(1), "status": status}, now=NOW), "ReplicaFailure")
        is None
    )


@pytest.mark.parametrize(
    ("cond", "complete", "expected"),
    [
        (None, False, None),
        (progressing("ReplicaSetUpdated", at="2026-01-01T11:58:00Z"), False, 481.0),  # 600 s after 11:58, +1
        (progressing("ReplicaSetUpdated", at="2026-01-01T11:50:00Z"), False, 0.0),  # deadline now: soon
        (progressing("ProgressDeadlineExceeded", status="False"), False, None),
        (progressing("NewReplicaSetAvailable"), True, None),
    ],
)
def test_requeue_after_waits_for_the_deadline(
    cond: dict[str, Any] | None, complete: bool, expected: float | None
) -> None:
    d = deployment(3)
    status: dict[str, Any] = {"conditions": [cond] if cond else []}
    if complete:
        status.update(replicas=3, updatedReplicas=3, availableReplicas=3, observedGeneration=1)
    assert requeue_after(d, status, NOW) == expected


def test_pause_and_resume_are_recorded_once_and_never_hide_a_timeout() -> None:
    d = deployment(3, status={"conditions": [progressing("ReplicaSetUpdated")]})
    d["spec"]["paused"] = True
    paused = paused_status(d, NOW)
    assert paused is not None
    cond = get_condition(paused, "Progressing")
    assert cond is not None and (cond["status"], cond["reason"], cond["message"]) == (
        "Unknown",
        "DeploymentPaused",
        "Deployment is paused",
    )
    assert paused_status({**d, "status": paused}, NOW) is None
    resumed = paused_status({**d, "spec": {**d["spec"], "paused": False}, "status": paused}, NOW)
    cond = get_condition(resumed, "Progressing")
    assert cond is not None and (cond["reason"], cond["message"]) == ("DeploymentResumed", "Deployment is resumed")
    timed_out = {**d, "status": {"conditions": [progressing("ProgressDeadlineExceeded", status="False")]}}
    assert paused_status(timed_out, NOW) is None
