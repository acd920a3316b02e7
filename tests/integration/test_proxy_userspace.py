"""The proxy in userspace mode against a FakeClient, inside a node namespace with two pods
(kubelite.testing.servicelab):
ClusterIPs on the dummy interface, NodePorts on 0.0.0.0, affinity, retries, listeners following the API."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kubelite.client.interface import builtin
from kubelite.proxy.userspace import DUMMY_INTERFACE
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.netns import skip_reason
from kubelite.testing.servicelab import ServiceLab, eventually, running_proxy
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


def dummy_addresses(lab: ServiceLab) -> set[str]:
    out = lab.node.run(["ip", "-j", "-4", "addr", "show", "dev", DUMMY_INTERFACE]).stdout
    return {info["local"] for link in json.loads(out or "[]") for info in link.get("addr_info", [])}


async def answers(lab: ServiceLab, where, host: str, port: int) -> bool:
    return not (await lab.probe(where, host, port, count=1, timeout=1))[0].startswith("error:")


async def test_cluster_ip_and_node_port_round_robin_over_both_backends(lab: ServiceLab):
    client = FakeClient()
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30090}]
    await client.create(SERVICES, service("web", "10.43.1.5", type="NodePort", ports=ports), "default")
    await client.create(SLICES, endpoint_slice("web", *(p.ip for p in lab.pods)), "default")
    async with running_proxy(lab, client, "userspace") as syncs:
        await eventually(lambda: answers(lab, lab.node, "10.43.1.5", 80), "cluster IP listener")
        assert syncs[0] == "userspace"
        assert "10.43.1.5" in dummy_addresses(lab)
        from_node = await lab.probe(lab.node, "10.43.1.5", 80, count=6)
        assert {a.split()[0] for a in from_node} == {"pod1", "pod2"}
        from_pod = await lab.probe(lab.pods[0], "10.43.1.5", 80, count=6)
        assert {a.split()[0] for a in from_pod} == {"pod1", "pod2"}
        await eventually(lambda: answers(lab, lab.client, lab.node.ip, 30090), "node port listener")
        from_client = await lab.probe(lab.client, lab.node.ip, 30090, count=6)
        assert {a.split()[0] for a in from_client} == {"pod1", "pod2"}


async def test_session_affinity_sticks_and_dead_endpoint_is_skipped(lab: ServiceLab):
    client = FakeClient()
    await client.create(SERVICES, service("sticky", "10.43.1.6", sessionAffinity="ClientIP"), "default")
    await client.create(SLICES, endpoint_slice("sticky", *(p.ip for p in lab.pods)), "default")
    await client.create(SERVICES, service("half", "10.43.1.7"), "default")
    await client.create(SLICES, endpoint_slice("half", lab.pods[0].ip, "10.42.0.99"), "default")  # nobody there
    async with running_proxy(lab, client, "userspace"):
        await eventually(lambda: answers(lab, lab.node, "10.43.1.6", 80), "listener")
        sticky = await lab.probe(lab.node, "10.43.1.6", 80, count=10)
        assert len({a.split()[0] for a in sticky}) == 1
        await eventually(lambda: answers(lab, lab.node, "10.43.1.7", 80), "listener")
        half = await lab.probe(lab.node, "10.43.1.7", 80, count=4, timeout=10)
        assert {a.split()[0] for a in half} == {"pod1"}  # the connect to .99 fails and the next endpoint is tried


async def test_no_endpoints_refuses_and_deleting_the_service_closes_its_listener(lab: ServiceLab):
    client = FakeClient()
    await client.create(SERVICES, service("empty", "10.43.1.8"), "default")
    await client.create(SERVICES, service("gone", "10.43.1.9"), "default")
    await client.create(SLICES, endpoint_slice("gone", lab.pods[1].ip), "default")
    async with running_proxy(lab, client, "userspace"):
        await eventually(lambda: answers(lab, lab.node, "10.43.1.9", 80), "listener")
        assert await lab.probe(lab.node, "10.43.1.8", 80, count=1, timeout=10) == ["error:ECONNREFUSED"]
        await client.delete(SERVICES, "gone", "default")

        async def closed() -> bool:
            return await lab.probe(lab.node, "10.43.1.9", 80, count=1, timeout=2) != ["pod2 10.43.1.9"]

        await eventually(closed, "listener closed")
        await eventually(lambda: _without(lab, "10.43.1.9"), "address removed from the dummy interface")


async def _without(lab: ServiceLab, ip: str) -> bool:
    return ip not in dummy_addresses(lab)
