"""Deployment conditions and rollout progress (upstream's progress.go and the condition helpers).

`Progressing` tells `kubectl rollout status` where a rollout is:

* True/`NewReplicaSetCreated`, `FoundNewReplicaSet`, `ReplicaSetUpdated` — moving; the last update
  time is when progress was last seen;
* True/`NewReplicaSetAvailable` — done (`ReplicaSet "x" has successfully progressed.`);
* False/`ProgressDeadlineExceeded` — no progress for `progressDeadlineSeconds`; kubectl reports
  "exceeded its progress deadline".  It stays until a new rollout starts;
* Unknown/`DeploymentPaused` and `DeploymentResumed` — a pause, so the time paused never counts
  toward the deadline.

`Available` is True/`MinimumReplicasAvailable` while at least `replicas - maxUnavailable` pods are
available, else False/`MinimumReplicasUnavailable`.

A deadline is checked without polling: when a sync changes nothing, `requeue_after` says when the
deadline would pass and the controller looks again then.

All functions are pure; the ones that build a status return a new dict and never change the
Deployment they read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from kubelite.controllers.deployment.util import (
    generation,
    has_progress_deadline,
    max_unavailable,
    progress_deadline_seconds,
    replicas,
    status_count,
)
from kubelite.machinery.meta import deep_copy, name_of, parse_time, rfc3339

AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"

MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
REPLICA_SET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"


# -- conditions ------------------------------------------------------------------------------------


def new_condition(kind: str, status: str, reason: str, message: str, now: datetime) -> dict[str, Any]:
    stamp = rfc3339(now)
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def get_condition(status: Mapping[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for cond in (status or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return dict(cond)
    return None


def set_condition(status: dict[str, Any], condition: dict[str, Any]) -> None:
    """Put `condition` in `status` (SetDeploymentCondition): nothing changes when one with the same
    status and reason is there; the transition time is kept while the status stays the same; the
    new condition goes last."""
    current = get_condition(status, condition["type"])
    if current is not None and current.get("status") == condition["status"]:
        if current.get("reason") == condition["reason"]:
            return
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    kept = [c for c in status.get("conditions") or () if c.get("type") != condition["type"]]
    status["conditions"] = [*kept, condition]


def remove_condition(status: dict[str, Any], kind: str) -> None:
    kept = [c for c in status.get("conditions") or () if c.get("type") != kind]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


# -- the three questions about progress ------------------------------------------------------------


def deployment_complete(deployment: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Every replica is updated and available, no old one is left, and the spec was observed."""
    want = replicas(deployment)
    return (
        int(status.get("updatedReplicas") or 0) == want
        and int(status.get("replicas") or 0) == want
        and int(status.get("availableReplicas") or 0) == want
        and int(status.get("observedGeneration") or 0) >= generation(deployment)
    )


def deployment_progressing(deployment: Mapping[str, Any], new_status: Mapping[str, Any]) -> bool:
    """Something moved since the Deployment's recorded status: more updated, ready or available
    pods, or fewer old ones."""
    old = deployment.get("status") or {}

    def count(status: Mapping[str, Any], field: str) -> int:
        return int(status.get(field) or 0)

    old_olds = count(old, "replicas") - count(old, "updatedReplicas")
    new_olds = count(new_status, "replicas") - count(new_status, "updatedReplicas")
    return (
        count(new_status, "updatedReplicas") > count(old, "updatedReplicas")
        or new_olds < old_olds
        or count(new_status, "readyReplicas") > count(old, "readyReplicas")
        or count(new_status, "availableReplicas") > count(old, "availableReplicas")
    )


