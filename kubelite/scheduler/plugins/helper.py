"""Helpers several plugins share: taint/toleration matching and score normalisation (upstream's
core/v1 helper `ToleratesTaint` and scheduler plugins/helper `DefaultNormalizeScore`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kubelite.scheduler.framework import MAX_NODE_SCORE

Taint = Mapping[str, Any]
Toleration = Mapping[str, Any]

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"
PREFER_NO_SCHEDULE = "PreferNoSchedule"


def tolerates_taint(toleration: Toleration, taint: Taint) -> bool:
    """Toleration.ToleratesTaint: an empty effect or key in the toleration matches any; operator
    Exists ignores the value, Equal (or empty) compares it."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return operator == "Exists"


def tolerations_tolerate_taint(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    return any(tolerates_taint(toleration, taint) for toleration in tolerations)


def do_not_schedule_taint(taint: Taint) -> bool:
    """helper.DoNotScheduleTaintsFilterFunc: the effects that keep a pod off a node."""
    return taint.get("effect") in (NO_SCHEDULE, NO_EXECUTE)


def find_untolerated_taint(
    taints: Iterable[Taint], tolerations: Iterable[Toleration], applies: Callable[[Taint], bool]
) -> Taint | None:
    """FindMatchingUntoleratedTaint: the first taint (in the node's order) `applies` selects that no
    toleration tolerates."""
    tolerations = list(tolerations)
    for taint in taints:
        if applies(taint) and not tolerations_tolerate_taint(tolerations, taint):
            return taint
    return None


def default_normalize_score(scores: list[int], *, reverse: bool, max_priority: int = MAX_NODE_SCORE) -> None:
    """DefaultNormalizeScore, in place: scale to 0..max_priority by the highest score (integer
    division); `reverse` flips it so the lowest raw score ranks best.  All zero: unchanged, or all
    max_priority when reversed."""
    highest = max(scores, default=0)
    if highest == 0:
        if reverse:
            scores[:] = [max_priority] * len(scores)
        return
    for i, score in enumerate(scores):
        scaled = max_priority * score // highest
        scores[i] = max_priority - scaled if reverse else scaled


__all__ = [
    "NO_EXECUTE",
    "NO_SCHEDULE",
    "PREFER_NO_SCHEDULE",
    "default_normalize_score",
    "do_not_schedule_taint",
    "find_untolerated_taint",
    "tolerates_taint",
    "tolerations_tolerate_taint",
]
