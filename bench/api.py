"""API server benchmark: create/get/list throughput and latency, watch delivery latency, server memory.

    .venv/bin/python bench/api.py --objects 2000 --concurrency 32

Starts a real `kubelite server` (SQLite, ephemeral port, temporary data dir), drives it over HTTPS with the
admin certificate, prints figures, stops the server and removes the data dir.  Bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ssl
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubelite.testing.server import ServerProcess

PAYLOAD = "x" * 512


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ssl_context(kubeconfig: Path, tmp: Path) -> tuple[ssl.SSLContext, str]:
    config = yaml.safe_load(kubeconfig.read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    for name, key in (
        ("ca.crt", cluster["certificate-authority-data"]),
        ("c.crt", user["client-certificate-data"]),
        ("c.key", user["client-key-data"]),
    ):
        (tmp / name).write_bytes(base64.b64decode(key))
    context = ssl.create_default_context(cafile=str(tmp / "ca.crt"))
    context.load_cert_chain(str(tmp / "c.crt"), str(tmp / "c.key"))
    return context, cluster["server"]


async def timed_phase(name: str, count: int, concurrency: int, op) -> None:  # type: ignore[no-untyped-def]
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            start = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    print(
        f"{name:<10} {count:>6} ops  {count / elapsed:>8.0f}/s  p50 {percentile(latencies, 0.5) * 1000:7.2f} ms"
        f"  p99 {percentile(latencies, 0.99) * 1000:7.2f} ms"
    )


async def run(objects: int, concurrency: int, server: ServerProcess, tmp: Path) -> None:
    context, base = ssl_context(server.kubeconfig, tmp)
    ns_path = f"{base}/api/v1/namespaces/default/configmaps"
    connector = aiohttp.TCPConnector(ssl=context, limit=concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        sent_at: dict[str, float] = {}
        delivery: list[float] = []
        watch_ready = asyncio.Event()

        async def watcher() -> None:
            async with session.get(ns_path, params={"watch": "true", "timeoutSeconds": "600"}) as response:
                watch_ready.set()
                async for line in response.content:
                    event = orjson.loads(line)
                    name = event["object"]["metadata"]["name"]
                    if event["type"] == "ADDED" and name in sent_at:
                        delivery.append(time.perf_counter() - sent_at[name])
                        if len(delivery) >= objects:
                            return

        watch_task = asyncio.create_task(watcher())
        await watch_ready.wait()

        async def create(i: int) -> None:
            name = f"cm-{i}"
            body = orjson.dumps({"metadata": {"name": name}, "data": {"payload": PAYLOAD}})
            sent_at[name] = time.perf_counter()
            async with session.post(ns_path, data=body, headers={"Content-Type": "application/json"}) as r:
                assert r.status == 201, await r.text()
                await r.read()

        async def get(i: int) -> None:
            async with session.get(f"{ns_path}/cm-{i % objects}") as r:
                assert r.status == 200
                await r.read()

        async def list_all(_: int) -> None:
            async with session.get(ns_path) as r:
                assert r.status == 200
                await r.read()

        print(f"kubelite API benchmark: {objects} ConfigMaps (~{len(PAYLOAD)} B), concurrency {concurrency}")
        await timed_phase("create", objects, concurrency, create)
        await asyncio.wait_for(watch_task, 60)
        print(
            f"watch      delivery after create: p50 {percentile(delivery, 0.5) * 1000:7.2f} ms"
            f"  p99 {percentile(delivery, 0.99) * 1000:7.2f} ms  ({len(delivery)} events)"
        )
        assert server.process is not None
        print(f"server RSS {rss_mib(server.process.pid):.1f} MiB after creating {objects} objects")
        await timed_phase("get", objects, concurrency, get)
        await timed_phase("list", max(10, min(100, 200_000 // objects)), 4, list_all)
        print(f"server RSS {rss_mib(server.process.pid):.1f} MiB after the list phase")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-") as tmp:
        server = ServerProcess(Path(tmp) / "data", extra_args=["--disable-agent", "--disable-scheduler"]).start()
        try:
            asyncio.run(run(args.objects, args.concurrency, server, Path(tmp)))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
