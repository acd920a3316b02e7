"""`ServiceLab`: a node with a pod bridge and pods running tiny HTTP servers, all in network namespaces made
for the purpose, for the proxy's integration tests and bench/services.py.  Never used by the proxy itself.

    with ServiceLab(pods=2) as lab:      # NetnsLab hosts "node" and "client"; pods on the node's bridge
        lab.node.netns                   # give this to ProxyConfig(netns=...)
        await lab.probe(lab.node, "10.43.0.5", 80, count=10)   # ["pod1 10.42.0.1", ...] or ["error:ECONNREFUSED"]

Layout: the node (lab address, `ip_forward=1`) has bridge ``kubelite0`` = `GATEWAY`/24 of `POD_CIDR`; pod *i*
is namespace ``<lab prefix>-pod<i>`` with `eth0` = 10.42.0.(10+i) on that bridge (hairpin on) and a default
route through the node, like the agent's bridge network.  The client is another lab host: it reaches the
node's address directly, and the pods only through the node.  Every pod answers any HTTP request with
``"<pod name> <client address>"``.  `close()` kills the servers by PID and deletes every namespace.  Needs root.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from kubelite.client.interface import Client
from kubelite.machinery.network import ClusterNetwork
from kubelite.proxy.proxy import ProxyConfig, run_proxy
from kubelite.testing.netns import Host, NetnsLab, netns_exec_prefix

__all__ = [
    "CLUSTER_CIDR",
    "GATEWAY",
    "POD_CIDR",
    "Pod",
    "ServiceLab",
    "eventually",
    "running_proxy",
    "service_object",
    "slice_object",
]

CLUSTER_CIDR = "10.42.0.0/16"
POD_CIDR = "10.42.0.0/24"
GATEWAY = "10.42.0.1"
POD_PORT = 8080

SERVER = """
import http.server, socketserver, sys
name = sys.argv[1]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{name} {self.client_address[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
Server(("0.0.0.0", int(sys.argv[2])), Handler).serve_forever()
"""

PROBE = """
import errno, json, socket, sys, time
host, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
out = []
for _ in range(count):
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        out.append(data.split(b"\\r\\n\\r\\n", 1)[-1].decode())
    except OSError as exc:
        out.append("error:" + (errno.errorcode.get(exc.errno, "") if exc.errno else type(exc).__name__))
print(json.dumps(out))
"""


@dataclass
class Pod:
    name: str
    netns: str
    ip: str

    @property
    def exec_prefix(self) -> list[str]:
        return netns_exec_prefix(self.netns)


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")


class ServiceLab:
    """See the module docstring."""

    def __init__(self, *, pods: int = 2) -> None:
        self.lab = NetnsLab()
        self.pods: list[Pod] = []
        self._servers: list[subprocess.Popen[Any]] = []
        try:
            self.node: Host = self.lab.add_host("node")
            self.client: Host = self.lab.add_host("client")
            self.node.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
            ip = ["ip", "-n", self.node.netns]
            _run([*ip, "link", "add", "kubelite0", "type", "bridge"])
            _run([*ip, "addr", "add", f"{GATEWAY}/24", "dev", "kubelite0"])
            _run([*ip, "link", "set", "kubelite0", "up"])
            for index in range(1, pods + 1):
                self.add_pod(f"pod{index}", f"10.42.0.{10 + index}")
        except BaseException:
            self.close()
            raise

    def add_pod(self, name: str, ip: str) -> Pod:
        netns = f"{self.lab.prefix}-{name}"
        _run(["ip", "netns", "add", netns])
        pod = Pod(name, netns, ip)
        self.pods.append(pod)
        veth = f"kv{len(self.pods)}{self.lab.prefix[-4:]}"
        node = ["ip", "-n", self.node.netns]
        _run([*node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
        _run([*node, "link", "set", veth, "master", "kubelite0", "up"])
        _run([*node, "link", "set", veth, "type", "bridge_slave", "hairpin", "on"])
        inside = ["ip", "-n", netns]
        _run([*inside, "link", "set", "lo", "up"])
        _run([*inside, "addr", "add", f"{ip}/24", "dev", "eth0"])
        _run([*inside, "link", "set", "eth0", "up"])
        _run([*inside, "route", "add", "default", "via", GATEWAY])
        self._servers.append(
            subprocess.Popen(
                [*pod.exec_prefix, sys.executable, "-c", SERVER, name, str(POD_PORT)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        return pod

    async def wait_ready(self, timeout: float = 20.0) -> None:
        """Until every pod answers on its own address (from the node)."""
        async with asyncio.timeout(timeout):
            for pod in self.pods:
                for _ in range(10_000):
                    answer = await self.probe(self.node, pod.ip, POD_PORT, count=1)
                    if not answer[0].startswith("error:"):
                        break
                    await asyncio.sleep(0.05)

    async def probe(
        self, where: Host | Pod, host: str, port: int, *, count: int = 1, timeout: float = 3.0
    ) -> list[str]:
        """`count` sequential HTTP GETs from inside `where`, one new connection each: each answer's body, or
        ``error:<errno name>`` (ECONNREFUSED, ETIMEDOUT, …)."""
        process = await asyncio.create_subprocess_exec(
            *where.exec_prefix,
            sys.executable,
            "-c",
            PROBE,
            host,
            str(port),
            str(count),
            str(timeout),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await process.communicate()
        except BaseException:  # cancelled (a timeout around the caller): never leave the probe behind
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            raise RuntimeError(f"probe failed: {err.decode(errors='replace')}")
        return list(json.loads(out))

    def nft_table(self) -> str:
        """``nft list table ip kubelite`` in the node ("" when there is none)."""
        result = self.node.run(["nft", "list", "table", "ip", "kubelite"], check=False)
        return result.stdout if result.returncode == 0 else ""

    def close(self) -> None:
        for server in self._servers:
            server.kill()
            server.wait(10)
        self._servers.clear()
        for pod in self.pods:
            subprocess.run(["ip", "netns", "delete", pod.netns], capture_output=True, timeout=30)
        self.pods.clear()
        self.lab.close()

    def __enter__(self) -> ServiceLab:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def service_object(name: str, ip: str, **spec: Any) -> dict[str, Any]:
    """A Service in `default` with ClusterIP `ip` and, unless given, one port "http" 80 → `POD_PORT`."""
    spec.setdefault("ports", [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": POD_PORT}])
    return {"metadata": {"namespace": "default", "name": name}, "spec": {"clusterIP": ip, "clusterIPs": [ip], **spec}}


def slice_object(name: str, *ips: str, node: str = "node", protocol: str = "TCP") -> dict[str, Any]:
    """The EndpointSlice of Service `name` with ready endpoints `ips` on `node`, port "http" = `POD_PORT`."""
    return {
        "metadata": {"namespace": "default", "name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": POD_PORT, "protocol": protocol}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": node} for ip in ips],
    }


async def eventually(check: Callable[[], Awaitable[bool]], what: str, *, timeout: float = 30.0) -> None:
    """Poll `check` until it is true; `AssertionError` naming `what` after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            for _ in range(1_000_000):
                if await check():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not reached within {timeout:g}s: {what}") from None


@contextlib.asynccontextmanager
async def running_proxy(
    lab: ServiceLab, client: Client, mode: str, *, min_sync_period: float = 0.1
) -> AsyncIterator[list[str]]:
    """`run_proxy` for the lab's node in a task, stopped on exit; yields the list of modes it synced in (one
    entry per successful sync)."""
    await lab.wait_ready()
    syncs: list[str] = []
    config = ProxyConfig(
        node_name="node",
        node_ips=(lab.node.ip,),
        cluster=ClusterNetwork(cluster_cidr=CLUSTER_CIDR),
        mode=mode,
        netns=lab.node.netns,
        min_sync_period=min_sync_period,
    )
    task = asyncio.create_task(run_proxy(client, config, on_sync=lambda m, _: syncs.append(m)))
    try:
        yield syncs
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
