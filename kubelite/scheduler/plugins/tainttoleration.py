"""TaintToleration (plugins/tainttoleration).

Filter: the node's first NoSchedule/NoExecute taint the pod does not tolerate rejects it, with the
reason "node(s) had untolerated taint {<key>: <value>}" (1.32 still names the taint; 1.35 hides it).
Score: the number of PreferNoSchedule taints the pod does not tolerate, normalised in reverse — the
fewest untolerated taints score 100.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from kubelite.scheduler.events import NODE, POD, ActionType, ClusterEvent
from kubelite.scheduler.framework import SUCCESS, NodeInfo, PodInfo, Status
from kubelite.scheduler.plugins.helper import (
    PREFER_NO_SCHEDULE,
    default_normalize_score,
    do_not_schedule_taint,
    find_untolerated_taint,
    tolerations_tolerate_taint,
)

NAME = "TaintToleration"
ERR_REASON_FMT = "node(s) had untolerated taint {{{}: {}}}"


def untolerated_taint_reason(taint: Mapping[str, Any]) -> str:
    return ERR_REASON_FMT.format(taint.get("key") or "", taint.get("value") or "")


def _prefer_no_schedule_tolerations(pod: PodInfo) -> Sequence[Mapping[str, Any]]:
    """getAllTolerationPreferNoSchedule: tolerations with that effect or none (memoised per pod)."""
    cached = pod.cache.get(NAME)
    if cached is None:
        cached = [
            t
            for t in pod.spec.get("tolerations") or ()
            if (t.get("effect") or PREFER_NO_SCHEDULE) == PREFER_NO_SCHEDULE
        ]
        pod.cache[NAME] = cached
    return cached


class TaintToleration:
    NAME: ClassVar[str] = NAME
    EVENTS: ClassVar[tuple[ClusterEvent, ...]] = (
        ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_TAINT),
        ClusterEvent(POD, ActionType.UPDATE_POD_TOLERATIONS),
    )

    def filter(self, pod: PodInfo, node_info: NodeInfo) -> Status:
        if not node_info.taints:
            return SUCCESS
        taint = find_untolerated_taint(node_info.taints, pod.spec.get("tolerations") or (), do_not_schedule_taint)
        if taint is None:
            return SUCCESS
        return Status.unresolvable(untolerated_taint_reason(taint))

    def score(self, pod: PodInfo, node_info: NodeInfo) -> int:
        if not node_info.taints:
            return 0
        tolerations = _prefer_no_schedule_tolerations(pod)
        return sum(
            1
            for taint in node_info.taints
            if taint.get("effect") == PREFER_NO_SCHEDULE and not tolerations_tolerate_taint(tolerations, taint)
        )

    def normalize_scores(self, pod: PodInfo, scores: list[int]) -> None:
        default_normalize_score(scores, reverse=True)


__all__ = ["ERR_REASON_FMT", "NAME", "TaintToleration", "untolerated_taint_reason"]
