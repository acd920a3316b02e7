"""The Eviction API, DefaultTolerationSeconds admission and the disruption controller against a real server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.client import HttpClient, builtin
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.disruption import DisruptionController
from kubelite.machinery.errors import ApiError
from kubelite.testing.cluster import eventually
from kubelite.testing.server import ServerProcess

PODS = builtin("", "pods")
PDBS = builtin("policy", "poddisruptionbudgets")
NS = "default"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--disable-agent", "--disable-controllers"]
    process = ServerProcess(Path(tmp_path_factory.mktemp("kubelite-evict")), extra_args=args).start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.asynccontextmanager
async def disruption(client: HttpClient) -> AsyncIterator[DisruptionController]:
    factory = SharedInformerFactory(client)
    controller = DisruptionController(
        ControllerContext(client, factory, EventRecorder(client, DisruptionController.name))
    )
    tasks = [asyncio.create_task(c) for c in (factory.run(), controller.recorder.run(), controller.run())]
    try:
        await factory.wait_for_sync()
        yield controller
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def running_pod(client: HttpClient, name: str, app: str, node: str = "n1") -> dict[str, Any]:
    """A pod bound to a (pretend) node, Running and Ready, deleted at once (grace 0) as a kubelet would finish it."""
    pod = {
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "busybox"}],
        },
    }
    created = await client.create(PODS, pod, NS)
    status = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    await client.patch(PODS, name, status, NS, subresource="status")
    return created


def eviction(name: str, **options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": NS}}
    if options:
        body["deleteOptions"] = options
    return body


async def test_pod_create_gets_default_tolerations(server: ServerProcess) -> None:
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        created = await running_pod(client, "tolerant", "tolerant")
        tolerations = {(t["key"], t["effect"], t["tolerationSeconds"]) for t in created["spec"]["tolerations"]}
        assert tolerations == {
            ("node.kubernetes.io/not-ready", "NoExecute", 300),
            ("node.kubernetes.io/unreachable", "NoExecute", 300),
        }


async def test_eviction_honours_the_budget_429_when_blocked_201_when_allowed(server: ServerProcess) -> None:
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client, disruption(client):
        for name in ("web-a", "web-b"):
            await running_pod(client, name, "web")
        budget = {"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}
        await client.create(PDBS, budget, NS)

        async def settled() -> dict[str, Any] | None:
            status = (await client.get(PDBS, "web", NS)).get("status") or {}
            return status if status.get("disruptionsAllowed") == 1 and status.get("observedGeneration") == 1 else None

        status = await eventually(settled)
        assert (status["currentHealthy"], status["desiredHealthy"], status["expectedPods"]) == (2, 1, 2)

        answer = await client.create_subresource(PODS, "web-a", "eviction", eviction("web-a"), NS)
        assert (answer["status"], answer["code"]) == ("Success", 201)
        with pytest.raises(ApiError) as gone:
            await client.get(PODS, "web-a", NS)
        assert gone.value.code == 404

        async def updated() -> dict[str, Any] | None:
            status = (await client.get(PDBS, "web", NS)).get("status") or {}
            return status if status.get("currentHealthy") == 1 and not status.get("disruptedPods") else None

        status = await eventually(updated)
        assert status["disruptionsAllowed"] == 0
        with pytest.raises(ApiError) as blocked:
            await client.create_subresource(PODS, "web-b", "eviction", eviction("web-b"), NS)
        assert blocked.value.code == 429
        assert blocked.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
        assert [c.message for c in blocked.value.causes] == [
            "The disruption budget web needs 1 healthy pods and has 1 currently"
        ]
        assert (await client.get(PODS, "web-b", NS))["metadata"]["name"] == "web-b"


async def test_terminal_pods_and_pods_without_budget_are_simply_deleted(server: ServerProcess) -> None:
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        await running_pod(client, "lonely", "lonely")
        dry = await client.create_subresource(PODS, "lonely", "eviction", eviction("lonely", dryRun=["All"]), NS)
        assert dry["code"] == 201
        assert (await client.get(PODS, "lonely", NS))["metadata"]["name"] == "lonely"
        await client.create_subresource(PODS, "lonely", "eviction", eviction("lonely"), NS)
        with pytest.raises(ApiError):
            await client.get(PODS, "lonely", NS)
        with pytest.raises(ApiError) as mismatch:
            await client.create_subresource(PODS, "web-b", "eviction", eviction("other"), NS)
        assert mismatch.value.code == 400


async def test_kubectl_cordon_drain_uncordon(server: ServerProcess) -> None:
    nodes = builtin("", "nodes")
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        await client.create(nodes, {"metadata": {"name": "drain-me"}})
        await running_pod(client, "drained", "drained", node="drain-me")
        cordon = server.kubectl("cordon", "drain-me")
        assert "cordoned" in cordon.stdout
        assert (await client.get(nodes, "drain-me"))["spec"]["unschedulable"] is True
        drain = server.kubectl(
            "drain", "drain-me", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=60s"
        )
        assert "evicting pod default/drained" in drain.stdout + drain.stderr
        assert "drained" in drain.stdout
        names = [p["metadata"]["name"] for p in (await client.list(PODS, NS))["items"]]
        assert "drained" not in names
        server.kubectl("uncordon", "drain-me")
        assert not (await client.get(nodes, "drain-me"))["spec"].get("unschedulable")
