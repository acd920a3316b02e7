"""Service field helpers shared by allocation and the update strategy (upstream's `pkg/api/service`
helpers and the `dropTypeDependentFields` / `patchAllocatedValues` / `NormalizeClusterIPs` steps of
the service strategy and REST storage), on JSON dicts.  Pure; functions that change a Service
mutate the `spec` dict they are given (the caller's own copy).
"""

from __future__ import annotations

from typing import Any

Spec = dict[str, Any]

NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


def service_type(spec: Spec) -> str:
    return str(spec.get("type") or "ClusterIP")


def needs_cluster_ip(spec: Spec) -> bool:
    return service_type(spec) != "ExternalName"


def needs_node_port(spec: Spec) -> bool:
    return service_type(spec) in NODE_PORT_TYPES


def needs_health_check(spec: Spec) -> bool:
    """Upstream's `NeedsHealthCheck`: a LoadBalancer that keeps traffic on the receiving node."""
    return service_type(spec) == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def should_allocate_node_ports(spec: Spec) -> bool:
    """LoadBalancers may opt out (`allocateLoadBalancerNodePorts: false`); requested ports still count."""
    if service_type(spec) == "LoadBalancer":
        return spec.get("allocateLoadBalancerNodePorts") is not False
    return service_type(spec) == "NodePort"


def cluster_ips(spec: Spec) -> list[str]:
    ips = [str(ip) for ip in spec.get("clusterIPs") or () if ip]
    if not ips and spec.get("clusterIP"):
        ips = [str(spec["clusterIP"])]
    return ips


def is_headless(spec: Spec) -> bool:
    ips = cluster_ips(spec)
    return bool(ips) and ips[0] == "None"


def node_ports(spec: Spec) -> list[int]:
    return [int(p["nodePort"]) for p in _ports(spec) if _int(p.get("nodePort"))]


def health_check_node_port(spec: Spec) -> int:
    return _int(spec.get("healthCheckNodePort"))


def normalize_cluster_ips(new: Spec, old: Spec | None) -> None:
    """Keep `clusterIP` and `clusterIPs` in step for clients that only manage one of them."""
    if old is None:
        if new.get("clusterIP") and not new.get("clusterIPs"):
            new["clusterIPs"] = [new["clusterIP"]]
        return
    if not new.get("clusterIPs") and new.get("clusterIP") and new.get("clusterIP") == old.get("clusterIP"):
        new["clusterIPs"] = list(old.get("clusterIPs") or [new["clusterIP"]])
    if new.get("clusterIP") != old.get("clusterIP"):
        same_list = (new.get("clusterIPs") or []) == (old.get("clusterIPs") or [])
        if old.get("clusterIP") and not new.get("clusterIP"):
            if same_list:
                new.pop("clusterIPs", None)
        elif same_list:
            new["clusterIPs"] = [new.get("clusterIP")]


def drop_type_dependent_fields(new: Spec, old: Spec) -> None:
    """On a type change, clear what the old type had allocated or defaulted, unless the client set it."""
    if needs_cluster_ip(old) and not needs_cluster_ip(new):
        if _same(new, old, "clusterIP") and _same(new, old, "clusterIPs"):
            new.pop("clusterIP", None)
            new.pop("clusterIPs", None)
        if _same(new, old, "ipFamilies"):
            new.pop("ipFamilies", None)
        if _same(new, old, "ipFamilyPolicy"):
            new.pop("ipFamilyPolicy", None)
    if needs_node_port(old) and not needs_node_port(new) and node_ports(new) == node_ports(old):
        for port in _ports(new):
            port.pop("nodePort", None)
    if needs_health_check(old) and not needs_health_check(new) and _same(new, old, "healthCheckNodePort"):
        new.pop("healthCheckNodePort", None)
    if service_type(old) == "LoadBalancer" and service_type(new) != "LoadBalancer":
        if old.get("allocateLoadBalancerNodePorts") is not None and _same(new, old, "allocateLoadBalancerNodePorts"):
            new.pop("allocateLoadBalancerNodePorts", None)
        if _same(new, old, "loadBalancerClass"):
            new.pop("loadBalancerClass", None)
    if needs_node_port(old) and not needs_node_port(new) and _same(new, old, "externalTrafficPolicy"):
        new.pop("externalTrafficPolicy", None)
    if service_type(new) == "ExternalName" and _same(new, old, "internalTrafficPolicy"):
        new.pop("internalTrafficPolicy", None)


def patch_allocated_values(new: Spec, old: Spec) -> None:
    """Values the server allocated survive an update that leaves them out (re-submitted YAML works)."""
    if needs_cluster_ip(old) and needs_cluster_ip(new):
        if not new.get("clusterIP") and old.get("clusterIP"):
            new["clusterIP"] = old["clusterIP"]
        if not new.get("clusterIPs") and old.get("clusterIPs"):
            new["clusterIPs"] = list(old["clusterIPs"])
    if needs_node_port(old) and needs_node_port(new):
        kept = set(node_ports(old)) & set(node_ports(new))
        by_name = {str(p.get("name") or ""): _int(p.get("nodePort")) for p in _ports(old)}
        for port in _ports(new):
            if _int(port.get("nodePort")):
                continue
            previous = by_name.get(str(port.get("name") or ""), 0)
            if previous and previous not in kept:
                port["nodePort"] = previous
    if needs_health_check(old) and needs_health_check(new) and not health_check_node_port(new):
        if health_check_node_port(old):
            new["healthCheckNodePort"] = health_check_node_port(old)


def _ports(spec: Spec) -> list[dict[str, Any]]:
    return [p for p in spec.get("ports") or () if isinstance(p, dict)]


def _same(new: Spec, old: Spec, name: str) -> bool:
    return new.get(name) == old.get(name)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
