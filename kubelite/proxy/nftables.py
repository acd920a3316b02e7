"""Rendering the proxy's nftables table ``ip kubelite`` from service port plans.  Pure: text in, text out.

Layout (in the spirit of upstream kube-proxy's nftables mode):

* base chains ``nat-prerouting`` / ``nat-output`` (nat, priority -100: nft 1.0.6 refuses ``dstnat`` on the output
  hook) jump to ``services``, which looks up ``ip daddr . meta l4proto . th dport`` in the verdict map
  ``service-ips`` (ClusterIPs, externalIPs, LoadBalancer ingress IPs) and, for the node's own addresses
  (set ``nodeport-ips``), ``meta l4proto . th dport`` in ``service-nodeports``;
* per service port: ``service-<HASH>-<ns>/<name>/<proto>/<port>`` (ClusterIP traffic: masquerade when the
  source is outside the cluster CIDR, then pick an endpoint), ``external-<HASH>-...`` (NodePort/LB/externalIP
  traffic: masquerade unless ``externalTrafficPolicy: Local``), and one ``endpoint-<HASH>-...__<ip>/<port>`` per
  endpoint (masquerade a pod reaching itself — hairpin —, record the client for affinity, DNAT);
* an endpoint is picked with ``numgen random mod N``; with ClientIP affinity a per-endpoint set
  ``affinity-<HASH>-...`` (dynamic, timeout) remembers recent clients and is consulted first;
* service ports without endpoints are entries of ``no-endpoint-services`` / ``no-endpoint-nodeports``, looked up
  in filter chains (input, forward, output; priority -1, after the DNAT and before the pod network's own reject
  at 0) for new connections: ``goto reject-chain`` (ICMP port unreachable: clients see "connection refused" at
  once) when the service has no endpoint at all, ``drop`` when it has some but none for that traffic on this
  node (``Local`` policies), as upstream;
* masquerading is a mark (0x4000) set by ``mark-for-masquerade`` and acted on in ``nat-postrouting``.

Names carry a hash of the full name first, so they stay unique when the readable tail is cut; every rule and
map element carries a ``<ns>/<svc>:<port>`` comment, so ``nft list table ip kubelite`` explains itself.

A service port renders to a `Unit` (its chains, sets and map elements).  `render_full` writes the whole table in
one transaction (``table`` + ``delete table`` + definition: idempotent, never a moment without rules);
`render_partial` turns two dicts of units into the commands that change only what differs, in an order nft
accepts within one transaction: stale map elements out, new sets and chains in, rules rewritten, new elements
in, then the chains and sets nothing references any more removed.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kubelite.proxy.model import Endpoint, ServicePortName, ServicePortPlan

__all__ = ["TABLE", "Unit", "render_full", "render_partial", "render_unit"]

TABLE = "kubelite"
FAMILY = "ip"
MASQ_MARK = "0x4000"
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NO_ENDPOINT_SERVICES = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
NODEPORT_IPS = "nodeport-ips"
REJECT_CHAIN = "reject-chain"
MARK_CHAIN = "mark-for-masquerade"
MAX_COMMENT = 120  # nft allows 128 bytes


@dataclass(frozen=True)
class Unit:
    """What one service port adds to the table: chains (name → rules, in order), sets (name → body) and map
    elements ((map, key) → verdict)."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sets: dict[str, str] = field(default_factory=dict)
    elements: dict[tuple[str, str], str] = field(default_factory=dict)
    comment: str = ""  # the service port, on every map element


def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest())[:8].decode()


def _port_id(name: ServicePortName, port: int) -> str:
    return f"{name.namespace}/{name.name}/{name.protocol.lower()}/{name.port or port}"


def _chain_name(prefix: str, text: str) -> str:
    return f"{prefix}-{_hash(text)}-{text}"[:200]


def _comment(name: ServicePortName) -> str:
    text = str(name).replace('"', "")[:MAX_COMMENT]
    return f'comment "{text}"'


def _endpoint_names(port_id: str, endpoint: Endpoint) -> tuple[str, str]:
    text = f"{port_id}__{endpoint.ip}/{endpoint.port}"
    return _chain_name("endpoint", text), _chain_name("affinity", text)


def _dispatch(plan: ServicePortPlan, endpoints: tuple[Endpoint, ...], port_id: str) -> list[str]:
    """The rules that pick one of `endpoints` (affinity first, then random)."""
    comment = _comment(plan.name)
    rules = []
    targets = [_endpoint_names(port_id, e) for e in endpoints]
    if plan.affinity_seconds:
        for chain, affinity in targets:
            rules.append(f"ip saddr @{affinity} goto {chain} {comment}")
    vmap = ", ".join(f"{i} : goto {chain}" for i, (chain, _) in enumerate(targets))
    rules.append(f"numgen random mod {len(targets)} vmap {{ {vmap} }} {comment}")
    return rules


