"""metrics.k8s.io end to end in one process: an API server scraping a fake kubelet's /metrics/resource,
served as NodeMetrics/PodMetrics, and read by the real `kubectl top`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from kubelite.apiserver.app import ApiServer, ApiServerConfig, serve
from kubelite.storage.memory import MemoryBackend

KUBECTL = "/usr/bin/kubectl"


class FakeKubelet:
    """Serves /metrics/resource whose counters advance 0.25 core-seconds per wall second."""

    def __init__(self) -> None:
        self.started = time.time()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics/resource", self.metrics)
        return app

    async def metrics(self, request: web.Request) -> web.Response:
        now = time.time()
        elapsed = now - self.started
        ms = int(now * 1000)
        app = 'container="app",namespace="default",pod="web"'
        side = 'container="side",namespace="default",pod="web"'
        text = (
            f"node_cpu_usage_seconds_total {1000 + elapsed} {ms}\n"
            f"node_memory_working_set_bytes {512 * 1024 * 1024} {ms}\n"
            f"container_cpu_usage_seconds_total{{{app}}} {10 + 0.25 * elapsed} {ms}\n"
            f"container_memory_working_set_bytes{{{app}}} {64 * 1024 * 1024} {ms}\n"
            f"container_cpu_usage_seconds_total{{{side}}} {1 + 0.05 * elapsed} {ms}\n"
            f"container_memory_working_set_bytes{{{side}}} {8 * 1024 * 1024} {ms}\n"
            f"container_start_time_seconds{{{app}}} {self.started - 600} {ms}\n"
            f"container_start_time_seconds{{{side}}} {self.started - 600} {ms}\n"
        )
        return web.Response(text=text)


@contextlib.asynccontextmanager
async def cluster(tmp: Path) -> AsyncIterator[tuple[str, aiohttp.ClientSession, Path]]:
    kubelet = web.AppRunner(FakeKubelet().app(), access_log=None, handle_signals=False)
    await kubelet.setup()
    await web.TCPSite(kubelet, "127.0.0.1", 0).start()
    kubelet_port = kubelet.addresses[0][1]
    backend = MemoryBackend()
    await backend.start()
    server = ApiServer(backend, ApiServerConfig(metrics_resolution=0.3))
    await server.start()
    runner, port = await serve(server, "127.0.0.1", 0, None)
    url = f"http://127.0.0.1:{port}"
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: '{url}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n"
    )
    http = aiohttp.ClientSession()
    try:
        await _post(http, f"{url}/api/v1/nodes", {"metadata": {"name": "node-a", "labels": {"tier": "one"}}})
        node_status = {
            "status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            }
        }
        async with http.patch(
            f"{url}/api/v1/nodes/node-a/status",
            data=orjson.dumps(node_status),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as response:
            assert response.status == 200, await response.text()
        pod = {
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "nodeName": "node-a",
                "containers": [
                    {"name": "app", "image": "x", "resources": {"requests": {"cpu": "100m"}}},
                    {"name": "side", "image": "x", "resources": {"requests": {"cpu": "100m"}}},
                ],
            },
        }
        await _post(http, f"{url}/api/v1/namespaces/default/pods", pod)
        yield url, http, kubeconfig
    finally:
        await http.close()
        await runner.cleanup()
        await server.close()
        await backend.close()
        await kubelet.cleanup()


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    async with http.post(url, json=body) as response:
        assert response.status == 201, await response.text()


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def _until_metrics(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            status, body = await _get(http, url)
            if status == 200 and body.get("items"):
                return dict(body)
            await asyncio.sleep(0.1)


async def _kubectl(kubeconfig: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        KUBECTL, f"--kubeconfig={kubeconfig}", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_node_and_pod_metrics_are_served_and_selected(tmp_path: Path) -> None:
    async with cluster(tmp_path) as (url, http, _):
        nodes = await _until_metrics(http, f"{url}/apis/metrics.k8s.io/v1beta1/nodes")
        (node,) = nodes["items"]
        assert nodes["kind"] == "NodeMetricsList"
        assert node["metadata"]["name"] == "node-a" and node["metadata"]["labels"] == {"tier": "one"}
        assert node["usage"]["memory"] == "512Mi"
        assert node["window"].endswith("s") and node["usage"]["cpu"].endswith(("n", "m"))
        pods = await _until_metrics(http, f"{url}/apis/metrics.k8s.io/v1beta1/namespaces/default/pods")
        (pod,) = pods["items"]
        assert [c["name"] for c in pod["containers"]] == ["app", "side"]
        assert pod["containers"][0]["usage"]["memory"] == "64Mi"
        status, found = await _get(http, f"{url}/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web")
        assert status == 200 and found["kind"] == "PodMetrics"
        status, body = await _get(http, f"{url}/apis/metrics.k8s.io/v1beta1/pods?labelSelector=app%3Dother")
        assert status == 200 and body["items"] == []
        status, body = await _get(http, f"{url}/apis/metrics.k8s.io/v1beta1/nodes/nope")
        assert status == 404 and body["reason"] == "NotFound"
        assert body["message"] == 'nodes.metrics.k8s.io "nope" not found'


@pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl not installed")
async def test_kubectl_top_node_and_pod(tmp_path: Path) -> None:
    async with cluster(tmp_path) as (url, http, kubeconfig):
        await _until_metrics(http, f"{url}/apis/metrics.k8s.io/v1beta1/nodes")
        await _until_metrics(http, f"{url}/apis/metrics.k8s.io/v1beta1/pods")
        top_node = (await _kubectl(kubeconfig, "top", "node")).splitlines()
        assert top_node[0].split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
        assert top_node[1].split()[0] == "node-a" and top_node[1].split()[3] == "512Mi"
        top_pod = (await _kubectl(kubeconfig, "top", "pod")).splitlines()
        assert top_pod[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
        assert top_pod[1].split()[0] == "web" and top_pod[1].split()[2] == "72Mi"
        containers = (await _kubectl(kubeconfig, "top", "pod", "-A", "--containers")).splitlines()
        assert containers[0].split() == ["NAMESPACE", "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
        assert [line.split()[2] for line in containers[1:]] == ["app", "side"]
