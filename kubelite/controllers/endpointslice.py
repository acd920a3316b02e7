"""The EndpointSlice controller: discovery.k8s.io/v1 EndpointSlices for every Service with a selector
(upstream's pkg/controller/endpointslice; the decision is `endpointslice_reconcile.plan_slices`).

Contracts:

* Keys are Services (`ns/name`). Service events enqueue the Service; pod events enqueue every Service
  of the pod's namespace whose selector matches the pod's old or new labels; events on slices managed by
  this controller enqueue the Service they name; Node add/delete and zone-label changes enqueue every
  Service with a selector (zones and pods skipped for a missing Node depend on them).
* Services without a selector, and `ExternalName` Services, get no slices from this controller; slices
  other writers own (other `managed-by`) are never touched. When a Service is gone, loses its selector or
  becomes ExternalName, the slices this controller manages for it are deleted (the garbage collector
  would take them too, through their ownerReference; deleting them here also covers slices left behind
  by an older Service uid and a controller restart).
* The slice cache may lag behind this controller's own writes. `SliceTracker` remembers the generation
  of every slice written and the slices deleted; while the cache shows an older state the sync is
  skipped (the slice event that brings the cache up to date enqueues the Service again), so a lagging
  cache never produces duplicate slices. Updates carry the cached resourceVersion (409 → retry).
* Pods whose Node is not known are left out and the sync fails after writing (retried with back-off),
  as upstream, unless the Service publishes not-ready addresses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kubelite.client.interface import builtin
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.endpointslice_reconcile import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    MAX_ENDPOINTS_PER_SLICE,
    SERVICE_NAME_LABEL,
    SlicePlan,
    plan_slices,
)
from kubelite.controllers.servicehandlers import ServicePodHandlers
from kubelite.controllers.servicepods import (
    ZONE_LABEL,
    TriggerTimeTracker,
    is_namespace_terminating,
    pods_selected,
    service_selector,
)
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import labels_of, name_of, namespace_of

log = logging.getLogger(__name__)

SERVICES = builtin("", "services")
PODS = builtin("", "pods")
NODES = builtin("", "nodes")
ENDPOINT_SLICES = builtin("discovery.k8s.io", "endpointslices")

SLICE_SERVICE_INDEX = "endpointslice-controller/service"
STALE_RETRY_SECONDS = 1.0


class NodeNotFound(Exception):
    """Pods of the Service name Nodes the cache does not know yet; the sync is retried."""


def slice_service_index(slice_: dict[str, Any]) -> list[str]:
    """`ns/service` for slices this controller manages; nothing for others."""
    labels = labels_of(slice_)
    service = labels.get(SERVICE_NAME_LABEL)
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or not service:
        return []
    return [f"{namespace_of(slice_)}/{service}"]


class SliceTracker:
    """What this controller last wrote per Service: slice name → generation, or None for a slice it
    deleted. `stale()` says the cache has not caught up with those writes yet."""

    def __init__(self) -> None:
        self._written: dict[str, dict[str, int | None]] = {}

    def wrote(self, service_key: str, slice_: dict[str, Any]) -> None:
        meta = slice_.get("metadata") or {}
        self._written.setdefault(service_key, {})[str(meta.get("name"))] = int(meta.get("generation") or 0)

    def deleting(self, service_key: str, name: str) -> None:
        self._written.setdefault(service_key, {})[name] = None

    def observed_deletion(self, service_key: str, name: str) -> None:
        written = self._written.get(service_key)
        if written is not None:
            written.pop(name, None)

    def forget(self, service_key: str) -> None:
        self._written.pop(service_key, None)

    def stale(self, service_key: str, cached: Iterable[dict[str, Any]]) -> bool:
        by_name = {name_of(s): s for s in cached}
        for name, generation in (self._written.get(service_key) or {}).items():
            found = by_name.get(name)
            if generation is None:
                if found is not None:
                    return True
            elif found is None or int((found.get("metadata") or {}).get("generation") or 0) < generation:
                return True
        return False


class EndpointSliceController(ServicePodHandlers, Controller):
    """See the module docstring."""

    name = "endpointslice-controller"

    def __init__(self, context: ControllerContext, *, max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> None:
        super().__init__(context)
        self.max_endpoints_per_slice = max_endpoints_per_slice
        self.tracker = SliceTracker()
        self.trigger_times = TriggerTimeTracker()
        self.services = self.informer(SERVICES)
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.slices = self.informer(ENDPOINT_SLICES)
        self.slices.add_index(SLICE_SERVICE_INDEX, slice_service_index)
        self.services.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), self.enqueue)
        self.pods.add_handler(self._on_pod, self._on_pod_update, self._on_pod)
        self.nodes.add_handler(self._on_node, self._on_node_update, self._on_node)
        self.slices.add_handler(self._on_slice, lambda _old, new: self._on_slice(new), self._on_slice_delete)

    # -- handlers -----------------------------------------------------------------------------------

    def _on_node(self, _node: dict[str, Any]) -> None:
        for service in self.services.list():
            if service_selector(service) is not None:
                self.enqueue(service)

    def _on_node_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if labels_of(old).get(ZONE_LABEL) != labels_of(new).get(ZONE_LABEL):
            self._on_node(new)

    def _on_slice(self, slice_: dict[str, Any]) -> None:
        for service_key in slice_service_index(slice_):
            self.enqueue_key(service_key)

    def _on_slice_delete(self, slice_: dict[str, Any]) -> None:
        for service_key in slice_service_index(slice_):
            self.tracker.observed_deletion(service_key, name_of(slice_))
            self.enqueue_key(service_key)

    # -- the sync -----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        cached = self.slices.by_index(SLICE_SERVICE_INDEX, key)
        if self.tracker.stale(key, cached):
            log.debug("endpoint slice cache is behind this controller's writes", extra={"service": key})
            self.queue.add_after(key, STALE_RETRY_SECONDS)
            return
        service = self.services.get(key)
        selector = service_selector(service) if service is not None else None
        if service is None or selector is None:
            if service is None:
                self.trigger_times.forget(key)
            await self._apply(key, SlicePlan(delete=list(cached)))
            return
        pods = pods_selected(selector, self.pods.by_index("namespace", namespace_of(service)))
        trigger = self.trigger_times.compute(key, service, pods)
        nodes = {name_of(node): node for node in self.nodes.list()}
        plan = plan_slices(
            service, pods, cached, nodes=nodes, trigger_time=trigger, max_per_slice=self.max_endpoints_per_slice
        )
        await self._apply(key, plan)
        if plan.missing_nodes:
            raise NodeNotFound(f"skipping pods of Service {key}: Nodes not found: {', '.join(plan.missing_nodes)}")

    async def _apply(self, key: str, plan: SlicePlan) -> None:
        """Creates, then updates, then deletes (as upstream's finalize), each recorded in the tracker."""
        namespace = key.partition("/")[0]
        for body in plan.create:
            try:
                created = await self.client.create(ENDPOINT_SLICES, body, namespace)
            except ApiError as exc:
                if is_namespace_terminating(exc):
                    return
                raise
            self.tracker.wrote(key, created)
        for body in plan.update:
            updated = await self.client.update(ENDPOINT_SLICES, body, namespace)
            self.tracker.wrote(key, updated)
        for doomed in plan.delete:
            name = name_of(doomed)
            try:
                await self.client.delete(ENDPOINT_SLICES, name, namespace)
            except ApiError as exc:
                if exc.code != 404:
                    raise
            self.tracker.deleting(key, name)
        if not plan.empty:
            log.debug(
                "endpoint slices written",
                extra={
                    "service": key,
                    "created": len(plan.create),
                    "updated": len(plan.update),
                    "deleted": len(plan.delete),
                },
            )


__all__ = [
    "ENDPOINT_SLICES",
    "EndpointSliceController",
    "NodeNotFound",
    "SliceTracker",
    "slice_service_index",
]
