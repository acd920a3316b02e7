"""The Deployment controller in process against a real kubelite server, driven by the real kubectl.

The server runs without its own controllers and without a node agent.  This module runs the
Deployment and ReplicaSet controllers itself and plays the kubelet: every pod that appears is
marked Running and Ready through the `status` subresource.  kubectl's `rollout status`,
`rollout history` and `rollout undo` then see what they would see on a real cluster.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.http import HttpClient
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.deployment import DeploymentController
from kubelite.controllers.replicaset import ReplicaSetController
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import now, rfc3339
from kubelite.testing.server import ServerProcess

PODS = builtin("", "pods")
NS = "rollouts"

DEPLOYMENT = textwrap.dedent("""
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: rollouts
      annotations:
        kubernetes.io/change-cause: first release
    spec:
      replicas: 3
      selector:
        matchLabels: {app: web}
      strategy:
        rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: app
            image: nginx:1.26
""")


@pytest.fixture(scope="module")
def deployment_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        Path(tmp_path_factory.mktemp("deployments")), extra_args=["--disable-agent", "--disable-controllers"]
    ).start()
    try:
        process.kubectl("create", "namespace", NS)
        yield process
    finally:
        process.stop()


async def _play_kubelet(client: HttpClient, pods_seen: asyncio.Queue[str]) -> None:
    """Mark each new pod Running and Ready, as a kubelet whose containers start at once would."""
    while True:
        name = await pods_seen.get()
        stamp = rfc3339(now())
        status = {
            "phase": "Running",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": stamp},
                {"type": "Ready", "status": "True", "lastTransitionTime": stamp},
            ],
        }
        try:
            await client.patch(PODS, name, {"status": status}, NS, subresource="status")
        except ApiError as exc:
            if exc.code != 404:
                raise


@asynccontextmanager
async def cluster(kubeconfig: Path) -> AsyncIterator[None]:
    """The Deployment and ReplicaSet controllers plus a pretend kubelet, until the block ends."""
    client = HttpClient.from_kubeconfig(kubeconfig)
    factory = SharedInformerFactory(client)
    deployment_events = EventRecorder(client, "deployment-controller")
    replicaset_events = EventRecorder(client, "replicaset-controller")
    deployments = DeploymentController(ControllerContext(client, factory, deployment_events))
    replica_sets = ReplicaSetController(ControllerContext(client, factory, replicaset_events))
    pods_seen: asyncio.Queue[str] = asyncio.Queue()

    def pod_added(pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if meta.get("namespace") == NS and not meta.get("deletionTimestamp"):
            if (pod.get("status") or {}).get("phase") != "Running":
                pods_seen.put_nowait(meta["name"])

    factory.informer(PODS).add_handler(pod_added)
    async with client:
        tasks = [
            asyncio.create_task(coro)
            for coro in (
                factory.run(),
                deployment_events.run(),
                replicaset_events.run(),
                deployments.run(),
                replica_sets.run(),
                _play_kubelet(client, pods_seen),
            )
        ]
        try:
            await factory.wait_for_sync()
            yield
        finally:
            crashed = [e for t in tasks if t.done() and not t.cancelled() and (e := t.exception()) is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if crashed:
            raise crashed[0]  # a component died during the test: show why


async def kubectl(server: ServerProcess, *args: str, input: str | None = None) -> str:
    """The real kubectl, in a thread so the controllers in this loop keep working meanwhile."""
    result = await asyncio.to_thread(server.kubectl, *args, "-n", NS, input=input, timeout=90)
    return result.stdout


async def test_kubectl_rollout_status_history_and_undo(deployment_server: ServerProcess) -> None:
    async with cluster(deployment_server.kubeconfig):
        await kubectl(deployment_server, "apply", "-f", "-", input=DEPLOYMENT)
        out = await kubectl(deployment_server, "rollout", "status", "deployment/web", "--timeout=60s")
        assert out.strip().endswith('deployment "web" successfully rolled out')

        await kubectl(deployment_server, "set", "image", "deployment/web", "app=nginx:1.27")
        await kubectl(
            deployment_server, "annotate", "deployment/web", "kubernetes.io/change-cause=move to 1.27", "--overwrite"
        )
        out = await kubectl(deployment_server, "rollout", "status", "deployment/web", "--timeout=60s")
        assert 'deployment "web" successfully rolled out' in out

        history = (await kubectl(deployment_server, "rollout", "history", "deployment/web")).splitlines()
        assert history[0].strip() == "deployment.apps/web"
        assert history[1].split() == ["REVISION", "CHANGE-CAUSE"]
        rows = [line.split(None, 1) for line in history[2:] if line.strip()]
        assert rows == [["1", "first release"], ["2", "move to 1.27"]]

        out = await kubectl(deployment_server, "rollout", "undo", "deployment/web")
        assert out.strip() == "deployment.apps/web rolled back"
        await kubectl(deployment_server, "rollout", "status", "deployment/web", "--timeout=60s")
        history = (await kubectl(deployment_server, "rollout", "history", "deployment/web")).splitlines()
        assert [line.split(None, 1)[0] for line in history[2:] if line.strip()] == ["2", "3"]

        d = json.loads(await kubectl(deployment_server, "get", "deployment/web", "-o", "json"))
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
        status = d["status"]
        assert (status["replicas"], status["updatedReplicas"], status["availableReplicas"]) == (3, 3, 3)
        conditions = {c["type"]: c["reason"] for c in status["conditions"]}
        assert conditions == {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}

        rss = json.loads(await kubectl(deployment_server, "get", "replicasets", "-o", "json"))["items"]
        assert len(rss) == 2
        back = next(rs for rs in rss if rs["spec"]["replicas"] == 3)
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"

        described = await kubectl(deployment_server, "describe", "deployment/web")
        assert "ScalingReplicaSet" in described
        assert f"Scaled up replica set {back['metadata']['name']}" in described


async def test_kubectl_rollout_pause_resume_and_restart(deployment_server: ServerProcess) -> None:
    manifest = DEPLOYMENT.replace("name: web", "name: api", 1).replace("app: web", "app: api")
    async with cluster(deployment_server.kubeconfig):
        await kubectl(deployment_server, "apply", "-f", "-", input=manifest)
        await kubectl(deployment_server, "rollout", "status", "deployment/api", "--timeout=60s")
        await kubectl(deployment_server, "rollout", "pause", "deployment/api")
        await kubectl(deployment_server, "set", "image", "deployment/api", "app=nginx:1.27")
        await kubectl(deployment_server, "scale", "deployment/api", "--replicas=4")
        d = await _wait_for(
            deployment_server,
            "api",
            lambda d: d["status"].get("replicas") == 4 and d["status"].get("availableReplicas") == 4,
        )
        progressing = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
        assert progressing["reason"] == "DeploymentPaused"
        rss = json.loads(await kubectl(deployment_server, "get", "replicasets", "-l", "app=api", "-o", "json"))["items"]
        assert len(rss) == 1  # paused: no rollout, but the scale applied

        await kubectl(deployment_server, "rollout", "resume", "deployment/api")
        await kubectl(deployment_server, "rollout", "status", "deployment/api", "--timeout=60s")
        await kubectl(deployment_server, "rollout", "restart", "deployment/api")
        await kubectl(deployment_server, "rollout", "status", "deployment/api", "--timeout=60s")
        history = (await kubectl(deployment_server, "rollout", "history", "deployment/api")).splitlines()
        assert [line.split(None, 1)[0] for line in history[2:] if line.strip()] == ["1", "2", "3"]


async def _wait_for(server: ServerProcess, name: str, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            d = json.loads(await kubectl(server, "get", f"deployment/{name}", "-o", "json"))
            if predicate(d):
                return dict(d)
            await asyncio.sleep(0.2)
