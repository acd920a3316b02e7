"""The node agent's ``/metrics`` (Prometheus text) on the kubelet endpoint, under the kubelet's names:

* ``kubelet_node_name{node}`` (always 1);
* ``kubelet_running_pods``: pods with a READY sandbox; ``kubelet_running_containers{container_state}``:
  containers by runtime state (``created``, ``running``, ``exited``, ``unknown``) — both read from the
  runtime when scraped, as the kubelet reads its runtime cache;
* ``kubelet_pod_start_duration_seconds``: from the agent first seeing a pod (its informer's add) to the
  pod's status going from Pending to Running, as the kubelet measures it (its ``firstSeenTime`` to the
  first Running status).  A pod first seen already Running (an agent restart adopting it) is not
  measured, nor one that never runs;
* ``process_*`` when the registry came from `component_registry`.

Each agent has its own registry: several agents run in one test process, and the kubelet's metrics are
the node's, not the API server's.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector

from kubelite.agent.runtime.interface import ContainerState, Runtime, SandboxState
from kubelite.client.clock import Clock, RealClock
from kubelite.client.informer import Informer

__all__ = ["POD_START_BUCKETS", "AgentMetrics", "component_registry"]

# the classic text format, as kube-apiserver and the kubelet serve it (every scraper reads it)
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# the kubelet's podStartupDurationBuckets
POD_START_BUCKETS = (
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0,
    480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0,
)  # fmt: skip
CONTAINER_STATES = {
    ContainerState.CREATED: "created",
    ContainerState.RUNNING: "running",
    ContainerState.EXITED: "exited",
    ContainerState.UNKNOWN: "unknown",
}
PENDING, RUNNING = "Pending", "Running"


def component_registry() -> CollectorRegistry:
    """A fresh registry with the ``process_*`` collector, for one agent's endpoint."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    return registry


def _uid(pod: dict[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or PENDING)


class AgentMetrics:
    """The kubelet metrics of one node: `track` the agent's pod informer, serve `handle` on ``/metrics``."""

    def __init__(
        self, registry: CollectorRegistry, runtime: Runtime, *, node_name: str = "", clock: Clock | None = None
    ) -> None:
        self.registry = registry
        self.runtime = runtime
        self._clock = clock or RealClock()
        self._first_seen: dict[str, float] = {}  # pod uid → when first seen, until it runs or goes
        node = Gauge("kubelet_node_name", "The node's name. The count is always 1.", ["node"], registry=registry)
        if node_name:
            node.labels(node_name).set(1)
        self.running_pods = Gauge(
            "kubelet_running_pods", "Number of pods that have a running pod sandbox", registry=registry
        )
        self.running_containers = Gauge(
            "kubelet_running_containers",
            "Number of containers currently running",
            ["container_state"],
            registry=registry,
        )
        self.pod_start_duration = Histogram(
            "kubelet_pod_start_duration_seconds",
            "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
            buckets=POD_START_BUCKETS,
            registry=registry,
        )

    # -- pod start latency (informer handlers: quick, non-blocking) ------------------------------------

    def track(self, pods: Informer) -> None:
        """Measure pod start latency from `pods` (the agent's informer of the pods bound to its node)."""
        pods.add_handler(self.pod_seen, self.pod_changed, self.pod_gone)

    def pod_seen(self, pod: dict[str, Any]) -> None:
        uid = _uid(pod)
        if uid and _phase(pod) == PENDING and uid not in self._first_seen:
            self._first_seen[uid] = self._clock.now()

    def pod_changed(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        uid = _uid(new)
        if uid not in self._first_seen:
            return
        phase = _phase(new)
        if phase == RUNNING and _phase(old) == PENDING:
            self.pod_start_duration.observe(self._clock.now() - self._first_seen.pop(uid))
        elif phase != PENDING:  # finished without ever being seen Running
            del self._first_seen[uid]

    def pod_gone(self, pod: dict[str, Any]) -> None:
        self._first_seen.pop(_uid(pod), None)

    # -- scraping ----------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the running pods and containers from the runtime into the gauges."""
        sandboxes = await self.runtime.list_pod_sandboxes()
        self.running_pods.set(sum(1 for s in sandboxes if s.state == SandboxState.READY))
        counts = dict.fromkeys(CONTAINER_STATES.values(), 0)
        for container in await self.runtime.list_containers():
            counts[CONTAINER_STATES.get(container.state, "unknown")] += 1
        for state, count in counts.items():
            self.running_containers.labels(state).set(count)

    async def handle(self, request: web.Request) -> web.Response:
        """``GET /metrics`` on the kubelet endpoint."""
        await self.refresh()
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = TEXT_CONTENT_TYPE
        return response
