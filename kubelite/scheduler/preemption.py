"""The PostFilter message DefaultPreemption would add to a FitError — without preempting anything.

Decision: kube-scheduler 1.32 runs DefaultPreemption after every failed attempt and appends its
outcome to the FitError message, e.g. "... 3 Insufficient cpu. preemption: 0/3 nodes are available:
3 No preemption victims found for incoming pod."  Tools, tests and people match on that text, so
kubelite reproduces it whenever upstream would produce it, i.e. whenever preemption finds no
candidate, by running the same dry run upstream does (purely, over the snapshot):

* a pod with `preemptionPolicy: Never` is not eligible: "preemption: not eligible due to
  preemptionPolicy=Never." (likewise when a victim on its nominated node is still terminating);
* only nodes whose filter status is Unschedulable are candidates; every other node reports
  "Preemption is not helpful for scheduling" (UnschedulableAndUnresolvable rejections — taints,
  affinity, node name, cordon — cannot be fixed by evicting pods);
* a candidate node without lower-priority pods reports "No preemption victims found for incoming pod";
* otherwise all lower-priority pods are removed from a copy of the node and the filters run again;
  if the pod still does not fit, that status (e.g. "Insufficient cpu") is the node's report.

If some node would fit after evictions, upstream would preempt and its message carries no
preemption part; kubelite (which does not evict yet) then also omits it and returns the candidate
nodes, so a future preemption step can act on them.  PodDisruptionBudgets, reprieving victims and
nominated pods do not change whether a candidate exists, so they are not modelled here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubelite.scheduler.fiterror import Diagnosis, FitError, NodeToStatus
from kubelite.scheduler.framework import Code, FilterPlugin, PodInfo, Snapshot, Status, run_filter_plugins

PREEMPTION_PREFIX = "preemption: "
REASON_NOT_HELPFUL = "Preemption is not helpful for scheduling"
REASON_NO_VICTIMS = "No preemption victims found for incoming pod"
MSG_POLICY_NEVER = "not eligible due to preemptionPolicy=Never."
MSG_TERMINATING_VICTIM = "not eligible due to a terminating pod on the nominated node."


@dataclass(frozen=True)
class PreemptionOutcome:
    """`message` is the PostFilter message ("" when preemption would find room); `candidates` are
    the nodes where evicting lower-priority pods would make the pod fit."""

    message: str
    candidates: tuple[str, ...] = ()


def _terminating_by_preemption(pod: Mapping[str, Any]) -> bool:
    if not (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "DisruptionTarget":
            return condition.get("status") == "True" and condition.get("reason") == "PreemptionByScheduler"
    return False


def ineligibility(pod: PodInfo, snapshot: Snapshot, node_to_status: NodeToStatus) -> str:
    """PodEligibleToPreemptOthers: why the pod may not preempt at all ("" if it may)."""
    if pod.spec.get("preemptionPolicy") == "Never":
        return MSG_POLICY_NEVER
    nominated = (pod.pod.get("status") or {}).get("nominatedNodeName") or ""
    if nominated and node_to_status.get(nominated).code is not Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
        node_info = snapshot.get(nominated)
        if node_info is not None and any(
            p.priority < pod.priority and _terminating_by_preemption(p.pod) for p in node_info.pods.values()
        ):
            return MSG_TERMINATING_VICTIM
    return ""


def evaluate_preemption(
    pod: PodInfo,
    snapshot: Snapshot,
    filters: Sequence[FilterPlugin],
    node_to_status: NodeToStatus,
    *,
    skip: frozenset[str] = frozenset(),
) -> PreemptionOutcome:
    """DefaultPreemption.PostFilter's outcome for a pod that fits nowhere (see the module docstring).

    `node_to_status` is the failed attempt's diagnosis; `skip` the filters its pre-filters skipped.
    """
    if reason := ineligibility(pod, snapshot, node_to_status):
        return PreemptionOutcome(PREEMPTION_PREFIX + reason)
    statuses: dict[str, Status] = {}
    candidates: list[str] = []
    for node_info in snapshot:
        if node_to_status.get(node_info.name).code is not Code.UNSCHEDULABLE:
            continue
        victims = [p for p in node_info.pods.values() if p.priority < pod.priority]
        if not victims:
            statuses[node_info.name] = Status.unresolvable(REASON_NO_VICTIMS)
            continue
        trial = node_info.clone()
        for victim in victims:
            trial.remove_pod(victim)
        status = run_filter_plugins(filters, pod, trial, skip=skip)
        if status.is_success:
            candidates.append(node_info.name)
        else:
            statuses[node_info.name] = status
    if candidates:
        return PreemptionOutcome("", tuple(candidates))
    absent = Status.unresolvable(REASON_NOT_HELPFUL)
    fit_error = FitError(len(snapshot), Diagnosis(NodeToStatus(statuses, absent)))
    return PreemptionOutcome(PREEMPTION_PREFIX + fit_error.message())


__all__ = [
    "MSG_POLICY_NEVER",
    "MSG_TERMINATING_VICTIM",
    "PREEMPTION_PREFIX",
    "REASON_NOT_HELPFUL",
    "REASON_NO_VICTIMS",
    "PreemptionOutcome",
    "evaluate_preemption",
    "ineligibility",
]
