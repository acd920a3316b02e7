"""Pure facts about a Deployment and its ReplicaSets (upstream's deployment/util package).

Everything here reads plain JSON objects and returns values; nothing does I/O or changes its
arguments.  Fields the API server defaults (`spec.replicas`, the strategy, maxSurge/maxUnavailable,
revisionHistoryLimit, progressDeadlineSeconds) are read with apps/v1's defaults when absent, so an
object straight from a bare store behaves as a defaulted one.

The pod-template-hash.  Decision (recorded in docs/decisions/0006): the hash has upstream's form —
FNV-32a, its decimal text re-spelled with the "bcdfghjklmnpqrstvwxz2456789" alphabet one byte per
character (upstream's SafeEncodeString), with `status.collisionCount` folded in as 8 little-endian
bytes when set — but its input is our canonical JSON of the pod template (sorted keys, no
whitespace), not Go's object dump.  So the value is stable for a template across restarts and
versions of kubelite, differs from a real cluster's for the same template, and nothing outside the
cluster compares the two.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubelite.controllers.history import canonical_json, compute_hash, safe_encode

# -- names upstream uses ---------------------------------------------------------------------------

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"

ROLLING_UPDATE = "RollingUpdate"
RECREATE = "Recreate"

DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"
DEFAULT_REVISION_HISTORY_LIMIT = 10
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
MAX_INT32 = 2**31 - 1  # progressDeadlineSeconds / revisionHistoryLimit at this value mean "none"


# -- small accessors -------------------------------------------------------------------------------


def _spec(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("spec") or {}


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def annotations_of(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return _meta(obj).get("annotations") or {}


def uid_of(obj: Mapping[str, Any] | None) -> str:
    return str(_meta(obj).get("uid") or "")


def replicas(obj: Mapping[str, Any] | None) -> int:
    """`spec.replicas` of a Deployment or ReplicaSet (1 when unset, as defaulting makes it)."""
    value = _spec(obj).get("replicas")
    return 1 if value is None else int(value)


def status_count(obj: Mapping[str, Any] | None, field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def generation(obj: Mapping[str, Any] | None) -> int:
    return int(_meta(obj).get("generation") or 0)


def min_ready_seconds(obj: Mapping[str, Any] | None) -> int:
    return int(_spec(obj).get("minReadySeconds") or 0)


def strategy_type(deployment: Mapping[str, Any]) -> str:
    return str((_spec(deployment).get("strategy") or {}).get("type") or ROLLING_UPDATE)


def is_rolling_update(deployment: Mapping[str, Any]) -> bool:
    return strategy_type(deployment) == ROLLING_UPDATE


def is_paused(deployment: Mapping[str, Any]) -> bool:
    return bool(_spec(deployment).get("paused"))


def progress_deadline_seconds(deployment: Mapping[str, Any]) -> int:
    value = _spec(deployment).get("progressDeadlineSeconds")
    return DEFAULT_PROGRESS_DEADLINE_SECONDS if value is None else int(value)


def has_progress_deadline(deployment: Mapping[str, Any]) -> bool:
    return progress_deadline_seconds(deployment) != MAX_INT32


def revision_history_limit(deployment: Mapping[str, Any]) -> int:
    value = _spec(deployment).get("revisionHistoryLimit")
    return DEFAULT_REVISION_HISTORY_LIMIT if value is None else int(value)


def has_revision_history_limit(deployment: Mapping[str, Any]) -> bool:
    return revision_history_limit(deployment) != MAX_INT32


# -- maxSurge / maxUnavailable ---------------------------------------------------------------------


def scaled_value(value: int | str | None, total: int, *, round_up: bool) -> int:
    """An IntOrString against `total` (GetScaledValueFromIntOrPercent); None counts as 0.

    Raises ValueError for a string that is not `<int>%`, with upstream's wording.
    """
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError("invalid value for IntOrString: invalid type: neither int nor percentage")
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or not value.endswith("%"):
        raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage")
    try:
        percent = int(value[:-1])
    except ValueError:
        raise ValueError(f'invalid value for IntOrString: invalid value "{value}"') from None
    product = percent * total
    return -(-product // 100) if round_up else product // 100


def _rolling_params(deployment: Mapping[str, Any]) -> tuple[int | str | None, int | str | None]:
    rolling = (_spec(deployment).get("strategy") or {}).get("rollingUpdate") or {}
    surge = rolling.get("maxSurge", DEFAULT_MAX_SURGE)
    unavailable = rolling.get("maxUnavailable", DEFAULT_MAX_UNAVAILABLE)
    return surge, unavailable


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None, desired: int) -> tuple[int, int]:
    """(surge, unavailable) for `desired` replicas: surge rounds up, unavailable down; when both
    come to 0, unavailable is 1 so that a rollout can always move (upstream ResolveFenceposts)."""
    surge = scaled_value(max_surge, desired, round_up=True)
    unavailable = scaled_value(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(deployment: Mapping[str, Any]) -> int:
    """How many pods above `spec.replicas` a rollout may run (0 for Recreate or a bad value)."""
    if not is_rolling_update(deployment):
        return 0
    try:
        return resolve_fenceposts(*_rolling_params(deployment), replicas(deployment))[0]
    except ValueError:
        return 0


def max_unavailable(deployment: Mapping[str, Any]) -> int:
    """How many of `spec.replicas` may be unavailable (0 for Recreate, a bad value or 0 replicas;
    never more than `spec.replicas`)."""
    desired = replicas(deployment)
    if not is_rolling_update(deployment) or desired == 0:
        return 0
    try:
        unavailable = resolve_fenceposts(*_rolling_params(deployment), desired)[1]
    except ValueError:
        return 0
    return min(unavailable, desired)


# -- the pod-template-hash and template equality ---------------------------------------------------


def _pruned(value: Any) -> Any:
    """`value` without null, empty maps and empty lists, recursively: Go's semantic equality
    treats a nil map or slice as equal to an empty one, and JSON spells both ways."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            pruned = _pruned(item)
            if pruned is None or pruned == {} or pruned == []:
                continue
            out[key] = pruned
        return out
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


