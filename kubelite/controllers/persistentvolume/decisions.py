"""What the PersistentVolume binder does about one claim or one volume: pure decisions
(upstream's syncClaim / syncVolume of pkg/controller/volume/persistentvolume/pv_controller.go).

`decide_claim` and `decide_volume` look at the observed objects and return one `Decision`: a verb
(`Action`), the volume or claim it concerns, and the Event the shell records.  The shell
(`binder.PersistentVolumeBinder`) applies it; running the decision again on the result is a no-op,
so the binder is level-based.

Differences from upstream, on purpose:

* WaitForFirstConsumer claims with `volume.kubernetes.io/selected-node` bind to a static volume
  that fits that node here, in the binder; upstream's scheduler binds those in its PreBind step.
  Without a fitting static volume they go to the provisioner, as upstream.
* Only external provisioners exist (no in-tree volume plugins): a class's provisioner is recorded
  on the claim and the provisioner creates the volume.  A Released volume with reclaim policy
  Delete is deleted by the provisioner that made it; any other Delete volume fails as upstream's
  does without a deleter plugin.  Recycle is not supported: the volume fails with an event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kubelite.controllers.persistentvolume.util import (
    ANN_BIND_COMPLETED,
    ANN_BOUND_BY_CONTROLLER,
    ANN_DYNAMICALLY_PROVISIONED,
    ANN_SELECTED_NODE,
    HOSTNAME_LABEL,
    NOT_SUPPORTED_PROVISIONER,
    VOLUME_BOUND,
    VOLUME_FAILED,
    VOLUME_RELEASED,
    access_modes_contain,
    claim_class,
    claim_request,
    find_matching_volume,
    is_delay_binding,
    is_volume_bound_to_claim,
    volume_capacity,
    volume_class,
    volume_mode,
)

Obj = Mapping[str, Any]

WAIT_FOR_FIRST_CONSUMER_MESSAGE = "waiting for first consumer to be created before binding"
NO_CLASS_MESSAGE = "no persistent volumes available for this claim and no storage class is set"
EXTERNAL_PROVISIONING_MESSAGE = (
    "Waiting for a volume to be created either by the external provisioner '{}' or manually by the system "
    "administrator. If volume creation is delayed, please verify that the provisioner is running and correctly "
    "registered."
)
CLAIM_LOST_REFERENCE = "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!"
CLAIM_LOST_VOLUME = "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
CLAIM_MISBOUND = "Two claims are bound to the same volume, this one is bound incorrectly"
RECYCLE_UNSUPPORTED = "No recycler plugin found for the volume!"
IN_TREE_PREFIX = "kubernetes.io/"
UNKNOWN_RECLAIM = "Volume has unrecognized PersistentVolumeReclaimPolicy"


class Action(StrEnum):
    NOTHING = "Nothing"
    BIND = "Bind"  # bind `volume` and the claim to each other (idempotent steps)
    CLAIM_PENDING = "ClaimPending"  # claim phase Pending (+ event)
    CLAIM_LOST = "ClaimLost"  # claim phase Lost (+ event)
    CLAIM_BOUND_STATUS = "ClaimBoundStatus"  # claim status Bound with the volume's modes/capacity
    PROVISION = "Provision"  # record `provisioner` on the claim, claim Pending (+ event)
    VOLUME_PHASE = "VolumePhase"  # set the volume's phase (+ message), then maybe reclaim
    UNBIND_VOLUME = "UnbindVolume"  # clear the controller's claimRef: volume Available again
    DELETE_VOLUME = "DeleteVolume"  # reclaim Delete handled here: nothing (the provisioner deletes)
    ENQUEUE_CLAIM = "EnqueueClaim"  # the claim's sync finishes the binding


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    action: Action
    volume: Obj | None = None
    phase: str = ""
    message: str = ""
    provisioner: str = ""
    events: tuple[Event, ...] = field(default=())


NOTHING = Decision(Action.NOTHING)


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _phase(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def volume_satisfies_claim(volume: Obj, claim: Obj) -> str:
    """checkVolumeSatisfyClaim: "" when it does, else upstream's reason."""
    if volume_capacity(volume) < claim_request(claim):
        return "requested PV is too small"
    if volume_class(volume) != claim_class(claim):
        return "storageClassName does not match"
    if volume_mode(volume) != volume_mode(claim):
        return "incompatible volumeMode"
    if not access_modes_contain(_spec(volume).get("accessModes") or [], _spec(claim).get("accessModes") or []):
        return "incompatible accessMode"
    return ""


