"""VolumeBinding: a pod's PersistentVolumeClaims decide where it may run (plugins/volumebinding).

* PreFilter, once per pod: a claim that does not exist is UnschedulableAndUnresolvable
  (`persistentvolumeclaim "<name>" not found`), as is one being deleted (`... is being deleted`);
  an unbound claim of an Immediate class (or of no class) makes the pod unschedulable with
  "pod has unbound immediate PersistentVolumeClaims".  A pod without claims skips the plugin.
* Filter, per node: every bound claim's volume must fit the node (its `spec.nodeAffinity`), else
  "node(s) had volume node affinity conflict"; every unbound WaitForFirstConsumer claim needs an
  Available static volume that fits it and the node, or a class that can provision (any
  provisioner but `kubernetes.io/no-provisioner`), else "node(s) didn't find available persistent
  volumes to bind".
* PreBind (`claims_to_select`): the unbound WaitForFirstConsumer claims that must be annotated
  `volume.kubernetes.io/selected-node: <node>` before the pod is bound; the scheduler writes it.

Simplification (documented in the report): upstream's scheduler also binds a chosen static volume
itself and waits until every claim is bound before binding the pod.  Here the PV binder does the
static binding once it sees selected-node, and the pod is bound without waiting: the node agent
waits for the claim to be bound before mounting.

The plugin reads claims, volumes and classes through a `VolumeLister` (the scheduler's informer
caches); it never mutates them and does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from kubelite.machinery.quantity import QuantityError, parse_quantity
from kubelite.scheduler.events import EVENT_NODE_ADD, ActionType, ClusterEvent
from kubelite.scheduler.framework import PRE_FILTER_SKIP, SUCCESS, NodeInfo, PodInfo, PreFilterResult, Snapshot, Status
from kubelite.scheduler.plugins.nodeaffinity import NodeSelectorTerm

NAME = "VolumeBinding"
ERR_REASON_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_REASON_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_REASON_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
_STATE_KEY = "VolumeBinding"

EVENT_PVC_CHANGE = ClusterEvent("PersistentVolumeClaim", ActionType.ADD | ActionType.UPDATE, "PvcChange")
EVENT_PV_CHANGE = ClusterEvent("PersistentVolume", ActionType.ADD | ActionType.UPDATE, "PvChange")
EVENT_STORAGE_CLASS_CHANGE = ClusterEvent("StorageClass", ActionType.ADD | ActionType.UPDATE, "StorageClassChange")

Obj = Mapping[str, Any]


class VolumeLister(Protocol):
    """Read-only lookups over the scheduler's caches."""

    def claim(self, namespace: str, name: str) -> Obj | None: ...

    def volume(self, name: str) -> Obj | None: ...

    def volumes(self) -> Sequence[Obj]: ...

    def storage_class(self, name: str) -> Obj | None: ...


@dataclass(frozen=True)
class _State:
    bound_volumes: tuple[Obj, ...]
    delayed_claims: tuple[Obj, ...]


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def claim_names(pod: PodInfo) -> list[str]:
    found: list[str] = []
    for volume in pod.spec.get("volumes") or ():
        source = volume.get("persistentVolumeClaim")
        if source and source.get("claimName"):
            found.append(str(source["claimName"]))
        elif volume.get("ephemeral") is not None:
            found.append(f"{pod.name}-{volume.get('name')}")
    return found


def class_of(obj: Obj) -> str:
    beta = (_meta(obj).get("annotations") or {}).get(ANN_BETA_STORAGE_CLASS)
    return str(beta) if beta is not None else str(_spec(obj).get("storageClassName") or "")


def _bytes(value: Any) -> int:
    try:
        return parse_quantity(str(value)).value() if value is not None else 0
    except (QuantityError, ValueError):
        return 0


def volume_fits(volume: Obj, node_info: NodeInfo) -> bool:
    """The volume's required node affinity matches the node (no affinity: every node)."""
    required = (_spec(volume).get("nodeAffinity") or {}).get("required")
    if not required:
        return True
    terms = [NodeSelectorTerm.parse(t) for t in required.get("nodeSelectorTerms") or ()]
    return any(term.matches(node_info) for term in terms)


