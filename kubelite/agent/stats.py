"""Resource usage of the node and of its pods' containers: what the kubelet serves as its Summary API
(``/stats/summary``) and its resource metrics endpoint (``/metrics/resource``, read by the API server's
metrics scraper to serve ``metrics.k8s.io``).

Contracts:

* `StatsCollector.snapshot()` reads, at one moment, the node totals (``/proc/stat``, ``/proc/meminfo``)
  and the runtime's `stats()` for every RUNNING container of every READY sandbox.  A container that
  disappears or fails to report in between is left out (its pod stays, possibly with no containers);
  a snapshot never fails because one container did.
* CPU is cumulative (nanoseconds of CPU time); `usage_nano_cores` is the rate since the collector's
  previous snapshot of the same container (or node), ``None`` on the first one — the kubelet's
  ``usageNanoCores`` has the same "needs two samples" rule.  Rates are never negative: a counter
  that went backwards (a restarted container under the same id) starts over.
* Rendering (`kubelite.agent.statsformat`) is pure: the same snapshot always gives the same bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from kubelite.agent.runtime.interface import ContainerRuntimeError, ContainerState, Runtime, SandboxState

__all__ = [
    "ContainerUsage",
    "NodeUsage",
    "PodUsage",
    "StatsCollector",
    "StatsSnapshot",
    "nano_cores",
    "parse_meminfo",
    "parse_proc_stat",
    "read_node_usage",
]

log = logging.getLogger(__name__)

NANOS = 1_000_000_000
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    name: str
    container_id: str
    start_time: datetime | None
    timestamp: datetime
    cpu_usage_ns: int
    memory_working_set_bytes: int
    memory_usage_bytes: int
    usage_nano_cores: int | None = None


@dataclass(frozen=True, slots=True)
class PodUsage:
    namespace: str
    name: str
    uid: str
    start_time: datetime | None
    containers: tuple[ContainerUsage, ...]


@dataclass(frozen=True, slots=True)
class NodeUsage:
    name: str
    start_time: datetime | None
    timestamp: datetime
    cpu_usage_ns: int
    memory_working_set_bytes: int
    memory_usage_bytes: int
    memory_available_bytes: int | None = None
    memory_rss_bytes: int | None = None
    usage_nano_cores: int | None = None


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    node: NodeUsage
    pods: tuple[PodUsage, ...]


# -- node totals (pure parsers + one blocking reader) -------------------------------------------------


def parse_proc_stat(text: str, *, ticks_per_second: int = TICKS_PER_SECOND) -> tuple[int, datetime | None]:
    """(busy CPU time in ns, boot time) from ``/proc/stat``.  Busy = every state but idle and iowait;
    guest time is already counted in user time, so it is not added again."""
    cpu_ns, boot = 0, None
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "cpu":
            values = [int(v) for v in fields[1:]]
            busy = sum(values[:8]) - values[3] - (values[4] if len(values) > 4 else 0)
            cpu_ns = busy * NANOS // ticks_per_second
        elif fields[0] == "btime" and len(fields) > 1:
            boot = datetime.fromtimestamp(int(fields[1]), UTC)
    return cpu_ns, boot


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` as bytes per key."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return values


def node_memory(meminfo: dict[str, int]) -> tuple[int, int, int | None, int | None]:
    """(usage, working set, available, rss) as the kubelet derives them from the root cgroup:
    usage = total - free, working set = usage - inactive file cache."""
    total, free = meminfo.get("MemTotal", 0), meminfo.get("MemFree", 0)
    usage = max(0, total - free)
    working_set = max(0, usage - meminfo.get("Inactive(file)", 0))
    return usage, working_set, meminfo.get("MemAvailable"), meminfo.get("AnonPages")


def read_node_usage(name: str, *, proc: Path = Path("/proc")) -> NodeUsage:
    """The node's totals now.  Blocking: call from a worker thread."""
    cpu_ns, boot = parse_proc_stat((proc / "stat").read_text())
    usage, working_set, available, rss = node_memory(parse_meminfo((proc / "meminfo").read_text()))
    return NodeUsage(
        name=name,
        start_time=boot,
        timestamp=datetime.now(UTC),
        cpu_usage_ns=cpu_ns,
        memory_working_set_bytes=working_set,
        memory_usage_bytes=usage,
        memory_available_bytes=available,
        memory_rss_bytes=rss,
    )


# -- rates ----------------------------------------------------------------------------------------------


def nano_cores(previous: tuple[int, datetime] | None, cpu_ns: int, at: datetime) -> int | None:
    """CPU use in nanocores between `previous` (cpu ns, time) and now; None without a usable previous
    sample (none, same instant, or a counter that went backwards)."""
    if previous is None:
        return None
    before, then = previous
    elapsed = (at - then).total_seconds()
    if elapsed <= 0 or cpu_ns < before:
        return None
    return int((cpu_ns - before) / elapsed)


class StatsCollector:
    """Takes snapshots of `runtime`'s containers and the node; remembers each one's last CPU sample
    for `usage_nano_cores`.  Safe to call concurrently (the memory is last-writer-wins)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        node_name: str = "",
        read_node: Callable[[str], NodeUsage] = read_node_usage,
    ) -> None:
        self.runtime = runtime
        self.node_name = node_name
        self._read_node = read_node
        self._last: dict[str, tuple[int, datetime]] = {}

    def _with_rate(self, key: str, cpu_ns: int, at: datetime) -> int | None:
        rate = nano_cores(self._last.get(key), cpu_ns, at)
        self._last[key] = (cpu_ns, at)
        return rate

    async def snapshot(self) -> StatsSnapshot:
        node = await asyncio.to_thread(self._read_node, self.node_name)
        node = replace(node, usage_nano_cores=self._with_rate("", node.cpu_usage_ns, node.timestamp))
        pods: list[PodUsage] = []
        seen: set[str] = {""}
        for sandbox in await self.runtime.list_pod_sandboxes():
            if sandbox.state != SandboxState.READY:
                continue
            containers: list[ContainerUsage] = []
            statuses = await self.runtime.list_containers(sandbox_id=sandbox.id, state=ContainerState.RUNNING)
            for status in sorted(statuses, key=lambda s: s.name):
                try:
                    stats = await self.runtime.stats(status.id)
                except ContainerRuntimeError:
                    continue  # gone since the listing
                seen.add(status.id)
                containers.append(
                    ContainerUsage(
                        name=status.name,
                        container_id=status.id,
                        start_time=status.started_at,
                        timestamp=stats.timestamp,
                        cpu_usage_ns=stats.cpu_usage_ns,
                        memory_working_set_bytes=stats.memory_working_set_bytes,
                        memory_usage_bytes=stats.memory_usage_bytes,
                        usage_nano_cores=self._with_rate(status.id, stats.cpu_usage_ns, stats.timestamp),
                    )
                )
            pods.append(
                PodUsage(
                    namespace=sandbox.namespace,
                    name=sandbox.name,
                    uid=sandbox.uid,
                    start_time=sandbox.created_at,
                    containers=tuple(containers),
                )
            )
        for key in set(self._last) - seen:  # bounded: only what exists now is remembered
            with contextlib.suppress(KeyError):
                del self._last[key]
        pods.sort(key=lambda p: (p.namespace, p.name, p.uid))
        return StatsSnapshot(node=node, pods=tuple(pods))