def decide_claim(
    claim: Obj,
    volumes: Iterable[Obj],
    classes: Mapping[str, Obj],
    *,
    nodes: Mapping[str, Obj] | None = None,
) -> Decision:
    """syncClaim for one claim that is not being deleted; `volumes` are all PersistentVolumes."""
    by_name = {str(_meta(v).get("name") or ""): v for v in volumes}
    if _meta(claim).get("annotations", {}).get(ANN_BIND_COMPLETED) is None:
        return _unbound_claim(claim, by_name, classes, nodes or {})
    return _bound_claim(claim, by_name)


def _unbound_claim(
    claim: Obj, volumes: Mapping[str, Obj], classes: Mapping[str, Obj], nodes: Mapping[str, Obj]
) -> Decision:
    wanted = str(_spec(claim).get("volumeName") or "")
    if not wanted:
        delay = is_delay_binding(claim, classes)
        selected = str((_meta(claim).get("annotations") or {}).get(ANN_SELECTED_NODE) or "")
        node = None
        if delay and selected:
            # a node not (yet) seen has the kubelet's default hostname label
            node = nodes.get(selected) or {"metadata": {"name": selected, "labels": {HOSTNAME_LABEL: selected}}}
        volume = find_matching_volume(claim, volumes.values(), node=node, delay_binding=delay)
        if volume is not None:
            return Decision(Action.BIND, volume)
        if delay and not selected:
            event = Event("Normal", "WaitForFirstConsumer", WAIT_FOR_FIRST_CONSUMER_MESSAGE)
            return Decision(Action.CLAIM_PENDING, events=(event,))
        class_name = claim_class(claim)
        if class_name:
            storage_class = classes.get(class_name)
            if storage_class is None:
                message = f'storageclass.storage.k8s.io "{class_name}" not found'
                return Decision(Action.CLAIM_PENDING, events=(Event("Warning", "ProvisioningFailed", message),))
            provisioner = str(storage_class.get("provisioner") or "")
            if provisioner == NOT_SUPPORTED_PROVISIONER or provisioner.startswith(IN_TREE_PREFIX):
                message = f"no volume plugin matched name: {provisioner}"  # no in-tree plugins here
                return Decision(Action.CLAIM_PENDING, events=(Event("Warning", "ProvisioningFailed", message),))
            event = Event("Normal", "ExternalProvisioning", EXTERNAL_PROVISIONING_MESSAGE.format(provisioner))
            return Decision(Action.PROVISION, provisioner=provisioner, events=(event,))
        return Decision(Action.CLAIM_PENDING, events=(Event("Normal", "FailedBinding", NO_CLASS_MESSAGE),))
    volume = volumes.get(wanted)
    if volume is None:
        return Decision(Action.CLAIM_PENDING)
    if not _spec(volume).get("claimRef"):
        reason = volume_satisfies_claim(volume, claim)
        if reason:
            message = f"Cannot bind to requested volume {wanted!r}: {reason}".replace("'", '"')
            return Decision(Action.CLAIM_PENDING, events=(Event("Warning", "VolumeMismatch", message),))
        return Decision(Action.BIND, volume)
    if is_volume_bound_to_claim(volume, claim):
        return Decision(Action.BIND, volume)
    if (_meta(claim).get("annotations") or {}).get(ANN_BOUND_BY_CONTROLLER):
        return Decision(Action.CLAIM_PENDING)  # our own binding raced another claim; the volume side resolves it
    message = f'volume "{wanted}" already bound to a different claim.'
    return Decision(Action.CLAIM_PENDING, events=(Event("Warning", "FailedBinding", message),))


