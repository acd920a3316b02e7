"""Pure facts about StatefulSets and their pods and claims (upstream pkg/controller/statefulset
stateful_set_utils.go): identities, ordinals, claims, revisions and status counts.  No I/O; the
planner (`statefulset_plan`) and the shell use them.

Contracts:

* A pod `<set>-<ordinal>` belongs to the set by name (upstream isMemberOf); ordinals run from
  `spec.ordinals.start` for `spec.replicas` pods.  A pod's identity is its name, namespace and the
  labels `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`; its storage is
  one volume per volumeClaimTemplate naming the claim `<template>-<set>-<ordinal>`.
* Claims carry the template's labels plus the selector's matchLabels; their ownerReferences for
  `persistentVolumeClaimRetentionPolicy` are decided in `statefulset_claims`.
* "Created" means the pod exists in the API (it has a uid).  Upstream tests `status.phase != ""`,
  which is the same for pods the API server has defaulted; our fakes do not default the phase.
* A revision's data is `{"spec": {"template": {..., "$patch": "replace"}}}`, named
  `<set>-<hash>` with upstream's HashControllerRevision; pods carry the revision *name* in
  `controller-revision-hash`, and `status.currentRevision`/`updateRevision` are names too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubelite.client.interface import builtin
from kubelite.controllers.history import CONTROLLER_REVISION_HASH_LABEL, template_of
from kubelite.controllers.ownership import pod_from_template
from kubelite.controllers.podutil import is_available, is_ready, is_terminating
from kubelite.machinery.meta import deep_copy, name_of, namespace_of

STATEFULSETS = builtin("apps", "statefulsets")
PERSISTENT_VOLUME_CLAIMS = builtin("", "persistentvolumeclaims")
API_VERSION = "apps/v1"
KIND = "StatefulSet"

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"  # apps/v1 StatefulSetPodNameLabel
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"  # apps/v1 PodIndexLabel
REVISION_LABEL = CONTROLLER_REVISION_HASH_LABEL  # apps/v1 StatefulSetRevisionLabel

ORDERED_READY = "OrderedReady"
PARALLEL = "Parallel"
ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"
RETAIN = "Retain"
DELETE = "Delete"

_NAME_AND_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")

Obj = Mapping[str, Any]


# -- spec accessors --------------------------------------------------------------------------------


def _spec(sts: Obj) -> Mapping[str, Any]:
    return sts.get("spec") or {}


def replicas_of(sts: Obj) -> int:
    value = _spec(sts).get("replicas")
    return 1 if value is None else int(value)


def start_ordinal(sts: Obj) -> int:
    return int((_spec(sts).get("ordinals") or {}).get("start") or 0)


def end_ordinal(sts: Obj) -> int:
    """The last ordinal in range (start - 1 when there are no replicas)."""
    return start_ordinal(sts) + replicas_of(sts) - 1


def min_ready_seconds(sts: Obj) -> int:
    return int(_spec(sts).get("minReadySeconds") or 0)


def allows_burst(sts: Obj) -> bool:
    """Parallel pod management: no waiting for predecessors (upstream allowsBurst)."""
    return _spec(sts).get("podManagementPolicy") == PARALLEL


def strategy_type(sts: Obj) -> str:
    return str((_spec(sts).get("updateStrategy") or {}).get("type") or ROLLING_UPDATE)


def rolling_update(sts: Obj) -> Mapping[str, Any] | None:
    """`spec.updateStrategy.rollingUpdate` as given (None when absent)."""
    found = (_spec(sts).get("updateStrategy") or {}).get("rollingUpdate")
    return found if isinstance(found, Mapping) else None


def partition(sts: Obj) -> int:
    rolling = rolling_update(sts)
    return int((rolling or {}).get("partition") or 0)


def retention_policy(sts: Obj) -> tuple[str, str]:
    """(whenDeleted, whenScaled), Retain when unset."""
    policy = _spec(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    return str(policy.get("whenDeleted") or RETAIN), str(policy.get("whenScaled") or RETAIN)


def history_limit(sts: Obj) -> int:
    value = _spec(sts).get("revisionHistoryLimit")
    return 10 if value is None else max(0, int(value))


def max_unavailable(sts: Obj) -> int | None:
    """`rollingUpdate.maxUnavailable` scaled to the replicas, rounded down, at least 1 (upstream
    getStatefulSetMaxUnavailable); None when the field is not set, which selects the classic
    one-at-a-time rollout (1.32 with the MaxUnavailableStatefulSet gate off)."""
    value = (rolling_update(sts) or {}).get("maxUnavailable")
    if value is None:
        return None
    if isinstance(value, str) and value.endswith("%"):
        try:
            scaled = int(value[:-1]) * replicas_of(sts) // 100
        except ValueError:
            scaled = 1
    else:
        try:
            scaled = int(value)
        except (TypeError, ValueError):
            scaled = 1
    return max(1, scaled)


# -- identity --------------------------------------------------------------------------------------


def parent_and_ordinal(pod: Obj) -> tuple[str, int]:
    """(the set name, the ordinal) a pod's name encodes; ("", -1) when it encodes none."""
    found = _NAME_AND_ORDINAL.match(name_of(dict(pod)))
    if not found:
        return "", -1
    return found.group(1), int(found.group(2))


