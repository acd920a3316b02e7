"""The Scheduler in this process against a real `kubelite server` (its own scheduler and agent off):
Ready Node objects created through the API, pods bound through `pods/binding`, events written."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.client import HttpClient, builtin
from kubelite.scheduler.scheduler import Scheduler
from kubelite.testing.server import ServerProcess

NODES = builtin("", "nodes")
PODS = builtin("", "pods")
EVENTS = builtin("", "events")
WAIT = 30.0


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--disable-agent", "--disable-scheduler"]
    process = ServerProcess(Path(tmp_path_factory.mktemp("kubelite-sched")), extra_args=args).start()
    try:
        yield process
    finally:
        process.stop()


def ready_node(name: str, cpu: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}],
        },
    }


def small_pod(name: str, cpu: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}]},
    }


@contextlib.asynccontextmanager
async def scheduling(server: ServerProcess) -> AsyncIterator[HttpClient]:
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        scheduler = Scheduler(client)
        task = asyncio.create_task(scheduler.run())
        try:
            yield client
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def wait_until(client: HttpClient, what: str, check: Any) -> Any:
    """Poll the API (this is a test) until `check()` returns something true; fail naming `what`."""
    try:
        async with asyncio.timeout(WAIT):
            while True:
                result = await check()
                if result:
                    return result
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def test_pods_are_bound_to_ready_nodes_with_room(bare_server: ServerProcess) -> None:
    async with scheduling(bare_server) as client:
        for name in ("node-a", "node-b"):
            created = await client.create(NODES, ready_node(name, "2"))
            status = {**created, "status": ready_node(name, "2")["status"]}
            await client.update(NODES, status, subresource="status")
        for i in range(4):
            await client.create(PODS, small_pod(f"web-{i}", "500m"), "default")
        await client.create(PODS, small_pod("huge", "8"), "default")

        async def all_small_bound() -> list[dict[str, Any]] | None:
            pods = (await client.list(PODS, "default"))["items"]
            bound = [p for p in pods if p["metadata"]["name"].startswith("web-") and p["spec"].get("nodeName")]
            return pods if len(bound) == 4 else None

        pods = await wait_until(client, "pods bound", all_small_bound)
        by_node = [p["spec"]["nodeName"] for p in pods if p["metadata"]["name"].startswith("web-")]
        assert sorted(by_node) == ["node-a", "node-a", "node-b", "node-b"]

        async def huge_condition() -> dict[str, Any] | None:
            pod = await client.get(PODS, "huge", "default")
            return next((c for c in pod["status"].get("conditions") or () if c["type"] == "PodScheduled"), None)

        condition = await wait_until(client, "huge unschedulable", huge_condition)
        assert condition["status"] == "False" and condition["reason"] == "Unschedulable"
        assert condition["message"] == (
            "0/2 nodes are available: 2 Insufficient cpu. "
            "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
        )

        async def events() -> list[dict[str, Any]] | None:
            items = (await client.list(EVENTS, "default"))["items"]
            reasons = {e["reason"] for e in items}
            return items if {"Scheduled", "FailedScheduling"} <= reasons else None

        items = await wait_until(client, "events", events)
        scheduled = [e for e in items if e["reason"] == "Scheduled" and e["involvedObject"]["name"] == "web-0"]
        [web0] = [p for p in pods if p["metadata"]["name"] == "web-0"]
        assert scheduled[0]["message"] == f"Successfully assigned default/web-0 to {web0['spec']['nodeName']}"
