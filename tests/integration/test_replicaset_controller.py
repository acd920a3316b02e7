"""The ReplicaSet and ReplicationController controllers in this process against a real `kubelite
server` (its own controllers and agent off), driven by the real kubectl.  Nothing runs pods here:
the test reports a pod Running and Ready through the `status` subresource, as a kubelet would."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubelite.client import HttpClient, builtin
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.replicaset import ReplicaSetController, ReplicationControllerController
from kubelite.machinery.meta import now, rfc3339
from kubelite.testing.cluster import eventually, kubectl_async
from kubelite.testing.server import ServerProcess

PODS = builtin("", "pods")
EVENTS = builtin("", "events")
REPLICASETS = builtin("apps", "replicasets")
REPLICATION_CONTROLLERS = builtin("", "replicationcontrollers")

REPLICA_SET = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  replicas: 3
  minReadySeconds: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: front}}
    spec:
      containers: [{name: web, image: nginx}]
"""

REPLICATION_CONTROLLER = """
apiVersion: v1
kind: ReplicationController
metadata: {name: legacy}
spec:
  replicas: 2
  selector: {app: legacy}
  template:
    metadata: {labels: {app: legacy}}
    spec:
      containers: [{name: c, image: busybox}]
"""


@pytest.fixture(scope="module")
def rs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--disable-agent", "--disable-controllers"]
    process = ServerProcess(Path(tmp_path_factory.mktemp("kubelite-rs")), extra_args=args).start()
    try:
        yield process
    finally:
        process.stop()


@dataclass
class Running:
    client: HttpClient
    replica_sets: ReplicaSetController
    replication_controllers: ReplicationControllerController


@contextlib.asynccontextmanager
async def controllers(server: ServerProcess) -> AsyncIterator[Running]:
    """Both replica controllers on one informer factory (sharing the pod informer and its index),
    as the controller manager runs them."""
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        factory = SharedInformerFactory(client)
        running = Running(
            client,
            ReplicaSetController(ControllerContext(client, factory, EventRecorder(client, ReplicaSetController.name))),
            ReplicationControllerController(
                ControllerContext(client, factory, EventRecorder(client, ReplicationControllerController.name))
            ),
        )
        built = [running.replica_sets, running.replication_controllers]
        async with asyncio.TaskGroup() as tasks:
            started = [tasks.create_task(factory.run())]
            started += [tasks.create_task(c.recorder.run()) for c in built]
            started += [tasks.create_task(c.run()) for c in built]
            try:
                await factory.wait_for_sync()
                yield running
            finally:
                for task in started:
                    task.cancel()


async def active_pods(client: HttpClient, namespace: str, selector: str) -> list[dict[str, Any]]:
    items = (await client.list(PODS, namespace, label_selector=selector))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def report_ready(client: HttpClient, pod: dict[str, Any]) -> None:
    """What a kubelet would write once the pod's containers run and pass their readiness probes."""
    condition = {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(now())}
    body = {"status": {"phase": "Running", "conditions": [condition]}}
    await client.patch(PODS, pod["metadata"]["name"], body, pod["metadata"]["namespace"], subresource="status")


async def status_of(client: HttpClient, resource: Any, name: str, namespace: str) -> dict[str, Any]:
    return dict((await client.get(resource, name, namespace)).get("status") or {})


async def test_replicaset_scales_replaces_pods_and_reports_status_to_kubectl(rs_server: ServerProcess) -> None:
    async with controllers(rs_server) as running:
        client = running.client
        await kubectl_async(rs_server, "create", "namespace", "rs-basic")
        await kubectl_async(rs_server, "apply", "-n", "rs-basic", "-f", "-", input=REPLICA_SET)
        pods = await eventually(
            lambda: _when(active_pods(client, "rs-basic", "app=web"), lambda found: len(found) == 3)
        )
        rs = await client.get(REPLICASETS, "web", "rs-basic")
        for pod in pods:
            assert pod["metadata"]["generateName"] == "web-"
            assert pod["metadata"]["labels"] == {"app": "web", "tier": "front"}
            ref = pod["metadata"]["ownerReferences"][0]
            assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
                "ReplicaSet",
                "web",
                rs["metadata"]["uid"],
                True,
            )
            await report_ready(client, pod)
        # ready at once, available after minReadySeconds (a timed re-check, no pod event)
        status = await eventually(
            lambda: _when(status_of(client, REPLICASETS, "web", "rs-basic"), lambda s: s.get("availableReplicas") == 3)
        )
        assert status == {
            "replicas": 3,
            "fullyLabeledReplicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
            "observedGeneration": 1,
        }
        table = (await kubectl_async(rs_server, "get", "rs", "web", "-n", "rs-basic")).stdout.splitlines()
        assert table[0].split()[:4] == ["NAME", "DESIRED", "CURRENT", "READY"]
        assert table[1].split()[:4] == ["web", "3", "3", "3"]

        victim = pods[0]["metadata"]["name"]
        await kubectl_async(rs_server, "delete", "pod", victim, "-n", "rs-basic", "--wait=false")
        replaced = await eventually(
            lambda: _when(
                active_pods(client, "rs-basic", "app=web"),
                lambda found: len(found) == 3 and victim not in [p["metadata"]["name"] for p in found],
            )
        )
        first = {p["metadata"]["name"] for p in pods}
        newcomer = next(p for p in replaced if p["metadata"]["name"] not in first)

        await kubectl_async(rs_server, "scale", "rs/web", "-n", "rs-basic", "--replicas=2")
        kept = await eventually(
            lambda: _when(active_pods(client, "rs-basic", "app=web"), lambda found: len(found) == 2)
        )
        # the replacement, not ready yet, is the one that goes
        assert newcomer["metadata"]["name"] not in [p["metadata"]["name"] for p in kept]
        await eventually(
            lambda: _when(
                status_of(client, REPLICASETS, "web", "rs-basic"),
                lambda s: s.get("replicas") == 2 and s.get("observedGeneration") == 2,
            )
        )
        reasons = await eventually(lambda: _event_reasons(client, "rs-basic", "web"))
        assert {"SuccessfulCreate", "SuccessfulDelete"} <= reasons


