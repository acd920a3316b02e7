"""RollingUpdate decisions (upstream's rolling.go): grow the new ReplicaSet, then shrink the old ones.

Each sync takes at most one of the two kinds of step, in this order:

1. the new ReplicaSet: down to `replicas` if it is above, else up as far as
   `replicas + maxSurge` total pods allow;
2. the old ReplicaSets, bounded by `replicas - maxUnavailable` pods staying available:
   first their unavailable pods (oldest ReplicaSet first, at most what the bound allows — those
   pods count for nothing, and leaving them would wedge the rollout), then available ones, only as
   many as are available beyond the bound.

With the ReplicaSet controller making pods from the sizes, at every moment the pods asked for stay
within `replicas + maxSurge` and the available ones at or above `replicas - maxUnavailable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubelite.controllers.deployment.sync import ScaleStep
from kubelite.controllers.deployment.util import (
    by_creation,
    max_unavailable,
    new_rs_new_replicas,
    replicas,
    status_count,
    sum_replicas,
)
from kubelite.machinery.meta import name_of


def plan_new_replica_set(
    deployment: Mapping[str, Any], all_rss: Sequence[Mapping[str, Any] | None], new_rs: Mapping[str, Any]
) -> int | None:
    """The size the new ReplicaSet should take now (reconcileNewReplicaSet); None when it stays."""
    want = replicas(deployment)
    have = replicas(new_rs)
    if have == want:
        return None
    if have > want:
        return want
    target = new_rs_new_replicas(deployment, all_rss, new_rs)
    return None if target == have else target


def plan_old_replica_sets(
    deployment: Mapping[str, Any],
    all_rss: Sequence[Mapping[str, Any] | None],
    old_active: Sequence[dict[str, Any]],
    new_rs: Mapping[str, Any] | None,
) -> list[ScaleStep]:
    """The scale-downs of old ReplicaSets this step allows (reconcileOldReplicaSets): the clean-up
    of unhealthy replicas, then the scale-down of healthy ones, each in ReplicaSet age order."""
    old_count = sum_replicas(old_active)
    if old_count == 0:
        return []
    all_count = sum_replicas(all_rss)
    min_available = replicas(deployment) - max_unavailable(deployment)
    new_unavailable = replicas(new_rs) - _available(new_rs) if new_rs is not None else 0
    max_scaled_down = all_count - min_available - new_unavailable
    if max_scaled_down <= 0:
        return []
    cleanup, olds = _cleanup_unhealthy(old_active, max_scaled_down)
    every = [*olds, new_rs]
    return cleanup + _scale_down_for_rolling_update(deployment, every, olds)


def _available(rs: Mapping[str, Any]) -> int:
    """Available replicas, never more than the ReplicaSet's size: a ReplicaSet just scaled down
    still reports the pods it is deleting until its controller syncs again, and counting those
    would let a rollout take more pods down than maxUnavailable allows."""
    return min(status_count(rs, "availableReplicas"), replicas(rs))


def _with_replicas(rs: dict[str, Any], count: int) -> dict[str, Any]:
    return {**rs, "spec": {**(rs.get("spec") or {}), "replicas": count}}


def _cleanup_unhealthy(old_rss: Sequence[dict[str, Any]], limit: int) -> tuple[list[ScaleStep], list[dict[str, Any]]]:
    """Scale old ReplicaSets down by their unavailable replicas, at most `limit` in all
    (cleanupUnhealthyReplicas).  Returns the steps and the old ReplicaSets as they will be."""
    steps: list[ScaleStep] = []
    after: list[dict[str, Any]] = []
    done = 0
    for rs in by_creation(old_rss):
        have = replicas(rs)
        unavailable = have - _available(rs)
        if done >= limit or have == 0 or unavailable <= 0:
            after.append(rs)
            continue
        count = min(limit - done, unavailable)
        steps.append(ScaleStep(name_of(rs), have - count))
        after.append(_with_replicas(rs, have - count))
        done += count
    return steps, after


def _scale_down_for_rolling_update(
    deployment: Mapping[str, Any], all_rss: Sequence[Mapping[str, Any] | None], old_rss: Sequence[dict[str, Any]]
) -> list[ScaleStep]:
    """Scale old ReplicaSets down by the available pods beyond `replicas - maxUnavailable`, oldest
    ReplicaSet first (scaleDownOldReplicaSetsForRollingUpdate)."""
    min_available = replicas(deployment) - max_unavailable(deployment)
    available = sum(_available(rs) for rs in all_rss if rs is not None)
    if available <= min_available:
        return []
    budget = available - min_available
    steps = []
    done = 0
    for rs in by_creation(old_rss):
        if done >= budget:
            break
        have = replicas(rs)
        if have == 0:
            continue
        count = min(have, budget - done)
        steps.append(ScaleStep(name_of(rs), have - count))
        done += count
    return steps


__all__ = ["plan_new_replica_set", "plan_old_replica_sets"]
