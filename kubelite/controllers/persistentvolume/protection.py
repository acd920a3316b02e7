"""Storage object in-use protection (upstream's pvc-protection and pv-protection controllers).

The API server puts `kubernetes.io/pvc-protection` on every new claim and
`kubernetes.io/pv-protection` on every new volume (the StorageObjectInUseProtection admission
step); these controllers add them to objects that lack them and remove them when a deleted object
is no longer in use, so its deletion can finish:

* a claim is in use while a scheduled pod that has not shut down (phase not Succeeded/Failed) names
  it in a `persistentVolumeClaim` volume, or owns it as a generic ephemeral volume.  Before the
  finalizer goes the pods are listed live from the API, as upstream does, because the informer may
  not have seen a pod that was just scheduled;
* a volume is in use while its phase is Bound.

Both are level-based: deciding is `claim_in_use` / `volume_in_use` (pure); the writes are
compare-and-swap updates of `metadata.finalizers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubelite.client.interface import builtin
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.persistentvolume.util import (
    PV_PROTECTION_FINALIZER,
    PVC_PROTECTION_FINALIZER,
    pod_claim_names,
)
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy

PVS = builtin("", "persistentvolumes")
PVCS = builtin("", "persistentvolumeclaims")
PODS = builtin("", "pods")

Obj = dict[str, Any]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def pod_uses_claim(pod: Mapping[str, Any], claim_name: str) -> bool:
    """Scheduled, not shut down, and referencing the claim."""
    if not (pod.get("spec") or {}).get("nodeName"):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return claim_name in pod_claim_names(pod)


def claim_in_use(claim: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> bool:
    name = str(_meta(claim).get("name") or "")
    namespace = _meta(claim).get("namespace")
    return any(_meta(p).get("namespace") == namespace and pod_uses_claim(p, name) for p in pods)


def volume_in_use(volume: Mapping[str, Any]) -> bool:
    return (volume.get("status") or {}).get("phase") == "Bound"


def needs_finalizer(obj: Mapping[str, Any], finalizer: str) -> bool:
    meta = _meta(obj)
    return not meta.get("deletionTimestamp") and finalizer not in (meta.get("finalizers") or [])


def may_release(obj: Mapping[str, Any], finalizer: str) -> bool:
    meta = _meta(obj)
    return bool(meta.get("deletionTimestamp")) and finalizer in (meta.get("finalizers") or [])


def _with_finalizer(obj: Mapping[str, Any], finalizer: str, present: bool) -> Obj:
    updated = deep_copy(dict(obj))
    meta = updated.setdefault("metadata", {})
    finalizers = [f for f in meta.get("finalizers") or [] if f != finalizer]
    if present:
        finalizers.append(finalizer)
    meta["finalizers"] = finalizers
    return updated


def _as_claim(claim: Obj) -> Obj:
    return {**claim, "kind": "PersistentVolumeClaim", "apiVersion": "v1"}


class PVCProtectionController(Controller):
    name = "pvc-protection-controller"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.claims = self.informer(PVCS)
        self.pods = self.informer(PODS)
        self.claims.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), None)
        self.pods.add_handler(self._pod_changed, lambda _old, new: self._pod_changed(new), self._pod_changed)

    def _pod_changed(self, pod: Obj) -> None:
        namespace = str(_meta(pod).get("namespace") or "")
        for name in pod_claim_names(pod):
            self.enqueue_key(f"{namespace}/{name}")

    async def reconcile(self, key: str) -> None:
        claim = self.claims.get(key)
        if claim is None:
            return
        if needs_finalizer(claim, PVC_PROTECTION_FINALIZER):
            await self.client.update(PVCS, _as_claim(_with_finalizer(claim, PVC_PROTECTION_FINALIZER, True)))
            return
        if not may_release(claim, PVC_PROTECTION_FINALIZER):
            return
        if claim_in_use(claim, self.pods.list()):
            return  # a pod event re-enqueues the claim
        namespace = str(_meta(claim).get("namespace") or "")
        live = await self.client.list(PODS, namespace)
        if claim_in_use(claim, live.get("items") or []):
            return
        try:
            await self.client.update(PVCS, _as_claim(_with_finalizer(claim, PVC_PROTECTION_FINALIZER, False)))
        except ApiError as exc:
            if exc.code != 404:
                raise


class PVProtectionController(Controller):
    name = "pv-protection-controller"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.volumes = self.informer(PVS)
        self.volumes.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), None)

    async def reconcile(self, key: str) -> None:
        volume = self.volumes.get(key)
        if volume is None:
            return
        if needs_finalizer(volume, PV_PROTECTION_FINALIZER):
            updated = _with_finalizer(volume, PV_PROTECTION_FINALIZER, True)
        elif may_release(volume, PV_PROTECTION_FINALIZER) and not volume_in_use(volume):
            updated = _with_finalizer(volume, PV_PROTECTION_FINALIZER, False)
        else:
            return
        try:
            await self.client.update(PVS, {**updated, "kind": "PersistentVolume", "apiVersion": "v1"})
        except ApiError as exc:
            if exc.code != 404:
                raise


__all__ = [
    "PVCProtectionController",
    "PVProtectionController",
    "claim_in_use",
    "may_release",
    "needs_finalizer",
    "pod_uses_claim",
    "volume_in_use",
]