def _verdict(plan: ServicePortPlan, endpoints: tuple[Endpoint, ...], chain: str) -> tuple[bool, str]:
    """(goes to a service map?, verdict): a chain when there are endpoints for the traffic, else the
    no-endpoint verdict (reject when the service has none at all, drop when only this traffic has none)."""
    if endpoints:
        return True, f"goto {chain}"
    return False, "drop" if plan.has_endpoints else f"goto {REJECT_CHAIN}"


def render_unit(plan: ServicePortPlan, *, cluster_cidr: str) -> Unit:
    """The chains, sets and map elements of one service port (see the module docstring)."""
    proto = plan.protocol.lower()
    port_id = _port_id(plan.name, plan.port)
    comment = _comment(plan.name)
    unit = Unit(comment=_comment(plan.name))
    service_chain = _chain_name("service", port_id)
    external_chain = _chain_name("external", port_id)

    if plan.cluster_endpoints:
        rules = [
            f"ip daddr {ip} {proto} dport {plan.port} ip saddr != {cluster_cidr} jump {MARK_CHAIN} {comment}"
            for ip in plan.cluster_ips
        ]
        unit.chains[service_chain] = (*rules, *_dispatch(plan, plan.cluster_endpoints, port_id))
    to_map, verdict = _verdict(plan, plan.cluster_endpoints, service_chain)
    for ip in plan.cluster_ips:
        unit.elements[(SERVICE_IPS if to_map else NO_ENDPOINT_SERVICES, f"{ip} . {proto} . {plan.port}")] = verdict

    if plan.has_external:
        if plan.external_endpoints:
            if plan.external_local:
                # Pods and the node itself reaching an external address are not "external" clients: they get
                # the cluster-wide endpoints (masqueraded when from the node), as upstream short-circuits them.
                rules = [f"ip saddr {cluster_cidr} goto {service_chain} {comment}"] if plan.cluster_endpoints else []
                if plan.cluster_endpoints:
                    rules += [
                        f"fib saddr type local jump {MARK_CHAIN} {comment}",
                        f"fib saddr type local goto {service_chain} {comment}",
                    ]
            else:
                rules = [f"jump {MARK_CHAIN} {comment}"]
            unit.chains[external_chain] = (*rules, *_dispatch(plan, plan.external_endpoints, port_id))
        to_map, verdict = _verdict(plan, plan.external_endpoints, external_chain)
        for ip in plan.external_destinations:
            key = f"{ip} . {proto} . {plan.port}"
            unit.elements[(SERVICE_IPS if to_map else NO_ENDPOINT_SERVICES, key)] = verdict
        if plan.node_port:
            key = f"{proto} . {plan.node_port}"
            unit.elements[(SERVICE_NODEPORTS if to_map else NO_ENDPOINT_NODEPORTS, key)] = verdict

    for endpoint in dict.fromkeys((*plan.cluster_endpoints, *plan.external_endpoints)):
        chain, affinity = _endpoint_names(port_id, endpoint)
        rules = [f"ip saddr {endpoint.ip} jump {MARK_CHAIN} {comment}"]
        if plan.affinity_seconds:
            unit.sets[affinity] = f"type ipv4_addr; flags dynamic,timeout; timeout {plan.affinity_seconds}s; {comment};"
            rules.append(f"update @{affinity} {{ ip saddr }} {comment}")
        rules.append(f"meta l4proto {proto} dnat to {endpoint.ip}:{endpoint.port} {comment}")
        unit.chains[chain] = tuple(rules)
    return unit


