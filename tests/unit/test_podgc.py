"""Pod garbage collection: orphaned pods (node gone), unscheduled terminating pods, terminated excess."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.podgc import PodGarbageCollector
from kubelite.machinery.errors import ApiError
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

PODS = builtin("", "pods")
NODES = builtin("", "nodes")


@asynccontextmanager
async def running(client: FakeClient, clock: FakeClock, **options: Any) -> AsyncIterator[PodGarbageCollector]:
    factory = SharedInformerFactory(client, clock=clock)
    context = ControllerContext(client, factory, EventRecorder(client, "pod-gc", clock=clock), clock)
    controller = PodGarbageCollector(context, **options)
    tasks = [asyncio.create_task(factory.run()), asyncio.create_task(controller.run())]
    try:
        await factory.wait_for_sync()
        yield controller
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def until(predicate: Callable[[], Any], clock: FakeClock | None = None, step: float = 1.0) -> None:
    async with asyncio.timeout(5):
        while not await predicate():
            if clock is not None:
                await clock.step(step)
            await asyncio.sleep(0.01)


async def pod(client: FakeClient, name: str, node: str = "", phase: str = "Running") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c"}]}
    if node:
        spec["nodeName"] = node
    await client.create(PODS, {"metadata": {"name": name}, "spec": spec}, "ns")
    return await client.patch(PODS, name, {"status": {"phase": phase}}, "ns", subresource="status")


async def exists(client: FakeClient, name: str) -> bool:
    try:
        await client.get(PODS, name, "ns")
        return True
    except ApiError:
        return False


async def test_pods_of_a_deleted_node_are_failed_and_force_deleted_after_quarantine() -> None:
    client, clock = FakeClient(), FakeClock()
    await client.create(NODES, {"metadata": {"name": "alive"}})
    await client.create(NODES, {"metadata": {"name": "doomed"}})
    await pod(client, "safe", node="alive")
    await pod(client, "orphan", node="doomed")
    async with running(client, clock, quarantine_seconds=40):
        await client.delete(NODES, "doomed")
        await clock.step(30)
        await asyncio.sleep(0.05)
        assert await exists(client, "orphan")  # still in quarantine
        client.clear_actions()
        await until(lambda: _gone(client, "orphan"), clock, step=5)
    patches = [a for a in client.actions if a.verb == "patch" and a.subresource == "status"]
    assert patches and patches[0].body["status"]["phase"] == "Failed"
    condition = patches[0].body["status"]["conditions"][-1]
    assert (condition["type"], condition["reason"]) == ("DisruptionTarget", "DeletionByPodGC")
    assert await exists(client, "safe")


async def test_a_node_that_comes_back_within_quarantine_keeps_its_pods() -> None:
    client, clock = FakeClient(), FakeClock()
    await pod(client, "early", node="late-node")  # the pod's node registers after it
    async with running(client, clock, quarantine_seconds=40):
        await clock.step(10)
        await client.create(NODES, {"metadata": {"name": "late-node"}})
        for _ in range(10):
            await clock.step(10)
            await asyncio.sleep(0.01)
        assert await exists(client, "early")


async def test_unscheduled_terminating_pod_is_force_deleted() -> None:
    client, clock = FakeClient(), FakeClock()
    await pod(client, "pending", phase="Pending")
    await client.patch(PODS, "pending", {"metadata": {"finalizers": ["hold/it"]}}, "ns")
    async with running(client, clock):
        await client.delete(PODS, "pending", "ns")  # held by the finalizer: terminating, never scheduled
        await until(lambda: _deleted_again_by_the_collector(client), clock)


async def test_terminated_pods_beyond_threshold_are_deleted_oldest_first() -> None:
    client, clock = FakeClient(), FakeClock()
    await client.create(NODES, {"metadata": {"name": "n"}})
    for i in range(5):
        await pod(client, f"done-{i}", node="n", phase="Succeeded")
    async with running(client, clock, terminated_threshold=3):
        await until(lambda: _count(client, 3), clock, step=5)
    names = sorted(p["metadata"]["name"] for p in client.objects(PODS))
    assert names == ["done-2", "done-3", "done-4"]


async def _gone(client: FakeClient, name: str) -> bool:
    return not await exists(client, name)


async def _deleted_again_by_the_collector(client: FakeClient) -> bool:
    return sum(1 for a in client.actions if a.verb == "delete" and a.name == "pending") >= 2


async def _count(client: FakeClient, count: int) -> bool:
    return len(client.objects(PODS)) == count
