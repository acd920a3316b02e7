"""The HPA controller shell against FakeClient + FakeClock: scaling, status, conditions and events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.podautoscaler.controller import HPAS, HorizontalPodAutoscalerController
from kubelite.controllers.podautoscaler.source import POD_METRICS, scale_from_object
from kubelite.machinery.meta import rfc3339
from kubelite.machinery.resources import Resource
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import DEFAULT_START, FakeClock

NS = "default"
DEPLOYMENTS = builtin("apps", "deployments")
PODS = builtin("", "pods")
EVENTS = builtin("", "events")
KEY = f"{NS}/web"


class FakeScales:
    """The scale subresource over FakeClient (which has none): reads the object, patches replicas."""

    def __init__(self, client: FakeClient) -> None:
        self.client = client
        self.updates: list[int] = []

    async def get_scale(self, resource: Resource, name: str, namespace: str) -> dict[str, Any]:
        return scale_from_object(await self.client.get(resource, name, namespace))

    async def update_scale(self, resource: Resource, name: str, namespace: str, replicas: int) -> dict[str, Any]:
        self.updates.append(replicas)
        return await self.client.patch(resource, name, {"spec": {"replicas": replicas}}, namespace)


def deployment(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"replicas": replicas},
    }


def hpa(*, target: int = 50, behavior: dict[str, Any] | None = None, min_replicas: int = 1) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": min_replicas,
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
            }
        ],
    }
    if behavior is not None:
        spec["behavior"] = behavior
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": NS},
        "spec": spec,
    }


def pod(name: str) -> dict[str, Any]:
    long_ago = rfc3339(DEFAULT_START - timedelta(hours=1))
    return {
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "1"}}}]},
        "status": {
            "phase": "Running",
            "startTime": long_ago,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": long_ago}],
        },
    }


def pod_metrics(name: str, cpu: str, clock: FakeClock) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.k8s.io/v1beta1",
        "kind": "PodMetrics",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "web"}},
        "timestamp": rfc3339(clock.utcnow()),
        "window": "15s",
        "containers": [{"name": "app", "usage": {"cpu": cpu, "memory": "10Mi"}}],
    }


@contextlib.asynccontextmanager
async def running(
    client: FakeClient, clock: FakeClock
) -> AsyncIterator[tuple[HorizontalPodAutoscalerController, EventRecorder, FakeScales]]:
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "horizontal-pod-autoscaler", clock=clock)
    scales = FakeScales(client)
    controller = HorizontalPodAutoscalerController(ControllerContext(client, factory, recorder, clock), scales=scales)
    tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run())]
    try:
        await asyncio.wait_for(factory.wait_for_sync(), 5)
        yield controller, recorder, scales
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def settle(controller: HorizontalPodAutoscalerController, name: str = "web") -> None:
    """Let the informers see every write so far."""
    for _ in range(50):
        await asyncio.sleep(0)


async def setup(client: FakeClient, clock: FakeClock, replicas: int, cpu: str, hpa_obj: dict[str, Any]) -> None:
    await client.create(DEPLOYMENTS, deployment(replicas), NS)
    for i in range(replicas):
        await client.create(PODS, pod(f"web-{i}"), NS)
        await client.create(POD_METRICS, pod_metrics(f"web-{i}", cpu, clock), NS)
    await client.create(HPAS, hpa_obj, NS)


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in obj["status"]["conditions"]}


async def events(client: FakeClient, recorder: EventRecorder) -> list[tuple[str, str, str]]:
    await recorder.flush()
    return [(e["type"], e["reason"], e["message"]) for e in client.objects(EVENTS)]


async def test_scales_up_to_the_calculated_size_and_reports_status_and_event() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as (controller, recorder, scales):
        await setup(client, clock, 2, "900m", hpa())
        await settle(controller)
        await controller.reconcile(KEY)
        assert scales.updates == [4]
        assert (await client.get(DEPLOYMENTS, "web", NS))["spec"]["replicas"] == 4
        status = (await client.get(HPAS, "web", NS))["status"]
        assert status["currentReplicas"] == 2 and status["desiredReplicas"] == 4
        assert status["lastScaleTime"] == rfc3339(clock.utcnow())
        assert status["currentMetrics"] == [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": 90, "averageValue": "900m"}},
            }
        ]
        assert conditions({"status": status}) == {
            "AbleToScale": ("True", "SucceededRescale"),
            "ScalingActive": ("True", "ValidMetricFound"),
            "ScalingLimited": ("False", "DesiredWithinRange"),
        }
        assert (
            "Normal",
            "SuccessfulRescale",
            "New size: 4; reason: cpu resource utilization (percentage of request) above target",
        ) in await events(client, recorder)


async def test_missing_metrics_disable_scaling_with_upstreams_reasons() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as (controller, recorder, scales):
        await client.create(DEPLOYMENTS, deployment(2), NS)
        await client.create(PODS, pod("web-0"), NS)
        await client.create(HPAS, hpa(), NS)
        await settle(controller)
        await controller.reconcile(KEY)
        assert scales.updates == []
        status = (await client.get(HPAS, "web", NS))["status"]
        assert conditions({"status": status})["ScalingActive"] == ("False", "FailedGetResourceMetric")
        active = next(c for c in status["conditions"] if c["type"] == "ScalingActive")
        detail = (
            "failed to get cpu utilization: unable to get metrics for resource cpu: "
            "no metrics returned from resource metrics API"
        )
        assert active["message"] == f"the HPA was unable to compute the replica count: {detail}"
        recorded = await events(client, recorder)
        assert ("Warning", "FailedGetResourceMetric", detail) in recorded
        assert (
            "Warning",
            "FailedComputeMetricsReplicas",
            "failed to compute desired number of replicas based on listed metrics for Deployment/default/web: "
            f"invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: {detail}",
        ) in recorded


async def test_scale_down_waits_for_the_stabilization_window() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as (controller, recorder, scales):
        await setup(client, clock, 4, "100m", hpa())
        await settle(controller)
        await controller.reconcile(KEY)
        assert scales.updates == []
        status = (await client.get(HPAS, "web", NS))["status"]
        assert conditions({"status": status})["AbleToScale"] == ("True", "ScaleDownStabilized")
        assert status["desiredReplicas"] == 4
        await clock.step(301)
        await controller.reconcile(KEY)
        assert scales.updates == [1]
        assert ("Normal", "SuccessfulRescale", "New size: 1; reason: All metrics below target") in await events(
            client, recorder
        )


async def test_behavior_policies_limit_the_step_and_set_scaling_limited() -> None:
    client, clock = FakeClient(), FakeClock()
    behavior = {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        },
        "scaleDown": {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
    }
    async with running(client, clock) as (controller, _recorder, scales):
        await setup(client, clock, 2, "1", hpa(behavior=behavior))
        await settle(controller)
        await controller.reconcile(KEY)
        assert scales.updates == [3]
        status = (await client.get(HPAS, "web", NS))["status"]
        assert conditions({"status": status})["ScalingLimited"] == ("True", "ScaleUpLimit")
        await settle(controller)
        await controller.reconcile(KEY)  # within the 60 s period: no further step
        assert scales.updates == [3]


async def test_target_with_zero_replicas_disables_scaling() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as (controller, _recorder, scales):
        await setup(client, clock, 0, "1", hpa())
        await settle(controller)
        await controller.reconcile(KEY)
        status = (await client.get(HPAS, "web", NS))["status"]
        assert conditions({"status": status})["ScalingActive"] == ("False", "ScalingDisabled")
        assert scales.updates == []


async def test_a_deleted_hpa_forgets_its_history() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as (controller, _recorder, _scales):
        await setup(client, clock, 4, "100m", hpa())
        await settle(controller)
        await controller.reconcile(KEY)
        assert KEY in controller.recommendations
        await client.delete(HPAS, "web", NS)
        await settle(controller)
        await controller.reconcile(KEY)
        assert KEY not in controller.recommendations
