"""The pure parts behind the EndpointSlice and Endpoints controllers: port resolution, endpoint
building, slice packing and diffing, subset repacking and truncation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kubelite.controllers.endpoints import (
    MAX_CAPACITY,
    OVER_CAPACITY,
    build_subsets,
    desired_endpoints,
    truncate_subsets,
)
from kubelite.controllers.endpointslice_reconcile import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    endpoint_key,
    plan_slices,
    pod_endpoint,
    slice_labels,
)
from kubelite.controllers.servicepods import (
    LAST_CHANGE_TRIGGER_TIME,
    TriggerTimeTracker,
    find_port,
    service_selector,
    should_pod_be_in_endpoints,
)
from kubelite.machinery.meta import rfc3339
from kubelite.testing.fake_clock import DEFAULT_START

NS = "ns"
T0 = DEFAULT_START
NODES = {
    "n1": {"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}}},
    "n2": {"metadata": {"name": "n2"}},
}


def service(
    name: str = "web",
    *,
    ports: list[dict[str, Any]] | None = None,
    cluster_ip: str = "10.43.0.20",
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "labels": labels or {},
            "creationTimestamp": rfc3339(T0),
        },
        "spec": {
            "selector": {"app": name},
            "clusterIP": cluster_ip,
            "ports": ports
            if ports is not None
            else [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            **spec,
        },
    }


def pod(
    name: str,
    ip: str | None,
    *,
    ready: bool = True,
    node: str = "n1",
    container_ports: list[dict[str, Any]] | None = None,
    deleting: bool = False,
    phase: str = "Running",
    **spec: Any,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": rfc3339(T0)}],
    }
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    meta: dict[str, Any] = {"name": name, "namespace": NS, "uid": f"uid-{name}", "labels": {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = rfc3339(T0)
    return {
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [{"name": "c", "ports": container_ports or []}], **spec},
        "status": status,
    }


# -- ports and membership ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "protocol", "containers", "init", "expected"),
    [
        (8080, "TCP", [], [], 8080),
        ("http", "TCP", [{"ports": [{"name": "http", "containerPort": 9000}]}], [], 9000),
        ("http", "UDP", [{"ports": [{"name": "http", "containerPort": 9000}]}], [], None),
        ("dns", "UDP", [{"ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"}]}], [], 53),
        ("nope", "TCP", [{"ports": [{"name": "http", "containerPort": 9000}]}], [], None),
        ("side", "TCP", [], [{"restartPolicy": "Always", "ports": [{"name": "side", "containerPort": 7}]}], 7),
        ("init", "TCP", [], [{"ports": [{"name": "init", "containerPort": 7}]}], None),
        (None, "TCP", [], [], 80),
    ],
)
def test_find_port_resolves_target_ports_per_pod(
    target: Any, protocol: str, containers: list[Any], init: list[Any], expected: int | None
) -> None:
    the_pod = {"spec": {"containers": containers, "initContainers": init}}
    assert find_port(the_pod, {"port": 80, "targetPort": target, "protocol": protocol}) == expected


@pytest.mark.parametrize(
    ("the_pod", "include_terminating", "expected"),
    [
        (pod("a", "10.42.0.5"), False, True),
        (pod("a", None), True, False),
        (pod("a", "10.42.0.5", phase="Succeeded"), True, False),
        (pod("a", "10.42.0.5", phase="Failed"), True, False),
        (pod("a", "10.42.0.5", deleting=True), False, False),
        (pod("a", "10.42.0.5", deleting=True), True, True),
    ],
)
def test_which_pods_belong_in_endpoints(the_pod: dict[str, Any], include_terminating: bool, expected: bool) -> None:
    assert should_pod_be_in_endpoints(the_pod, include_terminating=include_terminating) is expected


def test_services_without_selector_or_external_name_are_not_ours() -> None:
    assert service_selector(service()) is not None
    assert service_selector({"spec": {"ports": []}}) is None
    assert service_selector({"spec": {"selector": {}}}) is None
    assert service_selector(service(type="ExternalName")) is None


# -- endpoints --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_pod", "publish", "conditions"),
    [
        (pod("a", "10.42.0.5"), False, {"ready": True, "serving": True, "terminating": False}),
        (pod("a", "10.42.0.5", ready=False), False, {"ready": False, "serving": False, "terminating": False}),
        (pod("a", "10.42.0.5", ready=False), True, {"ready": True, "serving": False, "terminating": False}),
        (pod("a", "10.42.0.5", deleting=True), False, {"ready": False, "serving": True, "terminating": True}),
        (pod("a", "10.42.0.5", deleting=True), True, {"ready": True, "serving": True, "terminating": True}),
    ],
)
def test_endpoint_conditions_follow_upstream(
    the_pod: dict[str, Any], publish: bool, conditions: dict[str, bool]
) -> None:
    endpoint = pod_endpoint(the_pod, service(publishNotReadyAddresses=publish), NODES["n1"])
    assert endpoint is not None and endpoint["conditions"] == conditions


def test_endpoint_carries_address_node_zone_and_pod_reference() -> None:
    endpoint = pod_endpoint(pod("a", "10.42.0.5"), service(), NODES["n1"])
    assert endpoint == {
        "addresses": ["10.42.0.5"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": NS, "name": "a", "uid": "uid-a"},
        "nodeName": "n1",
        "zone": "z1",
    }
    assert "zone" not in (pod_endpoint(pod("b", "10.42.0.6", node="n2"), service(), NODES["n2"]) or {})


def test_hostname_is_set_only_for_pods_naming_the_service_as_subdomain() -> None:
    named = pod("a", "10.42.0.5", hostname="a", subdomain="web")
    assert (pod_endpoint(named, service(), None) or {}).get("hostname") == "a"
    other = pod("b", "10.42.0.6", hostname="b", subdomain="other")
    assert "hostname" not in (pod_endpoint(other, service(), None) or {})
    no_hostname = pod("c", "10.42.0.7", subdomain="web")
    assert "hostname" not in (pod_endpoint(no_hostname, service(), None) or {})


# -- slices -----------------------------------------------------------------------------------------


def apply(plan: Any, existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the API holds after the plan (names given to created slices)."""
    by_name = {s["metadata"]["name"]: s for s in existing}
    for doomed in plan.delete:
        by_name.pop(doomed["metadata"]["name"])
    for body in plan.update:
        by_name[body["metadata"]["name"]] = body
    for i, body in enumerate(plan.create):
        body = {**body, "metadata": {**body["metadata"], "name": f"web-new{len(by_name)}{i}"}}
        by_name[body["metadata"]["name"]] = body
    return list(by_name.values())


