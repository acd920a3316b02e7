"""Rendering a `StatsSnapshot` the way the kubelet serves it (pure functions):

* `summary(snapshot)`: the Summary API object of ``GET /stats/summary`` (stats/v1alpha1: ``node``
  with ``cpu``/``memory``, ``pods[]`` with ``podRef``, per-container and per-pod ``cpu``/``memory``);
  pod totals are the sums over its containers.
* `resource_metrics(snapshot)`: the Prometheus text of ``GET /metrics/resource``, every sample with
  its timestamp in milliseconds (metrics-server uses it as the sample time).  Containers are labelled
  ``container``, ``namespace``, ``pod``; pods ``namespace``, ``pod``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubelite.agent.stats import ContainerUsage, StatsSnapshot

__all__ = ["RESOURCE_METRICS_CONTENT_TYPE", "resource_metrics", "summary"]

RESOURCE_METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _cpu(at: datetime, cpu_ns: int, nano_cores: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"time": _time(at)}
    if nano_cores is not None:
        out["usageNanoCores"] = nano_cores
    out["usageCoreNanoSeconds"] = cpu_ns
    return out


def _memory(
    at: datetime, working_set: int, usage: int, *, available: int | None = None, rss: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"time": _time(at)}
    if available is not None:
        out["availableBytes"] = available
    out["usageBytes"] = usage
    out["workingSetBytes"] = working_set
    if rss is not None:
        out["rssBytes"] = rss
    return out


def _container(c: ContainerUsage) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name}
    if c.start_time is not None:
        out["startTime"] = _time(c.start_time)
    out["cpu"] = _cpu(c.timestamp, c.cpu_usage_ns, c.usage_nano_cores)
    out["memory"] = _memory(c.timestamp, c.memory_working_set_bytes, c.memory_usage_bytes)
    return out


def summary(snapshot: StatsSnapshot) -> dict[str, Any]:
    node = snapshot.node
    node_out: dict[str, Any] = {"nodeName": node.name, "systemContainers": []}
    if node.start_time is not None:
        node_out["startTime"] = _time(node.start_time)
    node_out["cpu"] = _cpu(node.timestamp, node.cpu_usage_ns, node.usage_nano_cores)
    node_out["memory"] = _memory(
        node.timestamp,
        node.memory_working_set_bytes,
        node.memory_usage_bytes,
        available=node.memory_available_bytes,
        rss=node.memory_rss_bytes,
    )
    pods: list[dict[str, Any]] = []
    for pod in snapshot.pods:
        entry: dict[str, Any] = {"podRef": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid}}
        if pod.start_time is not None:
            entry["startTime"] = _time(pod.start_time)
        entry["containers"] = [_container(c) for c in pod.containers]
        if pod.containers:
            at = max(c.timestamp for c in pod.containers)
            rates = [c.usage_nano_cores for c in pod.containers]
            entry["cpu"] = _cpu(
                at,
                sum(c.cpu_usage_ns for c in pod.containers),
                None if any(r is None for r in rates) else sum(r for r in rates if r is not None),
            )
            entry["memory"] = _memory(
                at,
                sum(c.memory_working_set_bytes for c in pod.containers),
                sum(c.memory_usage_bytes for c in pod.containers),
            )
        pods.append(entry)
    return {"node": node_out, "pods": pods}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) and not value.is_integer() else str(int(value))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


_HELP = {
    "container_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed by the container in core-seconds"),
    "container_memory_working_set_bytes": ("gauge", "Current working set of the container in bytes"),
    "container_start_time_seconds": ("gauge", "Start time of the container since unix epoch in seconds"),
    "node_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed by the node in core-seconds"),
    "node_memory_working_set_bytes": ("gauge", "Current working set of the node in bytes"),
    "pod_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed by the pod in core-seconds"),
    "pod_memory_working_set_bytes": ("gauge", "Current working set of the pod in bytes"),
    "resource_scrape_error": ("gauge", "1 if there was an error while getting container metrics, 0 otherwise"),
    "scrape_error": ("gauge", "1 if there was an error while getting container metrics, 0 otherwise"),
}


def resource_metrics(snapshot: StatsSnapshot, *, scrape_error: bool = False) -> str:
    samples: dict[str, list[str]] = {name: [] for name in _HELP}

    def add(name: str, labels: str, value: float, at: datetime | None) -> None:
        suffix = f" {_ms(at)}" if at is not None else ""
        samples[name].append(f"{name}{labels} {_number(value)}{suffix}")

    for pod in snapshot.pods:
        for c in pod.containers:
            labels = _labels(container=c.name, namespace=pod.namespace, pod=pod.name)
            add("container_cpu_usage_seconds_total", labels, c.cpu_usage_ns / 1e9, c.timestamp)
            add("container_memory_working_set_bytes", labels, c.memory_working_set_bytes, c.timestamp)
            if c.start_time is not None:
                add("container_start_time_seconds", labels, c.start_time.timestamp(), c.start_time)
        if pod.containers:
            at = max(c.timestamp for c in pod.containers)
            labels = _labels(namespace=pod.namespace, pod=pod.name)
            add("pod_cpu_usage_seconds_total", labels, sum(c.cpu_usage_ns for c in pod.containers) / 1e9, at)
            add("pod_memory_working_set_bytes", labels, sum(c.memory_working_set_bytes for c in pod.containers), at)
    node = snapshot.node
    add("node_cpu_usage_seconds_total", "", node.cpu_usage_ns / 1e9, node.timestamp)
    add("node_memory_working_set_bytes", "", node.memory_working_set_bytes, node.timestamp)
    add("resource_scrape_error", "", 1 if scrape_error else 0, None)
    add("scrape_error", "", 1 if scrape_error else 0, None)
    lines: list[str] = []
    for name, (kind, text) in _HELP.items():
        if not samples[name]:
            continue
        lines.append(f"# HELP {name} [STABLE] {text}" if name != "scrape_error" else f"# HELP {name} [ALPHA] {text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(samples[name])
    return "\n".join(lines) + "\n"
