"""The disruption controller: keeps every PodDisruptionBudget's status current (upstream's
pkg/controller/disruption).  The arithmetic is in `disruption_policy`.

Contracts:

* Keys are PDB keys; a pod change enqueues the PDBs of its namespace that select it (before and
  after the change).  Reconcile reads the PDB and its pods from the caches and writes the status
  through `poddisruptionbudgets/status` only when it differs, with the cached resourceVersion (a
  conflict is retried by the queue).
* The expected pod count, when needed (maxUnavailable, or a percentage minAvailable), is the sum of
  `spec.replicas` of the pods' controllers: ReplicaSet (its Deployment when it has one),
  ReplicationController, StatefulSet, Deployment.  A pod without one of those makes the count
  unknown: event `CalculateExpectedPodCountFailed`, status fails safe (disruptionsAllowed 0,
  DisruptionAllowed=False reason SyncFailed).  No pods: event `NoPods` "No matching pods found".
* `disruptedPods` entries (written by the eviction API) are dropped once the pod is gone or being
  deleted, or after 2 minutes; the PDB is looked at again when the next one times out.
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.client.interface import builtin
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.disruption_policy import BudgetError, budget_status, failed_status, needs_scale, selects
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, namespace_of, rfc3339

log = logging.getLogger(__name__)

PDBS = builtin("policy", "poddisruptionbudgets")
PODS = builtin("", "pods")
SCALABLE = {
    ("apps", "ReplicaSet"): builtin("apps", "replicasets"),
    ("apps", "Deployment"): builtin("apps", "deployments"),
    ("apps", "StatefulSet"): builtin("apps", "statefulsets"),
    ("", "ReplicationController"): builtin("", "replicationcontrollers"),
}


class DisruptionController(Controller):
    """Watches PDBs and pods; see the module docstring."""

    name = "disruption-controller"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.pdbs = self.informer(PDBS)
        self.pods = self.informer(PODS)
        self.pdbs.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), None)
        self.pods.add_handler(self._pod_changed, self._pod_updated, self._pod_changed)

    def _pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._pod_changed(old)
        self._pod_changed(new)

    def _pod_changed(self, pod: dict[str, Any]) -> None:
        namespace = namespace_of(pod)
        for pdb in self.pdbs.by_index("namespace", namespace) if namespace else ():
            if selects(pdb, pod):
                self.enqueue(pdb)

    async def reconcile(self, key: str) -> None:
        pdb = self.pdbs.get(key)
        if pdb is None:
            return
        pods = [p for p in self.pods.by_index("namespace", namespace_of(pdb)) if selects(pdb, p)]
        now = self.clock.utcnow()
        stamp = rfc3339(now)
        if not pods:
            self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        try:
            scale = await self._expected_scale(pods) if needs_scale(pdb) else None
            status, recheck = budget_status(pdb, pods, scale, now, timestamp=stamp)
        except BudgetError as exc:
            self.recorder.event(
                pdb,
                "Warning",
                "CalculateExpectedPodCountFailed",
                f"Failed to calculate the number of expected pods: {exc}",
            )
            status, recheck = failed_status(pdb, timestamp=stamp), None
        if recheck is not None:
            self.queue.add_after(key, (recheck - now).total_seconds())
        if status != (pdb.get("status") or {}):
            updated = deep_copy(pdb)
            updated["status"] = status
            await self.client.update(PDBS, updated, subresource="status")

    async def _expected_scale(self, pods: list[dict[str, Any]]) -> int:
        """Summed `spec.replicas` of the pods' controllers (each counted once)."""
        seen: dict[str, int] = {}
        for pod in pods:
            ref = next(
                (r for r in (pod.get("metadata") or {}).get("ownerReferences") or () if r.get("controller")), None
            )
            if ref is None:
                raise BudgetError(f'found no controller ref for pod "{pod["metadata"]["name"]}"')
            owner = await self._scale_owner(namespace_of(pod), ref)
            if owner is None:
                raise BudgetError(f'found no controllers for pod "{pod["metadata"]["name"]}"')
            uid, replicas = owner
            seen[uid] = replicas
        return sum(seen.values())

    async def _scale_owner(self, namespace: str, ref: dict[str, Any]) -> tuple[str, int] | None:
        """(uid, replicas) of the scalable object behind a controller reference; a ReplicaSet owned
        by a Deployment answers for the Deployment, as upstream's finders do."""
        group = str(ref.get("apiVersion") or "").rpartition("/")[0]
        resource = SCALABLE.get((group, str(ref.get("kind") or "")))
        if resource is None:
            return None
        try:
            owner = await self.client.get(resource, str(ref.get("name")), namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise
        meta = owner.get("metadata") or {}
        if meta.get("uid") != ref.get("uid"):
            return None
        if ref.get("kind") == "ReplicaSet":
            parent = next((r for r in meta.get("ownerReferences") or () if r.get("controller")), None)
            if parent is not None and parent.get("kind") == "Deployment":
                return await self._scale_owner(namespace, parent)
        replicas = (owner.get("spec") or {}).get("replicas")
        return str(meta.get("uid")), int(1 if replicas is None else replicas)


__all__ = ["DisruptionController"]
