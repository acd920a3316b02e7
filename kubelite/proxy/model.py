"""What the proxy should do, computed from Services and EndpointSlices: one `ServicePortPlan` per service port.

Pure functions, no I/O: `build_plans(services, slices, node_name=...)` is what both proxy back ends (nftables and
userspace) render; table-tested in tests/unit/test_proxy_model.py.

Endpoint choice follows upstream kube-proxy's topology rules (pkg/proxy/topology.go):

* cluster-wide endpoints = the ready ones; when none is ready, the serving-and-terminating ones (so a rolling
  update that leaves only terminating pods still answers rather than dropping traffic);
* local endpoints (this node's, by `nodeName`) = the local ready ones; when none, the local serving-and-terminating
  ones;
* ClusterIP traffic uses the local endpoints when `internalTrafficPolicy: Local`, else the cluster-wide ones;
  NodePort / LoadBalancer / externalIP traffic uses the local endpoints when `externalTrafficPolicy: Local`
  (and is then not SNATed, keeping the client's source address), else the cluster-wide ones.

A missing condition counts as upstream's API says: `ready` nil = ready, `serving` nil = the value of `ready`,
`terminating` nil = false.  Endpoints are de-duplicated by address (a pod may briefly sit in two slices) and
sorted, so equal inputs give equal plans (the incremental sync compares plans).  Headless (clusterIP None) and
ExternalName Services get no plan.  Topology hints (zones) are not used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_AFFINITY_SECONDS",
    "Endpoint",
    "ServicePortName",
    "ServicePortPlan",
    "build_plans",
    "select_endpoints",
    "slice_endpoints",
]

DEFAULT_AFFINITY_SECONDS = 10800  # upstream's default sessionAffinityConfig.clientIP.timeoutSeconds
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True, order=True, slots=True)
class ServicePortName:
    """One port of one Service: `namespace/name:port` (`port` is the ServicePort's name, "" when unnamed)."""

    namespace: str
    name: str
    port: str = ""
    protocol: str = "TCP"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}" if self.port else f"{self.namespace}/{self.name}"


@dataclass(frozen=True, order=True, slots=True)
class Endpoint:
    """One backend address:port for one service port, with the conditions and node the slice gave."""

    ip: str
    port: int
    node_name: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServicePortPlan:
    """Everything the proxy needs for one service port.

    `cluster_endpoints` serve ClusterIP traffic, `external_endpoints` serve NodePort/LB/externalIP traffic (both
    already filtered by the traffic policies); `has_endpoints` tells "no endpoints at all" (reject) apart from
    "none for this kind of traffic on this node" (drop external traffic, as upstream).
    """

    name: ServicePortName
    protocol: str
    port: int
    cluster_ips: tuple[str, ...]
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    cluster_endpoints: tuple[Endpoint, ...] = ()
    external_endpoints: tuple[Endpoint, ...] = ()
    has_endpoints: bool = False
    internal_local: bool = False
    external_local: bool = False
    affinity_seconds: int = 0  # 0: no session affinity
    all_endpoints: tuple[Endpoint, ...] = field(default=(), compare=True)

    @property
    def external_destinations(self) -> tuple[str, ...]:
        """The addresses other than the ClusterIPs on which this port is served (externalIPs, LB ingress)."""
        return tuple(dict.fromkeys((*self.external_ips, *self.load_balancer_ips)))

    @property
    def has_external(self) -> bool:
        return bool(self.node_port or self.external_destinations)


def _is_ipv4(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)
    except ValueError:
        return False


def _condition(conditions: Mapping[str, Any], key: str, default: bool) -> bool:
    value = conditions.get(key)
    return default if value is None else bool(value)


def slice_endpoints(slices: Iterable[Mapping[str, Any]], port_name: str, protocol: str) -> list[Endpoint]:
    """The IPv4 endpoints for the service port named `port_name` across a Service's slices, de-duplicated by
    address and port (the first slice seen wins) and sorted."""
    found: dict[tuple[str, int], Endpoint] = {}
    for endpoint_slice in slices:
        if endpoint_slice.get("addressType", "IPv4") != "IPv4":
            continue
        port = next(
            (
                p
                for p in endpoint_slice.get("ports") or ()
                if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol
            ),
            None,
        )
        if port is None or not port.get("port"):
            continue
        for item in endpoint_slice.get("endpoints") or ():
            conditions = item.get("conditions") or {}
            ready = _condition(conditions, "ready", True)
            for address in item.get("addresses") or ():
                if not _is_ipv4(address):
                    continue
                key = (address, int(port["port"]))
                found.setdefault(
                    key,
                    Endpoint(
                        ip=address,
                        port=int(port["port"]),
                        node_name=str(item.get("nodeName") or ""),
                        ready=ready,
                        serving=_condition(conditions, "serving", ready),
                        terminating=_condition(conditions, "terminating", False),
                    ),
                )
    return sorted(found.values())


