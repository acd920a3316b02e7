"""The taint eviction controller: pods leave nodes whose NoExecute taints they do not tolerate
(upstream's pkg/controller/tainteviction, the "taint manager").

Contracts:

* A pod bound to a node with NoExecute taints is deleted at once when some taint is not tolerated;
  when all are tolerated, after the smallest `tolerationSeconds` among the tolerations used, counted
  from when this controller first saw the pod need to leave (as upstream, which counts from the
  moment it queued the eviction); a toleration without seconds is forever.
* A changed node or pod is decided again: a taint removed (or a toleration that now covers it) before
  the time is up cancels the eviction; a shorter toleration never postpones one already scheduled.
* Eviction: the event `TaintManagerEviction` "Marking for deletion Pod ns/name" on the pod, the pod
  condition DisruptionTarget=True (reason DeletionByTaintManager) written through `pods/status`, then
  a plain delete carrying the pod's uid as a precondition.  Pods already being deleted, and terminal
  pods, are left alone.
* Schedules live in memory (`_started`): a restarted controller starts counting again, as upstream.
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.client.interface import ObjectKey, builtin
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.podutil import is_terminal
from kubelite.controllers.taints import NODE_NAME_INDEX, eviction_delay, pod_node_index, taints_of
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import name_of, namespace_of, rfc3339

log = logging.getLogger(__name__)

PODS = builtin("", "pods")
NODES = builtin("", "nodes")
EVICTION_REASON = "TaintManagerEviction"
DISRUPTION_TARGET_REASON = "DeletionByTaintManager"
DISRUPTION_TARGET_MESSAGE = "Taint manager: deleting due to NoExecute taint"


class TaintEvictionController(Controller):
    """Keys are pod keys `ns/name`; node changes enqueue the node's pods."""

    name = "taint-eviction-controller"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.pods.add_index(NODE_NAME_INDEX, pod_node_index)
        self.pods.add_handler(self._pod_changed, lambda _old, new: self._pod_changed(new), self._pod_deleted)
        self.nodes.add_handler(self._node_changed, self._node_updated, self._node_changed)
        self._started: dict[str, float] = {}  # pod key → when its eviction was first scheduled (clock.now())

    def _pod_changed(self, pod: dict[str, Any]) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            self.enqueue(pod)

    def _pod_deleted(self, pod: dict[str, Any]) -> None:
        self._started.pop(str(ObjectKey.of(pod)), None)

    def _node_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if taints_of(old, "NoExecute") != taints_of(new, "NoExecute"):
            self._node_changed(new)

    def _node_changed(self, node: dict[str, Any]) -> None:
        for pod in self.pods.by_index(NODE_NAME_INDEX, name_of(node)):
            self.enqueue(pod)

    def delay_for(self, pod: dict[str, Any]) -> float | None:
        """Seconds left before `pod` must go (<= 0: now); None when it may stay.  Keeps `_started`."""
        key = str(ObjectKey.of(pod))
        node_name = (pod.get("spec") or {}).get("nodeName")
        node = self.nodes.get(node_name) if node_name else None
        wait = None
        if node is not None and not is_terminal(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            wait = eviction_delay(taints_of(node), (pod.get("spec") or {}).get("tolerations") or [])
        if wait is None:
            if self._started.pop(key, None) is not None:
                log.info("eviction cancelled", extra={"controller": self.name, "pod": key})
            return None
        now = self.clock.now()
        started = self._started.setdefault(key, now)
        return started + wait - now

    async def reconcile(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            self._started.pop(key, None)
            return
        left = self.delay_for(pod)
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left)
            return
        await self._evict(pod)
        self._started.pop(key, None)

    async def _evict(self, pod: dict[str, Any]) -> None:
        namespace, name = namespace_of(pod), name_of(pod)
        self.recorder.event(pod, "Normal", EVICTION_REASON, f"Marking for deletion Pod {namespace}/{name}")
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": DISRUPTION_TARGET_REASON,
            "message": DISRUPTION_TARGET_MESSAGE,
            "lastTransitionTime": rfc3339(self.clock.utcnow()),
        }
        try:
            if not _has_condition(pod, condition):
                body = {"status": {"conditions": [condition]}}
                await self.client.patch(PODS, name, body, namespace, patch_type="strategic", subresource="status")
            await self.client.delete(PODS, name, namespace, preconditions={"uid": uid} if uid else None)
        except ApiError as exc:
            if exc.code != 404:
                raise
        log.info("pod deleted for a NoExecute taint", extra={"controller": self.name, "pod": f"{namespace}/{name}"})


def _has_condition(pod: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == wanted["type"]:
            return condition.get("status") == wanted["status"] and condition.get("reason") == wanted["reason"]
    return False


__all__ = ["DISRUPTION_TARGET_REASON", "EVICTION_REASON", "TaintEvictionController"]
