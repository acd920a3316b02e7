"""Rendering of the ``ip kubelite`` table: the rules that matter, incremental diffs, and nft's own syntax check
(``nft -c``, inside a network namespace this test creates)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from kubelite.proxy.model import build_plans
from kubelite.proxy.nftables import render_full, render_partial, render_unit

CLUSTER = "10.42.0.0/16"


def service(name: str, ip: str, **spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    spec.setdefault("ports", [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}])
    return {"metadata": {"namespace": "default", "name": name}, "spec": {"clusterIP": ip, **spec}, "status": status}


def slice_of(name: str, *eps: tuple[str, str], protocol: str = "TCP") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "default", "name": f"{name}-x", "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": protocol}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": node} for ip, node in eps],
    }


def units(services: list[dict], slices: list[dict], node: str = "n1"):
    plans = build_plans(services, slices, node_name=node)
    return {name: render_unit(plan, cluster_cidr=CLUSTER) for name, plan in plans.items()}


WEB = service("web", "10.43.0.5", type="NodePort")
WEB_SLICE = slice_of("web", ("10.42.0.2", "n1"), ("10.42.1.2", "n2"))


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"kltest{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def nft(netns: str, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["nsenter", f"--net=/run/netns/{netns}", "--", "nft", *args]
    return subprocess.run([*argv, "-f", "-"], input=script, text=True, capture_output=True, timeout=30)


def test_cluster_ip_masquerades_off_cluster_sources_and_balances_randomly():
    text = render_full(units([WEB], [WEB_SLICE]), node_ips=["192.0.2.1"])
    assert "ip daddr 10.43.0.5 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade" in text
    assert "numgen random mod 2 vmap" in text
    assert "dnat to 10.42.0.2:8080" in text and "dnat to 10.42.1.2:8080" in text
    web = 'comment "default/web:http"'
    assert web in text
    assert f"add element ip kubelite service-ips {{ 10.43.0.5 . tcp . 80 {web} : goto service-" in text
    assert f"add element ip kubelite service-nodeports {{ tcp . 30080 {web} : goto external-" in text
    assert "elements = { 192.0.2.1 }" in text  # NodePorts on the node's addresses only (no 127.0.0.1)
    assert "type nat hook output priority -100" in text


def test_hairpin_traffic_is_masqueraded_in_each_endpoint_chain():
    text = render_full(units([WEB], [WEB_SLICE]), node_ips=[])
    assert "ip saddr 10.42.0.2 jump mark-for-masquerade" in text
    assert "ip saddr 10.42.1.2 jump mark-for-masquerade" in text


def test_external_traffic_policy_local_skips_snat_and_uses_local_endpoints():
    svc = service("web", "10.43.0.5", type="NodePort", externalTrafficPolicy="Local")
    (unit,) = units([svc], [WEB_SLICE]).values()
    (external,) = [rules for name, rules in unit.chains.items() if name.startswith("external-")]
    assert not any(rule.startswith("jump mark-for-masquerade") for rule in external)
    assert any(rule.startswith("ip saddr 10.42.0.0/16 goto service-") for rule in external)
    assert "numgen random mod 1 vmap" in external[-1]


def test_external_traffic_policy_local_without_local_endpoints_drops_node_port_traffic():
    svc = service("web", "10.43.0.5", type="NodePort", externalTrafficPolicy="Local")
    (unit,) = units([svc], [slice_of("web", ("10.42.1.2", "n2"))]).values()
    assert unit.elements[("no-endpoint-nodeports", "tcp . 30080")] == "drop"
    assert unit.elements[("service-ips", "10.43.0.5 . tcp . 80")].startswith("goto service-")


def test_service_without_endpoints_is_rejected_not_black_holed():
    (unit,) = units([WEB], []).values()
    assert unit.chains == {}
    assert unit.elements == {
        ("no-endpoint-services", "10.43.0.5 . tcp . 80"): "goto reject-chain",
        ("no-endpoint-nodeports", "tcp . 30080"): "goto reject-chain",
    }


def test_session_affinity_uses_a_timed_set_per_endpoint():
    svc = service(
        "web", "10.43.0.5", sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}
    )
    (unit,) = units([svc], [WEB_SLICE]).values()
    assert len(unit.sets) == 2 and all("timeout 60s" in body for body in unit.sets.values())
    service_chain = next(rules for name, rules in unit.chains.items() if name.startswith("service-"))
    assert sum(rule.startswith("ip saddr @affinity-") for rule in service_chain) == 2


def test_partial_sync_touches_only_the_changed_service():
    before = units([WEB, service("api", "10.43.0.6")], [WEB_SLICE, slice_of("api", ("10.42.0.7", "n1"))])
    after = units([WEB, service("api", "10.43.0.6")], [WEB_SLICE, slice_of("api", ("10.42.0.8", "n1"))])
    script = render_partial(before, after)
    assert "default/web" not in script
    assert "add rule ip kubelite endpoint-" in script and "dnat to 10.42.0.8:8080" in script
    assert "delete chain ip kubelite endpoint-" in script and "10.42.0.7/8080" in script
    assert render_partial(after, after) == ""


def test_partial_sync_of_deleted_service_removes_its_elements_and_chains():
    before = units([WEB], [WEB_SLICE])
    script = render_partial(before, {})
    assert "delete element ip kubelite service-ips { 10.43.0.5 . tcp . 80 }" in script
    assert "delete element ip kubelite service-nodeports { tcp . 30080 }" in script
    assert script.count("delete chain") == 4  # service, external, two endpoints
    assert "add " not in script


def test_rendered_full_and_partial_scripts_are_valid_nft(netns: str):
    everything = [
        WEB,
        service("udp", "10.43.0.7", ports=[{"name": "http", "port": 53, "protocol": "UDP"}]),
        service("aff", "10.43.0.8", sessionAffinity="ClientIP"),
        service(
            "lb",
            "10.43.0.9",
            type="LoadBalancer",
            externalIPs=["192.0.2.9"],
            externalTrafficPolicy="Local",
            ports=[{"name": "http", "port": 80, "nodePort": 30081}],
            status={"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}},
        ),
        service("empty", "10.43.0.10"),
    ]
    slices = [WEB_SLICE, slice_of("udp", ("10.42.0.4", "n1"), protocol="UDP"), slice_of("aff", ("10.42.0.5", "n1"))]
    slices.append(slice_of("lb", ("10.42.0.6", "n1")))
    first = units(everything, slices)
    full = render_full(first, node_ips=["192.0.2.1", "192.0.2.2"])
    result = nft(netns, full)
    assert result.returncode == 0, result.stderr
    second = units(everything[1:], [slices[1], slice_of("aff", ("10.42.0.9", "n1")), slice_of("lb")])
    partial = render_partial(first, second)
    result = nft(netns, partial)
    assert result.returncode == 0, result.stderr
    listing = subprocess.run(
        ["nsenter", f"--net=/run/netns/{netns}", "--", "nft", "list", "table", "ip", "kubelite"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    assert "default/web" not in listing and "10.42.0.9:8080" in listing and "10.42.0.5:8080" not in listing
    # a full sync replaces the table in place, from any state
    result = nft(netns, render_full(first, node_ips=[]))
    assert result.returncode == 0, result.stderr
