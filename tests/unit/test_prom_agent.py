"""The node agent's kubelet metrics: running pods and containers from the runtime, pod start latency from
the pod informer's transitions (FakeClock), and the kubelet endpoint's ``/metrics`` path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kubelite.agent.agentmetrics import AgentMetrics, component_registry
from kubelite.agent.runtime.interface import ContainerState, ContainerStatus, PodSandboxStatus, SandboxState
from kubelite.agent.streaming.server import KubeletServer
from kubelite.client.informer import Informer
from kubelite.client.interface import builtin
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def sandbox(uid: str, state: SandboxState) -> PodSandboxStatus:
    return PodSandboxStatus(uid, uid, f"pod-{uid}", "default", state, EPOCH, f"pod-{uid}", None, "")


def container(cid: str, state: ContainerState) -> ContainerStatus:
    return ContainerStatus(cid, "s", cid, 0, "busybox", state, EPOCH)


class StubRuntime:
    """Only the listing calls the metrics use."""

    def __init__(self, sandboxes: list[PodSandboxStatus], containers: list[ContainerStatus]) -> None:
        self.sandboxes = sandboxes
        self.containers = containers

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return self.sandboxes

    async def list_containers(self, *, sandbox_id: str | None = None, state: Any = None) -> list[ContainerStatus]:
        return self.containers


class NoPods:
    def find_container(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> str | None:
        return None

    async def open_port(self, namespace: str, pod: str, port: int) -> tuple[asyncio.StreamReader, Any]:
        raise LookupError(pod)


def pod(uid: str, phase: str | None) -> dict[str, Any]:
    status = {"phase": phase} if phase else {}
    return {"metadata": {"uid": uid, "name": f"pod-{uid}", "namespace": "default"}, "status": status}


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def start_histogram(metrics: AgentMetrics) -> tuple[float, float]:
    """(count, sum) of kubelet_pod_start_duration_seconds."""
    values = {s.name: s.value for family in metrics.pod_start_duration.collect() for s in family.samples}
    return values["kubelet_pod_start_duration_seconds_count"], values["kubelet_pod_start_duration_seconds_sum"]


def new_metrics(clock: FakeClock | None = None, runtime: StubRuntime | None = None) -> AgentMetrics:
    runtime = runtime or StubRuntime([], [])
    return AgentMetrics(CollectorRegistry(), runtime, node_name="node-a", clock=clock or FakeClock())  # type: ignore[arg-type]


def test_pod_start_is_measured_from_first_seen_to_running() -> None:
    clock = FakeClock()
    metrics = new_metrics(clock)
    pending = pod("u1", None)
    metrics.pod_seen(pending)
    clock.advance(2.5)
    metrics.pod_changed(pending, pod("u1", "Pending"))
    clock.advance(1.0)
    metrics.pod_changed(pod("u1", "Pending"), pod("u1", "Running"))
    assert start_histogram(metrics) == (1, 3.5)
    # later updates of a running pod measure nothing more
    metrics.pod_changed(pod("u1", "Running"), pod("u1", "Running"))
    assert start_histogram(metrics) == (1, 3.5)


def test_pod_first_seen_running_is_not_measured() -> None:
    metrics = new_metrics()
    metrics.pod_seen(pod("u1", "Running"))  # an agent restart adopting a running pod
    metrics.pod_changed(pod("u1", "Running"), pod("u1", "Running"))
    assert start_histogram(metrics) == (0, 0)


def test_pod_that_fails_or_goes_before_running_is_forgotten() -> None:
    clock = FakeClock()
    metrics = new_metrics(clock)
    metrics.pod_seen(pod("u1", "Pending"))
    metrics.pod_seen(pod("u2", "Pending"))
    metrics.pod_changed(pod("u1", "Pending"), pod("u1", "Failed"))
    metrics.pod_gone(pod("u2", "Pending"))
    metrics.pod_changed(pod("u1", "Failed"), pod("u1", "Running"))
    assert start_histogram(metrics) == (0, 0)
    assert metrics._first_seen == {}


async def test_running_pods_and_containers_come_from_the_runtime() -> None:
    runtime = StubRuntime(
        [sandbox("a", SandboxState.READY), sandbox("b", SandboxState.READY), sandbox("c", SandboxState.NOTREADY)],
        [
            container("1", ContainerState.RUNNING),
            container("2", ContainerState.RUNNING),
            container("3", ContainerState.EXITED),
            container("4", ContainerState.CREATED),
        ],
    )
    metrics = new_metrics(runtime=runtime)
    await metrics.refresh()
    samples = parse(generate_latest(metrics.registry).decode())
    assert samples[("kubelet_running_pods", ())] == 2
    assert samples[("kubelet_running_containers", (("container_state", "running"),))] == 2
    assert samples[("kubelet_running_containers", (("container_state", "exited"),))] == 1
    assert samples[("kubelet_running_containers", (("container_state", "created"),))] == 1
    assert samples[("kubelet_running_containers", (("container_state", "unknown"),))] == 0
    assert samples[("kubelet_node_name", (("node", "node-a"),))] == 1


async def test_kubelet_endpoint_serves_metrics_with_process_metrics() -> None:
    runtime = StubRuntime([sandbox("a", SandboxState.READY)], [container("1", ContainerState.RUNNING)])
    metrics = AgentMetrics(component_registry(), runtime, node_name="node-a")  # type: ignore[arg-type]
    server = KubeletServer(runtime, NoPods(), ssl_context=None, host="127.0.0.1", port=0, prometheus=metrics)  # type: ignore[arg-type]
    port = await server.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            samples = parse(await response.text())
    finally:
        await server.close()
    assert samples[("kubelet_running_pods", ())] == 1
    assert ("process_resident_memory_bytes", ()) in samples


async def test_kubelet_endpoint_without_metrics_has_no_metrics_path() -> None:
    runtime = StubRuntime([], [])
    server = KubeletServer(runtime, NoPods(), ssl_context=None, host="127.0.0.1", port=0)  # type: ignore[arg-type]
    port = await server.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 404
    finally:
        await server.close()


async def test_track_measures_pod_start_through_the_pod_informer() -> None:
    pods = builtin("", "pods")
    client, clock = FakeClient(), FakeClock()
    metrics = new_metrics(clock)
    informer = Informer(client, pods, clock=clock)
    metrics.track(informer)
    ran = asyncio.Event()  # handlers run in registration order: the metrics have seen the update first
    informer.add_handler(on_update=lambda _old, new: ran.set() if new["status"].get("phase") == "Running" else None)
    created = await client.create(pods, {"metadata": {"name": "web"}, "spec": {"containers": []}}, "default")
    async with asyncio.TaskGroup() as group:
        task = group.create_task(informer.run())
        await informer.wait_for_sync()
        await client.wait_for_watchers(1)
        clock.advance(4.0)
        running = {**created, "status": {"phase": "Running"}}
        await client.update(pods, running, "default", subresource="status")
        async with asyncio.timeout(5):
            await ran.wait()
        task.cancel()
    assert start_histogram(metrics) == (1, 4.0)
