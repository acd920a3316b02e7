"""NodeResourcesFit (noderesources/fit.go, least_allocated.go).

Filter: the node must have room for the pod's requests next to what its pods already request, and
a free pod slot.  All shortfalls are reported, in upstream's order: "Too many pods", "Insufficient
cpu", "Insufficient memory", "Insufficient ephemeral-storage", then "Insufficient <name>" for
extended resources, hugepages and the like (sorted by name; upstream's order there is random).
1.32 always answers Unschedulable (so preemption is tried), even when the request exceeds the
node's whole allocatable.
Score (LeastAllocated, the default strategy): per resource (capacity - requested) * 100 / capacity,
weighted mean over cpu and memory by default, integer arithmetic throughout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from kubelite.scheduler.events import EVENT_ASSIGNED_POD_DELETE, NODE, ActionType, ClusterEvent
from kubelite.scheduler.framework import MAX_NODE_SCORE, SUCCESS, NodeInfo, PodInfo, Status
from kubelite.scheduler.plugins.resource_allocation import DEFAULT_RESOURCES, ResourceSpec, requested_and_allocatable
from kubelite.scheduler.resources import CPU, EPHEMERAL_STORAGE, MEMORY, PODS, is_extended_resource_name

NAME = "NodeResourcesFit"
REASON_TOO_MANY_PODS = "Too many pods"
REASON_INSUFFICIENT_FMT = "Insufficient {}"
REASON_CPU = REASON_INSUFFICIENT_FMT.format(CPU)
REASON_MEMORY = REASON_INSUFFICIENT_FMT.format(MEMORY)
REASON_EPHEMERAL_STORAGE = REASON_INSUFFICIENT_FMT.format(EPHEMERAL_STORAGE)


@dataclass(frozen=True, slots=True)
class InsufficientResource:
    resource_name: str
    reason: str
    requested: int
    used: int
    capacity: int


def fits_request(
    pod: PodInfo,
    node_info: NodeInfo,
    *,
    ignored_resources: frozenset[str] = frozenset(),
    ignored_resource_groups: frozenset[str] = frozenset(),
) -> list[InsufficientResource]:
    """fitsRequest: every resource the node lacks for this pod (empty: it fits)."""
    out: list[InsufficientResource] = []
    allocatable, used = node_info.allocatable, node_info.requested
    pod_count = len(node_info.pods)
    if pod_count + 1 > allocatable.allowed_pod_number:
        out.append(InsufficientResource(PODS, REASON_TOO_MANY_PODS, 1, pod_count, allocatable.allowed_pod_number))
    request = pod.requests
    if not (request.milli_cpu or request.memory or request.ephemeral_storage or request.scalar):
        return out
    if request.milli_cpu > 0 and request.milli_cpu > allocatable.milli_cpu - used.milli_cpu:
        out.append(InsufficientResource(CPU, REASON_CPU, request.milli_cpu, used.milli_cpu, allocatable.milli_cpu))
    if request.memory > 0 and request.memory > allocatable.memory - used.memory:
        out.append(InsufficientResource(MEMORY, REASON_MEMORY, request.memory, used.memory, allocatable.memory))
    wanted = request.ephemeral_storage
    if wanted > 0 and wanted > allocatable.ephemeral_storage - used.ephemeral_storage:
        have, cap = used.ephemeral_storage, allocatable.ephemeral_storage
        out.append(InsufficientResource(EPHEMERAL_STORAGE, REASON_EPHEMERAL_STORAGE, wanted, have, cap))
    for name in sorted(request.scalar):
        wanted = request.scalar[name]
        if wanted == 0 or _ignored(name, ignored_resources, ignored_resource_groups):
            continue
        cap, have = allocatable.scalar.get(name, 0), used.scalar.get(name, 0)
        if wanted > cap - have:
            out.append(InsufficientResource(name, REASON_INSUFFICIENT_FMT.format(name), wanted, have, cap))
    return out


def _ignored(name: str, resources: frozenset[str], groups: frozenset[str]) -> bool:
    if not is_extended_resource_name(name) or not (resources or groups):
        return False
    return name in resources or name.split("/", 1)[0] in groups


def least_requested_score(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


class NodeResourcesFit:
    """Filter plus LeastAllocated scoring.  `resources` weights the scored resources;
    `ignored_resources` / `ignored_resource_groups` are extended resources the filter skips."""

    NAME: ClassVar[str] = NAME
    EVENTS: ClassVar[tuple[ClusterEvent, ...]] = (
        EVENT_ASSIGNED_POD_DELETE,
        ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_ALLOCATABLE),
    )

    def __init__(
        self,
        *,
        resources: Sequence[ResourceSpec] = DEFAULT_RESOURCES,
        ignored_resources: Iterable[str] = (),
        ignored_resource_groups: Iterable[str] = (),
    ) -> None:
        self.resources = tuple(resources)
        self.ignored_resources = frozenset(ignored_resources)
        self.ignored_resource_groups = frozenset(ignored_resource_groups)

    def filter(self, pod: PodInfo, node_info: NodeInfo) -> Status:
        missing = fits_request(
            pod,
            node_info,
            ignored_resources=self.ignored_resources,
            ignored_resource_groups=self.ignored_resource_groups,
        )
        if not missing:
            return SUCCESS
        return Status.unschedulable(*(m.reason for m in missing))

    def score(self, pod: PodInfo, node_info: NodeInfo) -> int:
        if self.resources == DEFAULT_RESOURCES:
            return self._default_score(pod, node_info)
        node_score = weight_sum = 0
        for requested, allocatable, weight in requested_and_allocatable(
            pod, node_info, self.resources, use_requested=False
        ):
            node_score += least_requested_score(requested, allocatable) * weight
            weight_sum += weight
        return node_score // weight_sum if weight_sum else 0

    @staticmethod
    def _default_score(pod: PodInfo, node_info: NodeInfo) -> int:
        """The same for cpu and memory weighted 1, without the general machinery (the hot path)."""
        node, counted = node_info.allocatable, node_info.non_zero_requested
        node_score = weight_sum = 0
        if node.milli_cpu:
            node_score += least_requested_score(counted.milli_cpu + pod.non_zero_milli_cpu, node.milli_cpu)
            weight_sum += 1
        if node.memory:
            node_score += least_requested_score(counted.memory + pod.non_zero_memory, node.memory)
            weight_sum += 1
        return node_score // weight_sum if weight_sum else 0


__all__ = [
    "NAME",
    "REASON_CPU",
    "REASON_EPHEMERAL_STORAGE",
    "REASON_INSUFFICIENT_FMT",
    "REASON_MEMORY",
    "REASON_TOO_MANY_PODS",
    "InsufficientResource",
    "NodeResourcesFit",
    "fits_request",
    "least_requested_score",
]