def _bound_claim(claim: Obj, volumes: Mapping[str, Obj]) -> Decision:
    wanted = str(_spec(claim).get("volumeName") or "")
    if not wanted:
        if _phase(claim) == "Lost":
            return NOTHING
        return Decision(Action.CLAIM_LOST, events=(Event("Warning", "ClaimLost", CLAIM_LOST_REFERENCE),))
    volume = volumes.get(wanted)
    if volume is None:
        if _phase(claim) == "Lost":
            return NOTHING
        return Decision(Action.CLAIM_LOST, events=(Event("Warning", "ClaimLost", CLAIM_LOST_VOLUME),))
    if not _spec(volume).get("claimRef"):
        return Decision(Action.BIND, volume)  # the volume lost its claimRef: bind it again
    if is_volume_bound_to_claim(volume, claim):
        return Decision(Action.BIND, volume)  # each step of binding is a no-op when done
    if _phase(claim) == "Lost":
        return NOTHING
    return Decision(Action.CLAIM_LOST, events=(Event("Warning", "ClaimMisbound", CLAIM_MISBOUND),))


def decide_volume(volume: Obj, claim: Obj | None) -> Decision:
    """syncVolume; `claim` is the claim named by the volume's claimRef, if it exists."""
    ref = _spec(volume).get("claimRef")
    phase = _phase(volume)
    if not ref or not ref.get("uid"):
        return NOTHING if phase == "Available" else Decision(Action.VOLUME_PHASE, phase="Available")
    if claim is not None and ref.get("uid") != _meta(claim).get("uid"):
        claim = None  # a new claim with the same name: the old one is gone
    if claim is None:
        return _released(volume)
    wanted = str(_spec(claim).get("volumeName") or "")
    if not wanted:
        return Decision(Action.ENQUEUE_CLAIM)
    if wanted == _meta(volume).get("name"):
        return NOTHING if phase == VOLUME_BOUND else Decision(Action.VOLUME_PHASE, phase=VOLUME_BOUND)
    annotations = _meta(volume).get("annotations") or {}
    if annotations.get(ANN_DYNAMICALLY_PROVISIONED) and _spec(volume).get("persistentVolumeReclaimPolicy") == "Delete":
        return _released(volume)
    if annotations.get(ANN_BOUND_BY_CONTROLLER):
        return Decision(Action.UNBIND_VOLUME)
    return NOTHING


def _released(volume: Obj) -> Decision:
    """The claim is gone: Released, then the reclaim policy."""
    phase = _phase(volume)
    if phase not in (VOLUME_RELEASED, VOLUME_FAILED):
        return Decision(Action.VOLUME_PHASE, phase=VOLUME_RELEASED)
    if phase == VOLUME_FAILED:
        return NOTHING
    policy = _spec(volume).get("persistentVolumeReclaimPolicy") or "Retain"
    if policy == "Retain":
        return NOTHING
    if policy == "Recycle":
        event = Event("Warning", "VolumeFailedRecycle", RECYCLE_UNSUPPORTED)
        return Decision(Action.VOLUME_PHASE, phase=VOLUME_FAILED, message=RECYCLE_UNSUPPORTED, events=(event,))
    if policy == "Delete":
        if (_meta(volume).get("annotations") or {}).get(ANN_DYNAMICALLY_PROVISIONED):
            return Decision(Action.DELETE_VOLUME)
        name = _meta(volume).get("name")
        message = f'error getting deleter volume plugin for volume "{name}": no deletable volume plugin matched'
        event = Event("Warning", "VolumeFailedDelete", message)
        return Decision(Action.VOLUME_PHASE, phase=VOLUME_FAILED, message=message, events=(event,))
    event = Event("Warning", "VolumeUnknownReclaimPolicy", UNKNOWN_RECLAIM)
    return Decision(Action.VOLUME_PHASE, phase=VOLUME_FAILED, message=UNKNOWN_RECLAIM, events=(event,))


__all__ = ["Action", "Decision", "Event", "decide_claim", "decide_volume", "volume_satisfies_claim"]
