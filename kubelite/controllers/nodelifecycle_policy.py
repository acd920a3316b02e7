"""The node lifecycle controller's decisions, as pure functions (upstream pkg/controller/nodelifecycle).

* `stale_conditions`: a node whose heartbeats (Lease renewals, status posts) stopped for longer than
  the grace period gets Ready, MemoryPressure, DiskPressure and PIDPressure set to Unknown — reason
  `NodeStatusUnknown`, message "Kubelet stopped posting node status." (or `NodeStatusNeverUpdated`,
  "Kubelet never posted node status." for a condition it never posted).
* `no_schedule_taints`: TaintNodesByCondition — the NoSchedule taints the conditions and
  `spec.unschedulable` call for, among the keys this controller owns.
* `zone_state` / `eviction_rate`: the disruption modes of the (single) zone and the rate at which
  NoExecute taints may be added in each.
* `no_execute_plan`: which NoExecute taint a node should carry, and whether the change may be made at
  once (swaps and removals) or must go through the rate-limited queue (additions).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubelite.controllers.taints import (
    NO_EXECUTE,
    NO_SCHEDULE,
    TAINT_DISK_PRESSURE,
    TAINT_MEMORY_PRESSURE,
    TAINT_NETWORK_UNAVAILABLE,
    TAINT_NOT_READY,
    TAINT_PID_PRESSURE,
    TAINT_UNREACHABLE,
    TAINT_UNSCHEDULABLE,
    same_taint,
    taints_of,
)

Obj = Mapping[str, Any]

WATCHED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
REASON_UNKNOWN = "NodeStatusUnknown"
MESSAGE_UNKNOWN = "Kubelet stopped posting node status."
REASON_NEVER_UPDATED = "NodeStatusNeverUpdated"
MESSAGE_NEVER_UPDATED = "Kubelet never posted node status."

STATE_INITIAL = "Initial"
STATE_NORMAL = "Normal"
STATE_FULL_DISRUPTION = "FullDisruption"
STATE_PARTIAL_DISRUPTION = "PartialDisruption"

# condition type → {status → taint key}: upstream's nodeConditionToTaintKeyStatusMap
CONDITION_TAINTS: dict[str, dict[str, str]] = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": TAINT_MEMORY_PRESSURE},
    "DiskPressure": {"True": TAINT_DISK_PRESSURE},
    "NetworkUnavailable": {"True": TAINT_NETWORK_UNAVAILABLE},
    "PIDPressure": {"True": TAINT_PID_PRESSURE},
}
NO_SCHEDULE_KEYS = frozenset({*(k for m in CONDITION_TAINTS.values() for k in m.values()), TAINT_UNSCHEDULABLE})


def condition(node: Obj | None, kind: str) -> dict[str, Any] | None:
    for found in ((node or {}).get("status") or {}).get("conditions") or ():
        if isinstance(found, dict) and found.get("type") == kind:
            return found
    return None


def ready_status(node: Obj | None) -> str:
    """ "True", "False" or "Unknown" (no Ready condition counts as Unknown)."""
    found = condition(node, "Ready")
    return str(found.get("status") or "Unknown") if found else "Unknown"


def stale_conditions(node: Obj, *, timestamp: str) -> list[dict[str, Any]] | None:
    """The node's conditions after its heartbeats went stale; None when nothing changes.

    Conditions of other types are kept; `lastHeartbeatTime` of an existing condition is kept (a missing
    one gets the node's creationTimestamp, as upstream); `lastTransitionTime` becomes `timestamp`."""
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or () if isinstance(c, dict)]
    by_type = {c.get("type"): c for c in conditions}
    created = (node.get("metadata") or {}).get("creationTimestamp") or timestamp
    changed = False
    for kind in WATCHED_CONDITIONS:
        found = by_type.get(kind)
        if found is None:
            conditions.append(
                {
                    "type": kind,
                    "status": "Unknown",
                    "lastHeartbeatTime": created,
                    "lastTransitionTime": timestamp,
                    "reason": REASON_NEVER_UPDATED,
                    "message": MESSAGE_NEVER_UPDATED,
                }
            )
            changed = True
        elif found.get("status") != "Unknown":
            found.update(
                {
                    "status": "Unknown",
                    "lastTransitionTime": timestamp,
                    "reason": REASON_UNKNOWN,
                    "message": MESSAGE_UNKNOWN,
                }
            )
            changed = True
    return conditions if changed else None


