"""Resource accounting for scheduling: what a pod requests and what a node offers, counted as upstream
counts them (component-helpers `resource.PodRequests`, scheduler `framework.Resource`).

A pod's request is, per resource, the larger of

* the sum over its regular containers plus its sidecars (init containers with `restartPolicy: Always`),
* for each init container in order, its own request plus the sidecars declared before it,

plus `spec.overhead`.  Sums are exact (`Quantity` arithmetic); conversion to integers happens once at
the end, CPU in millicores (rounded up) and everything else in whole units (rounded up), as upstream.

Requests that default from limits are already in `requests` (the API server's defaulting did it), so
limits are never read here.  Pod-level `spec.resources` (alpha and off in 1.32) and in-place resize
(`status.containerStatuses[].allocatedResources`, alpha and off in 1.32) are not considered.

A quantity that does not parse counts as zero: the API server validated it, and the scheduler must
not stop over one bad object.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubelite.machinery.quantity import Quantity, QuantityError, quantity_from_json
from kubelite.machinery.selectors import qualified_name_errors

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"

# schedutil.DefaultMilliCPURequest / DefaultMemoryRequest: what scoring assumes for a container that
# states no request at all (an explicit zero stays zero).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

NON_ZERO_DEFAULTS: Mapping[str, Quantity] = {
    CPU: Quantity.from_milli(DEFAULT_MILLI_CPU_REQUEST),
    MEMORY: Quantity.from_int(DEFAULT_MEMORY_REQUEST),
}

_NATIVE_PREFIX = "kubernetes.io/"
_REQUESTS_PREFIX = "requests."


def is_prefixed_native_resource(name: str) -> bool:
    return _NATIVE_PREFIX in name


def is_native_resource(name: str) -> bool:
    return "/" not in name or is_prefixed_native_resource(name)


@functools.cache
def is_extended_resource_name(name: str) -> bool:
    """v1helper.IsExtendedResourceName: a domain-prefixed name outside kubernetes.io that is a valid
    quota name once `requests.` is put in front of it."""
    if is_native_resource(name) or name.startswith(_REQUESTS_PREFIX):
        return False
    return not qualified_name_errors(_REQUESTS_PREFIX + name)


def is_hugepages_resource_name(name: str) -> bool:
    return name.startswith("hugepages-")


def is_attachable_volume_resource_name(name: str) -> bool:
    return name.startswith("attachable-volumes-")


@functools.cache
def is_scalar_resource_name(name: str) -> bool:
    """schedutil.IsScalarResourceName: the resources the scheduler counts beyond cpu, memory,
    ephemeral-storage and pods (extended resources, hugepages, prefixed native, attachable volumes)."""
    return (
        is_extended_resource_name(name)
        or is_hugepages_resource_name(name)
        or is_prefixed_native_resource(name)
        or is_attachable_volume_resource_name(name)
    )


def parse_resource_list(resources: Mapping[str, Any] | None) -> dict[str, Quantity]:
    """A JSON ResourceList as quantities; entries that do not parse are dropped."""
    parsed: dict[str, Quantity] = {}
    for name, value in (resources or {}).items():
        try:
            parsed[name] = quantity_from_json(value)
        except QuantityError:
            continue
    return parsed


def _add(into: dict[str, Quantity], more: Mapping[str, Quantity]) -> None:
    for name, quantity in more.items():
        have = into.get(name)
        into[name] = quantity if have is None else have + quantity


def _max(into: dict[str, Quantity], other: Mapping[str, Quantity]) -> None:
    for name, quantity in other.items():
        have = into.get(name)
        if have is None or quantity > have:
            into[name] = quantity


def _container_requests(
    container: Mapping[str, Any], non_missing: Mapping[str, Quantity] | None
) -> dict[str, Quantity]:
    requests = parse_resource_list((container.get("resources") or {}).get("requests"))
    if non_missing:
        for name, quantity in non_missing.items():
            requests.setdefault(name, quantity)
    return requests


def pod_requests(pod: Mapping[str, Any], *, non_missing: Mapping[str, Quantity] | None = None) -> dict[str, Quantity]:
    """resource.PodRequests: the pod's effective request per resource name (see the module docstring).

    `non_missing` fills in, per container, a request the container does not state at all (upstream's
    NonMissingContainerRequests; scoring passes NON_ZERO_DEFAULTS).
    """
    spec = pod.get("spec") or {}
    total: dict[str, Quantity] = {}
    for container in spec.get("containers") or ():
        _add(total, _container_requests(container, non_missing))
    sidecars: dict[str, Quantity] = {}
    init_peak: dict[str, Quantity] = {}
    for container in spec.get("initContainers") or ():
        requests = _container_requests(container, non_missing)
        if container.get("restartPolicy") == "Always":
            _add(total, requests)  # a sidecar runs alongside the regular containers
            _add(sidecars, requests)
            during = dict(sidecars)
        else:
            during = dict(requests)
            _add(during, sidecars)  # sidecars started before this init container keep running
        _max(init_peak, during)
    _max(total, init_peak)
    if overhead := spec.get("overhead"):
        _add(total, parse_resource_list(overhead))
    return total


@dataclass(slots=True)
class Resource:
    """framework.Resource: integer amounts — CPU in millicores, the rest in whole units.

    `allowed_pod_number` is only meaningful for a node's allocatable (its `pods` entry).
    """

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    allowed_pod_number: int = 0
    scalar: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_quantities(cls, resources: Mapping[str, Quantity]) -> Resource:
        """Resource.Add over a ResourceList: names the scheduler does not count are ignored."""
        res = cls()
        for name, quantity in resources.items():
            if name == CPU:
                res.milli_cpu += quantity.milli_value()
            elif name == MEMORY:
                res.memory += quantity.value()
            elif name == PODS:
                res.allowed_pod_number += quantity.value()
            elif name == EPHEMERAL_STORAGE:
                res.ephemeral_storage += quantity.value()
            elif is_scalar_resource_name(name):
                res.scalar[name] = res.scalar.get(name, 0) + quantity.value()
        return res

    @classmethod
    def from_json(cls, resources: Mapping[str, Any] | None) -> Resource:
        """A JSON ResourceList, e.g. a node's `status.allocatable`."""
        return cls.from_quantities(parse_resource_list(resources))

    def add(self, other: Resource) -> None:
        self.milli_cpu += other.milli_cpu
        self.memory += other.memory
        self.ephemeral_storage += other.ephemeral_storage
        self.allowed_pod_number += other.allowed_pod_number
        for name, amount in other.scalar.items():
            self.scalar[name] = self.scalar.get(name, 0) + amount

    def subtract(self, other: Resource) -> None:
        self.milli_cpu -= other.milli_cpu
        self.memory -= other.memory
        self.ephemeral_storage -= other.ephemeral_storage
        self.allowed_pod_number -= other.allowed_pod_number
        for name, amount in other.scalar.items():
            left = self.scalar.get(name, 0) - amount
            if left:
                self.scalar[name] = left
            else:
                self.scalar.pop(name, None)

    def clone(self) -> Resource:
        return Resource(self.milli_cpu, self.memory, self.ephemeral_storage, self.allowed_pod_number, dict(self.scalar))

    def get(self, name: str) -> int:
        """The amount of one resource by its API name (0 when absent)."""
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL_STORAGE:
            return self.ephemeral_storage
        if name == PODS:
            return self.allowed_pod_number
        return self.scalar.get(name, 0)


def pod_resource_request(pod: Mapping[str, Any]) -> Resource:
    """What NodeResourcesFit checks and NodeInfo.Requested accumulates for one pod."""
    return Resource.from_quantities(pod_requests(pod))


def pod_non_zero_request(pod: Mapping[str, Any]) -> tuple[int, int]:
    """(millicores, memory bytes) with the scoring defaults for containers that state no request:
    what NodeInfo.NonZeroRequested accumulates and LeastAllocated scores with."""
    requests = pod_requests(pod, non_missing=NON_ZERO_DEFAULTS)
    cpu = requests.get(CPU)
    memory = requests.get(MEMORY)
    return (cpu.milli_value() if cpu else 0, memory.value() if memory else 0)


__all__ = [
    "CPU",
    "DEFAULT_MEMORY_REQUEST",
    "DEFAULT_MILLI_CPU_REQUEST",
    "EPHEMERAL_STORAGE",
    "MEMORY",
    "NON_ZERO_DEFAULTS",
    "PODS",
    "Resource",
    "is_extended_resource_name",
    "is_scalar_resource_name",
    "parse_resource_list",
    "pod_non_zero_request",
    "pod_requests",
    "pod_resource_request",
]
