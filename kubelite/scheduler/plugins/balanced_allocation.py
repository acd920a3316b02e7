"""NodeResourcesBalancedAllocation (noderesources/balanced_allocation.go): favour nodes whose
resources would be used in equal proportion once the pod is placed.

score = (1 - std) * 100, truncated, where std is the standard deviation of requested/allocatable
(each capped at 1) over the scored resources (cpu and memory by default; for two resources
|f1 - f2| / 2).  Actual requests count — no defaults for unstated ones — and in 1.32 best-effort
pods are scored too (1.33 skips them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from kubelite.scheduler.framework import MAX_NODE_SCORE, NodeInfo, PodInfo
from kubelite.scheduler.plugins.resource_allocation import DEFAULT_RESOURCES, ResourceSpec, requested_and_allocatable

NAME = "NodeResourcesBalancedAllocation"


def balanced_resource_score(fractions: Sequence[float]) -> int:
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        # plain left-to-right float sums, as Go computes them (Python 3.12's sum() compensates)
        total = 0.0
        for fraction in fractions:
            total += fraction
        mean = total / len(fractions)
        squares = 0.0
        for fraction in fractions:
            squares += (fraction - mean) * (fraction - mean)
        std = math.sqrt(squares / len(fractions))
    else:
        std = 0.0
    return int((1 - std) * MAX_NODE_SCORE)


class NodeResourcesBalancedAllocation:
    NAME: ClassVar[str] = NAME

    def __init__(self, *, resources: Sequence[ResourceSpec] = DEFAULT_RESOURCES) -> None:
        self.resources = tuple(resources)

    def score(self, pod: PodInfo, node_info: NodeInfo) -> int:
        if self.resources == DEFAULT_RESOURCES:  # the common case, without the general machinery
            allocatable, requested = node_info.allocatable, node_info.requested
            fractions = []
            if allocatable.milli_cpu:
                fractions.append(min((requested.milli_cpu + pod.requests.milli_cpu) / allocatable.milli_cpu, 1.0))
            if allocatable.memory:
                fractions.append(min((requested.memory + pod.requests.memory) / allocatable.memory, 1.0))
            return balanced_resource_score(fractions)
        fractions = [
            min(requested / allocatable, 1.0)
            for requested, allocatable, _ in requested_and_allocatable(
                pod, node_info, self.resources, use_requested=True
            )
        ]
        return balanced_resource_score(fractions)


__all__ = ["NAME", "NodeResourcesBalancedAllocation", "balanced_resource_score"]
