"""Routes to other nodes' pod CIDRs from Node objects, and the changes that reach them; the node's nft
table; choosing a pod network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.network import factory
from kubelite.agent.network.bridge import BridgeNetwork
from kubelite.agent.network.firewall import render_node_table
from kubelite.agent.network.host import HostNetwork
from kubelite.agent.network.interface import NodeRoute, PodNetworkStatus
from kubelite.agent.network.routes import RoutePlan, desired_routes, node_routes, plan_routes
from kubelite.machinery.network import ClusterNetwork


def node(name: str, *, cidrs: list[str] | None = None, cidr: str | None = None, **addresses: str) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if cidrs is not None:
        spec["podCIDRs"] = cidrs
    if cidr is not None:
        spec["podCIDR"] = cidr
    return {
        "metadata": {"name": name},
        "spec": spec,
        "status": {"addresses": [{"type": kind, "address": value} for kind, value in addresses.items()]},
    }


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        ([node("a", cidrs=["10.42.1.0/24"], InternalIP="192.0.2.1")], [NodeRoute("a", ("10.42.1.0/24",), "192.0.2.1")]),
        ([node("a", cidr="10.42.1.0/24", InternalIP="192.0.2.1")], [NodeRoute("a", ("10.42.1.0/24",), "192.0.2.1")]),
        (  # podCIDRs wins over podCIDR; IPv6 entries are dropped
            [node("a", cidrs=["10.42.1.0/24", "fd00::/64"], cidr="10.42.9.0/24", InternalIP="192.0.2.1")],
            [NodeRoute("a", ("10.42.1.0/24",), "192.0.2.1")],
        ),
        ([node("a", cidrs=["10.42.1.0/24"])], []),  # no address yet
        ([node("a", InternalIP="192.0.2.1")], []),  # no CIDR yet
        ([node("a", cidrs=["10.42.1.0/24"], Hostname="a", ExternalIP="198.51.100.1")], []),  # no InternalIP
        ([node("a", cidrs=["10.42.1.0/24"], InternalIP="fd00::1")], []),  # IPv6 only
        ([node("a", cidrs=["garbage"], InternalIP="192.0.2.1")], []),
        (
            [
                node("a", cidrs=["10.42.1.0/24"], InternalIP="192.0.2.1"),
                node("b", cidrs=["10.42.2.0/24"], InternalIP="192.0.2.2"),
            ],
            [NodeRoute("a", ("10.42.1.0/24",), "192.0.2.1"), NodeRoute("b", ("10.42.2.0/24",), "192.0.2.2")],
        ),
    ],
)
def test_node_routes_from_node_objects(nodes: list[dict[str, Any]], expected: list[NodeRoute]) -> None:
    assert node_routes(nodes) == expected


PEERS = [
    NodeRoute("me", ("10.42.1.0/24",), "192.0.2.1"),
    NodeRoute("b", ("10.42.2.0/24",), "192.0.2.2"),
    NodeRoute("c", ("10.42.3.0/24",), "192.0.2.3"),
]


@pytest.mark.parametrize(
    ("peers", "own_cidr", "expected"),
    [
        (PEERS, "10.42.1.0/24", {"10.42.2.0/24": "192.0.2.2", "10.42.3.0/24": "192.0.2.3"}),
        (PEERS, None, {"10.42.2.0/24": "192.0.2.2", "10.42.3.0/24": "192.0.2.3"}),
        ([NodeRoute("x", ("10.42.1.0/24",), "192.0.2.9")], "10.42.1.0/24", {}),  # a peer claiming our CIDR
        (
            [NodeRoute("b", ("10.42.2.0/24",), "192.0.2.2"), NodeRoute("x", ("10.42.2.0/24",), "192.0.2.9")],
            None,
            {"10.42.2.0/24": "192.0.2.2"},  # first claim wins
        ),
        ([NodeRoute("b", ("10.42.2.0/24",), "bad")], None, {}),
    ],
)
def test_desired_routes_skip_this_node_and_conflicts(
    peers: list[NodeRoute], own_cidr: str | None, expected: dict[str, str]
) -> None:
    assert desired_routes(peers, own_node="me", own_cidr=own_cidr) == expected


@pytest.mark.parametrize(
    ("current", "desired", "expected"),
    [
        ({}, {}, RoutePlan((), ())),
        ({}, {"10.42.2.0/24": "g2"}, RoutePlan((("10.42.2.0/24", "g2"),), ())),
        ({"10.42.2.0/24": "g2"}, {"10.42.2.0/24": "g2"}, RoutePlan((), ())),
        ({"10.42.2.0/24": "old"}, {"10.42.2.0/24": "g2"}, RoutePlan((("10.42.2.0/24", "g2"),), ())),
        ({"10.42.2.0/24": "g2", "10.42.9.0/24": "g9"}, {"10.42.2.0/24": "g2"}, RoutePlan((), ("10.42.9.0/24",))),
    ],
)
def test_plan_routes_changes_only_what_differs(
    current: dict[str, str], desired: dict[str, str], expected: RoutePlan
) -> None:
    plan = plan_routes(current, desired)
    assert plan == expected
    assert plan.empty == (expected == RoutePlan((), ()))


def test_node_table_masquerades_pods_leaving_the_cluster_and_rejects_unserved_service_addresses() -> None:
    script = render_node_table(pod_cidr="10.42.1.0/24", cluster_cidr="10.42.0.0/16", service_cidr="10.43.0.0/16")
    lines = [line.strip() for line in script.splitlines()]
    assert lines[:3] == ["table ip kubelite-net", "delete table ip kubelite-net", "table ip kubelite-net {"]
    assert "ip saddr 10.42.1.0/24 ip daddr != 10.42.0.0/16 counter masquerade" in lines
    reject = "ip daddr 10.43.0.0/16 fib daddr type != local counter reject with icmp type host-unreachable"
    assert lines.count(reject) == 2
    assert "table ip kubelite {" not in script  # the service proxy's table is never written here


def test_host_mode_is_forced_without_a_note(tmp_path: Path) -> None:
    network = factory.create_pod_network(tmp_path, "n", "192.0.2.1", ClusterNetwork(), mode="host")
    assert isinstance(network, HostNetwork)
    assert (network.mode, network.note, network.gateway_ip) == ("host", None, None)


def test_bridge_mode_is_forced_whatever_the_machine(tmp_path: Path) -> None:
    network = factory.create_pod_network(tmp_path, "n", "192.0.2.1", ClusterNetwork(), mode="bridge")
    assert isinstance(network, BridgeNetwork)
    assert (network.mode, network.note, network.gateway_ip) == ("bridge", None, None)


@pytest.mark.parametrize(("reason", "kind"), [(None, BridgeNetwork), ("pods share the node's network", HostNetwork)])
def test_auto_mode_falls_back_to_host_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reason: str | None, kind: type
) -> None:
    monkeypatch.setattr(factory, "bridge_unavailable_reason", lambda **_: reason)
    network = factory.create_pod_network(tmp_path, "n", "192.0.2.1", ClusterNetwork())
    assert isinstance(network, kind)
    assert network.note == reason


def test_bridge_unavailable_reason_names_root_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory.os, "geteuid", lambda: 1000)
    assert factory.bridge_unavailable_reason() == "pod networking needs root; pods share the node's network"


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="auto, bridge, host"):
        factory.create_pod_network(tmp_path, "n", "192.0.2.1", ClusterNetwork(), mode="vxlan")


async def test_host_network_gives_every_pod_the_node_address(tmp_path: Path) -> None:
    network = HostNetwork("192.0.2.1", "why")
    await network.start(None)
    expected = PodNetworkStatus(None, ("192.0.2.1",))
    assert await network.setup_pod("u1", "default", "p") == expected
    assert await network.pod_status("u1") == expected
    await network.teardown_pod("u1")
    assert await network.cleanup_orphans(set()) == []
    await network.sync_routes(PEERS)
    await network.close()


def test_bridge_names_fit_interfaces_and_differ_between_agents(tmp_path: Path) -> None:
    uid = "0123abcd-4567-89ef-0123-456789abcdef"
    one = BridgeNetwork(tmp_path / "a", "n", ClusterNetwork())
    two = BridgeNetwork(tmp_path / "b", "n", ClusterNetwork())
    assert len(one.veth_name(uid).encode()) < 16
    assert one.netns_name(uid).endswith("-0123abcd-456")
    assert one.netns_name(uid) != two.netns_name(uid)
    assert one.veth_name(uid) != two.veth_name(uid)
    assert one.veth_name(uid) == BridgeNetwork(tmp_path / "a", "n", ClusterNetwork()).veth_name(uid)
