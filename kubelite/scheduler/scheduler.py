"""`Scheduler`: the imperative shell around the pure scheduling core (kube-scheduler's scheduleOne).

    informers (nodes, pods) ──► SchedulerCache (NodeInfos, assumed pods)  ─┐
                         └────► SchedulingQueue (pending pods)  ──pop──►  schedule() ──► assume ──► bind
                                      ▲                                        │
                                      └── unschedulable / backoff ◄────────────┘ (condition + event)

Contracts:

* Pending pods are those with no `spec.nodeName`, `spec.schedulerName` equal to ours, not
  terminating and not Succeeded/Failed.  Bound, non-terminal pods count on their node.
* One pod is scheduled at a time, synchronously over the cache's live snapshot; the decision is
  assumed in the cache at once, so the next pod sees its resources before the binding lands.
  Bindings (`pods/binding`) run concurrently, at most `max_concurrent_binds` at a time.
* Success: a `Scheduled` event "Successfully assigned <ns>/<pod> to <node>" (the API server sets
  PodScheduled=True on binding).  A pod that fits nowhere gets PodScheduled=False with reason
  `Unschedulable` and the FitError message (patched only when it changed) and a `FailedScheduling`
  Warning event per attempt (the EventRecorder aggregates repeats), then waits in the queue's
  unschedulable set until a cluster event one of its rejecting plugins registered arrives (or
  5 minutes pass) — no polling of the API.  A failed binding forgets the assumption and retries
  the pod after backoff (condition reason `SchedulerError`, a FailedScheduling event), unless the pod
  is gone or bound meanwhile.
* `run()` runs until cancelled; it runs the informer factory and the recorder only if it created
  them (pass shared ones to share watches; then their owner runs them).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

from kubelite.client.clock import Clock, RealClock
from kubelite.client.events import WARNING, EventRecorder
from kubelite.client.informer import Informer, SharedInformerFactory
from kubelite.client.interface import Client, builtin
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import rfc3339
from kubelite.scheduler.algorithm import schedule
from kubelite.scheduler.cache import SchedulerCache, assigned_node
from kubelite.scheduler.events import (
    EVENT_ASSIGNED_POD_ADD,
    EVENT_ASSIGNED_POD_DELETE,
    EVENT_NODE_ADD,
    POD,
    ClusterEvent,
    node_update_events,
    pod_update_action,
)
from kubelite.scheduler.framework import FilterPlugin
from kubelite.scheduler.nodeinfo import PodInfo, is_terminal, pod_key
from kubelite.scheduler.plugins import WeightedScore, default_plugins, events_to_register
from kubelite.scheduler.plugins.volumebinding import VolumeBinding
from kubelite.scheduler.queue import QueuedPodInfo, SchedulingQueue
from kubelite.scheduler.volumebinder import InformerVolumeLister, pre_bind

log = logging.getLogger(__name__)

DEFAULT_SCHEDULER_NAME = "default-scheduler"
REASON_UNSCHEDULABLE = "Unschedulable"
REASON_SCHEDULER_ERROR = "SchedulerError"
MAX_CONCURRENT_BINDS = 16
PENDING_POD_FIELDS = "status.phase!=Succeeded,status.phase!=Failed"  # as upstream's pod informer

NODES = builtin("", "nodes")
PODS = builtin("", "pods")


class Scheduler:
    """See the module docstring.  `plugins` is `(filters, weighted scores)`, default_plugins() if None."""

    def __init__(
        self,
        client: Client,
        *,
        scheduler_name: str = DEFAULT_SCHEDULER_NAME,
        clock: Clock | None = None,
        recorder: EventRecorder | None = None,
        plugins: tuple[Sequence[FilterPlugin], Sequence[WeightedScore]] | None = None,
        informers: SharedInformerFactory | None = None,
        rng: random.Random | None = None,
        max_concurrent_binds: int = MAX_CONCURRENT_BINDS,
    ) -> None:
        self.client = client
        self.scheduler_name = scheduler_name
        self._clock: Clock = clock or RealClock()
        self._own_recorder = recorder is None
        self.recorder = recorder or EventRecorder(client, scheduler_name, clock=self._clock)
        self.filters, self.scores = plugins if plugins is not None else default_plugins()
        self._own_informers = informers is None
        self.informers = informers or SharedInformerFactory(client, clock=self._clock)
        self._rng = rng
        self._binds = asyncio.Semaphore(max_concurrent_binds)
        self.cache = SchedulerCache()
        # the default profile binds volumes too (VolumeBinding reads claims/volumes/classes; PreBind in _bind)
        self.volume_lister = InformerVolumeLister(self.informers) if plugins is None else None
        self.volume_binding = VolumeBinding(self.volume_lister) if self.volume_lister is not None else None
        if self.volume_binding is not None:
            self.filters = [*self.filters, self.volume_binding]
        self.queue = SchedulingQueue(clock=self._clock, events_to_register=events_to_register(self.filters))
        if self.volume_lister is not None:
            self.volume_lister.on_change(self.queue.move_all_to_active_or_backoff)
        self._next_start = 0
        self.nodes: Informer = self.informers.informer(NODES)
        self.pods: Informer = self.informers.informer(PODS, field_selector=PENDING_POD_FIELDS)
        self.nodes.add_handler(self._on_node_add, self._on_node_update, self._on_node_delete)
        self.pods.add_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)

    # -- running ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch, schedule and bind until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            if self._own_informers:
                tasks.create_task(self.informers.run())
            if self._own_recorder:
                tasks.create_task(self.recorder.run())
            await self.nodes.wait_for_sync()
            await self.pods.wait_for_sync()
            if self.volume_lister is not None:
                await self.volume_lister.wait_for_sync()
            log.info("scheduler caches synced", extra={"scheduler": self.scheduler_name})
            while True:
                queued = await self.queue.pop_wait()
                await self._schedule_one(queued, tasks)

    async def _schedule_one(self, queued: QueuedPodInfo, tasks: asyncio.TaskGroup) -> None:
        """One scheduling cycle; the binding cycle continues in `tasks`."""
        info = queued.pod_info
        current = self._current(info)
        if current is None or assigned_node(current) or self.cache.is_assumed(info.key) or not self._wants(current):
            self.queue.done(info.key)  # gone, bound, or no longer ours: nothing to do
            return
        if current is not info.pod:
            info = queued.pod_info = PodInfo(current)
        result = schedule(
            info, self.cache.snapshot, self.filters, self.scores, rng=self._rng, start_index=self._next_start
        )
        self._next_start = result.next_start_index
        if result.suggested_host is None:
            plugins = result.fit_error.diagnosis.unschedulable_plugins if result.fit_error is not None else ()
            reason = REASON_UNSCHEDULABLE if result.error is None else REASON_SCHEDULER_ERROR
            self.queue.add_unschedulable_if_not_present(queued, unschedulable_plugins=plugins)
            await self._record_failure(current, reason, result.message())
            return
        self.cache.assume(info, result.suggested_host)
        await self._binds.acquire()
        tasks.create_task(self._bind(queued, result.suggested_host))

    async def _bind(self, queued: QueuedPodInfo, node: str) -> None:
        info = queued.pod_info
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": info.name, "namespace": info.namespace, "uid": info.pod["metadata"].get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        try:
            if self.volume_binding is not None:
                await pre_bind(self.client, self.volume_binding, info, node)
            await self.client.create_subresource(PODS, info.name, "binding", body, info.namespace)
        except Exception as exc:  # supervision point: any failure means "not bound; retry later"
            self._binds.release()
            await self._bind_failed(queued, exc)
            return
        self._binds.release()
        self.queue.done(info.key)
        self.recorder.event(
            _as_pod(info.pod), "Normal", "Scheduled", f"Successfully assigned {info.namespace}/{info.name} to {node}"
        )

    async def _bind_failed(self, queued: QueuedPodInfo, exc: Exception) -> None:
        info = queued.pod_info
        self.cache.forget(info)
        log.warning("binding failed", extra={"pod": f"{info.namespace}/{info.name}", "error": str(exc)})
        current = self._current(info)
        if current is None or assigned_node(current) or not self._wants(current):
            self.queue.done(info.key)  # deleted or bound by someone else: upstream drops it too
            return
        queued.pod_info = PodInfo(current)
        try:
            self.queue.add_unschedulable_if_not_present(queued)  # no rejecting plugin: plain backoff
        except ValueError:
            pass  # re-queued by an informer event meanwhile
        await self._record_failure(current, REASON_SCHEDULER_ERROR, f'running Bind plugin "DefaultBinder": {exc}')

    async def _record_failure(self, pod: Mapping[str, Any], reason: str, message: str) -> None:
        """FailedScheduling event (every attempt) and PodScheduled=False (only when it changes)."""
        self.recorder.event(_as_pod(pod), WARNING, "FailedScheduling", message)
        condition = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message}
        old = _condition(pod, "PodScheduled")
        if old is not None and all(old.get(k) == v for k, v in condition.items()):
            return
        now = rfc3339(self._clock.utcnow())
        transition = old.get("lastTransitionTime") if old is not None and old.get("status") == "False" else None
        condition = {**condition, "lastTransitionTime": transition or now}
        meta = pod.get("metadata") or {}
        patch = {"metadata": {"uid": meta.get("uid")}, "status": {"conditions": [condition]}}
        try:
            await self.client.patch(
                PODS, meta.get("name", ""), patch, meta.get("namespace"), patch_type="strategic", subresource="status"
            )
        except ApiError as exc:
            if exc.code != 404:
                log.warning("cannot update pod condition", extra={"pod": meta.get("name"), "error": str(exc)})
        except Exception as exc:  # transport: the next attempt patches again
            log.warning("cannot update pod condition", extra={"pod": meta.get("name"), "error": str(exc)})

    # -- which pods are ours ------------------------------------------------------------------------

    def _wants(self, pod: Mapping[str, Any]) -> bool:
        """A pending pod for this scheduler (ignoring whether it is bound)."""
        spec = pod.get("spec") or {}
        name = spec.get("schedulerName") or DEFAULT_SCHEDULER_NAME
        return name == self.scheduler_name and not (pod.get("metadata") or {}).get("deletionTimestamp")

    def _current(self, info: PodInfo) -> dict[str, Any] | None:
        """The informer's version of the pod, if it is still the same pod (same UID) and not finished."""
        current = self.pods.get(f"{info.namespace}/{info.name}")
        if current is None or pod_key(current) != info.key or is_terminal(current):
            return None
        return current

    # -- informer handlers (quick, synchronous) ------------------------------------------------------

    def _on_node_add(self, node: dict[str, Any]) -> None:
        self.cache.add_node(node)
        self.queue.move_all_to_active_or_backoff(EVENT_NODE_ADD)

    def _on_node_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if old is new:
            return
        self.cache.update_node(new)
        for event in node_update_events(old, new):
            self.queue.move_all_to_active_or_backoff(event)

    def _on_node_delete(self, node: dict[str, Any]) -> None:
        self.cache.remove_node(str((node.get("metadata") or {}).get("name") or ""))

    def _on_pod_add(self, pod: dict[str, Any]) -> None:
        if is_terminal(pod):
            return
        if assigned_node(pod):
            self.cache.add_pod(pod)
            self.queue.move_all_to_active_or_backoff(EVENT_ASSIGNED_POD_ADD)
        elif self._wants(pod):
            self.queue.add(pod)

    def _on_pod_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if old is new:
            return
        if is_terminal(new):
            self._on_pod_delete(new)
            return
        if assigned_node(new):
            if not assigned_node(old):
                self.queue.delete(new)  # bound (by us or anyone): no longer pending
                self.cache.add_pod(new)
                self.queue.move_all_to_active_or_backoff(EVENT_ASSIGNED_POD_ADD)
            else:
                self.cache.update_pod(new)
                action = pod_update_action(old, new)
                self.queue.move_all_to_active_or_backoff(ClusterEvent(POD, action, "AssignedPodUpdate"))
            return
        if self.cache.is_assumed(pod_key(new)):
            return  # our binding is on its way (upstream's skipPodUpdate)
        if not self._wants(new):
            self.queue.delete(new)
        elif self._wants(old):
            self.queue.update(old, new)
        else:
            self.queue.add(new)

    def _on_pod_delete(self, pod: dict[str, Any]) -> None:
        if assigned_node(pod):
            self.cache.remove_pod(pod)
            self.queue.move_all_to_active_or_backoff(EVENT_ASSIGNED_POD_DELETE)
        else:
            self.cache.forget(pod)
            self.queue.delete(pod)


def _condition(pod: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == kind:
            return dict(condition)
    return None


def _as_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The pod with kind/apiVersion set (list items may lack them), for event references."""
    return {"kind": "Pod", "apiVersion": "v1", **pod}


__all__ = ["DEFAULT_SCHEDULER_NAME", "REASON_SCHEDULER_ERROR", "REASON_UNSCHEDULABLE", "Scheduler"]
