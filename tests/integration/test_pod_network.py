"""BridgeNetwork for real, on two "nodes" that are network namespaces of a `NetnsLab` (root needed; fails
without it).  Each node's pod network is built inside its own namespace (`host_netns`), so nothing in
these tests touches the machine's own network: a fixture compares the host's links, routes and nft
tables before and after, and checks that no namespace of ours is left.

Reachability is checked with small Python clients run in a namespace with ``nsenter --net``: a connection
answered by a server or refused by the peer's kernel both prove the packet got there; EHOSTUNREACH proves
the node turned it away.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubelite.agent.network.bridge import BRIDGE, BridgeNetwork
from kubelite.agent.network.interface import NetworkError
from kubelite.agent.network.routes import node_routes
from kubelite.machinery.network import ClusterNetwork
from kubelite.testing.netns import Host, NetnsLab

CLUSTER = ClusterNetwork()
CIDR_A, CIDR_B = "10.42.1.0/24", "10.42.2.0/24"
PORT = 8080
CLOSED_PORT = 9  # nothing listens there: a refusal proves the packet arrived
PROBE_TIMEOUT = 5.0

CLIENT = """
import errno, socket, sys
s = socket.socket()
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected:" + s.recv(100).decode())
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
except OSError as exc:
    print(errno.errorcode.get(exc.errno, str(exc.errno)))
"""

# answers every connection with the address it came from, so a test sees what source address arrived
SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen()
print("ready", flush=True)
while True:
    conn, peer = s.accept()
    conn.sendall(peer[0].encode())
    conn.close()
"""


def netns_file(host: Host) -> str:
    return f"/run/netns/{host.netns}"


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def probe(netns_path: str, address: str, port: int = CLOSED_PORT) -> str:
    result = subprocess.run(
        ["nsenter", f"--net={netns_path}", "--", sys.executable, "-c", CLIENT, address, str(port), str(PROBE_TIMEOUT)],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT + 30,
        check=True,
    )
    return result.stdout.strip()


