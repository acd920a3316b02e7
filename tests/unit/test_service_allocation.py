"""ClusterIP and node-port allocation: the pure ranges, the ledger's decisions, and the field steps."""

from __future__ import annotations

import random
from typing import Any

import pytest

from kubelite.apiserver.registry.services import fields
from kubelite.apiserver.registry.services.allocator import (
    AlreadyAllocated,
    IPAllocator,
    NotInRange,
    PortAllocator,
    RangeFull,
    band_size,
)
from kubelite.apiserver.registry.services.ledger import ServiceLedger, holdings_of
from kubelite.machinery.errors import ApiError
from kubelite.machinery.network import ClusterNetwork

# -- ranges ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "minimum", "maximum", "step", "band"),
    [
        (65536, 16, 256, 16, 256),  # a /16 service CIDR
        (256, 16, 256, 16, 16),  # a /24
        (16, 16, 256, 16, 0),  # a /28: too small for a band
        (4096, 16, 256, 16, 256),
        (2768, 16, 128, 32, 86),  # the default node-port range
        (100, 16, 128, 32, 16),
    ],
)
def test_band_size_follows_upstream_formula(size: int, minimum: int, maximum: int, step: int, band: int) -> None:
    assert band_size(size, minimum=minimum, maximum=maximum, step=step) == band


def test_ip_range_excludes_network_and_broadcast_addresses() -> None:
    allocator = IPAllocator("10.43.0.0/29")
    assert not allocator.contains("10.43.0.0")
    assert not allocator.contains("10.43.0.7")
    assert allocator.contains("10.43.0.1") and allocator.contains("10.43.0.6")
    assert allocator.free == 6


@pytest.mark.parametrize("ip", ["10.44.0.1", "10.43.255.255", "10.43.0.0", "fd00::1", "not-an-ip"])
def test_ip_outside_range_is_refused_with_upstream_message(ip: str) -> None:
    with pytest.raises(NotInRange) as caught:
        IPAllocator("10.43.0.0/16").allocate(ip)
    assert str(caught.value) == (
        f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is 10.43.0.0/16"
    )


def test_ip_taken_twice_is_refused() -> None:
    allocator = IPAllocator("10.43.0.0/16")
    allocator.allocate("10.43.0.10")
    with pytest.raises(AlreadyAllocated, match=r"^provided IP is already allocated$"):
        allocator.allocate("10.43.0.10")


def test_dynamic_ips_come_from_above_the_static_band_first() -> None:
    allocator = IPAllocator("10.43.0.0/16")
    rng = random.Random(1)
    for _ in range(200):
        ip = allocator.allocate_next(rng)
        assert int(ip.split(".")[2]) * 256 + int(ip.split(".")[3]) > 256


def test_small_range_hands_out_every_address_once_then_is_full() -> None:
    allocator = IPAllocator("10.43.0.0/28")
    rng = random.Random(7)
    got = {allocator.allocate_next(rng) for _ in range(14)}
    assert len(got) == 14 and allocator.free == 0
    with pytest.raises(RangeFull, match=r"^range is full$"):
        allocator.allocate_next(rng)


def test_band_is_used_once_the_upper_part_is_full() -> None:
    allocator = IPAllocator("10.43.0.0/24")  # band of 16 offsets: .1 … .16
    rng = random.Random(3)
    first = [allocator.allocate_next(rng) for _ in range(254 - 16)]
    assert all(int(ip.rsplit(".", 1)[1]) > 16 for ip in first)
    rest = {allocator.allocate_next(rng) for _ in range(16)}
    assert rest == {f"10.43.0.{i}" for i in range(1, 17)}


def test_released_ip_can_be_taken_again() -> None:
    allocator = IPAllocator("10.43.0.0/16")
    allocator.allocate("10.43.1.1")
    allocator.release("10.43.1.1")
    allocator.release("10.43.1.1")  # idempotent
    allocator.allocate("10.43.1.1")
    assert allocator.used == 1


def test_repair_from_a_list_marks_in_range_values_only() -> None:
    allocator = IPAllocator.with_allocated("10.43.0.0/16", ["10.43.0.1", "10.43.0.10", "10.99.0.1", "10.43.0.1"])
    assert allocator.used == 2 and allocator.has("10.43.0.10")
    ports = PortAllocator.with_allocated(30000, 32767, [30000, 32767, 8080])
    assert ports.used == 2 and ports.has(32767) and not ports.has(8080)


