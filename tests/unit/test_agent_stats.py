"""Node agent resource statistics: /proc parsing, CPU rates, snapshots over a runtime, the Summary API
and /metrics/resource rendering, and the kubelet routes serving them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from kubelite.agent.runtime.interface import (
    ContainerState,
    ContainerStats,
    ContainerStatus,
    NotFoundError,
    PodSandboxStatus,
    SandboxState,
)
from kubelite.agent.stats import (
    NodeUsage,
    StatsCollector,
    nano_cores,
    node_memory,
    parse_meminfo,
    parse_proc_stat,
)
from kubelite.agent.statsformat import resource_metrics, summary
from kubelite.agent.streaming.server import KubeletServer
from kubelite.apiserver.metrics.prometheus import parse_text

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_proc_stat_busy_time_leaves_out_idle_and_iowait() -> None:
    text = "cpu  100 20 30 1000 50 5 5 0 7 0\ncpu0 1 2 3 4\nbtime 1700000000\n"
    cpu_ns, boot = parse_proc_stat(text, ticks_per_second=100)
    assert cpu_ns == (100 + 20 + 30 + 5 + 5) * 10_000_000
    assert boot == datetime.fromtimestamp(1700000000, UTC)


def test_meminfo_working_set_is_usage_minus_inactive_file() -> None:
    info = parse_meminfo(
        "MemTotal: 1000 kB\nMemFree: 200 kB\nMemAvailable: 600 kB\nInactive(file): 300 kB\nAnonPages: 100 kB\n"
    )
    usage, working_set, available, rss = node_memory(info)
    assert (usage, working_set, available, rss) == (800 * 1024, 500 * 1024, 600 * 1024, 100 * 1024)


@pytest.mark.parametrize(
    ("previous", "cpu_ns", "at", "expected"),
    [
        (None, 5, T0, None),
        ((0, T0), 500_000_000, T0 + timedelta(seconds=1), 500_000_000),
        ((1_000_000_000, T0), 4_000_000_000, T0 + timedelta(seconds=2), 1_500_000_000),
        ((10, T0), 5, T0 + timedelta(seconds=1), None),  # counter went backwards: restarted
        ((10, T0), 20, T0, None),  # no time passed
    ],
)
def test_nano_cores_is_the_rate_between_two_samples(
    previous: tuple[int, datetime] | None, cpu_ns: int, at: datetime, expected: int | None
) -> None:
    assert nano_cores(previous, cpu_ns, at) == expected


@dataclass
class FakeRuntime:
    """Just enough of the Runtime protocol for statistics."""

    sandboxes: list[PodSandboxStatus] = field(default_factory=list)
    containers: list[ContainerStatus] = field(default_factory=list)
    stats_by_id: dict[str, ContainerStats] = field(default_factory=dict)

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return list(self.sandboxes)

    async def list_containers(
        self, *, sandbox_id: str | None = None, state: ContainerState | None = None
    ) -> list[ContainerStatus]:
        return [
            c
            for c in self.containers
            if (sandbox_id is None or c.sandbox_id == sandbox_id) and (state is None or c.state == state)
        ]

    async def stats(self, container_id: str) -> ContainerStats:
        if container_id not in self.stats_by_id:
            raise NotFoundError(container_id)
        return self.stats_by_id[container_id]


def _sandbox(sid: str, name: str, state: SandboxState = SandboxState.READY) -> PodSandboxStatus:
    return PodSandboxStatus(
        id=sid,
        uid=f"uid-{name}",
        name=name,
        namespace="default",
        state=state,
        created_at=T0,
        hostname=name,
        netns_path=None,
        cgroup_parent="",
    )


def _container(cid: str, sid: str, name: str, state: ContainerState = ContainerState.RUNNING) -> ContainerStatus:
    return ContainerStatus(
        id=cid, sandbox_id=sid, name=name, attempt=0, image="", state=state, created_at=T0, started_at=T0
    )


def _stats(cid: str, cpu_s: float, at: datetime, working_set: int = 4096) -> ContainerStats:
    return ContainerStats(cid, at, int(cpu_s * 1e9), working_set, working_set * 2)


def _node(cpu_s: float, at: datetime) -> NodeUsage:
    return NodeUsage("n1", T0 - timedelta(days=1), at, int(cpu_s * 1e9), 1 << 30, 2 << 30, 3 << 30, 1 << 29)


class NodeReader:
    def __init__(self) -> None:
        self.samples = [_node(100, T0), _node(102, T0 + timedelta(seconds=10))]

    def __call__(self, name: str) -> NodeUsage:
        return self.samples.pop(0)


def _runtime() -> FakeRuntime:
    return FakeRuntime(
        sandboxes=[_sandbox("s1", "web"), _sandbox("s2", "gone", SandboxState.NOTREADY)],
        containers=[
            _container("c1", "s1", "app"),
            _container("c2", "s1", "sidecar"),
            _container("c3", "s1", "old", ContainerState.EXITED),
            _container("c4", "s2", "app"),
            _container("c5", "s1", "vanished"),  # no stats: removed between listing and reading
        ],
        stats_by_id={"c1": _stats("c1", 1.0, T0), "c2": _stats("c2", 0.5, T0), "c3": _stats("c3", 9, T0)},
    )


async def test_snapshot_covers_running_containers_of_ready_sandboxes_and_computes_rates() -> None:
    runtime = _runtime()
    collector = StatsCollector(runtime, node_name="n1", read_node=NodeReader())  # type: ignore[arg-type]
    first = await collector.snapshot()
    assert [p.name for p in first.pods] == ["web"]
    assert [c.name for c in first.pods[0].containers] == ["app", "sidecar"]
    assert first.node.usage_nano_cores is None
    assert all(c.usage_nano_cores is None for c in first.pods[0].containers)

    later = T0 + timedelta(seconds=10)
    runtime.stats_by_id.update({"c1": _stats("c1", 3.0, later), "c2": _stats("c2", 0.5, later)})
    second = await collector.snapshot()
    app, sidecar = second.pods[0].containers
    assert app.usage_nano_cores == 200_000_000
    assert sidecar.usage_nano_cores == 0
    assert second.node.usage_nano_cores == 200_000_000


async def test_summary_has_kubelet_shape_with_pod_totals() -> None:
    runtime = _runtime()
    collector = StatsCollector(runtime, node_name="n1", read_node=NodeReader())  # type: ignore[arg-type]
    await collector.snapshot()
    later = T0 + timedelta(seconds=10)
    runtime.stats_by_id.update({"c1": _stats("c1", 3.0, later), "c2": _stats("c2", 1.5, later, 8192)})
    body = summary(await collector.snapshot())
    node = body["node"]
    assert node["nodeName"] == "n1"
    assert node["cpu"] == {
        "time": "2026-01-01T12:00:10Z",
        "usageNanoCores": 200_000_000,
        "usageCoreNanoSeconds": 102_000_000_000,
    }
    assert node["memory"]["workingSetBytes"] == 1 << 30 and node["memory"]["availableBytes"] == 3 << 30
    (pod,) = body["pods"]
    assert pod["podRef"] == {"name": "web", "namespace": "default", "uid": "uid-web"}
    assert [c["name"] for c in pod["containers"]] == ["app", "sidecar"]
    assert pod["containers"][0]["memory"] == {
        "time": "2026-01-01T12:00:10Z",
        "usageBytes": 8192,
        "workingSetBytes": 4096,
    }
    assert pod["cpu"]["usageNanoCores"] == 300_000_000
    assert pod["cpu"]["usageCoreNanoSeconds"] == 4_500_000_000
    assert pod["memory"]["workingSetBytes"] == 4096 + 8192


async def test_resource_metrics_text_carries_every_series_with_timestamps() -> None:
    collector = StatsCollector(_runtime(), node_name="n1", read_node=NodeReader())  # type: ignore[arg-type]
    text = resource_metrics(await collector.snapshot())
    assert "# TYPE container_cpu_usage_seconds_total counter" in text
    assert "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes" in text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s for s in parse_text(text)}
    app = (("container", "app"), ("namespace", "default"), ("pod", "web"))
    ms = int(T0.timestamp() * 1000)
    assert samples[("container_cpu_usage_seconds_total", app)].value == 1.0
    assert samples[("container_cpu_usage_seconds_total", app)].timestamp_ms == ms
    assert samples[("container_memory_working_set_bytes", app)].value == 4096
    assert samples[("container_start_time_seconds", app)].value == T0.timestamp()
    pod = (("namespace", "default"), ("pod", "web"))
    assert samples[("pod_cpu_usage_seconds_total", pod)].value == 1.5
    assert samples[("pod_memory_working_set_bytes", pod)].value == 8192
    assert samples[("node_cpu_usage_seconds_total", ())].value == 100.0
    assert samples[("node_memory_working_set_bytes", ())].value == 1 << 30
    assert samples[("scrape_error", ())].value == 0
    assert samples[("resource_scrape_error", ())].value == 0


def test_label_values_are_escaped() -> None:
    from kubelite.agent.stats import ContainerUsage, PodUsage, StatsSnapshot

    snapshot = StatsSnapshot(
        node=_node(1, T0),
        pods=(PodUsage("ns", 'we"ird\\', "u", T0, (ContainerUsage("c", "id", None, T0, 10**9, 1, 1),)),),
    )
    (sample,) = [s for s in parse_text(resource_metrics(snapshot)) if s.name == "container_cpu_usage_seconds_total"]
    assert sample.labels["pod"] == 'we"ird\\'


async def test_kubelet_serves_summary_and_resource_metrics() -> None:
    runtime = _runtime()
    collector = StatsCollector(runtime, node_name="n1", read_node=lambda name: _node(5, T0))  # type: ignore[arg-type]
    server = KubeletServer(
        runtime,  # type: ignore[arg-type]
        pods=None,  # type: ignore[arg-type]
        ssl_context=None,
        host="127.0.0.1",
        port=0,
        authorize=lambda request: request.headers.get("Authorization") == "Bearer ok",
        stats=collector,
    )
    port = await server.start()
    try:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer ok"}) as http:
            async with http.get(f"http://127.0.0.1:{port}/stats/summary") as response:
                assert response.status == 200
                body = await response.json()
            assert body["node"]["nodeName"] == "n1"
            assert body["pods"][0]["podRef"]["name"] == "web"
            async with http.get(f"http://127.0.0.1:{port}/metrics/resource") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                assert "node_cpu_usage_seconds_total 5 " in await response.text()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics/resource") as response:
                assert response.status == 403
    finally:
        await server.close()