def ordinal_of(pod: Obj) -> int:
    return parent_and_ordinal(pod)[1]


def is_member_of(sts: Obj, pod: Obj) -> bool:
    return parent_and_ordinal(pod)[0] == name_of(dict(sts))


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{name_of(dict(sts))}-{ordinal}"


def in_ordinal_range(sts: Obj, pod: Obj) -> bool:
    ordinal = ordinal_of(pod)
    return ordinal >= 0 and start_ordinal(sts) <= ordinal <= end_ordinal(sts)


def identity_matches(sts: Obj, pod: Obj) -> bool:
    parent, ordinal = parent_and_ordinal(pod)
    labels = (pod.get("metadata") or {}).get("labels") or {}
    name = name_of(dict(pod))
    return (
        ordinal >= 0
        and parent == name_of(dict(sts))
        and name == pod_name(sts, ordinal)
        and namespace_of(dict(pod)) == namespace_of(dict(sts))
        and labels.get(POD_NAME_LABEL) == name
    )


def identity_labels(pod: Obj) -> dict[str, str]:
    """The identity labels a pod of this name must carry."""
    return {POD_NAME_LABEL: name_of(dict(pod)), POD_INDEX_LABEL: str(ordinal_of(pod))}


def revision_of(pod: Obj) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL) or "")


# -- storage ---------------------------------------------------------------------------------------


def claim_name(template: Obj, sts: Obj, ordinal: int) -> str:
    return f"{name_of(dict(template))}-{name_of(dict(sts))}-{ordinal}"


def claims_for(sts: Obj, ordinal: int) -> list[tuple[str, dict[str, Any]]]:
    """(template name, the claim to create) for each volumeClaimTemplate, in template order."""
    selector_labels = (_spec(sts).get("selector") or {}).get("matchLabels") or {}
    found = []
    for template in _spec(sts).get("volumeClaimTemplates") or ():
        claim = deep_copy(dict(template))
        meta = claim.setdefault("metadata", {})
        template_name = str(meta.get("name") or "")
        meta["name"] = claim_name(template, sts, ordinal)
        meta["namespace"] = namespace_of(dict(sts))
        meta["labels"] = {**(meta.get("labels") or {}), **selector_labels}
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        claim.pop("status", None)
        found.append((template_name, claim))
    return found


def storage_matches(sts: Obj, pod: Obj) -> bool:
    ordinal = ordinal_of(pod)
    if ordinal < 0:
        return False
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or ()}
    for template_name, claim in claims_for(sts, ordinal):
        source = (volumes.get(template_name) or {}).get("persistentVolumeClaim") or {}
        if source.get("claimName") != claim["metadata"]["name"]:
            return False
    return True