@dataclass
class Servers:
    processes: list[subprocess.Popen[str]]

    def start(self, netns_path: str, port: int = PORT) -> None:
        process = subprocess.Popen(
            ["nsenter", f"--net={netns_path}", "--", sys.executable, "-c", SERVER, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"


@pytest.fixture
def servers() -> Iterator[Servers]:
    running = Servers([])
    yield running
    for process in running.processes:  # by PID, ours only
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def host_state() -> dict[str, set[str]]:
    def lines(*argv: str) -> set[str]:
        return set(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines())

    return {
        "links": lines("ip", "-o", "link"),
        "routes": lines("ip", "route", "show", "table", "all"),
        "tables": lines("nft", "list", "tables"),
        "netns": {line.split()[0] for line in lines("ip", "netns", "list") if line.strip()},
    }


MARKERS = (BRIDGE, "10.42.", "10.43.", "kubelite-net")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[NetnsLab]:
    """Two nodes, "a" and "b", on one lab switch.  Afterwards: nothing of ours in the host's namespace and
    no namespace of ours left (pod namespaces of every agent made under `tmp_path` included)."""
    before = host_state()
    with NetnsLab() as built:
        built.add_host("a")
        built.add_host("b")
        try:
            yield built
        finally:
            for data_dir in tmp_path.iterdir():  # agents' pod namespaces outlive the node namespaces
                prefix = BridgeNetwork(data_dir, "x", CLUSTER).netns_name("")
                for name in os.listdir("/run/netns"):
                    if name.startswith(prefix):
                        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
    after = host_state()
    for kind in ("links", "routes", "tables"):
        new = after[kind] - before[kind]
        assert not [line for line in new if any(marker in line for marker in MARKERS)], (kind, new)
    ours = [name for name in after["netns"] - before["netns"] if name.startswith(built.prefix)]
    assert not ours


def network(lab: NetnsLab, node: str, data_dir: Path) -> BridgeNetwork:
    return BridgeNetwork(data_dir, node, CLUSTER, host_netns=lab.hosts[node].netns)


def new_uid() -> str:
    return str(uuid.uuid4())


def peers(lab: NetnsLab) -> list[dict[str, object]]:
    return [
        {
            "metadata": {"name": name},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": lab.hosts[name].ip}]},
        }
        for name, cidr in (("a", CIDR_A), ("b", CIDR_B))
    ]


async def test_pods_on_one_node_reach_each_other_the_gateway_and_the_node(
    lab: NetnsLab, tmp_path: Path, servers: Servers
) -> None:
    net = network(lab, "a", tmp_path / "a")
    await net.start(CIDR_A)
    assert net.gateway_ip == "10.42.1.1"
    one = await net.setup_pod(new_uid(), "default", "one")
    two = await net.setup_pod(new_uid(), "default", "two")
    assert one.netns_path and two.netns_path and os.path.exists(one.netns_path)
    assert (one.ips, two.ips) == (("10.42.1.2",), ("10.42.1.3",))

    servers.start(two.netns_path)
    assert probe(one.netns_path, "10.42.1.3", PORT) == "connected:10.42.1.2"
    assert probe(two.netns_path, "10.42.1.2") == "refused"
    assert probe(one.netns_path, "10.42.1.1") == "refused"  # the gateway (the node) answers
    assert probe(netns_file(lab.hosts["a"]), "10.42.1.3", PORT) == "connected:10.42.1.1"
    assert probe(one.netns_path, "10.42.1.2") == "refused"  # its own address


async def test_pod_reaches_a_pod_on_another_node_once_routes_are_synced(
    lab: NetnsLab, tmp_path: Path, servers: Servers
) -> None:
    net_a, net_b = network(lab, "a", tmp_path / "a"), network(lab, "b", tmp_path / "b")
    await net_a.start(CIDR_A)
    await net_b.start(CIDR_B)
    pod_a = await net_a.setup_pod(new_uid(), "default", "client")
    pod_b = await net_b.setup_pod(new_uid(), "default", "server")
    assert pod_a.netns_path and pod_b.netns_path
    servers.start(pod_b.netns_path)
    assert probe(pod_a.netns_path, pod_b.ips[0], PORT) == "EHOSTUNREACH"  # no route yet: fails on node a

    routes = node_routes(peers(lab))
    await net_a.sync_routes(routes)
    await net_b.sync_routes(routes)
    await net_a.sync_routes(routes)  # level-based: again changes nothing
    assert probe(pod_a.netns_path, pod_b.ips[0], PORT) == f"connected:{pod_a.ips[0]}"  # not masqueraded
    shown = lab.hosts["a"].run(["ip", "route", "show", "proto", "75"]).stdout.strip().splitlines()
    assert shown == [f"{CIDR_B} via {lab.hosts['b'].ip} dev eth0"]  # this node's own CIDR is not among them

    await net_a.sync_routes([])
    assert lab.hosts["a"].run(["ip", "route", "show", "proto", "75"]).stdout.strip() == ""
    assert probe(pod_a.netns_path, pod_b.ips[0], PORT) == "EHOSTUNREACH"


async def test_pod_traffic_leaving_the_cluster_cidr_is_masqueraded(
    lab: NetnsLab, tmp_path: Path, servers: Servers
) -> None:
    net = network(lab, "a", tmp_path / "a")
    await net.start(CIDR_A)
    pod = await net.setup_pod(new_uid(), "default", "client")
    assert pod.netns_path
    servers.start(netns_file(lab.hosts["b"]))  # a server on the other node's own address
    assert probe(pod.netns_path, lab.hosts["b"].ip, PORT) == f"connected:{lab.hosts['a'].ip}"


async def test_restart_gives_the_same_addresses_and_keeps_connectivity(
    lab: NetnsLab, tmp_path: Path, servers: Servers
) -> None:
    uids = [new_uid(), new_uid()]
    first = network(lab, "a", tmp_path / "a")
    await first.start(CIDR_A)
    before = [await first.setup_pod(uid, "default", f"p{index}") for index, uid in enumerate(uids)]
    assert before[1].netns_path
    servers.start(before[1].netns_path)
    await first.close()

    again = network(lab, "a", tmp_path / "a")  # the agent restarted
    await again.start(CIDR_A)
    await again.start(CIDR_A)
    after = [await again.setup_pod(uid, "default", f"p{index}") for index, uid in enumerate(uids)]
    assert after == before
    assert await again.pod_status(uids[0]) == before[0]
    assert before[0].netns_path
    assert probe(before[0].netns_path, before[1].ips[0], PORT) == f"connected:{before[0].ips[0]}"

    node = lab.hosts["a"]
    assert node.run(["ip", "-o", "link", "show", "master", BRIDGE]).stdout.count("\n") == 2
    assert node.run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE]).stdout.count("inet ") == 1
    assert node.run(["ip", "route", "show", "type", "unreachable"]).stdout.count("\n") == 1
    assert node.run(["nft", "list", "tables"]).stdout.count("kubelite-net") == 1
    pod_addresses = sh("ip", "-n", again.netns_name(uids[0]), "-o", "-4", "addr", "show", "dev", "eth0")
    assert pod_addresses.count("inet ") == 1
    third = await again.setup_pod(new_uid(), "default", "p2")
    assert third.ips == ("10.42.1.4",)


