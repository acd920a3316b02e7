"""Pure helpers of the PersistentVolume controllers: upstream's annotation keys, class and size
lookups, and `find_matching_volume` (pkg/controller/volume/persistentvolume/index.go and
component-helpers/storage/volume).

Contracts: pure, no I/O, never mutate their arguments.  Objects are JSON dicts as the API serves
them; missing fields count as upstream's zero values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubelite.machinery.quantity import QuantityError, parse_quantity
from kubelite.machinery.selectors import (
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    label_selector_from_dict,
)

Obj = Mapping[str, Any]

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
ANN_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANN_BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"
NOT_SUPPORTED_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
HOSTNAME_LABEL = "kubernetes.io/hostname"

# phases
VOLUME_AVAILABLE, VOLUME_BOUND, VOLUME_RELEASED, VOLUME_FAILED, VOLUME_PENDING = (
    "Available",
    "Bound",
    "Released",
    "Failed",
    "Pending",
)
CLAIM_PENDING, CLAIM_BOUND, CLAIM_LOST = "Pending", "Bound", "Lost"

_NODE_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
    "Gt": Operator.GREATER_THAN,
    "Lt": Operator.LESS_THAN,
}


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def annotations(obj: Obj) -> Mapping[str, str]:
    return _meta(obj).get("annotations") or {}


def claim_class(claim: Obj) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation wins over spec.storageClassName."""
    found = annotations(claim).get(ANN_BETA_STORAGE_CLASS)
    if found is not None:
        return str(found)
    return str(_spec(claim).get("storageClassName") or "")


def volume_class(volume: Obj) -> str:
    found = annotations(volume).get(ANN_BETA_STORAGE_CLASS)
    if found is not None:
        return str(found)
    return str(_spec(volume).get("storageClassName") or "")


def _bytes(value: Any) -> int:
    if value is None:
        return 0
    try:
        return parse_quantity(str(value)).value()
    except (QuantityError, ValueError):
        return 0


def claim_request(claim: Obj) -> int:
    """Requested storage in bytes (0 when missing or unparsable)."""
    return _bytes(((_spec(claim).get("resources") or {}).get("requests") or {}).get("storage"))


def volume_capacity(volume: Obj) -> int:
    return _bytes((_spec(volume).get("capacity") or {}).get("storage"))


def volume_mode(obj: Obj) -> str:
    return str(_spec(obj).get("volumeMode") or "Filesystem")


def access_modes_contain(have: Iterable[str], want: Iterable[str]) -> bool:
    """Every mode the claim asks for is offered by the volume."""
    offered = set(have)
    return all(mode in offered for mode in want)


def is_volume_bound_to_claim(volume: Obj, claim: Obj) -> bool:
    """The volume's claimRef names the claim (and its uid, when the ref has one)."""
    ref = _spec(volume).get("claimRef")
    if not ref:
        return False
    meta = _meta(claim)
    if ref.get("name") != meta.get("name") or ref.get("namespace") != meta.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == meta.get("uid")


def _node_requirement(expression: Mapping[str, Any]) -> Requirement | None:
    operator = _NODE_OPERATORS.get(str(expression.get("operator") or ""))
    if operator is None:
        return None
    return Requirement(
        str(expression.get("key") or ""), operator, tuple(str(v) for v in expression.get("values") or ())
    )


def _term_matches(term: Mapping[str, Any], labels: Mapping[str, str], node_name: str) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term matches nothing
    for expression in expressions:
        requirement = _node_requirement(expression)
        if requirement is None or not requirement.matches(labels):
            return False
    for item in fields:
        values = [str(v) for v in item.get("values") or ()]
        if item.get("key") != "metadata.name" or item.get("operator") not in ("In", "NotIn"):
            return False
        if (node_name in values) != (item.get("operator") == "In"):
            return False
    return True


def volume_fits_node(volume: Obj, node_labels: Mapping[str, str], node_name: str) -> bool:
    """CheckNodeAffinity: a volume without `spec.nodeAffinity.required` fits every node; otherwise
    one of its terms must match the node's labels (and `metadata.name` fields)."""
    required = (_spec(volume).get("nodeAffinity") or {}).get("required")
    if not required:
        return True
    terms = required.get("nodeSelectorTerms") or []
    return any(_term_matches(term, node_labels, node_name) for term in terms)


def _claim_selector(claim: Obj) -> LabelSelector | None:
    selector = _spec(claim).get("selector")
    if selector is None:
        return None
    try:
        return label_selector_from_dict(selector)
    except SelectorError:
        return None