def ips(slices: list[dict[str, Any]]) -> list[str]:
    return sorted(ep["addresses"][0] for s in slices for ep in s["endpoints"])


def test_first_sync_creates_one_slice_with_labels_owner_and_trigger_time() -> None:
    svc = service(labels={"team": "a", MANAGED_BY_LABEL: "someone"})
    pods = [pod("a", "10.42.0.5"), pod("b", "10.42.0.6", ready=False), pod("c", None)]
    plan = plan_slices(svc, pods, [], nodes=NODES, trigger_time=T0)
    assert not plan.update and not plan.delete and len(plan.create) == 1
    created = plan.create[0]
    assert created["metadata"]["generateName"] == "web-"
    assert created["metadata"]["labels"] == {"team": "a", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME}
    assert created["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "web",
            "uid": "uid-web",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert created["metadata"]["annotations"] == {LAST_CHANGE_TRIGGER_TIME: rfc3339(T0)}
    assert created["addressType"] == "IPv4"
    assert created["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert ips([created]) == ["10.42.0.5", "10.42.0.6"]


def test_headless_services_get_the_headless_label() -> None:
    assert slice_labels(service(cluster_ip="None"))["service.kubernetes.io/headless"] == ""


def test_a_service_without_endpoints_keeps_one_placeholder_slice() -> None:
    plan = plan_slices(service(), [], [], nodes=NODES)
    assert len(plan.create) == 1 and plan.create[0]["ports"] == [] and plan.create[0]["endpoints"] == []
    placeholder = {
        **plan.create[0],
        "metadata": {**plan.create[0]["metadata"], "name": "web-p", "resourceVersion": "3"},
    }
    assert plan_slices(service(), [], [placeholder], nodes=NODES).empty
    # the first endpoints go into the placeholder (same name), not into a new slice
    filled = plan_slices(service(), [pod("a", "10.42.0.5")], [placeholder], nodes=NODES)
    assert not filled.create and not filled.delete
    assert [s["metadata"]["name"] for s in filled.update] == ["web-p"]
    assert filled.update[0]["metadata"]["generateName"] == "web-"
    assert filled.update[0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


def test_pods_are_packed_at_most_max_per_slice() -> None:
    pods = [pod(f"p{i}", f"10.42.0.{i + 1}") for i in range(7)]
    plan = plan_slices(service(), pods, [], nodes=NODES, max_per_slice=3)
    assert sorted(len(s["endpoints"]) for s in plan.create) == [1, 3, 3]


def test_unchanged_slices_are_left_alone_and_changes_update_in_place() -> None:
    pods = [pod(f"p{i}", f"10.42.0.{i + 1}") for i in range(6)]
    slices = apply(plan_slices(service(), pods, [], nodes=NODES, max_per_slice=3), [])
    assert plan_slices(service(), pods, slices, nodes=NODES, max_per_slice=3).empty
    # one pod goes not ready: only its slice is updated
    changed = [*pods[:5], pod("p5", "10.42.0.6", ready=False)]
    plan = plan_slices(service(), changed, slices, nodes=NODES, max_per_slice=3)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    updated = next(ep for ep in plan.update[0]["endpoints"] if ep["addresses"] == ["10.42.0.6"])
    assert updated["conditions"]["ready"] is False


def test_removed_pods_leave_their_slice_and_new_ones_fill_it() -> None:
    pods = [pod(f"p{i}", f"10.42.0.{i + 1}") for i in range(6)]
    slices = apply(plan_slices(service(), pods, [], nodes=NODES, max_per_slice=3), [])
    replaced = [*pods[1:], pod("q", "10.42.0.99")]
    plan = plan_slices(service(), replaced, slices, nodes=NODES, max_per_slice=3)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    assert ips(apply(plan, slices)) == ips([{"endpoints": [pod_endpoint(p, service(), None)]} for p in replaced])


def test_new_endpoints_go_into_the_unchanged_slice_they_fill_best() -> None:
    pods = [pod(f"p{i}", f"10.42.0.{i + 1}") for i in range(4)]
    slices = apply(plan_slices(service(), pods, [], nodes=NODES, max_per_slice=3), [])  # 3 + 1
    plan = plan_slices(service(), [*pods, pod("q", "10.42.0.99")], slices, nodes=NODES, max_per_slice=3)
    assert not plan.create and len(plan.update) == 1 and len(plan.update[0]["endpoints"]) == 2


def test_pods_whose_named_port_does_not_resolve_get_their_own_slice() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    named = pod("a", "10.42.0.5", container_ports=[{"name": "web", "containerPort": 8000}])
    renamed = pod("b", "10.42.0.6", container_ports=[{"name": "web", "containerPort": 9000}])
    unnamed = pod("c", "10.42.0.7")
    plan = plan_slices(svc, [named, renamed, unnamed], [], nodes=NODES)
    by_ports = {tuple(p["port"] for p in s["ports"]): ips([s]) for s in plan.create}
    assert by_ports == {(8000,): ["10.42.0.5"], (9000,): ["10.42.0.6"], (): ["10.42.0.7"]}


def test_slices_of_another_service_uid_or_address_type_are_deleted() -> None:
    stale = apply(plan_slices(service(), [pod("a", "10.42.0.5")], [], nodes=NODES), [])[0]
    stale["metadata"]["ownerReferences"][0]["uid"] = "old-uid"
    v6 = {**stale, "addressType": "IPv6", "metadata": {**stale["metadata"], "name": "web-v6"}}
    plan = plan_slices(service(), [pod("a", "10.42.0.5")], [stale, v6], nodes=NODES)
    assert len(plan.create) == 1 and sorted(s["metadata"]["name"] for s in plan.delete) == [
        stale["metadata"]["name"],
        "web-v6",
    ]


def test_service_label_changes_update_slices() -> None:
    slices = apply(plan_slices(service(), [pod("a", "10.42.0.5")], [], nodes=NODES), [])
    plan = plan_slices(service(labels={"new": "x"}), [pod("a", "10.42.0.5")], slices, nodes=NODES)
    assert len(plan.update) == 1 and plan.update[0]["metadata"]["labels"]["new"] == "x"


def test_pods_on_unknown_nodes_are_skipped_unless_not_ready_addresses_are_published() -> None:
    lost = pod("a", "10.42.0.5", node="gone")
    plan = plan_slices(service(), [lost], [], nodes=NODES)
    assert plan.missing_nodes == ["gone"] and ips(plan.create) == []
    published = plan_slices(service(publishNotReadyAddresses=True), [lost], [], nodes=NODES)
    assert not published.missing_nodes and ips(published.create) == ["10.42.0.5"]


def test_a_service_being_deleted_gets_no_new_slices() -> None:
    svc = service()
    svc["metadata"]["deletionTimestamp"] = rfc3339(T0)
    assert plan_slices(svc, [pod("a", "10.42.0.5")], [], nodes=NODES).create == []


def test_endpoint_identity_ignores_conditions() -> None:
    ready = pod_endpoint(pod("a", "10.42.0.5"), service(), None)
    not_ready = pod_endpoint(pod("a", "10.42.0.5", ready=False), service(), None)
    assert ready and not_ready and endpoint_key(ready) == endpoint_key(not_ready)


# -- trigger times ----------------------------------------------------------------------------------


def test_trigger_time_is_service_creation_first_then_earliest_changed_pod() -> None:
    tracker = TriggerTimeTracker()
    svc = service()
    first = pod("a", "10.42.0.5")
    assert tracker.compute("ns/web", svc, [first]) == T0
    assert tracker.compute("ns/web", svc, [first]) is None
    later = pod("b", "10.42.0.6")
    later["status"]["conditions"][0]["lastTransitionTime"] = rfc3339(T0 + timedelta(seconds=30))
    assert tracker.compute("ns/web", svc, [first, later]) == T0 + timedelta(seconds=30)
    tracker.forget("ns/web")
    assert tracker.compute("ns/web", svc, [first, later]) == T0


# -- Endpoints subsets ------------------------------------------------------------------------------


def address(name: str, ip: str, node: str = "n1") -> dict[str, Any]:
    return {
        "ip": ip,
        "nodeName": node,
        "targetRef": {"kind": "Pod", "namespace": NS, "name": name, "uid": f"uid-{name}"},
    }


def test_subsets_split_ready_and_not_ready_addresses() -> None:
    pods = [pod("b", "10.42.0.6"), pod("a", "10.42.0.5"), pod("c", "10.42.0.7", ready=False), pod("d", None)]
    assert build_subsets(service(), pods) == [
        {
            "addresses": [address("a", "10.42.0.5"), address("b", "10.42.0.6")],
            "notReadyAddresses": [address("c", "10.42.0.7")],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }
    ]


def test_subsets_are_repacked_by_the_ports_addresses_share() -> None:
    svc = service(
        ports=[
            {"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"},
            {"name": "admin", "port": 81, "targetPort": 9090, "protocol": "TCP"},
        ]
    )
    named = pod("a", "10.42.0.5", container_ports=[{"name": "web", "containerPort": 8000}])
    plain = pod("b", "10.42.0.6")
    assert build_subsets(svc, [named, plain]) == [
        {
            "addresses": [address("a", "10.42.0.5"), address("b", "10.42.0.6")],
            "ports": [{"name": "admin", "port": 9090, "protocol": "TCP"}],
        },
        {"addresses": [address("a", "10.42.0.5")], "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}]},
    ]


def test_terminating_pods_leave_endpoints_unless_not_ready_addresses_are_published() -> None:
    going = pod("a", "10.42.0.5", deleting=True)
    assert build_subsets(service(), [going]) == []
    assert build_subsets(service(publishNotReadyAddresses=True), [going])[0]["addresses"] == [address("a", "10.42.0.5")]


def test_headless_service_without_ports_lists_bare_addresses() -> None:
    assert build_subsets(service(cluster_ip="None", ports=[]), [pod("a", "10.42.0.5")]) == [
        {"addresses": [address("a", "10.42.0.5")]}
    ]
    assert build_subsets(service(ports=[]), [pod("a", "10.42.0.5")]) == []


@pytest.mark.parametrize(
    ("ready", "not_ready", "kept_ready", "kept_not_ready"),
    [(600, 600, 600, 400), (1200, 10, 1000, 0), (10, 10, 10, 10)],
)
def test_truncation_keeps_ready_addresses_first(
    ready: int, not_ready: int, kept_ready: int, kept_not_ready: int
) -> None:
    half = [
        {
            "addresses": [{"ip": f"a{i}"} for i in range(ready // 2)],
            "notReadyAddresses": [{"ip": f"b{i}"} for i in range(not_ready // 2)],
        },
        {
            "addresses": [{"ip": f"c{i}"} for i in range(ready - ready // 2)],
            "notReadyAddresses": [{"ip": f"d{i}"} for i in range(not_ready - not_ready // 2)],
        },
    ]
    assert truncate_subsets(half) is (ready + not_ready > MAX_CAPACITY)
    assert sum(len(s.get("addresses") or ()) for s in half) == kept_ready
    assert sum(len(s.get("notReadyAddresses") or ()) for s in half) == kept_not_ready


def test_desired_endpoints_writes_only_on_change_and_marks_over_capacity() -> None:
    svc = service(labels={"team": "a"})
    body = desired_endpoints(svc, [pod("a", "10.42.0.5")], None, trigger_time=T0)
    assert body is not None
    assert body["metadata"] == {
        "name": "web",
        "namespace": NS,
        "labels": {"team": "a"},
        "annotations": {LAST_CHANGE_TRIGGER_TIME: rfc3339(T0)},
    }
    assert desired_endpoints(svc, [pod("a", "10.42.0.5")], body, trigger_time=None) is None
    many = [pod(f"p{i}", f"10.42.{i // 250}.{i % 250 + 1}") for i in range(1001)]
    big = desired_endpoints(svc, many, body, trigger_time=None)
    assert big is not None and big["metadata"]["annotations"] == {OVER_CAPACITY: "truncated"}
    assert sum(len(s["addresses"]) for s in big["subsets"]) == MAX_CAPACITY
    assert desired_endpoints(svc, many, big, trigger_time=None) is None
