"""Pod workers with a pod network, on a real isolated ProcessRuntime and a FakeClient: pods get their
namespace, IP, hosts and resolv.conf; hostNetwork pods get the node's; deletion tears the network down;
port-forward reaches a server bound to the pod's loopback; host-port clashes are rejected as upstream.

The fake network makes one real network namespace per pod (``ip netns add kl<random>``, loopback only)
and deletes it on teardown: nothing touches the machine's own network namespace.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.network.interface import NodeRoute, PodNetworkStatus
from kubelite.agent.pods.manager import PodManager
from kubelite.agent.pods.networking import NodeNetworking
from kubelite.agent.runtime.cgroups import Cgroup, CgroupLayout, detect_layout
from kubelite.agent.runtime.process import ProcessRuntime
from kubelite.client.clock import RealClock
from kubelite.client.interface import builtin
from kubelite.machinery.network import ClusterNetwork
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.runtime_contract import parse_cri_log

PODS = builtin("", "pods")
NODE, NODE_IP = "node-1", "127.0.0.1"
WAIT = 30.0
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: dict[str, Any], event_type: str, reason: str, message: str, *, field_path: Any = None) -> None:
        self.events.append((event_type, reason, message))


def purge_cgroup_root(layout: CgroupLayout, root: str) -> None:
    for hierarchy in set(layout.roots().values()):
        top = hierarchy / root
        if not top.exists():
            continue
        for directory in [*sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)), top]:
            group = Cgroup(layout, str(directory.relative_to(hierarchy)))
            group.kill()
            group.wait_empty(2)
            directory.rmdir()


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


async def until(check: Callable[[], bool]) -> None:
    """Until `check()` holds (real time, bounded)."""
    async with asyncio.timeout(WAIT):
        while not check():  # noqa: ASYNC110 (polling state the code under test owns; tests only)
            await asyncio.sleep(0.05)


@dataclass
class FakePodNetwork:
    """A `PodNetwork` whose pods get a real, empty network namespace (loopback up) and 10.42.0.x."""

    mode: str = "bridge"
    note: str | None = None
    gateway_ip: str | None = "10.42.0.1"
    pods: dict[str, PodNetworkStatus] = field(default_factory=dict)
    setups: list[str] = field(default_factory=list)
    teardowns: list[str] = field(default_factory=list)
    orphan_calls: list[set[str]] = field(default_factory=list)
    started: str | None = None

    async def start(self, pod_cidr: str | None) -> None:
        self.started = pod_cidr

    async def setup_pod(self, uid: str, namespace: str, name: str) -> PodNetworkStatus:
        self.setups.append(uid)
        if self.mode == "host":
            return PodNetworkStatus(None, (NODE_IP,))
        if uid not in self.pods:
            netns = f"kl{uuid.uuid4().hex[:10]}"
            await asyncio.to_thread(ip, "netns", "add", netns)
            await asyncio.to_thread(ip, "-n", netns, "link", "set", "lo", "up")
            self.pods[uid] = PodNetworkStatus(f"/run/netns/{netns}", (f"10.42.0.{len(self.pods) + 2}",))
        return self.pods[uid]

    async def teardown_pod(self, uid: str) -> None:
        status = self.pods.pop(uid, None)
        if status is not None and status.netns_path:
            await asyncio.to_thread(ip, "netns", "delete", Path(status.netns_path).name, check=False)
        self.teardowns.append(uid)

    async def pod_status(self, uid: str) -> PodNetworkStatus | None:
        return self.pods.get(uid)

    async def cleanup_orphans(self, known_uids: set[str]) -> list[str]:
        self.orphan_calls.append(set(known_uids))
        return []

    async def sync_routes(self, peers: list[NodeRoute]) -> None:
        pass

    async def close(self) -> None:
        for uid in list(self.pods):
            await self.teardown_pod(uid)


@dataclass
class Node:
    client: FakeClient
    runtime: ProcessRuntime
    recorder: Recorder
    manager: PodManager
    network: FakePodNetwork
    networking: NodeNetworking
    tmp: Path


@pytest.fixture
def cgroup_root() -> Iterator[str]:
    root = f"kubelite-test-{uuid.uuid4().hex[:8]}"
    yield root
    purge_cgroup_root(detect_layout(), root)


async def _node(tmp_path: Path, cgroup_root: str, mode: str, *, ready: bool = True) -> AsyncIterator[Node]:
    runtime = ProcessRuntime(tmp_path / "runtime", isolated=True, cgroup_root=cgroup_root)
    await runtime.start()
    network = FakePodNetwork(mode=mode, note=None if mode == "bridge" else "forced")
    resolv = tmp_path / "node-resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\nsearch corp.example\n")
    networking = NodeNetworking(network, ClusterNetwork(), files_root=tmp_path / "pod-files", host_resolv_conf=resolv)
    if ready:
        networking.ready.set()
    client, recorder = FakeClient(), Recorder()
    manager = PodManager(
        client,
        runtime,
        recorder,
        node_name=NODE,
        node_ip=NODE_IP,
        log_root=tmp_path / "pods",
        clock=RealClock(),
        networking=networking,
    )
    task = asyncio.create_task(manager.run())
    try:
        async with asyncio.timeout(WAIT):
            await manager.wait_ready()
        yield Node(client, runtime, recorder, manager, network, networking, tmp_path)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await manager.shutdown(stop_pods=True)
        for sandbox in await runtime.list_pod_sandboxes():
            await runtime.remove_pod_sandbox(sandbox.id)
        await runtime.close()
        await network.close()


@pytest.fixture
async def node(tmp_path: Path, cgroup_root: str) -> AsyncIterator[Node]:
    async for value in _node(tmp_path, cgroup_root, "bridge"):
        yield value


@pytest.fixture
async def host_node(tmp_path: Path, cgroup_root: str) -> AsyncIterator[Node]:
    async for value in _node(tmp_path, cgroup_root, "host"):
        yield value


@pytest.fixture
async def waiting_node(tmp_path: Path, cgroup_root: str) -> AsyncIterator[Node]:
    async for value in _node(tmp_path, cgroup_root, "bridge", ready=False):
        yield value


def manifest(
    name: str, command: list[str], *, ports: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    app = {"name": "app", "image": "busybox", "command": command}
    app["env"] = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    if ports:
        app["ports"] = ports
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": NODE, "containers": [app], "terminationGracePeriodSeconds": 1, **spec},
        "status": {"phase": "Pending"},
    }


async def wait_for(node: Node, name: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    pod: dict[str, Any] = {}
    try:
        async with asyncio.timeout(WAIT):
            while True:
                pod = await node.client.get(PODS, name, "default")
                if check(pod):
                    return pod
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"condition not reached; last status: {pod.get('status')}") from None


def running(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


async def log_lines(node: Node, name: str, count: int) -> list[str]:
    async with asyncio.timeout(WAIT):
        while True:
            container_id = node.manager.find_container("default", name, "app")
            if container_id is not None:
                path = node.runtime.container_log_path(container_id)
                if path.exists():
                    lines = [c for *_, c in parse_cri_log(path)]
                    if len(lines) >= count:
                        return lines
            await asyncio.sleep(0.05)


SHOW = 'echo "ip=$POD_IP"; readlink /proc/self/ns/net; cat /etc/resolv.conf; grep -c . /etc/hosts; echo end; sleep 300'


async def test_a_pod_runs_in_its_namespace_with_its_ip_hosts_and_resolv_conf(node: Node) -> None:
    await node.client.create(PODS, manifest("web", ["sh", "-c", SHOW]))
    pod = await wait_for(node, "web", running)
    status = pod["status"]
    assert (status["podIP"], status["podIPs"]) == ("10.42.0.2", [{"ip": "10.42.0.2"}])
    assert (status["hostIP"], status["hostIPs"]) == (NODE_IP, [{"ip": NODE_IP}])
    uid = pod["metadata"]["uid"]
    netns_path = node.network.pods[uid].netns_path
    assert netns_path is not None
    [sandbox] = await node.runtime.list_pod_sandboxes()
    assert sandbox.netns_path == netns_path
    lines = await log_lines(node, "web", 7)
    assert lines[0] == "ip=10.42.0.2"
    assert lines[1] == f"net:[{os.stat(netns_path).st_ino}]"
    assert lines[2:5] == [
        "nameserver 10.43.0.10",
        "search default.svc.cluster.local svc.cluster.local cluster.local corp.example",
        "options ndots:5",
    ]
    hosts = (node.tmp / "pod-files" / uid / "etc-hosts").read_text()
    assert hosts.endswith("10.42.0.2\tweb\n")
    assert lines[5] == str(len(hosts.splitlines()))


async def test_deleting_a_pod_tears_down_its_network_and_files(node: Node) -> None:
    await node.client.create(PODS, manifest("web", ["sleep", "300"]))
    pod = await wait_for(node, "web", running)
    uid = pod["metadata"]["uid"]
    netns = node.network.pods[uid].netns_path
    assert netns is not None and os.path.exists(netns)
    await node.client.delete(PODS, "web", "default")
    await until(lambda: node.manager.worker("default", "web") is None)
    assert uid in node.network.teardowns
    assert not os.path.exists(netns)
    assert not (node.tmp / "pod-files" / uid).exists()


async def test_a_host_network_pod_gets_the_node_ip_and_no_namespace(node: Node) -> None:
    await node.client.create(PODS, manifest("hostnet", ["sh", "-c", SHOW], hostNetwork=True))
    pod = await wait_for(node, "hostnet", running)
    assert pod["status"]["podIP"] == NODE_IP
    assert node.network.setups == []
    [sandbox] = await node.runtime.list_pod_sandboxes()
    assert sandbox.netns_path is None
    lines = await log_lines(node, "hostnet", 6)
    assert lines[0] == f"ip={NODE_IP}"
    assert lines[1] == os.readlink("/proc/self/ns/net")  # the node's own network namespace
    assert lines[2:4] == ["nameserver 192.0.2.53", "search corp.example"]  # ClusterFirst + hostNetwork = Default
    assert lines[4] == str(len([x for x in Path("/etc/hosts").read_text().splitlines() if x]))


async def test_port_forward_reaches_a_server_on_the_pod_loopback(node: Node) -> None:
    server = f"{PYTHON} -m http.server --bind 127.0.0.1 8080"
    await node.client.create(PODS, manifest("web", ["sh", "-c", f"cd /tmp && exec {server}"]))
    await wait_for(node, "web", running)
    async with asyncio.timeout(WAIT):
        while True:
            try:
                reader, writer = await node.manager.open_port("default", "web", 8080)
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.1)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.0 200")
    writer.close()
    await writer.wait_closed()
    # the node's own loopback has no such server
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", 8080)


async def test_in_host_mode_a_second_pod_on_the_same_port_is_rejected_as_upstream(host_node: Node) -> None:
    node = host_node
    ports = [{"containerPort": 18080}]
    await node.client.create(PODS, manifest("first", ["sleep", "300"], ports=ports))
    await wait_for(node, "first", running)
    await node.client.create(PODS, manifest("second", ["sleep", "300"], ports=ports))
    pod = await wait_for(node, "second", lambda p: p["status"].get("phase") == "Failed")
    assert pod["status"]["reason"] == "NodePorts"
    assert pod["status"]["message"] == (
        "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
    )
    assert ("Warning", "NodePorts") in [(t, r) for t, r, _ in node.recorder.events]
    assert node.manager.find_container("default", "second", "app") is None
    # a rejected pod can be deleted like any other
    await node.client.delete(PODS, "second", "default")
    await until(lambda: node.manager.worker("default", "second") is None)


async def test_a_pod_waits_for_the_node_network_then_starts(waiting_node: Node) -> None:
    node = waiting_node
    await node.client.create(PODS, manifest("web", ["sleep", "300"]))
    await node.client.create(PODS, manifest("hostnet", ["sleep", "300"], hostNetwork=True))
    await wait_for(node, "hostnet", running)  # hostNetwork pods need not wait
    assert await node.runtime.list_pod_sandboxes() != [] and node.network.setups == []
    node.networking.ready.set()
    pod = await wait_for(node, "web", running)
    assert pod["status"]["podIP"] == "10.42.0.2"
    await until(lambda: bool(node.network.orphan_calls))
    assert pod["metadata"]["uid"] in node.network.orphan_calls[0]
