"""The HPA's replica calculation for resource metrics (upstream's replica calculator), pure.

Given the pods the target's selector picks, their metrics (milli-units per pod) and a target, it
proposes a replica count:

* Pods being deleted or Failed are ignored; Pending pods count as unready; for CPU, a pod counts as
  unready while it is not Ready or still in its CPU initialization period (5 min after start) without
  a sample taken a whole window after it became Ready, or when it has never been Ready within the
  initial readiness delay (30 s).  Pods without a metric are "missing".
* usage ratio = current / target over the ready pods with metrics.  Without unready or missing pods:
  within the tolerance (0.1) nothing changes, else ceil(ratio × ready pods).
* Otherwise the ratio is recomputed with missing pods at 0 % on a scale-up and at 100 % of their request
  (or the target when it is above 100 %) on a scale-down, and unready pods at 0 % on a scale-up; when
  that ratio is within the tolerance or flips the direction, nothing changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubelite.machinery.meta import parse_time
from kubelite.machinery.quantity import QuantityError, milli_value

__all__ = [
    "CPU_INITIALIZATION_PERIOD",
    "INITIAL_READINESS_DELAY",
    "TOLERANCE",
    "MetricsError",
    "PodGroups",
    "PodMetric",
    "Proposal",
    "group_pods",
    "pod_requests",
    "raw_resource_replicas",
    "resource_replicas",
    "utilization_ratio",
]

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = timedelta(minutes=5)
INITIAL_READINESS_DELAY = timedelta(seconds=30)


class MetricsError(Exception):
    """The calculation cannot be done; the message is upstream's."""


@dataclass(frozen=True, slots=True)
class PodMetric:
    value: int  # milli-units
    timestamp: datetime
    window: timedelta


@dataclass(frozen=True, slots=True)
class Proposal:
    replicas: int
    utilization: int | None  # percent of request (Utilization targets)
    raw_average: int  # milli-units per pod
    timestamp: datetime | None


@dataclass
class PodGroups:
    ready: int
    unready: set[str]
    missing: set[str]
    ignored: set[str]


def _name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))


def _ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition
    return None


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def group_pods(
    pods: Iterable[Mapping[str, Any]],
    metrics: Mapping[str, PodMetric],
    resource: str,
    *,
    now: datetime,
    cpu_initialization_period: timedelta = CPU_INITIALIZATION_PERIOD,
    initial_readiness_delay: timedelta = INITIAL_READINESS_DELAY,
) -> PodGroups:
    groups = PodGroups(0, set(), set(), set())
    for pod in pods:
        name = _name(pod)
        status = pod.get("status") or {}
        if (pod.get("metadata") or {}).get("deletionTimestamp") or status.get("phase") == "Failed":
            groups.ignored.add(name)
            continue
        if status.get("phase") == "Pending":
            groups.unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            groups.missing.add(name)
            continue
        if resource == "cpu":
            condition = _ready_condition(pod)
            started = _time(status.get("startTime"))
            if condition is None or started is None:
                unready = True
            else:
                transition = _time(condition.get("lastTransitionTime")) or started
                if started + cpu_initialization_period > now:
                    unready = condition.get("status") == "False" or metric.timestamp < transition + metric.window
                else:
                    unready = condition.get("status") == "False" and started + initial_readiness_delay > transition
            if unready:
                groups.unready.add(name)
                continue
        groups.ready += 1
    return groups


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    return [*(spec.get("containers") or []), *sidecars]


def pod_requests(pods: Iterable[Mapping[str, Any]], resource: str, container: str = "") -> dict[str, int]:
    """Each pod's request for `resource` in milli-units (regular containers and sidecars, or only
    `container`); MetricsError when a counted container has no request."""
    requests: dict[str, int] = {}
    for pod in pods:
        total = 0
        for c in _containers(pod):
            if container and c.get("name") != container:
                continue
            raw = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            try:
                value = milli_value(str(raw)) if raw is not None else 0
            except QuantityError:
                value = 0
            if value == 0:
                raise MetricsError(f"missing request for {resource} in container {c.get('name')} of Pod {_name(pod)}")
            total += value
        requests[_name(pod)] = total
    return requests


