"""The status a ReplicaSet or ReplicationController reports, computed from the pods it owns
(upstream's calculateStatus and the ReplicaFailure condition helpers in pkg/controller/replicaset).

Pure functions: observed state in, a status dict out.  The shell writes it through the `status`
subresource only when it differs from what the object already says.

Wire shape (apps/v1 ReplicaSetStatus and core/v1 ReplicationControllerStatus are the same):
`replicas` is always present; `fullyLabeledReplicas`, `readyReplicas`, `availableReplicas` and
`observedGeneration` are left out when zero, `conditions` when empty (their `omitempty`).  Status
fields this module does not know are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubelite.controllers.podutil import is_available, is_ready, seconds_until_available
from kubelite.machinery.meta import rfc3339
from kubelite.machinery.selectors import selector_from_set

REPLICA_FAILURE = "ReplicaFailure"
FAILED_CREATE = "FailedCreate"
FAILED_DELETE = "FailedDelete"

_COUNTS = ("fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration")


@dataclass(frozen=True)
class ReplicaFailure:
    """Creating or deleting pods failed during a sync: the `ReplicaFailure` condition's reason
    (`FailedCreate`/`FailedDelete`) and message (the error's text), plus the error itself so the
    shell can re-raise it for a retry with back-off."""

    reason: str
    message: str
    error: BaseException | None = field(default=None, compare=False)


def min_ready_seconds(owner: Mapping[str, Any]) -> int:
    return int((owner.get("spec") or {}).get("minReadySeconds") or 0)


def calculate_status(
    owner: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    failure: ReplicaFailure | None,
) -> dict[str, Any]:
    """The status `owner` should report for its active, owned `pods`.

    `fullyLabeledReplicas` counts pods carrying every label of the pod template (they may have
    more); `availableReplicas` counts pods ready for `spec.minReadySeconds` at `now`.  The
    `ReplicaFailure` condition is added when a sync failed and the object has none yet (an
    existing one is kept as it is, first failure wins), and removed by any sync that did not fail.
    `observedGeneration` is the generation this status was computed from.
    """
    status: dict[str, Any] = dict(owner.get("status") or {})
    template_labels = ((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}
    fully_labeled = selector_from_set(template_labels.get("labels"))
    wait = min_ready_seconds(owner)
    counts = {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(1 for p in pods if fully_labeled.matches(_labels(p))),
        "readyReplicas": sum(1 for p in pods if is_ready(p)),
        "availableReplicas": sum(1 for p in pods if is_available(p, wait, now)),
        "observedGeneration": int((owner.get("metadata") or {}).get("generation") or 0),
    }
    for name, value in counts.items():
        if value or name == "replicas":
            status[name] = value
        else:
            status.pop(name, None)

    conditions = [dict(c) for c in status.get("conditions") or ()]
    has_failure = any(c.get("type") == REPLICA_FAILURE for c in conditions)
    if failure is not None and not has_failure:
        conditions.append(
            {
                "type": REPLICA_FAILURE,
                "status": "True",
                "lastTransitionTime": rfc3339(now),
                "reason": failure.reason,
                "message": failure.message,
            }
        )
    elif failure is None and has_failure:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    return status


def status_changed(owner: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether `status` says anything the stored object does not (a zero count written out
    explicitly by someone else counts as the same as a missing one)."""
    current = dict(owner.get("status") or {})
    for name in _COUNTS:
        if not current.get(name):
            current.pop(name, None)
    if not current.get("conditions"):
        current.pop("conditions", None)
    current.setdefault("replicas", 0)
    return current != dict(status)


def next_availability_check(pods: Sequence[Mapping[str, Any]], min_ready: int, now: datetime) -> float | None:
    """Seconds until the first ready-but-not-yet-available pod becomes available (when the status
    must be computed again), or None when no pod is waiting for `minReadySeconds`."""
    waits = [
        left for pod in pods if is_ready(pod) and (left := seconds_until_available(pod, min_ready, now)) is not None
    ]
    return min(waits) if waits else None


def _labels(pod: Mapping[str, Any]) -> Mapping[str, str]:
    return (pod.get("metadata") or {}).get("labels") or {}


__all__ = [
    "FAILED_CREATE",
    "FAILED_DELETE",
    "REPLICA_FAILURE",
    "ReplicaFailure",
    "calculate_status",
    "min_ready_seconds",
    "next_availability_check",
    "status_changed",
]
