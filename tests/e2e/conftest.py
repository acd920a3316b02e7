"""A single-node cluster (server + embedded scheduler and agent) for end-to-end scenarios."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelite.testing.cluster import NODE_NAME, wait_for
from kubelite.testing.server import ServerProcess


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        Path(tmp_path_factory.mktemp("kubelite")),
        extra_args=["--node-name", NODE_NAME, "--node-ip", "127.0.0.1", "--kubelet-port", "0"],
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
