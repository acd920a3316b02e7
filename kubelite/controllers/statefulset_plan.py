"""What one StatefulSet sync does, decided from observed state (upstream updateStatefulSet,
processReplica, processCondemned and the rolling update), as a pure function.

Contracts:

* `plan_sync` returns the steps of one sync in phases: (1) the replicas, one chain of steps per
  ordinal in range; (2) claim fixes for condemned pods (out-of-range ordinals); (3) the condemned
  pods' deletions, highest ordinal first; (4) deletions for the rolling update.  A later phase is
  planned only when every earlier one can complete this sync, so the shell must stop at the first
  failed step (OrderedReady) or after the first phase with a failure (Parallel).
* OrderedReady (`monotonic`): a replica is created only when every lower ordinal is Running,
  Ready and available (minReadySeconds); one creation or one deletion per sync; nothing is
  deleted while a pod is terminating, and a condemned pod goes only when the pods below it are
  healthy (or it is the first unhealthy pod).  Parallel: all of it at once.
* A Failed (or Succeeded) replica is deleted and re-created in the same chain, with a
  RecreatingFailedPod (RecreatingTerminatedPod) event.
* New pods are at the current revision below the partition and at the update revision from it.
* RollingUpdate replaces pods from the highest ordinal down to the partition, one at a time: the
  first not-updated pod is deleted; an unhealthy pod on the way stops the rollout.  With
  `rollingUpdate.maxUnavailable` set, up to that many pods may be unavailable at once (upstream's
  MaxUnavailableStatefulSet path).  OnDelete deletes nothing: pods the user deletes come back at
  the update revision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from kubelite.controllers.podutil import is_terminating
from kubelite.controllers.statefulset_claims import claim_is_stale, claims_match_policy, missing_claims
from kubelite.controllers.statefulset_utils import (
    ROLLING_UPDATE,
    allows_burst,
    end_ordinal,
    identity_matches,
    in_ordinal_range,
    is_failed,
    is_healthy,
    is_pending,
    is_running_and_available,
    is_running_and_ready,
    is_succeeded,
    max_unavailable,
    min_ready_seconds,
    new_versioned_pod,
    ordinal_of,
    parent_and_ordinal,
    partition,
    revision_of,
    start_ordinal,
    storage_matches,
    strategy_type,
)
from kubelite.machinery.meta import name_of

Obj = Mapping[str, Any]


class Action(Enum):
    CREATE = "create"  # claims first, then the pod (`pod` is the new pod)
    DELETE = "delete"  # `pod`; `why` says what for
    CREATE_CLAIMS = "create-claims"  # the missing claims of a pending pod
    UPDATE = "update"  # fix the pod's identity labels, storage claims and claim references
    FIX_CLAIMS = "fix-claims"  # only the claim references (condemned pods)


class Why(Enum):
    RECREATE_FAILED = "RecreatingFailedPod"
    RECREATE_TERMINATED = "RecreatingTerminatedPod"
    SCALE_DOWN = "scale-down"
    UPDATE = "update"


@dataclass(frozen=True)
class Step:
    action: Action
    pod: Obj
    why: Why | None = None

    @property
    def name(self) -> str:
        return name_of(dict(self.pod))


@dataclass
class SyncPlan:
    """The phases (lists of step chains; chains in a phase are independent), whether the sync
    stops waiting for something, and how many rolling-update deletions it plans (upstream counts
    them off `currentReplicas`)."""

    replicas: list[list[Step]] = field(default_factory=list)
    condemned_claims: list[list[Step]] = field(default_factory=list)
    condemned: list[list[Step]] = field(default_factory=list)
    updates: list[list[Step]] = field(default_factory=list)
    blocked: bool = False

    @property
    def phases(self) -> list[list[list[Step]]]:
        return [p for p in (self.replicas, self.condemned_claims, self.condemned, self.updates) if p]

    def steps(self) -> list[Step]:
        return [step for phase in self.phases for chain in phase for step in chain]


@dataclass(frozen=True)
class Revisions:
    """The set as of its current and update revisions, and their names."""

    current_set: Obj
    update_set: Obj
    current: str
    update: str


def split_pods(sts: Obj, pods: Sequence[Obj]) -> tuple[list[Obj | None], list[Obj]]:
    """(one slot per ordinal in range, holding its pod or None; the condemned pods, highest
    ordinal first).  Pods whose name encodes no ordinal are ignored."""
    start = start_ordinal(sts)
    slots: list[Obj | None] = [None] * max(0, end_ordinal(sts) - start + 1)
    condemned: list[Obj] = []
    for pod in pods:
        ordinal = parent_and_ordinal(pod)[1]
        if in_ordinal_range(sts, pod):
            slots[ordinal - start] = pod
        elif ordinal >= 0:
            condemned.append(pod)
    condemned.sort(key=ordinal_of, reverse=True)
    return slots, condemned


def plan_sync(
    sts: Obj,
    pods: Sequence[Obj],
    revisions: Revisions,
    *,
    claims: Mapping[str, Obj],
    now: datetime,
) -> SyncPlan:
    """See the module docstring.  `claims` are the namespace's claims by name."""
    plan = SyncPlan()
    if (sts.get("metadata") or {}).get("deletionTimestamp"):
        return plan
    monotonic = not allows_burst(sts)
    min_ready = min_ready_seconds(sts)
    slots, condemned = split_pods(sts, pods)
    start = start_ordinal(sts)
    replicas: list[Obj] = [pod if pod is not None else _new(revisions, start + i) for i, pod in enumerate(slots)]
    first_unhealthy = next((p for p in [*replicas, *reversed(condemned)] if not is_healthy(p)), None)

    for i in range(len(replicas)):
        chain, replaced, stop = _process_replica(sts, replicas[i], revisions, start + i, claims, monotonic, now)
        replicas[i] = replaced
        if chain:
            plan.replicas.append(chain)
        if stop and monotonic:
            plan.blocked = True
            return plan

    for pod in condemned:
        if not claims_match_policy(revisions.update_set, pod, claims):
            plan.condemned_claims.append([Step(Action.FIX_CLAIMS, pod)])

    for pod in condemned:
        if is_terminating(pod):
            if monotonic:
                plan.blocked = True
                return plan
            continue
        healthy_enough = is_running_and_ready(pod) and is_running_and_available(pod, min_ready, now)
        if monotonic and not healthy_enough and pod is not first_unhealthy:
            plan.blocked = True
            return plan
        plan.condemned.append([Step(Action.DELETE, pod, Why.SCALE_DOWN)])
        if monotonic:
            plan.blocked = True
            return plan

    if strategy_type(sts) != ROLLING_UPDATE:
        return plan
    plan.updates = [[step] for step in _rolling_update(sts, replicas, revisions.update)]
    return plan


