"""Admission of a pod onto this node: the host-port check the kubelet runs before it starts a pod.

The kubelet re-runs the scheduler's NodePorts filter when a pod arrives (pkg/kubelet/lifecycle): a pod
asking for a host port that an admitted pod already holds is rejected — phase Failed, reason
``NodePorts``, message ``Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for
the requested pod ports`` and a Warning event with the same reason — instead of starting and failing
to bind.  Pods are admitted in the order they arrive (creation order at start-up).

Which ports are host ports: ``hostPort`` of any container port; and every ``containerPort`` of a pod that
shares the node's network — a hostNetwork pod (as the API server defaults hostPort for those), or any pod
when the node runs pods in host-network mode (no root).  Two ports clash when protocol and port match and
their host IPs overlap (equal, or either one unset / ``0.0.0.0``).  Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NODE_PORTS_MESSAGE",
    "NODE_PORTS_REASON",
    "HostPort",
    "Rejection",
    "admit",
    "host_ports",
]

NODE_PORTS_REASON = "NodePorts"
NODE_PORTS_MESSAGE = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
REJECTED_PREFIX = "Pod was rejected: "
ANY_IP = "0.0.0.0"


@dataclass(frozen=True, slots=True)
class HostPort:
    ip: str
    protocol: str
    port: int

    def clashes(self, other: HostPort) -> bool:
        if (self.protocol, self.port) != (other.protocol, other.port):
            return False
        return self.ip == ANY_IP or other.ip == ANY_IP or self.ip == other.ip


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a pod was not admitted: `reason` for the event and status, `message` for the event;
    the status message is `status_message`."""

    reason: str
    message: str

    @property
    def status_message(self) -> str:
        return REJECTED_PREFIX + self.message


def host_ports(pod: dict[str, Any], *, node_network: bool) -> list[HostPort]:
    """The node ports `pod` holds (module docstring); `node_network`: every pod shares the node's network."""
    spec = pod.get("spec") or {}
    shared = node_network or bool(spec.get("hostNetwork"))
    found = []
    containers = [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
    for container in containers:
        for port in container.get("ports") or ():
            number = port.get("hostPort") or (port.get("containerPort") if shared else None)
            if not number:
                continue
            ip = str(port.get("hostIP") or ANY_IP)
            found.append(HostPort(ip, str(port.get("protocol") or "TCP"), int(number)))
    return found


def admit(pod: dict[str, Any], admitted: Iterable[dict[str, Any]], *, node_network: bool) -> Rejection | None:
    """None when `pod` may run beside the `admitted` (running, not finished) pods; else the rejection."""
    wanted = host_ports(pod, node_network=node_network)
    if not wanted:
        return None
    held = [p for other in admitted for p in host_ports(other, node_network=node_network)]
    if any(w.clashes(h) for w in wanted for h in held):
        return Rejection(NODE_PORTS_REASON, NODE_PORTS_MESSAGE)
    return None
