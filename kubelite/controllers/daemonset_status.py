"""The status a DaemonSet reports (upstream updateDaemonSetStatus / storeDaemonSetStatus).

Pure functions: per-node eligibility and the DaemonSet's pods grouped by node in, counts and the
status to store out; the controller writes it through the `status` subresource only when it
changed.  Counts are taken over existing nodes: a node that should run a daemon counts as
desired, as current when it has a pod, and its oldest pod (scheduled first) decides ready,
available (ready for minReadySeconds) and updated; pods on nodes that should not run one are
misscheduled.  Wire shape as apps/v1: desiredNumberScheduled, currentNumberScheduled,
numberMisscheduled and numberReady always present, the other counts and observedGeneration left
out when 0; fields this module does not compute (collisionCount, conditions) are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from kubelite.controllers.daemonset_placement import Eligibility
from kubelite.controllers.daemonset_update import by_age, is_pod_updated
from kubelite.controllers.podutil import is_available, is_ready

Pod = dict[str, Any]
Obj = Mapping[str, Any]


_COUNTS = (
    "desiredNumberScheduled",
    "currentNumberScheduled",
    "numberMisscheduled",
    "numberReady",
    "updatedNumberScheduled",
    "numberAvailable",
    "numberUnavailable",
)
_ALWAYS_PRESENT = ("desiredNumberScheduled", "currentNumberScheduled", "numberMisscheduled", "numberReady")


def status_counts(
    node_names: Iterable[str],
    eligibility: Mapping[str, Eligibility],
    node_pods: Mapping[str, Sequence[Pod]],
    *,
    hash_value: str,
    generation: int | None,
    min_ready: int,
    now: datetime,
) -> dict[str, int]:
    """The DaemonSet's counts: over existing nodes that should run a pod, those with one, its
    oldest pod ready, available, updated; pods on nodes that should not run one are misscheduled."""
    desired = current = misscheduled = ready = updated = available = 0
    for node in node_names:
        pods = node_pods.get(node) or ()
        if not eligibility[node].should_run:
            misscheduled += 1 if pods else 0
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        first = by_age(pods)[0]
        if is_ready(first):
            ready += 1
            available += 1 if is_available(first, min_ready, now) else 0
        updated += 1 if is_pod_updated(first, hash_value, generation) else 0
    return {
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
    }


def next_status(daemonset: Obj, counts: Mapping[str, int], *, observed_generation: int | None = None) -> dict[str, Any]:
    """The status to store: the current one (collisionCount, conditions kept) with `counts`, in
    the wire shape (the four always-present counts written even when 0, the others left out when
    0), and `observedGeneration` set when given (a sync that did not act on the spec keeps the old
    one)."""
    status = dict(daemonset.get("status") or {})
    for name in _COUNTS:
        value = int(counts.get(name, 0))
        if value or name in _ALWAYS_PRESENT:
            status[name] = value
        else:
            status.pop(name, None)
    if observed_generation:
        status["observedGeneration"] = observed_generation
    return status


def status_changed(daemonset: Obj, status: Mapping[str, Any]) -> bool:
    """Whether `status` says anything the stored one does not (a missing count equals 0)."""
    current = dict(daemonset.get("status") or {})
    wanted = dict(status)
    for name in (*_COUNTS, "observedGeneration"):
        if not current.get(name):
            current.pop(name, None)
        if not wanted.get(name):
            wanted.pop(name, None)
    return current != wanted


__all__ = ["next_status", "status_changed", "status_counts"]
