"""Turning the metrics' proposal into the replica count to set (upstream's normalization), pure.

Two paths, as upstream:

* `spec.behavior` absent (the API server defaults it only when present): `stabilize_down` keeps the
  highest recommendation of the last scale-down stabilization window (300 s), then `limit_legacy`
  clamps to [minReplicas, maxReplicas] and to the old scale-up rate max(2 × current, 4).
* `spec.behavior` present: `stabilize` applies both windows — a scale-up goes no higher than the lowest
  recommendation of the scale-up window, a scale-down no lower than the highest of the scale-down
  window — then `limit_with_behavior` applies the policies (Pods/Percent per periodSeconds, counting
  the changes made within each period; selectPolicy Max/Min/Disabled) and min/max.

Each returns the value and the (reason, message) of the AbleToScale / ScalingLimited condition, with
upstream's words.  Recommendations and scale events are passed in (the controller keeps them per HPA).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "DEFAULT_DOWNSCALE_STABILIZATION",
    "Limited",
    "Recommendation",
    "ScaleEvent",
    "limit_legacy",
    "limit_with_behavior",
    "longest_policy_period",
    "scale_down_limit",
    "scale_up_limit",
    "stabilize",
    "stabilize_down",
]

DEFAULT_DOWNSCALE_STABILIZATION = timedelta(minutes=5)
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0

WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
SCALE_UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
SCALE_DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")
SCALE_UP_STABILIZED = (
    "ScaleUpStabilized",
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
)
SCALE_DOWN_STABILIZED = (
    "ScaleDownStabilized",
    "recent recommendations were higher than current one, applying the highest recent recommendation",
)
READY_FOR_NEW_SCALE = ("ReadyForNewScale", "recommended size matches current size")


@dataclass(frozen=True, slots=True)
class Recommendation:
    replicas: int
    at: datetime


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    change: int  # replicas added (scale-up events) or removed (scale-down events), positive
    at: datetime


@dataclass(frozen=True, slots=True)
class Limited:
    replicas: int
    reason: str
    message: str


def stabilize_down(desired: int, recommendations: Sequence[Recommendation], *, now: datetime, window: timedelta) -> int:
    """The highest of `desired` and the recommendations newer than `window` (the legacy path)."""
    cutoff = now - window
    return max([desired, *(r.replicas for r in recommendations if r.at > cutoff)])


def limit_legacy(current: int, desired: int, min_replicas: int, max_replicas: int) -> Limited:
    scale_up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    if desired < min_replicas:
        return Limited(min_replicas, *TOO_FEW)
    if desired > max_replicas or desired > scale_up_limit:
        if max_replicas > scale_up_limit:
            return Limited(scale_up_limit, *SCALE_UP_LIMIT)
        return Limited(max_replicas, *TOO_MANY)
    return Limited(desired, *WITHIN_RANGE)


def stabilize(
    current: int,
    desired: int,
    recommendations: Sequence[Recommendation],
    *,
    now: datetime,
    up_window: timedelta,
    down_window: timedelta,
) -> tuple[int, str, str]:
    """The stabilized recommendation and the condition words for when it differs from `desired`."""
    up_cutoff, down_cutoff = now - up_window, now - down_window
    up, down = desired, desired
    for r in recommendations:
        if r.at > up_cutoff:
            up = min(up, r.replicas)
        if r.at > down_cutoff:
            down = max(down, r.replicas)
    recommendation = min(max(current, up), down)
    reason, message = SCALE_UP_STABILIZED if desired >= current else SCALE_DOWN_STABILIZED
    return recommendation, reason, message


def _changed_within(period_seconds: int, events: Sequence[ScaleEvent], now: datetime) -> int:
    cutoff = now - timedelta(seconds=period_seconds)
    return sum(e.change for e in events if e.at > cutoff)


def _policies(rules: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(rules.get("policies") or [])


def scale_up_limit(
    current: int, ups: Sequence[ScaleEvent], downs: Sequence[ScaleEvent], rules: Mapping[str, Any], *, now: datetime
) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    proposals = []
    for policy in _policies(rules):
        period = int(policy.get("periodSeconds") or 0)
        start = current - _changed_within(period, ups, now) + _changed_within(period, downs, now)
        value = int(policy.get("value") or 0)
        if policy.get("type") == "Pods":
            proposals.append(start + value)
        elif policy.get("type") == "Percent":
            proposals.append(math.ceil(start * (1 + value / 100)))
    if not proposals:
        return current
    return min(proposals) if select == "Min" else max(proposals)


def scale_down_limit(
    current: int, ups: Sequence[ScaleEvent], downs: Sequence[ScaleEvent], rules: Mapping[str, Any], *, now: datetime
) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    proposals = []
    for policy in _policies(rules):
        period = int(policy.get("periodSeconds") or 0)
        start = current - _changed_within(period, ups, now) + _changed_within(period, downs, now)
        value = int(policy.get("value") or 0)
        if policy.get("type") == "Pods":
            proposals.append(start - value)
        elif policy.get("type") == "Percent":
            proposals.append(int(start * (1 - value / 100)))
    if not proposals:
        return current
    return max(proposals) if select == "Min" else min(proposals)


def limit_with_behavior(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Mapping[str, Any],
    ups: Sequence[ScaleEvent],
    downs: Sequence[ScaleEvent],
    *,
    now: datetime,
) -> Limited:
    if desired > current:
        limit = max(current, scale_up_limit(current, ups, downs, behavior.get("scaleUp") or {}, now=now))
        if max_replicas > limit:
            allowed, words = limit, SCALE_UP_LIMIT
        else:
            allowed, words = max_replicas, TOO_MANY
        if desired > allowed:
            return Limited(allowed, *words)
    elif desired < current:
        limit = min(current, scale_down_limit(current, ups, downs, behavior.get("scaleDown") or {}, now=now))
        if min_replicas < limit:
            allowed, words = limit, SCALE_DOWN_LIMIT
        else:
            allowed, words = min_replicas, TOO_FEW
        if desired < allowed:
            return Limited(allowed, *words)
    return Limited(desired, *WITHIN_RANGE)


def longest_policy_period(rules: Mapping[str, Any]) -> int:
    return max((int(p.get("periodSeconds") or 0) for p in _policies(rules)), default=0)
