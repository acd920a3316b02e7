"""The multi-node test harness: a NetnsLab of network namespaces, and a server running inside one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelite.testing.agent import AgentProcess, create_join_token
from kubelite.testing.netns import NetnsLab, skip_reason
from kubelite.testing.server import ServerProcess

# Accepts one connection on (argv[1], 0), prints the port once listening, answers "pong:" + what it got.
ECHO_SERVER = """
import socket, sys
with socket.socket() as s:
    s.bind((sys.argv[1], 0))
    s.listen(1)
    print(s.getsockname()[1], flush=True)
    conn, peer = s.accept()
    with conn:
        conn.sendall(b"pong:" + conn.recv(64) + b" from " + peer[0].encode())
"""

CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20) as c:
    c.sendall(b"ping")
    print(c.recv(128).decode(), flush=True)
"""


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    reason = skip_reason()
    if reason:
        pytest.fail(reason)  # CI runs as root: a missing prerequisite is a broken machine, not a skip
    with NetnsLab() as made:
        yield made


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {entry["name"] for entry in json.loads(out or "[]")}


def _host_network_state() -> dict[str, list[str]]:
    """Interface names and routes (v4 and v6, every table) of the test process's own netns."""
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout)
    routes = {
        family: sorted(
            subprocess.run(
                ["ip", family, "route", "show", "table", "all"], capture_output=True, text=True, check=True
            ).stdout.splitlines()
        )
        for family in ("-4", "-6")
    }
    return {"links": sorted(link["ifname"] for link in links), **routes}


def _is_gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return "\nState:\tZ" in status  # a zombie waiting for its reaper is dead


def test_two_lab_hosts_talk_tcp_over_the_switch(lab: NetnsLab) -> None:
    a = lab.add_host("a")
    b = lab.add_host("b")
    assert a.ip != b.ip
    assert a.netns.startswith(lab.prefix) and b.netns.startswith(lab.prefix)
    server = a.popen([sys.executable, "-c", ECHO_SERVER, a.ip], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    port = int(server.stdout.readline())

    answer = b.run([sys.executable, "-c", CLIENT, a.ip, str(port)]).stdout.strip()

    assert answer == f"pong:ping from {b.ip}"
    assert server.wait(30) == 0
    server.stdout.close()


def test_lab_adds_no_interface_or_route_to_the_callers_netns() -> None:
    before = _host_network_state()
    with NetnsLab() as lab:
        lab.add_host("a")
        lab.add_host("b")
        during = _host_network_state()
    after = _host_network_state()

    assert during == before
    assert after == before


def test_close_kills_every_process_in_the_lab_and_deletes_its_namespaces() -> None:
    lab = NetnsLab()
    try:
        a = lab.add_host("a")
        b = lab.add_host("b")
        child = a.popen(["sleep", "1000"])
        # a process the lab did not start itself: a detached grandchild, found only through `ip netns pids`
        detached = int(b.run(["sh", "-c", "setsid sleep 1000 >/dev/null 2>&1 & echo $!"]).stdout)
        assert lab.namespaces == [lab.switch, a.netns, b.netns]
        assert set(lab.namespaces) <= _namespaces()
    finally:
        lab.close()

    assert child.returncode is not None
    assert _is_gone(child.pid)
    assert _is_gone(detached)
    assert not {name for name in _namespaces() if name.startswith(lab.prefix)}
    lab.close()  # idempotent
    with pytest.raises(RuntimeError):
        lab.add_host("c")


def test_two_labs_get_distinct_namespace_names() -> None:
    with NetnsLab() as one, NetnsLab() as two:
        assert one.prefix != two.prefix
        assert one.add_host("node").netns != two.add_host("node").netns


def test_server_in_a_lab_host_serves_kubectl_inside_and_across_the_lab(lab: NetnsLab, tmp_path: Path) -> None:
    host = lab.add_host("server")
    other = lab.add_host("client")
    server = ServerProcess(
        tmp_path / "server", netns=host.netns, extra_args=["--bind-address", host.ip, "--disable-agent"]
    )
    server.start()
    try:
        assert server.url == f"https://{host.ip}:{server.port}"
        namespaces = server.kubectl("get", "ns", "-o", "name").stdout.split()
        assert "namespace/default" in namespaces

        # the same kubeconfig works from another lab host, over the bridge
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "KUBECONFIG": str(server.kubeconfig),
        }
        across = other.run(["kubectl", "--server", server.url, "get", "ns", "default", "-o", "name"], env=env)
        assert across.stdout.strip() == "namespace/default"
    finally:
        server.stop()


def test_agent_in_a_lab_host_joins_a_server_in_another(lab: NetnsLab, tmp_path: Path) -> None:
    server_host = lab.add_host("server")
    node_host = lab.add_host("node1")
    server = ServerProcess(
        tmp_path / "server",
        netns=server_host.netns,
        extra_args=["--bind-address", server_host.ip, "--disable-agent", "--disable-scheduler"],
    ).start()
    agent = AgentProcess(
        server_url=server.url,
        token=create_join_token(server),
        data_dir=tmp_path / "node1",
        node_name="node1",
        node_ip=node_host.ip,
        netns=node_host.netns,
    )
    try:
        agent.start()
        assert agent.pid is not None and agent.pid in _pids_in(node_host.netns)
        node = json.loads(server.kubectl("get", "node", "node1", "-o", "json").stdout)
        addresses = {a["type"]: a["address"] for a in node["status"].get("addresses", [])}
        assert addresses.get("InternalIP") == node_host.ip

        pid = agent.pid
        agent.kill()
        assert agent.process is None and _is_gone(pid)
        agent.start()  # restarts from its data dir's credentials: no second join
        assert agent.log_path.read_text().count("kubelite agent node1 ready") == 2
    finally:
        agent.stop()
        server.stop()


def _pids_in(netns: str) -> set[int]:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=True).stdout
    return {int(pid) for pid in out.split()}
