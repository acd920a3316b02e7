"""The in-memory metrics store behind ``metrics.k8s.io`` (metrics-server's storage, in short).

Contracts:

* `decode(samples)` turns one node's ``/metrics/resource`` samples into a `NodeBatch` (pure).
* `MetricsStore.store(batches)` replaces the whole store with one scrape round: a node (and its pods)
  absent from `batches` — it did not answer — is dropped, so stale numbers are never served.  For
  every node and container it keeps the last two samples; a sample with the same timestamp as the
  last one is not a new sample, and a container whose start time changed (restarted) or whose CPU
  counter went backwards starts over.
* Usage is a rate over the window between the two samples: CPU in nanocores, memory the last working
  set.  Something seen only once has no usage yet — except a container that appeared since the node's
  previous scrape, whose start time serves as its first sample (zero CPU), as metrics-server does, so
  new pods show up after one scrape.
* Reads (`node`, `pod`) never block and return immutable values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kubelite.apiserver.metrics.prometheus import Sample

__all__ = ["MetricsStore", "NodeBatch", "Point", "Usage", "decode", "usage_between"]

PodKey = tuple[str, str]  # (namespace, pod)


@dataclass(frozen=True, slots=True)
class Point:
    timestamp: datetime
    cpu_seconds: float  # cumulative
    memory_bytes: int  # working set
    start_time: datetime | None = None


@dataclass
class NodeBatch:
    node: Point | None = None
    pods: dict[PodKey, dict[str, Point]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Usage:
    timestamp: datetime
    window: timedelta
    cpu_nano_cores: int
    memory_bytes: int


def _time(ms: int | None, fallback: datetime) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else fallback


def decode(samples: list[Sample], *, now: datetime) -> NodeBatch:
    """Group one node's samples; a container needs both its CPU and memory sample to count."""
    batch = NodeBatch()
    node_cpu: Sample | None = None
    node_mem: Sample | None = None
    cpu: dict[tuple[str, str, str], Sample] = {}
    mem: dict[tuple[str, str, str], Sample] = {}
    start: dict[tuple[str, str, str], float] = {}
    for s in samples:
        if s.name == "node_cpu_usage_seconds_total":
            node_cpu = s
        elif s.name == "node_memory_working_set_bytes":
            node_mem = s
        elif s.name.startswith("container_"):
            key = (s.labels.get("namespace", ""), s.labels.get("pod", ""), s.labels.get("container", ""))
            if not all(key):
                continue
            if s.name == "container_cpu_usage_seconds_total":
                cpu[key] = s
            elif s.name == "container_memory_working_set_bytes":
                mem[key] = s
            elif s.name == "container_start_time_seconds":
                start[key] = s.value
    if node_cpu is not None and node_mem is not None:
        batch.node = Point(_time(node_cpu.timestamp_ms, now), node_cpu.value, int(node_mem.value))
    for key, c in cpu.items():
        m = mem.get(key)
        if m is None:
            continue
        started = datetime.fromtimestamp(start[key], UTC) if key in start else None
        point = Point(_time(c.timestamp_ms, now), c.value, int(m.value), started)
        batch.pods.setdefault((key[0], key[1]), {})[key[2]] = point
    return batch


def usage_between(prev: Point, last: Point) -> Usage | None:
    window = last.timestamp - prev.timestamp
    if window <= timedelta(0) or last.cpu_seconds < prev.cpu_seconds:
        return None
    rate = (last.cpu_seconds - prev.cpu_seconds) / window.total_seconds()
    return Usage(last.timestamp, window, int(rate * 1e9), last.memory_bytes)


Pair = tuple[Point | None, Point]


def _advance(old: Pair | None, new: Point, *, fresh_start: bool) -> Pair:
    """The (previous, last) pair after `new` arrives (see the module docstring)."""
    if old is None:
        if fresh_start and new.start_time is not None and new.start_time < new.timestamp:
            return Point(new.start_time, 0.0, 0, new.start_time), new
        return None, new
    last = old[1]
    if new.start_time != last.start_time or new.cpu_seconds < last.cpu_seconds:
        return None, new
    if new.timestamp <= last.timestamp:
        return old
    return last, new


class MetricsStore:
    def __init__(self) -> None:
        self._nodes: dict[str, Pair] = {}
        self._containers: dict[PodKey, dict[str, Pair]] = {}
        self._pod_node: dict[PodKey, str] = {}

    def store(self, batches: dict[str, NodeBatch]) -> None:
        nodes: dict[str, Pair] = {}
        containers: dict[PodKey, dict[str, Pair]] = {}
        pod_node: dict[PodKey, str] = {}
        for name, batch in batches.items():
            known_node = name in self._nodes
            if batch.node is not None:
                nodes[name] = _advance(self._nodes.get(name), batch.node, fresh_start=False)
            for pod, points in batch.pods.items():
                old = self._containers.get(pod, {})
                containers[pod] = {
                    c: _advance(old.get(c), p, fresh_start=known_node and c not in old) for c, p in points.items()
                }
                pod_node[pod] = name
        self._nodes, self._containers, self._pod_node = nodes, containers, pod_node

    def node(self, name: str) -> Usage | None:
        pair = self._nodes.get(name)
        if pair is None or pair[0] is None:
            return None
        return usage_between(pair[0], pair[1])

    def pod(self, namespace: str, name: str) -> list[tuple[str, Usage]] | None:
        """Usage per container (sorted by name), or None unless every container has a usage."""
        pairs = self._containers.get((namespace, name))
        if not pairs:
            return None
        out: list[tuple[str, Usage]] = []
        for container in sorted(pairs):
            prev, last = pairs[container]
            usage = usage_between(prev, last) if prev is not None else None
            if usage is None:
                return None
            out.append((container, usage))
        return out
