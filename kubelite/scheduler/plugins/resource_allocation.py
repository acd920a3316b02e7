"""What the resource scoring plugins compare (noderesources/resource_allocation.go): per resource,
the node's allocatable and what would be requested with the pod added.

`use_requested` False (LeastAllocated) counts CPU and memory with the scoring defaults for
containers that state no request (100m, 200Mi); True (BalancedAllocation) counts actual requests.
An extended resource the pod does not request is left out, as is one the node does not offer.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubelite.scheduler.framework import NodeInfo, PodInfo
from kubelite.scheduler.resources import CPU, EPHEMERAL_STORAGE, MEMORY, is_scalar_resource_name

ResourceSpec = tuple[str, int]  # (resource name, weight)
DEFAULT_RESOURCES: tuple[ResourceSpec, ...] = ((CPU, 1), (MEMORY, 1))


def pod_request(pod: PodInfo, name: str, *, use_requested: bool) -> int:
    if name == CPU:
        return pod.requests.milli_cpu if use_requested else pod.non_zero_milli_cpu
    if name == MEMORY:
        return pod.requests.memory if use_requested else pod.non_zero_memory
    return pod.requests.get(name)


def allocatable_and_requested(node_info: NodeInfo, name: str, request: int, *, use_requested: bool) -> tuple[int, int]:
    """calculateResourceAllocatableRequest: (allocatable, requested including the pod), or (0, 0)
    when the resource is to be left out of the score."""
    if request == 0 and is_scalar_resource_name(name):
        return 0, 0
    allocatable = node_info.allocatable
    if name == CPU:
        counted = node_info.requested if use_requested else node_info.non_zero_requested
        return allocatable.milli_cpu, counted.milli_cpu + request
    if name == MEMORY:
        counted = node_info.requested if use_requested else node_info.non_zero_requested
        return allocatable.memory, counted.memory + request
    if name == EPHEMERAL_STORAGE:
        return allocatable.ephemeral_storage, node_info.requested.ephemeral_storage + request
    if name in allocatable.scalar:
        return allocatable.scalar[name], node_info.requested.scalar.get(name, 0) + request
    return 0, 0


def requested_and_allocatable(
    pod: PodInfo, node_info: NodeInfo, resources: Sequence[ResourceSpec], *, use_requested: bool
) -> list[tuple[int, int, int]]:
    """(requested, allocatable, weight) for each resource the node offers."""
    out = []
    for name, weight in resources:
        allocatable, requested = allocatable_and_requested(
            node_info, name, pod_request(pod, name, use_requested=use_requested), use_requested=use_requested
        )
        if allocatable:
            out.append((requested, allocatable, weight))
    return out


__all__ = ["DEFAULT_RESOURCES", "ResourceSpec", "allocatable_and_requested", "pod_request", "requested_and_allocatable"]
