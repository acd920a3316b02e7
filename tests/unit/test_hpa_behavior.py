"""HPA normalization: stabilization windows, scale rate policies, min/max, with upstream's reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubelite.controllers.podautoscaler.behavior import (
    Recommendation,
    ScaleEvent,
    limit_legacy,
    limit_with_behavior,
    stabilize,
    stabilize_down,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
DEFAULT_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
DEFAULT_DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def ago(seconds: int) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_legacy_scale_down_keeps_the_highest_recommendation_of_the_window() -> None:
    history = [Recommendation(8, ago(400)), Recommendation(6, ago(200)), Recommendation(4, ago(10))]
    assert stabilize_down(2, history, now=NOW, window=timedelta(seconds=300)) == 6
    assert stabilize_down(9, history, now=NOW, window=timedelta(seconds=300)) == 9


@pytest.mark.parametrize(
    ("current", "desired", "expected", "reason"),
    [
        (3, 5, 5, "DesiredWithinRange"),
        (3, 0, 1, "TooFewReplicas"),
        (3, 50, 6, "ScaleUpLimit"),  # max(2·3, 4)
        (1, 50, 4, "ScaleUpLimit"),
        (8, 50, 10, "TooManyReplicas"),
    ],
)
def test_legacy_limits(current: int, desired: int, expected: int, reason: str) -> None:
    limited = limit_legacy(current, desired, 1, 10)
    assert (limited.replicas, limited.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("current", "desired", "history", "expected", "reason"),
    [
        # scale-down held by a higher recommendation in the down window
        (5, 2, [Recommendation(4, ago(100))], 4, "ScaleDownStabilized"),
        # an old one outside the window does not count
        (5, 2, [Recommendation(4, ago(400))], 2, "ScaleDownStabilized"),
        # scale-up held by a lower recommendation in the up window (60 s)
        (2, 8, [Recommendation(3, ago(30))], 3, "ScaleUpStabilized"),
        (2, 8, [Recommendation(3, ago(90))], 8, "ScaleUpStabilized"),
        # never below current on the way up
        (4, 8, [Recommendation(1, ago(30))], 4, "ScaleUpStabilized"),
    ],
)
def test_stabilization_windows(
    current: int, desired: int, history: list[Recommendation], expected: int, reason: str
) -> None:
    value, got_reason, _ = stabilize(
        current, desired, history, now=NOW, up_window=timedelta(seconds=60), down_window=timedelta(seconds=300)
    )
    assert (value, got_reason) == (expected, reason)


def behavior(up: dict[str, Any] | None = None, down: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"scaleUp": up or DEFAULT_UP, "scaleDown": down or DEFAULT_DOWN}


@pytest.mark.parametrize(
    ("current", "desired", "spec", "ups", "downs", "expected", "reason"),
    [
        # default scale-up: max(+4 pods, +100 %) per 15 s
        (1, 20, behavior(), [], [], 5, "ScaleUpLimit"),
        (10, 100, behavior(), [], [], 20, "ScaleUpLimit"),
        (10, 100, behavior(), [ScaleEvent(5, ago(10))], [], 10, "ScaleUpLimit"),  # period began at 5: max(9, 10)
        (10, 100, behavior(), [ScaleEvent(5, ago(20))], [], 20, "ScaleUpLimit"),  # that change is outside the period
        (10, 15, behavior(), [], [], 15, "DesiredWithinRange"),
        (18, 40, behavior(), [], [], 30, "TooManyReplicas"),
        # selectPolicy Min picks the smaller change
        (10, 100, behavior(up={**DEFAULT_UP, "selectPolicy": "Min"}), [], [], 14, "ScaleUpLimit"),
        # Disabled: no scale-up at all
        (10, 100, behavior(up={**DEFAULT_UP, "selectPolicy": "Disabled"}), [], [], 10, "ScaleUpLimit"),
        # default scale-down: 100 % per 15 s → straight to min
        (10, 0, behavior(), [], [], 1, "TooFewReplicas"),
        # 1 pod per 60 s
        (
            10,
            2,
            behavior(down={"selectPolicy": "Max", "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}),
            [],
            [],
            9,
            "ScaleDownLimit",
        ),
        (
            10,
            2,
            behavior(down={"selectPolicy": "Max", "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}),
            [],
            [ScaleEvent(1, ago(30))],
            10,
            "ScaleDownLimit",
        ),
        # 50 % down, Percent rounds down
        (
            5,
            1,
            behavior(down={"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}),
            [],
            [],
            2,
            "ScaleDownLimit",
        ),
    ],
)
def test_rate_policies(
    current: int,
    desired: int,
    spec: dict[str, Any],
    ups: list[ScaleEvent],
    downs: list[ScaleEvent],
    expected: int,
    reason: str,
) -> None:
    limited = limit_with_behavior(current, desired, 1, 30, spec, ups, downs, now=NOW)
    assert (limited.replicas, limited.reason) == (expected, reason)
