"""The HPA controller against a real API server whose metrics.k8s.io is fed by a fake kubelet: it
reads real PodMetrics, scales a Deployment through its scale subresource, and writes status + events."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import orjson

from kubelite.client.events import EventRecorder
from kubelite.client.http import HttpClient
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.client.kubeconfig import KubeConfig
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.podautoscaler import HorizontalPodAutoscalerController

DEPLOYMENTS = builtin("apps", "deployments")
HPAS = builtin("autoscaling", "horizontalpodautoscalers", "v2")
EVENTS = builtin("", "events")


def _shared_cluster() -> Any:
    """The in-process cluster and fake kubelet of test_metrics_api (test modules are not importable
    by name under the importlib import mode)."""
    spec = importlib.util.spec_from_file_location("_metrics_cluster", Path(__file__).with_name("test_metrics_api.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cluster


cluster = _shared_cluster()


async def _until(check: Any) -> None:
    while not await check():  # noqa: ASYNC110 - polling the API is the only signal here
        await asyncio.sleep(0.1)


async def _ready(http: Any, url: str) -> None:
    now = "2026-01-01T00:00:00Z"
    status = {
        "status": {
            "phase": "Running",
            "startTime": now,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
        }
    }
    async with http.patch(
        f"{url}/api/v1/namespaces/default/pods/web/status",
        data=orjson.dumps(status),
        headers={"Content-Type": "application/merge-patch+json"},
    ) as response:
        assert response.status == 200, await response.text()


async def test_hpa_scales_a_deployment_from_served_pod_metrics(tmp_path: Path) -> None:
    async with cluster(tmp_path) as (url, http, _):
        await _ready(http, url)
        async with HttpClient(KubeConfig(server=url)) as client:
            factory = SharedInformerFactory(client)
            recorder = EventRecorder(client, "horizontal-pod-autoscaler")
            controller = HorizontalPodAutoscalerController(
                ControllerContext(client, factory, recorder), sync_period=0.5
            )
            await client.create(
                DEPLOYMENTS,
                {
                    "metadata": {"name": "web"},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": {
                            "metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "app", "image": "x"}]},
                        },
                    },
                },
                "default",
            )
            await client.create(
                builtin("autoscaling", "horizontalpodautoscalers", "v1"),
                {
                    "metadata": {"name": "web"},
                    "spec": {
                        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                        "minReplicas": 1,
                        "maxReplicas": 5,
                        "targetCPUUtilizationPercentage": 60,
                    },
                },
                "default",
            )
            tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
            try:
                async with asyncio.timeout(30):

                    async def scaled() -> bool:
                        return bool((await client.get(DEPLOYMENTS, "web", "default"))["spec"]["replicas"] != 1)

                    async def reported() -> bool:
                        return bool((await client.get(HPAS, "web", "default")).get("status", {}).get("lastScaleTime"))

                    await _until(scaled)
                    await _until(reported)
                    await recorder.flush()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            # 300m used of 200m requested = 150 % against 60 % → ceil(2.5) = 3 replicas (away from a rounding edge)
            assert (await client.get(DEPLOYMENTS, "web", "default"))["spec"]["replicas"] == 3
            hpa = await client.get(HPAS, "web", "default")
            assert hpa["status"]["desiredReplicas"] == 3
            current = hpa["status"]["currentMetrics"][0]["resource"]["current"]
            assert 140 <= current["averageUtilization"] <= 160
            reasons = {(e["reason"], e["message"]) for e in (await client.list(EVENTS, "default"))["items"]}
            assert (
                "SuccessfulRescale",
                "New size: 3; reason: cpu resource utilization (percentage of request) above target",
            ) in reasons
