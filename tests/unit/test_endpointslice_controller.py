"""The EndpointSlice and Endpoints controllers as shells: informers in, API writes out (FakeClient)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.endpoints import ENDPOINTS, LEADER_ANNOTATION, EndpointsController
from kubelite.controllers.endpointslice import (
    ENDPOINT_SLICES,
    NODES,
    PODS,
    SERVICES,
    EndpointSliceController,
    SliceTracker,
)
from kubelite.controllers.endpointslice_reconcile import CONTROLLER_NAME, MANAGED_BY_LABEL, SERVICE_NAME_LABEL
from kubelite.machinery.meta import deep_copy, now, rfc3339
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

NS = "ns"
T = TypeVar("T")


def service(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"app": name},
            "clusterIP": "10.43.0.20",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            **spec,
        },
    }


def pod(name: str, *, app: str = "web", node: str = "n1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]},
    }


async def report_ready(client: FakeClient, name: str, ip: str, *, ready: bool = True) -> None:
    condition = {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": rfc3339(now())}
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [condition]}
    await client.patch(PODS, name, {"status": status}, NS, subresource="status")


@contextlib.asynccontextmanager
async def running(client: FakeClient, *kinds: type[Controller]) -> AsyncIterator[list[Controller]]:
    clock = FakeClock()
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "test", clock=clock)
    controllers = [kind(ControllerContext(client, factory, recorder, clock)) for kind in kinds]
    coroutines = [factory.run(), recorder.run(), *(c.run() for c in controllers)]
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        await asyncio.wait_for(factory.wait_for_sync(), 5)
        yield controllers
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


async def idle(*controllers: Controller) -> None:
    quiet = 0
    async with asyncio.timeout(5):
        while quiet < 5:
            await asyncio.sleep(0.001)
            busy = any(len(c.queue) or c.queue.processing() for c in controllers)
            quiet = 0 if busy else quiet + 1


def slice_ips(client: FakeClient, service_name: str = "web") -> list[tuple[str, bool]]:
    found = []
    for s in client.objects(ENDPOINT_SLICES):
        if s["metadata"]["labels"].get(SERVICE_NAME_LABEL) == service_name:
            found += [(ep["addresses"][0], ep["conditions"]["ready"]) for ep in s["endpoints"]]
    return sorted(found)


def endpoints_of(client: FakeClient, name: str = "web") -> dict[str, Any] | None:
    return next((e for e in client.objects(ENDPOINTS) if e["metadata"]["name"] == name), None)


async def setup_nodes(client: FakeClient) -> None:
    await client.create(NODES, {"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}}})


async def test_slices_follow_pod_readiness_and_membership() -> None:
    client = FakeClient()
    await setup_nodes(client)
    async with running(client, EndpointSliceController) as controllers:
        await client.create(SERVICES, service(), NS)
        placeholder = await eventually(lambda: next(iter(client.objects(ENDPOINT_SLICES)), None))
        assert placeholder["endpoints"] == [] and placeholder["ports"] == []
        for name, ip in (("a", "10.42.0.5"), ("b", "10.42.0.6")):
            await client.create(PODS, pod(name), NS)
            await report_ready(client, name, ip)
        await client.create(PODS, pod("other", app="db"), NS)
        await report_ready(client, "other", "10.42.0.9")
        await eventually(lambda: slice_ips(client) == [("10.42.0.5", True), ("10.42.0.6", True)])
        await report_ready(client, "b", "10.42.0.6", ready=False)
        await eventually(lambda: slice_ips(client) == [("10.42.0.5", True), ("10.42.0.6", False)])
        await client.patch(PODS, "a", {"metadata": {"labels": {"app": "gone"}}}, NS)
        await eventually(lambda: slice_ips(client) == [("10.42.0.6", False)])
        await idle(*controllers)
    slices = client.objects(ENDPOINT_SLICES)
    assert [s["metadata"]["name"] for s in slices] == [placeholder["metadata"]["name"]]  # updated in place
    assert slices[0]["endpoints"][0]["zone"] == "z1"
    assert slices[0]["metadata"]["labels"][MANAGED_BY_LABEL] == CONTROLLER_NAME


async def test_services_without_selector_and_foreign_slices_are_left_alone() -> None:
    client = FakeClient()
    await setup_nodes(client)
    foreign = {
        "metadata": {
            "name": "kube-dns-n1",
            "namespace": NS,
            "labels": {SERVICE_NAME_LABEL: "dns", MANAGED_BY_LABEL: "kubelite-dns"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.42.0.1"], "conditions": {"ready": True}}],
        "ports": [],
    }
    await client.create(ENDPOINT_SLICES, foreign, NS)
    await client.create(SERVICES, {**service("dns"), "spec": {"ports": [{"port": 53}]}}, NS)
    await client.create(ENDPOINTS, {"metadata": {"name": "dns", "namespace": NS}}, NS)
    client.clear_actions()
    async with running(client, EndpointSliceController, EndpointsController) as controllers:
        await client.patch(SERVICES, "dns", {"metadata": {"labels": {"changed": "yes"}}}, NS)
        await idle(*controllers)
    assert [s["metadata"]["name"] for s in client.objects(ENDPOINT_SLICES)] == ["kube-dns-n1"]
    assert endpoints_of(client, "dns") is not None
    assert not [a for a in client.actions if a.verb in ("create", "update", "delete") and a.resource != "events"]


async def test_orphaned_slices_and_endpoints_are_deleted_but_leader_records_kept() -> None:
    client = FakeClient()
    await setup_nodes(client)
    orphan = {
        "metadata": {
            "name": "gone-abcde",
            "namespace": NS,
            "labels": {SERVICE_NAME_LABEL: "gone", MANAGED_BY_LABEL: CONTROLLER_NAME},
        },
        "addressType": "IPv4",
        "endpoints": [],
        "ports": [],
    }
    await client.create(ENDPOINT_SLICES, orphan, NS)
    await client.create(ENDPOINTS, {"metadata": {"name": "gone", "namespace": NS}}, NS)
    leader = {"metadata": {"name": "leader", "namespace": NS, "annotations": {LEADER_ANNOTATION: "{}"}}}
    await client.create(ENDPOINTS, leader, NS)
    async with running(client, EndpointSliceController, EndpointsController):
        await eventually(lambda: not client.objects(ENDPOINT_SLICES))
        await eventually(lambda: [e["metadata"]["name"] for e in client.objects(ENDPOINTS)] == ["leader"])


async def test_endpoints_follow_pods_and_go_with_the_service() -> None:
    client = FakeClient()
    await setup_nodes(client)
    async with running(client, EndpointsController):
        await client.create(SERVICES, service(), NS)
        await eventually(lambda: endpoints_of(client))
        await client.create(PODS, pod("a"), NS)
        await report_ready(client, "a", "10.42.0.5")
        await client.create(PODS, pod("b"), NS)
        await report_ready(client, "b", "10.42.0.6", ready=False)
        found = await eventually(lambda: (e := endpoints_of(client)) and e.get("subsets") and e)
        assert [a["ip"] for a in found["subsets"][0]["addresses"]] == ["10.42.0.5"]
        assert [a["ip"] for a in found["subsets"][0]["notReadyAddresses"]] == ["10.42.0.6"]
        assert found["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        await client.delete(SERVICES, "web", NS)
        await eventually(lambda: endpoints_of(client) is None)


async def test_a_slice_deleted_by_someone_is_recreated() -> None:
    client = FakeClient()
    await setup_nodes(client)
    async with running(client, EndpointSliceController):
        await client.create(SERVICES, service(), NS)
        await client.create(PODS, pod("a"), NS)
        await report_ready(client, "a", "10.42.0.5")
        await eventually(lambda: slice_ips(client) == [("10.42.0.5", True)])
        await client.delete(ENDPOINT_SLICES, client.objects(ENDPOINT_SLICES)[0]["metadata"]["name"], NS)
        await eventually(lambda: slice_ips(client) == [("10.42.0.5", True)])
    assert len(client.objects(ENDPOINT_SLICES)) == 1


def test_tracker_reports_a_cache_behind_the_controllers_writes() -> None:
    tracker = SliceTracker()
    written = {"metadata": {"name": "web-1", "generation": 2}}
    tracker.wrote("ns/web", written)
    assert tracker.stale("ns/web", [])
    older = deep_copy(written)
    older["metadata"]["generation"] = 1
    assert tracker.stale("ns/web", [older])
    assert not tracker.stale("ns/web", [written])
    tracker.deleting("ns/web", "web-1")
    assert tracker.stale("ns/web", [written])
    tracker.observed_deletion("ns/web", "web-1")
    assert not tracker.stale("ns/web", [])
