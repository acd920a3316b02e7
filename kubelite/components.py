"""Wiring of the components `kubelite server` runs beside the API server (controller manager, scheduler,
node agent) and of `kubelite agent` on a joining machine.  Like `cli`, it only builds and connects parts.

In-process components reach the API over HTTPS on loopback with their own certificates from the cluster
CA (decision 0003): the controllers and the scheduler as the admin identity, the embedded agent as
``system:node:<name>``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from kubelite.agent.agent import Agent, AgentConfig
from kubelite.agent.network.factory import bridge_unavailable_reason
from kubelite.agent.nodenet import read_cluster_network, wait_for_pod_cidr
from kubelite.agent.tls import kubelet_server_context
from kubelite.apiserver.auth import certs
from kubelite.apiserver.kubeletproxy import kubelet_client_context
from kubelite.client.clock import RealClock
from kubelite.client.events import EventRecorder
from kubelite.client.http import HttpClient
from kubelite.client.kubeconfig import KubeConfig, load_kubeconfig
from kubelite.controllers.manager import ControllerManager, ControllerOptions
from kubelite.machinery.network import ClusterNetwork, gateway_address
from kubelite.proxy.dns import DnsConfig, run_dns
from kubelite.proxy.proxy import ProxyConfig, run_proxy
from kubelite.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)

CONTROL_PLANE_ROLE_LABEL = "node-role.kubernetes.io/control-plane"
KUBELET_CLIENT_NAME = "kube-apiserver-kubelet-client"


@dataclass
class NodeOptions:
    node_name: str
    node_ip: str
    data_dir: Path
    kubelet_port: int = 10250
    kubelet_bind_address: str = "0.0.0.0"
    labels: dict[str, str] = field(default_factory=dict)
    max_pods: int = 110
    pod_network_mode: str = "auto"
    proxy_mode: str = "auto"
    sync_frequency: float = 60.0


def default_node_name() -> str:
    return socket.gethostname().lower()


def default_node_ip() -> str:
    """The address of the interface that holds the default route (no packet is sent: a UDP
    `connect` only picks the route), or loopback on a machine without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def kubelet_client_ssl_context(pki: certs.ClusterPki) -> ssl.SSLContext:
    """What the API server presents to kubelet endpoints (group system:masters, checked by the agent)."""
    cert_pem, key_pem = certs.issue_client_certificate(pki, KUBELET_CLIENT_NAME, ["system:masters"])
    return kubelet_client_context(pki.ca_cert_pem, cert_pem, key_pem)


def _loopback_client(url: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> HttpClient:
    return HttpClient(
        KubeConfig(
            server=url, certificate_authority_data=ca_pem, client_certificate_data=cert_pem, client_key_data=key_pem
        )
    )


async def run_scheduler(url: str, pki: certs.ClusterPki) -> None:
    """The default scheduler as the admin identity until cancelled."""
    client = _loopback_client(url, pki.ca_cert_pem, pki.admin_cert_pem, pki.admin_key_pem)
    recorder = EventRecorder(client, "default-scheduler")
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(recorder.run())
            group.create_task(Scheduler(client, recorder=recorder).run())
    finally:
        await client.close()


async def run_controller_manager(url: str, pki: certs.ClusterPki, options: ControllerOptions) -> None:
    """Every workload controller (one shared set of informers) as the admin identity until cancelled."""
    client = _loopback_client(url, pki.ca_cert_pem, pki.admin_cert_pem, pki.admin_key_pem)
    try:
        await ControllerManager(client, options=replace(options, ca_pem=pki.ca_cert_pem)).run()
    finally:
        await client.close()


async def run_embedded_agent(
    url: str, pki: certs.ClusterPki, options: NodeOptions, on_ready: Callable[[], None] | None = None
) -> None:
    """The server's own node: credentials issued directly from the cluster CA."""
    cert_pem, key_pem = certs.issue_client_certificate(pki, f"system:node:{options.node_name}", ["system:nodes"])
    serving_cert, serving_key = certs.issue_serving_certificate(
        pki, [options.node_name, socket.gethostname()], [options.node_ip]
    )
    client = _loopback_client(url, pki.ca_cert_pem, cert_pem, key_pem)
    labels = {CONTROL_PLANE_ROLE_LABEL: "", **options.labels}
    try:
        config = _agent_config(options, labels, pki.ca_cert_pem, serving_cert, serving_key)
        await _run_node(client, options, config, on_ready)
    finally:
        await client.close()


async def run_joined_agent(options: NodeOptions, on_ready: Callable[[], None] | None = None) -> None:
    """An agent whose credentials `kubelite.agent.join` wrote into its data directory."""
    kubeconfig = load_kubeconfig(options.data_dir / "kubeconfig.yaml")
    tls = options.data_dir / "tls"
    assert kubeconfig.certificate_authority_data is not None
    client = HttpClient(kubeconfig)
    try:
        config = _agent_config(
            options,
            options.labels,
            kubeconfig.certificate_authority_data,
            (tls / "kubelet.crt").read_bytes(),
            (tls / "kubelet.key").read_bytes(),
        )
        await _run_node(client, options, config, on_ready)
    finally:
        await client.close()


async def _run_node(
    client: HttpClient, options: NodeOptions, config: AgentConfig, on_ready: Callable[[], None] | None
) -> None:
    """A node's parts beside each other: the agent and the service proxy, both on the cluster's network
    plan (read once from the API server's ConfigMap, so every node agrees with the server's flags)."""
    cluster = await read_cluster_network(client, RealClock())
    proxy = ProxyConfig(
        node_name=options.node_name, node_ips=(options.node_ip,), cluster=cluster, mode=options.proxy_mode
    )
    async with asyncio.TaskGroup() as group:
        group.create_task(Agent(client, replace(config, network=cluster)).run(on_ready))
        group.create_task(run_proxy(client, proxy))
        unavailable = "forced by --pod-network host" if options.pod_network_mode == "host" else None
        if options.pod_network_mode == "auto":
            unavailable = bridge_unavailable_reason()
        if unavailable is None:
            group.create_task(_run_node_dns(client, options, cluster))
        else:
            log.warning("no cluster DNS on this node: pods use the node's network", extra={"reason": unavailable})


async def _run_node_dns(client: HttpClient, options: NodeOptions, cluster: ClusterNetwork) -> None:
    """This node's DNS server, on its bridge address (the first of its pod CIDR), once it has one."""
    pod_cidr = await wait_for_pod_cidr(client, options.node_name, RealClock())
    config = DnsConfig(node_name=options.node_name, listen_ip=gateway_address(pod_cidr), cluster=cluster)
    await run_dns(client, config)


def _agent_config(
    options: NodeOptions, labels: dict[str, str], ca_pem: bytes, serving_cert: bytes, serving_key: bytes
) -> AgentConfig:
    return AgentConfig(
        node_name=options.node_name,
        node_ip=options.node_ip,
        data_dir=options.data_dir,
        kubelet_bind_address=options.kubelet_bind_address,
        kubelet_port=options.kubelet_port,
        kubelet_ssl_context=kubelet_server_context(ca_pem, serving_cert, serving_key),
        labels=labels,
        max_pods=options.max_pods,
        pod_network_mode=options.pod_network_mode,
        sync_frequency=options.sync_frequency,
    )