def _new(revisions: Revisions, ordinal: int) -> dict[str, Any]:
    return new_versioned_pod(revisions.current_set, revisions.update_set, revisions.current, revisions.update, ordinal)


def _process_replica(
    sts: Obj,
    pod: Obj,
    revisions: Revisions,
    ordinal: int,
    claims: Mapping[str, Obj],
    monotonic: bool,
    now: datetime,
) -> tuple[list[Step], Obj, bool]:
    """(the chain of steps for one slot, what stands in the slot afterwards, whether an ordered
    set must stop here).  Upstream processReplica."""
    chain: list[Step] = []
    if is_failed(pod) or is_succeeded(pod):
        chain.append(Step(Action.DELETE, pod, Why.RECREATE_FAILED if is_failed(pod) else Why.RECREATE_TERMINATED))
        pod = _new(revisions, ordinal)
    if not (pod.get("metadata") or {}).get("uid"):
        if claim_is_stale(sts, pod, claims):
            return chain, pod, True
        chain.append(Step(Action.CREATE, pod))
        return chain, pod, True
    if is_pending(pod) and missing_claims(sts, pod, claims):
        chain.append(Step(Action.CREATE_CLAIMS, pod))
    if monotonic and (
        is_terminating(pod)
        or not is_running_and_ready(pod)
        or not is_running_and_available(pod, min_ready_seconds(sts), now)
    ):
        return chain, pod, True
    retention_ok = claims_match_policy(revisions.update_set, pod, claims)
    if not (identity_matches(sts, pod) and storage_matches(sts, pod) and retention_ok):
        chain.append(Step(Action.UPDATE, pod))
    return chain, pod, False


def _rolling_update(sts: Obj, replicas: Sequence[Obj], update_revision: str) -> list[Step]:
    """The pods to delete for the rollout this sync (upstream's loop after the invariants)."""
    update_min = partition(sts)
    limit = max_unavailable(sts)
    steps: list[Step] = []
    if limit is None:
        for target in range(len(replicas) - 1, update_min - 1, -1):
            pod = replicas[target]
            if revision_of(pod) != update_revision and not is_terminating(pod):
                if (pod.get("metadata") or {}).get("uid"):
                    steps.append(Step(Action.DELETE, pod, Why.UPDATE))
                return steps
            if not is_healthy(pod):
                return steps
        return steps
    unavailable = sum(1 for pod in replicas if not is_healthy(pod))
    budget = limit - unavailable
    for target in range(len(replicas) - 1, update_min - 1, -1):
        if budget <= 0:
            break
        pod = replicas[target]
        if revision_of(pod) != update_revision and not is_terminating(pod) and (pod.get("metadata") or {}).get("uid"):
            steps.append(Step(Action.DELETE, pod, Why.UPDATE))
            budget -= 1
    return steps


__all__ = ["Action", "Revisions", "Step", "SyncPlan", "Why", "plan_sync", "split_pods"]
