"""The PersistentVolume binder (upstream's persistentvolume-controller): binds claims to volumes,
hands claims of a provisioning class to their provisioner, keeps phases, and reclaims volumes
whose claim is gone.  The decisions are `decisions.decide_claim` / `decide_volume`; this is the shell.

Contracts:

* Keys are `claim:<ns>/<name>` and `volume:<name>` on one work queue.  A claim changing enqueues
  itself; a volume changing enqueues itself, the claim its claimRef names, and (when it may have
  become Available) every claim not yet bound; a claim going away enqueues its volume; a
  StorageClass appearing enqueues unbound claims.  No periodic resync is needed for that.
* Binding is a sequence of idempotent writes in upstream's order: the volume's claimRef (with
  `pv.kubernetes.io/bound-by-controller: "yes"` when the controller chose it), the volume's phase
  Bound, the claim's `spec.volumeName` with `pv.kubernetes.io/bind-completed: "yes"` (and
  bound-by-controller when the controller chose the volume), then the claim's status (phase Bound,
  the volume's accessModes and capacity).  Writes are compare-and-swap on the cached
  resourceVersion; a conflict retries the key with the next cache state.
* Reclaim: Retain keeps a Released volume; Delete of a provisioned volume is its provisioner's job
  (it watches Released volumes it provisioned); Recycle fails the volume with an event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubelite.client.interface import builtin, key_of
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.persistentvolume.decisions import Action, Decision, decide_claim, decide_volume
from kubelite.controllers.persistentvolume.util import (
    ANN_BETA_STORAGE_PROVISIONER,
    ANN_BIND_COMPLETED,
    ANN_BOUND_BY_CONTROLLER,
    ANN_STORAGE_PROVISIONER,
    claim_ref,
    is_volume_bound_to_claim,
)
from kubelite.machinery.meta import deep_copy

log = logging.getLogger(__name__)

PVS = builtin("", "persistentvolumes")
PVCS = builtin("", "persistentvolumeclaims")
STORAGE_CLASSES = builtin("storage.k8s.io", "storageclasses")
NODES = builtin("", "nodes")
CLAIM_PREFIX = "claim:"
VOLUME_PREFIX = "volume:"

Obj = dict[str, Any]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def as_claim(claim: Mapping[str, Any]) -> Obj:
    return {**claim, "kind": "PersistentVolumeClaim", "apiVersion": "v1"}


def as_volume(volume: Mapping[str, Any]) -> Obj:
    return {**volume, "kind": "PersistentVolume", "apiVersion": "v1"}


class PersistentVolumeBinder(Controller):
    """See the module docstring."""

    name = "persistentvolume-binder-controller"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.volumes = self.informer(PVS)
        self.claims = self.informer(PVCS)
        self.classes = self.informer(STORAGE_CLASSES)
        self.nodes = self.informer(NODES)
        self.claims.add_handler(self._claim_changed, lambda _old, new: self._claim_changed(new), self._claim_deleted)
        self.volumes.add_handler(
            self._volume_changed, lambda _old, new: self._volume_changed(new), self._volume_changed
        )
        self.classes.add_handler(
            lambda _c: self._enqueue_unbound_claims(), lambda _o, _n: self._enqueue_unbound_claims(), None
        )

    # -- handlers -----------------------------------------------------------------------------------

    def _claim_changed(self, claim: Obj) -> None:
        self.enqueue_key(CLAIM_PREFIX + key_of(claim))

    def _claim_deleted(self, claim: Obj) -> None:
        volume = str((claim.get("spec") or {}).get("volumeName") or "")
        if volume:
            self.enqueue_key(VOLUME_PREFIX + volume)

    def _volume_changed(self, volume: Obj) -> None:
        self.enqueue_key(VOLUME_PREFIX + str(_meta(volume).get("name") or ""))
        ref = (volume.get("spec") or {}).get("claimRef")
        if ref and ref.get("name"):
            self.enqueue_key(f"{CLAIM_PREFIX}{ref.get('namespace') or ''}/{ref['name']}")
        if not ref or not ref.get("uid"):
            self._enqueue_unbound_claims()

    def _enqueue_unbound_claims(self) -> None:
        for claim in self.claims.list():
            if ANN_BIND_COMPLETED not in (_meta(claim).get("annotations") or {}):
                self.enqueue_key(CLAIM_PREFIX + key_of(claim))

    # -- reconcile ----------------------------------------------------------------------------------

    def _class_map(self) -> dict[str, Obj]:
        return {str(_meta(c).get("name") or ""): c for c in self.classes.list()}

    def _node_map(self) -> dict[str, Obj]:
        return {str(_meta(n).get("name") or ""): n for n in self.nodes.list()}

    async def reconcile(self, key: str) -> None:
        if key.startswith(CLAIM_PREFIX):
            await self._sync_claim(key[len(CLAIM_PREFIX) :])
        elif key.startswith(VOLUME_PREFIX):
            await self._sync_volume(key[len(VOLUME_PREFIX) :])

    async def _sync_claim(self, key: str) -> None:
        claim = self.claims.get(key)
        if claim is None:
            return
        decision = decide_claim(claim, self.volumes.list(), self._class_map(), nodes=self._node_map())
        self._record(as_claim(claim), decision)
        if decision.action is Action.BIND:
            assert decision.volume is not None
            await self._bind(dict(decision.volume), claim)
        elif decision.action is Action.CLAIM_PENDING:
            await self._claim_status(claim, {"phase": "Pending"})
        elif decision.action is Action.CLAIM_LOST:
            await self._claim_status(claim, {"phase": "Lost"})
        elif decision.action is Action.PROVISION:
            claim = await self._set_provisioner(claim, decision.provisioner)
            await self._claim_status(claim, {"phase": "Pending"})

    async def _sync_volume(self, name: str) -> None:
        volume = self.volumes.get(name)
        if volume is None:
            return
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        claim = self.claims.get(f"{ref.get('namespace') or ''}/{ref.get('name') or ''}") if ref else None
        decision = decide_volume(volume, claim)
        self._record(as_volume(volume), decision)
        if decision.action is Action.VOLUME_PHASE:
            await self._volume_status(volume, decision.phase, decision.message)
        elif decision.action is Action.UNBIND_VOLUME:
            await self._unbind(volume)
        elif decision.action is Action.ENQUEUE_CLAIM and claim is not None:
            self.enqueue_key(CLAIM_PREFIX + key_of(claim))

    def _record(self, obj: Obj, decision: Decision) -> None:
        for event in decision.events:
            self.recorder.event(obj, event.type, event.reason, event.message)

    # -- writes -------------------------------------------------------------------------------------

    async def _bind(self, volume: Obj, claim: Obj) -> None:
        """bind(): each step is skipped when already done, so a retry continues where it failed."""
        if not is_volume_bound_to_claim(volume, claim) or not ((volume.get("spec") or {}).get("claimRef") or {}).get(
            "uid"
        ):
            updated = deep_copy(volume)
            if not is_volume_bound_to_claim(volume, claim):
                updated.setdefault("metadata", {}).setdefault("annotations", {})[ANN_BOUND_BY_CONTROLLER] = "yes"
            updated.setdefault("spec", {})["claimRef"] = claim_ref(claim)
            volume = await self.client.update(PVS, as_volume(updated))
            log.info("volume bound to claim", extra={"volume": _meta(volume).get("name"), "claim": key_of(claim)})
        if (volume.get("status") or {}).get("phase") != "Bound":
            volume = await self._volume_status(volume, "Bound", "")
        volume_name = str(_meta(volume).get("name") or "")
        annotations = _meta(claim).get("annotations") or {}
        spec = claim.get("spec") or {}
        if spec.get("volumeName") != volume_name or annotations.get(ANN_BIND_COMPLETED) != "yes":
            patch: Obj = {
                "metadata": {
                    "resourceVersion": _meta(claim).get("resourceVersion"),
                    "annotations": {ANN_BIND_COMPLETED: "yes"},
                },
                "spec": {"volumeName": volume_name},
            }
            if not spec.get("volumeName"):
                patch["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER] = "yes"
            claim = await self.client.patch(PVCS, str(_meta(claim)["name"]), patch, str(_meta(claim)["namespace"]))
        vspec = volume.get("spec") or {}
        want = {
            "phase": "Bound",
            "accessModes": list(vspec.get("accessModes") or []),
            "capacity": dict(vspec.get("capacity") or {}),
        }
        await self._claim_status(claim, want)

    async def _unbind(self, volume: Obj) -> None:
        updated = deep_copy(volume)
        updated.setdefault("spec", {}).pop("claimRef", None)
        (updated.get("metadata") or {}).get("annotations", {}).pop(ANN_BOUND_BY_CONTROLLER, None)
        volume = await self.client.update(PVS, as_volume(updated))
        await self._volume_status(volume, "Available", "")

    async def _volume_status(self, volume: Mapping[str, Any], phase: str, message: str) -> Obj:
        status = volume.get("status") or {}
        if status.get("phase") == phase and (status.get("message") or "") == message:
            return dict(volume)
        body = {
            "metadata": {"resourceVersion": _meta(volume).get("resourceVersion")},
            "status": {"phase": phase, "message": message or None, "reason": None},
        }
        return await self.client.patch(PVS, str(_meta(volume)["name"]), body, subresource="status")

    async def _claim_status(self, claim: Mapping[str, Any], want: Mapping[str, Any]) -> None:
        status = claim.get("status") or {}
        if all(status.get(k) == v for k, v in want.items()):
            return
        body: Obj = {"metadata": {"resourceVersion": _meta(claim).get("resourceVersion")}, "status": dict(want)}
        await self.client.patch(
            PVCS, str(_meta(claim)["name"]), body, str(_meta(claim)["namespace"]), subresource="status"
        )

    async def _set_provisioner(self, claim: Obj, provisioner: str) -> Obj:
        annotations = _meta(claim).get("annotations") or {}
        if (
            annotations.get(ANN_STORAGE_PROVISIONER) == provisioner
            and annotations.get(ANN_BETA_STORAGE_PROVISIONER) == provisioner
        ):
            return claim
        patch = {
            "metadata": {
                "resourceVersion": _meta(claim).get("resourceVersion"),
                "annotations": {ANN_STORAGE_PROVISIONER: provisioner, ANN_BETA_STORAGE_PROVISIONER: provisioner},
            }
        }
        return await self.client.patch(PVCS, str(_meta(claim)["name"]), patch, str(_meta(claim)["namespace"]))


__all__ = ["CLAIM_PREFIX", "NODES", "PVCS", "PVS", "STORAGE_CLASSES", "VOLUME_PREFIX", "PersistentVolumeBinder"]