@pytest.mark.parametrize("port", [29999, 32768, 80])
def test_node_port_outside_range_is_refused_with_upstream_message(port: int) -> None:
    with pytest.raises(NotInRange) as caught:
        PortAllocator(30000, 32767).allocate(port)
    assert str(caught.value) == "provided port is not in the valid range. The range of valid ports is 30000-32767"


def test_node_port_range_bounds_are_inclusive_and_exhaust() -> None:
    allocator = PortAllocator(30000, 30009)
    allocator.allocate(30000)
    allocator.allocate(30009)
    with pytest.raises(AlreadyAllocated, match=r"^provided port is already allocated$"):
        allocator.allocate(30009)
    rng = random.Random(0)
    got = {allocator.allocate_next(rng) for _ in range(8)}
    assert got == set(range(30001, 30009))
    with pytest.raises(RangeFull):
        allocator.allocate_next(rng)


# -- the ledger --------------------------------------------------------------------------------------


def ledger(**network: Any) -> ServiceLedger:
    return ServiceLedger(ClusterNetwork(**network), rng=random.Random(42))


def svc(name: str = "web", **spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"name": "http", "port": 80, "protocol": "TCP"}])
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def store(book: ServiceLedger, obj: dict[str, Any]) -> None:
    """What the watch cache tells the ledger after a successful write."""
    meta = obj["metadata"]
    book.observe(f"/registry/core/services/{meta['namespace']}/{meta['name']}", obj)


def create(book: ServiceLedger, obj: dict[str, Any]) -> dict[str, Any]:
    allocation = book.allocate_create(obj)
    store(book, obj)
    allocation.finish()
    return obj


def test_create_allocates_cluster_ip_from_the_service_cidr_and_fills_families() -> None:
    book = ledger()
    obj = create(book, svc())
    spec = obj["spec"]
    assert spec["clusterIP"].startswith("10.43.") and spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert book.ips.has(spec["clusterIP"])


def test_requested_ip_taken_by_another_service_is_refused_with_nothing_reserved() -> None:
    book = ledger()
    create(book, svc("a", clusterIP="10.43.0.50"))
    with pytest.raises(ApiError) as caught:
        book.allocate_create(svc("b", clusterIP="10.43.0.50"))
    assert caught.value.code == 422
    assert caught.value.causes[0].field == "spec.clusterIPs"
    assert caught.value.message == (
        'Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"10.43.0.50"}: '
        "failed to allocate IP 10.43.0.50: provided IP is already allocated"
    )
    assert book.ips.used == 1


def test_requested_ip_out_of_range_names_the_range() -> None:
    with pytest.raises(ApiError) as caught:
        ledger().allocate_create(svc(clusterIP="10.44.0.1"))
    assert "The range of valid IPs is 10.43.0.0/16" in caught.value.message


def test_two_creates_racing_for_one_ip_exactly_one_wins() -> None:
    book = ledger()
    first = book.allocate_create(svc("a", clusterIP="10.43.0.77"))  # write in flight, not stored yet
    with pytest.raises(ApiError):
        book.allocate_create(svc("b", clusterIP="10.43.0.77"))
    first.finish()  # the write failed: nothing stored, the address is free again
    create(book, svc("b", clusterIP="10.43.0.77"))
    assert book.owners_of_ip("10.43.0.77") == {"/registry/core/services/default/b"}


def test_headless_and_external_name_get_no_address() -> None:
    book = ledger()
    headless = create(book, svc("h", clusterIP="None", selector={"app": "h"}))
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["ipFamilies"] == ["IPv4"]
    selectorless = create(book, svc("s", clusterIP="None"))
    assert selectorless["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    assert selectorless["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    external = create(book, svc("e", type="ExternalName", externalName="example.com", ports=[]))
    assert "clusterIP" not in external["spec"] and "ipFamilies" not in external["spec"]
    assert book.ips.used == 0


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (
            {"ipFamilyPolicy": "RequireDualStack"},
            "spec.ipFamilyPolicy",
            "this cluster is not configured for dual-stack",
        ),
        ({"ipFamilies": ["IPv6"]}, "spec.ipFamilies[0]", "not configured on this cluster"),
        ({"clusterIP": "fd00::1"}, "spec.clusterIPs[0]", "IPv6 is not configured on this cluster"),
    ],
)
def test_dual_stack_requests_are_refused_on_a_single_stack_cluster(
    spec: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ApiError) as caught:
        ledger().allocate_create(svc(**spec))
    assert caught.value.causes[0].field == field and message in caught.value.message


