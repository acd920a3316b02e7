"""Decisions shared by every strategy (upstream's sync.go): the new ReplicaSet to create, scaling
outside a rollout, proportional scaling, and pruning the revision history.

A decision is a list of `ScaleStep`s (or of ReplicaSets to delete) that the controller applies in
order, stopping at the first failure — the same order upstream writes in, so the events read the
same.  Nothing here does I/O or changes its arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubelite.controllers.deployment.annotations import set_new_replica_set_annotations
from kubelite.controllers.deployment.util import (
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    POD_TEMPLATE_HASH_LABEL,
    active,
    by_revision,
    by_size_newer_first,
    by_size_older_first,
    compute_hash,
    find_active_or_latest,
    generation,
    has_revision_history_limit,
    int_annotation,
    is_rolling_update,
    is_saturated,
    max_surge,
    min_ready_seconds,
    new_rs_new_replicas,
    replicas,
    revision_history_limit,
    round_half_away,
    status_count,
    sum_replicas,
    template_of,
)
from kubelite.controllers.ownership import owner_reference
from kubelite.machinery.meta import deep_copy, name_of, namespace_of


@dataclass(frozen=True)
class ScaleStep:
    """Set ReplicaSet `name` to `replicas` (and its desired/max-replicas annotations to the
    Deployment's).  With `sync_annotations` the write also happens when only the annotations are
    stale (proportional scaling); without, an unchanged size means no write."""

    name: str
    replicas: int
    sync_annotations: bool = False


def collision_count(deployment: Mapping[str, Any]) -> int | None:
    value = (deployment.get("status") or {}).get("collisionCount")
    return None if value is None else int(value)


def new_replica_set(
    deployment: Mapping[str, Any], old_rss: Sequence[Mapping[str, Any]], new_revision: str
) -> dict[str, Any]:
    """The ReplicaSet to create for the Deployment's current template: named
    `<deployment>-<pod-template-hash>`, the hash in its labels, selector and template labels,
    sized as far as the strategy allows right now, annotated with `new_revision`."""
    template = deep_copy(dict(template_of(deployment)))
    pod_hash = compute_hash(template, collision_count(deployment))
    template_meta = template.get("metadata")
    if not isinstance(template_meta, dict):
        template_meta = template["metadata"] = {}
    labels = {**(template_meta.get("labels") or {}), POD_TEMPLATE_HASH_LABEL: pod_hash}
    template_meta["labels"] = labels
    selector = deep_copy(dict((deployment.get("spec") or {}).get("selector") or {}))
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), POD_TEMPLATE_HASH_LABEL: pod_hash}
    spec: dict[str, Any] = {"replicas": 0, "selector": selector, "template": template}
    if min_ready_seconds(deployment):
        spec["minReadySeconds"] = min_ready_seconds(deployment)
    rs: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{name_of(dict(deployment))}-{pod_hash}",
            "namespace": namespace_of(dict(deployment)),
            "labels": dict(labels),
            "ownerReferences": [owner_reference(dict(deployment), api_version="apps/v1", kind="Deployment")],
        },
        "spec": spec,
    }
    spec["replicas"] = new_rs_new_replicas(deployment, [*old_rss, rs], rs)
    set_new_replica_set_annotations(deployment, rs, new_revision, exists=False)
    return rs


def is_scaling_event(deployment: Mapping[str, Any], all_rss: Sequence[Mapping[str, Any] | None]) -> bool:
    """`spec.replicas` differs from the size some active ReplicaSet was last scaled for: a resize,
    not a template change (isScalingEvent)."""
    for rs in active(all_rss):  # type: ignore[arg-type]
        desired = int_annotation(rs, DESIRED_REPLICAS_ANNOTATION)
        if desired is not None and desired != replicas(deployment):
            return True
    return False


def plan_scale(
    deployment: Mapping[str, Any], new_rs: dict[str, Any] | None, old_rss: Sequence[dict[str, Any]]
) -> list[ScaleStep]:
    """Resize outside a rollout step (upstream's scale()).

    One active ReplicaSet (or none: the newest) takes the whole size.  A saturated new ReplicaSet
    means the old ones go to 0.  Otherwise, for RollingUpdate, the difference between
    `replicas + maxSurge` and what the active ReplicaSets hold is shared out in proportion to
    their sizes — larger first; on a tie newer first when growing, older first when shrinking — and
    the rounding leftover goes to the first.
    """
    want = replicas(deployment)
    single = find_active_or_latest(new_rs, old_rss)
    if single is not None:
        return [] if replicas(single) == want else [ScaleStep(name_of(single), want)]
    if is_saturated(deployment, new_rs):
        return [ScaleStep(name_of(rs), 0) for rs in active(old_rss)]
    if not is_rolling_update(deployment):
        return []
    all_rss = active([*old_rss, new_rs])
    allowed = want + max_surge(deployment) if want > 0 else 0
    to_add = allowed - sum_replicas(all_rss)
    if to_add > 0:
        all_rss = by_size_newer_first(all_rss)
    elif to_add < 0:
        all_rss = by_size_older_first(all_rss)
    sizes: dict[str, int] = {}
    added = 0
    for rs in all_rss:
        share = proportion(rs, deployment, to_add, added) if to_add else 0
        sizes[name_of(rs)] = replicas(rs) + share
        added += share
    steps = []
    for index, rs in enumerate(all_rss):
        size = sizes[name_of(rs)]
        if index == 0 and to_add:
            size = max(size + to_add - added, 0)
        steps.append(ScaleStep(name_of(rs), size, sync_annotations=True))
    return steps


def proportion(rs: Mapping[str, Any], deployment: Mapping[str, Any], to_add: int, added: int) -> int:
    """This ReplicaSet's share of `to_add` (GetProportion), capped by what is still to hand out."""
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _fraction(rs, deployment)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _fraction(rs: Mapping[str, Any], deployment: Mapping[str, Any]) -> int:
    """How many replicas this ReplicaSet gains (or loses) when the Deployment's maximum moves from
    the one recorded on it to the current one (getReplicaSetFraction)."""
    if replicas(deployment) == 0:
        return -replicas(rs)
    most = replicas(deployment) + max_surge(deployment)
    before = int_annotation(rs, MAX_REPLICAS_ANNOTATION)
    if not before:
        before = status_count(deployment, "replicas")
        if before == 0:
            return 0
    return round_half_away(replicas(rs) * most / before) - replicas(rs)


def plan_history_cleanup(deployment: Mapping[str, Any], old_rss: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Old ReplicaSets beyond `revisionHistoryLimit` to delete, lowest revision first; only those
    fully scaled down, with no pods left, whose last change the ReplicaSet controller has seen
    (cleanupDeployment)."""
    if not has_revision_history_limit(deployment):
        return []
    alive = [rs for rs in old_rss if not (rs.get("metadata") or {}).get("deletionTimestamp")]
    excess = len(alive) - revision_history_limit(deployment)
    if excess <= 0:
        return []
    doomed = []
    for rs in by_revision(alive)[:excess]:
        if status_count(rs, "replicas") != 0 or replicas(rs) != 0:
            continue
        if generation(rs) > status_count(rs, "observedGeneration"):
            continue
        doomed.append(rs)
    return doomed


__all__ = [
    "ScaleStep",
    "collision_count",
    "is_scaling_event",
    "new_replica_set",
    "plan_history_cleanup",
    "plan_scale",
    "proportion",
]