def no_schedule_taints(node: Obj) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(taints to add, taints to remove): NoSchedule taints for the node's conditions and
    `spec.unschedulable`, among the keys this controller owns; others' taints are never touched."""
    wanted: list[dict[str, Any]] = []
    for found in (node.get("status") or {}).get("conditions") or ():
        key = CONDITION_TAINTS.get(str(found.get("type")), {}).get(str(found.get("status")))
        if key:
            wanted.append({"key": key, "effect": NO_SCHEDULE})
    if (node.get("spec") or {}).get("unschedulable") is True:
        wanted.append({"key": TAINT_UNSCHEDULABLE, "effect": NO_SCHEDULE})
    current = [t for t in taints_of(node, NO_SCHEDULE) if t.get("key") in NO_SCHEDULE_KEYS]
    to_add = [t for t in wanted if not any(same_taint(t, c) for c in current)]
    to_remove = [dict(c) for c in current if not any(same_taint(c, t) for t in wanted)]
    return to_add, to_remove


def with_taints(node: Obj, add: Iterable[Obj], remove: Iterable[Obj], *, timestamp: str) -> list[dict[str, Any]] | None:
    """The node's taints with `remove` gone and `add` present (new ones stamped `timeAdded`);
    None when that is what it has already."""
    current = taints_of(node)
    removing = list(remove)
    taints = [dict(t) for t in current if not any(same_taint(t, r) for r in removing)]
    for taint in add:
        if not any(same_taint(taint, t) for t in taints):
            taints.append({**taint, "timeAdded": timestamp})
    return None if taints == current else taints


def zone_state(ready_statuses: Iterable[str], *, unhealthy_threshold: float) -> str:
    """Upstream ComputeZoneState: FullDisruption when no node is ready (and some is not),
    PartialDisruption when more than 2 nodes and at least `unhealthy_threshold` of them are not ready."""
    ready = not_ready = 0
    for status in ready_statuses:
        if status == "True":
            ready += 1
        else:
            not_ready += 1
    if ready == 0 and not_ready > 0:
        return STATE_FULL_DISRUPTION
    if not_ready > 2 and not_ready / (not_ready + ready) >= unhealthy_threshold:
        return STATE_PARTIAL_DISRUPTION
    return STATE_NORMAL


def eviction_rate(state: str, node_count: int, *, primary: float, secondary: float, large_cluster: int) -> float:
    """NoExecute taints per second in `state`: the primary rate when Normal; in partial disruption the
    secondary rate for a large cluster and none for a small one; none in full disruption (one zone,
    so every zone is fully disrupted and upstream stops evicting)."""
    if state == STATE_PARTIAL_DISRUPTION:
        return secondary if node_count > large_cluster else 0.0
    if state == STATE_FULL_DISRUPTION:
        return 0.0
    return primary


@dataclass(frozen=True)
class NoExecutePlan:
    """`add`: the NoExecute taint key wanted (None: none); `remove`: keys to drop; `queued`: the change
    must wait for the rate-limited queue (a first taint), else it is made at once."""

    add: str | None
    remove: tuple[str, ...]
    queued: bool = False

    @property
    def is_noop(self) -> bool:
        return self.add is None and not self.remove


def no_execute_plan(node: Obj, state: str) -> NoExecutePlan:
    """What to do about the node's `not-ready`/`unreachable` NoExecute taints in zone `state`."""
    keys = {t.get("key") for t in taints_of(node, NO_EXECUTE)}
    ours = tuple(k for k in (TAINT_NOT_READY, TAINT_UNREACHABLE) if k in keys)
    status = ready_status(node)
    if status == "True" or state == STATE_FULL_DISRUPTION:
        return NoExecutePlan(None, ours)
    wanted, other = (TAINT_NOT_READY, TAINT_UNREACHABLE) if status == "False" else (TAINT_UNREACHABLE, TAINT_NOT_READY)
    if wanted in keys:
        return NoExecutePlan(None, (other,) if other in keys else ())
    if other in keys:
        return NoExecutePlan(wanted, (other,))  # a swap is made at once, as upstream
    return NoExecutePlan(wanted, (), queued=True)


__all__ = [
    "MESSAGE_UNKNOWN",
    "REASON_UNKNOWN",
    "STATE_FULL_DISRUPTION",
    "STATE_INITIAL",
    "STATE_NORMAL",
    "STATE_PARTIAL_DISRUPTION",
    "NoExecutePlan",
    "eviction_rate",
    "no_execute_plan",
    "no_schedule_taints",
    "ready_status",
    "stale_conditions",
    "with_taints",
    "zone_state",
]
