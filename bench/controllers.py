"""Controller benchmark: a large Deployment on one real node, created and then rolled over.

    .venv/bin/python bench/controllers.py                  # 1000 replicas
    .venv/bin/python bench/controllers.py --replicas 200

Starts a real `kubelite server` (controllers, scheduler and the embedded agent with the process runtime,
`--max-pods` raised to fit) and applies a Deployment whose pods run `sleep`.  It prints how long until
every replica exists (the ReplicaSet reports them all) and until the Deployment is Available with all of
them ready; then it changes the pod template and prints how long the rolling update (25% surge, 25%
unavailable: the defaults) takes until every replica is updated and available and the old ReplicaSet has
no pods left.  Everything runs in a temporary directory and is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubelite.client.http import HttpClient
from kubelite.client.interface import builtin
from kubelite.testing.server import ServerProcess

DEPLOYMENTS = builtin("apps", "deployments")
REPLICASETS = builtin("apps", "replicasets")
PODS = builtin("", "pods")
NODES = builtin("", "nodes")
POLL = 0.5


def deployment(replicas: int) -> dict[str, Any]:
    container = {"name": "app", "image": "busybox", "command": ["sleep", "3600"], "env": [{"name": "V", "value": "1"}]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bench"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]},
            },
        },
    }


async def until(check: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll `check` until truthy; returns the monotonic time it first was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return time.monotonic()
        await asyncio.sleep(POLL)
    raise RuntimeError(f"timed out waiting for {what}")


async def run(replicas: int, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-") as tmp:
        server = ServerProcess(
            Path(tmp),
            extra_args=[
                "--node-name",
                "bench-node",
                "--node-ip",
                "127.0.0.1",
                "--kubelet-port",
                "0",
                "--max-pods",
                str(replicas * 2 + 50),
            ],
        ).start()
        try:
            async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
                await _wait_node_ready(client)

                async def status() -> dict[str, Any]:
                    deploy = await client.get(DEPLOYMENTS, "bench", "default")
                    return dict(deploy.get("status") or {}, generation=deploy["metadata"]["generation"])

                async def all_created() -> bool:
                    sets = (await client.list(REPLICASETS, "default"))["items"]
                    return sum((rs.get("status") or {}).get("replicas", 0) for rs in sets) >= replicas

                async def available(generation: int) -> bool:
                    s = await status()
                    return bool(
                        s.get("observedGeneration") == generation
                        and s.get("updatedReplicas") == replicas
                        and s.get("availableReplicas") == replicas
                        and s.get("replicas") == replicas
                    )

                begin = time.monotonic()
                await client.create(DEPLOYMENTS, deployment(replicas), "default")
                created = await until(all_created, timeout, "every replica to exist")
                ready = await until(lambda: available(1), timeout, "the Deployment to be Available")
                print(
                    f"deployment of {replicas} replicas on 1 node (process runtime): all pods created after "
                    f"{created - begin:.1f} s, all available after {ready - begin:.1f} s "
                    f"({replicas / (ready - begin):.1f} pods/s)"
                )

                patch = {
                    "spec": {
                        "template": {"spec": {"containers": [{"name": "app", "env": [{"name": "V", "value": "2"}]}]}}
                    }
                }
                begin = time.monotonic()
                updated = await client.patch(DEPLOYMENTS, "bench", patch, "default", patch_type="strategic")
                generation = updated["metadata"]["generation"]
                rolled = await until(lambda: available(generation), timeout, "the rollout to finish")

                async def old_pods_gone() -> bool:
                    pods = (await client.list(PODS, "default"))["items"]
                    return len(pods) == replicas

                drained = await until(old_pods_gone, timeout, "the old pods to be gone")
                print(
                    f"rolling update of {replicas} replicas (maxSurge 25%, maxUnavailable 25%): all updated and "
                    f"available after {rolled - begin:.1f} s, old pods gone after {drained - begin:.1f} s"
                )
        finally:
            server.stop(timeout=120)


async def _wait_node_ready(client: HttpClient) -> None:
    for _ in range(600):
        try:
            node = await client.get(NODES, "bench-node")
            if any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])):
                return
        except Exception:  # not registered yet
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the node never became Ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed for each phase")
    args = parser.parse_args()
    asyncio.run(run(args.replicas, args.timeout))


if __name__ == "__main__":
    main()
