"""``GET /metrics`` on the API server: request counters and latencies move with requests, open watches are
gauged, stored objects counted, work-queue metrics of in-process components appear when they share the
registry; the real kubectl reads it with ``get --raw /metrics``."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from kubelite.apiserver.app import ApiServer, ApiServerConfig, serve
from kubelite.client.metrics import WorkQueueMetrics
from kubelite.client.workqueue import WorkQueue
from kubelite.storage.memory import MemoryBackend
from kubelite.testing.cluster import eventually
from kubelite.testing.fake_clock import FakeClock
from kubelite.testing.server import ServerProcess

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def request_key(name: str, verb: str, resource: str, scope: str, code: str | None = None, **extra: str) -> Any:
    labels = {
        "verb": verb,
        "dry_run": "",
        "group": extra.get("group", ""),
        "version": extra.get("version", "v1" if resource else ""),
        "resource": resource,
        "subresource": extra.get("subresource", ""),
        "scope": scope,
        "component": "apiserver",
    }
    if code is not None:
        labels["code"] = code
    return (name, tuple(sorted(labels.items())))


@contextlib.asynccontextmanager
async def api_server(registry: CollectorRegistry | None = None) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    backend = MemoryBackend()
    await backend.start()
    server = ApiServer(backend, ApiServerConfig(metrics_resolution=0, prometheus_registry=registry))
    await server.start()
    runner, port = await serve(server, "127.0.0.1", 0, None)
    http = aiohttp.ClientSession()
    try:
        yield f"http://127.0.0.1:{port}", http
    finally:
        await http.close()
        await runner.cleanup()
        await server.close()
        await backend.close()


async def scrape(http: aiohttp.ClientSession, url: str) -> Samples:
    async with http.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(await response.text())


async def test_request_counters_and_latencies_move_with_requests() -> None:
    async with api_server() as (url, http):
        pods = f"{url}/api/v1/namespaces/default/pods"
        body = {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        async with http.post(pods, json=body) as response:
            assert response.status == 201
        for _ in range(2):
            async with http.get(pods) as response:
                assert response.status == 200
        async with http.get(f"{pods}/missing") as response:
            assert response.status == 404
        samples = await scrape(http, url)
    assert samples[request_key("apiserver_request_total", "POST", "pods", "resource", "201")] == 1
    assert samples[request_key("apiserver_request_total", "LIST", "pods", "namespace", "200")] == 2
    assert samples[request_key("apiserver_request_total", "GET", "pods", "resource", "404")] == 1
    assert samples[request_key("apiserver_request_duration_seconds_count", "LIST", "pods", "namespace")] == 2
    bucket = request_key("apiserver_request_duration_seconds_bucket", "LIST", "pods", "namespace", le="+Inf")
    bucket = (bucket[0], tuple(sorted((*bucket[1], ("le", "+Inf")))))
    assert samples[bucket] == 2
    assert samples[("apiserver_storage_objects", (("resource", "pods"),))] == 1
    assert samples[("apiserver_storage_objects", (("resource", "namespaces"),))] == 4
    assert ("process_cpu_seconds_total", ()) in samples


async def test_open_watches_are_gauged_until_they_end() -> None:
    async with api_server() as (url, http):
        watch = await http.get(f"{url}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=30")
        try:
            assert watch.status == 200
            samples = await scrape(http, url)
            long_running = {
                "verb": "WATCH",
                "group": "",
                "version": "v1",
                "resource": "configmaps",
                "subresource": "",
                "scope": "namespace",
                "component": "apiserver",
            }
            gauge = ("apiserver_longrunning_requests", tuple(sorted(long_running.items())))
            watchers = ("apiserver_registered_watchers", (("group", ""), ("kind", "ConfigMap"), ("version", "v1")))
            assert samples[gauge] == 1
            assert samples[watchers] == 1
        finally:
            watch.close()
        # the server notices the closed connection on its next write; a change makes it write
        async with http.post(f"{url}/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "x"}}) as r:
            assert r.status == 201

        async def watch_gone() -> bool:
            return (await scrape(http, url))[watchers] == 0

        await eventually(watch_gone, timeout=10, every=0.05)
        samples = await scrape(http, url)
    assert samples[gauge] == 0
    assert samples[request_key("apiserver_request_total", "WATCH", "configmaps", "namespace", "200")] == 1


async def test_errors_and_non_resource_paths_are_counted_with_their_codes() -> None:
    async with api_server() as (url, http):
        async with http.post(
            f"{url}/api/v1/namespaces/default/pods", data=b"{not json", headers={"Content-Type": "application/json"}
        ) as response:
            assert response.status == 400
        async with http.get(f"{url}/healthz") as response:
            assert response.status == 200
        async with http.get(f"{url}/no/such/thing") as response:
            assert response.status == 404
        samples = await scrape(http, url)
    assert samples[request_key("apiserver_request_total", "POST", "pods", "resource", "400")] == 1
    assert samples[request_key("apiserver_request_total", "GET", "", "", "200", subresource="/healthz")] == 1
    assert samples[request_key("apiserver_request_total", "GET", "", "", "404")] == 1


async def test_servers_in_one_process_keep_separate_registries() -> None:
    async with api_server() as (first, http_a), api_server() as (second, http_b):
        async with http_a.get(f"{first}/api/v1/namespaces") as response:
            assert response.status == 200
        a, b = await scrape(http_a, first), await scrape(http_b, second)
    key = request_key("apiserver_request_total", "LIST", "namespaces", "cluster", "200")
    assert a[key] == 1
    assert key not in b


async def test_work_queues_sharing_the_registry_are_served_on_the_api_server() -> None:
    registry = CollectorRegistry()
    queue = WorkQueue[str](clock=FakeClock(), name="deployment", metrics=WorkQueueMetrics(registry).queue("deployment"))
    queue.add("default/web")
    async with api_server(registry) as (url, http):
        samples = await scrape(http, url)
    assert samples[("workqueue_depth", (("name", "deployment"),))] == 1
    assert samples[("workqueue_adds_total", (("name", "deployment"),))] == 1


def test_kubectl_get_raw_metrics_reads_the_server(server: ServerProcess) -> None:
    server.kubectl("get", "namespaces")
    text = server.kubectl("get", "--raw", "/metrics").stdout
    samples = parse(text)
    assert samples[request_key("apiserver_request_total", "LIST", "namespaces", "cluster", "200")] >= 1
    assert ("apiserver_storage_objects", (("resource", "namespaces"),)) in samples


def test_metrics_need_authentication(server: ServerProcess) -> None:
    url = server.url + "/metrics"
    result = subprocess.run(
        ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", url], capture_output=True, text=True
    )
    assert result.stdout == "401"
