"""Node lifecycle decisions: stale conditions, taints from conditions, zone states, NoExecute plans."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.controllers.nodelifecycle_policy import (
    STATE_FULL_DISRUPTION,
    STATE_NORMAL,
    STATE_PARTIAL_DISRUPTION,
    NoExecutePlan,
    eviction_rate,
    no_execute_plan,
    no_schedule_taints,
    stale_conditions,
    with_taints,
    zone_state,
)

T = "2026-01-01T00:00:00Z"
NR, UR = "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"


def node(
    ready: str | None = "True", *, taints: list[dict[str, Any]] | None = None, unschedulable: bool = False, **more: str
) -> dict:
    conditions = (
        []
        if ready is None
        else [{"type": "Ready", "status": ready, "lastHeartbeatTime": "old", "lastTransitionTime": "old"}]
    )
    conditions += [{"type": k, "status": v} for k, v in more.items()]
    spec: dict[str, Any] = {"taints": taints or []}
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "metadata": {"name": "n", "creationTimestamp": "created"},
        "spec": spec,
        "status": {"conditions": conditions},
    }


def test_stale_node_gets_every_watched_condition_unknown() -> None:
    got = stale_conditions(node("True", MemoryPressure="False"), timestamp=T)
    assert got is not None
    by_type = {c["type"]: c for c in got}
    assert set(by_type) == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    assert by_type["Ready"] == {
        "type": "Ready",
        "status": "Unknown",
        "lastHeartbeatTime": "old",
        "lastTransitionTime": T,
        "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.",
    }
    assert by_type["DiskPressure"]["reason"] == "NodeStatusNeverUpdated"
    assert by_type["DiskPressure"]["lastHeartbeatTime"] == "created"


def test_stale_conditions_is_idempotent() -> None:
    first = node()
    first["status"]["conditions"] = stale_conditions(first, timestamp=T)
    assert stale_conditions(first, timestamp="later") is None


@pytest.mark.parametrize(
    ("the_node", "add", "remove"),
    [
        (node("True"), [], []),
        (node("False"), [NR], []),
        (node("Unknown"), [UR], []),
        (node("Unknown", taints=[{"key": NR, "effect": "NoSchedule"}]), [UR], [NR]),
        (node("True", unschedulable=True), ["node.kubernetes.io/unschedulable"], []),
        (node("True", MemoryPressure="True"), ["node.kubernetes.io/memory-pressure"], []),
        (
            node("True", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
            [],
            ["node.kubernetes.io/unschedulable"],
        ),
        (node("True", taints=[{"key": "user", "effect": "NoSchedule"}]), [], []),
    ],
)
def test_no_schedule_taints_follow_conditions_and_unschedulable(the_node: dict, add: list, remove: list) -> None:
    to_add, to_remove = no_schedule_taints(the_node)
    assert [t["key"] for t in to_add] == add
    assert [t["key"] for t in to_remove] == remove


def test_with_taints_stamps_new_taints_and_keeps_others() -> None:
    the_node = node(
        taints=[{"key": "user", "effect": "NoSchedule"}, {"key": NR, "effect": "NoExecute", "timeAdded": "x"}]
    )
    got = with_taints(the_node, [{"key": UR, "effect": "NoExecute"}], [{"key": NR, "effect": "NoExecute"}], timestamp=T)
    assert got == [{"key": "user", "effect": "NoSchedule"}, {"key": UR, "effect": "NoExecute", "timeAdded": T}]
    assert with_taints(the_node, [], [], timestamp=T) is None


@pytest.mark.parametrize(
    ("statuses", "state"),
    [
        (["True", "True"], STATE_NORMAL),
        (["Unknown"], STATE_FULL_DISRUPTION),
        (["False", "Unknown", "Unknown"], STATE_FULL_DISRUPTION),
        (["True", "Unknown", "Unknown"], STATE_NORMAL),  # not more than 2 not ready
        (["True", "Unknown", "Unknown", "False"], STATE_PARTIAL_DISRUPTION),  # 3/4 >= 0.55
        (["True", "True", "Unknown", "Unknown", "False", "True", "True"], STATE_NORMAL),  # 3/7 < 0.55
    ],
)
def test_zone_state_as_upstream(statuses: list[str], state: str) -> None:
    assert zone_state(statuses, unhealthy_threshold=0.55) == state


@pytest.mark.parametrize(
    ("state", "nodes", "rate"),
    [
        (STATE_NORMAL, 3, 0.1),
        (STATE_PARTIAL_DISRUPTION, 10, 0.0),
        (STATE_PARTIAL_DISRUPTION, 51, 0.01),
        (STATE_FULL_DISRUPTION, 3, 0.0),
    ],
)
def test_eviction_rate_per_zone_state(state: str, nodes: int, rate: float) -> None:
    assert eviction_rate(state, nodes, primary=0.1, secondary=0.01, large_cluster=50) == rate


@pytest.mark.parametrize(
    ("the_node", "state", "plan"),
    [
        (node("True"), STATE_NORMAL, NoExecutePlan(None, ())),
        (node("True", taints=[{"key": UR, "effect": "NoExecute"}]), STATE_NORMAL, NoExecutePlan(None, (UR,))),
        (node("Unknown"), STATE_NORMAL, NoExecutePlan(UR, (), queued=True)),
        (node("False"), STATE_NORMAL, NoExecutePlan(NR, (), queued=True)),
        (node("False", taints=[{"key": UR, "effect": "NoExecute"}]), STATE_NORMAL, NoExecutePlan(NR, (UR,))),
        (node("Unknown", taints=[{"key": NR, "effect": "NoExecute"}]), STATE_NORMAL, NoExecutePlan(UR, (NR,))),
        (node("Unknown", taints=[{"key": UR, "effect": "NoExecute"}]), STATE_NORMAL, NoExecutePlan(None, ())),
        (
            node("Unknown", taints=[{"key": UR, "effect": "NoExecute"}]),
            STATE_FULL_DISRUPTION,
            NoExecutePlan(None, (UR,)),
        ),
        (node(None), STATE_NORMAL, NoExecutePlan(UR, (), queued=True)),
    ],
)
def test_no_execute_plan_swaps_at_once_and_queues_first_taints(the_node: dict, state: str, plan: NoExecutePlan) -> None:
    assert no_execute_plan(the_node, state) == plan
