"""The taint eviction and node lifecycle controllers against `FakeClient` and `FakeClock`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.nodelifecycle import LEASES, NodeLifecycleController
from kubelite.controllers.tainteviction import NODES, PODS, TaintEvictionController
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

UR = "node.kubernetes.io/unreachable"


@contextlib.asynccontextmanager
async def running(
    client: FakeClient, clock: FakeClock, build: Callable[[ControllerContext], Controller]
) -> AsyncIterator[Controller]:
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "test", clock=clock)
    controller = build(ControllerContext(client, factory, recorder, clock))
    tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
    try:
        await asyncio.wait_for(factory.wait_for_sync(), 5)
        yield controller
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def idle(controller: Controller) -> None:
    quiet = 0
    async with asyncio.timeout(5):
        while quiet < 5:
            await asyncio.sleep(0.001)
            quiet = quiet + 1 if not len(controller.queue) and not controller.queue.processing() else 0


async def step(controller: Controller, clock: FakeClock, seconds: float) -> None:
    await idle(controller)
    await clock.step(seconds)
    await idle(controller)


def a_node(name: str = "n1", taints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"taints": taints or []}}


def a_pod(name: str, tolerations: list[dict[str, Any]], node: str = "n1") -> dict[str, Any]:
    spec = {"nodeName": node, "containers": [{"name": "c", "image": "i"}], "tolerations": tolerations}
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec, "status": {"phase": "Running"}}


def names(client: FakeClient) -> list[str]:
    """Pods not being deleted (a bound pod's delete is graceful: it waits for its kubelet)."""
    return [p["metadata"]["name"] for p in client.objects(PODS) if not p["metadata"].get("deletionTimestamp")]


async def test_pods_leave_a_noexecute_node_at_once_or_after_their_toleration() -> None:
    client, clock = FakeClient(), FakeClock()
    tolerate = [{"key": UR, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
    await client.create(NODES, a_node())
    await client.create(PODS, a_pod("bare", []))
    await client.create(PODS, a_pod("patient", tolerate))
    await client.create(PODS, a_pod("forever", [{"operator": "Exists"}]))
    async with running(client, clock, TaintEvictionController) as controller:
        await idle(controller)
        assert names(client) == ["bare", "forever", "patient"]
        await client.update(NODES, a_node(taints=[{"key": UR, "effect": "NoExecute"}]))
        await idle(controller)
        assert names(client) == ["forever", "patient"]
        await step(controller, clock, 299)
        assert names(client) == ["forever", "patient"]
        await step(controller, clock, 1)
        assert names(client) == ["forever"]
    reasons = [e["reason"] for e in client.objects(builtin_events())]
    assert reasons == ["TaintManagerEviction", "TaintManagerEviction"]
    patches = [a for a in client.actions if a.verb == "patch"]
    assert patches[0].body["status"]["conditions"][0]["reason"] == "DeletionByTaintManager"


async def test_a_taint_removed_in_time_cancels_the_eviction() -> None:
    client, clock = FakeClient(), FakeClock()
    tolerate = [{"key": UR, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]
    await client.create(NODES, a_node(taints=[{"key": UR, "effect": "NoExecute"}]))
    await client.create(PODS, a_pod("patient", tolerate))
    async with running(client, clock, TaintEvictionController) as controller:
        await step(controller, clock, 30)
        current = await client.get(NODES, "n1")
        current["spec"]["taints"] = []
        await client.update(NODES, current)
        await step(controller, clock, 60)
        assert names(client) == ["patient"]


def builtin_events() -> Any:
    from kubelite.client.interface import builtin

    return builtin("", "events")


def lease(name: str, renew: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": name, "renewTime": renew},
    }


async def renew(client: FakeClient, name: str, value: str) -> None:
    current = await client.get(LEASES, name, "kube-node-lease")
    current["spec"]["renewTime"] = value
    await client.update(LEASES, current)


async def test_node_whose_lease_stops_goes_unknown_gets_tainted_and_its_pods_not_ready() -> None:
    """Three nodes (one stopping is no full disruption, so NoExecute taints are added)."""
    client, clock = FakeClient(), FakeClock()
    ready = {"type": "Ready", "status": "True", "lastHeartbeatTime": "h0", "lastTransitionTime": "h0"}
    for name in ("n1", "n2", "n3"):
        await client.create(NODES, {"metadata": {"name": name}, "spec": {}, "status": {"conditions": [ready]}})
        await client.create(LEASES, lease(name, "r0"))
    pod = a_pod("p", [])
    pod["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    await client.create(PODS, pod)
    async with running(client, clock, lambda c: NodeLifecycleController(c, node_monitor_grace_period=40)) as controller:
        await step(controller, clock, 30)
        for name in ("n1", "n2", "n3"):
            await renew(client, name, "r1")
        await step(controller, clock, 30)  # 30 s since the renewal: still fine
        assert (await client.get(NODES, "n1"))["status"]["conditions"][0]["status"] == "True"
        for name in ("n2", "n3"):
            await renew(client, name, "r2")
        await step(controller, clock, 11)
        got = await client.get(NODES, "n1")
        by_type = {c["type"]: c for c in got["status"]["conditions"]}
        assert by_type["Ready"]["status"] == "Unknown"
        assert by_type["Ready"]["reason"] == "NodeStatusUnknown"
        assert by_type["Ready"]["message"] == "Kubelet stopped posting node status."
        taints = {(t["key"], t["effect"]) for t in got["spec"]["taints"]}
        assert taints == {(UR, "NoSchedule"), (UR, "NoExecute")}
        assert all("timeAdded" in t for t in got["spec"]["taints"])
        assert controller.zone_state == "Normal"
        pod_ready = (await client.get(PODS, "p", "ns"))["status"]["conditions"][0]
        assert pod_ready["status"] == "False"
        assert (await client.get(NODES, "n2"))["status"]["conditions"][0]["status"] == "True"
        back = await client.get(NODES, "n1")
        back["status"]["conditions"] = [{**ready, "lastHeartbeatTime": "h9"}]
        await client.update(NODES, back, subresource="status")
        await step(controller, clock, 1)
        assert not (await client.get(NODES, "n1"))["spec"].get("taints")


async def test_a_lone_node_going_unknown_is_full_disruption_without_noexecute_taints() -> None:
    client, clock = FakeClient(), FakeClock()
    ready = {"type": "Ready", "status": "True", "lastHeartbeatTime": "h0", "lastTransitionTime": "h0"}
    await client.create(NODES, {"metadata": {"name": "n1"}, "spec": {}, "status": {"conditions": [ready]}})
    async with running(client, clock, lambda c: NodeLifecycleController(c, node_monitor_grace_period=40)) as controller:
        await step(controller, clock, 41)
        got = await client.get(NODES, "n1")
        assert controller.zone_state == "FullDisruption"
        assert {(t["key"], t["effect"]) for t in got["spec"]["taints"]} == {(UR, "NoSchedule")}
