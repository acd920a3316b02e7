"""The DaemonSet controller's decisions: which pods to create and delete on each node (upstream
podsShouldBeOnNode / manage), what new pods look like (CreatePodTemplate), how a rolling update
proceeds within maxUnavailable and maxSurge (upstream rollingUpdate), and the per-node failed-pod
back-off.  The status counts are in `daemonset_status`.

Pure functions (the back-off is plain state over times it is given): the pods the DaemonSet owns
(grouped by the node they are for), per-node eligibility and the current revision's hash in; pods
to delete and nodes to create on out.  The controller (`daemonset.py`) applies them.

Contracts, as upstream:

* A pod is *updated* when its `controller-revision-hash` label is the current revision's hash (or,
  for DaemonSets carrying the deprecated `deprecated.daemonset.template.generation` annotation,
  when its `pod-template-generation` label equals it).
* Per node (`plan_node`): an eligible node without pods gets one; failed pods and succeeded pods
  are deleted (the shell rate-limits failed ones per node); pods being deleted are ignored, so a
  replacement waits until the old pod is gone (host ports, one daemon per node) unless surge is
  allowed.  Without surge, surplus pods go, the oldest scheduled one stays.  With surge, at most
  the oldest updated and the oldest old pod stay, and the old one goes once the new one is
  available (or the old one is not ready).  A node that may not keep its pods loses them all.
* Rolling updates (`plan_rolling_update`) only replace pods the per-node plan left alone; deleted
  pods do not count as unavailable, so an update makes progress when nodes are down.
* maxUnavailable and maxSurge scale to the desired number of nodes, percentages rounded up; both
  resolving to 0 means 1 unavailable (upstream's guard against an impossible configuration).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubelite.controllers.daemonset_placement import Eligibility, daemon_tolerations, target_node_name
from kubelite.controllers.history import CONTROLLER_REVISION_HASH_LABEL
from kubelite.controllers.podutil import is_available, is_ready, is_terminal, is_terminating
from kubelite.machinery.meta import deep_copy

POD_TEMPLATE_GENERATION_LABEL = "pod-template-generation"  # extensions DaemonSetTemplateGenerationKey
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"
DEFAULT_MAX_UNAVAILABLE: int | str = 1

Pod = dict[str, Any]
Obj = Mapping[str, Any]


# -- small facts ------------------------------------------------------------------------------------


def _labels(obj: Obj) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def template_generation(daemonset: Obj) -> int | None:
    """The deprecated template generation annotation's value (None when absent or not a number)."""
    text = ((daemonset.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def generation_label(daemonset: Obj) -> str:
    """What new pods carry as `pod-template-generation`: the annotation's value when the DaemonSet
    has one, else its `metadata.generation`."""
    generation = template_generation(daemonset)
    if generation is None:
        generation = int((daemonset.get("metadata") or {}).get("generation") or 0)
    return str(generation)


def is_pod_updated(pod: Obj, hash_value: str, generation: int | None) -> bool:
    """Upstream IsPodUpdated (see the module docstring)."""
    labels = _labels(pod)
    if hash_value and labels.get(CONTROLLER_REVISION_HASH_LABEL) == hash_value:
        return True
    return generation is not None and labels.get(POD_TEMPLATE_GENERATION_LABEL) == str(generation)


def min_ready_seconds(daemonset: Obj) -> int:
    return int((daemonset.get("spec") or {}).get("minReadySeconds") or 0)


def strategy_type(daemonset: Obj) -> str:
    return str(((daemonset.get("spec") or {}).get("updateStrategy") or {}).get("type") or ROLLING_UPDATE)


def _creation_key(pod: Obj) -> tuple[int, str, str]:
    scheduled = bool((pod.get("spec") or {}).get("nodeName"))
    meta = pod.get("metadata") or {}
    return (0 if scheduled else 1, str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def by_age(pods: Iterable[Pod]) -> list[Pod]:
    """Scheduled pods first, then oldest first, then by name (upstream
    podByCreationTimestampAndPhase): the first pod is the one a node keeps and reports."""
    return sorted(pods, key=_creation_key)


def group_by_node(pods: Iterable[Pod], *, include_deleted_terminal: bool = False) -> dict[str, list[Pod]]:
    """Pods by the node they are for (`target_node_name`); pods naming no node are left out, and
    so are finished pods being deleted unless asked for (upstream getNodesToDaemonPods)."""
    grouped: dict[str, list[Pod]] = {}
    for pod in pods:
        if not include_deleted_terminal and is_terminal(pod) and is_terminating(pod):
            continue
        node = target_node_name(pod)
        if node is None:
            continue
        grouped.setdefault(node, []).append(pod)
    return grouped


# -- maxSurge / maxUnavailable ----------------------------------------------------------------------


def scaled_value(value: int | str, total: int, *, round_up: bool) -> int:
    """An IntOrString: the int itself, or a percentage of `total` (upstream
    GetScaledValueFromIntOrPercent); ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            raise ValueError(f"invalid value for IntOrString: invalid value {value!r}") from None
        scaled = percent * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}")


def _rolling(daemonset: Obj) -> Mapping[str, Any] | None:
    strategy = (daemonset.get("spec") or {}).get("updateStrategy") or {}
    if (strategy.get("type") or ROLLING_UPDATE) != ROLLING_UPDATE:
        return None
    return strategy.get("rollingUpdate") or {}


def surge_count(daemonset: Obj, number_to_schedule: int) -> int:
    """maxSurge of `number_to_schedule` (0 unless a rolling update asks for surge)."""
    rolling = _rolling(daemonset)
    if rolling is None or rolling.get("maxSurge") is None:
        return 0
    return scaled_value(rolling["maxSurge"], number_to_schedule, round_up=True)


def unavailable_count(daemonset: Obj, number_to_schedule: int) -> int:
    """maxUnavailable of `number_to_schedule` (0 for OnDelete; 1 when unset, the apps/v1 default)."""
    rolling = _rolling(daemonset)
    if rolling is None:
        return 0
    value = rolling.get("maxUnavailable")
    return scaled_value(DEFAULT_MAX_UNAVAILABLE if value is None else value, number_to_schedule, round_up=True)


def allows_surge(daemonset: Obj) -> bool:
    """More than one pod may run on a node (upstream AllowsSurge); a bad value allows none."""
    try:
        return surge_count(daemonset, 1) > 0
    except ValueError:
        return False


def rolling_limits(daemonset: Obj, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) for `desired` nodes (upstream updatedDesiredNodeCounts)."""
    max_unavailable = unavailable_count(daemonset, desired)
    max_surge = surge_count(daemonset, desired)
    if desired > 0 and max_unavailable == 0 and max_surge == 0:
        max_unavailable = 1
    return max_surge, max_unavailable


# -- the per-node plan (manage) ---------------------------------------------------------------------


@dataclass(frozen=True)
class NodePlan:
    """What one node needs: a new pod, pods to delete, and finished pods to delete — `failed` ones
    only when the per-node back-off allows (the shell decides), `succeeded` ones at once."""

    create: bool = False
    delete: tuple[Pod, ...] = ()
    failed: tuple[Pod, ...] = ()
    succeeded: tuple[Pod, ...] = ()


def plan_node(
    pods: Sequence[Pod],
    eligibility: Eligibility,
    *,
    hash_value: str,
    surge: bool,
    min_ready: int,
    now: datetime,
) -> NodePlan:
    """Upstream podsShouldBeOnNode for one node and the DaemonSet's pods for it (see the module
    docstring)."""
    if eligibility.should_run and not pods:
        return NodePlan(create=True)
    if not pods:
        return NodePlan()
    if not eligibility.should_continue_running:
        return NodePlan(delete=tuple(p for p in pods if not is_terminating(p)))
    failed: list[Pod] = []
    succeeded: list[Pod] = []
    running: list[Pod] = []
    for pod in pods:
        if is_terminating(pod):
            continue
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Failed":
            failed.append(pod)
        elif phase == "Succeeded":
            succeeded.append(pod)
        else:
            running.append(pod)
    finished = {"failed": tuple(failed), "succeeded": tuple(succeeded)}
    if not surge:
        return NodePlan(delete=tuple(by_age(running)[1:]), **finished)
    if not running:
        return NodePlan(create=eligibility.should_run, **finished)
    return NodePlan(delete=tuple(_surge_surplus(running, hash_value, min_ready, now)), **finished)


def _surge_surplus(running: Sequence[Pod], hash_value: str, min_ready: int, now: datetime) -> list[Pod]:
    """With surge: keep the oldest new and the oldest old pod; the old one too goes when it is not
    ready or the new one is available."""
    surplus: list[Pod] = []
    oldest_new: Pod | None = None
    oldest_old: Pod | None = None
    for pod in by_age(running):
        if _labels(pod).get(CONTROLLER_REVISION_HASH_LABEL) == hash_value:
            if oldest_new is None:
                oldest_new = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        surplus.append(pod)
    if oldest_new is not None and oldest_old is not None:
        if not is_ready(oldest_old) or is_available(oldest_new, min_ready, now):
            surplus.append(oldest_old)
    return surplus


def unscheduled_without_node(node_pods: Mapping[str, Sequence[Pod]], node_names: Iterable[str]) -> list[Pod]:
    """Unbound pods for nodes that do not exist: nothing else will ever remove them (bound pods of
    deleted nodes are the pod garbage collector's, as upstream)."""
    existing = set(node_names)
    return [
        pod
        for node, pods in sorted(node_pods.items())
        if node not in existing
        for pod in pods
        if not (pod.get("spec") or {}).get("nodeName")
    ]


# -- rolling updates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollingPlan:
    """Old pods to delete, and nodes to create an updated pod on (surge only)."""

    delete: tuple[Pod, ...] = ()
    create_on: tuple[str, ...] = ()


def updated_and_old(
    pods: Sequence[Pod], hash_value: str, generation: int | None
) -> tuple[Pod | None, Pod | None, bool]:
    """(the updated pod, the old pod, True) among the node's pods not being deleted; (None, None,
    False) when there are two of either kind (the per-node plan prunes those first)."""
    new: Pod | None = None
    old: Pod | None = None
    for pod in pods:
        if is_terminating(pod):
            continue
        if is_pod_updated(pod, hash_value, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def plan_rolling_update(
    node_pods: Mapping[str, Sequence[Pod]],
    *,
    hash_value: str,
    generation: int | None,
    max_surge: int,
    max_unavailable: int,
    desired: int,
    should_run: Mapping[str, bool],
    min_ready: int,
    now: datetime,
) -> RollingPlan:
    """Upstream rollingUpdate.  `node_pods` has an entry (maybe empty) for every node that should
    run a pod and for every node that has pods; nodes are visited in name order."""
    if max_surge == 0:
        return _replace_within_unavailable(node_pods, hash_value, generation, max_unavailable, min_ready, now)
    return _surge(node_pods, hash_value, generation, max_surge, desired, should_run, min_ready, now)


def _replace_within_unavailable(
    node_pods: Mapping[str, Sequence[Pod]],
    hash_value: str,
    generation: int | None,
    max_unavailable: int,
    min_ready: int,
    now: datetime,
) -> RollingPlan:
    """Without surge: delete old pods (their nodes then get updated ones from the per-node plan)
    while at most `max_unavailable` nodes lack an available pod; unavailable old pods always go."""
    unavailable = 0
    replace_now: list[Pod] = []
    candidates: list[Pod] = []
    for node in sorted(node_pods):
        new, old, ok = updated_and_old(node_pods[node], hash_value, generation)
        if not ok or (new is None) == (old is None):
            unavailable += 1  # the per-node plan is still creating or pruning here
        elif new is not None:
            if not is_available(new, min_ready, now):
                unavailable += 1
        elif old is not None:
            if not is_available(old, min_ready, now):
                replace_now.append(old)
                unavailable += 1
            elif unavailable < max_unavailable:
                candidates.append(old)
    room = min(max(max_unavailable - unavailable, 0), len(candidates))
    return RollingPlan(delete=tuple(replace_now + candidates[:room]))


def _surge(
    node_pods: Mapping[str, Sequence[Pod]],
    hash_value: str,
    generation: int | None,
    max_surge: int,
    desired: int,
    should_run: Mapping[str, bool],
    min_ready: int,
    now: datetime,
) -> RollingPlan:
    """With surge: start an updated pod beside each old one (at once where the old pod is not
    available, else at most `max_surge` at a time), delete each old pod once its successor is
    available, and delete pods on nodes that no longer qualify only while enough others are up."""
    delete: list[Pod] = []
    not_qualified: list[Pod] = []
    allowed: list[str] = []
    candidates: list[str] = []
    surging = 0
    available = 0
    for node in sorted(node_pods):
        new, old, ok = updated_and_old(node_pods[node], hash_value, generation)
        if not ok:
            surging += 1
            continue
        counted = old if old is not None else new
        if counted is not None and is_available(counted, min_ready, now):
            available += 1
        if old is None:
            continue
        if new is None:
            qualifies = should_run.get(node, False)
            if not is_available(old, min_ready, now):
                if qualifies:
                    allowed.append(node)
                else:
                    delete.append(old)
            elif not qualifies:
                not_qualified.append(old)
            elif surging < max_surge:
                candidates.append(node)
        elif not is_available(new, min_ready, now):
            surging += 1
        else:
            delete.append(old)
    deletable = min(max(available - desired, 0), len(not_qualified))
    delete.extend(not_qualified[:deletable])
    room = min(max(max_surge - surging, 0), len(candidates))
    return RollingPlan(delete=tuple(delete), create_on=tuple(allowed + candidates[:room]))


# -- new pods -----------------------------------------------------------------------------------------


def daemon_pod_template(daemonset: Obj, hash_value: str) -> dict[str, Any]:
    """The DaemonSet's template as every new pod gets it (upstream CreatePodTemplate): the daemon
    tolerations, and the `pod-template-generation` and `controller-revision-hash` labels."""
    template = deep_copy(dict((daemonset.get("spec") or {}).get("template") or {}))
    spec = template.get("spec") or {}
    spec["tolerations"] = daemon_tolerations(spec)
    template["spec"] = spec
    meta = template.get("metadata") or {}
    meta["labels"] = {
        **(meta.get("labels") or {}),
        POD_TEMPLATE_GENERATION_LABEL: generation_label(daemonset),
        CONTROLLER_REVISION_HASH_LABEL: hash_value,
    }
    template["metadata"] = meta
    return template


# -- failed pods ------------------------------------------------------------------------------------

FAILED_POD_BACKOFF_INITIAL = 1.0  # kube-controller-manager's failedPodsBackoff: 1 s …
FAILED_POD_BACKOFF_MAX = 900.0  # … doubling up to 15 min


class FailedPodBackoff:
    """Per-key exponential back-off on a monotonic clock (upstream flowcontrol.Backoff without
    jitter): `next` starts a key at `initial` and doubles it up to `cap`; a key untouched for
    twice `cap` starts over, and `gc` forgets such keys."""

    def __init__(self, *, initial: float = FAILED_POD_BACKOFF_INITIAL, cap: float = FAILED_POD_BACKOFF_MAX) -> None:
        self.initial = initial
        self.cap = cap
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (delay, last update)

    def remaining(self, key: str, now: float) -> float:
        """Seconds left in `key`'s back-off period (0 when not backing off)."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            return 0.0
        delay, last = entry
        return max(0.0, delay - (now - last))

    def next(self, key: str, now: float) -> None:
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            delay = self.initial
        else:
            delay = min(entry[0] * 2, self.cap)
        self._entries[key] = (delay, now)

    def gc(self, now: float) -> None:
        self._entries = {k: e for k, e in self._entries.items() if not self._expired(e, now)}

    def _expired(self, entry: tuple[float, float], now: float) -> bool:
        return now - entry[1] > 2 * self.cap


__all__ = [
    "FAILED_POD_BACKOFF_INITIAL",
    "FAILED_POD_BACKOFF_MAX",
    "ON_DELETE",
    "POD_TEMPLATE_GENERATION_LABEL",
    "ROLLING_UPDATE",
    "TEMPLATE_GENERATION_ANNOTATION",
    "FailedPodBackoff",
    "NodePlan",
    "RollingPlan",
    "allows_surge",
    "by_age",
    "daemon_pod_template",
    "generation_label",
    "group_by_node",
    "is_pod_updated",
    "min_ready_seconds",
    "plan_node",
    "plan_rolling_update",
    "rolling_limits",
    "scaled_value",
    "strategy_type",
    "surge_count",
    "template_generation",
    "unavailable_count",
    "unscheduled_without_node",
    "updated_and_old",
]
