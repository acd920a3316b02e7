"""The HPA replica calculation, by upstream's replica calculator test cases (behaviour, not code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubelite.controllers.podautoscaler.replicas import (
    MetricsError,
    PodMetric,
    pod_requests,
    raw_resource_replicas,
    resource_replicas,
)
from kubelite.controllers.podautoscaler.source import parse_go_duration, pod_metrics_info

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=30)


def _ts(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    name: str,
    request: str = "1",
    *,
    phase: str = "Running",
    ready: str | None = "True",
    started_ago: timedelta = timedelta(minutes=10),
    ready_ago: timedelta = timedelta(minutes=9),
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if deleting:
        meta["deletionTimestamp"] = _ts(timedelta(0))
    status: dict[str, Any] = {"phase": phase, "startTime": _ts(-started_ago)}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "lastTransitionTime": _ts(-ready_ago)}]
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": request, "memory": request}}}]},
        "status": status,
    }


def metrics(**values: int) -> dict[str, PodMetric]:
    return {name: PodMetric(v, NOW - timedelta(seconds=5), WINDOW) for name, v in values.items()}


@pytest.mark.parametrize(
    ("current", "pods", "usage", "target", "expected", "utilization"),
    [
        # scale up: 3 pods at 90 % of a 1-core request, target 30 % → 9
        (3, [pod("a"), pod("b"), pod("c")], metrics(a=900, b=900, c=900), 30, 9, 90),
        # scale down: 5 pods at 10 %, target 50 % → 1
        (5, [pod(n) for n in "abcde"], metrics(a=100, b=100, c=100, d=100, e=100), 50, 1, 10),
        # within tolerance (ratio 1.05) → unchanged
        (3, [pod("a"), pod("b"), pod("c")], metrics(a=525, b=525, c=525), 50, 3, 52),
        # an unready pod (in its CPU initialization period, not Ready) is left out, then counted at 0 % on scale-up
        (
            3,
            [pod("a"), pod("b"), pod("c", ready="False", started_ago=timedelta(minutes=1), ready_ago=timedelta(0))],
            metrics(a=1000, b=1000, c=1000),
            50,
            4,
            100,
        ),
        # a pod that was Ready once and is not now, past initialization, still counts
        (3, [pod("a"), pod("b"), pod("c", ready="False")], metrics(a=1000, b=1000, c=1000), 50, 6, 100),
        # missing metrics on scale-down count at 100 %: (10+10+100)/3 = 40 % → ceil(0.8·3) = 3 → unchanged
        (3, [pod("a"), pod("b"), pod("c")], metrics(a=100, b=100), 50, 3, 10),
        # missing metrics on scale-up count at 0 %: 200/3 = 66 % → ceil(1.33·3) = 4
        (3, [pod("a"), pod("b"), pod("c")], metrics(a=1000, b=1000), 50, 4, 100),
        # deleted and failed pods are ignored entirely
        (
            3,
            [pod("a"), pod("b"), pod("c", deleting=True), pod("d", phase="Failed")],
            metrics(a=500, b=500, c=2000, d=2000),
            50,
            3,
            50,
        ),
        # a pending pod is unready; a scale-down ignores it
        (3, [pod("a"), pod("b"), pod("c", phase="Pending")], metrics(a=100, b=100), 50, 1, 10),
    ],
)
def test_utilization_target(
    current: int, pods: list[dict[str, Any]], usage: dict[str, PodMetric], target: int, expected: int, utilization: int
) -> None:
    proposal = resource_replicas(current, target, "cpu", pods, usage, now=NOW)
    assert (proposal.replicas, proposal.utilization) == (expected, utilization)


def test_missing_metric_fallback_on_scale_down_uses_the_target_above_100_percent() -> None:
    # target 200 %: two pods at 50 %, one missing counted at 200 % → 100 %/200 % → ceil(0.5·3) = 2
    proposal = resource_replicas(3, 200, "cpu", [pod("a"), pod("b"), pod("c")], metrics(a=500, b=500), now=NOW)
    assert proposal.replicas == 2


def test_a_direction_flip_after_filling_in_missing_pods_keeps_the_current_count() -> None:
    pods = [pod("a"), pod("b"), pod("c"), pod("d")]
    proposal = resource_replicas(4, 50, "cpu", pods, metrics(a=400, b=400), now=NOW)
    assert proposal.replicas == 4


def test_a_young_pod_without_a_full_window_since_ready_is_unready_for_cpu_only() -> None:
    young = pod("b", started_ago=timedelta(minutes=1), ready_ago=timedelta(seconds=10))
    cpu = resource_replicas(2, 50, "cpu", [pod("a"), young], metrics(a=1000, b=1000), now=NOW)
    assert cpu.replicas == 2  # b at 0 %: (100 + 0) / 2 = 50 % → on target
    memory = resource_replicas(2, 50, "memory", [pod("a"), young], metrics(a=1000, b=1000), now=NOW)
    assert memory.replicas == 4


def test_average_value_target() -> None:
    pods = [pod("a"), pod("b")]
    proposal = raw_resource_replicas(2, 500, "cpu", pods, metrics(a=1000, b=1000), now=NOW)
    assert (proposal.replicas, proposal.raw_average, proposal.utilization) == (4, 1000, None)
    assert raw_resource_replicas(2, 1000, "cpu", pods, metrics(a=1040, b=1000), now=NOW).replicas == 2
    # a missing pod counts at the target on a scale-down: (200 + 1000) / 2 → 0.6 → ceil(1.2) = 2
    assert raw_resource_replicas(2, 1000, "cpu", pods, metrics(a=200), now=NOW).replicas == 2


@pytest.mark.parametrize(
    ("pods", "usage", "message"),
    [
        ([], metrics(a=1), "no pods returned by selector while calculating replica count"),
        (
            [pod("a", phase="Pending")],
            metrics(a=1),
            "did not receive metrics for targeted pods (pods might be unready)",
        ),
        ([pod("a", request="0")], metrics(a=1), "missing request for cpu in container app of Pod a"),
    ],
)
def test_calculation_errors_have_upstreams_messages(
    pods: list[dict[str, Any]], usage: dict[str, PodMetric], message: str
) -> None:
    with pytest.raises(MetricsError) as caught:
        resource_replicas(1, 50, "cpu", pods, usage, now=NOW)
    assert str(caught.value) == message


def test_requests_include_sidecars_and_can_select_one_container() -> None:
    p = pod("a", request="250m")
    p["spec"]["initContainers"] = [
        {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
        {"name": "init", "resources": {}},
    ]
    assert pod_requests([p], "cpu") == {"a": 350}
    assert pod_requests([p], "cpu", "side") == {"a": 100}


def _pm(name: str, *containers: tuple[str, dict[str, str]]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "timestamp": "2026-01-01T12:00:00Z",
        "window": "15.5s",
        "containers": [{"name": c, "usage": u} for c, u in containers],
    }


def test_pod_metrics_info_sums_containers_and_skips_incomplete_pods() -> None:
    items = [
        _pm("a", ("app", {"cpu": "250m", "memory": "1Mi"}), ("side", {"cpu": "5000000n", "memory": "1Ki"})),
        _pm("b", ("app", {"memory": "1Mi"})),
        _pm("c"),
    ]
    info, at = pod_metrics_info(items, "cpu")
    assert info == {"a": PodMetric(255, NOW, timedelta(seconds=15.5))}
    assert at == NOW
    assert pod_metrics_info(items[:1], "cpu", "side")[0]["a"].value == 5
    with pytest.raises(MetricsError, match="container side not present in metrics for pod default/b"):
        pod_metrics_info(items[1:2], "cpu", "side")
    with pytest.raises(MetricsError, match="no metrics returned from resource metrics API"):
        pod_metrics_info([], "cpu")


@pytest.mark.parametrize(("text", "seconds"), [("15s", 15), ("1m0.5s", 60.5), ("250ms", 0.25), ("1h2m", 3720)])
def test_go_durations_parse(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == timedelta(seconds=seconds)
