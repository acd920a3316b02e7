"""Pod garbage collection: pods no kubelet will ever finish (upstream pkg/controller/podgc).

* Orphaned pods — bound to a node that no longer exists — are marked Failed with a
  `DisruptionTarget` condition (reason `DeletionByPodGC`, "PodGC: node no longer exists") and
  force-deleted (grace period 0).  A node missing from the cache is first given a quarantine
  (`quarantine_seconds`, upstream waits 40 s) and then confirmed absent with a live GET, so a
  node that is being re-registered or a lagging cache never costs a pod.
* Unscheduled pods that are being deleted have no kubelet to finish them: force-deleted at once.
* Terminated pods beyond `terminated_threshold` (upstream's default 12500) are deleted oldest first.
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.client.interface import builtin
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.podutil import NODE_NAME_INDEX, is_terminal, pod_node_index
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import name_of, namespace_of, rfc3339

log = logging.getLogger(__name__)

PODS = builtin("", "pods")
NODES = builtin("", "nodes")
QUARANTINE_SECONDS = 40.0
TERMINATED_THRESHOLD = 12500
TERMINATED_CHECK_SECONDS = 20.0
TERMINATED_KEY = "#terminated"  # one queue item for the threshold check


class PodGarbageCollector(Controller):
    name = "pod-garbage-collector"

    def __init__(
        self,
        context: ControllerContext,
        *,
        quarantine_seconds: float = QUARANTINE_SECONDS,
        terminated_threshold: int = TERMINATED_THRESHOLD,
    ) -> None:
        super().__init__(context, workers=2)
        self.quarantine_seconds = quarantine_seconds
        self.terminated_threshold = terminated_threshold
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.pods.add_index(NODE_NAME_INDEX, pod_node_index)
        self._missing_since: dict[str, float] = {}  # node name → when the cache first lacked it
        self.pods.add_handler(self._on_pod, lambda _old, new: self._on_pod(new), lambda _pod: None)
        self.nodes.add_handler(lambda node: self._missing_since.pop(name_of(node), None), None, self._on_node_delete)

    def _on_pod(self, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        nodes = pod_node_index(pod)
        if not nodes and meta.get("deletionTimestamp"):
            self.enqueue(pod)
        elif nodes and self.nodes.get(nodes[0]) is None:
            self.queue.add_after(f"{meta.get('namespace')}/{meta.get('name')}", self.quarantine_seconds)
        if is_terminal(pod):
            self.queue.add_after(TERMINATED_KEY, TERMINATED_CHECK_SECONDS)  # batched, as upstream's 20 s loop

    def _on_node_delete(self, node: dict[str, Any]) -> None:
        for pod in self.pods.by_index(NODE_NAME_INDEX, name_of(node)):
            self.queue.add_after(f"{namespace_of(pod)}/{name_of(pod)}", self.quarantine_seconds)

    async def reconcile(self, key: str) -> None:
        if key == TERMINATED_KEY:
            await self._delete_excess_terminated()
            return
        pod = self.pods.get(key)
        if pod is None:
            return
        nodes = pod_node_index(pod)
        if not nodes:
            if (pod.get("metadata") or {}).get("deletionTimestamp"):
                await self._force_delete(pod)
            return
        node = nodes[0]
        if self.nodes.get(node) is not None:
            self._missing_since.pop(node, None)
            return
        first_missing = self._missing_since.setdefault(node, self.clock.now())
        left = self.quarantine_seconds - (self.clock.now() - first_missing)
        if left > 0:
            self.queue.add_after(key, left)
            return
        try:
            await self.client.get(NODES, node)
            return  # it exists after all: the cache lags
        except ApiError as exc:
            if exc.code != 404:
                raise
        log.info("deleting orphaned pod", extra={"pod": key, "node": node})
        await self._mark_failed(pod)
        await self._force_delete(pod)

    async def _mark_failed(self, pod: dict[str, Any]) -> None:
        if is_terminal(pod):
            return
        stamp = rfc3339(self.clock.utcnow())
        conditions = [
            c for c in (pod.get("status") or {}).get("conditions") or () if c.get("type") != "DisruptionTarget"
        ]
        conditions.append(
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByPodGC",
                "message": "PodGC: node no longer exists",
                "lastTransitionTime": stamp,
            }
        )
        body = {"status": {"phase": "Failed", "conditions": conditions}}
        try:
            await self.client.patch(PODS, name_of(pod), body, namespace_of(pod), subresource="status")
        except ApiError as exc:
            if exc.code != 404:
                raise

    async def _force_delete(self, pod: dict[str, Any]) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        try:
            await self.client.delete(
                PODS, name_of(pod), namespace_of(pod), grace_period_seconds=0, preconditions={"uid": uid}
            )
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    async def _delete_excess_terminated(self) -> None:
        terminated = [
            p for p in self.pods.list() if is_terminal(p) and not (p.get("metadata") or {}).get("deletionTimestamp")
        ]
        excess = len(terminated) - self.terminated_threshold
        if excess <= 0:
            return
        terminated.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
        for pod in terminated[:excess]:
            await self._force_delete(pod)


__all__ = ["PodGarbageCollector"]
