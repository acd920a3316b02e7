"""PodDisruptionBudget arithmetic."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kubelite.controllers.disruption_policy import (
    BudgetError,
    budget_status,
    expected_and_desired,
    failed_status,
    int_or_percent,
)
from kubelite.machinery.meta import rfc3339
from kubelite.testing.fake_clock import DEFAULT_START as NOW

T = rfc3339(NOW)


def pdb(**spec: Any) -> dict:
    return {
        "metadata": {"name": "b", "namespace": "ns", "generation": 3},
        "spec": {"selector": {}, **spec},
        "status": {},
    }


def pod(name: str, *, ready: bool = True, deleting: bool = False) -> dict:
    meta: dict[str, Any] = {"name": name, "namespace": "ns"}
    if deleting:
        meta["deletionTimestamp"] = T
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


@pytest.mark.parametrize(
    ("value", "total", "up", "result"),
    [(2, 10, True, 2), ("50%", 3, True, 2), ("50%", 3, False, 1), ("0%", 5, True, 0), ("100%", 4, True, 4)],
)
def test_int_or_percent(value: Any, total: int, up: bool, result: int) -> None:
    assert int_or_percent(value, total, round_up=up) == result


@pytest.mark.parametrize(
    ("spec", "pods", "scale", "expected"),
    [
        ({"minAvailable": 2}, 3, None, (3, 2)),
        ({"minAvailable": "50%"}, 3, 5, (5, 3)),
        ({"maxUnavailable": 1}, 3, 4, (4, 3)),
        ({"maxUnavailable": "30%"}, 3, 4, (4, 2)),
        ({"maxUnavailable": 5}, 3, 4, (4, 0)),
    ],
)
def test_expected_and_desired(spec: dict, pods: int, scale: int | None, expected: tuple[int, int]) -> None:
    assert expected_and_desired(pdb(**spec), pods, scale) == expected


def test_percentages_need_a_scale() -> None:
    with pytest.raises(BudgetError):
        expected_and_desired(pdb(maxUnavailable=1), 3, None)


def test_budget_status_counts_ready_pods_not_being_deleted_or_disrupted() -> None:
    budget = pdb(minAvailable=1)
    budget["status"]["disruptedPods"] = {"c": T, "gone": T, "old": rfc3339(NOW - timedelta(minutes=3))}
    pods = [pod("a"), pod("b", deleting=True), pod("c"), pod("d", ready=False), pod("old")]
    status, recheck = budget_status(budget, pods, None, NOW, timestamp=T)
    assert status["currentHealthy"] == 2  # a and old (its entry timed out)
    assert (status["desiredHealthy"], status["expectedPods"], status["disruptionsAllowed"]) == (1, 5, 1)
    assert status["disruptedPods"] == {"c": T}
    assert status["observedGeneration"] == 3
    assert recheck == NOW + timedelta(minutes=2)
    [condition] = status["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "DisruptionAllowed",
        "True",
        "SufficientPods",
    )


def test_budget_without_room_says_insufficient_pods() -> None:
    status, _ = budget_status(pdb(minAvailable=2), [pod("a"), pod("b")], None, NOW, timestamp=T)
    assert status["disruptionsAllowed"] == 0
    assert status["conditions"][0]["reason"] == "InsufficientPods" and status["conditions"][0]["status"] == "False"


def test_failed_status_fails_safe() -> None:
    status = failed_status({**pdb(), "status": {"disruptionsAllowed": 3}}, timestamp=T)
    assert status["disruptionsAllowed"] == 0
    assert status["conditions"][0]["reason"] == "SyncFailed"
