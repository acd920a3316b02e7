"""The proxy in nftables mode against a FakeClient, inside a node namespace with two pods (kubelite.testing.servicelab):
real packets through the rules it writes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kubelite.client.interface import builtin
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.netns import skip_reason
from kubelite.testing.servicelab import GATEWAY, ServiceLab, eventually, running_proxy
from kubelite.testing.servicelab import service_object as service
from kubelite.testing.servicelab import slice_object as endpoint_slice

SERVICES = builtin("", "services")
SLICES = builtin("discovery.k8s.io", "endpointslices")


@pytest.fixture(scope="module")
def lab() -> Iterator[ServiceLab]:
    reason = skip_reason()
    if reason:
        pytest.fail(reason)
    with ServiceLab(pods=2) as built:
        yield built


async def test_cluster_ip_balances_over_both_backends_from_node_and_pod(lab: ServiceLab):
    client = FakeClient()
    await client.create(SERVICES, service("web", "10.43.0.5"), "default")
    await client.create(SLICES, endpoint_slice("web", *(p.ip for p in lab.pods)), "default")
    async with running_proxy(lab, client, "nftables") as syncs:
        await eventually(lambda: _answers(lab, lab.node, "10.43.0.5", 80), "rules")
        assert syncs[0] == "nftables"
        from_node = await lab.probe(lab.node, "10.43.0.5", 80, count=30)
        assert {answer.split()[0] for answer in from_node} == {"pod1", "pod2"}
        from_pod = await lab.probe(lab.pods[0], "10.43.0.5", 80, count=30)
        assert {answer.split()[0] for answer in from_pod} == {"pod1", "pod2"}  # pod1 reaches itself: hairpin
        assert "default/web:http" in lab.nft_table()


async def test_node_port_from_another_host_is_masqueraded(lab: ServiceLab):
    client = FakeClient()
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
    await client.create(SERVICES, service("np", "10.43.0.6", type="NodePort", ports=ports), "default")
    await client.create(SLICES, endpoint_slice("np", *(p.ip for p in lab.pods)), "default")
    async with running_proxy(lab, client, "nftables"):
        await eventually(lambda: _answers(lab, lab.client, lab.node.ip, 30080), "node port")
        answers = await lab.probe(lab.client, lab.node.ip, 30080, count=30)
        assert {a.split()[0] for a in answers} == {"pod1", "pod2"}
        assert {a.split()[1] for a in answers} == {GATEWAY}  # SNAT to the node: replies come back through it


async def test_external_traffic_policy_local_keeps_the_client_source_address(lab: ServiceLab):
    client = FakeClient()
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30081}]
    svc = service("local", "10.43.0.7", type="NodePort", ports=ports, externalTrafficPolicy="Local")
    await client.create(SERVICES, svc, "default")
    await client.create(SLICES, endpoint_slice("local", lab.pods[0].ip), "default")
    async with running_proxy(lab, client, "nftables"):
        await eventually(lambda: _answers(lab, lab.client, lab.node.ip, 30081), "node port")
        answers = await lab.probe(lab.client, lab.node.ip, 30081, count=5)
        assert answers == [f"pod1 {lab.client.ip}"] * 5


async def test_session_affinity_sticks_to_one_backend(lab: ServiceLab):
    client = FakeClient()
    await client.create(SERVICES, service("sticky", "10.43.0.8", sessionAffinity="ClientIP"), "default")
    await client.create(SLICES, endpoint_slice("sticky", *(p.ip for p in lab.pods)), "default")
    async with running_proxy(lab, client, "nftables"):
        await eventually(lambda: _answers(lab, lab.node, "10.43.0.8", 80), "rules")
        answers = await lab.probe(lab.node, "10.43.0.8", 80, count=20)
        assert len({a.split()[0] for a in answers}) == 1


async def test_no_endpoints_refuses_and_deleting_the_service_removes_its_rules(lab: ServiceLab):
    client = FakeClient()
    await client.create(SERVICES, service("empty", "10.43.0.9"), "default")
    await client.create(SERVICES, service("gone", "10.43.0.11"), "default")
    await client.create(SLICES, endpoint_slice("gone", lab.pods[1].ip), "default")
    async with running_proxy(lab, client, "nftables") as syncs:
        await eventually(lambda: _answers(lab, lab.node, "10.43.0.11", 80), "rules")
        assert await lab.probe(lab.node, "10.43.0.9", 80, count=1, timeout=10) == ["error:ECONNREFUSED"]
        assert await lab.probe(lab.pods[0], "10.43.0.9", 80, count=1, timeout=10) == ["error:ECONNREFUSED"]
        assert "default/gone:http" in lab.nft_table()
        await client.delete(SERVICES, "gone", "default")
        await eventually(lambda: _no_rules_for(lab, "default/gone"), "rules removed")
        assert syncs.count("nftables") >= 2
        assert (await lab.probe(lab.node, "10.43.0.11", 80, count=1, timeout=2))[0].startswith("error:")
    assert "default/empty" in lab.nft_table()  # the table stays when the proxy stops


async def test_endpoint_changes_are_applied_incrementally(lab: ServiceLab):
    client = FakeClient()
    await client.create(SERVICES, service("moving", "10.43.0.12"), "default")
    await client.create(SLICES, endpoint_slice("moving", lab.pods[0].ip), "default")
    async with running_proxy(lab, client, "nftables"):
        await eventually(lambda: _answers(lab, lab.node, "10.43.0.12", 80), "rules")
        assert {a.split()[0] for a in await lab.probe(lab.node, "10.43.0.12", 80, count=5)} == {"pod1"}
        await client.update(SLICES, endpoint_slice("moving", lab.pods[1].ip), "default")

        async def moved() -> bool:
            return {a.split()[0] for a in await lab.probe(lab.node, "10.43.0.12", 80, count=3)} == {"pod2"}

        await eventually(moved, "moved to pod2")


async def _answers(lab: ServiceLab, where: Any, host: str, port: int) -> bool:
    return not (await lab.probe(where, host, port, count=1, timeout=1))[0].startswith("error:")


async def _no_rules_for(lab: ServiceLab, name: str) -> bool:
    return name not in lab.nft_table()
