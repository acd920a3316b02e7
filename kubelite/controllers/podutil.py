"""Pure facts about pods that several controllers need: active, ready, available, and which pods to
delete first when scaling down (upstream's ActivePodsWithRanks order)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kubelite.machinery.meta import parse_time

POD_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def deletion_cost(pod: Mapping[str, Any]) -> int:
    """The pod-deletion-cost annotation (cheaper pods go first); 0 when absent or not an int32, as upstream."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(POD_DELETION_COST)
    try:
        cost = int(value) if value is not None else 0
    except ValueError:
        return 0
    return cost if -(2**31) <= cost < 2**31 else 0


def is_terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_terminating(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_active(pod: Mapping[str, Any]) -> bool:
    """Counts toward a controller's replicas: not finished and not being deleted."""
    return not is_terminal(pod) and not is_terminating(pod)


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return cond
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    cond = condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def ready_since(pod: Mapping[str, Any]) -> datetime | None:
    """When the pod last became Ready, or None while it is not ready."""
    cond = condition(pod, "Ready")
    if not cond or cond.get("status") != "True":
        return None
    stamp = cond.get("lastTransitionTime")
    return parse_time(stamp) if stamp else None


def is_available(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime) -> bool:
    """Ready for at least `min_ready_seconds` (upstream's IsPodAvailable)."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


def seconds_until_available(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime) -> float | None:
    """For a ready pod not yet available: how long until it is (to requeue then); else None."""
    since = ready_since(pod)
    if since is None or min_ready_seconds <= 0:
        return None
    left = min_ready_seconds - (now - since).total_seconds()
    return left if left > 0 else None


def restart_count(pod: Mapping[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _creation(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("creationTimestamp") or "")


def deletion_order(pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods sorted so that the ones to delete first come first (upstream ActivePodsWithRanks, with
    each pod's rank the number of the controller's pods sharing its node):

    unassigned before assigned; Pending before Unknown before Running; not ready before ready;
    lower pod-deletion-cost first; more pods on the same node first; ready more recently first;
    more restarts first; newer first.
    """
    pods = list(pods)
    per_node: dict[str, int] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        per_node[node] = per_node.get(node, 0) + 1

    def key(pod: dict[str, Any]) -> tuple[Any, ...]:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        ready = is_ready(pod)
        since = ready_since(pod)
        return (
            1 if node else 0,
            POD_PHASE_RANK.get(phase, 0),
            1 if ready else 0,
            deletion_cost(pod),
            -per_node.get(node, 0) if node else 0,
            _negated_text(since.isoformat()) if ready and since else "",
            -restart_count(pod),
            _negated_text(_creation(pod)),
        )

    return sorted(pods, key=key)


def _negated_text(text: str) -> tuple[int, ...]:
    """Sorts timestamps newest first inside an ascending sort."""
    return tuple(-ord(ch) for ch in text)


__all__ = [
    "condition",
    "deletion_cost",
    "deletion_order",
    "is_active",
    "is_available",
    "is_ready",
    "is_terminal",
    "is_terminating",
    "ready_since",
    "restart_count",
    "seconds_until_available",
]


# The pods-by-node index every controller shares on the pod informer: one function object, so the
# informer accepts it from each of them (an index name may only ever mean one function).
NODE_NAME_INDEX = "spec.nodeName"


def pod_node_index(pod: dict[str, Any]) -> list[str]:
    """Index function: the node a pod is bound to."""
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []
