"""Taint and toleration helpers shared by the node lifecycle and taint eviction controllers.

Pure functions over plain dicts; upstream's names: `node.kubernetes.io/*` taint keys
(k8s.io/api/core/v1 well_known_taints.go) and the NoExecute toleration arithmetic of
pkg/controller/tainteviction (GetMatchingTolerations, getMinTolerationTime).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubelite.controllers.daemonset_placement import tolerates
from kubelite.controllers.podutil import NODE_NAME_INDEX, pod_node_index

Obj = Mapping[str, Any]

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure"
TAINT_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"
NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"
def taints_of(node: Obj | None, effect: str | None = None) -> list[dict[str, Any]]:
    taints = [t for t in ((node or {}).get("spec") or {}).get("taints") or () if isinstance(t, dict)]
    return [t for t in taints if effect is None or t.get("effect") == effect]


def same_taint(a: Obj, b: Obj) -> bool:
    """Upstream Taint.MatchTaint: taints are unique by key and effect."""
    return (a.get("key") or "") == (b.get("key") or "") and (a.get("effect") or "") == (b.get("effect") or "")


def matching_tolerations(taints: Iterable[Obj], tolerations: Sequence[Obj]) -> tuple[bool, list[Obj]]:
    """(every taint is tolerated, the tolerations that tolerate some taint) — GetMatchingTolerations."""
    used: list[Obj] = []
    for taint in taints:
        found = [t for t in tolerations if tolerates(t, taint)]
        if not found:
            return False, []
        used.extend(t for t in found if t not in used)
    return True, used


def min_toleration_seconds(tolerations: Iterable[Obj]) -> float | None:
    """The shortest `tolerationSeconds` (negative counts as 0); None when every toleration is forever."""
    found: float | None = None
    for toleration in tolerations:
        seconds = toleration.get("tolerationSeconds")
        if seconds is None:
            continue
        seconds = max(0.0, float(seconds))
        if found is None or seconds < found:
            found = seconds
    return found


def eviction_delay(node_taints: Iterable[Obj], tolerations: Sequence[Obj]) -> float | None:
    """Seconds until a pod with `tolerations` must leave a node with `node_taints`.

    None: nothing to do (no NoExecute taint, or every one tolerated forever); 0: at once (a NoExecute
    taint is not tolerated); otherwise the smallest tolerationSeconds among the tolerations used."""
    taints = [t for t in node_taints if t.get("effect") == NO_EXECUTE]
    if not taints:
        return None
    all_tolerated, used = matching_tolerations(taints, tolerations)
    if not all_tolerated:
        return 0.0
    return min_toleration_seconds(used)


__all__ = [
    "NODE_NAME_INDEX",
    "NO_EXECUTE",
    "NO_SCHEDULE",
    "TAINT_NOT_READY",
    "TAINT_UNREACHABLE",
    "TAINT_UNSCHEDULABLE",
    "eviction_delay",
    "matching_tolerations",
    "min_toleration_seconds",
    "pod_node_index",
    "same_taint",
    "taints_of",
]