def select_endpoints(
    endpoints: Iterable[Endpoint], *, node_name: str, internal_local: bool, external_local: bool
) -> tuple[tuple[Endpoint, ...], tuple[Endpoint, ...]]:
    """(cluster-traffic endpoints, external-traffic endpoints) under upstream's topology rules (module doc)."""
    endpoints = list(endpoints)

    def usable(candidates: list[Endpoint]) -> tuple[Endpoint, ...]:
        ready = [e for e in candidates if e.ready]
        if ready:
            return tuple(ready)
        return tuple(e for e in candidates if e.serving and e.terminating)

    cluster_wide = usable(endpoints)
    local = usable([e for e in endpoints if e.node_name == node_name])
    return (local if internal_local else cluster_wide), (local if external_local else cluster_wide)


def _ips(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v) for v in values if v and _is_ipv4(str(v))))


def _service_ips(service: Mapping[str, Any]) -> tuple[str, ...]:
    spec = service.get("spec") or {}
    return _ips(spec.get("clusterIPs") or [spec.get("clusterIP")])


def _affinity_seconds(spec: Mapping[str, Any]) -> int:
    if spec.get("sessionAffinity") != "ClientIP":
        return 0
    config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
    return int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_SECONDS)


def is_proxied(service: Mapping[str, Any]) -> bool:
    """False for the Services a proxy ignores: ExternalName and headless ones (no ClusterIP)."""
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return False
    return bool(_service_ips(service))


def build_plans(
    services: Iterable[Mapping[str, Any]],
    slices: Iterable[Mapping[str, Any]],
    *,
    node_name: str,
) -> dict[ServicePortName, ServicePortPlan]:
    """One plan per port of every proxied Service; slices are matched to Services by the
    `kubernetes.io/service-name` label in the Service's namespace."""
    by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for endpoint_slice in slices:
        meta = endpoint_slice.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if owner:
            by_service.setdefault((meta.get("namespace") or "", owner), []).append(endpoint_slice)
    plans: dict[ServicePortName, ServicePortPlan] = {}
    for service in services:
        if not is_proxied(service):
            continue
        for plan in service_plans(service, by_service, node_name=node_name):
            plans[plan.name] = plan
    return plans


def service_plans(
    service: Mapping[str, Any],
    slices_by_service: Mapping[tuple[str, str], list[Mapping[str, Any]]],
    *,
    node_name: str,
) -> list[ServicePortPlan]:
    """The plans for one proxied Service (see `build_plans`)."""
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    slices = slices_by_service.get((namespace, name), [])
    internal_local = spec.get("internalTrafficPolicy") == "Local"
    service_type = spec.get("type") or "ClusterIP"
    external_ips = _ips(spec.get("externalIPs") or ())
    lb_ips: tuple[str, ...] = ()
    if service_type == "LoadBalancer":
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
        lb_ips = _ips(item.get("ip") for item in ingress)
    plans = []
    for port in spec.get("ports") or ():
        protocol = port.get("protocol") or "TCP"
        if protocol not in PROTOCOLS or not port.get("port"):
            continue
        port_name = port.get("name") or ""
        node_port = int(port.get("nodePort") or 0) if service_type in ("NodePort", "LoadBalancer") else 0
        external = bool(node_port or external_ips or lb_ips)
        external_local = external and spec.get("externalTrafficPolicy") == "Local"
        endpoints = slice_endpoints(slices, port_name, protocol)
        cluster, ext = select_endpoints(
            endpoints, node_name=node_name, internal_local=internal_local, external_local=external_local
        )
        plans.append(
            ServicePortPlan(
                name=ServicePortName(namespace, name, port_name, protocol),
                protocol=protocol,
                port=int(port["port"]),
                cluster_ips=_service_ips(service),
                node_port=node_port,
                external_ips=external_ips,
                load_balancer_ips=lb_ips,
                cluster_endpoints=cluster,
                external_endpoints=ext if external else (),
                has_endpoints=any(e.ready or (e.serving and e.terminating) for e in endpoints),
                internal_local=internal_local,
                external_local=external_local,
                affinity_seconds=_affinity_seconds(spec),
                all_endpoints=tuple(endpoints),
            )
        )
    return plans