def _without_hash_label(template: Mapping[str, Any] | None) -> Any:
    pruned = _pruned(template or {})
    labels = (pruned.get("metadata") or {}).get("labels")
    if labels and POD_TEMPLATE_HASH_LABEL in labels:
        labels.pop(POD_TEMPLATE_HASH_LABEL)
        if not labels:
            pruned["metadata"].pop("labels")
            if not pruned["metadata"]:
                pruned.pop("metadata")
    return pruned


def equal_ignore_hash(template1: Mapping[str, Any] | None, template2: Mapping[str, Any] | None) -> bool:
    """Two pod templates are the same but for their pod-template-hash label (EqualIgnoreHash)."""
    return bool(_without_hash_label(template1) == _without_hash_label(template2))


def template_of(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return _spec(obj).get("template") or {}


# -- revisions -------------------------------------------------------------------------------------


def parse_revision(text: Any) -> int | None:
    """A revision annotation's number; None when missing or not an integer."""
    if text is None:
        return None
    try:
        return int(str(text), 10)
    except ValueError:
        return None


def revision(obj: Mapping[str, Any] | None) -> int:
    """The object's revision annotation (0 when absent or malformed, as upstream's sorts treat it)."""
    return parse_revision(annotations_of(obj).get(REVISION_ANNOTATION)) or 0


def max_revision(replica_sets: Iterable[Mapping[str, Any] | None]) -> int:
    return max((revision(rs) for rs in replica_sets if rs is not None), default=0)


def int_annotation(obj: Mapping[str, Any] | None, key: str) -> int | None:
    """An int32 annotation (desired/max replicas); None when missing or malformed."""
    value = parse_revision(annotations_of(obj).get(key))
    if value is None or not -(2**31) <= value < 2**31:
        return None
    return value


# -- ReplicaSet lists ------------------------------------------------------------------------------


def _created(rs: Mapping[str, Any]) -> tuple[str, str]:
    meta = _meta(rs)
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def by_creation(replica_sets: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Oldest first; ties by name (ReplicaSetsByCreationTimestamp)."""
    return sorted(replica_sets, key=_created)


def by_size_older_first(replica_sets: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Largest first; among equals the oldest first (ReplicaSetsBySizeOlder: who scales down first)."""
    ordered = by_creation(replica_sets)
    return sorted(ordered, key=lambda rs: -replicas(rs))


def by_size_newer_first(replica_sets: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Largest first; among equals the newest first (ReplicaSetsBySizeNewer: who scales up first)."""
    ordered = list(reversed(by_creation(replica_sets)))
    return sorted(ordered, key=lambda rs: -replicas(rs))


def by_revision(replica_sets: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lowest revision first; ties oldest first (ReplicaSetsByRevision)."""
    return sorted(by_creation(replica_sets), key=revision)


def active(replica_sets: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """ReplicaSets that want pods (FilterActiveReplicaSets)."""
    return [rs for rs in replica_sets if rs is not None and replicas(rs) > 0]


def sum_replicas(replica_sets: Iterable[Mapping[str, Any] | None]) -> int:
    """Total `spec.replicas` (GetReplicaCountForReplicaSets)."""
    return sum(replicas(rs) for rs in replica_sets if rs is not None)


def sum_status(replica_sets: Iterable[Mapping[str, Any] | None], field: str) -> int:
    """Total of one status counter: `replicas` (actual), `readyReplicas`, `availableReplicas`."""
    return sum(status_count(rs, field) for rs in replica_sets if rs is not None)


def find_new_replica_set(
    deployment: Mapping[str, Any], replica_sets: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """The ReplicaSet whose template is the Deployment's; the oldest when several are (after
    upstream issue 40415 several can exist), so the choice is deterministic."""
    wanted = template_of(deployment)
    for rs in by_creation(replica_sets):
        if equal_ignore_hash(template_of(rs), wanted):
            return rs
    return None


def find_old_replica_sets(
    deployment: Mapping[str, Any], replica_sets: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(old ones with replicas, all old ones): every ReplicaSet but the new one."""
    new = find_new_replica_set(deployment, replica_sets)
    all_old = [rs for rs in replica_sets if new is None or not _same_object(rs, new)]
    return [rs for rs in all_old if replicas(rs) != 0], all_old


def _same_object(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a is b or (bool(uid_of(a)) and uid_of(a) == uid_of(b))


def find_active_or_latest(new_rs: dict[str, Any] | None, old_rss: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The only ReplicaSet with replicas; with none, the new one or else the newest old one; with
    several, None (they must be scaled proportionally)."""
    if new_rs is None and not old_rss:
        return None
    newest_first = list(reversed(by_creation(old_rss)))
    candidates = active([*newest_first, new_rs])
    if not candidates:
        return new_rs if new_rs is not None else newest_first[0]
    if len(candidates) == 1:
        return candidates[0]
    return None


def is_saturated(deployment: Mapping[str, Any], rs: Mapping[str, Any] | None) -> bool:
    """The new ReplicaSet runs the full size, was sized for it and all its pods are available."""
    if rs is None:
        return False
    desired = int_annotation(rs, DESIRED_REPLICAS_ANNOTATION)
    if desired is None:
        return False
    want = replicas(deployment)
    return replicas(rs) == want and desired == want and status_count(rs, "availableReplicas") == want


def new_rs_new_replicas(
    deployment: Mapping[str, Any], all_rss: Sequence[Mapping[str, Any] | None], new_rs: Mapping[str, Any]
) -> int:
    """How many replicas the new ReplicaSet may have now (NewRSNewReplicas): Recreate jumps to the
    full size; RollingUpdate grows it as far as `replicas + maxSurge` total pods allow, never past
    `replicas`.  Raises ValueError for a malformed maxSurge."""
    desired = replicas(deployment)
    kind = strategy_type(deployment)
    if kind == RECREATE:
        return desired
    if kind != ROLLING_UPDATE:
        raise ValueError(f"deployment type {kind} isn't supported")
    surge = scaled_value(_rolling_params(deployment)[0], desired, round_up=True)
    current = sum_replicas(all_rss)
    most = desired + surge
    if current >= most:
        return replicas(new_rs)
    grow = min(most - current, desired - replicas(new_rs))
    return replicas(new_rs) + grow


def round_half_away(value: float) -> int:
    """Go's math.Round (halves away from zero), not Python's banker's rounding."""
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


__all__ = [
    "CHANGE_CAUSE_ANNOTATION",
    "DEFAULT_MAX_SURGE",
    "DEFAULT_MAX_UNAVAILABLE",
    "DEFAULT_PROGRESS_DEADLINE_SECONDS",
    "DEFAULT_REVISION_HISTORY_LIMIT",
    "DESIRED_REPLICAS_ANNOTATION",
    "LAST_APPLIED_ANNOTATION",
    "MAX_INT32",
    "MAX_REPLICAS_ANNOTATION",
    "POD_TEMPLATE_HASH_LABEL",
    "RECREATE",
    "REVISION_ANNOTATION",
    "REVISION_HISTORY_ANNOTATION",
    "ROLLBACK_TO_ANNOTATION",
    "ROLLING_UPDATE",
    "active",
    "annotations_of",
    "by_creation",
    "by_revision",
    "by_size_newer_first",
    "by_size_older_first",
    "canonical_json",
    "compute_hash",
    "equal_ignore_hash",
    "find_active_or_latest",
    "find_new_replica_set",
    "find_old_replica_sets",
    "generation",
    "has_progress_deadline",
    "has_revision_history_limit",
    "int_annotation",
    "is_paused",
    "is_rolling_update",
    "is_saturated",
    "max_revision",
    "max_surge",
    "max_unavailable",
    "min_ready_seconds",
    "new_rs_new_replicas",
    "parse_revision",
    "progress_deadline_seconds",
    "replicas",
    "resolve_fenceposts",
    "revision",
    "revision_history_limit",
    "round_half_away",
    "safe_encode",
    "scaled_value",
    "status_count",
    "strategy_type",
    "sum_replicas",
    "sum_status",
    "template_of",
    "uid_of",
]
