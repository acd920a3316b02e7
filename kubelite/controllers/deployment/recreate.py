"""Recreate decisions (upstream's recreate.go): every old pod goes before any new one starts.

A sync scales every old ReplicaSet to 0; while any old ReplicaSet still reports pods, or any pod
of an old ReplicaSet is not finished (Pending, Running or Unknown — including pods still
terminating), nothing else happens; then the new ReplicaSet is created if needed and scaled to
`replicas` in one step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubelite.controllers.deployment.sync import ScaleStep
from kubelite.controllers.deployment.util import replicas, sum_status, uid_of
from kubelite.machinery.meta import name_of


def plan_scale_down_old(old_active: Sequence[dict[str, Any]]) -> list[ScaleStep]:
    """Every old ReplicaSet with replicas goes to 0 (scaleDownOldReplicaSetsForRecreate)."""
    return [ScaleStep(name_of(rs), 0) for rs in old_active if replicas(rs) != 0]


def old_pods_running(
    new_rs: Mapping[str, Any] | None,
    old_rss: Sequence[Mapping[str, Any]],
    pods_by_rs_uid: Mapping[str, Sequence[Mapping[str, Any]]],
) -> bool:
    """Some old ReplicaSet reports pods, or some pod of an old ReplicaSet has not finished."""
    if sum_status(old_rss, "replicas") > 0:
        return True
    new_uid = uid_of(new_rs) if new_rs is not None else None
    for rs_uid, pods in pods_by_rs_uid.items():
        if new_uid is not None and rs_uid == new_uid:
            continue
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                return True
    return False


__all__ = ["old_pods_running", "plan_scale_down_old"]