async def test_replication_controller_adopts_and_releases_by_its_label_map(rs_server: ServerProcess) -> None:
    async with controllers(rs_server) as running:
        client = running.client
        await kubectl_async(rs_server, "create", "namespace", "rc-adopt")
        loose = {"metadata": {"name": "loose", "labels": {"app": "legacy"}}, "spec": _spec()}
        await client.create(PODS, loose, "rc-adopt")
        await kubectl_async(rs_server, "apply", "-n", "rc-adopt", "-f", "-", input=REPLICATION_CONTROLLER)
        rc = await client.get(REPLICATION_CONTROLLERS, "legacy", "rc-adopt")

        async def adopted() -> bool:
            pod = await client.get(PODS, "loose", "rc-adopt")
            refs = pod["metadata"].get("ownerReferences") or []
            return [(r["kind"], r["uid"]) for r in refs] == [("ReplicationController", rc["metadata"]["uid"])]

        await eventually(adopted)
        pods = await eventually(
            lambda: _when(active_pods(client, "rc-adopt", "app=legacy"), lambda found: len(found) == 2)
        )
        assert "loose" in [p["metadata"]["name"] for p in pods]

        await kubectl_async(rs_server, "label", "pod", "loose", "app=elsewhere", "--overwrite", "-n", "rc-adopt")

        async def released() -> bool:
            pod = await client.get(PODS, "loose", "rc-adopt")
            return not pod["metadata"].get("ownerReferences")

        await eventually(released)
        await eventually(lambda: _when(active_pods(client, "rc-adopt", "app=legacy"), lambda found: len(found) == 2))
        out = await kubectl_async(rs_server, "get", "rc", "legacy", "-n", "rc-adopt", "-o", "json")
        assert json.loads(out.stdout)["status"]["replicas"] == 2


async def test_terminating_namespace_stops_replacements_without_a_replica_failure(rs_server: ServerProcess) -> None:
    async with controllers(rs_server) as running:
        client = running.client
        await kubectl_async(rs_server, "create", "namespace", "rs-ending")
        await kubectl_async(rs_server, "apply", "-n", "rs-ending", "-f", "-", input=REPLICA_SET)
        pods = await eventually(
            lambda: _when(active_pods(client, "rs-ending", "app=web"), lambda found: len(found) == 3)
        )
        # nothing finalizes namespaces here, so it stays Terminating and refuses new pods
        await kubectl_async(rs_server, "delete", "namespace", "rs-ending", "--wait=false")
        await client.delete(PODS, pods[0]["metadata"]["name"], "rs-ending")
        await eventually(
            lambda: _when(status_of(client, REPLICASETS, "web", "rs-ending"), lambda s: s.get("replicas") == 2)
        )
        # the refused pod is not waited for (no 5-minute expectation stall) and is no ReplicaFailure
        assert running.replica_sets.expectations.satisfied("rs-ending/web")
        assert "conditions" not in await status_of(client, REPLICASETS, "web", "rs-ending")
        assert len(await active_pods(client, "rs-ending", "app=web")) == 2


def _spec() -> dict[str, Any]:
    return {"containers": [{"name": "c", "image": "busybox"}]}


async def _when(value: Any, accept: Callable[[Any], bool]) -> Any:
    """`await value`, returned when `accept` holds (for `eventually`), else None."""
    result = await value
    return result if accept(result) else None


async def _event_reasons(client: HttpClient, namespace: str, name: str) -> set[str] | None:
    """Reasons of the Events about `name` in `namespace`, None while there are none."""
    items = (await client.list(EVENTS, namespace))["items"]
    return {e["reason"] for e in items if (e.get("involvedObject") or {}).get("name") == name} or None
