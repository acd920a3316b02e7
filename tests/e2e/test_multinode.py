"""Three nodes, each in its own network namespace: the server's own agent plus two `kubelite agent`
processes that join over the lab network.  Scheduling across nodes, cordon, unschedulable pods, streaming
through the API server to a remote agent, an agent killed and restarted without orphans, and a DaemonSet
that follows nodes joining and leaving."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.testing.agent import AgentProcess, create_join_token
from kubelite.testing.cluster import get_json, wait_for
from kubelite.testing.netns import NetnsLab, skip_reason
from kubelite.testing.server import ServerProcess

NODES = ("node-0", "node-1", "node-2")


class Cluster:
    def __init__(
        self, server: ServerProcess, agents: dict[str, AgentProcess], lab: NetnsLab, base: Path, token: str
    ) -> None:
        self.server = server
        self.agents = agents
        self.lab = lab
        self.base = base
        self.token = token

    def join(self, name: str) -> AgentProcess:
        """A new machine in the lab whose agent joins the cluster (stopped with the others at the end)."""
        host = self.lab.add_host(name)
        agent = AgentProcess(
            server_url=self.server.url,
            token=self.token,
            data_dir=self.base / name,
            node_name=name,
            node_ip=host.ip,
            netns=host.netns,
        )
        self.agents[name] = agent
        agent.start()
        return agent

    def kubectl(self, *args: str, **kwargs: Any) -> Any:
        return self.server.kubectl(*args, **kwargs)

    def pods(self) -> dict[str, dict[str, Any]]:
        return {p["metadata"]["name"]: p for p in get_json(self.server, "pods")["items"]}

    def run_pod(self, name: str, marker: str = "3600", *, cpu: str | None = None) -> None:
        resources = f"\n            resources: {{requests: {{cpu: '{cpu}'}}}}" if cpu else ""
        manifest = f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}}}
        spec:
          terminationGracePeriodSeconds: 2
          containers:
          - name: app
            image: busybox
            command: ["sleep", "{marker}"]{resources}
        """
        self.kubectl("apply", "-f", "-", input=textwrap.dedent(manifest))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = skip_reason()
    assert reason is None, f"multi-node tests need network namespaces: {reason}"
    base = Path(tmp_path_factory.mktemp("multinode"))
    with NetnsLab() as lab:
        hosts = {name: lab.add_host(name) for name in NODES}
        server_host = hosts["node-0"]
        server = ServerProcess(
            base / "server",
            netns=server_host.netns,
            extra_args=[
                "--bind-address",
                server_host.ip,
                "--node-name",
                "node-0",
                "--node-ip",
                server_host.ip,
                "--kubelet-port",
                "0",
            ],
        ).start()
        agents: dict[str, AgentProcess] = {}
        try:
            token = create_join_token(server)
            for name in NODES[1:]:
                agents[name] = AgentProcess(
                    server_url=server.url,
                    token=token,
                    data_dir=base / name,
                    node_name=name,
                    node_ip=hosts[name].ip,
                    netns=hosts[name].netns,
                )
                agents[name].start()
            wait_for(lambda: _ready_nodes(server) == set(NODES), timeout=90, what="three Ready nodes")
            yield Cluster(server, agents, lab, base, token)
        finally:
            for agent in agents.values():
                agent.stop()
            server.stop()


def _ready_nodes(server: ServerProcess) -> set[str]:
    ready = set()
    for node in get_json(server, "nodes")["items"]:
        if any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])):
            ready.add(node["metadata"]["name"])
    return ready


def _running(cluster: Cluster, names: list[str]) -> dict[str, dict[str, Any]]:
    def check() -> dict[str, dict[str, Any]] | None:
        pods = cluster.pods()
        if all(pods.get(n, {}).get("status", {}).get("phase") == "Running" for n in names):
            return pods
        return None

    return wait_for(check, timeout=90, what=f"pods {names} Running")


def _pids_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [b"sleep", marker.encode()]:
                found.append(int(entry))
    return found


def test_pods_spread_over_the_three_nodes_and_stream_through_the_api(cluster: Cluster) -> None:
    names = [f"spread-{i}" for i in range(6)]
    for name in names:
        cluster.run_pod(name)
    pods = _running(cluster, names)
    placement = {name: pods[name]["spec"]["nodeName"] for name in names}
    assert set(placement.values()) == set(NODES), placement
    for name in names:
        node = placement[name]
        assert (
            pods[name]["status"]["hostIP"]
            == get_json(cluster.server, "node", node)["status"]["addresses"][0]["address"]
        )
    remote = next(n for n in names if placement[n] == "node-2")
    # exec and logs on a joined node go server → that node's kubelet endpoint over the lab network
    out = cluster.kubectl("exec", remote, "--", "sh", "-c", "hostname; exit 4", check=False)
    assert out.returncode == 4 and out.stdout.strip() == remote
    assert cluster.kubectl("logs", remote).returncode == 0
    for name in names:
        cluster.kubectl("delete", "pod", name, "--wait=false")


