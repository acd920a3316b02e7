"""The scheduler's view of the cluster: `PodInfo`, `NodeInfo` and the `Snapshot` one scheduling cycle
reads (upstream's framework.PodInfo / NodeInfo and the cache snapshot).

Contracts:

* A `PodInfo` wraps a pod dict and derives, once, what every plugin needs (requests, priority, host
  ports).  The dict is never modified; treat it as read-only, as any object from an informer cache.
  `cache` lets a plugin memoise a pure function of the pod (keyed by the plugin's NAME).
* A `NodeInfo` aggregates the pods bound to one node.  `add_pod`/`remove_pod` update the aggregates
  incrementally, so the shell can keep NodeInfos in step with informer events instead of rebuilding.
  Pods are keyed by UID (namespace/name when there is none), as upstream keys them.
* A `Snapshot` is a list of NodeInfos in a stable order.  Scheduling reads it and never changes it;
  the shell "assumes" a decision by adding the pod to the chosen NodeInfo (`Snapshot.assume`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from kubelite.scheduler.resources import Resource, pod_non_zero_request, pod_resource_request

DEFAULT_BIND_ALL_HOST_IP = "0.0.0.0"
_TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})

HostPort = tuple[str, str, int]  # (host IP, protocol, host port), defaults filled in


def pod_key(pod: Mapping[str, Any]) -> str:
    """The key pods are indexed by: the UID, or "namespace/name" for objects without one (tests)."""
    meta = pod.get("metadata") or {}
    return meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def pod_priority(pod: Mapping[str, Any]) -> int:
    """corev1helpers.PodPriority: `spec.priority`, 0 when unset."""
    priority = (pod.get("spec") or {}).get("priority")
    return priority if isinstance(priority, int) else 0


def pod_host_ports(pod: Mapping[str, Any]) -> tuple[HostPort, ...]:
    """The host ports the pod's regular containers ask for (1.32 ignores sidecars' host ports)."""
    ports = []
    for container in (pod.get("spec") or {}).get("containers") or ():
        for port in container.get("ports") or ():
            host_port = port.get("hostPort") or 0
            if host_port > 0:
                ports.append((port.get("hostIP") or DEFAULT_BIND_ALL_HOST_IP, port.get("protocol") or "TCP", host_port))
    return tuple(ports)


class PodInfo:
    """A pod and what the scheduler derives from it once (framework.PodInfo)."""

    __slots__ = (
        "cache",
        "host_ports",
        "key",
        "name",
        "namespace",
        "non_zero_memory",
        "non_zero_milli_cpu",
        "pod",
        "priority",
        "requests",
        "spec",
    )

    def __init__(self, pod: Mapping[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        self.pod = pod
        self.spec: Mapping[str, Any] = pod.get("spec") or {}
        self.key = pod_key(pod)
        self.name: str = meta.get("name", "")
        self.namespace: str = meta.get("namespace", "")
        self.priority = pod_priority(pod)
        self.requests = pod_resource_request(pod)
        self.non_zero_milli_cpu, self.non_zero_memory = pod_non_zero_request(pod)
        self.host_ports = pod_host_ports(pod)
        self.cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"PodInfo({self.namespace}/{self.name})"


def as_pod_info(pod: PodInfo | Mapping[str, Any]) -> PodInfo:
    return pod if isinstance(pod, PodInfo) else PodInfo(pod)


class HostPortInfo:
    """Host ports in use on a node, by host IP (framework.HostPortInfo).

    Reference-counted, unlike upstream's set, so removing one of two pods that (against the rules)
    share a port does not free it.  0.0.0.0 conflicts with every IP for the same protocol and port.
    """

    __slots__ = ("_by_ip",)

    def __init__(self) -> None:
        self._by_ip: dict[str, Counter[tuple[str, int]]] = {}

    def add(self, ip: str, protocol: str, port: int) -> None:
        if port > 0:
            self._by_ip.setdefault(ip or DEFAULT_BIND_ALL_HOST_IP, Counter())[(protocol or "TCP", port)] += 1

    def remove(self, ip: str, protocol: str, port: int) -> None:
        ip = ip or DEFAULT_BIND_ALL_HOST_IP
        used = self._by_ip.get(ip)
        if port <= 0 or used is None:
            return
        entry = (protocol or "TCP", port)
        used[entry] -= 1
        if used[entry] <= 0:
            del used[entry]
        if not used:
            del self._by_ip[ip]

    def conflicts(self, ip: str, protocol: str, port: int) -> bool:
        """CheckConflict: would binding (ip, protocol, port) clash with a port in use?"""
        if port <= 0:
            return False
        ip = ip or DEFAULT_BIND_ALL_HOST_IP
        entry = (protocol or "TCP", port)
        if ip == DEFAULT_BIND_ALL_HOST_IP:
            return any(entry in used for used in self._by_ip.values())
        return any(entry in self._by_ip.get(key, ()) for key in (DEFAULT_BIND_ALL_HOST_IP, ip))

    def __len__(self) -> int:
        return sum(len(used) for used in self._by_ip.values())

    def __bool__(self) -> bool:
        return bool(self._by_ip)

    def clone(self) -> HostPortInfo:
        copy = HostPortInfo()
        copy._by_ip = {ip: Counter(used) for ip, used in self._by_ip.items()}
        return copy


class NodeInfo:
    """A node and the pods bound to it, with the aggregates filters and scores read.

    `requested` sums the pods' requests; `non_zero_requested` sums CPU and memory with the scoring
    defaults for unstated requests; `allocatable` is the node's `status.allocatable`;
    `used_ports` the host ports taken.  Not thread-safe; one writer (the shell) at a time.
    """

    __slots__ = (
        "allocatable",
        "labels",
        "name",
        "node",
        "non_zero_requested",
        "pods",
        "requested",
        "taints",
        "unschedulable",
        "used_ports",
    )

    def __init__(self, node: Mapping[str, Any]) -> None:
        self.pods: dict[str, PodInfo] = {}
        self.requested = Resource()
        self.non_zero_requested = Resource()
        self.used_ports = HostPortInfo()
        self.set_node(node)

    @classmethod
    def from_node(cls, node: Mapping[str, Any], pods: Iterable[PodInfo | Mapping[str, Any]] = ()) -> NodeInfo:
        info = cls(node)
        for pod in pods:
            info.add_pod(pod)
        return info

    def set_node(self, node: Mapping[str, Any]) -> None:
        """Replace the node object (labels, taints, allocatable changed); the pods stay."""
        spec = node.get("spec") or {}
        self.node = node
        self.name: str = (node.get("metadata") or {}).get("name", "")
        self.labels: Mapping[str, str] = (node.get("metadata") or {}).get("labels") or {}
        self.taints: list[Mapping[str, Any]] = spec.get("taints") or []
        self.unschedulable: bool = spec.get("unschedulable") is True
        self.allocatable = Resource.from_json((node.get("status") or {}).get("allocatable"))

    def add_pod(self, pod: PodInfo | Mapping[str, Any]) -> PodInfo:
        """Account for a pod bound to this node.  Adding a pod already present replaces it."""
        info = as_pod_info(pod)
        if info.key in self.pods:
            self.remove_pod(info)
        self.pods[info.key] = info
        self.requested.add(info.requests)
        self.non_zero_requested.milli_cpu += info.non_zero_milli_cpu
        self.non_zero_requested.memory += info.non_zero_memory
        for ip, protocol, port in info.host_ports:
            self.used_ports.add(ip, protocol, port)
        return info

    def remove_pod(self, pod: PodInfo | Mapping[str, Any]) -> bool:
        """Forget a pod (by key); False if it was not here.  The stored PodInfo is what is
        subtracted, so a newer version of the pod object removes the old accounting exactly."""
        key = pod.key if isinstance(pod, PodInfo) else pod_key(pod)
        info = self.pods.pop(key, None)
        if info is None:
            return False
        self.requested.subtract(info.requests)
        self.non_zero_requested.milli_cpu -= info.non_zero_milli_cpu
        self.non_zero_requested.memory -= info.non_zero_memory
        for ip, protocol, port in info.host_ports:
            self.used_ports.remove(ip, protocol, port)
        return True

    def clone(self) -> NodeInfo:
        """An independent copy (for what-if evaluation, e.g. preemption); PodInfos are shared."""
        copy = NodeInfo.__new__(NodeInfo)
        copy.node = self.node
        copy.name = self.name
        copy.labels = self.labels
        copy.taints = self.taints
        copy.unschedulable = self.unschedulable
        copy.allocatable = self.allocatable
        copy.pods = dict(self.pods)
        copy.requested = self.requested.clone()
        copy.non_zero_requested = self.non_zero_requested.clone()
        copy.used_ports = self.used_ports.clone()
        return copy

    @property
    def pod_count(self) -> int:
        return len(self.pods)

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)})"


def is_terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in _TERMINAL_PHASES


class Snapshot:
    """The NodeInfos one scheduling cycle sees, in a stable order, with lookup by node name."""

    __slots__ = ("_by_name", "node_infos")

    def __init__(self, node_infos: Iterable[NodeInfo] = ()) -> None:
        self.node_infos: list[NodeInfo] = list(node_infos)
        self._by_name = {info.name: info for info in self.node_infos}

    @classmethod
    def from_objects(cls, nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]] = ()) -> Snapshot:
        """Build from informer contents: each non-terminal pod with `spec.nodeName` counts on its
        node (the scheduler's pod informer excludes Succeeded and Failed pods); pods bound to
        unknown nodes are ignored."""
        infos = [NodeInfo(node) for node in nodes]
        by_name = {info.name: info for info in infos}
        for pod in pods:
            info = by_name.get((pod.get("spec") or {}).get("nodeName") or "")
            if info is not None and not is_terminal(pod):
                info.add_pod(pod)
        return cls(infos)

    def get(self, name: str) -> NodeInfo | None:
        return self._by_name.get(name)

    def add_node(self, info: NodeInfo) -> None:
        """Add a NodeInfo, or replace the one with the same name in place."""
        old = self._by_name.get(info.name)
        if old is not None:
            self.node_infos[self.node_infos.index(old)] = info
        else:
            self.node_infos.append(info)
        self._by_name[info.name] = info

    def remove_node(self, name: str) -> NodeInfo | None:
        info = self._by_name.pop(name, None)
        if info is not None:
            self.node_infos.remove(info)
        return info

    def assume(self, pod: PodInfo | Mapping[str, Any], node_name: str) -> PodInfo:
        """Account for a pod the scheduler just placed on `node_name` (before the bind lands)."""
        info = self._by_name.get(node_name)
        if info is None:
            raise KeyError(node_name)
        return info.add_pod(pod)

    def __len__(self) -> int:
        return len(self.node_infos)

    def __iter__(self) -> Iterator[NodeInfo]:
        return iter(self.node_infos)


__all__ = [
    "HostPortInfo",
    "NodeInfo",
    "PodInfo",
    "Snapshot",
    "as_pod_info",
    "is_terminal",
    "pod_host_ports",
    "pod_key",
    "pod_priority",
]
