"""The node agent: one object that owns a node's parts and their lifetimes.

Parts: the container runtime, the event recorder, the kubelet endpoint (logs/exec/attach/port-forward for
the API server), the Node object with its Lease heartbeat, the pod network, and the pod manager.  `run()`
starts them in dependency order inside one TaskGroup; cancelling it is shutdown.  As with the kubelet, a
stopping agent leaves its pods running — containers, their network namespaces and the service rules — and the
next start adopts them (same processes, same restart counts; pods deleted meanwhile are removed as orphans),
so restarting or upgrading an agent never restarts a workload (decision 0008).  `kubelite cleanup`
(`kubelite.agent.cleanup`) stops what an agent left; `stop_pods_on_exit` makes shutdown do it (tests).

Pod network start-up: the cluster's plan (`AgentConfig.network`, else the API server's ConfigMap, waited
for), then the Node is registered, then — bridge mode only — the agent waits for the node's pod CIDR
(nodeipam assigns it) and starts the network; routes to other nodes follow the Node objects
(`nodenet.RouteSync`).  The pod manager runs meanwhile: hostNetwork pods start at once, the others wait
for the network.  The mode is shown on the Node (annotation ``kubelite.io/pod-network`` and, in host mode,
the Ready condition's message says that pods share the node's network).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelite.agent.agentmetrics import AgentMetrics, component_registry
from kubelite.agent.cleanup import cgroup_root, write_identity
from kubelite.agent.network import create_pod_network, node_routes
from kubelite.agent.network.interface import NetworkError, NodeRoute, PodNetwork
from kubelite.agent.node import MAX_PODS, NetworkReport, NodeStatusManager
from kubelite.agent.nodenet import RouteSync, read_cluster_network, wait_for_pod_cidr
from kubelite.agent.pods.manager import PodManager
from kubelite.agent.pods.networking import NodeNetworking
from kubelite.agent.runtime.process import ProcessRuntime
from kubelite.agent.stats import StatsCollector
from kubelite.agent.streaming.server import KubeletServer
from kubelite.agent.tls import authorize_api_server
from kubelite.client.clock import RealClock
from kubelite.client.events import EventRecorder
from kubelite.client.interface import Client
from kubelite.machinery.network import ClusterNetwork

log = logging.getLogger(__name__)


@dataclass
class AgentConfig:
    node_name: str
    node_ip: str
    data_dir: Path
    kubelet_bind_address: str = "0.0.0.0"
    kubelet_port: int = 10250
    # serving context of the kubelet endpoint; None serves plain HTTP (tests only)
    kubelet_ssl_context: ssl.SSLContext | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # None: isolate containers when this machine allows it; False: never
    isolated: bool | None = None
    max_pods: int = MAX_PODS
    # the cluster's network plan; None: read the API server's ConfigMap (waiting until it exists)
    network: ClusterNetwork | None = None
    # "auto" (bridge as root, else host), "bridge" or "host"; "host" by default so that nothing touches the
    # machine's network unless asked (the CLI passes "auto")
    pod_network_mode: str = "host"
    # tests only: the network namespace the node's network lives in (see create_pod_network)
    host_netns: str | None = None
    # False (the default, as the kubelet): pods keep running when the agent stops, for the next start to adopt
    stop_pods_on_exit: bool = False
    # seconds between refreshes of mounted configMaps/secrets/downward API files (the kubelet's --sync-frequency)
    sync_frequency: float = 60.0


NetworkFactory = Callable[[AgentConfig, ClusterNetwork], PodNetwork]
RoutesFor = Callable[[list[dict[str, Any]]], list[NodeRoute]]


def _default_network(config: AgentConfig, cluster: ClusterNetwork) -> PodNetwork:
    return create_pod_network(
        config.data_dir,
        config.node_name,
        config.node_ip,
        cluster,
        mode=config.pod_network_mode,
        host_netns=config.host_netns,
    )


class Agent:
    """`network_factory` / `routes_for` replace the real pod network (tests)."""

    def __init__(
        self,
        client: Client,
        config: AgentConfig,
        *,
        network_factory: NetworkFactory | None = None,
        routes_for: RoutesFor | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self._network_factory = network_factory or _default_network
        self._routes_for = routes_for or node_routes
        self.network: PodNetwork | None = None

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        write_identity(config.data_dir, config.node_name)
        runtime = ProcessRuntime(
            config.data_dir / "runtime",
            isolated=config.isolated,
            cgroup_root=cgroup_root(config.node_name, config.data_dir),
        )
        await runtime.start()
        isolation = runtime.isolation_note
        if isolation:
            log.warning("container isolation is limited: %s", isolation)
        recorder = EventRecorder(self.client, "kubelet", config.node_name)
        cluster = config.network or await read_cluster_network(self.client, RealClock())
        network = self.network = self._network_factory(config, cluster)
        networking = NodeNetworking(network, cluster, files_root=config.data_dir / "pod-files")
        pods = PodManager(
            self.client,
            runtime,
            recorder,
            node_name=config.node_name,
            node_ip=config.node_ip,
            log_root=config.data_dir / "pods",
            networking=networking,
            sync_frequency=config.sync_frequency,
        )
        prometheus = AgentMetrics(component_registry(), runtime, node_name=config.node_name)
        prometheus.track(pods.pods)
        kubelet = KubeletServer(
            runtime,
            pods,
            ssl_context=config.kubelet_ssl_context,
            host=config.kubelet_bind_address,
            port=config.kubelet_port,
            authorize=authorize_api_server if config.kubelet_ssl_context is not None else None,
            stats=StatsCollector(runtime, node_name=config.node_name),
            prometheus=prometheus,
        )
        try:
            kubelet_port = await kubelet.start()
            node = NodeStatusManager(
                self.client,
                node_name=config.node_name,
                node_ip=config.node_ip,
                kubelet_port=kubelet_port,
                labels=config.labels,
                isolation=isolation,
                data_dir=config.data_dir,
                max_pods=config.max_pods,
            )
            await node.register()
            async with asyncio.TaskGroup() as group:
                group.create_task(recorder.run())
                group.create_task(node.run())
                group.create_task(pods.run())
                group.create_task(self._run_network(networking, node))
                if on_ready is not None:
                    on_ready()
        finally:
            log.info("agent stopping", extra={"node": config.node_name})
            await asyncio.shield(self._stop(pods, kubelet, recorder, runtime, network))

    async def _run_network(self, networking: NodeNetworking, node: NodeStatusManager) -> None:
        """Start the pod network (bridge: once the node has its pod CIDR), report its mode on the Node,
        then keep the routes to other nodes in sync until cancelled."""
        network, clock = networking.network, RealClock()
        pod_cidr = None
        if network.mode == "bridge":
            pod_cidr = await wait_for_pod_cidr(self.client, self.config.node_name, clock)
        delay = 0.2
        while True:
            try:
                await network.start(pod_cidr)
                break
            except NetworkError as exc:  # e.g. nft or ip missing for a moment; retried with back-off
                log.error("starting the pod network failed", extra={"error": str(exc)})
                await clock.sleep(delay)
                delay = min(delay * 2, 10.0)
        networking.ready.set()
        if network.note:
            log.warning("pods share the node's network", extra={"note": network.note})
        log.info("pod network started", extra={"mode": network.mode, "pod_cidr": pod_cidr})
        await node.report_network(NetworkReport(network.mode, network.note))
        await RouteSync(self.client, network, routes_for=self._routes_for, clock=clock).run()

    async def _stop(
        self,
        pods: PodManager,
        kubelet: KubeletServer,
        recorder: EventRecorder,
        runtime: ProcessRuntime,
        network: PodNetwork,
    ) -> None:
        try:
            await pods.shutdown(stop_pods=self.config.stop_pods_on_exit)
            if self.config.stop_pods_on_exit:
                await runtime.remove_all()
                # the pods are gone, so are their network namespaces and addresses (the node's bridge stays)
                await network.cleanup_orphans(set())
        finally:
            await network.close()
            await kubelet.close()
            try:
                await asyncio.wait_for(recorder.flush(), 5)
            except Exception:  # supervision point: events are best effort at shutdown
                log.warning("events not flushed at shutdown")
            await runtime.close()
