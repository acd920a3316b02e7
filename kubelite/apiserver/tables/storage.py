"""Storage kinds: volumes and claims, storage classes, CSI drivers and nodes, volume attachments."""

from __future__ import annotations

from datetime import datetime

from kubelite.apiserver.tables import descriptions as doc
from kubelite.apiserver.tables.format import AGE, NAME, Obj, age, as_list, column, get, name, quantity

PERSISTENT_VOLUME_COLUMNS = [
    NAME,
    column("Capacity", description=doc.PV_CAPACITY),
    column("Access Modes", description=doc.PV_ACCESS_MODES),
    column("Reclaim Policy", description=doc.PV_RECLAIM_POLICY),
    column("Status", description=doc.PV_PHASE),
    column("Claim", description=doc.PV_CLAIM_REF),
    column("StorageClass", description="StorageClass of the pv"),
    column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
    column("Reason", description=doc.PV_REASON),
    AGE,
    column("VolumeMode", priority=1, description=doc.PV_VOLUME_MODE),
]
PERSISTENT_VOLUME_CLAIM_COLUMNS = [
    NAME,
    column("Status", description=doc.PVC_PHASE),
    column("Volume", description=doc.PVC_VOLUME_NAME),
    column("Capacity", description=doc.PVC_CAPACITY),
    column("Access Modes", description=doc.PVC_ACCESS_MODES),
    column("StorageClass", description="StorageClass of the pvc"),
    column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
    AGE,
    column("VolumeMode", priority=1, description=doc.PVC_VOLUME_MODE),
]
STORAGE_CLASS_COLUMNS = [
    NAME,
    column("Provisioner", description=doc.SC_PROVISIONER),
    column("ReclaimPolicy", description=doc.SC_RECLAIM_POLICY),
    column("VolumeBindingMode", description=doc.SC_BINDING_MODE),
    column("AllowVolumeExpansion", description=doc.SC_EXPANSION),
    AGE,
]
CSI_DRIVER_COLUMNS = [
    NAME,
    column("AttachRequired", "boolean", doc.CSID_ATTACH),
    column("PodInfoOnMount", "boolean", doc.CSID_POD_INFO),
    column("StorageCapacity", "boolean", doc.CSID_CAPACITY),
    column("TokenRequests", description=doc.CSID_TOKENS),
    column("RequiresRepublish", "boolean", doc.CSID_REPUBLISH),
    column("Modes", description=doc.CSID_MODES),
    AGE,
]
CSI_NODE_COLUMNS = [
    NAME,
    column("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"),
    AGE,
]
VOLUME_ATTACHMENT_COLUMNS = [
    NAME,
    column("Attacher", fmt="name", description=doc.VA_ATTACHER),
    column("PV", description=doc.VA_PV_NAME),
    column("Node", description=doc.VA_NODE_NAME),
    column("Attached", "boolean", doc.VA_ATTACHED),
    AGE,
]

_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
_DEFAULT_CLASS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


def access_modes(modes: list) -> str:
    """`GetAccessModesAsString`: fixed order RWO, ROX, RWX, RWOP whatever the stored order."""
    present = set(modes)
    short = [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    return ",".join(abbreviation for mode, abbreviation in short if mode in present)


def _storage_class_of(obj: Obj) -> str:
    """The beta annotation wins over `spec.storageClassName` (`GetPersistentVolume[Claim]Class`)."""
    annotations = get(obj, "metadata", "annotations") or {}
    if _BETA_STORAGE_CLASS in annotations:
        return str(annotations[_BETA_STORAGE_CLASS])
    return str(get(obj, "spec", "storageClassName") or "")


def _phase(obj: Obj) -> str:
    if get(obj, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    return str(get(obj, "status", "phase") or "")


def _unset(value: object) -> str:
    return "<unset>" if value is None else str(value)


def persistent_volume_cells(obj: Obj, now: datetime) -> list:
    claim = get(obj, "spec", "claimRef")
    claim_cell = (
        f"{get(claim, 'namespace') or ''}/{get(claim, 'name') or ''}" if isinstance(claim, dict) else ""
    )
    return [
        name(obj),
        quantity(get(obj, "spec", "capacity", "storage")),
        access_modes(as_list(get(obj, "spec", "accessModes"))),
        str(get(obj, "spec", "persistentVolumeReclaimPolicy") or ""),
        _phase(obj),
        claim_cell,
        _storage_class_of(obj),
        _unset(get(obj, "spec", "volumeAttributesClassName")),
        str(get(obj, "status", "reason") or ""),
        age(obj, now),
        _unset(get(obj, "spec", "volumeMode")),
    ]


def persistent_volume_claim_cells(obj: Obj, now: datetime) -> list:
    volume = str(get(obj, "spec", "volumeName") or "")
    capacity = quantity(get(obj, "status", "capacity", "storage")) if volume else ""
    modes = access_modes(as_list(get(obj, "status", "accessModes"))) if volume else ""
    return [
        name(obj),
        _phase(obj),
        volume,
        capacity,
        modes,
        _storage_class_of(obj),
        _unset(get(obj, "spec", "volumeAttributesClassName")),
        age(obj, now),
        _unset(get(obj, "spec", "volumeMode")),
    ]


def storage_class_cells(obj: Obj, now: datetime) -> list:
    annotations = get(obj, "metadata", "annotations") or {}
    default = any(annotations.get(key) == "true" for key in _DEFAULT_CLASS)
    return [
        name(obj) + (" (default)" if default else ""),
        str(obj.get("provisioner") or ""),
        str(obj.get("reclaimPolicy") or "Delete"),
        str(obj.get("volumeBindingMode") or "Immediate"),
        obj.get("allowVolumeExpansion") is True,
        age(obj, now),
    ]


def csi_driver_cells(obj: Obj, now: datetime) -> list:
    spec = get(obj, "spec") or {}
    tokens = spec.get("tokenRequests")
    token_cell = (
        "<unset>" if tokens is None else ",".join(str(get(t, "audience") or "") for t in as_list(tokens))
    )
    modes = ",".join(str(m) for m in as_list(spec.get("volumeLifecycleModes"))) or "<none>"
    return [
        name(obj),
        spec.get("attachRequired") is not False,
        spec.get("podInfoOnMount") is True,
        spec.get("storageCapacity") is True,
        token_cell,
        spec.get("requiresRepublish") is True,
        modes,
        age(obj, now),
    ]


def csi_node_cells(obj: Obj, now: datetime) -> list:
    return [name(obj), len(as_list(get(obj, "spec", "drivers"))), age(obj, now)]


def volume_attachment_cells(obj: Obj, now: datetime) -> list:
    return [
        name(obj),
        str(get(obj, "spec", "attacher") or ""),
        str(get(obj, "spec", "source", "persistentVolumeName") or ""),
        str(get(obj, "spec", "nodeName") or ""),
        get(obj, "status", "attached") is True,
        age(obj, now),
    ]
