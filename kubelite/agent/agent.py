"""The node agent: one object that owns a node's parts and their lifetimes.

Parts: the container runtime, the event recorder, the kubelet endpoint (logs/exec/attach/port-forward for
the API server), the Node object with its Lease heartbeat, and the pod manager.  `run()` starts them in
dependency order inside one TaskGroup; cancelling it is shutdown, and shutdown stops every pod's
processes: containers never outlive their agent (a killed agent's leftovers are recovered or removed by the
next start, see `PodManager`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubelite.agent.node import MAX_PODS, NodeStatusManager
from kubelite.agent.pods.manager import PodManager
from kubelite.agent.runtime.process import ProcessRuntime
from kubelite.agent.streaming.server import KubeletServer
from kubelite.agent.tls import authorize_api_server
from kubelite.client.events import EventRecorder
from kubelite.client.interface import Client

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


class Agent:
    def __init__(self, client: Client, config: AgentConfig) -> None:
        self.client = client
        self.config = config

    def _cgroup_root(self) -> str:
        # one subtree per agent: orphan clean-up of one agent must never touch another agent's containers
        digest = hashlib.sha256(str(self.config.data_dir.resolve()).encode()).hexdigest()[:8]
        return f"kubelite/{self.config.node_name}-{digest}"

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        runtime = ProcessRuntime(config.data_dir / "runtime", isolated=config.isolated, cgroup_root=self._cgroup_root())
        await runtime.start()
        isolation = runtime.isolation_note
        if isolation:
            log.warning("container isolation is limited: %s", isolation)
        recorder = EventRecorder(self.client, "kubelet", config.node_name)
        pods = PodManager(
            self.client,
            runtime,
            recorder,
            node_name=config.node_name,
            node_ip=config.node_ip,
            log_root=config.data_dir / "pods",
        )
        kubelet = KubeletServer(
            runtime,
            pods,
            ssl_context=config.kubelet_ssl_context,
            host=config.kubelet_bind_address,
            port=config.kubelet_port,
            authorize=authorize_api_server if config.kubelet_ssl_context is not None else None,
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
                if on_ready is not None:
                    on_ready()
        finally:
            log.info("agent stopping", extra={"node": config.node_name})
            await asyncio.shield(self._stop(pods, kubelet, recorder, runtime))

    async def _stop(
        self, pods: PodManager, kubelet: KubeletServer, recorder: EventRecorder, runtime: ProcessRuntime
    ) -> None:
        try:
            await pods.shutdown(stop_pods=True)
            await runtime.remove_all()
        finally:
            await kubelet.close()
            try:
                await asyncio.wait_for(recorder.flush(), 5)
            except Exception:  # supervision point: events are best effort at shutdown
                log.warning("events not flushed at shutdown")
            await runtime.close()
