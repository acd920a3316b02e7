"""Pure facts about Services and the pods behind them, shared by the EndpointSlice and Endpoints
controllers (upstream's endpointutil / podutil.FindPort / endpointsliceutil helpers).

Contracts:

* `service_selector` is None for a Service this family of controllers must leave alone: no selector
  (its endpoints are written by someone else: the API server for `default/kubernetes`, node agents for
  `kube-system/kube-dns`) or `type: ExternalName`.
* `find_port` resolves a Service port's `targetPort` in one pod: a number is taken as is; a name is
  looked up, with the Service port's protocol, in the pod's containers and then in its restartable init
  containers (sidecars); None when the name does not resolve in that pod.
* `TriggerTimeTracker` computes the `endpoints.kubernetes.io/last-change-trigger-time` value as upstream:
  the Service's creationTimestamp on the first sync of a Service, afterwards the earliest pod Ready
  transition (or Service creation) that changed since the previous sync; None when nothing did.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubelite.controllers.podutil import condition, is_terminal, is_terminating
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import parse_time
from kubelite.machinery.selectors import LabelSelector, selector_from_set

LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS_LABEL = "service.kubernetes.io/headless"
ZONE_LABEL = "topology.kubernetes.io/zone"
CLUSTER_IP_NONE = "None"


def is_namespace_terminating(exc: ApiError) -> bool:
    """A create refused because the namespace is going away: nothing to retry."""
    return any(cause.reason == "NamespaceTerminating" for cause in exc.causes)


def service_selector(service: Mapping[str, Any]) -> LabelSelector | None:
    """The pod selector of a Service whose endpoints these controllers own; None otherwise."""
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return None
    selector = spec.get("selector")
    if not selector:
        return None
    return selector_from_set(selector)


def is_service_ip_set(service: Mapping[str, Any]) -> bool:
    """False for headless Services (and for ones without a ClusterIP yet), as upstream's IsServiceIPSet."""
    cluster_ip = (service.get("spec") or {}).get("clusterIP") or ""
    return cluster_ip not in ("", CLUSTER_IP_NONE)


def publishes_not_ready(service: Mapping[str, Any]) -> bool:
    return bool((service.get("spec") or {}).get("publishNotReadyAddresses"))


def pod_ipv4(pod: Mapping[str, Any]) -> str | None:
    """The pod's IPv4 address (status.podIPs first, then status.podIP); None when it has none."""
    status = pod.get("status") or {}
    candidates = [entry.get("ip") for entry in status.get("podIPs") or ()] + [status.get("podIP")]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            if ipaddress.ip_address(candidate).version == 4:
                return str(candidate)
        except ValueError:
            continue
    return None


def has_pod_ip(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    return bool(status.get("podIP") or status.get("podIPs"))


def should_pod_be_in_endpoints(pod: Mapping[str, Any], *, include_terminating: bool) -> bool:
    """Not finished, has an address, and (unless `include_terminating`) not being deleted."""
    if is_terminal(pod) or not has_pod_ip(pod):
        return False
    return include_terminating or not is_terminating(pod)


def should_set_hostname(pod: Mapping[str, Any], service: Mapping[str, Any]) -> bool:
    """A pod names itself in a Service's DNS when it sets `spec.hostname` and its `spec.subdomain` is
    that Service (same namespace)."""
    spec = pod.get("spec") or {}
    pod_meta, svc_meta = pod.get("metadata") or {}, service.get("metadata") or {}
    return (
        bool(spec.get("hostname"))
        and spec.get("subdomain") == svc_meta.get("name")
        and pod_meta.get("namespace") == svc_meta.get("namespace")
    )


def _is_sidecar(container: Mapping[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


def find_port(pod: Mapping[str, Any], service_port: Mapping[str, Any]) -> int | None:
    """The container port `service_port.targetPort` means in `pod`; see the module docstring."""
    target = service_port.get("targetPort")
    if target is None or target == "":
        return int(service_port.get("port") or 0) or None
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or ()) + [c for c in spec.get("initContainers") or () if _is_sidecar(c)]
    for container in containers:
        for port in container.get("ports") or ():
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def endpoint_port(service_port: Mapping[str, Any], number: int) -> dict[str, Any]:
    """The discovery.k8s.io/v1 EndpointPort (and core/v1 EndpointPort) for a resolved Service port."""
    port: dict[str, Any] = {
        "name": service_port.get("name") or "",
        "port": number,
        "protocol": service_port.get("protocol") or "TCP",
    }
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def resolved_ports(service: Mapping[str, Any], pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Service's ports that resolve in `pod`, in the Service's order (unresolved ones are left out,
    so pods that differ here land in different slices/subsets)."""
    ports = []
    for service_port in (service.get("spec") or {}).get("ports") or ():
        number = find_port(pod, service_port)
        if number is not None:
            ports.append(endpoint_port(service_port, number))
    return ports


def target_ref(pod: Mapping[str, Any]) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    return {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta.get("name"), "uid": meta.get("uid")}


def pods_selected(selector: LabelSelector, pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [pod for pod in pods if selector.matches((pod.get("metadata") or {}).get("labels") or {})]


# -- last-change-trigger-time -----------------------------------------------------------------------


def pod_trigger_time(pod: Mapping[str, Any]) -> datetime | None:
    ready = condition(pod, "Ready")
    stamp = (ready or {}).get("lastTransitionTime")
    return parse_time(stamp) if stamp else None


def service_trigger_time(service: Mapping[str, Any]) -> datetime | None:
    stamp = (service.get("metadata") or {}).get("creationTimestamp")
    return parse_time(stamp) if stamp else None


@dataclass
class _TriggerState:
    service_time: datetime | None = None
    pod_times: dict[str, datetime] = field(default_factory=dict)


class TriggerTimeTracker:
    """Per-Service memory of the trigger times seen at the previous sync (see the module docstring).
    Not safe for concurrent calls on one Service key; the work queue guarantees there are none."""

    def __init__(self) -> None:
        self._states: dict[str, _TriggerState] = {}

    def compute(self, key: str, service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> datetime | None:
        state = self._states.get(key)
        known = state is not None
        state = state or _TriggerState()
        earliest: datetime | None = None
        pod_times: dict[str, datetime] = {}
        for pod in pods:
            moment = pod_trigger_time(pod)
            if moment is None:
                continue
            name = str((pod.get("metadata") or {}).get("name") or "")
            pod_times[name] = moment
            previous = state.pod_times.get(name)
            if previous is None or moment > previous:
                earliest = moment if earliest is None or moment < earliest else earliest
        service_time = service_trigger_time(service)
        if service_time is not None and (state.service_time is None or service_time > state.service_time):
            earliest = service_time if earliest is None or service_time < earliest else earliest
        self._states[key] = _TriggerState(service_time, pod_times)
        if not known:
            return service_time
        return earliest

    def forget(self, key: str) -> None:
        self._states.pop(key, None)


__all__ = [
    "CLUSTER_IP_NONE",
    "HEADLESS_LABEL",
    "LAST_CHANGE_TRIGGER_TIME",
    "ZONE_LABEL",
    "TriggerTimeTracker",
    "endpoint_port",
    "find_port",
    "has_pod_ip",
    "is_namespace_terminating",
    "is_service_ip_set",
    "pod_ipv4",
    "pod_trigger_time",
    "pods_selected",
    "publishes_not_ready",
    "resolved_ports",
    "service_selector",
    "service_trigger_time",
    "should_pod_be_in_endpoints",
    "should_set_hostname",
    "target_ref",
]
