"""Service proxy benchmark, inside network namespaces made for it (kubelite.testing.servicelab): nothing leaves
the machine.

    sudo .venv/bin/python bench/services.py [--changes 20] [--connections 300] [--megabytes 200]

For each mode (nftables, userspace) it runs the proxy against a FakeClient for a lab node with two pods and prints:
* change → working rule: an EndpointSlice switches the Service between the two pods; time until a new connection
  from the node reaches the new pod (p50/p99), with the default min_sync_period (1 s; changes are spaced wider);
* new-connection latency: connect + small HTTP request + answer, sequential, through the ClusterIP vs the pod IP;
* throughput: one TCP connection pushing `--megabytes` MB into a pod through the ClusterIP vs the pod IP.
Bounded in count and time; needs root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubelite.client.interface import builtin
from kubelite.proxy.sockets import SocketFactory
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.servicelab import Pod, ServiceLab, eventually, running_proxy, service_object, slice_object

SERVICES = builtin("", "services")
SLICES = builtin("discovery.k8s.io", "endpointslices")
SINK_PORT = 9000

SINK = """
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 9000)); srv.listen(16)
def drain(c):
    while c.recv(1 << 20):
        pass
    c.sendall(b"done"); c.close()
while True:
    c, _ = srv.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()
"""

LATENCY = """
import json, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = []
for _ in range(count):
    t = time.perf_counter()
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        while s.recv(65536):
            pass
    out.append(time.perf_counter() - t)
print(json.dumps(out))
"""

THROUGHPUT = """
import socket, sys, time
host, port, megabytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
chunk = b"x" * (1 << 20)
t = time.perf_counter()
with socket.create_connection((host, port), timeout=10) as s:
    for _ in range(megabytes):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    assert s.recv(16) == b"done"
print(megabytes / (time.perf_counter() - t))
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


async def in_node(lab: ServiceLab, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *lab.node.exec_prefix, sys.executable, "-c", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    return out.decode()


async def which_pod(sockets: SocketFactory, ip: str) -> str:
    """The pod name answering a new connection to ip:80 from the node ("" on failure)."""
    sock = await sockets.socket()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(1):
            await loop.sock_connect(sock, (ip, 80))
            await loop.sock_sendall(sock, b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := await loop.sock_recv(sock, 65536):
                data += chunk
        return data.split(b"\r\n\r\n", 1)[-1].decode().split()[0]
    except (OSError, TimeoutError, IndexError):
        return ""
    finally:
        sock.close()


async def change_latency(lab: ServiceLab, client: FakeClient, sockets: SocketFactory, changes: int) -> list[float]:
    pods: list[Pod] = lab.pods
    samples = []
    for i in range(changes):
        target = pods[(i + 1) % 2]
        await asyncio.sleep(1.1)  # beyond min_sync_period: measure one change, not the rate limit
        current = await client.get(SLICES, "bench-1", "default")
        current["endpoints"] = slice_object("bench", target.ip)["endpoints"]
        start = time.perf_counter()
        await client.update(SLICES, current, "default")
        async with asyncio.timeout(30):
            for _ in range(1_000_000):
                if await which_pod(sockets, "10.43.2.5") == target.name:
                    break
                await asyncio.sleep(0.002)
        samples.append(time.perf_counter() - start)
    return samples


async def bench_mode(lab: ServiceLab, mode: str, args: argparse.Namespace) -> None:
    client = FakeClient()
    ports = [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "sink", "port": SINK_PORT, "protocol": "TCP", "targetPort": SINK_PORT},
    ]
    await client.create(SERVICES, service_object("bench", "10.43.2.5", ports=ports), "default")
    first = slice_object("bench", lab.pods[0].ip)
    first["ports"].append({"name": "sink", "port": SINK_PORT, "protocol": "TCP"})
    await client.create(SLICES, first, "default")
    sockets = SocketFactory(lab.node.netns)
    try:
        async with running_proxy(lab, client, mode, min_sync_period=1.0):

            async def ready() -> bool:
                return await which_pod(sockets, "10.43.2.5") == lab.pods[0].name

            await eventually(ready, "first rules")
            pod = lab.pods[0].ip
            via = {}
            for label, host in (("ClusterIP", "10.43.2.5"), ("pod IP", pod)):
                lat = json.loads(
                    await in_node(lab, LATENCY, host, "80" if label == "ClusterIP" else "8080", str(args.connections))
                )
                mbps = float(await in_node(lab, THROUGHPUT, host, str(SINK_PORT), str(args.megabytes)))
                via[label] = (percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000, mbps)
            # change latency last: it moves the "http" endpoints between pods (the sink port moves too)
            samples = await change_latency(lab, client, sockets, args.changes)
    finally:
        sockets.close()
    print(f"== {mode}")
    print(
        f"change -> working rule: p50 {percentile(samples, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(samples, 0.99) * 1000:.1f} ms ({len(samples)} changes)"
    )
    for label, (p50, p99, mbps) in via.items():
        print(f"{label:9}: new connection p50 {p50:.2f} ms p99 {p99:.2f} ms; throughput {mbps:.0f} MB/s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()
    with ServiceLab(pods=2) as lab:
        sinks = [await asyncio.create_subprocess_exec(*pod.exec_prefix, sys.executable, "-c", SINK) for pod in lab.pods]
        try:
            await lab.wait_ready()
            await bench_mode(lab, "nftables", args)
            lab.node.run(["nft", "delete", "table", "ip", "kubelite"])
            await bench_mode(lab, "userspace", args)
        finally:
            for process in sinks:
                process.kill()
                await process.wait()


if __name__ == "__main__":
    asyncio.run(main())
