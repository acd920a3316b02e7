"""metrics.k8s.io in the API server: Prometheus parsing, the two-sample store and its rates, the
NodeMetrics/PodMetrics shapes, and the scraper against a fake kubelet endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from kubelite.apiserver.metrics.api import go_duration, node_metrics, pod_metrics, usage_quantities
from kubelite.apiserver.metrics.prometheus import Sample, parse_text
from kubelite.apiserver.metrics.scraper import MetricsScraper
from kubelite.apiserver.metrics.store import MetricsStore, NodeBatch, Point, Usage, decode

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
MS0 = int(T0.timestamp() * 1000)


def test_parse_text_reads_names_labels_values_and_timestamps() -> None:
    text = (
        "# HELP x y\n# TYPE x counter\n"
        'container_cpu_usage_seconds_total{container="app",namespace="default",pod="web"} 1.5 1700000000000\n'
        "node_memory_working_set_bytes 1.2e+09 1700000000001\n"
        "scrape_error 0\n"
        'broken{a="b" 1\n'
        "nan_value NaN\n"
    )
    assert parse_text(text) == [
        Sample(
            "container_cpu_usage_seconds_total",
            {"container": "app", "namespace": "default", "pod": "web"},
            1.5,
            1700000000000,
        ),
        Sample("node_memory_working_set_bytes", {}, 1.2e9, 1700000000001),
        Sample("scrape_error", {}, 0.0, None),
    ]


def _text(cpu: float, at_ms: int, *, node_cpu: float = 10.0, start: float | None = None) -> str:
    labels = 'container="app",namespace="default",pod="web"'
    lines = [
        f"node_cpu_usage_seconds_total {node_cpu} {at_ms}",
        f"node_memory_working_set_bytes 1048576 {at_ms}",
        f"container_cpu_usage_seconds_total{{{labels}}} {cpu} {at_ms}",
        f"container_memory_working_set_bytes{{{labels}}} 20480 {at_ms}",
    ]
    if start is not None:
        lines.append(f"container_start_time_seconds{{{labels}}} {start} {at_ms}")
    return "\n".join(lines) + "\n"


def test_decode_groups_one_nodes_samples() -> None:
    batch = decode(parse_text(_text(2.0, MS0, start=T0.timestamp() - 60)), now=T0)
    assert batch.node == Point(T0, 10.0, 1048576)
    assert batch.pods == {("default", "web"): {"app": Point(T0, 2.0, 20480, T0 - timedelta(seconds=60))}}


def _round(store: MetricsStore, text: str) -> None:
    store.store({"n1": decode(parse_text(text), now=T0)})


def test_usage_needs_two_samples_and_is_a_rate_over_the_window() -> None:
    store = MetricsStore()
    _round(store, _text(1.0, MS0, node_cpu=10.0))
    assert store.node("n1") is None
    assert store.pod("default", "web") is None
    _round(store, _text(1.5, MS0 + 10_000, node_cpu=30.0))
    assert store.node("n1") == Usage(T0 + timedelta(seconds=10), timedelta(seconds=10), 2_000_000_000, 1048576)
    assert store.pod("default", "web") == [
        ("app", Usage(T0 + timedelta(seconds=10), timedelta(seconds=10), 50_000_000, 20480))
    ]


def test_a_repeated_sample_does_not_shrink_the_window() -> None:
    store = MetricsStore()
    _round(store, _text(1.0, MS0))
    _round(store, _text(2.0, MS0 + 10_000))
    _round(store, _text(2.0, MS0 + 10_000))
    usage = store.pod("default", "web")
    assert usage is not None and usage[0][1].cpu_nano_cores == 100_000_000


def test_a_restarted_container_starts_over() -> None:
    store = MetricsStore()
    _round(store, _text(5.0, MS0, start=T0.timestamp() - 100))
    _round(store, _text(6.0, MS0 + 10_000, start=T0.timestamp() - 100))
    assert store.pod("default", "web") is not None
    _round(store, _text(0.1, MS0 + 20_000, start=T0.timestamp() + 15))
    assert store.pod("default", "web") is None


def test_a_container_new_since_the_last_scrape_counts_from_its_start() -> None:
    store = MetricsStore()
    store.store({"n1": NodeBatch(node=Point(T0, 1.0, 1))})
    _round(store, _text(1.0, MS0 + 10_000, start=T0.timestamp() + 5))
    usage = store.pod("default", "web")
    assert usage is not None
    assert usage[0][1].window == timedelta(seconds=5)
    assert usage[0][1].cpu_nano_cores == 200_000_000


def test_a_node_that_did_not_answer_is_dropped() -> None:
    store = MetricsStore()
    _round(store, _text(1.0, MS0))
    _round(store, _text(2.0, MS0 + 10_000))
    store.store({})
    assert store.node("n1") is None
    assert store.pod("default", "web") is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(15, "15s"), (15.012, "15.012s"), (60.5, "1m0.5s"), (0.25, "250ms"), (3725, "1h2m5s"), (0, "0s")],
)
def test_window_is_a_go_duration(seconds: float, text: str) -> None:
    assert go_duration(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(
    ("nano_cores", "memory", "expected"),
    [
        (123_456_789, 20480, {"cpu": "123456789n", "memory": "20Ki"}),
        (5_000_000, 1048576, {"cpu": "5m", "memory": "1Mi"}),
        (2_000_000_000, 1000, {"cpu": "2", "memory": "1k"}),  # Go: small binary values print decimal
        (0, 0, {"cpu": "0", "memory": "0"}),
    ],
)
def test_usage_is_formatted_as_metrics_server_does(nano_cores: int, memory: int, expected: dict[str, str]) -> None:
    assert usage_quantities(nano_cores, memory) == expected


def test_node_and_pod_metrics_shapes() -> None:
    usage = Usage(T0, timedelta(seconds=15), 5_000_000, 20480)
    node = {"metadata": {"name": "n1", "labels": {"a": "b"}, "uid": "x"}}
    assert node_metrics(node, usage, now=T0) == {
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": "n1", "creationTimestamp": "2026-01-01T12:00:00Z", "labels": {"a": "b"}},
        "timestamp": "2026-01-01T12:00:00Z",
        "window": "15s",
        "usage": {"cpu": "5m", "memory": "20Ki"},
    }
    pod = {"metadata": {"name": "web", "namespace": "default"}}
    assert pod_metrics(pod, [("app", usage), ("side", usage)], now=T0) == {
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-01-01T12:00:00Z"},
        "timestamp": "2026-01-01T12:00:00Z",
        "window": "15s",
        "containers": [
            {"name": "app", "usage": {"cpu": "5m", "memory": "20Ki"}},
            {"name": "side", "usage": {"cpu": "5m", "memory": "20Ki"}},
        ],
    }


def _node(name: str, port: int, address: str = "127.0.0.1") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {
            "addresses": [{"type": "InternalIP", "address": address}] if address else [],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        },
    }


async def test_scraper_reads_every_node_and_leaves_out_those_that_fail() -> None:
    bodies = [_text(1.0, MS0), _text(2.0, MS0 + 10_000)]

    async def resource(request: web.Request) -> web.Response:
        return web.Response(text=bodies.pop(0))

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500)

    runners = []
    ports = []
    for handler in (resource, broken):
        app = web.Application()
        app.router.add_get("/metrics/resource", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        ports.append(runner.addresses[0][1])
    nodes = [_node("good", ports[0]), _node("bad", ports[1]), _node("nowhere", 1, address="")]
    store = MetricsStore()
    scraper = MetricsScraper(store, lambda: nodes, ssl_context=None, resolution=5)
    try:
        await scraper.scrape_once()
        await scraper.scrape_once()
    finally:
        for runner in runners:
            await runner.cleanup()
    assert store.node("good") is not None
    assert store.node("bad") is None
    assert store.pod("default", "web") is not None