def test_node_ports_are_allocated_in_range_and_shared_by_protocols_of_one_port_number() -> None:
    ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "web", "port": 80, "protocol": "TCP"},
    ]
    obj = create(ledger(), svc(type="NodePort", ports=ports))
    got = [p["nodePort"] for p in obj["spec"]["ports"]]
    assert all(30086 <= p <= 32767 for p in got)  # dynamic ports avoid the static band
    assert got[0] == got[1] != got[2]


def test_requested_node_port_conflict_is_refused_with_upstream_message() -> None:
    book = ledger()
    create(book, svc("a", type="NodePort", ports=[{"name": "p", "port": 80, "nodePort": 30080}]))
    with pytest.raises(ApiError) as caught:
        book.allocate_create(svc("b", type="NodePort", ports=[{"name": "p", "port": 80, "nodePort": 30080}]))
    assert caught.value.message == (
        'Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated'
    )
    with pytest.raises(ApiError) as caught:
        book.allocate_create(svc("c", type="NodePort", ports=[{"name": "p", "port": 80, "nodePort": 80}]))
    assert caught.value.causes[0].message == (
        "Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
    )


def test_load_balancer_without_node_port_allocation_keeps_only_requested_ports() -> None:
    ports = [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 31000}]
    obj = create(ledger(), svc(type="LoadBalancer", allocateLoadBalancerNodePorts=False, ports=ports))
    assert "nodePort" not in obj["spec"]["ports"][0] and obj["spec"]["ports"][1]["nodePort"] == 31000


def test_local_load_balancer_gets_a_health_check_node_port() -> None:
    book = ledger()
    obj = create(book, svc(type="LoadBalancer", externalTrafficPolicy="Local"))
    hc = obj["spec"]["healthCheckNodePort"]
    assert 30000 <= hc <= 32767 and hc != obj["spec"]["ports"][0]["nodePort"]
    assert book.ports.used == 2


def test_dry_run_checks_but_reserves_nothing() -> None:
    book = ledger()
    create(book, svc("a", clusterIP="10.43.0.5"))
    with pytest.raises(ApiError):
        book.allocate_create(svc("b", clusterIP="10.43.0.5"), dry_run=True)
    obj = svc("c", type="NodePort")
    book.allocate_create(obj, dry_run=True).finish()
    assert obj["spec"]["clusterIP"].startswith("10.43.") and obj["spec"]["ports"][0]["nodePort"]
    assert book.ips.used == 1 and book.ports.used == 0


def test_delete_releases_everything_the_service_held() -> None:
    book = ledger()
    obj = create(book, svc(type="LoadBalancer", externalTrafficPolicy="Local"))
    book.observe("/registry/core/services/default/web", None)
    assert book.ips.used == 0 and book.ports.used == 0
    create(book, svc("again", clusterIP=obj["spec"]["clusterIP"]))


def test_exhausted_range_is_an_internal_error() -> None:
    book = ledger(service_cidr="10.43.0.0/30")  # two usable addresses
    create(book, svc("a"))
    create(book, svc("b"))
    with pytest.raises(ApiError) as caught:
        book.allocate_create(svc("c"))
    assert caught.value.code == 500
    assert caught.value.message == "Internal error occurred: failed to allocate a serviceIP: range is full"


def test_rebuild_restores_holdings_so_nothing_is_handed_out_twice() -> None:
    book = ledger(service_cidr="10.43.0.0/29", node_port_min=30000, node_port_max=30001)
    a = create(book, svc("a", type="NodePort"))
    stored = [(f"/registry/core/services/default/{o['metadata']['name']}", o) for o in (a,)]
    restarted = ledger(service_cidr="10.43.0.0/29", node_port_min=30000, node_port_max=30001)
    restarted.rebuild(stored)
    assert restarted.ips.has(a["spec"]["clusterIP"]) and restarted.ports.has(a["spec"]["ports"][0]["nodePort"])
    b = create(restarted, svc("b", type="NodePort"))
    assert b["spec"]["clusterIP"] != a["spec"]["clusterIP"]
    assert b["spec"]["ports"][0]["nodePort"] != a["spec"]["ports"][0]["nodePort"]


# -- updates -----------------------------------------------------------------------------------------