def test_cordoned_node_gets_no_new_pods(cluster: Cluster) -> None:
    cluster.kubectl("cordon", "node-1")
    names = [f"cordoned-{i}" for i in range(4)]
    try:
        for name in names:
            cluster.run_pod(name)
        pods = _running(cluster, names)
        assert {pods[n]["spec"]["nodeName"] for n in names} <= {"node-0", "node-2"}
    finally:
        cluster.kubectl("uncordon", "node-1")
        for name in names:
            cluster.kubectl("delete", "pod", name, "--wait=false")


def test_pod_bigger_than_every_node_stays_pending_with_the_upstream_message(cluster: Cluster) -> None:
    cluster.run_pod("too-big", cpu="1000")

    def condition() -> dict[str, Any] | None:
        for c in cluster.pods()["too-big"]["status"].get("conditions", []):
            if c["type"] == "PodScheduled" and c["status"] == "False":
                return c
        return None

    found = wait_for(condition, what="PodScheduled=False")
    assert found["message"] == (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod."
    )
    assert cluster.pods()["too-big"]["status"]["phase"] == "Pending"
    cluster.kubectl("delete", "pod", "too-big")


def test_killed_agent_restarts_without_orphans(cluster: Cluster) -> None:
    agent = cluster.agents["node-2"]
    markers = {name: str(800000 + uuid.uuid4().int % 99999) for name in ("keep", "drop")}
    for name, marker in markers.items():
        # pinned to node-2 with spec.nodeName, as a user may do: the scheduler leaves such pods alone
        manifest = f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}}}
        spec:
          nodeName: node-2
          terminationGracePeriodSeconds: 2
          containers:
          - name: app
            image: busybox
            command: ["sleep", "{marker}"]
        """
        cluster.kubectl("apply", "-f", "-", input=textwrap.dedent(manifest))
    _running(cluster, list(markers))
    assert all(len(_pids_with(m)) == 1 for m in markers.values())

    agent.kill()  # SIGKILL: the agent cannot stop anything on its way out
    assert all(len(_pids_with(m)) == 1 for m in markers.values()), "containers outlive a killed agent until it returns"
    cluster.kubectl("delete", "pod", "drop", "--grace-period=0", "--force")
    agent.start()

    wait_for(lambda: not _pids_with(markers["drop"]), timeout=60, what="the deleted pod's process to be gone")
    assert _pids_with(markers["keep"]) and len(_pids_with(markers["keep"])) == 1
    keep = _running(cluster, ["keep"])["keep"]
    assert keep["status"]["containerStatuses"][0]["restartCount"] == 0  # adopted, not started again
    cluster.kubectl("delete", "pod", "keep")
    assert not _pids_with(markers["keep"])


def test_daemonset_runs_one_pod_per_node_and_follows_nodes_joining_and_leaving(cluster: Cluster) -> None:
    manifest = """
    apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: everywhere}
    spec:
      selector: {matchLabels: {app: everywhere}}
      template:
        metadata: {labels: {app: everywhere}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: app
            image: busybox
            command: ["sleep", "3600"]
    """
    cluster.kubectl("apply", "-f", "-", input=textwrap.dedent(manifest))

    def placement() -> dict[str, str]:
        pods = get_json(cluster.server, "pods", "-l", "app=everywhere")["items"]
        return {
            p["spec"].get("nodeName", ""): p["status"].get("phase", "")
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
        }

    def all_running(nodes: set[str]) -> bool:
        now = placement()
        return set(now) == nodes and set(now.values()) == {"Running"}

    wait_for(lambda: all_running(set(NODES)), timeout=90, what="one running pod on each of the three nodes")
    assert len(get_json(cluster.server, "pods", "-l", "app=everywhere")["items"]) == 3
    wait_for(
        lambda: get_json(cluster.server, "daemonset", "everywhere")["status"].get("numberReady") == 3,
        timeout=30,
        what="numberReady 3",
    )
    status = get_json(cluster.server, "daemonset", "everywhere")["status"]
    assert status["desiredNumberScheduled"] == 3 and status["currentNumberScheduled"] == 3

    newcomer = cluster.join("node-3")
    wait_for(lambda: all_running({*NODES, "node-3"}), timeout=90, what="a pod on the node that joined")

    newcomer.stop()
    cluster.kubectl("delete", "node", "node-3")
    wait_for(lambda: set(placement()) == set(NODES), timeout=120, what="the departed node's pod to go")
    wait_for(
        lambda: get_json(cluster.server, "daemonset", "everywhere")["status"].get("desiredNumberScheduled") == 3,
        timeout=30,
        what="desiredNumberScheduled back to 3",
    )
    cluster.kubectl("delete", "daemonset", "everywhere")
    wait_for(lambda: not placement(), timeout=60, what="the DaemonSet's pods to go with it")
