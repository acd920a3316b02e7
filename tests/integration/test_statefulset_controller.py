"""The StatefulSet controller in this process against a real `kubelite server` (its own controllers
and agent off), driven by the real kubectl: the server defaults and validates StatefulSets,
stores claims and ControllerRevisions; `kubectl rollout status/history/undo` read and use what the
controller writes.  Nothing runs pods: the test reports them Running and Ready through `pods/status`."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubelite.client import HttpClient, SharedInformerFactory, builtin
from kubelite.client.events import EventRecorder
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.podutil import is_ready
from kubelite.controllers.statefulset import StatefulSetController
from kubelite.machinery.meta import now, rfc3339
from kubelite.testing.cluster import eventually, kubectl_async
from kubelite.testing.server import ServerProcess

SETS = builtin("apps", "statefulsets")
PODS = builtin("", "pods")
CLAIMS = builtin("", "persistentvolumeclaims")
WAIT = 30.0
T = TypeVar("T")


@pytest.fixture(scope="module")
def sts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--disable-agent", "--disable-controllers"]
    process = ServerProcess(Path(tmp_path_factory.mktemp("kubelite-statefulsets")), extra_args=args).start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.asynccontextmanager
async def controller_against(server: ServerProcess) -> AsyncIterator[HttpClient]:
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        factory = SharedInformerFactory(client)
        recorder = EventRecorder(client, "statefulset-controller")
        controller = StatefulSetController(ControllerContext(client, factory, recorder))
        tasks = [asyncio.create_task(run) for run in (factory.run(), recorder.run(), controller.run())]
        try:
            await asyncio.wait_for(factory.wait_for_sync(), WAIT)
            yield client
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.1)  # let closed TLS connections finish closing before the loop ends


async def kubectl(server: ServerProcess, *args: str, input: str | None = None) -> str:
    return (await kubectl_async(server, *args, input=input)).stdout


def manifest(image: str, *, cause: str, replicas: int = 2) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: apps/v1
        kind: StatefulSet
        metadata:
          name: web
          annotations:
            kubernetes.io/change-cause: {cause}
        spec:
          replicas: {replicas}
          serviceName: nginx
          selector:
            matchLabels: {{app: web}}
          template:
            metadata:
              labels: {{app: web}}
            spec:
              containers:
              - name: web
                image: {image}
          volumeClaimTemplates:
          - metadata:
              name: www
            spec:
              accessModes: [ReadWriteOnce]
              resources:
                requests:
                  storage: 1Gi
        """
    )


async def live_pods(client: HttpClient, ns: str) -> list[dict[str, Any]]:
    items = (await client.list(PODS, ns, label_selector="app=web"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def ready_everything(client: HttpClient, ns: str) -> None:
    """Play kubelet: every pod Running and Ready."""
    for pod in await live_pods(client, ns):
        if is_ready(pod):
            continue
        condition = {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(now())}
        body = {"status": {"phase": "Running", "conditions": [condition]}}
        with contextlib.suppress(Exception):  # the pod may be replaced meanwhile
            await client.patch(PODS, pod["metadata"]["name"], body, ns, subresource="status")


async def rolled_out(client: HttpClient, ns: str, image: str, replicas: int = 2) -> dict[str, Any] | None:
    """The set's status once every pod runs `image`, is ready and the rollout is complete."""
    await ready_everything(client, ns)
    pods = await live_pods(client, ns)
    sts = await client.get(SETS, "web", ns)
    status = sts.get("status") or {}
    done = (
        len(pods) == replicas
        and all(is_ready(p) and p["spec"]["containers"][0]["image"] == image for p in pods)
        and status.get("observedGeneration") == sts["metadata"]["generation"]
        and status.get("readyReplicas") == replicas
        and status.get("updatedReplicas") == replicas
        and status.get("currentRevision") == status.get("updateRevision")
    )
    return status if done else None


async def test_statefulset_rollout_status_history_and_undo_through_kubectl(sts_server: ServerProcess) -> None:
    ns = "sts-rollout"
    await kubectl(sts_server, "create", "namespace", ns)
    async with controller_against(sts_server) as client:
        await kubectl(sts_server, "apply", "-n", ns, "-f", "-", input=manifest("nginx:1", cause="first"))
        status = await eventually(lambda: rolled_out(client, ns, "nginx:1"), "the first revision")
        assert status["replicas"] == 2 and status["availableReplicas"] == 2

        pods = {p["metadata"]["name"]: p for p in await live_pods(client, ns)}
        assert sorted(pods) == ["web-0", "web-1"]
        assert pods["web-0"]["spec"]["hostname"] == "web-0" and pods["web-0"]["spec"]["subdomain"] == "nginx"
        volumes = {v["name"]: v for v in pods["web-1"]["spec"]["volumes"]}
        assert volumes["www"]["persistentVolumeClaim"]["claimName"] == "www-web-1"
        claims = sorted(c["metadata"]["name"] for c in (await client.list(CLAIMS, ns))["items"])
        assert claims == ["www-web-0", "www-web-1"]

        out = await kubectl(sts_server, "rollout", "status", "statefulset/web", "-n", ns, "--timeout=30s")
        assert "partitioned roll out complete: 2 new pods have been updated" in out

        await kubectl(sts_server, "apply", "-n", ns, "-f", "-", input=manifest("nginx:2", cause="second"))
        await eventually(lambda: rolled_out(client, ns, "nginx:2"), "the second revision")

        history = await kubectl(sts_server, "rollout", "history", "statefulset/web", "-n", ns)
        rows = [line.split() for line in history.splitlines()[2:] if line.strip()]
        assert rows == [["1", "first"], ["2", "second"]]
        detail = await kubectl(sts_server, "rollout", "history", "statefulset/web", "-n", ns, "--revision=1")
        assert "nginx:1" in detail

        out = await kubectl(sts_server, "rollout", "undo", "statefulset/web", "-n", ns)
        assert "rolled back" in out
        status = await eventually(lambda: rolled_out(client, ns, "nginx:1"), "the rolled-back revision")
        history = await kubectl(sts_server, "rollout", "history", "statefulset/web", "-n", ns)
        numbers = [line.split()[0] for line in history.splitlines()[2:] if line.strip()]
        assert numbers == ["2", "3"]  # revision 1 became 3; no copy was made

        events = await kubectl(sts_server, "get", "events", "-n", ns, "-o", "jsonpath={.items[*].message}")
        assert "create Pod web-0 in StatefulSet web successful" in events
        assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in events