def utilization_ratio(metrics: Mapping[str, int], requests: Mapping[str, int], target: int) -> tuple[float, int, int]:
    """(usage ratio, utilization %, raw average) over the pods with both a metric and a request."""
    metrics_total = requests_total = entries = 0
    for name, value in metrics.items():
        if name not in requests:
            continue
        metrics_total += value
        requests_total += requests[name]
        entries += 1
    if requests_total == 0:
        raise MetricsError("no metrics returned matched known pods")
    utilization = metrics_total * 100 // requests_total
    return utilization / target, utilization, metrics_total // entries


def _average_ratio(metrics: Mapping[str, int], target: int) -> tuple[float, int]:
    average = sum(metrics.values()) // len(metrics)
    return average / target, average


def _prepare(
    pods: list[Mapping[str, Any]], metrics: Mapping[str, PodMetric], resource: str, now: datetime, **periods: timedelta
) -> tuple[PodGroups, dict[str, int]]:
    if not pods:
        raise MetricsError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now=now, **periods)
    values = {n: m.value for n, m in metrics.items() if n not in groups.ignored and n not in groups.unready}
    if not values:
        raise MetricsError("did not receive metrics for targeted pods (pods might be unready)")
    return groups, values


def _finish(current: int, ratio: float, new_ratio: float, count: int, tolerance: float) -> int:
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    replicas = math.ceil(new_ratio * count)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


def resource_replicas(
    current: int,
    target_utilization: int,
    resource: str,
    pods: list[Mapping[str, Any]],
    metrics: Mapping[str, PodMetric],
    *,
    now: datetime,
    container: str = "",
    tolerance: float = TOLERANCE,
    **periods: timedelta,
) -> Proposal:
    """A Utilization target (percent of request)."""
    timestamp = min((m.timestamp for m in metrics.values()), default=None)
    groups, values = _prepare(pods, metrics, resource, now, **periods)
    requests = pod_requests(pods, resource, container)
    ratio, utilization, raw = utilization_ratio(values, requests, target_utilization)
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return Proposal(current, utilization, raw, timestamp)
        return Proposal(math.ceil(ratio * groups.ready), utilization, raw, timestamp)
    if groups.missing:
        fallback = max(100, target_utilization)
        for name in groups.missing:
            if ratio < 1.0:
                values[name] = requests.get(name, 0) * fallback // 100
            elif ratio > 1.0:
                values[name] = 0
    if scale_up_with_unready:
        for name in groups.unready:
            values[name] = 0
    new_ratio, _, _ = utilization_ratio(values, requests, target_utilization)
    return Proposal(_finish(current, ratio, new_ratio, len(values), tolerance), utilization, raw, timestamp)


def raw_resource_replicas(
    current: int,
    target_milli: int,
    resource: str,
    pods: list[Mapping[str, Any]],
    metrics: Mapping[str, PodMetric],
    *,
    now: datetime,
    tolerance: float = TOLERANCE,
    **periods: timedelta,
) -> Proposal:
    """An AverageValue target (milli-units per pod)."""
    timestamp = min((m.timestamp for m in metrics.values()), default=None)
    groups, values = _prepare(pods, metrics, resource, now, **periods)
    ratio, average = _average_ratio(values, target_milli)
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return Proposal(current, None, average, timestamp)
        return Proposal(math.ceil(ratio * groups.ready), None, average, timestamp)
    for name in groups.missing:
        values[name] = target_milli if ratio < 1.0 else 0
    if scale_up_with_unready:
        for name in groups.unready:
            values[name] = 0
    new_ratio, _ = _average_ratio(values, target_milli)
    return Proposal(_finish(current, ratio, new_ratio, len(values), tolerance), None, average, timestamp)
