"""Cluster events that may make an unschedulable pod schedulable (upstream's framework.ClusterEvent).

Plugins declare the events that can undo their rejection (`EVENTS`, as upstream's EventsToRegister
with queueing hints on, the 1.32 default); the scheduling queue moves a pod out of the unschedulable
set only on an event one of its rejecting plugins declared.  Upstream then asks the plugin's
queueing-hint function to look at the changed object; kubelite does not (yet), so every matching
event requeues — more retries, never fewer.

`node_update_events` and `pod_update_action` turn an informer update into events, for the shell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntFlag
from typing import Any


class ActionType(IntFlag):
    """What happened to the object; update events are split by what changed."""

    ADD = 1 << 0
    DELETE = 1 << 1
    UPDATE_NODE_ALLOCATABLE = 1 << 2
    UPDATE_NODE_LABEL = 1 << 3
    UPDATE_NODE_TAINT = 1 << 4
    UPDATE_NODE_CONDITION = 1 << 5
    UPDATE_NODE_ANNOTATION = 1 << 6
    UPDATE_POD_LABEL = 1 << 7
    UPDATE_POD_SCALE_DOWN = 1 << 8
    UPDATE_POD_TOLERATIONS = 1 << 9
    UPDATE_POD_SCHEDULING_GATES_ELIMINATED = 1 << 10
    UPDATE_POD_OTHER = 1 << 11

    UPDATE = (
        UPDATE_NODE_ALLOCATABLE
        | UPDATE_NODE_LABEL
        | UPDATE_NODE_TAINT
        | UPDATE_NODE_CONDITION
        | UPDATE_NODE_ANNOTATION
        | UPDATE_POD_LABEL
        | UPDATE_POD_SCALE_DOWN
        | UPDATE_POD_TOLERATIONS
        | UPDATE_POD_SCHEDULING_GATES_ELIMINATED
        | UPDATE_POD_OTHER
    )
    ALL = ADD | DELETE | UPDATE


POD = "Pod"
NODE = "Node"
WILDCARD = "*"


@dataclass(frozen=True)
class ClusterEvent:
    """A change of `resource` (Pod, Node, or * for every pod) of kind `action`.

    `pod_key` narrows a Pod event to the pod it is about when only that pod can benefit (an update
    of a pending pod's own tolerations or scheduling gates), as upstream's hints do by UID.
    """

    resource: str
    action: ActionType
    label: str = ""
    pod_key: str | None = None

    @property
    def is_wildcard(self) -> bool:
        return self.resource == WILDCARD and self.action == ActionType.ALL

    def matches(self, incoming: ClusterEvent) -> bool:
        """Does this registered event cover `incoming`?  Same resource (or a wildcard) and at
        least one common action bit."""
        if self.resource == WILDCARD:
            return True
        return self.resource == incoming.resource and bool(self.action & incoming.action)


EVENT_NODE_ADD = ClusterEvent(NODE, ActionType.ADD, "NodeAdd")
EVENT_NODE_DELETE = ClusterEvent(NODE, ActionType.DELETE, "NodeDelete")
EVENT_ASSIGNED_POD_ADD = ClusterEvent(POD, ActionType.ADD, "AssignedPodAdd")
EVENT_ASSIGNED_POD_UPDATE = ClusterEvent(POD, ActionType.UPDATE, "AssignedPodUpdate")
EVENT_ASSIGNED_POD_DELETE = ClusterEvent(POD, ActionType.DELETE, "AssignedPodDelete")
EVENT_UNSCHEDULABLE_TIMEOUT = ClusterEvent(WILDCARD, ActionType.ALL, "UnschedulableTimeout")
EVENT_FORCE_ACTIVATE = ClusterEvent(WILDCARD, ActionType.ALL, "ForceActivate")


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    for step in path:
        obj = obj.get(step) or {}
    return obj or None


def node_update_events(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[ClusterEvent]:
    """nodeSchedulingPropertiesChange: the events a Node update stands for (possibly none)."""
    events = []
    if bool(_get(old, "spec", "unschedulable")) != bool(_get(new, "spec", "unschedulable")):
        events.append(ClusterEvent(NODE, ActionType.UPDATE_NODE_TAINT, "NodeSpecUnschedulableChange"))
    if _get(old, "status", "allocatable") != _get(new, "status", "allocatable"):
        events.append(ClusterEvent(NODE, ActionType.UPDATE_NODE_ALLOCATABLE, "NodeAllocatableChange"))
    if _get(old, "metadata", "labels") != _get(new, "metadata", "labels"):
        events.append(ClusterEvent(NODE, ActionType.UPDATE_NODE_LABEL, "NodeLabelChange"))
    if _get(old, "spec", "taints") != _get(new, "spec", "taints"):
        events.append(ClusterEvent(NODE, ActionType.UPDATE_NODE_TAINT, "NodeTaintChange"))
    if _conditions(old) != _conditions(new):
        events.append(ClusterEvent(NODE, ActionType.UPDATE_NODE_CONDITION, "NodeConditionChange"))
    if _get(old, "metadata", "annotations") != _get(new, "metadata", "annotations"):
        events.append(ClusterEvent(NODE, ActionType.UPDATE_NODE_ANNOTATION, "NodeAnnotationChange"))
    return events


def _conditions(node: Mapping[str, Any]) -> dict[str, str]:
    """Condition type → status; heartbeat times do not count as a change (as upstream)."""
    return {c.get("type", ""): c.get("status", "") for c in _get(node, "status", "conditions") or ()}


def pod_update_action(old: Mapping[str, Any], new: Mapping[str, Any]) -> ActionType:
    """What a pending pod's update changed, as upstream's PodSchedulingPropertiesChange sorts it."""
    action = ActionType(0)
    if _get(old, "metadata", "labels") != _get(new, "metadata", "labels"):
        action |= ActionType.UPDATE_POD_LABEL
    if _get(old, "spec", "tolerations") != _get(new, "spec", "tolerations"):
        action |= ActionType.UPDATE_POD_TOLERATIONS
    if _get(old, "spec", "schedulingGates") and not _get(new, "spec", "schedulingGates"):
        action |= ActionType.UPDATE_POD_SCHEDULING_GATES_ELIMINATED
    return action or ActionType.UPDATE_POD_OTHER


__all__ = [
    "EVENT_ASSIGNED_POD_ADD",
    "EVENT_ASSIGNED_POD_DELETE",
    "EVENT_ASSIGNED_POD_UPDATE",
    "EVENT_FORCE_ACTIVATE",
    "EVENT_NODE_ADD",
    "EVENT_NODE_DELETE",
    "EVENT_UNSCHEDULABLE_TIMEOUT",
    "NODE",
    "POD",
    "WILDCARD",
    "ActionType",
    "ClusterEvent",
    "node_update_events",
    "pod_update_action",
]
