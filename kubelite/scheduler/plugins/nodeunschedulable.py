"""NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods that tolerate the
`node.kubernetes.io/unschedulable:NoSchedule` taint (plugins/nodeunschedulable)."""

from __future__ import annotations

from typing import ClassVar

from kubelite.scheduler.events import NODE, POD, ActionType, ClusterEvent
from kubelite.scheduler.framework import SUCCESS, NodeInfo, PodInfo, Status
from kubelite.scheduler.plugins.helper import NO_SCHEDULE, tolerations_tolerate_taint

NAME = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_REASON_UNKNOWN_CONDITION = "node(s) had unknown conditions"

TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
_UNSCHEDULABLE_TAINT = {"key": TAINT_NODE_UNSCHEDULABLE, "effect": NO_SCHEDULE}
_REJECTED = Status.unresolvable(ERR_REASON_UNSCHEDULABLE, plugin=NAME)


class NodeUnschedulable:
    NAME: ClassVar[str] = NAME
    EVENTS: ClassVar[tuple[ClusterEvent, ...]] = (
        ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_TAINT),
        ClusterEvent(POD, ActionType.UPDATE_POD_TOLERATIONS),
    )

    def filter(self, pod: PodInfo, node_info: NodeInfo) -> Status:
        if not node_info.unschedulable:
            return SUCCESS
        if tolerations_tolerate_taint(pod.spec.get("tolerations") or (), _UNSCHEDULABLE_TAINT):
            return SUCCESS
        return _REJECTED


__all__ = [
    "ERR_REASON_UNKNOWN_CONDITION",
    "ERR_REASON_UNSCHEDULABLE",
    "NAME",
    "TAINT_NODE_UNSCHEDULABLE",
    "NodeUnschedulable",
]
