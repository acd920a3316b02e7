"""The proxy's pure model: which endpoints each kind of traffic uses, affinity, ignored Services."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.proxy.balancer import Balancer
from kubelite.proxy.conntrack import flush_commands
from kubelite.proxy.model import DEFAULT_AFFINITY_SECONDS, Endpoint, ServicePortName, build_plans, select_endpoints

NODE = "n1"


def service(name: str = "web", **spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    spec.setdefault("clusterIP", "10.43.0.5")
    spec.setdefault("ports", [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}])
    return {"metadata": {"namespace": "default", "name": name}, "spec": spec, "status": status}


def endpoint(ip: str, node: str = NODE, **conditions: bool) -> dict[str, Any]:
    return {"addresses": [ip], "nodeName": node, "conditions": conditions or {"ready": True}}


def slice_of(name: str = "web", *endpoints: dict[str, Any], port: int = 8080, port_name: str = "http") -> dict:
    return {
        "metadata": {"namespace": "default", "name": f"{name}-abc", "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": list(endpoints),
    }


def ep(ip: str, node: str = NODE, *, ready: bool = True, serving: bool = True, terminating: bool = False):
    return Endpoint(ip, 8080, node, ready, serving, terminating)


def only_plan(services: list[dict], slices: list[dict]):
    plans = build_plans(services, slices, node_name=NODE)
    assert len(plans) == 1
    return next(iter(plans.values()))


LOCAL_READY = ep("10.42.0.2")
REMOTE_READY = ep("10.42.1.2", "n2")
LOCAL_TERMINATING = ep("10.42.0.3", ready=False, terminating=True)
REMOTE_TERMINATING = ep("10.42.1.3", "n2", ready=False, terminating=True)
REMOTE_NOT_SERVING = ep("10.42.1.4", "n2", ready=False, serving=False, terminating=True)
NOT_READY = ep("10.42.1.5", "n2", ready=False, serving=False)


@pytest.mark.parametrize(
    ("endpoints", "internal_local", "external_local", "cluster", "external"),
    [
        ([LOCAL_READY, REMOTE_READY], False, False, [LOCAL_READY, REMOTE_READY], [LOCAL_READY, REMOTE_READY]),
        ([LOCAL_READY, REMOTE_READY], True, False, [LOCAL_READY], [LOCAL_READY, REMOTE_READY]),
        ([LOCAL_READY, REMOTE_READY], False, True, [LOCAL_READY, REMOTE_READY], [LOCAL_READY]),
        ([REMOTE_READY], True, True, [], []),
        # ready endpoints win over terminating ones
        ([REMOTE_READY, LOCAL_TERMINATING], False, False, [REMOTE_READY], [REMOTE_READY]),
        # with none ready, serving+terminating ones are used (cluster-wide and local)
        ([REMOTE_TERMINATING, REMOTE_NOT_SERVING, NOT_READY], False, False, [REMOTE_TERMINATING], [REMOTE_TERMINATING]),
        ([REMOTE_READY, LOCAL_TERMINATING], True, True, [LOCAL_TERMINATING], [LOCAL_TERMINATING]),
        ([NOT_READY, REMOTE_NOT_SERVING], False, False, [], []),
    ],
)
def test_select_endpoints_follows_upstream_topology_rules(endpoints, internal_local, external_local, cluster, external):
    got = select_endpoints(endpoints, node_name=NODE, internal_local=internal_local, external_local=external_local)
    assert got == (tuple(cluster), tuple(external))


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({}, (True, True, False)),
        ({"ready": False}, (False, False, False)),
        ({"ready": False, "serving": True, "terminating": True}, (False, True, True)),
    ],
)
def test_missing_conditions_default_as_the_api_says(conditions, expected):
    plan = only_plan([service()], [slice_of("web", {"addresses": ["10.42.0.2"], "conditions": conditions})])
    got = plan.all_endpoints[0]
    assert (got.ready, got.serving, got.terminating) == expected


def test_headless_and_external_name_services_get_no_plans():
    services = [service("headless", clusterIP="None"), service("ext", type="ExternalName", clusterIP="")]
    assert build_plans(services, [slice_of("headless", endpoint("10.42.0.2"))], node_name=NODE) == {}


def test_endpoints_are_matched_by_port_name_and_deduplicated_across_slices():
    services = [service(ports=[{"name": "http", "port": 80}, {"name": "metrics", "port": 9000}])]
    slices = [
        slice_of("web", endpoint("10.42.0.2"), endpoint("10.42.0.3")),
        slice_of("web", endpoint("10.42.0.3")),
        slice_of("web", endpoint("10.42.0.2"), port=9100, port_name="metrics"),
        slice_of("other", endpoint("10.42.0.9")),
    ]
    plans = build_plans(services, slices, node_name=NODE)
    http = plans[ServicePortName("default", "web", "http", "TCP")]
    metrics = plans[ServicePortName("default", "web", "metrics", "TCP")]
    assert [str(e) for e in http.cluster_endpoints] == ["10.42.0.2:8080", "10.42.0.3:8080"]
    assert [str(e) for e in metrics.cluster_endpoints] == ["10.42.0.2:9100"]


def test_session_affinity_defaults_to_three_hours_and_honours_timeout():
    assert only_plan([service(sessionAffinity="ClientIP")], []).affinity_seconds == DEFAULT_AFFINITY_SECONDS
    config = {"clientIP": {"timeoutSeconds": 60}}
    assert only_plan([service(sessionAffinity="ClientIP", sessionAffinityConfig=config)], []).affinity_seconds == 60
    assert only_plan([service()], []).affinity_seconds == 0


def test_load_balancer_plan_carries_node_port_ingress_and_external_ips():
    svc = service(
        type="LoadBalancer",
        externalIPs=["192.0.2.9"],
        externalTrafficPolicy="Local",
        ports=[{"name": "http", "port": 80, "nodePort": 30080}],
        status={"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}, {"hostname": "lb.example"}]}},
    )
    plan = only_plan([svc], [slice_of("web", endpoint("10.42.0.2"), endpoint("10.42.1.2", "n2"))])
    assert plan.node_port == 30080
    assert plan.external_destinations == ("192.0.2.9", "192.0.2.10")
    assert plan.external_local and [e.ip for e in plan.external_endpoints] == ["10.42.0.2"]
    assert [e.ip for e in plan.cluster_endpoints] == ["10.42.0.2", "10.42.1.2"]


def test_cluster_ip_service_ignores_node_port_field_and_has_no_external_traffic():
    plan = only_plan([service(ports=[{"port": 80, "nodePort": 30080}])], [])
    assert plan.node_port == 0 and not plan.has_external and not plan.has_endpoints


def test_balancer_round_robins_and_keeps_affinity_until_timeout():
    a, b = ep("10.42.0.2"), ep("10.42.0.3")
    plain = Balancer((a, b))
    assert [plain.candidates("c", 0)[0] for _ in range(4)] == [a, b, a, b]
    sticky = Balancer((a, b), affinity_seconds=10)
    first = sticky.candidates("c", 0)[0]
    sticky.connected("c", first, 0)
    assert all(sticky.candidates("c", t)[0] == first for t in range(1, 9))
    assert sticky.candidates("c", 11)[0] != sticky.candidates("c", 11)[0]  # expired: round robin again
    sticky.update((b,) if first == a else (a,), 10)  # the remembered endpoint went away
    assert sticky.candidates("c", 1)[0] != first


def test_conntrack_flushes_removed_udp_endpoints_only():
    def udp(*ips: str, node_port: int = 0):
        svc = service("dns", type="NodePort" if node_port else "ClusterIP")
        svc["spec"]["ports"] = [{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": node_port}]
        sl = slice_of("dns", *(endpoint(ip) for ip in ips), port=53, port_name="dns")
        sl["ports"][0]["protocol"] = "UDP"
        return build_plans([svc], [sl], node_name=NODE)

    assert flush_commands(udp("10.42.0.2"), udp("10.42.0.2")) == []
    assert flush_commands(udp("10.42.0.2", "10.42.0.3", node_port=30053), udp("10.42.0.3", node_port=30053)) == [
        ["-D", "-p", "udp", "--orig-dst", "10.43.0.5", "--dst-nat", "10.42.0.2"],
        ["-D", "-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.42.0.2"],
    ]
    assert flush_commands(udp(), udp("10.42.0.2")) == [
        ["-D", "-p", "udp", "--orig-dst", "10.43.0.5", "--orig-port-dst", "53"]
    ]
    tcp = build_plans([service()], [slice_of("web", endpoint("10.42.0.2"))], node_name=NODE)
    assert flush_commands(tcp, {}) == []