async def test_teardown_removes_the_namespace_and_frees_the_address(lab: NetnsLab, tmp_path: Path) -> None:
    net = network(lab, "a", tmp_path / "a")
    await net.start(CIDR_A)
    uid = new_uid()
    status = await net.setup_pod(uid, "default", "p")
    assert status.netns_path
    await net.teardown_pod(uid)
    await net.teardown_pod(uid)
    assert not os.path.exists(status.netns_path)
    assert await net.pod_status(uid) is None
    assert net.ipam.allocations() == {}
    assert lab.hosts["a"].run(["ip", "-o", "link", "show", "master", BRIDGE]).stdout == ""


async def test_cleanup_orphans_removes_only_this_agents_leftovers(lab: NetnsLab, tmp_path: Path) -> None:
    mine, other = network(lab, "a", tmp_path / "a"), network(lab, "b", tmp_path / "b")
    await mine.start(CIDR_A)
    await other.start(CIDR_B)
    keep, orphan, others = new_uid(), new_uid(), new_uid()
    kept = await mine.setup_pod(keep, "default", "keep")
    gone = await mine.setup_pod(orphan, "default", "orphan")
    foreign = await other.setup_pod(others, "default", "foreign")
    bare = mine.netns_name("deadbeef0000")  # a crash after `ip netns add`, before the address was recorded
    sh("ip", "netns", "add", bare)

    removed = await mine.cleanup_orphans({keep})
    assert sorted(removed) == sorted([orphan, "deadbeef0000"])
    assert gone.netns_path and not os.path.exists(gone.netns_path)
    assert not os.path.exists(f"/run/netns/{bare}")
    assert await mine.pod_status(keep) == kept
    assert await other.pod_status(others) == foreign
    assert set(mine.ipam.allocations().values()) == {keep}
    assert await mine.cleanup_orphans({keep}) == []


async def test_unused_cluster_and_service_addresses_fail_on_the_node(lab: NetnsLab, tmp_path: Path) -> None:
    net = network(lab, "a", tmp_path / "a")
    await net.start(CIDR_A)
    pod = await net.setup_pod(new_uid(), "default", "p")
    assert pod.netns_path
    node = netns_file(lab.hosts["a"])
    for source in (pod.netns_path, node):
        assert probe(source, "10.42.9.9") == "EHOSTUNREACH"  # another node's CIDR nobody routes
        assert probe(source, "10.43.0.77") == "EHOSTUNREACH"  # a service address no proxy rule serves
    route = lab.hosts["a"].run(["ip", "route", "get", "10.42.9.9"], check=False)
    assert route.returncode != 0 and "No route to host" in route.stderr
    ruleset = lab.hosts["a"].run(["nft", "list", "table", "ip", "kubelite-net"]).stdout
    assert "packets 0 " not in ruleset.split("chain forward")[1].split("}")[0]  # the pod's packet was rejected
    assert "packets 0 " not in ruleset.split("chain output")[1].split("}")[0]  # and the node's


async def test_start_is_idempotent_and_a_changed_cidr_needs_no_pods(lab: NetnsLab, tmp_path: Path) -> None:
    net = network(lab, "a", tmp_path / "a")
    await net.start(CIDR_A)
    uid = new_uid()
    await net.setup_pod(uid, "default", "p")
    with pytest.raises(NetworkError, match="pod CIDR changed"):
        await net.start("10.42.5.0/24")
    with pytest.raises(NetworkError, match="outside the cluster CIDR"):
        await net.start("10.99.0.0/24")
    await net.teardown_pod(uid)
    await net.start("10.42.5.0/24")
    addresses = lab.hosts["a"].run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE]).stdout
    assert "10.42.5.1/24" in addresses and "10.42.1.1" not in addresses
    status = await net.setup_pod(new_uid(), "default", "q")
    assert status.ips == ("10.42.5.2",)


async def test_a_failed_setup_cleans_up_what_it_made(lab: NetnsLab, tmp_path: Path) -> None:
    net = network(lab, "a", tmp_path / "a")
    await net.start(CIDR_A)
    lab.hosts["a"].run(["ip", "link", "del", BRIDGE])  # the bridge vanished under the agent
    uid = new_uid()
    with pytest.raises(NetworkError, match="pod default/p failed"):
        await net.setup_pod(uid, "default", "p")
    assert not os.path.exists(net.netns_path(uid))
    assert net.ipam.allocations() == {}
    assert lab.hosts["a"].run(["ip", "-o", "link", "show", "type", "veth"]).stdout.count(net.veth_name(uid)) == 0
    await net.start(CIDR_A)  # start repairs the node
    assert (await net.setup_pod(uid, "default", "p")).ips == ("10.42.1.3",)


async def test_setup_before_start_is_an_error(lab: NetnsLab, tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="not started"):
        await network(lab, "a", tmp_path / "a").setup_pod(new_uid(), "default", "p")
