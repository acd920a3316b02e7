"""One scheduling attempt end to end with the default plugins: placement, spreading, tie-breaking,
and upstream's FailedScheduling message, byte for byte (kube-scheduler 1.32 FitError.Error() plus
DefaultPreemption's PostFilter message)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from kubelite.scheduler.algorithm import num_feasible_nodes_to_find, schedule
from kubelite.scheduler.fiterror import Diagnosis, FitError, NodeToStatus
from kubelite.scheduler.framework import NodeInfo, PodInfo, Snapshot, Status
from kubelite.scheduler.plugins import default_plugins

FILTERS, SCORES = default_plugins()
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def make_pod(
    name: str = "p", *, cpu: str = "100m", memory: str = "128Mi", priority: int | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
        **spec,
    }
    if priority is not None:
        body["priority"] = priority
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"}, "spec": body}


def make_node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110", **spec: Any) -> dict[str, Any]:
    labels = spec.pop("labels", {"kubernetes.io/hostname": name})
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}},
    }


def snapshot_of(*nodes: dict[str, Any], pods: tuple[dict[str, Any], ...] = ()) -> Snapshot:
    return Snapshot.from_objects(nodes, pods)


def message(pod: dict[str, Any], snapshot: Snapshot, **kwargs: Any) -> str:
    result = schedule(pod, snapshot, FILTERS, SCORES, rng=random.Random(0), **kwargs)
    assert result.fit_error is not None, result
    return result.message()


# --- FailedScheduling messages ---------------------------------------------------------------------


def test_three_nodes_short_of_cpu() -> None:
    snapshot = snapshot_of(make_node("a", cpu="1"), make_node("b", cpu="1"), make_node("c", cpu="1"))
    assert message(make_pod(cpu="2"), snapshot) == (
        "0/3 nodes are available: 3 Insufficient cpu. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    )


def test_three_nodes_with_different_reasons() -> None:
    snapshot = snapshot_of(
        make_node("control-plane", taints=[CONTROL_PLANE_TAINT]),
        make_node("w1", memory="1Gi"),
        make_node("w2", memory="1Gi"),
    )
    # The taint cannot be resolved by preemption; the memory shortfall could, but no pod has lower
    # priority.  Reasons sort as strings: "1 n..." before "2 I..." because '1' < '2'.
    assert message(make_pod(memory="2Gi"), snapshot) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 Insufficient memory. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod."
    )


def test_each_node_reports_its_first_failing_filter_only() -> None:
    snapshot = snapshot_of(
        make_node("cordoned", unschedulable=True, taints=[CONTROL_PLANE_TAINT], cpu="1"),
        make_node("other", labels={"zone": "b"}),
        make_node("small", cpu="1", memory="1Gi", labels={"zone": "a"}),
    )
    pod = make_pod(cpu="2", memory="2Gi", nodeSelector={"zone": "a"})
    assert message(pod, snapshot) == (
        "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, "
        "1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were unschedulable. "
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling."
    )


def test_histogram_sorts_as_strings_not_by_count() -> None:
    nodes = [
        make_node(f"t{i}", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]) for i in range(10)
    ]
    nodes += [make_node("s1", cpu="1"), make_node("s2", cpu="1")]
    assert message(make_pod(cpu="2"), snapshot_of(*nodes)) == (
        "0/12 nodes are available: 10 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. "
        "preemption: 0/12 nodes are available: 10 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod."
    )


def test_node_name_and_ports() -> None:
    port = {"containerPort": 80, "hostPort": 80}
    busy = make_pod("busy", nodeName="a", containers=[{"name": "c", "image": "x", "ports": [port]}])
    snapshot = snapshot_of(make_node("a"), make_node("b"), pods=(busy,))
    pod = make_pod(containers=[{"name": "c", "image": "x", "ports": [port]}], nodeName="a")
    assert message(pod, snapshot) == (
        "0/2 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, "
        "1 node(s) didn't match the requested node name. "
        "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
        "1 Preemption is not helpful for scheduling."
    )


def test_no_nodes() -> None:
    result = schedule(make_pod(), Snapshot(), FILTERS, SCORES)
    assert result.message() == "no nodes available to schedule pods"
    assert result.fit_error is not None and result.suggested_host is None


def test_too_many_pods() -> None:
    snapshot = snapshot_of(make_node("a", pods="1"), pods=(make_pod("x", nodeName="a"),))
    assert message(make_pod(), snapshot) == (
        "0/1 nodes are available: 1 Too many pods. "
        "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    )


def test_preemption_policy_never() -> None:
    snapshot = snapshot_of(make_node("a", cpu="1"))
    assert message(make_pod(cpu="2", preemptionPolicy="Never"), snapshot) == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    )


def test_preemption_that_would_still_not_fit_reports_the_refiltered_reason() -> None:
    low = make_pod("low", cpu="500m", priority=0, nodeName="a")
    snapshot = snapshot_of(make_node("a", cpu="1"), pods=(low,))
    assert message(make_pod(cpu="2", priority=100), snapshot) == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 Insufficient cpu."
    )


def test_preemption_that_would_help_adds_no_suffix_and_names_candidates() -> None:
    low = make_pod("low", cpu="800m", priority=0, nodeName="a")
    high = make_pod("high", cpu="800m", priority=1000, nodeName="b")
    snapshot = snapshot_of(make_node("a", cpu="1"), make_node("b", cpu="1"), pods=(low, high))
    result = schedule(make_pod(cpu="500m", priority=100), snapshot, FILTERS, SCORES)
    assert result.fit_error is not None
    assert result.message() == "0/2 nodes are available: 2 Insufficient cpu."
    assert result.fit_error.preemption_candidates == ("a",)


def test_without_preemption_there_is_no_suffix() -> None:
    snapshot = snapshot_of(make_node("a", cpu="1"))
    assert message(make_pod(cpu="2"), snapshot, preemption=False) == "0/1 nodes are available: 1 Insufficient cpu."


def test_node_affinity_pinned_to_a_node_counts_the_others_as_not_satisfying_the_plugin() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]
            }
        }
    }
    snapshot = snapshot_of(make_node("a", cpu="1"), make_node("b"), make_node("c"))
    assert message(make_pod(cpu="2", affinity=affinity), snapshot) == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. "
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling."
    )
    # and it lands on the pinned node when that has room
    assert (
        schedule(
            make_pod(affinity=affinity), snapshot_of(make_node("a"), make_node("b")), FILTERS, SCORES
        ).suggested_host
        == "a"
    )


def test_conflicting_node_name_pins_fail_in_pre_filter() -> None:
    term = {
        "matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["a"]},
            {"key": "metadata.name", "operator": "In", "values": ["b"]},
        ]
    }
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    snapshot = snapshot_of(make_node("a"), make_node("b"))
    result = schedule(make_pod(affinity=affinity), snapshot, FILTERS, SCORES)
    assert result.message() == (
        "0/2 nodes are available: pod affinity terms conflict. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    assert result.fit_error is not None
    assert result.fit_error.diagnosis.unschedulable_plugins == {"NodeAffinity"}


def test_unschedulable_plugins_are_recorded_for_the_queue() -> None:
    snapshot = snapshot_of(make_node("a", cpu="1"), make_node("b", taints=[CONTROL_PLANE_TAINT]))
    result = schedule(make_pod(cpu="2"), snapshot, FILTERS, SCORES)
    assert result.fit_error is not None
    assert result.fit_error.diagnosis.unschedulable_plugins == {"NodeResourcesFit", "TaintToleration"}


@pytest.mark.parametrize(
    ("statuses", "absent", "num_all_nodes", "pre", "post", "expected"),
    [
        ({}, Status(), 2, "", "", "0/2 nodes are available:"),
        ({"a": Status.unschedulable("x", "y")}, Status(), 1, "", "", "0/1 nodes are available: 1 x, 1 y."),
        ({}, Status.unresolvable("gone"), 3, "", "", "0/3 nodes are available: 3 gone."),
        ({"a": Status.unschedulable("x")}, Status.unresolvable("x"), 3, "", "", "0/3 nodes are available: 3 x."),
        (
            {"a": Status.unschedulable("x")},
            Status(),
            1,
            "pre says no",
            "post.",
            "0/1 nodes are available: pre says no. post.",
        ),
    ],
)
def test_fit_error_message_format(
    statuses: dict[str, Status], absent: Status, num_all_nodes: int, pre: str, post: str, expected: str
) -> None:
    diagnosis = Diagnosis(NodeToStatus(statuses, absent), frozenset(), pre, post)
    assert FitError(num_all_nodes, diagnosis).message() == expected


# --- placement ----------------------------------------------------------------------------------


def test_six_identical_pods_spread_two_per_node() -> None:
    snapshot = snapshot_of(make_node("a"), make_node("b"), make_node("c"))
    rng = random.Random(42)
    placed = []
    for i in range(6):
        pod = make_pod(f"web-{i}", cpu="250m", memory="256Mi")
        result = schedule(pod, snapshot, FILTERS, SCORES, rng=rng)
        assert result.suggested_host is not None
        snapshot.assume(pod, result.suggested_host)
        placed.append(result.suggested_host)
    assert Counter(placed) == {"a": 2, "b": 2, "c": 2}


def test_fills_nodes_until_full_then_reports() -> None:
    snapshot = snapshot_of(make_node("a", cpu="1"), make_node("b", cpu="1"))
    for i in range(4):
        pod = make_pod(f"p{i}", cpu="500m")
        result = schedule(pod, snapshot, FILTERS, SCORES)
        assert result.suggested_host is not None
        snapshot.assume(pod, result.suggested_host)
    assert message(make_pod("extra", cpu="500m"), snapshot).startswith("0/2 nodes are available: 2 Insufficient cpu.")


def test_least_allocated_prefers_the_emptier_node() -> None:
    busy = make_pod("busy", cpu="3", memory="6Gi", nodeName="a")
    snapshot = snapshot_of(make_node("a"), make_node("b"), pods=(busy,))
    result = schedule(make_pod(), snapshot, FILTERS, SCORES)
    assert result.suggested_host == "b"
    assert result.scores["b"] > result.scores["a"]


def test_weights_taint_toleration_3_node_affinity_2() -> None:
    preferred = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}
            ]
        }
    }
    soft = [{"key": "spot", "value": "true", "effect": "PreferNoSchedule"}]
    snapshot = snapshot_of(
        make_node("preferred-but-tainted", labels={"zone": "a"}, taints=soft),
        make_node("plain", labels={"zone": "b"}),
    )
    result = schedule(make_pod(affinity=preferred), snapshot, FILTERS, SCORES)
    # affinity: 100 * 2 vs 0; taints: 0 * 3 vs 100 * 3 → the untainted node wins
    assert result.suggested_host == "plain"
    assert result.scores["plain"] - result.scores["preferred-but-tainted"] == 3 * 100 - 2 * 100


def test_a_single_feasible_node_is_chosen_without_scoring() -> None:
    snapshot = snapshot_of(make_node("a", cpu="1"), make_node("b"))
    result = schedule(make_pod(cpu="2"), snapshot, FILTERS, SCORES)
    assert (result.suggested_host, result.feasible_nodes, result.evaluated_nodes, dict(result.scores)) == (
        "b",
        1,
        2,
        {},
    )


def test_ties_are_broken_by_the_injected_random() -> None:
    snapshot = snapshot_of(*(make_node(n) for n in "abcd"))
    picks = {
        schedule(make_pod(), snapshot, FILTERS, SCORES, rng=random.Random(seed)).suggested_host for seed in range(40)
    }
    assert picks == {"a", "b", "c", "d"}
    first = [schedule(make_pod(), snapshot, FILTERS, SCORES, rng=random.Random(7)).suggested_host for _ in range(3)]
    assert len(set(first)) == 1


def test_schedule_does_not_change_the_snapshot() -> None:
    snapshot = snapshot_of(make_node("a"), make_node("b"))
    schedule(make_pod(), snapshot, FILTERS, SCORES)
    assert all(isinstance(n, NodeInfo) and n.pod_count == 0 for n in snapshot)


def test_plugin_error_is_reported_as_an_error_not_a_fit_error() -> None:
    class Broken:
        NAME = "Broken"

        def filter(self, pod: PodInfo, node_info: NodeInfo) -> Status:
            return Status.error("boom")

    result = schedule(make_pod(), snapshot_of(make_node("a")), [Broken()], [])
    assert result.fit_error is None and result.error is not None
    assert result.message() == 'running "Broken" filter plugin: boom'


# --- how many nodes are examined -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percentage", "nodes", "expected"),
    [
        (0, 0, 0),
        (0, 50, 50),
        (0, 99, 99),
        (0, 100, 100),
        (0, 1000, 420),
        (0, 5000, 500),
        (0, 10000, 500),
        (10, 1000, 100),
        (30, 1000, 300),
        (100, 1000, 1000),
    ],
)
def test_num_feasible_nodes_to_find(percentage: int, nodes: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(percentage, nodes) == expected


def test_large_clusters_stop_early_and_rotate_the_start() -> None:
    snapshot = snapshot_of(*(make_node(f"n{i:04}") for i in range(1000)))
    first = schedule(make_pod(), snapshot, FILTERS, SCORES, percentage_of_nodes_to_score=10)
    assert (first.evaluated_nodes, first.feasible_nodes, first.next_start_index) == (100, 100, 100)
    second = schedule(
        make_pod(), snapshot, FILTERS, SCORES, percentage_of_nodes_to_score=10, start_index=first.next_start_index
    )
    assert second.next_start_index == 200
    assert second.suggested_host is not None and "n0100" <= second.suggested_host < "n0200"


def test_pinned_to_a_node_that_does_not_exist() -> None:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gone"]}]}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    assert message(make_pod(affinity=affinity), snapshot_of(make_node("a"), make_node("b"))) == (
        "0/2 nodes are available: 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )


def test_score_out_of_range_is_an_error() -> None:
    class Greedy:
        NAME = "Greedy"

        def score(self, pod: PodInfo, node_info: NodeInfo) -> int:
            return 101

    result = schedule(make_pod(), snapshot_of(make_node("a"), make_node("b")), FILTERS, [(Greedy(), 1)])
    assert result.error is not None and result.suggested_host is None
    assert result.message() == (
        'plugin "Greedy" returns an invalid score 101, it should in the range of [0, 100] after normalizing'
    )


def test_node_affinity_without_preferences_skips_scoring() -> None:
    snapshot = snapshot_of(make_node("a"), make_node("b"))
    affinity_only = [(plugin, weight) for plugin, weight in SCORES if plugin.NAME == "NodeAffinity"]
    result = schedule(make_pod(), snapshot, FILTERS, affinity_only, rng=random.Random(0))
    assert dict(result.scores) == {"a": 0, "b": 0}