def with_storage(sts: Obj, pod: dict[str, Any]) -> None:
    """Give `pod` one claim volume per template (replacing same-named volumes), the others after."""
    claims = claims_for(sts, ordinal_of(pod))
    names = {template_name for template_name, _ in claims}
    spec = pod.setdefault("spec", {})
    volumes = [
        {"name": template_name, "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
        for template_name, claim in claims
    ]
    volumes += [v for v in spec.get("volumes") or () if v.get("name") not in names]
    if volumes:
        spec["volumes"] = volumes


# -- new pods --------------------------------------------------------------------------------------


def with_template(sts: Obj, revision: Obj | None) -> dict[str, Any]:
    """The set with the template `revision` restores (upstream ApplyRevision)."""
    applied = deep_copy(dict(sts))
    template = template_of(revision) if revision is not None else None
    if template is not None:
        applied.setdefault("spec", {})["template"] = template
    return applied


def new_pod(sts: Obj, ordinal: int) -> dict[str, Any]:
    """The pod of `ordinal` from the set's template (upstream newStatefulSetPod)."""
    template = _spec(sts).get("template") or {}
    pod = pod_from_template(dict(template), dict(sts), api_version=API_VERSION, kind=KIND)
    name = pod_name(sts, ordinal)
    pod["metadata"]["name"] = name
    pod["metadata"]["labels"] = {**(pod["metadata"].get("labels") or {}), POD_NAME_LABEL: name}
    pod["metadata"]["labels"][POD_INDEX_LABEL] = str(ordinal)
    pod["spec"]["hostname"] = name
    service = _spec(sts).get("serviceName")
    if service:
        pod["spec"]["subdomain"] = service
    with_storage(sts, pod)
    return pod


def new_versioned_pod(
    current_set: Obj, update_set: Obj, current_revision: str, update_revision: str, ordinal: int
) -> dict[str, Any]:
    """A pod at the current revision below the partition, else at the update revision (upstream
    newVersionedStatefulSetPod, with Go's `&&`/`||` grouping kept)."""
    start = start_ordinal(current_set)
    rolling = rolling_update(current_set)
    current_replicas = int((current_set.get("status") or {}).get("currentReplicas") or 0)
    if (strategy_type(current_set) == ROLLING_UPDATE and rolling is None and ordinal < start + current_replicas) or (
        rolling is not None and ordinal < start + partition(current_set)
    ):
        pod = new_pod(current_set, ordinal)
        pod["metadata"]["labels"][REVISION_LABEL] = current_revision
        return pod
    pod = new_pod(update_set, ordinal)
    pod["metadata"]["labels"][REVISION_LABEL] = update_revision
    return pod


# -- pod states ------------------------------------------------------------------------------------


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_created(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("uid"))


def is_failed(pod: Obj) -> bool:
    return _phase(pod) == "Failed"


def is_succeeded(pod: Obj) -> bool:
    return _phase(pod) == "Succeeded"


def is_pending(pod: Obj) -> bool:
    return _phase(pod) == "Pending"


def is_running_and_ready(pod: Obj) -> bool:
    return _phase(pod) == "Running" and is_ready(pod)


def is_running_and_available(pod: Obj, min_ready: int, now: datetime) -> bool:
    return is_available(pod, min_ready, now)


def is_healthy(pod: Obj) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


# -- status ----------------------------------------------------------------------------------------


@dataclass
class ReplicaCounts:
    replicas: int = 0
    ready: int = 0
    available: int = 0
    current: int = 0
    updated: int = 0


def count_replicas(
    pods: Iterable[Obj], *, min_ready: int, now: datetime, current_revision: str, update_revision: str
) -> ReplicaCounts:
    """Upstream computeReplicaStatus over `pods`."""
    counts = ReplicaCounts()
    for pod in pods:
        created = is_created(pod)
        if created:
            counts.replicas += 1
        if is_running_and_ready(pod):
            counts.ready += 1
            if is_running_and_available(pod, min_ready, now):
                counts.available += 1
        if created and not is_terminating(pod):
            revision = revision_of(pod)
            if revision == current_revision:
                counts.current += 1
            if revision == update_revision:
                counts.updated += 1
    return counts


def next_status(
    sts: Obj,
    counts: ReplicaCounts,
    *,
    current_revision: str,
    update_revision: str,
    collision_count: int,
) -> dict[str, Any]:
    """The status to write: the counts, the revisions, the generation observed, a completed
    rolling update folded in (upstream completeRollingUpdate); fields Go omits when empty are
    omitted; conditions are kept."""
    status: dict[str, Any] = {
        "observedGeneration": int((sts.get("metadata") or {}).get("generation") or 0),
        "replicas": counts.replicas,
        "readyReplicas": counts.ready,
        "currentReplicas": counts.current,
        "updatedReplicas": counts.updated,
        "currentRevision": current_revision,
        "updateRevision": update_revision,
        "collisionCount": collision_count,
        "availableReplicas": counts.available,
    }
    if strategy_type(sts) == ROLLING_UPDATE and counts.updated == counts.replicas and counts.ready == counts.replicas:
        status["currentReplicas"] = counts.updated
        status["currentRevision"] = update_revision
    for key in ("observedGeneration", "readyReplicas", "currentReplicas", "updatedReplicas"):
        if not status[key]:
            del status[key]
    for key in ("currentRevision", "updateRevision"):
        if not status[key]:
            del status[key]
    conditions = (sts.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = deep_copy(conditions)
    return status


_COMPARED = (
    "observedGeneration",
    "replicas",
    "currentReplicas",
    "readyReplicas",
    "updatedReplicas",
    "currentRevision",
    "availableReplicas",
    "updateRevision",
    "collisionCount",
)


def status_changed(sts: Obj, status: Mapping[str, Any]) -> bool:
    """Upstream inconsistentStatus (plus collisionCount, which upstream writes only alongside)."""
    old = sts.get("status") or {}
    for key in _COMPARED:
        empty: Any = "" if key.endswith("Revision") else 0
        if (status.get(key) or empty) != (old.get(key) or empty):
            return True
    return False


# -- revisions -------------------------------------------------------------------------------------


def live_revision_names(pods: Sequence[Obj], current: str, update: str) -> set[str]:
    return {current, update} | {revision_of(p) for p in pods}


def revisions_to_delete(revisions: Sequence[Obj], live: set[str], limit: int) -> list[Obj]:
    """The oldest not-live revisions beyond `limit` (upstream truncateHistory); `revisions` sorted."""
    history = [r for r in revisions if name_of(dict(r)) not in live]
    excess = len(history) - limit
    return history[:excess] if excess > 0 else []


__all__ = [
    "API_VERSION",
    "DELETE",
    "KIND",
    "ON_DELETE",
    "ORDERED_READY",
    "PARALLEL",
    "PERSISTENT_VOLUME_CLAIMS",
    "POD_INDEX_LABEL",
    "POD_NAME_LABEL",
    "RETAIN",
    "REVISION_LABEL",
    "ROLLING_UPDATE",
    "STATEFULSETS",
    "ReplicaCounts",
    "allows_burst",
    "claim_name",
    "claims_for",
    "count_replicas",
    "history_limit",
    "identity_labels",
    "identity_matches",
    "in_ordinal_range",
    "is_created",
    "is_healthy",
    "is_member_of",
    "is_running_and_available",
    "is_running_and_ready",
    "live_revision_names",
    "max_unavailable",
    "new_pod",
    "new_versioned_pod",
    "next_status",
    "ordinal_of",
    "parent_and_ordinal",
    "partition",
    "pod_name",
    "replicas_of",
    "retention_policy",
    "revision_of",
    "revisions_to_delete",
    "start_ordinal",
    "status_changed",
    "storage_matches",
    "strategy_type",
    "with_storage",
    "with_template",
]
