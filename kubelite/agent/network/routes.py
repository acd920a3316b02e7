"""Routes to other nodes' pods: which routes the Node objects call for, and what to change to get there.

Both functions are pure.  `node_routes` reads Node objects (``spec.podCIDRs``, else ``spec.podCIDR``;
``status.addresses`` of type ``InternalIP``); `plan_routes` compares the routes a node has with the ones
it should have and returns the `ip route` changes.  Only IPv4 is routed (the pod network is IPv4).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from kubelite.agent.network.interface import NodeRoute

__all__ = ["RoutePlan", "desired_routes", "node_routes", "plan_routes"]


def _ipv4_network(text: str) -> str | None:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return str(network) if network.version == 4 else None


def _ipv4_address(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return str(address) if address.version == 4 else None


def node_routes(nodes: list[dict[str, Any]]) -> list[NodeRoute]:
    """One `NodeRoute` per node that has an IPv4 pod CIDR and an IPv4 InternalIP, in the given order.
    Nodes without either are left out (nodeipam has not reached them yet, or they never reported an
    address); the caller's own node is included (`PodNetwork.sync_routes` skips it)."""
    routes = []
    for node in nodes:
        spec = node.get("spec") or {}
        raw_cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
        cidrs = tuple(cidr for cidr in (_ipv4_network(str(c)) for c in raw_cidrs) if cidr)
        internal = [
            address
            for address in (
                _ipv4_address(str(entry.get("address") or ""))
                for entry in (node.get("status") or {}).get("addresses") or ()
                if entry.get("type") == "InternalIP"
            )
            if address
        ]
        name = str((node.get("metadata") or {}).get("name") or "")
        if name and cidrs and internal:
            routes.append(NodeRoute(node_name=name, pod_cidrs=cidrs, node_ip=internal[0]))
    return routes


def desired_routes(peers: list[NodeRoute], *, own_node: str, own_cidr: str | None) -> dict[str, str]:
    """Destination CIDR → gateway for every peer but this node.  A peer CIDR that overlaps this node's
    own pod CIDR is left out (the bridge serves it; a route would steal local pods' traffic), and when two
    peers claim one CIDR the first wins, so the result never depends on more than the input order."""
    own = ipaddress.ip_network(own_cidr) if own_cidr else None
    result: dict[str, str] = {}
    for peer in peers:
        if peer.node_name == own_node:
            continue
        gateway = _ipv4_address(peer.node_ip)
        if gateway is None:
            continue
        for text in peer.pod_cidrs:
            cidr = _ipv4_network(text)
            if cidr is None or cidr in result:
                continue
            if own is not None and ipaddress.ip_network(cidr).overlaps(own):
                continue
            result[cidr] = gateway
    return result


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """`replace`: (cidr, gateway) routes to add or point elsewhere; `delete`: CIDRs whose route goes."""

    replace: tuple[tuple[str, str], ...]
    delete: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.replace and not self.delete


def plan_routes(current: dict[str, str], desired: dict[str, str]) -> RoutePlan:
    """The changes that turn `current` (cidr → gateway, only the routes this network made) into `desired`."""
    replace = tuple(sorted((cidr, gw) for cidr, gw in desired.items() if current.get(cidr) != gw))
    delete = tuple(sorted(cidr for cidr in current if cidr not in desired))
    return RoutePlan(replace=replace, delete=delete)
