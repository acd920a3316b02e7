"""A single-node cluster (server + embedded controllers, scheduler, agent and proxy) for end-to-end scenarios.

The node runs inside a network namespace the test creates (its pods get their own namespaces and addresses on the
node's bridge there), so nothing reaches the machine's own network; the test process, kubectl and the kubernetes
client reach the API server through a loopback forwarder (`ServerProcess.expose_on_loopback`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelite.testing.cluster import NODE_NAME, wait_for
from kubelite.testing.netns import NetnsLab, skip_reason
from kubelite.testing.server import ServerProcess


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    reason = skip_reason()
    assert reason is None, f"e2e clusters run in network namespaces: {reason}"
    with NetnsLab() as lab:
        host = lab.add_host("node")
        data_dir = Path(tmp_path_factory.mktemp("kubelite"))
        process = ServerProcess(
            data_dir,
            netns=host.netns,
            expose_on_loopback=True,
            extra_args=[
                "--bind-address",
                host.ip,
                "--node-name",
                NODE_NAME,
                "--node-ip",
                host.ip,
                "--kubelet-port",
                "0",
                # auto-scaling scenarios: scrape metrics and sync autoscalers every 5 s (15 s by default)
                "--metrics-resolution",
                "5",
                "--hpa-sync-period",
                "5",
                # volume scenarios: mounted ConfigMaps follow changes within 5 s (60 s by default)
                "--sync-frequency",
                "5",
                "--default-local-storage-path",
                str(data_dir / "storage"),
            ],
        ).start()
        try:
            wait_for(lambda: _node_ready(process), timeout=60, what="the node to be Ready")
            yield process
        finally:
            process.stop()


def _node_ready(server: ServerProcess) -> bool:
    result = server.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
    if result.returncode != 0:
        return False
    conditions = json.loads(result.stdout)["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
