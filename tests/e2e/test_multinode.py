"""Three nodes, each in its own network namespace: the server's own agent plus two `kubelite agent`
processes that join over the lab network.  Scheduling across nodes, cordon, unschedulable pods, streaming
through the API server to a remote agent, an agent killed and restarted without orphans, and a DaemonSet
that follows nodes joining and leaving."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.testing.agent import AgentProcess, create_join_token
from kubelite.testing.cluster import FETCH_MANY, HOSTNAME_SERVER, get_json, wait_for
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
            expose_on_loopback=True,
            extra_args=[
                # a node is Unknown 20 s after its last heartbeat (agents renew every 10 s), and its pods are
                # evicted 5 s later
                "--node-monitor-grace-period",
                "20",
                "--default-unreachable-toleration-seconds",
                "5",
                "--default-not-ready-toleration-seconds",
                "5",
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
    # the process goes too (seen to outlive the pod object by a moment when the pod was adopted: see the note)
    wait_for(lambda: not _pids_with(markers["keep"]), timeout=15, what="the adopted pod's process to be gone")


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


def _hostname_deployment(cluster: Cluster, name: str, replicas: int, *, node: str | None = None) -> None:
    pin = f"\n          nodeSelector: {{kubernetes.io/hostname: {node}}}" if node else ""
    manifest = f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: {name}}}
    spec:
      replicas: {replicas}
      selector: {{matchLabels: {{app: {name}}}}}
      template:
        metadata: {{labels: {{app: {name}}}}}
        spec:
          terminationGracePeriodSeconds: 1{pin}
          containers:
          - name: web
            image: python:3.11
            command: ["python3", "-c", {json.dumps(HOSTNAME_SERVER)}]
            resources: {{requests: {{cpu: 100m}}}}
            readinessProbe: {{httpGet: {{port: 8080, path: /}}, periodSeconds: 1}}
    """
    cluster.kubectl("apply", "-f", "-", input=textwrap.dedent(manifest))
    cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=120s", timeout=130)


def _client_on(cluster: Cluster, node: str) -> str:
    name = f"client-{node}"
    if cluster.kubectl("get", "pod", name, check=False).returncode != 0:
        overrides = json.dumps({"spec": {"nodeName": node}})
        cluster.kubectl(
            "run", name, "--image=python:3.11", "--restart=Never", f"--overrides={overrides}", "--", "sleep", "3600"
        )
        cluster.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=60s", timeout=70)
    return name


def _fetch(cluster: Cluster, client: str, url: str, count: int = 1) -> list[str]:
    out = cluster.kubectl("exec", client, "--", "python3", "-c", FETCH_MANY, url, str(count), timeout=120)
    return out.stdout.splitlines()


def _node_ip(cluster: Cluster, node: str) -> str:
    addresses = get_json(cluster.server, "node", node)["status"]["addresses"]
    return next(a["address"] for a in addresses if a["type"] == "InternalIP")


def _nft_on(cluster: Cluster, node: str) -> str:
    host = cluster.lab.hosts[node]
    return host.run(["nft", "list", "table", "ip", "kubelite"], check=False).stdout


def test_a_client_on_one_node_reaches_a_pod_on_another_through_its_service(cluster: Cluster) -> None:
    _hostname_deployment(cluster, "xweb", 1, node="node-2")
    cluster.kubectl("expose", "deployment", "xweb", "--type=NodePort", "--port=80", "--target-port=8080")
    pod = get_json(cluster.server, "pods", "-l", "app=xweb")["items"][0]
    assert pod["status"]["podIP"].startswith("10.42.") and pod["spec"]["nodeName"] == "node-2"
    client = _client_on(cluster, "node-1")

    answers = _fetch(cluster, client, "http://xweb.default.svc.cluster.local/", 10)
    assert answers == [pod["metadata"]["name"]] * 10
    assert _fetch(cluster, client, f"http://{pod['status']['podIP']}:8080/") == [pod["metadata"]["name"]]

    # a NodePort on node-1 answered by the pod on node-2, asked from node-0's own network
    node_port = get_json(cluster.server, "service", "xweb")["spec"]["ports"][0]["nodePort"]
    asked = cluster.lab.hosts["node-0"].run(
        [sys.executable, "-c", FETCH_MANY, f"http://{_node_ip(cluster, 'node-1')}:{node_port}/", "1"], check=False
    )
    assert asked.stdout.strip() == pod["metadata"]["name"]


