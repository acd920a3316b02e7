"""NodePorts: the host ports a pod's containers ask for must be free on the node (plugins/nodeports).

1.32 counts the regular containers' ports only, on both sides (sidecars' host ports were added in
1.34).  A host IP of 0.0.0.0 (or none) clashes with the same protocol and port on any IP.
"""

from __future__ import annotations

from typing import ClassVar

from kubelite.scheduler.events import EVENT_ASSIGNED_POD_DELETE, EVENT_NODE_ADD, ClusterEvent
from kubelite.scheduler.framework import (
    PRE_FILTER_OK,
    PRE_FILTER_SKIP,
    SUCCESS,
    NodeInfo,
    PodInfo,
    PreFilterResult,
    Snapshot,
    Status,
)

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"


_REJECTED = Status.unschedulable(ERR_REASON, plugin=NAME)


def fits_ports(pod: PodInfo, node_info: NodeInfo) -> bool:
    used = node_info.used_ports
    return not used or not any(used.conflicts(ip, protocol, port) for ip, protocol, port in pod.host_ports)


class NodePorts:
    NAME: ClassVar[str] = NAME
    EVENTS: ClassVar[tuple[ClusterEvent, ...]] = (EVENT_ASSIGNED_POD_DELETE, EVENT_NODE_ADD)

    def pre_filter(self, pod: PodInfo, snapshot: Snapshot) -> PreFilterResult:
        """A pod without host ports needs no check: Skip the filter."""
        return PRE_FILTER_OK if pod.host_ports else PRE_FILTER_SKIP

    def filter(self, pod: PodInfo, node_info: NodeInfo) -> Status:
        if fits_ports(pod, node_info):
            return SUCCESS
        return _REJECTED


__all__ = ["ERR_REASON", "NAME", "NodePorts", "fits_ports"]
