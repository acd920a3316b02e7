"""The Deployment controller: Deployments roll out through ReplicaSets (upstream's
pkg/controller/deployment, Kubernetes 1.32).

Contracts:

* The queue holds Deployment keys.  A Deployment added, changed or deleted queues itself; a
  ReplicaSet queues the Deployment controlling it (on a change of controller, the old one too), and
  an orphan ReplicaSet every Deployment in its namespace whose selector matches it, so one of them
  can adopt it; a pod of a Recreate Deployment that is deleted or finishes queues its Deployment,
  whose next step may be waiting for exactly that.
* A reconcile (`DeploymentSync`) is level-based: it reads everything from the caches and converges
  from whatever it finds, so the controller can stop and start at any moment.  It manages
  ReplicaSets (create, scale, annotate, delete beyond the history limit) and the Deployment's
  status and revision annotation; turning ReplicaSets into pods is the ReplicaSet controller's job.
* Timed re-checks (the progress deadline) use `queue.add_after`; nothing polls.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from kubelite.client.interface import builtin
from kubelite.controllers.base import DEFAULT_WORKERS, Controller, ControllerContext
from kubelite.controllers.deployment.reconciler import DEPLOYMENTS, REPLICA_SETS, DeploymentSync
from kubelite.controllers.deployment.util import RECREATE, strategy_type
from kubelite.controllers.ownership import controller_ref
from kubelite.machinery.meta import deep_copy, namespace_of
from kubelite.machinery.selectors import SelectorError, label_selector_from_dict

log = logging.getLogger(__name__)

PODS = builtin("", "pods")


class DeploymentController(Controller):
    """Reconciles apps/v1 Deployments; watches Deployments, ReplicaSets and pods."""

    name = "deployment-controller"

    def __init__(self, context: ControllerContext, *, workers: int = DEFAULT_WORKERS) -> None:
        super().__init__(context, workers=workers)
        self.deployments = self.informer(DEPLOYMENTS)
        self.replica_sets = self.informer(REPLICA_SETS)
        self.pods = self.informer(PODS)
        self.deployments.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), self.enqueue)
        self.replica_sets.add_handler(self._replica_set_added, self._replica_set_updated, self._replica_set_deleted)
        self.pods.add_handler(on_update=self._pod_updated, on_delete=self._pod_deleted)

    async def reconcile(self, key: str) -> None:
        cached = self.deployments.get(key)
        if cached is None:
            return
        await DeploymentSync(self, key, deep_copy(cached)).run()

    # -- ReplicaSet events ----------------------------------------------------------------------------

    def _replica_set_added(self, rs: dict[str, Any]) -> None:
        if (rs.get("metadata") or {}).get("deletionTimestamp"):
            self._replica_set_deleted(rs)
            return
        ref = controller_ref(rs)
        if ref is not None:
            owner = self._deployment_for(namespace_of(rs), ref)
            if owner is not None:
                self.enqueue(owner)
            return
        for deployment in self._deployments_selecting(rs):
            self.enqueue(deployment)

    def _replica_set_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
        if old_meta.get("resourceVersion") == new_meta.get("resourceVersion"):
            return  # a resync: nothing changed
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        ref_changed = (old_ref or {}).get("uid") != (new_ref or {}).get("uid")
        if ref_changed and old_ref is not None:
            former = self._deployment_for(namespace_of(old), old_ref)
            if former is not None:
                self.enqueue(former)
        if new_ref is not None:
            owner = self._deployment_for(namespace_of(new), new_ref)
            if owner is not None:
                self.enqueue(owner)
            return
        if ref_changed or old_meta.get("labels") != new_meta.get("labels"):
            for deployment in self._deployments_selecting(new):
                self.enqueue(deployment)

    def _replica_set_deleted(self, rs: dict[str, Any]) -> None:
        ref = controller_ref(rs)
        if ref is not None:
            owner = self._deployment_for(namespace_of(rs), ref)
            if owner is not None:
                self.enqueue(owner)

    # -- pod events (Recreate waits for old pods to be gone) -----------------------------------------

    def _pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        finished = ("Succeeded", "Failed")
        was = (old.get("status") or {}).get("phase")
        now = (new.get("status") or {}).get("phase")
        if now in finished and was not in finished:
            self._pod_deleted(new)

    def _pod_deleted(self, pod: dict[str, Any]) -> None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replica_sets.get(f"{namespace_of(pod)}/{ref.get('name')}")
        if rs is None or (rs.get("metadata") or {}).get("uid") != ref.get("uid"):
            return
        rs_ref = controller_ref(rs)
        owner = self._deployment_for(namespace_of(rs), rs_ref) if rs_ref is not None else None
        if owner is not None and strategy_type(owner) == RECREATE:
            self.enqueue(owner)

    # -- lookups -------------------------------------------------------------------------------------

    def _deployment_for(self, namespace: str, ref: dict[str, Any]) -> dict[str, Any] | None:
        """The cached Deployment a controller reference points at, if it is still that one."""
        if ref.get("kind") != "Deployment":
            return None
        found = self.deployments.get(f"{namespace}/{ref.get('name')}")
        if found is None or (found.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return found

    def _deployments_selecting(self, rs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Deployments in the ReplicaSet's namespace whose (non-empty) selector matches it."""
        labels = (rs.get("metadata") or {}).get("labels") or {}
        for deployment in self.deployments.by_index("namespace", namespace_of(rs)):
            try:
                selector = label_selector_from_dict((deployment.get("spec") or {}).get("selector"))
            except SelectorError:
                continue
            if not selector.empty and selector.matches(labels):
                yield deployment


__all__ = ["PODS", "DeploymentController"]