def test_a_restarted_agent_keeps_its_pods_networking_and_service_rules(cluster: Cluster) -> None:
    pod = get_json(cluster.server, "pods", "-l", "app=xweb")["items"][0]
    cluster_ip = get_json(cluster.server, "service", "xweb")["spec"]["clusterIP"]
    client = _client_on(cluster, "node-1")
    agent = cluster.agents["node-2"]

    agent.kill()
    assert cluster_ip in _nft_on(cluster, "node-2"), "the rules outlive the agent"
    assert _fetch(cluster, client, f"http://{cluster_ip}/") == [pod["metadata"]["name"]], "traffic goes on"
    agent.start()
    wait_for(lambda: "node-2" in _ready_nodes(cluster.server), timeout=60, what="node-2 Ready again")

    again = get_json(cluster.server, "pod", pod["metadata"]["name"])
    assert again["status"]["podIP"] == pod["status"]["podIP"]
    assert again["status"]["containerStatuses"][0]["restartCount"] == 0
    assert _fetch(cluster, client, f"http://{pod['status']['podIP']}:8080/") == [pod["metadata"]["name"]]
    # the new agent probes readiness afresh (the pod may leave the endpoints until its first probe passes)
    wait_for(
        lambda: _fetch(cluster, client, "http://xweb/", 5) == [pod["metadata"]["name"]] * 5,
        timeout=30,
        what="the Service to answer again",
    )

    # a graceful restart (SIGTERM) also leaves the pod running, and the new agent adopts it
    started = again["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    agent.stop(cleanup=False)
    assert _fetch(cluster, client, f"http://{cluster_ip}/") == [pod["metadata"]["name"]]
    agent.start()
    wait_for(lambda: "node-2" in _ready_nodes(cluster.server), timeout=60, what="node-2 Ready again")
    status = get_json(cluster.server, "pod", pod["metadata"]["name"])["status"]["containerStatuses"][0]
    assert status["restartCount"] == 0 and status["state"]["running"]["startedAt"] == started
    wait_for(
        lambda: _fetch(cluster, client, "http://xweb/", 5) == [pod["metadata"]["name"]] * 5,
        timeout=30,
        what="the Service to answer after the graceful restart",
    )
    cluster.kubectl("delete", "service", "xweb")
    cluster.kubectl("delete", "deployment", "xweb")


def test_pods_of_a_dead_node_are_replaced_on_the_others_and_not_duplicated_when_it_returns(cluster: Cluster) -> None:
    _hostname_deployment(cluster, "heal", 6)
    placement = {p["spec"]["nodeName"] for p in get_json(cluster.server, "pods", "-l", "app=heal")["items"]}
    assert "node-2" in placement, placement
    agent = cluster.agents["node-2"]

    agent.kill()  # the machine "dies": no more heartbeats (its processes are left running, as after a partition)
    try:

        def node_state() -> bool:
            node = get_json(cluster.server, "node", "node-2")
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or ()}
            return ready["status"] == "Unknown" and ("node.kubernetes.io/unreachable", "NoExecute") in taints

        wait_for(node_state, timeout=90, what="node-2 Unknown and tainted")

        def healed() -> bool:
            pods = get_json(cluster.server, "pods", "-l", "app=heal")["items"]
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            return (
                len(live) == 6
                and all(p["status"].get("phase") == "Running" for p in live)
                and all(p["spec"].get("nodeName") in ("node-0", "node-1") for p in live)
            )

        wait_for(healed, timeout=120, what="6 Running replicas on node-0 and node-1")
    finally:
        agent.start()
    wait_for(lambda: "node-2" in _ready_nodes(cluster.server), timeout=60, what="node-2 Ready again")

    def settled() -> bool:
        pods = get_json(cluster.server, "pods", "-l", "app=heal")["items"]
        return len(pods) == 6 and not any(p["spec"].get("nodeName") == "node-2" for p in pods)

    wait_for(settled, timeout=90, what="the evicted pods to be gone from node-2, and no duplicates")
    cluster.kubectl("delete", "deployment", "heal")


def test_drain_moves_every_pod_off_a_node_while_the_budget_keeps_three_available(cluster: Cluster) -> None:
    _hostname_deployment(cluster, "guarded", 4)
    pdb = """
    apiVersion: policy/v1
    kind: PodDisruptionBudget
    metadata: {name: guarded}
    spec:
      minAvailable: 3
      selector: {matchLabels: {app: guarded}}
    """
    cluster.kubectl("apply", "-f", "-", input=textwrap.dedent(pdb))
    wait_for(
        lambda: get_json(cluster.server, "pdb", "guarded").get("status", {}).get("disruptionsAllowed") == 1,
        timeout=60,
        what="the budget to allow one disruption",
    )
    target = get_json(cluster.server, "pods", "-l", "app=guarded")["items"][0]["spec"]["nodeName"]
    watcher = _AvailabilityWatcher(cluster.server, "app=guarded")
    watcher.start()
    try:
        cluster.kubectl("drain", target, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=240s", timeout=260)
        pods = get_json(cluster.server, "pods", "-l", "app=guarded")["items"]
        left = [p for p in pods if p["spec"].get("nodeName") == target and not p["metadata"].get("deletionTimestamp")]
        assert not left
        wait_for(lambda: watcher.current == 4, timeout=120, what="four available replicas again")
    finally:
        watcher.stop()
        cluster.kubectl("uncordon", target)
    assert watcher.minimum >= 3, f"availability dropped to {watcher.minimum} during the drain"
    assert watcher.events > 0
    cluster.kubectl("delete", "deployment", "guarded")
    cluster.kubectl("delete", "pdb", "guarded")


class _AvailabilityWatcher:
    """Watches pods with the kubernetes client and keeps the lowest number of Ready, non-terminating pods seen."""

    def __init__(self, server: ServerProcess, selector: str) -> None:
        from kubernetes import client, config

        self._api = config.new_client_from_config(config_file=str(server.kubeconfig))
        self._core = client.CoreV1Api(self._api)
        self._selector = selector
        self._pods: dict[str, bool] = {}
        self.minimum = 10**6
        self.current = 0
        self.events = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        wait_for(lambda: self.events > 0, timeout=30, what="the watch to start")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)
        self._api.close()

    def _run(self) -> None:
        from kubernetes import watch

        while not self._stop.is_set():
            stream = watch.Watch()
            for event in stream.stream(
                self._core.list_namespaced_pod, "default", label_selector=self._selector, timeout_seconds=5
            ):
                pod = event["object"]
                ready = pod.metadata.deletion_timestamp is None and any(
                    c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or [])
                )
                if event["type"] == "DELETED":
                    self._pods.pop(pod.metadata.name, None)
                else:
                    self._pods[pod.metadata.name] = ready
                self.current = sum(self._pods.values())
                self.events += 1
                if self.events > len(self._pods) or event["type"] != "ADDED":
                    self.minimum = min(self.minimum, self.current)
                if self._stop.is_set():
                    stream.stop()