def _static_volume_fits(claim: Obj, volume: Obj, node_info: NodeInfo) -> bool:
    spec = _spec(volume)
    if spec.get("claimRef") or (volume.get("status") or {}).get("phase") not in (None, "", "Available"):
        return False
    if _meta(volume).get("deletionTimestamp") or class_of(volume) != class_of(claim):
        return False
    requested = _bytes(((_spec(claim).get("resources") or {}).get("requests") or {}).get("storage"))
    if _bytes((spec.get("capacity") or {}).get("storage")) < requested:
        return False
    if not set(_spec(claim).get("accessModes") or ()) <= set(spec.get("accessModes") or ()):
        return False
    if (spec.get("volumeMode") or "Filesystem") != (_spec(claim).get("volumeMode") or "Filesystem"):
        return False
    return volume_fits(volume, node_info)


class VolumeBinding:
    NAME: ClassVar[str] = NAME
    EVENTS: ClassVar[tuple[ClusterEvent, ...]] = (
        EVENT_NODE_ADD,
        EVENT_PVC_CHANGE,
        EVENT_PV_CHANGE,
        EVENT_STORAGE_CLASS_CHANGE,
    )

    def __init__(self, lister: VolumeLister) -> None:
        self.lister = lister

    def _is_delayed(self, claim: Obj) -> bool:
        name = class_of(claim)
        found = self.lister.storage_class(name) if name else None
        return found is not None and found.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER

    def pre_filter(self, pod: PodInfo, snapshot: Snapshot) -> PreFilterResult:
        names = claim_names(pod)
        if not names:
            return PRE_FILTER_SKIP
        bound: list[Obj] = []
        delayed: list[Obj] = []
        immediate_unbound = False
        for name in names:
            claim = self.lister.claim(pod.namespace, name)
            if claim is None:
                return PreFilterResult(status=Status.unresolvable(f'persistentvolumeclaim "{name}" not found'))
            if _meta(claim).get("deletionTimestamp"):
                return PreFilterResult(status=Status.unresolvable(f'persistentvolumeclaim "{name}" is being deleted'))
            volume_name = _spec(claim).get("volumeName")
            if volume_name and (claim.get("status") or {}).get("phase") == "Bound":
                volume = self.lister.volume(str(volume_name))
                if volume is None:
                    return PreFilterResult(status=Status.unresolvable(f'persistentvolume "{volume_name}" not found'))
                bound.append(volume)
            elif self._is_delayed(claim):
                delayed.append(claim)
            else:
                immediate_unbound = True
        if immediate_unbound:
            return PreFilterResult(status=Status.unresolvable(ERR_REASON_UNBOUND_IMMEDIATE))
        pod.cache[_STATE_KEY] = _State(tuple(bound), tuple(delayed))
        return PreFilterResult()

    def filter(self, pod: PodInfo, node_info: NodeInfo) -> Status:
        state = pod.cache.get(_STATE_KEY)
        if state is None:
            return SUCCESS
        if not all(volume_fits(v, node_info) for v in state.bound_volumes):
            return Status.unresolvable(ERR_REASON_NODE_CONFLICT)
        for claim in state.delayed_claims:
            selected = (_meta(claim).get("annotations") or {}).get(ANN_SELECTED_NODE)
            if selected and selected != node_info.name:
                return Status.unresolvable(ERR_REASON_NODE_CONFLICT)  # already committed to another node
            if self._provisioning(claim):
                continue
            if not any(_static_volume_fits(claim, v, node_info) for v in self.lister.volumes()):
                return Status.unschedulable(ERR_REASON_BIND_CONFLICT)
        return SUCCESS

    def _provisioning(self, claim: Obj) -> bool:
        found = self.lister.storage_class(class_of(claim))
        return found is not None and bool(found.get("provisioner")) and found.get("provisioner") != NO_PROVISIONER

    def claims_to_select(self, pod: PodInfo, node: str) -> list[tuple[str, str]]:
        """(namespace, name) of the unbound WaitForFirstConsumer claims PreBind annotates for `node`."""
        state = pod.cache.get(_STATE_KEY)
        if state is None:
            return []
        found = []
        for claim in state.delayed_claims:
            if (_meta(claim).get("annotations") or {}).get(ANN_SELECTED_NODE) != node:
                found.append((str(_meta(claim).get("namespace") or ""), str(_meta(claim).get("name") or "")))
        return found


__all__ = [
    "ANN_SELECTED_NODE",
    "ERR_REASON_BIND_CONFLICT",
    "ERR_REASON_NODE_CONFLICT",
    "ERR_REASON_UNBOUND_IMMEDIATE",
    "NAME",
    "VolumeBinding",
    "VolumeLister",
    "claim_names",
    "volume_fits",
]
