"""The GarbageCollector in this process against a real `kubelite server` (its controllers, scheduler and
agent off), driven by the real kubectl: `kubectl delete` with each --cascade mode, the API server
setting the finalizers, the collector doing the rest."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.client import HttpClient, builtin
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.garbagecollector import GarbageCollector
from kubelite.machinery.errors import ApiError
from kubelite.testing.server import ServerProcess

NAMESPACES = builtin("", "namespaces")
PODS = builtin("", "pods")
REPLICASETS = builtin("apps", "replicasets")
DEPLOYMENTS = builtin("apps", "deployments")
WAIT = 30.0
LABELS = {"app": "web"}
HOLD = "example.com/hold"


@pytest.fixture(scope="module")
def gc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--disable-agent", "--disable-controllers", "--disable-scheduler"]
    process = ServerProcess(Path(tmp_path_factory.mktemp("kubelite-gc")), extra_args=args).start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.asynccontextmanager
async def collecting(server: ServerProcess) -> AsyncIterator[HttpClient]:
    """A GarbageCollector over every deletable resource (the default), synced, until the block ends."""
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        factory = SharedInformerFactory(client)
        recorder = EventRecorder(client, "garbage-collector-controller")
        gc = GarbageCollector(ControllerContext(client, factory, recorder))
        async with asyncio.TaskGroup() as tasks:
            running = [tasks.create_task(factory.run()), tasks.create_task(recorder.run()), tasks.create_task(gc.run())]
            try:
                async with asyncio.timeout(WAIT):
                    await factory.wait_for_sync()
                yield client
            finally:
                for task in running:
                    task.cancel()


async def wait_until(what: str, check: Callable[[], Awaitable[Any]]) -> Any:
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


def template() -> dict[str, Any]:
    return {"metadata": {"labels": LABELS}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


async def deployment_tree(client: HttpClient, ns: str, *, pods: int = 2, hold: bool = False) -> dict[str, Any]:
    """deployment web → replicaset web-rs → pods, as the workload controllers would have made them."""
    await client.create(NAMESPACES, {"metadata": {"name": ns}})
    spec = {"replicas": pods, "selector": {"matchLabels": LABELS}, "template": template()}
    deployment = await client.create(DEPLOYMENTS, {"metadata": {"name": "web"}, "spec": spec}, ns)
    rs_meta = {"name": "web-rs", "labels": LABELS, "ownerReferences": [owner_ref(deployment)]}
    rs = await client.create(REPLICASETS, {"metadata": rs_meta, "spec": spec}, ns)
    for i in range(pods):
        meta: dict[str, Any] = {"name": f"web-rs-{i}", "labels": LABELS, "ownerReferences": [owner_ref(rs)]}
        if hold and i == 0:
            meta["finalizers"] = [HOLD]
        await client.create(PODS, {"metadata": meta, "spec": template()["spec"]}, ns)
    return deployment


async def names(client: HttpClient, resource: Any, ns: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in (await client.list(resource, ns))["items"])


async def maybe_get(client: HttpClient, resource: Any, name: str, ns: str) -> dict[str, Any] | None:
    try:
        return await client.get(resource, name, ns)
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise


async def kubectl(server: ServerProcess, *args: str) -> str:
    """The real kubectl, in a thread so that the collector keeps working meanwhile."""
    result = await asyncio.to_thread(server.kubectl, *args, timeout=WAIT)
    return result.stdout


async def test_kubectl_delete_cascades_in_the_background(gc_server: ServerProcess) -> None:
    async with collecting(gc_server) as client:
        await deployment_tree(client, "gc-background")
        out = await kubectl(gc_server, "delete", "deployment", "web", "-n", "gc-background")
        assert 'deployment.apps "web" deleted' in out
        assert await maybe_get(client, DEPLOYMENTS, "web", "gc-background") is None  # at once

        async def all_gone() -> bool:
            return not await names(client, REPLICASETS, "gc-background") and not await names(
                client, PODS, "gc-background"
            )

        await wait_until("replicaset and pods collected", all_gone)


async def test_kubectl_foreground_keeps_the_deployment_until_its_dependents_are_gone(
    gc_server: ServerProcess,
) -> None:
    ns = "gc-foreground"
    async with collecting(gc_server) as client:
        await deployment_tree(client, ns, hold=True)  # one pod stays terminating until we let go
        await kubectl(gc_server, "delete", "deployment", "web", "-n", ns, "--cascade=foreground", "--wait=false")

        async def only_held_pod_left() -> bool:
            return await names(client, PODS, ns) == ["web-rs-0"]

        await wait_until("the free pod deleted", only_held_pod_left)
        held = await client.get(PODS, "web-rs-0", ns)
        assert held["metadata"].get("deletionTimestamp")
        rs = await client.get(REPLICASETS, "web-rs", ns)
        deployment = await client.get(DEPLOYMENTS, "web", ns)
        for waiting in (rs, deployment):
            assert waiting["metadata"].get("deletionTimestamp")
            assert waiting["metadata"]["finalizers"] == ["foregroundDeletion"]

        await client.patch(PODS, "web-rs-0", {"metadata": {"finalizers": None}}, ns)

        async def deployment_gone() -> bool:
            return await maybe_get(client, DEPLOYMENTS, "web", ns) is None

        await wait_until("the deployment deleted", deployment_gone)
        assert await names(client, REPLICASETS, ns) == [] and await names(client, PODS, ns) == []


async def test_kubectl_orphan_keeps_dependents_without_the_owner_reference(gc_server: ServerProcess) -> None:
    ns = "gc-orphan"
    async with collecting(gc_server) as client:
        deployment = await deployment_tree(client, ns)
        await kubectl(gc_server, "delete", "deployment", "web", "-n", ns, "--cascade=orphan")
        assert await maybe_get(client, DEPLOYMENTS, "web", ns) is None
        rs = await client.get(REPLICASETS, "web-rs", ns)
        assert not rs["metadata"].get("ownerReferences")
        assert deployment["metadata"]["uid"] not in str(rs)
        pods = (await client.list(PODS, ns))["items"]
        assert len(pods) == 2
        assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in pods)
