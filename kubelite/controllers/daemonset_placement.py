"""Which nodes a DaemonSet's pod belongs on: the scheduling predicates the DaemonSet controller
applies itself (upstream NodeShouldRunDaemonPod with component-helpers' nodeaffinity and taint
helpers), the default tolerations of daemon pods, and pinning a pod to its node.

Pure functions over plain JSON objects.  The controller may not import the scheduler (layering),
so the few predicates it needs live here, kept to what upstream's controller checks:

* `spec.nodeName` of the template (a DaemonSet restricted to one node by name);
* `spec.nodeSelector` and required node affinity: node selector terms are ORed, the requirements
  of one term ANDed; `matchExpressions` operators In/NotIn/Exists/DoesNotExist/Gt/Lt on labels,
  `matchFields` In/NotIn on `metadata.name`.  A term that is empty or malformed (In with no
  values, Gt with a non-integer, an unknown operator …) matches no node, as upstream ignores
  parse errors term by term;
* taints: an untolerated NoSchedule or NoExecute taint makes a node ineligible for a new pod; only
  an untolerated NoExecute taint also evicts a pod that is already there.  The pod's tolerations
  include the daemon defaults (`daemon_tolerations`), so not-ready, unreachable, pressure and
  unschedulable nodes keep their daemons — which is also how DaemonSets ignore
  `spec.unschedulable` (it shows up as the node.kubernetes.io/unschedulable taint).

Resources (CPU, memory, ports) are not checked here: the default scheduler binds the pods and
reports what does not fit, as upstream since DaemonSet pods are scheduled by the scheduler.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubelite.machinery.meta import deep_copy

NODE_NAME_FIELD = "metadata.name"  # metav1.ObjectNameField

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"

_INT64 = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

Obj = Mapping[str, Any]


# -- node selector terms -----------------------------------------------------------------------------


class _Malformed(Exception):
    """A requirement upstream's selector parser refuses: its whole term matches nothing."""


def _parse_int64(text: Any) -> int | None:
    """Go's strconv.ParseInt(text, 10, 64): None for anything it refuses."""
    if not isinstance(text, str) or not _INT64.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _label_requirement(req: Obj, labels: Mapping[str, str]) -> bool:
    key = req.get("key") or ""
    op = req.get("operator")
    values = list(req.get("values") or ())
    if op in ("In", "NotIn"):
        if not values:
            raise _Malformed(f"for 'in', 'notin' operators, values set can't be empty ({key})")
        found = key in labels and labels[key] in values
        return found if op == "In" else not found
    if op in ("Exists", "DoesNotExist"):
        if values:
            raise _Malformed(f"values set must be empty for exists and does not exist ({key})")
        return (key in labels) is (op == "Exists")
    if op in ("Gt", "Lt"):
        wanted = _parse_int64(values[0]) if len(values) == 1 else None
        if wanted is None:
            raise _Malformed(f"for 'Gt', 'Lt' operators, exactly one integer value is required ({key})")
        have = _parse_int64(labels.get(key)) if key in labels else None
        if have is None:
            return False
        return have > wanted if op == "Gt" else have < wanted
    raise _Malformed(f"{op!r} is not a valid label selector operator")


def _field_requirement(req: Obj, node_name: str) -> bool:
    op = req.get("operator")
    values = list(req.get("values") or ())
    if op not in ("In", "NotIn"):
        raise _Malformed(f"{op!r} is not a valid node field selector operator")
    if len(values) != 1:
        raise _Malformed(f"unexpected number of value ({len(values)}) for node field selector operator {op!r}")
    field_value = node_name if req.get("key") == NODE_NAME_FIELD else ""
    return (field_value == values[0]) is (op == "In")


def term_matches(term: Obj, node: Obj) -> bool:
    """One NodeSelectorTerm: every requirement holds; empty or malformed terms match nothing."""
    expressions = list(term.get("matchExpressions") or ())
    fields = list(term.get("matchFields") or ())
    if not expressions and not fields:
        return False
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    name = str(meta.get("name") or "")
    try:
        # evaluate everything first: a malformed requirement anywhere spoils the term
        results = [_label_requirement(r, labels) for r in expressions]
        results += [_field_requirement(r, name) for r in fields]
    except _Malformed:
        return False
    return all(results)


def node_selector_matches(selector: Obj, node: Obj) -> bool:
    """A NodeSelector: any of its terms matches (no terms: nothing matches)."""
    return any(term_matches(term, node) for term in selector.get("nodeSelectorTerms") or ())


def required_affinity_matches(pod_spec: Obj, node: Obj) -> bool:
    """`spec.nodeSelector` (every label equal) and the required node affinity, if any (upstream
    GetRequiredNodeAffinity(pod).Match(node))."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required is None:
        return True
    return node_selector_matches(required, node)


# -- taints and tolerations --------------------------------------------------------------------------


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Upstream Toleration.ToleratesTaint: an empty effect matches every effect, an empty key
    every key; operator Exists ignores the value, Equal (or empty) needs it equal."""
    effect = toleration.get("effect") or ""
    if effect and effect != (taint.get("effect") or ""):
        return False
    key = toleration.get("key") or ""
    if key and key != (taint.get("key") or ""):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def find_untolerated_taint(taints: Iterable[Obj], tolerations: Sequence[Obj], *, effects: Iterable[str]) -> Obj | None:
    """The first taint with one of `effects` that no toleration tolerates."""
    wanted = set(effects)
    for taint in taints:
        if taint.get("effect") not in wanted:
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def _same_toleration(a: Obj, b: Obj) -> bool:
    """Upstream MatchToleration: tolerations are unique by key, effect, operator and value."""
    return all((a.get(f) or "") == (b.get(f) or "") for f in ("key", "effect", "operator", "value"))


