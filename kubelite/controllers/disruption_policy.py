"""PodDisruptionBudget arithmetic, as pure functions (upstream pkg/controller/disruption).

`budget_status` turns a PDB, its pods and the expected pod count into the status upstream writes:
currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed, observedGeneration, the cleaned
`disruptedPods` map and the `DisruptionAllowed` condition.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from kubelite.machinery.meta import parse_time
from kubelite.machinery.selectors import SelectorError, label_selector_from_dict

Obj = Mapping[str, Any]

DELETION_TIMEOUT = timedelta(minutes=2)  # a disrupted pod not deleted by then counts again


class BudgetError(ValueError):
    """The expected pod count cannot be computed; the PDB fails safe (SyncFailed)."""


def int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString scaled against `total` ("50%" of 3 is 2 rounded up, 1 rounded down)."""
    if isinstance(value, bool):
        raise BudgetError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%") or not text[:-1].isdigit():
        raise BudgetError(f'invalid value for IntOrString: invalid value "{text}"')
    scaled = int(text[:-1]) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def selects(pdb: Obj, pod: Obj) -> bool:
    """policy/v1: a missing selector selects nothing, an empty one every pod of the namespace."""
    if (pdb.get("metadata") or {}).get("namespace") != (pod.get("metadata") or {}).get("namespace"):
        return False
    raw = (pdb.get("spec") or {}).get("selector")
    if raw is None:
        return False
    try:
        return label_selector_from_dict(raw).matches((pod.get("metadata") or {}).get("labels") or {})
    except SelectorError:
        return False


def needs_scale(pdb: Obj) -> bool:
    """Only an integer minAvailable can be judged from the pods alone."""
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        return True
    min_available = spec.get("minAvailable")
    return not (isinstance(min_available, int) and not isinstance(min_available, bool))


def expected_and_desired(pdb: Obj, pod_count: int, scale: int | None) -> tuple[int, int]:
    """(expectedPods, desiredHealthy).  `scale`: the summed replicas of the pods' controllers."""
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        if scale is None:
            raise BudgetError("the expected pod count is unknown")
        unavailable = int_or_percent(spec["maxUnavailable"], scale, round_up=True)
        return scale, max(0, scale - unavailable)
    min_available = spec.get("minAvailable")
    if min_available is None:
        return pod_count, 0
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return pod_count, min_available
    if scale is None:
        raise BudgetError("the expected pod count is unknown")
    return scale, int_or_percent(min_available, scale, round_up=True)


def is_pod_ready(pod: Obj) -> bool:
    for found in (pod.get("status") or {}).get("conditions") or ():
        if found.get("type") == "Ready":
            return found.get("status") == "True"
    return False


def live_disrupted_pods(pdb: Obj, pods: Iterable[Obj], now: datetime) -> tuple[dict[str, str], datetime | None]:
    """The `disruptedPods` entries still pending (pod present, not being deleted, within the deletion
    timeout) and the earliest moment one of them times out (None: none pending)."""
    present = {(p.get("metadata") or {}).get("name"): p for p in pods}
    kept: dict[str, str] = {}
    recheck: datetime | None = None
    for name, stamp in ((pdb.get("status") or {}).get("disruptedPods") or {}).items():
        pod = present.get(name)
        if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        expires = parse_time(stamp) + DELETION_TIMEOUT
        if expires <= now:
            continue
        kept[name] = stamp
        recheck = expires if recheck is None or expires < recheck else recheck
    return kept, recheck


def count_healthy(pods: Iterable[Obj], disrupted: Mapping[str, str]) -> int:
    """Ready pods that are neither being deleted nor promised to an eviction."""
    healthy = 0
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or meta.get("name") in disrupted:
            continue
        if is_pod_ready(pod):
            healthy += 1
    return healthy


def disruption_condition(status: Obj, old: Obj | None, *, reason: str, timestamp: str) -> dict[str, Any]:
    value = "True" if reason == "SufficientPods" else "False"
    transition = (old or {}).get("lastTransitionTime") if (old or {}).get("status") == value else None
    return {
        "type": "DisruptionAllowed",
        "status": value,
        "observedGeneration": int(status.get("observedGeneration") or 0),
        "lastTransitionTime": transition or timestamp,
        "reason": reason,
        "message": "",
    }


def budget_status(
    pdb: Obj, pods: list[Obj], scale: int | None, now: datetime, *, timestamp: str
) -> tuple[dict[str, Any], datetime | None]:
    """(the PDB's new status, when to look again for a disrupted pod timing out).  Raises BudgetError."""
    expected, desired = expected_and_desired(pdb, len(pods), scale)
    disrupted, recheck = live_disrupted_pods(pdb, pods, now)
    healthy = count_healthy(pods, disrupted)
    old = pdb.get("status") or {}
    status: dict[str, Any] = {
        "observedGeneration": int((pdb.get("metadata") or {}).get("generation") or 0),
        "disruptionsAllowed": max(0, healthy - desired),
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
    }
    if disrupted:
        status["disruptedPods"] = disrupted
    status["conditions"] = _with_condition(old, status, timestamp=timestamp, reason=None)
    return status, recheck


def failed_status(pdb: Obj, *, timestamp: str) -> dict[str, Any]:
    """Upstream's failSafe: no disruptions allowed, condition DisruptionAllowed=False/SyncFailed."""
    status = dict(pdb.get("status") or {})
    status["disruptionsAllowed"] = 0
    status["observedGeneration"] = int((pdb.get("metadata") or {}).get("generation") or 0)
    status["conditions"] = _with_condition(pdb.get("status") or {}, status, timestamp=timestamp, reason="SyncFailed")
    return status


def _with_condition(old: Obj, status: Obj, *, timestamp: str, reason: str | None) -> list[dict[str, Any]]:
    if reason is None:
        reason = "SufficientPods" if int(status.get("disruptionsAllowed") or 0) > 0 else "InsufficientPods"
    conditions = [dict(c) for c in old.get("conditions") or () if c.get("type") != "DisruptionAllowed"]
    previous = next((c for c in old.get("conditions") or () if c.get("type") == "DisruptionAllowed"), None)
    conditions.append(disruption_condition(status, previous, reason=reason, timestamp=timestamp))
    return conditions


__all__ = [
    "DELETION_TIMEOUT",
    "BudgetError",
    "budget_status",
    "count_healthy",
    "expected_and_desired",
    "failed_status",
    "int_or_percent",
    "live_disrupted_pods",
    "needs_scale",
    "selects",
]
