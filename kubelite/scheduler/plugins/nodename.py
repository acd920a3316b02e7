"""NodeName: a pod that names its node (`spec.nodeName`) fits only there (plugins/nodename)."""

from __future__ import annotations

from typing import ClassVar

from kubelite.scheduler.events import EVENT_NODE_ADD, ClusterEvent
from kubelite.scheduler.framework import SUCCESS, NodeInfo, PodInfo, Status

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"


_REJECTED = Status.unresolvable(ERR_REASON, plugin=NAME)


def fits(pod: PodInfo, node_info: NodeInfo) -> bool:
    wanted = pod.spec.get("nodeName") or ""
    return not wanted or wanted == node_info.name


class NodeName:
    NAME: ClassVar[str] = NAME
    EVENTS: ClassVar[tuple[ClusterEvent, ...]] = (EVENT_NODE_ADD,)

    def filter(self, pod: PodInfo, node_info: NodeInfo) -> Status:
        if fits(pod, node_info):
            return SUCCESS
        return _REJECTED


__all__ = ["ERR_REASON", "NAME", "NodeName", "fits"]
