"""Storage admission on create: DefaultStorageClass and StorageObjectInUseProtection.

* DefaultStorageClass: a PersistentVolumeClaim that names no class (`spec.storageClassName`
  absent/null and no beta annotation) gets the default StorageClass — the one annotated
  `storageclass.kubernetes.io/is-default-class: "true"` (or the beta key); of several, the newest,
  then by name, as upstream's GetDefaultClass.  An explicit `""` means "no class" and is kept.
* StorageObjectInUseProtection: new claims get the `kubernetes.io/pvc-protection` finalizer and
  new volumes `kubernetes.io/pv-protection`, so the protection controllers decide when they may go.

`admit_storage(plural, obj, classes)` mutates `obj` (the request's own copy); `classes` lists the
stored StorageClasses.  Pure otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


def default_storage_class(classes: Iterable[Mapping[str, Any]]) -> str | None:
    found = [
        c
        for c in classes
        if any(((c.get("metadata") or {}).get("annotations") or {}).get(k) == "true" for k in DEFAULT_CLASS_ANNOTATIONS)
    ]
    if not found:
        return None
    found.sort(key=lambda c: str((c.get("metadata") or {}).get("name") or ""))
    found.sort(key=lambda c: str((c.get("metadata") or {}).get("creationTimestamp") or ""), reverse=True)
    return str(found[0]["metadata"]["name"])


def _add_finalizer(obj: dict[str, Any], finalizer: str) -> None:
    meta = obj.setdefault("metadata", {})
    finalizers = list(meta.get("finalizers") or [])
    if finalizer not in finalizers:
        finalizers.append(finalizer)
    meta["finalizers"] = finalizers


def admit_storage(plural: str, obj: dict[str, Any], classes: Iterable[Mapping[str, Any]]) -> None:
    """Apply both admission steps to a core `persistentvolumeclaims` / `persistentvolumes` create."""
    if plural == "persistentvolumeclaims":
        spec = obj.setdefault("spec", {})
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if spec.get("storageClassName") is None and BETA_CLASS_ANNOTATION not in annotations:
            name = default_storage_class(classes)
            if name is not None:
                spec["storageClassName"] = name
        _add_finalizer(obj, PVC_PROTECTION_FINALIZER)
    elif plural == "persistentvolumes":
        _add_finalizer(obj, PV_PROTECTION_FINALIZER)


__all__ = ["PVC_PROTECTION_FINALIZER", "PV_PROTECTION_FINALIZER", "admit_storage", "default_storage_class"]
