"""Pod benchmarks: startup latency on a real node, and scheduling throughput against many nodes.

    .venv/bin/python bench/pods.py                       # both parts, default sizes
    .venv/bin/python bench/pods.py --startup-pods 100 --nodes 100 1000 --bind-pods 1000

Part 1 starts a real `kubelite server` with its embedded agent (process runtime) and creates pods running
`sleep`; the latency of a pod is from just before its create request to the watch event that shows it
Running.  Part 2 starts a server without an agent, creates N Ready Node objects through the API and
measures how fast the scheduler binds pods to them (first create → last binding seen through a watch).
Everything runs in temporary directories and is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubelite.client.http import HttpClient
from kubelite.client.interface import builtin
from kubelite.testing.server import ServerProcess

PODS = builtin("", "pods")
NODES = builtin("", "nodes")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


def pod(name: str, *, cpu: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "busybox", "command": ["sleep", "3600"]}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu, "memory": "16Mi"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container]}}


def ready_node(name: str) -> dict[str, Any]:
    resources = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "bench"}],
        },
    }


async def _create_all(
    client: HttpClient,
    objects: list[dict[str, Any]],
    resource: Any,
    concurrency: int,
    started: dict[str, float] | None = None,
) -> None:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for obj in objects:
        queue.put_nowait(obj)

    async def worker() -> None:
        while not queue.empty():
            obj = queue.get_nowait()
            if started is not None:
                started[obj["metadata"]["name"]] = time.monotonic()
            await client.create(resource, obj, "default" if resource.namespaced else None)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _watch_until(client: HttpClient, names: set[str], done: Any, seen: dict[str, float]) -> None:
    listed = await client.list(PODS, "default")
    stream = client.watch(PODS, "default", resource_version=listed["metadata"]["resourceVersion"])
    try:
        async for event in stream:
            obj = event.object
            name = obj["metadata"]["name"]
            if name in names and name not in seen and done(obj):
                seen[name] = time.monotonic()
                if len(seen) == len(names):
                    return
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def startup_latency(count: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-") as tmp:
        server = ServerProcess(
            Path(tmp), extra_args=["--node-name", "bench-node", "--node-ip", "127.0.0.1", "--kubelet-port", "0"]
        ).start()
        try:
            client = HttpClient.from_kubeconfig(server.kubeconfig)
            async with client:
                await _wait_node_ready(client, "bench-node")
                names = {f"start-{i}" for i in range(count)}
                started: dict[str, float] = {}
                running: dict[str, float] = {}
                watcher = asyncio.create_task(
                    _watch_until(client, names, lambda o: o.get("status", {}).get("phase") == "Running", running)
                )
                await asyncio.sleep(0.2)
                begin = time.monotonic()
                await _create_all(client, [pod(n) for n in sorted(names)], PODS, concurrency, started)
                await asyncio.wait_for(watcher, 600)
                total = time.monotonic() - begin
                latencies = [running[n] - started[n] for n in names]
                print(
                    f"pod startup, {count} pods on 1 node (process runtime, concurrency {concurrency}): "
                    f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms,"
                    f" all Running after {total:.1f} s"
                )
        finally:
            server.stop()


async def _wait_node_ready(client: HttpClient, name: str) -> None:
    for _ in range(600):
        try:
            node = await client.get(NODES, name)
            if any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])):
                return
        except Exception:  # not registered yet
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"node {name} never became Ready")


async def scheduling_throughput(node_count: int, pod_count: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-") as tmp:
        server = ServerProcess(Path(tmp), extra_args=["--disable-agent"]).start()
        try:
            client = HttpClient.from_kubeconfig(server.kubeconfig)
            async with client:
                await _create_all(client, [ready_node(f"node-{i}") for i in range(node_count)], NODES, concurrency)
                names = {f"bind-{i}" for i in range(pod_count)}
                bound: dict[str, float] = {}
                watcher = asyncio.create_task(
                    _watch_until(client, names, lambda o: bool(o["spec"].get("nodeName")), bound)
                )
                await asyncio.sleep(0.2)
                begin = time.monotonic()
                await _create_all(client, [pod(n, cpu="10m") for n in sorted(names)], PODS, concurrency)
                created = time.monotonic() - begin
                await asyncio.wait_for(watcher, 900)
                total = max(bound.values()) - begin
                print(
                    f"scheduling, {pod_count} pods onto {node_count} Ready nodes (no agents): "
                    f"{pod_count / total:.0f} pods/s bound ({total:.1f} s; creating them took {created:.1f} s)"
                )
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--startup-pods", type=int, default=100)
    parser.add_argument("--nodes", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--bind-pods", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    if args.startup_pods:
        asyncio.run(startup_latency(args.startup_pods, args.concurrency))
    for nodes in args.nodes:
        asyncio.run(scheduling_throughput(nodes, args.bind_pods, args.concurrency))


if __name__ == "__main__":
    main()
