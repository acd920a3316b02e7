"""The node lifecycle controller: notices nodes that stopped reporting and taints them
(upstream's pkg/controller/nodelifecycle, one zone).  Decisions are in `nodelifecycle_policy`.

Contracts:

* Health is judged from what this controller observed, not from remote clocks (as upstream's
  probeTimestamp): a node's probe time is when it was first seen or when its Lease `renewTime` or its
  Ready `lastHeartbeatTime` last changed.  Once `node_monitor_grace_period` (40 s) has passed since
  (`node_startup_grace_period`, 60 s, for a node that never posted a Ready condition) its watched
  conditions become Unknown (`stale_conditions`) through `nodes/status`.
* When Ready leaves True the node gets the event `NodeNotReady` and its pods are marked not ready
  (their Ready condition False, as upstream MarkPodsNotReady) so Services drop them; while Ready is
  Unknown that is kept level-based (no kubelet is there to disagree).
* NoSchedule taints follow the conditions and `spec.unschedulable` at once.  NoExecute
  `not-ready`/`unreachable` taints: removals and swaps at once; a first taint waits in a rate-limited
  queue (`node_eviction_rate` per second; `secondary_node_eviction_rate` or none in partial
  disruption; none in full disruption, where every existing one is removed instead).  Zone state
  changes are logged as upstream logs them; `zone_state` holds the current one.
* Every node key is looked at again when its grace period would run out, so no polling is needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from kubelite.client.interface import builtin
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.nodelifecycle_policy import (
    STATE_FULL_DISRUPTION,
    STATE_INITIAL,
    NoExecutePlan,
    condition,
    eviction_rate,
    no_execute_plan,
    no_schedule_taints,
    ready_status,
    stale_conditions,
    with_taints,
    zone_state,
)
from kubelite.controllers.taints import NO_EXECUTE, NODE_NAME_INDEX, pod_node_index
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, name_of, namespace_of, rfc3339

log = logging.getLogger(__name__)

NODES = builtin("", "nodes")
PODS = builtin("", "pods")
LEASES = builtin("coordination.k8s.io", "leases")
NODE_LEASE_NAMESPACE = "kube-node-lease"

DEFAULT_GRACE_PERIOD = 40.0
DEFAULT_STARTUP_GRACE_PERIOD = 60.0
DEFAULT_EVICTION_RATE = 0.1
DEFAULT_SECONDARY_EVICTION_RATE = 0.01
DEFAULT_UNHEALTHY_ZONE_THRESHOLD = 0.55
DEFAULT_LARGE_CLUSTER_SIZE = 50


@dataclass
class _Health:
    probe: float  # clock.now() of the last observed heartbeat
    lease_renew: str = ""
    status_heartbeat: str = ""
    ready: str = ""  # the Ready status last acted on


class NodeLifecycleController(Controller):
    """Keys are node names.  Runs a second task, the rate-limited NoExecute tainter."""

    name = "node-lifecycle-controller"

    def __init__(
        self,
        context: ControllerContext,
        *,
        node_monitor_grace_period: float = DEFAULT_GRACE_PERIOD,
        node_startup_grace_period: float = DEFAULT_STARTUP_GRACE_PERIOD,
        node_eviction_rate: float = DEFAULT_EVICTION_RATE,
        secondary_node_eviction_rate: float = DEFAULT_SECONDARY_EVICTION_RATE,
        unhealthy_zone_threshold: float = DEFAULT_UNHEALTHY_ZONE_THRESHOLD,
        large_cluster_size_threshold: int = DEFAULT_LARGE_CLUSTER_SIZE,
    ) -> None:
        super().__init__(context)
        self.grace_period = node_monitor_grace_period
        self.startup_grace_period = node_startup_grace_period
        self.eviction_rate = node_eviction_rate
        self.secondary_eviction_rate = secondary_node_eviction_rate
        self.unhealthy_zone_threshold = unhealthy_zone_threshold
        self.large_cluster_size = large_cluster_size_threshold
        self.nodes = self.informer(NODES)
        self.leases = self.informer(LEASES, namespace=NODE_LEASE_NAMESPACE)
        self.pods = self.informer(PODS)
        self.pods.add_index(NODE_NAME_INDEX, pod_node_index)
        self.nodes.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), self._node_deleted)
        self.leases.add_handler(self._lease_changed, lambda _old, new: self._lease_changed(new), None)
        self.zone_state = STATE_INITIAL
        self._health: dict[str, _Health] = {}
        self._taint_queue: OrderedDict[str, None] = OrderedDict()  # nodes waiting for a first NoExecute taint
        self._taint_wakeup = asyncio.Event()

    # -- handlers -----------------------------------------------------------------------------------

    def _lease_changed(self, lease: dict[str, Any]) -> None:
        self.enqueue_key(name_of(lease))

    def _node_deleted(self, node: dict[str, Any]) -> None:
        self._health.pop(name_of(node), None)
        self._taint_queue.pop(name_of(node), None)
        self._refresh_zone()

    # -- the work -----------------------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(super().run())
            tasks.create_task(self._tainter())

    async def reconcile(self, key: str) -> None:
        cached = self.nodes.get(key)
        if cached is None:
            return
        node = cached
        left = self._observe(node)
        if left <= 0:
            conditions = stale_conditions(node, timestamp=rfc3339(self.clock.utcnow()))
            if conditions is not None:
                log.info("node stopped posting status", extra={"controller": self.name, "node": key})
                node = deep_copy(node)
                node.setdefault("status", {})["conditions"] = conditions
                node = await self.client.update(NODES, node, subresource="status")
        else:
            self.queue.add_after(key, left)
        await self._readiness_changed(node)
        node = await self._sync_no_schedule(node)
        self._refresh_zone(node)
        await self._sync_no_execute(node, no_execute_plan(node, self.zone_state))

    def _observe(self, node: dict[str, Any]) -> float:
        """Record heartbeats seen in the node and its Lease; seconds left of its grace period."""
        name, now = name_of(node), self.clock.now()
        lease = self.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}")
        renew = str(((lease or {}).get("spec") or {}).get("renewTime") or "")
        ready = condition(node, "Ready")
        heartbeat = str((ready or {}).get("lastHeartbeatTime") or "")
        health = self._health.get(name)
        if health is None:
            health = self._health[name] = _Health(now, renew, heartbeat)
        elif renew != health.lease_renew or heartbeat != health.status_heartbeat:
            health.probe, health.lease_renew, health.status_heartbeat = now, renew, heartbeat
        grace = self.grace_period if ready is not None else self.startup_grace_period
        return health.probe + grace - now

    async def _readiness_changed(self, node: dict[str, Any]) -> None:
        """`NodeNotReady` once when Ready leaves True; pods marked not ready then and while Unknown."""
        name, status = name_of(node), ready_status(node)
        health = self._health[name]
        was, health.ready = health.ready, status
        left_ready = was == "True" and status != "True"
        if left_ready:
            self.recorder.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        if left_ready or status == "Unknown":
            await self._mark_pods_not_ready(name)

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        stamp = rfc3339(self.clock.utcnow())
        for pod in self.pods.by_index(NODE_NAME_INDEX, node_name):
            ready = next(
                (c for c in (pod.get("status") or {}).get("conditions") or () if c.get("type") == "Ready"), None
            )
            if (
                ready is None
                or ready.get("status") == "False"
                or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            ):
                continue
            log.info(
                "marking pod not ready", extra={"controller": self.name, "pod": f"{namespace_of(pod)}/{name_of(pod)}"}
            )
            body = {"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": stamp}]}}
            try:
                await self.client.patch(
                    PODS, name_of(pod), body, namespace_of(pod), patch_type="strategic", subresource="status"
                )
            except ApiError as exc:
                if exc.code != 404:
                    raise
            self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")

    async def _sync_no_schedule(self, node: dict[str, Any]) -> dict[str, Any]:
        add, remove = no_schedule_taints(node)
        return await self._write_taints(node, add, remove)

    async def _write_taints(
        self, node: dict[str, Any], add: list[dict[str, Any]], remove: list[dict[str, Any]]
    ) -> dict[str, Any]:
        taints = with_taints(node, add, remove, timestamp=rfc3339(self.clock.utcnow()))
        if taints is None:
            return node
        updated = deep_copy(node)
        spec = updated.setdefault("spec", {})
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)
        return await self.client.update(NODES, updated)

    async def _sync_no_execute(self, node: dict[str, Any], plan: NoExecutePlan) -> None:
        name = name_of(node)
        if plan.queued:
            if name not in self._taint_queue:
                self._taint_queue[name] = None
                self._taint_wakeup.set()
            return
        self._taint_queue.pop(name, None)
        if not plan.is_noop:
            add = [{"key": plan.add, "effect": NO_EXECUTE}] if plan.add else []
            await self._write_taints(node, add, [{"key": k, "effect": NO_EXECUTE} for k in plan.remove])

    # -- zone state -----------------------------------------------------------------------------------

    def _refresh_zone(self, fresh: dict[str, Any] | None = None) -> None:
        statuses = {name_of(n): ready_status(n) for n in self.nodes.list()}
        if fresh is not None:
            statuses[name_of(fresh)] = ready_status(fresh)
        new = (
            zone_state(statuses.values(), unhealthy_threshold=self.unhealthy_zone_threshold)
            if statuses
            else STATE_INITIAL
        )
        old, self.zone_state = self.zone_state, new
        if new == old:
            return
        if new == STATE_FULL_DISRUPTION:
            log.warning("Controller detected that all Nodes are not-Ready. Entering master disruption mode")
        elif old == STATE_FULL_DISRUPTION:
            log.info("Controller detected that some Nodes are Ready. Exiting master disruption mode")
        log.info(
            "Controller detected that zone is now in new state", extra={"zone": "", "newState": new, "oldState": old}
        )
        for name in statuses:  # taints may have to change everywhere
            self.enqueue_key(name)
        self._taint_wakeup.set()

    def current_rate(self) -> float:
        return eviction_rate(
            self.zone_state,
            len(self.nodes.list()),
            primary=self.eviction_rate,
            secondary=self.secondary_eviction_rate,
            large_cluster=self.large_cluster_size,
        )

    async def _tainter(self) -> None:
        """Adds first NoExecute taints, at most `current_rate()` nodes per second (burst 1)."""
        for informer in (self.nodes, self.leases, self.pods):
            await informer.wait_for_sync()
        while True:
            rate = self.current_rate()
            if not self._taint_queue or rate <= 0:
                self._taint_wakeup.clear()
                await self._taint_wakeup.wait()
                continue
            name, _ = self._taint_queue.popitem(last=False)
            node = self.nodes.get(name)
            if node is None:
                continue
            plan = no_execute_plan(node, self.zone_state)
            if plan.add:
                try:
                    await self._write_taints(
                        node,
                        [{"key": plan.add, "effect": NO_EXECUTE}],
                        [{"key": k, "effect": NO_EXECUTE} for k in plan.remove],
                    )
                except Exception as exc:  # supervision point: the tainter outlives a failed write
                    log.warning(
                        "cannot taint node; retrying", extra={"controller": self.name, "node": name, "error": str(exc)}
                    )
                    self._taint_queue[name] = None
                else:
                    log.info(
                        "node tainted for eviction", extra={"controller": self.name, "node": name, "taint": plan.add}
                    )
            await self.clock.sleep(1.0 / rate)


__all__ = ["NodeLifecycleController"]