def update(book: ServiceLedger, new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    allocation = book.allocate_update(new, old)
    store(book, new)
    allocation.finish()
    return new


def test_update_that_omits_allocated_values_keeps_them() -> None:
    book = ledger()
    old = create(book, svc(type="NodePort"))
    new = update(book, svc(type="NodePort"), old)
    assert new["spec"]["clusterIP"] == old["spec"]["clusterIP"]
    assert new["spec"]["ports"][0]["nodePort"] == old["spec"]["ports"][0]["nodePort"]
    assert book.ips.used == 1 and book.ports.used == 1


def test_node_port_to_cluster_ip_clears_and_releases_the_port() -> None:
    book = ledger()
    old = create(book, svc(type="NodePort"))
    port = old["spec"]["ports"][0]["nodePort"]
    new = dict(old, spec={**old["spec"], "type": "ClusterIP", "ports": [dict(p) for p in old["spec"]["ports"]]})
    update(book, new, old)
    assert "nodePort" not in new["spec"]["ports"][0]
    assert not book.ports.has(port)
    create(book, svc("other", type="NodePort", ports=[{"name": "p", "port": 1, "nodePort": port}]))


def test_update_adding_a_port_allocates_only_the_new_one() -> None:
    book = ledger()
    old = create(book, svc(type="NodePort"))
    ports = [dict(p) for p in old["spec"]["ports"]] + [{"name": "https", "port": 443, "protocol": "TCP"}]
    new = update(book, {**old, "spec": {**old["spec"], "ports": ports}}, old)
    assert new["spec"]["ports"][0]["nodePort"] == old["spec"]["ports"][0]["nodePort"]
    assert new["spec"]["ports"][1]["nodePort"] and book.ports.used == 2


def test_change_to_external_name_releases_and_back_allocates() -> None:
    book = ledger()
    old = create(book, svc(clusterIP="10.43.0.60"))
    external = {**old, "spec": {**old["spec"], "type": "ExternalName", "externalName": "example.com"}}
    update(book, external, old)
    assert "clusterIP" not in external["spec"] and book.ips.used == 0
    back = update(book, {**external, "spec": {**external["spec"], "type": "ClusterIP"}}, external)
    assert back["spec"]["clusterIP"].startswith("10.43.") and book.ips.used == 1


def test_failed_update_hands_back_what_it_reserved() -> None:
    book = ledger()
    old = create(book, svc())
    new = {**old, "spec": {**old["spec"], "type": "NodePort"}}
    book.allocate_update(new, old).finish()  # never stored
    assert book.ports.used == 0


def test_changing_health_check_port_of_local_load_balancer_is_refused() -> None:
    book = ledger()
    old = create(book, svc(type="LoadBalancer", externalTrafficPolicy="Local"))
    new = {**old, "spec": {**old["spec"], "healthCheckNodePort": 32000}}
    with pytest.raises(ApiError) as caught:
        book.allocate_update(new, old)
    assert "cannot change healthCheckNodePort on loadBalancer service with externalTraffic=Local" in str(caught.value)


def test_holdings_ignore_headless_and_external_name() -> None:
    assert holdings_of(svc(clusterIP="None")).ips == frozenset()
    assert holdings_of(svc(type="ExternalName", clusterIP="10.43.0.1")).ips == frozenset()
    assert holdings_of(svc(clusterIP="10.43.0.1", healthCheckNodePort=30001)).ports == {30001}


def test_drop_type_dependent_fields_keeps_values_the_client_changed() -> None:
    old = {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}], "externalTrafficPolicy": "Cluster"}
    new = {"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30002}], "externalTrafficPolicy": "Cluster"}
    fields.drop_type_dependent_fields(new, old)
    assert new["ports"][0]["nodePort"] == 30002 and "externalTrafficPolicy" not in new


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"clusterIP": "10.43.0.1", "clusterIPs": ["10.43.0.2"]}, "first value must match `clusterIP`"),
        ({"clusterIPs": ["None"]}, "must be empty when `clusterIP` is not specified"),
    ],
)
def test_validation_keeps_cluster_ip_and_cluster_ips_in_step(spec: dict[str, Any], message: str) -> None:
    from kubelite.apiserver.registry.validation.core import validate_service

    obj = svc(type="ClusterIP", sessionAffinity="None", **spec)
    obj["spec"]["ports"][0]["protocol"] = "TCP"
    causes = [c for c in validate_service(obj) if c.field == "spec.clusterIPs"]
    assert len(causes) == 1 and causes[0].message.endswith(f": {message}")
