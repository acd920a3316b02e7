"""ObjectMeta, labels, annotations and label selectors: `ValidateObjectMeta[Update]` and friends.

Map keys are checked in sorted order, so the causes come out in a stable order (upstream walks Go
maps in random order).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubelite.apiserver.registry.validation import field, names
from kubelite.apiserver.registry.validation.field import Go
from kubelite.machinery.errors import Cause
from kubelite.machinery.selectors import LabelSelector, SelectorError, label_selector_from_dict

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
FINALIZER_ORPHAN = "orphan"
FINALIZER_FOREGROUND = "foregroundDeletion"


def validate_labels(labels: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(labels, Mapping):
        return causes
    for key in sorted(labels):
        value = labels[key]
        causes += field.each(path, key, names.qualified_name(key))
        causes += field.each(path, value, names.label_value(str(value if value is not None else "")))
    return causes


def validate_annotations(annotations: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(annotations, Mapping):
        return causes
    total = 0
    for key in sorted(annotations):
        # the rule is a qualified name, except that case does not matter
        causes += field.each(path, key, names.qualified_name(key.lower()))
        total += len(key.encode()) + len(str(annotations[key] or "").encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(field.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def validate_finalizers(finalizers: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(finalizers, list):
        return causes
    for finalizer in finalizers:
        causes += field.each(path, finalizer, names.qualified_name(str(finalizer)))
    if FINALIZER_ORPHAN in finalizers and FINALIZER_FOREGROUND in finalizers:
        causes.append(field.invalid(path, finalizers, "finalizer orphan and foregroundDeletion cannot be both set"))
    return causes


def validate_owner_references(refs: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(refs, list):
        return causes
    controller = ""
    for ref in refs:
        if not isinstance(ref, Mapping):
            continue
        api_version = str(ref.get("apiVersion") or "")
        if not api_version.rpartition("/")[2]:
            causes.append(field.invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not ref.get("kind"):
            causes.append(field.invalid(f"{path}.kind", str(ref.get("kind") or ""), "kind must not be empty"))
        if not ref.get("name"):
            causes.append(field.invalid(f"{path}.name", str(ref.get("name") or ""), "name must not be empty"))
        if not ref.get("uid"):
            causes.append(field.invalid(f"{path}.uid", str(ref.get("uid") or ""), "uid must not be empty"))
        if ref.get("controller"):
            current = f"{ref.get('kind')}/{ref.get('name')}"
            if controller:
                causes.append(
                    field.invalid(
                        path,
                        refs,
                        f'Only one reference can have Controller set to true. Found "true" in references '
                        f"for {controller} and {current}",
                    )
                )
            else:
                controller = current
    return causes


def validate_object_meta(obj: Mapping[str, Any], *, namespaced: bool | None, name_fn: names.NameFn) -> list[Cause]:
    """`ValidateObjectMeta`.  `namespaced=None` skips the namespace check (custom resources)."""
    meta = obj.get("metadata") or {}
    causes: list[Cause] = []
    generate_name = str(meta.get("generateName") or "")
    if generate_name:
        causes += field.each("metadata.generateName", generate_name, name_fn(generate_name, True))
    name = str(meta.get("name") or "")
    if not name:
        causes.append(field.required("metadata.name", "name or generateName is required"))
    else:
        causes += field.each("metadata.name", name, name_fn(name, False))
    namespace = str(meta.get("namespace") or "")
    if namespaced is True:
        if not namespace:
            causes.append(field.required("metadata.namespace"))
        else:
            causes += field.each("metadata.namespace", namespace, names.name_is_dns_label(namespace, False))
    elif namespaced is False and namespace:
        causes.append(field.forbidden("metadata.namespace", "not allowed on this type"))
    causes += field.nonnegative("metadata.generation", meta.get("generation"))
    causes += _meta_common(meta)
    return causes


def _meta_common(meta: Mapping[str, Any]) -> list[Cause]:
    causes = validate_labels(meta.get("labels"), "metadata.labels")
    causes += validate_annotations(meta.get("annotations"), "metadata.annotations")
    causes += validate_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences")
    return causes


def validate_object_meta_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[Cause]:
    """`ValidateObjectMetaUpdate`.  The resourceVersion check is the store's (it knows the revision)."""
    meta = new.get("metadata") or {}
    old_meta = old.get("metadata") or {}
    causes: list[Cause] = []
    if old_meta.get("deletionTimestamp"):
        added = sorted(set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ()))
        if added:
            causes.append(
                field.forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted, found new finalizers "
                    + field.go_string_slice(added),
                )
            )
    generation, old_generation = meta.get("generation") or 0, old_meta.get("generation") or 0
    if isinstance(generation, int) and isinstance(old_generation, int) and generation < old_generation:
        causes.append(field.invalid("metadata.generation", generation, "must not be decremented"))
    for name in ("name", "namespace", "uid"):
        causes += field.immutable(f"metadata.{name}", str(meta.get(name) or ""), str(old_meta.get(name) or ""))
    for name in ("creationTimestamp", "deletionTimestamp"):
        new_time, old_time = meta.get(name), old_meta.get(name)
        if (new_time or None) != (old_time or None):
            shown = field.go_time(new_time) if new_time or name == "creationTimestamp" else Go("null")
            causes.append(field.invalid(f"metadata.{name}", shown, field.IMMUTABLE))
    grace, old_grace = meta.get("deletionGracePeriodSeconds"), old_meta.get("deletionGracePeriodSeconds")
    if grace != old_grace:
        causes.append(field.invalid("metadata.deletionGracePeriodSeconds", grace, field.IMMUTABLE))
    causes += _meta_common(meta)
    return causes


# -- label selectors -------------------------------------------------------------------------------

SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(selector: Any, path: str) -> list[Cause]:
    """`ValidateLabelSelector` (strict: label values in selectors must be valid label values)."""
    causes: list[Cause] = []
    if not isinstance(selector, Mapping):
        return causes
    causes += validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(selector.get("matchExpressions") or ()):
        at = f"{path}.matchExpressions[{i}]"
        operator = expr.get("operator") or ""
        values = expr.get("values") or []
        if operator in ("In", "NotIn"):
            if not values:
                causes.append(field.required(f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                causes.append(
                    field.forbidden(
                        f"{at}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        else:
            causes.append(field.invalid(f"{at}.operator", operator, "not a valid selector operator"))
        causes += field.each(f"{at}.key", expr.get("key") or "", names.qualified_name(str(expr.get("key") or "")))
        for j, value in enumerate(values):
            causes += field.each(f"{at}.values[{j}]", value, names.label_value(str(value)))
    return causes


def selector_is_empty(selector: Mapping[str, Any]) -> bool:
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def as_selector(selector: Mapping[str, Any] | None) -> LabelSelector | None:
    """`metav1.LabelSelectorAsSelector`: NOTHING for a missing selector, None when it is invalid."""
    try:
        return label_selector_from_dict(selector)
    except SelectorError:
        return None
