"""The default plugins, one module each, and the default profile kube-scheduler 1.32 runs them in.

Filters run in upstream's order (the first rejection decides the reason a node reports):
NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, then VolumeBinding
(`volumebinding.py`, appended by the scheduler shell, which also runs its PreBind step).
Scores and their default weights: TaintToleration 3, NodeAffinity 2, NodeResourcesFit 1
(LeastAllocated), NodeResourcesBalancedAllocation 1.

Not implemented yet (upstream defaults that are missing): SchedulingGates as a plugin (the queue
holds gated pods), VolumeRestrictions, NodeVolumeLimits, VolumeZone,
PodTopologySpread (including the system default spreading constraints), InterPodAffinity,
ImageLocality, DefaultPreemption as an actor (only its message is reproduced), DefaultBinder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kubelite.scheduler.events import ClusterEvent
from kubelite.scheduler.framework import FilterPlugin, ScorePlugin
from kubelite.scheduler.plugins.balanced_allocation import NodeResourcesBalancedAllocation
from kubelite.scheduler.plugins.nodeaffinity import NodeAffinity
from kubelite.scheduler.plugins.nodename import NodeName
from kubelite.scheduler.plugins.nodeports import NodePorts
from kubelite.scheduler.plugins.noderesources_fit import NodeResourcesFit
from kubelite.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from kubelite.scheduler.plugins.tainttoleration import TaintToleration

WeightedScore = tuple[ScorePlugin, int]

TAINT_TOLERATION_WEIGHT = 3
NODE_AFFINITY_WEIGHT = 2
NODE_RESOURCES_FIT_WEIGHT = 1
BALANCED_ALLOCATION_WEIGHT = 1


def default_plugins() -> tuple[list[FilterPlugin], list[WeightedScore]]:
    """(filters, weighted scores) of the default profile, sharing one instance per plugin."""
    taints, affinity, fit = TaintToleration(), NodeAffinity(), NodeResourcesFit()
    filters: list[FilterPlugin] = [NodeUnschedulable(), NodeName(), taints, affinity, NodePorts(), fit]
    scores: list[WeightedScore] = [
        (taints, TAINT_TOLERATION_WEIGHT),
        (affinity, NODE_AFFINITY_WEIGHT),
        (fit, NODE_RESOURCES_FIT_WEIGHT),
        (NodeResourcesBalancedAllocation(), BALANCED_ALLOCATION_WEIGHT),
    ]
    return filters, scores


def default_filters() -> list[FilterPlugin]:
    return default_plugins()[0]


def default_scores() -> list[WeightedScore]:
    return default_plugins()[1]


def events_to_register(plugins: Iterable[object]) -> Mapping[str, tuple[ClusterEvent, ...]]:
    """Plugin name → the cluster events that may undo its rejection (the queue's move rules)."""
    return {plugin.NAME: plugin.EVENTS for plugin in plugins if hasattr(plugin, "EVENTS")}  # type: ignore[attr-defined]


def default_events_to_register() -> Mapping[str, tuple[ClusterEvent, ...]]:
    return events_to_register(default_filters())


__all__ = [
    "BALANCED_ALLOCATION_WEIGHT",
    "NODE_AFFINITY_WEIGHT",
    "NODE_RESOURCES_FIT_WEIGHT",
    "TAINT_TOLERATION_WEIGHT",
    "NodeAffinity",
    "NodeName",
    "NodePorts",
    "NodeResourcesBalancedAllocation",
    "NodeResourcesFit",
    "NodeUnschedulable",
    "TaintToleration",
    "WeightedScore",
    "default_events_to_register",
    "default_filters",
    "default_plugins",
    "default_scores",
    "events_to_register",
]
