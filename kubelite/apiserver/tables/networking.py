"""Services, endpoints, endpoint slices, ingresses, ingress classes and network policies.

The API server prints tables "wide" (every column, with load-balancer addresses unclipped); kubectl
drops the priority-1 columns itself unless asked for `-o wide`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubelite.apiserver.tables import descriptions as doc
from kubelite.apiserver.tables.format import (
    AGE,
    NAME,
    Obj,
    age,
    as_int,
    as_list,
    column,
    format_label_selector,
    format_labels,
    get,
    list_with_more,
    name,
)

SERVICE_COLUMNS = [
    NAME,
    column("Type", description=doc.SVC_TYPE),
    column("Cluster-IP", description=doc.SVC_CLUSTER_IP),
    column("External-IP", description=doc.SVC_EXTERNAL_IPS),
    column("Port(s)", description=doc.SVC_PORTS),
    AGE,
    column("Selector", priority=1, description=doc.SVC_SELECTOR),
]
ENDPOINTS_COLUMNS = [NAME, column("Endpoints", description=doc.EP_SUBSETS), AGE]
ENDPOINT_SLICE_COLUMNS = [
    NAME,
    column("AddressType", description=doc.EPS_ADDRESS_TYPE),
    column("Ports", description=doc.EPS_PORTS),
    column("Endpoints", description=doc.EPS_ENDPOINTS),
    AGE,
]
INGRESS_COLUMNS = [
    NAME,
    column(
        "Class",
        description="The name of the IngressClass resource that should be used for additional configuration",
    ),
    column("Hosts", description="Hosts that incoming requests are matched against before the ingress rule"),
    column("Address", description="Address is a list containing ingress points for the load-balancer"),
    column("Ports", description="Ports of TLS configurations that open"),
    AGE,
]
INGRESS_CLASS_COLUMNS = [
    NAME,
    column("Controller", description="Controller that is responsible for handling this class"),
    column("Parameters", description="A reference to a resource with additional parameters"),
    AGE,
]
NETWORK_POLICY_COLUMNS = [NAME, column("Pod-Selector", description=doc.NP_POD_SELECTOR), AGE]


def load_balancer_addresses(status: Any) -> str:
    """`loadBalancerStatusStringer` (wide): distinct IPs or hostnames, sorted, comma-joined."""
    found = set()
    for ingress in as_list(get(status, "ingress")):
        address = get(ingress, "ip") or get(ingress, "hostname")
        if address:
            found.add(str(address))
    return ",".join(sorted(found))


def service_external_ip(svc: Obj) -> str:
    """`getServiceExternalIP`."""
    kind = get(svc, "spec", "type")
    external = [str(ip) for ip in as_list(get(svc, "spec", "externalIPs"))]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "LoadBalancer":
        lb = load_balancer_addresses(get(svc, "status", "loadBalancer"))
        if external:
            return ",".join((lb.split(",") if lb else []) + external)
        return lb or "<pending>"
    if kind == "ExternalName":
        return str(get(svc, "spec", "externalName") or "")
    return "<unknown>"


def service_ports(ports: Any) -> str:
    """`makePortString`: "80/TCP", or "80:30080/TCP" when a node port is allocated."""
    pieces = []
    for port in as_list(ports):
        protocol = get(port, "protocol") or "TCP"  # defaulted on write; absent only in unstored objects
        node_port = as_int(get(port, "nodePort"))
        if node_port > 0:
            pieces.append(f"{as_int(get(port, 'port'))}:{node_port}/{protocol}")
        else:
            pieces.append(f"{as_int(get(port, 'port'))}/{protocol}")
    return ",".join(pieces)


def service_cells(svc: Obj, now: datetime) -> list:
    # The internal type always carries clusterIPs (conversion fills it from clusterIP).
    cluster_ip = get(svc, "spec", "clusterIPs", 0) or get(svc, "spec", "clusterIP") or "<none>"
    return [
        name(svc),
        str(get(svc, "spec", "type") or ""),
        cluster_ip,
        service_external_ip(svc),
        service_ports(get(svc, "spec", "ports")) or "<none>",
        age(svc, now),
        format_labels(get(svc, "spec", "selector")),
    ]


def _host_port(ip: str, port: int) -> str:
    """`net.JoinHostPort`: IPv6 addresses get brackets."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(obj: Obj) -> str:
    """`formatEndpoints`: up to three addresses (with ports), then "+ N more..."."""
    subsets = as_list(get(obj, "subsets"))
    if not subsets:
        return "<none>"
    limit, count = 3, 0
    shown: list[str] = []
    for subset in subsets:
        addresses = [str(get(a, "ip") or "") for a in as_list(get(subset, "addresses"))]
        ports = as_list(get(subset, "ports"))
        if not ports:
            count += len(addresses)
            shown.extend(addresses[: max(0, limit - len(shown))])
            continue
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) < limit:
                    shown.append(_host_port(ip, as_int(get(port, "port"))))
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if count > limit else text


def endpoints_cells(obj: Obj, now: datetime) -> list:
    return [name(obj), format_endpoints(obj), age(obj, now)]


def endpoint_slice_cells(obj: Obj, now: datetime) -> list:
    ports = []
    for port in as_list(get(obj, "ports")):
        if get(port, "port") is not None:
            ports.append(str(as_int(get(port, "port"))))
        elif get(port, "name") is not None:
            ports.append(str(get(port, "name")))
        else:
            ports.append("*")
    addresses = [str(a) for ep in as_list(get(obj, "endpoints")) for a in as_list(get(ep, "addresses"))]
    return [
        name(obj),
        str(get(obj, "addressType") or ""),
        list_with_more(ports, 3, empty="<unset>"),
        list_with_more(addresses, 3, empty="<unset>"),
        age(obj, now),
    ]


def _ingress_hosts(rules: list) -> str:
    """`formatHosts`: the first three non-empty hosts ("*" if none), "+ N more..." counting all rules."""
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
        if not more and get(rule, "host"):
            hosts.append(str(get(rule, "host")))
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - 3} more..." if more else text


def ingress_cells(obj: Obj, now: datetime) -> list:
    class_name = get(obj, "spec", "ingressClassName")
    return [
        name(obj),
        "<none>" if class_name is None else str(class_name),
        _ingress_hosts(as_list(get(obj, "spec", "rules"))),
        load_balancer_addresses(get(obj, "status", "loadBalancer")),
        "80, 443" if as_list(get(obj, "spec", "tls")) else "80",
        age(obj, now),
    ]


def ingress_class_cells(obj: Obj, now: datetime) -> list:
    params = get(obj, "spec", "parameters")
    parameters = "<none>"
    if isinstance(params, dict):
        parameters = str(params.get("kind") or "")
        if params.get("apiGroup") is not None:
            parameters += "." + str(params["apiGroup"])
        parameters += "/" + str(params.get("name") or "")
    return [name(obj), str(get(obj, "spec", "controller") or ""), parameters, age(obj, now)]


def network_policy_cells(obj: Obj, now: datetime) -> list:
    return [name(obj), format_label_selector(get(obj, "spec", "podSelector") or {}), age(obj, now)]
