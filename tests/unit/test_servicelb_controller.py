"""ServiceLB: LoadBalancer Services get every Ready node's address as their ingress."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.servicelb import (
    EXCLUDE_LABEL,
    LOAD_BALANCER_CLASS,
    NODES,
    SERVICES,
    ServiceLBController,
    desired_ingress,
    is_ours,
    status_patch,
)
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

T = TypeVar("T")


def node(
    name: str, internal: str, *, external: str | None = None, ready: bool = True, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    addresses = [{"type": "InternalIP", "address": internal}, {"type": "Hostname", "address": name}]
    if external:
        addresses.append({"type": "ExternalIP", "address": external})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "status": {"addresses": addresses, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def lb_service(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], **spec},
    }


@pytest.mark.parametrize(
    ("spec", "ours"),
    [
        ({"type": "LoadBalancer"}, True),
        ({"type": "LoadBalancer", "loadBalancerClass": LOAD_BALANCER_CLASS}, True),
        ({"type": "LoadBalancer", "loadBalancerClass": "example.com/other"}, False),
        ({"type": "NodePort"}, False),
        ({}, False),
    ],
)
def test_which_services_are_ours(spec: dict[str, Any], ours: bool) -> None:
    assert is_ours({"spec": spec}) is ours


def test_ingress_is_every_ready_nodes_address_sorted_with_vip_mode() -> None:
    nodes = [
        node("c", "10.0.0.30"),
        node("a", "10.0.0.9"),
        node("b", "10.0.0.20", external="203.0.113.5"),
        node("down", "10.0.0.40", ready=False),
        node("out", "10.0.0.50", labels={EXCLUDE_LABEL: ""}),
        node("v6", "fd00::1"),
    ]
    assert desired_ingress(lb_service(), nodes) == [
        {"ip": "10.0.0.9", "ipMode": "VIP"},
        {"ip": "10.0.0.30", "ipMode": "VIP"},
        {"ip": "203.0.113.5", "ipMode": "VIP"},
    ]
    assert desired_ingress(lb_service(ipFamilies=["IPv6"]), nodes) == [{"ip": "fd00::1", "ipMode": "VIP"}]


def test_status_patch_sets_clears_or_leaves_alone() -> None:
    nodes = [node("a", "10.0.0.9")]
    assert status_patch(lb_service(), nodes) == {
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9", "ipMode": "VIP"}]}}
    }
    done = {**lb_service(), "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9", "ipMode": "VIP"}]}}}
    assert status_patch(done, nodes) is None
    changed_type = {**done, "spec": {"type": "ClusterIP"}}
    assert status_patch(changed_type, nodes) == {"status": {"loadBalancer": {"ingress": None}}}
    foreign = {**done, "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/other"}}
    assert status_patch(foreign, nodes) is None


@contextlib.asynccontextmanager
async def running(client: FakeClient) -> AsyncIterator[ServiceLBController]:
    clock = FakeClock()
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "service-lb-controller", clock=clock)
    controller = ServiceLBController(ControllerContext(client, factory, recorder, clock))
    tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
    try:
        await asyncio.wait_for(factory.wait_for_sync(), 5)
        yield controller
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def eventually(check: Callable[[], T | None], *, timeout: float = 5.0) -> T:
    async with asyncio.timeout(timeout):
        while True:
            if result := check():
                return result
            await asyncio.sleep(0.001)


def ingress_ips(client: FakeClient) -> list[str]:
    service = client.objects(SERVICES)[0]
    return [i["ip"] for i in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()]


async def test_ingress_follows_nodes_and_is_cleared_when_the_type_changes() -> None:
    client = FakeClient()
    await client.create(NODES, node("a", "10.0.0.9"))
    async with running(client):
        await client.create(SERVICES, lb_service(), "ns")
        await eventually(lambda: ingress_ips(client) == ["10.0.0.9"])
        await client.create(NODES, node("b", "10.0.0.8"))
        await eventually(lambda: ingress_ips(client) == ["10.0.0.8", "10.0.0.9"])
        await client.update(NODES, node("a", "10.0.0.9", ready=False), subresource="status")
        await eventually(lambda: ingress_ips(client) == ["10.0.0.8"])
        await client.patch(SERVICES, "web", {"spec": {"type": "ClusterIP"}}, "ns")
        await eventually(lambda: ingress_ips(client) == [])
    status_writes = [a for a in client.actions if a.verb == "patch" and "status" in a.body]
    assert len(status_writes) == 4 and all(a.subresource == "status" for a in status_writes)