def _skeleton(node_ips: Iterable[str]) -> list[str]:
    addresses = ", ".join(sorted(set(node_ips)))
    nodeport_ips = f"\t\telements = {{ {addresses} }}\n" if addresses else ""
    service_key = "type ipv4_addr . inet_proto . inet_service : verdict;"
    port_key = "type inet_proto . inet_service : verdict;"
    lookup = "ip daddr . meta l4proto . th dport vmap"
    nodeport_lookup = f"ip daddr @{NODEPORT_IPS} meta l4proto . th dport vmap"

    def base(name: str, hook: str, kind: str, priority: int, *rules: str) -> str:
        body = "".join(f"\t\t{rule}\n" for rule in rules)
        return f"\tchain {name} {{\n\t\ttype {kind} hook {hook} priority {priority}; policy accept;\n{body}\t}}\n"

    check = "ct state new jump service-endpoints-check"
    text = (
        f"table {FAMILY} {TABLE} {{\n"
        '\tcomment "Kubernetes services (kubelite proxy)"\n'
        f'\tmap {SERVICE_IPS} {{ {service_key} comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"; }}\n'
        f'\tmap {SERVICE_NODEPORTS} {{ {port_key} comment "NodePort traffic"; }}\n'
        f'\tmap {NO_ENDPOINT_SERVICES} {{ {service_key} comment "service addresses without endpoints"; }}\n'
        f'\tmap {NO_ENDPOINT_NODEPORTS} {{ {port_key} comment "node ports without endpoints"; }}\n'
        f'\tset {NODEPORT_IPS} {{\n\t\ttype ipv4_addr;\n\t\tcomment "node addresses serving NodePorts";\n'
        f"{nodeport_ips}\t}}\n"
        + base("nat-prerouting", "prerouting", "nat", -100, "jump services")
        + base("nat-output", "output", "nat", -100, "jump services")
        + base("nat-postrouting", "postrouting", "nat", 100, "jump masquerading")
        + base("filter-input", "input", "filter", -1, check)
        + base("filter-forward", "forward", "filter", -1, check)
        + base("filter-output", "output", "filter", -1, check)
        + "\tchain services {\n"
        f"\t\t{lookup} @{SERVICE_IPS}\n\t\t{nodeport_lookup} @{SERVICE_NODEPORTS}\n\t}}\n"
        "\tchain service-endpoints-check {\n"
        f"\t\t{lookup} @{NO_ENDPOINT_SERVICES}\n\t\t{nodeport_lookup} @{NO_ENDPOINT_NODEPORTS}\n\t}}\n"
        f"\tchain {REJECT_CHAIN} {{\n\t\treject\n\t}}\n"
        f"\tchain {MARK_CHAIN} {{\n\t\tmeta mark set meta mark or {MASQ_MARK}\n\t}}\n"
        "\tchain masquerading {\n"
        f"\t\tmeta mark and {MASQ_MARK} == 0 return\n"
        f"\t\tmeta mark set meta mark xor {MASQ_MARK}\n"
        "\t\tmasquerade fully-random\n\t}\n"
        "}\n"
    )
    return [f"table {FAMILY} {TABLE}", f"delete table {FAMILY} {TABLE}", text]


def render_full(units: Mapping[ServicePortName, Unit], *, node_ips: Iterable[str]) -> str:
    """The whole table: one transaction that replaces whatever ``ip kubelite`` held."""
    return "\n".join([*_skeleton(node_ips), render_partial({}, units)])


def _element(key: str, verdict: str | None = None, comment: str = "") -> str:
    value = f"{' ' + comment if comment else ''} : {verdict}" if verdict is not None else ""
    return f"{{ {key}{value} }}"


def render_partial(old: Mapping[ServicePortName, Unit], new: Mapping[ServicePortName, Unit]) -> str:
    """The commands that turn the table holding `old` units into one holding `new` (module docstring order).
    Units equal in both produce nothing; a changed unit has all its chains rewritten (flushed, refilled) and
    its sets re-created only when their definition changed.  An empty string means nothing to do."""
    at = f"{FAMILY} {TABLE}"
    old_elements: dict[tuple[str, str], str] = {}
    new_elements: dict[tuple[str, str], str] = {}
    old_chains: dict[str, tuple[str, ...]] = {}
    new_chains: dict[str, tuple[str, ...]] = {}
    old_sets: dict[str, str] = {}
    new_sets: dict[str, str] = {}
    comments: dict[tuple[str, str], str] = {}
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if before is not None:
            old_elements.update(before.elements)
            old_chains.update(before.chains)
            old_sets.update(before.sets)
        if after is not None:
            new_elements.update(after.elements)
            comments.update(dict.fromkeys(after.elements, after.comment))
            new_chains.update(after.chains)
            new_sets.update(after.sets)
    lines = []
    for (map_name, key), verdict in sorted(old_elements.items()):
        if new_elements.get((map_name, key)) != verdict:
            lines.append(f"delete element {at} {map_name} {_element(key)}")
    lines += [f"flush chain {at} {name}" for name in sorted(old_chains)]
    for name, body in sorted(old_sets.items()):
        if new_sets.get(name) != body:  # gone, or changed: a set's timeout cannot be altered in place
            lines.append(f"delete set {at} {name}")
    for name, body in sorted(new_sets.items()):
        if old_sets.get(name) != body:
            lines.append(f"add set {at} {name} {{ {body} }}")
    lines += [f"add chain {at} {name}" for name in sorted(set(new_chains) - set(old_chains))]
    for name, rules in sorted(new_chains.items()):
        lines += [f"add rule {at} {name} {rule}" for rule in rules]
    for (map_name, key), verdict in sorted(new_elements.items()):
        if old_elements.get((map_name, key)) != verdict:
            lines.append(f"add element {at} {map_name} {_element(key, verdict, comments[(map_name, key)])}")
    lines += [f"delete chain {at} {name}" for name in sorted(set(old_chains) - set(new_chains))]
    return "\n".join(lines) + ("\n" if lines else "")
