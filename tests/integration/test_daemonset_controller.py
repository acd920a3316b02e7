"""The DaemonSet controller in this process against a real `kubelite server` (its own controllers
and agent off), driven by the real kubectl: the API server defaults and validates DaemonSets and
stores ControllerRevisions; `kubectl rollout status/history/undo` read and use what the
controller writes.  Nothing runs pods: the test reports readiness through `pods/status`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubelite.client import HttpClient, SharedInformerFactory, builtin
from kubelite.client.events import EventRecorder
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.daemonset import DaemonSetController
from kubelite.controllers.daemonset_placement import target_node_name
from kubelite.controllers.history import CONTROLLER_REVISION_HASH_LABEL
from kubelite.controllers.podutil import is_ready
from kubelite.machinery.meta import now, rfc3339
from kubelite.testing.server import ServerProcess

DAEMONSETS = builtin("apps", "daemonsets")
REVISIONS = builtin("apps", "controllerrevisions")
PODS = builtin("", "pods")
NODES = builtin("", "nodes")
WAIT = 30.0
T = TypeVar("T")


@pytest.fixture(scope="module")
def ds_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--disable-agent", "--disable-controllers"]
    process = ServerProcess(Path(tmp_path_factory.mktemp("kubelite-daemonsets")), extra_args=args).start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.asynccontextmanager
async def controller_against(server: ServerProcess) -> AsyncIterator[HttpClient]:
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        factory = SharedInformerFactory(client)
        recorder = EventRecorder(client, "daemonset-controller")
        controller = DaemonSetController(ControllerContext(client, factory, recorder))
        tasks = [asyncio.create_task(run) for run in (factory.run(), recorder.run(), controller.run())]
        try:
            await asyncio.wait_for(factory.wait_for_sync(), WAIT)
            yield client
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.1)  # let closed TLS connections finish closing before the loop ends


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, *, timeout: float = WAIT) -> T:
    try:
        async with asyncio.timeout(timeout):
            while True:
                if result := await check():
                    return result
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def kubectl(server: ServerProcess, *args: str, input: str | None = None) -> str:
    result = await asyncio.to_thread(server.kubectl, *args, input=input)
    return result.stdout


def manifest(image: str, *, cause: str) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: apps/v1
        kind: DaemonSet
        metadata:
          name: agent
          annotations:
            kubernetes.io/change-cause: {cause}
        spec:
          selector:
            matchLabels: {{app: agent}}
          template:
            metadata:
              labels: {{app: agent}}
            spec:
              containers:
              - name: agent
                image: {image}
        """
    )


async def live_pods(client: HttpClient, ns: str) -> list[dict[str, Any]]:
    items = (await client.list(PODS, ns, label_selector="app=agent"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def ready_everything(client: HttpClient, ns: str) -> None:
    """Play kubelet: every daemon pod Running and Ready."""
    for pod in await live_pods(client, ns):
        if is_ready(pod):
            continue
        condition = {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(now())}
        body = {"status": {"phase": "Running", "conditions": [condition]}}
        with contextlib.suppress(Exception):  # the pod may be replaced meanwhile
            await client.patch(PODS, pod["metadata"]["name"], body, ns, subresource="status")


async def rolled_out(client: HttpClient, ns: str, nodes: set[str], image: str) -> bool:
    """Every node has exactly one ready pod of the current revision, running `image`."""
    revisions = (await client.list(REVISIONS, ns))["items"]
    if not revisions:
        return False
    current = max(revisions, key=lambda r: r["revision"])["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
    pods = await live_pods(client, ns)
    await ready_everything(client, ns)
    placed = sorted(target_node_name(p) or "" for p in pods)
    return placed == sorted(nodes) and all(
        p["metadata"]["labels"].get(CONTROLLER_REVISION_HASH_LABEL) == current
        and is_ready(p)
        and p["spec"]["containers"][0]["image"] == image
        for p in pods
    )


async def test_daemonset_rollout_history_and_undo_through_kubectl(ds_server: ServerProcess) -> None:
    ns = "ds-rollout"
    nodes = {"ds-node-a", "ds-node-b"}
    await kubectl(ds_server, "create", "namespace", ns)
    async with controller_against(ds_server) as client:
        for name in sorted(nodes):
            await client.create(NODES, {"metadata": {"name": name, "labels": {"role": "worker"}}})
        await kubectl(ds_server, "apply", "-n", ns, "-f", "-", input=manifest("agent:1", cause="first"))
        await eventually(lambda: rolled_out(client, ns, nodes, "agent:1"), "the first revision on every node")

        pods = await live_pods(client, ns)
        for pod in pods:
            terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            assert terms["nodeSelectorTerms"][0]["matchFields"][0]["key"] == "metadata.name"
            assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
        [revision] = (await client.list(REVISIONS, ns))["items"]
        template = revision["data"]["spec"]["template"]  # the server kept the raw patch as written
        assert template["$patch"] == "replace"
        assert template["spec"]["containers"][0]["image"] == "agent:1"

        out = await kubectl(ds_server, "rollout", "status", "daemonset/agent", "-n", ns, "--timeout=30s")
        assert 'daemon set "agent" successfully rolled out' in out

        await kubectl(ds_server, "apply", "-n", ns, "-f", "-", input=manifest("agent:2", cause="second"))
        await eventually(lambda: rolled_out(client, ns, nodes, "agent:2"), "the second revision on every node")

        history = await kubectl(ds_server, "rollout", "history", "daemonset/agent", "-n", ns)
        rows = [line.split() for line in history.splitlines()[2:] if line.strip()]
        assert rows == [["1", "first"], ["2", "second"]]
        detail = await kubectl(ds_server, "rollout", "history", "daemonset/agent", "-n", ns, "--revision=1")
        assert "agent:1" in detail

        out = await kubectl(ds_server, "rollout", "undo", "daemonset/agent", "-n", ns)
        assert "rolled back" in out
        await eventually(lambda: rolled_out(client, ns, nodes, "agent:1"), "the rolled-back revision on every node")
        numbers = sorted(r["revision"] for r in (await client.list(REVISIONS, ns))["items"])
        assert numbers == [2, 3]  # revision 1 became 3; no copy was made

        async def status_settled() -> dict[str, Any] | None:
            ds = await client.get(DAEMONSETS, "agent", ns)
            status = ds.get("status") or {}
            if status.get("observedGeneration") != ds["metadata"]["generation"] or status.get("numberAvailable") != 2:
                return None
            return status

        status = await eventually(status_settled, "the status after the undo")
        assert (status["desiredNumberScheduled"], status["currentNumberScheduled"]) == (2, 2)
        assert (status["updatedNumberScheduled"], status["numberReady"], status["numberMisscheduled"]) == (2, 2, 0)
        described = json.loads(await kubectl(ds_server, "get", "daemonset", "agent", "-n", ns, "-o", "json"))
        assert described["status"]["numberAvailable"] == 2