def find_matching_volume(
    claim: Obj,
    volumes: Iterable[Obj],
    *,
    node: Obj | None = None,
    delay_binding: bool = False,
    excluded: frozenset[str] = frozenset(),
) -> Obj | None:
    """The volume the claim should bind to (upstream's findMatchingVolume), or None.

    A volume pre-bound to this claim (claimRef) wins when it is big enough, of the claim's volume
    mode and fits `node`.  Otherwise the smallest Available, unbound volume of the claim's class
    whose capacity, access modes, volume mode, labels (claim selector) and node affinity fit.
    With `delay_binding` (WaitForFirstConsumer) and no node only pre-bound volumes are taken: the
    consumer's node decides.  Volumes being deleted and names in `excluded` are skipped.
    """
    requested = claim_request(claim)
    wanted_class = claim_class(claim)
    wanted_modes = list(_spec(claim).get("accessModes") or [])
    selector = _claim_selector(claim)
    if _spec(claim).get("selector") is not None and selector is None:
        return None  # an invalid selector matches nothing
    node_labels: Mapping[str, str] = (_meta(node).get("labels") or {}) if node is not None else {}
    node_name = str(_meta(node).get("name") or "") if node is not None else ""
    smallest: Obj | None = None
    for volume in volumes:
        name = str(_meta(volume).get("name") or "")
        if name in excluded:
            continue
        if not access_modes_contain(_spec(volume).get("accessModes") or [], wanted_modes):
            continue
        capacity = volume_capacity(volume)
        if capacity < requested:
            continue
        if volume_mode(volume) != volume_mode(claim):
            continue
        if _meta(volume).get("deletionTimestamp"):
            continue
        fits = node is None or volume_fits_node(volume, node_labels, node_name)
        if is_volume_bound_to_claim(volume, claim):
            return volume if fits else None
        if node is None and delay_binding:
            continue
        if _spec(volume).get("claimRef"):
            continue
        if (volume.get("status") or {}).get("phase") not in (None, "", VOLUME_AVAILABLE):
            continue
        if volume_class(volume) != wanted_class:
            continue
        if selector is not None and not selector.matches(_meta(volume).get("labels") or {}):
            continue
        if not fits:
            continue
        if smallest is None or volume_capacity(smallest) > capacity:
            smallest = volume
    return smallest


def is_default_class(storage_class: Obj) -> bool:
    found = annotations(storage_class)
    return found.get(ANN_DEFAULT_CLASS) == "true" or found.get(ANN_BETA_DEFAULT_CLASS) == "true"


def default_class(classes: Iterable[Obj]) -> Obj | None:
    """GetDefaultClass: of several default classes the newest wins (then the name, ascending)."""
    defaults = [c for c in classes if is_default_class(c)]
    if not defaults:
        return None
    defaults.sort(key=lambda c: str(_meta(c).get("name") or ""))
    defaults.sort(key=lambda c: str(_meta(c).get("creationTimestamp") or ""), reverse=True)
    return defaults[0]


def is_delay_binding(claim: Obj, classes: Mapping[str, Obj]) -> bool:
    """The claim's class exists and binds WaitForFirstConsumer."""
    name = claim_class(claim)
    if not name:
        return False
    found = classes.get(name)
    return found is not None and found.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER


def claim_ref(claim: Obj) -> dict[str, Any]:
    """The `spec.claimRef` a bound volume carries (GetReference of the claim)."""
    meta = _meta(claim)
    ref = {
        "kind": "PersistentVolumeClaim",
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "apiVersion": "v1",
        "resourceVersion": meta.get("resourceVersion"),
    }
    return {k: v for k, v in ref.items() if v}


def pod_claim_names(pod: Obj) -> list[str]:
    """Names of the claims a pod's volumes use (persistentVolumeClaim and generic ephemeral)."""
    names: list[str] = []
    pod_name = str(_meta(pod).get("name") or "")
    for volume in _spec(pod).get("volumes") or []:
        source = volume.get("persistentVolumeClaim")
        if source and source.get("claimName"):
            names.append(str(source["claimName"]))
        elif volume.get("ephemeral") is not None:
            names.append(f"{pod_name}-{volume.get('name')}")
    return names


__all__ = [
    "ANN_BETA_STORAGE_PROVISIONER",
    "ANN_BIND_COMPLETED",
    "ANN_BOUND_BY_CONTROLLER",
    "ANN_DEFAULT_CLASS",
    "ANN_DYNAMICALLY_PROVISIONED",
    "ANN_SELECTED_NODE",
    "ANN_STORAGE_PROVISIONER",
    "CLAIM_BOUND",
    "CLAIM_LOST",
    "CLAIM_PENDING",
    "PVC_PROTECTION_FINALIZER",
    "PV_PROTECTION_FINALIZER",
    "VOLUME_AVAILABLE",
    "VOLUME_BOUND",
    "VOLUME_FAILED",
    "VOLUME_RELEASED",
    "access_modes_contain",
    "claim_class",
    "claim_ref",
    "claim_request",
    "default_class",
    "find_matching_volume",
    "is_delay_binding",
    "is_volume_bound_to_claim",
    "pod_claim_names",
    "volume_capacity",
    "volume_class",
    "volume_fits_node",
]
