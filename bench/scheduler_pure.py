"""Scheduling decisions per second of the pure algorithm (no queue, no API, no binding).

    .venv/bin/python bench/scheduler_pure.py [--nodes 100 1000] [--decisions 2000] [--pods-per-node 10]

Each cluster has identical nodes (labelled, a quarter with a PreferNoSchedule taint, every tenth
cordoned) already running `--pods-per-node` pods.  A run schedules `--decisions` pods of a few
shapes (plain, nodeSelector, preferred affinity, host port) with the default plugins, assuming each
decision into the snapshot, as the shell will.  Figures: with upstream's adaptive
percentageOfNodesToScore (the default) and with every node scored; then the cost of a pod that fits
nowhere (every node filtered, the preemption dry run, the message).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from typing import Any

from kubelite.scheduler.algorithm import schedule
from kubelite.scheduler.framework import PodInfo, Snapshot
from kubelite.scheduler.plugins import default_plugins


def make_node(i: int) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if i % 4 == 0:
        spec["taints"] = [{"key": "spot", "value": "true", "effect": "PreferNoSchedule"}]
    if i % 10 == 9:
        spec["unschedulable"] = True
    return {
        "metadata": {
            "name": f"node-{i:05}",
            "labels": {"zone": f"zone-{i % 3}", "kubernetes.io/hostname": f"node-{i:05}"},
        },
        "spec": spec,
        "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250", "ephemeral-storage": "500Gi"}},
    }


def make_pod(i: int, *, shape: int, node: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "app",
        "image": "app:1",
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    }
    spec: dict[str, Any] = {"containers": [container], "priority": 0}
    if shape == 1:
        spec["nodeSelector"] = {"zone": "zone-1"}
    elif shape == 2:
        term = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["zone-2"]}]}
        spec["affinity"] = {
            "nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "preference": term}]}
        }
    elif shape == 3:
        container["ports"] = [{"containerPort": 8080, "hostPort": 20000 + i % 1000}]
    if node is not None:
        spec["nodeName"] = node
    return {"metadata": {"name": f"pod-{i}", "namespace": "bench", "uid": f"uid-{i}"}, "spec": spec}


def build(nodes: int, pods_per_node: int) -> Snapshot:
    node_objs = [make_node(i) for i in range(nodes)]
    running = [
        make_pod(-1 - n * pods_per_node - k, shape=0, node=node_objs[n]["metadata"]["name"])
        for n in range(nodes)
        for k in range(pods_per_node)
    ]
    return Snapshot.from_objects(node_objs, running)


def run(nodes: int, decisions: int, pods_per_node: int, percentage: int) -> tuple[float, float]:
    snapshot = build(nodes, pods_per_node)
    filters, scores = default_plugins()
    rng = random.Random(1)
    pods = [PodInfo(make_pod(i, shape=i % 4)) for i in range(decisions)]
    start_index = 0
    gc.collect()
    began = time.perf_counter()
    for pod in pods:
        result = schedule(
            pod, snapshot, filters, scores, rng=rng, percentage_of_nodes_to_score=percentage, start_index=start_index
        )
        assert result.suggested_host is not None, result.message()
        snapshot.assume(pod, result.suggested_host)
        start_index = result.next_start_index
    elapsed = time.perf_counter() - began
    return decisions / elapsed, elapsed / decisions * 1000


def unschedulable_cost(nodes: int, pods_per_node: int, repeats: int) -> tuple[float, str]:
    snapshot = build(nodes, pods_per_node)
    filters, scores = default_plugins()
    pod = make_pod(0, shape=0)
    pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "100"
    info = PodInfo(pod)
    began = time.perf_counter()
    for _ in range(repeats):
        result = schedule(info, snapshot, filters, scores)
    elapsed = time.perf_counter() - began
    return elapsed / repeats * 1000, result.message()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--pods-per-node", type=int, default=10)
    args = parser.parse_args()
    print(f"{'nodes':>6} {'nodes scored':>14} {'decisions/s':>12} {'ms/decision':>12}")
    for nodes in args.nodes:
        for percentage, label in ((0, "adaptive"), (100, "100%")):
            rate, ms = run(nodes, args.decisions, args.pods_per_node, percentage)
            print(f"{nodes:>6} {label:>14} {rate:>12.0f} {ms:>12.2f}")
    for nodes in args.nodes:
        ms, message = unschedulable_cost(nodes, args.pods_per_node, repeats=20)
        print(f"{nodes:>6} nodes, pod fits nowhere: {ms:.2f} ms/attempt — {message[:90]}…")


if __name__ == "__main__":
    main()
