"""Stopping everything a node agent left running: `kubelite cleanup --data-dir DIR`.

An agent that stops (SIGTERM) or dies leaves its pods running, as the kubelet does, so that the next start
adopts them instead of restarting every container. Taking a node out of service for good — or a test
ending — needs the opposite: this kills every container the agent's runtime records, removes their sandboxes
and cgroups, and deletes the pods' network namespaces and addresses. The node bridge, its routes and the
proxy's rules stay (they belong to the machine's network set-up, and a new agent takes them over).

The agent records its node name and cgroup root in ``<data dir>/agent.json`` at start, so the clean-up finds
exactly that agent's containers, never another agent's on the same machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from kubelite.agent.network.bridge import BridgeNetwork
from kubelite.agent.network.factory import bridge_unavailable_reason
from kubelite.agent.runtime.process import ProcessRuntime
from kubelite.machinery.network import ClusterNetwork

log = logging.getLogger(__name__)

IDENTITY_FILE = "agent.json"


def cgroup_root(node_name: str, data_dir: Path) -> str:
    """One cgroup subtree per agent (node name + data dir): clean-up of one agent never touches another's."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
    return f"kubelite/{node_name}-{digest}"


def write_identity(data_dir: Path, node_name: str) -> None:
    path = data_dir / IDENTITY_FILE
    path.write_text(json.dumps({"nodeName": node_name, "cgroupRoot": cgroup_root(node_name, data_dir)}))


@dataclass
class CleanupReport:
    containers: int = 0
    sandboxes: int = 0
    pod_networks: list[str] = field(default_factory=list)


async def cleanup_node(data_dir: Path) -> CleanupReport:
    """Idempotent; a data dir where no agent ever ran is left as it is."""
    report = CleanupReport()
    identity_path = data_dir / IDENTITY_FILE
    if not identity_path.exists():
        return report
    identity = json.loads(identity_path.read_text())
    runtime = ProcessRuntime(data_dir / "runtime", cgroup_root=identity["cgroupRoot"])
    await runtime.start()  # adopts what is recorded, so remove_all reaches running containers
    try:
        report.containers = len(await runtime.list_containers())
        report.sandboxes = len(await runtime.list_pod_sandboxes())
        await runtime.remove_all()
        await runtime.cleanup_orphans()
    finally:
        await runtime.close()
    if bridge_unavailable_reason() is None:
        network = BridgeNetwork(data_dir, identity["nodeName"], ClusterNetwork())
        report.pod_networks = await network.cleanup_orphans(set())
    log.info(
        "node cleaned up",
        extra={"containers": report.containers, "sandboxes": report.sandboxes, "networks": len(report.pod_networks)},
    )
    return report