def deployment_timed_out(deployment: Mapping[str, Any], new_status: Mapping[str, Any], now: datetime) -> bool:
    """No progress for `progressDeadlineSeconds` since the Progressing condition last moved.  A
    completed rollout never times out; a timed-out one stays timed out."""
    if not has_progress_deadline(deployment):
        return False
    cond = get_condition(new_status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = _time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + timedelta(seconds=progress_deadline_seconds(deployment)) < now


def _time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return parse_time(str(text))
    except ValueError:
        return None


# -- status ----------------------------------------------------------------------------------------


def calculate_status(
    all_rss: Sequence[Mapping[str, Any] | None],
    new_rs: Mapping[str, Any] | None,
    deployment: Mapping[str, Any],
    *,
    now: datetime,
) -> dict[str, Any]:
    """The Deployment's status from its ReplicaSets (calculateStatus): counts, the kept conditions
    and the `Available` condition.  Zero counts are left out, as the API serializes them."""
    rss = [rs for rs in all_rss if rs is not None]
    available = sum(status_count(rs, "availableReplicas") for rs in rss)
    total = sum(replicas(rs) for rs in rss)
    counts = {
        "observedGeneration": generation(deployment),
        "replicas": sum(status_count(rs, "replicas") for rs in rss),
        "updatedReplicas": status_count(new_rs, "replicas") if new_rs is not None else 0,
        "readyReplicas": sum(status_count(rs, "readyReplicas") for rs in rss),
        "availableReplicas": available,
        "unavailableReplicas": max(total - available, 0),
    }
    status: dict[str, Any] = {k: v for k, v in counts.items() if v}
    old = deployment.get("status") or {}
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    if available >= replicas(deployment) - max_unavailable(deployment):
        cond = new_condition(AVAILABLE, "True", MINIMUM_REPLICAS_AVAILABLE, "Deployment has minimum availability.", now)
    else:
        cond = new_condition(
            AVAILABLE, "False", MINIMUM_REPLICAS_UNAVAILABLE, "Deployment does not have minimum availability.", now
        )
    set_condition(status, cond)
    return status


def rollout_status(
    all_rss: Sequence[Mapping[str, Any] | None],
    new_rs: Mapping[str, Any] | None,
    deployment: Mapping[str, Any],
    *,
    now: datetime,
) -> dict[str, Any]:
    """The status a rollout step leaves (syncRolloutStatus): `calculate_status` plus the
    `Progressing` verdict and the new (else any) ReplicaSet's `ReplicaFailure` condition."""
    status = calculate_status(all_rss, new_rs, deployment, now=now)
    if not has_progress_deadline(deployment):
        remove_condition(status, PROGRESSING)
    current = get_condition(deployment.get("status"), PROGRESSING)
    finished = (
        int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
        and current is not None
        and current.get("reason") == NEW_RS_AVAILABLE
    )
    if has_progress_deadline(deployment) and not finished:
        _estimate_progress(status, deployment, new_rs, current, now)
    failures = replica_failures(all_rss, new_rs)
    if failures:
        set_condition(status, failures[0])
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def _estimate_progress(
    status: dict[str, Any],
    deployment: Mapping[str, Any],
    new_rs: Mapping[str, Any] | None,
    current: Mapping[str, Any] | None,
    now: datetime,
) -> None:
    if new_rs is not None:
        subject = f'ReplicaSet "{name_of(dict(new_rs))}"'
    else:
        subject = f'Deployment "{name_of(dict(deployment))}"'
    if deployment_complete(deployment, status):
        message = f"{subject} has successfully progressed."
        set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now))
    elif deployment_progressing(deployment, status):
        # progress moves lastUpdateTime even when the reason stays, so replace rather than set
        cond = new_condition(PROGRESSING, "True", REPLICA_SET_UPDATED, f"{subject} is progressing.", now)
        if current is not None:
            if current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime")
            remove_condition(status, PROGRESSING)
        set_condition(status, cond)
    elif deployment_timed_out(deployment, status, now):
        message = f"{subject} has timed out progressing."
        set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT, message, now))


def replica_failures(
    all_rss: Sequence[Mapping[str, Any] | None], new_rs: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """`ReplicaFailure` conditions of the new ReplicaSet, else of any, as Deployment conditions."""

    def of(rs: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        found = []
        for cond in ((rs or {}).get("status") or {}).get("conditions") or ():
            if cond.get("type") == REPLICA_FAILURE:
                found.append(
                    {
                        "type": REPLICA_FAILURE,
                        "status": cond.get("status"),
                        "lastUpdateTime": cond.get("lastTransitionTime"),
                        "lastTransitionTime": cond.get("lastTransitionTime"),
                        "reason": cond.get("reason"),
                        "message": cond.get("message"),
                    }
                )
        return found

    if new_rs is not None and (mine := of(new_rs)):
        return mine
    return [cond for rs in all_rss for cond in of(rs)]


def requeue_after(deployment: Mapping[str, Any], new_status: Mapping[str, Any], now: datetime) -> float | None:
    """When to look at a Deployment whose sync changed nothing, to catch its progress deadline
    (requeueStuckDeployment): None for no need, 0 for "soon" (the deadline is under a second
    away), else the seconds until the deadline plus one (timestamps have second precision)."""
    cond = get_condition(new_status, PROGRESSING)
    if not has_progress_deadline(deployment) or cond is None:
        return None
    if deployment_complete(deployment, new_status) or cond.get("reason") == TIMED_OUT:
        return None
    since = _time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    after = (since + timedelta(seconds=progress_deadline_seconds(deployment)) - now).total_seconds()
    if after < 1:
        return 0.0
    return after + 1


def paused_status(deployment: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """The status to write when the Deployment was paused or resumed since its Progressing
    condition last said so (checkPausedConditions); None when nothing is to be written.  A
    timed-out rollout keeps its ProgressDeadlineExceeded condition."""
    if not has_progress_deadline(deployment):
        return None
    current = get_condition(deployment.get("status"), PROGRESSING)
    if current is not None and current.get("reason") == TIMED_OUT:
        return None
    paused_recorded = current is not None and current.get("reason") == PAUSED
    paused = bool((deployment.get("spec") or {}).get("paused"))
    if paused and not paused_recorded:
        cond = new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now)
    elif not paused and paused_recorded:
        cond = new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now)
    else:
        return None
    status = deep_copy(dict(deployment.get("status") or {}))
    set_condition(status, cond)
    return status


__all__ = [
    "AVAILABLE",
    "FAILED_RS_CREATE",
    "FOUND_NEW_RS",
    "MINIMUM_REPLICAS_AVAILABLE",
    "MINIMUM_REPLICAS_UNAVAILABLE",
    "NEW_RS_AVAILABLE",
    "NEW_RS_CREATED",
    "PAUSED",
    "PROGRESSING",
    "REPLICA_FAILURE",
    "REPLICA_SET_UPDATED",
    "RESUMED",
    "TIMED_OUT",
    "calculate_status",
    "deployment_complete",
    "deployment_progressing",
    "deployment_timed_out",
    "get_condition",
    "new_condition",
    "paused_status",
    "remove_condition",
    "replica_failures",
    "requeue_after",
    "rollout_status",
    "set_condition",
]