def _add_or_update(tolerations: list[dict[str, Any]], toleration: dict[str, Any]) -> list[dict[str, Any]]:
    """Upstream AddOrUpdateTolerationInPodSpec: replace a toleration with the same key, effect,
    operator and value (dropping its tolerationSeconds), else append."""
    out: list[dict[str, Any]] = []
    replaced = False
    for existing in tolerations:
        if _same_toleration(existing, toleration):
            out.append(dict(toleration))
            replaced = True
        else:
            out.append(existing)
    if not replaced:
        out.append(dict(toleration))
    return out


def daemon_tolerations(pod_spec: Obj) -> list[dict[str, Any]]:
    """The pod's tolerations plus the ones every daemon pod gets (upstream
    AddOrUpdateDaemonPodTolerations): not-ready and unreachable NoExecute with no time limit, so
    node problems never evict a daemon; disk/memory/pid pressure and unschedulable NoSchedule;
    network-unavailable NoSchedule for host-network pods."""
    defaults: list[tuple[str, str]] = [
        (TAINT_NOT_READY, NO_EXECUTE),
        (TAINT_UNREACHABLE, NO_EXECUTE),
        (TAINT_DISK_PRESSURE, NO_SCHEDULE),
        (TAINT_MEMORY_PRESSURE, NO_SCHEDULE),
        (TAINT_PID_PRESSURE, NO_SCHEDULE),
        (TAINT_UNSCHEDULABLE, NO_SCHEDULE),
    ]
    if pod_spec.get("hostNetwork"):
        defaults.append((TAINT_NETWORK_UNAVAILABLE, NO_SCHEDULE))
    tolerations = [dict(t) for t in pod_spec.get("tolerations") or ()]
    for key, effect in defaults:
        tolerations = _add_or_update(tolerations, {"key": key, "operator": "Exists", "effect": effect})
    return tolerations


# -- the decision per node ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Eligibility:
    """`should_run`: a daemon pod belongs on the node (create one if there is none).
    `should_continue_running`: a daemon pod already there may stay."""

    should_run: bool
    should_continue_running: bool


def node_should_run(node: Obj, daemonset: Obj) -> Eligibility:
    """Upstream NodeShouldRunDaemonPod: the template's nodeName, nodeSelector and required node
    affinity decide both answers; untolerated NoSchedule/NoExecute taints forbid a new pod, and
    only untolerated NoExecute taints evict an existing one."""
    pod_spec = ((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}
    node_name = str((node.get("metadata") or {}).get("name") or "")
    wanted_node = pod_spec.get("nodeName") or ""
    if wanted_node and wanted_node != node_name:
        return Eligibility(False, False)
    if not required_affinity_matches(pod_spec, node):
        return Eligibility(False, False)
    taints = list((node.get("spec") or {}).get("taints") or ())
    tolerations = daemon_tolerations(pod_spec)
    if find_untolerated_taint(taints, tolerations, effects=(NO_SCHEDULE, NO_EXECUTE)) is None:
        return Eligibility(True, True)
    evicting = find_untolerated_taint(taints, tolerations, effects=(NO_EXECUTE,))
    return Eligibility(False, evicting is None)


# -- pinning pods to nodes ---------------------------------------------------------------------------


def pin_to_node(affinity: Obj | None, node_name: str) -> dict[str, Any]:
    """`affinity` with its required node affinity replaced by one term selecting `node_name`
    through `matchFields` on metadata.name (upstream ReplaceDaemonSetPodNodeNameNodeAffinity: the
    other terms go — the controller has already checked them against this node — while preferred
    node affinity and pod (anti-)affinity stay)."""
    pinned = deep_copy(dict(affinity or {}))
    node_affinity = pinned.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [{"matchFields": [{"key": NODE_NAME_FIELD, "operator": "In", "values": [node_name]}]}]
    }
    return pinned


def target_node_name(pod: Obj) -> str | None:
    """The node a daemon pod is for: `spec.nodeName` once bound, before that the single value of
    its `matchFields` metadata.name In requirement (upstream GetTargetNodeName); None if neither."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or ():
        for req in term.get("matchFields") or ():
            if req.get("key") == NODE_NAME_FIELD and req.get("operator") == "In":
                values = list(req.get("values") or ())
                return str(values[0]) if len(values) == 1 else None
    return None


__all__ = [
    "NODE_NAME_FIELD",
    "NO_EXECUTE",
    "NO_SCHEDULE",
    "TAINT_DISK_PRESSURE",
    "TAINT_MEMORY_PRESSURE",
    "TAINT_NETWORK_UNAVAILABLE",
    "TAINT_NOT_READY",
    "TAINT_PID_PRESSURE",
    "TAINT_UNREACHABLE",
    "TAINT_UNSCHEDULABLE",
    "Eligibility",
    "daemon_tolerations",
    "find_untolerated_taint",
    "node_selector_matches",
    "node_should_run",
    "pin_to_node",
    "required_affinity_matches",
    "target_node_name",
    "term_matches",
    "tolerates",
]
