"""The Deployment controller's pure decisions: rolling steps, proportional scaling, Recreate, the
new ReplicaSet, revision-history clean-up — and a whole rollout simulated step by step to check
the surge / unavailable bounds hold at every moment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kubelite.controllers.deployment.recreate import old_pods_running, plan_scale_down_old
from kubelite.controllers.deployment.rolling import plan_new_replica_set, plan_old_replica_sets
from kubelite.controllers.deployment.sync import (
    ScaleStep,
    is_scaling_event,
    new_replica_set,
    plan_history_cleanup,
    plan_scale,
)
from kubelite.controllers.deployment.util import active, compute_hash, max_surge, max_unavailable, replicas

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
}
STAMPS = ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"]


def deployment(
    replicas: int, surge: Any = 0, unavailable: Any = 0, *, strategy: str = "RollingUpdate"
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": TEMPLATE,
        "strategy": {"type": strategy},
    }
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {
        "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": 1},
        "spec": spec,
        "status": {},
    }


def rs(
    name: str, size: int, *, age: int = 0, available: int | None = None, sized_for: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ReplicaSet `age` steps old (0 the oldest); `sized_for` puts the replica annotations of
    that Deployment on it, as the controller would have."""
    annotations = {}
    if sized_for is not None:
        annotations = {
            "deployment.kubernetes.io/desired-replicas": str(replicas(sized_for)),
            "deployment.kubernetes.io/max-replicas": str(replicas(sized_for) + max_surge(sized_for)),
        }
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": STAMPS[age], "annotations": annotations},
        "spec": {"replicas": size},
        "status": {"replicas": size, "availableReplicas": size if available is None else available},
    }


# -- rolling: the new ReplicaSet ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "surge", "old", "new", "expected"),
    [
        (10, 0, 10, 0, None),  # no room above replicas
        (10, 2, 10, 0, 2),
        (10, 2, 5, 0, 7),
        (10, 2, 10, 2, None),  # at the ceiling
        (2, 0, 2, 4, 2),  # above replicas: back down
        (3, "50%", 0, 3, None),  # done
    ],
)
def test_new_replica_set_grows_within_surge(wanted: int, surge: Any, old: int, new: int, expected: int | None) -> None:
    d = deployment(wanted, surge, 1)
    new_rs, old_rs = rs("new", new, age=1), rs("old", old)
    assert plan_new_replica_set(d, [old_rs, new_rs], new_rs) == expected


# -- rolling: the old ReplicaSets -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "unavailable", "old", "new", "old_available", "new_available", "expected"),
    [
        (10, 0, 10, 0, 10, 0, [ScaleStep("old", 9)]),  # surge and unavailable both 0: unavailable is 1
        (10, 2, 10, 0, 10, 0, [ScaleStep("old", 8)]),
        (10, 2, 10, 0, 8, 0, [ScaleStep("old", 8)]),  # the unhealthy two go first
        (10, 2, 10, 0, 9, 0, [ScaleStep("old", 9), ScaleStep("old", 8)]),  # one unhealthy, one healthy
        (10, 2, 8, 2, 8, 0, []),  # the new pods' unavailability blocks further scale-down
        (4, 1, 2, 3, 2, 3, [ScaleStep("old", 0)]),
    ],
)
def test_old_replica_sets_scale_down_within_max_unavailable(
    wanted: int, unavailable: int, old: int, new: int, old_available: int, new_available: int, expected: list[ScaleStep]
) -> None:
    d = deployment(wanted, 0, unavailable)
    old_rs = rs("old", old, available=old_available)
    new_rs = rs("new", new, age=1, available=new_available)
    assert plan_old_replica_sets(d, [old_rs, new_rs], active([old_rs]), new_rs) == expected


def test_unhealthy_cleanup_takes_oldest_replica_sets_first_within_the_allowance() -> None:
    d = deployment(6, 0, 2)
    oldest = rs("a", 3, age=0, available=1)
    older = rs("b", 3, age=1, available=1)
    new = rs("new", 0, age=2)
    steps = plan_old_replica_sets(d, [older, oldest, new], [older, oldest], new)
    # 6 pods, at least 4 available: 2 may go, both unhealthy ones of the oldest ReplicaSet
    assert steps == [ScaleStep("a", 1)]


# -- proportional scaling (upstream's TestScale cases) --------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "new", "olds", "expected"),
    [
        (5, 10, 2, [3], {"new": 4, "old0": 6}),
        (5, 3, 2, [3], {"new": 1, "old0": 2}),
        (9, 4, 8, [1], {"new": 4, "old0": 0}),
        (7, 10, 2, [3, 2], {"new": 3, "old1": 4, "old0": 3}),
        (13, 8, 8, [3, 2], {"new": 5, "old1": 2, "old0": 1}),
        (3, 4, 1, [1, 1], {"new": 2, "old1": 1, "old0": 1}),  # the leftover goes to the newest
        (10, 9, 2, [4, 4], {"new": 2, "old1": 4, "old0": 3}),  # the leftover comes from the oldest
        (5, 0, 2, [3], {"new": 0, "old0": 0}),
    ],
)
def test_proportional_scaling(before: int, after: int, new: int, olds: list[int], expected: dict[str, int]) -> None:
    old_d, d = deployment(before), deployment(after)
    d["status"] = {"replicas": before}
    old_rss = [rs(f"old{i}", size, age=i, sized_for=old_d) for i, size in enumerate(reversed(olds))]
    new_rs = rs("new", new, age=len(olds), sized_for=old_d)
    steps = plan_scale(d, new_rs, old_rss)
    assert {s.name: s.replicas for s in steps} == expected
    assert all(s.sync_annotations for s in steps)


def test_proportional_scaling_counts_surge() -> None:
    old_d = deployment(10, 2, 0)
    d = deployment(20, 4, 0)
    old_rs = rs("old", 6, sized_for=old_d)
    new_rs = rs("new", 6, age=1, sized_for=old_d)
    steps = plan_scale(d, new_rs, [old_rs])  # 12 of 12 → 24 of 24
    assert {s.name: s.replicas for s in steps} == {"new": 12, "old": 12}


def test_single_active_replica_set_takes_the_whole_size() -> None:
    d = deployment(5)
    assert plan_scale(d, rs("new", 3, age=1), [rs("old", 0)]) == [ScaleStep("new", 5)]
    assert plan_scale(d, None, [rs("a", 0), rs("b", 0, age=1)]) == [ScaleStep("b", 5)]
    assert plan_scale(d, rs("new", 5, age=1), []) == []


def test_saturated_new_replica_set_scales_old_ones_to_zero() -> None:
    d = deployment(3, 1, 1)
    new = rs("new", 3, age=1, sized_for=d)
    assert plan_scale(d, new, [rs("old", 1)]) == [ScaleStep("old", 0)]


def test_saturated_but_unavailable_new_replica_set_leaves_old_pods() -> None:
    d = deployment(2, 1, 1)
    new = rs("new", 2, age=1, available=0, sized_for=d)
    steps = plan_scale(d, new, [rs("old", 1, sized_for=d)])
    assert {s.name: s.replicas for s in steps} == {"new": 2, "old": 1}


def test_recreate_is_never_proportionally_scaled() -> None:
    d = deployment(6, strategy="Recreate")
    assert plan_scale(d, rs("new", 2, age=1), [rs("old", 2)]) == []


def test_scaling_event_is_a_size_differing_from_the_annotated_one() -> None:
    d = deployment(5)
    assert is_scaling_event(d, [rs("a", 2, sized_for=deployment(4)), None])
    assert not is_scaling_event(d, [rs("a", 2, sized_for=d), rs("b", 0, sized_for=deployment(4))])
    assert not is_scaling_event(d, [rs("a", 2)])


# -- the new ReplicaSet ---------------------------------------------------------------------------


def test_new_replica_set_carries_hash_owner_revision_and_initial_size() -> None:
    d = deployment(4, "25%", "25%")
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "v2"}
    d["spec"]["minReadySeconds"] = 5
    made = new_replica_set(d, [rs("old", 4)], "2")
    pod_hash = compute_hash(TEMPLATE)
    assert made["metadata"]["name"] == f"web-{pod_hash}"
    assert made["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert made["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": pod_hash}}
    assert made["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == pod_hash
    assert made["spec"]["replicas"] == 1  # 4 old + surge 1
    assert made["spec"]["minReadySeconds"] == 5
    assert made["metadata"]["annotations"] == {
        "kubernetes.io/change-cause": "v2",
        "deployment.kubernetes.io/revision": "2",
        "deployment.kubernetes.io/desired-replicas": "4",
        "deployment.kubernetes.io/max-replicas": "5",
    }
    (owner,) = made["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Deployment", "d-uid", True)
    assert "pod-template-hash" not in TEMPLATE["metadata"]["labels"]  # the Deployment's template is untouched


def test_collision_count_changes_the_new_replica_sets_name() -> None:
    d = deployment(1)
    first = new_replica_set(d, [], "1")["metadata"]["name"]
    d["status"]["collisionCount"] = 1
    assert new_replica_set(d, [], "1")["metadata"]["name"] != first


# -- Recreate -------------------------------------------------------------------------------------


def test_recreate_scales_every_old_replica_set_to_zero() -> None:
    assert plan_scale_down_old([rs("a", 2), rs("b", 0), rs("c", 1)]) == [ScaleStep("a", 0), ScaleStep("c", 0)]


@pytest.mark.parametrize(
    ("old_status_replicas", "pods", "expected"),
    [
        (0, {}, False),
        (1, {}, True),  # the old ReplicaSet still reports a pod
        (0, {"uid-old": ["Running"]}, True),  # a terminating pod it no longer counts
        (0, {"uid-old": ["Pending"]}, True),
        (0, {"uid-old": ["Unknown"]}, True),
        (0, {"uid-old": ["Succeeded", "Failed"]}, False),
        (0, {"uid-new": ["Running"]}, False),  # the new ReplicaSet's pods do not count
    ],
)
def test_old_pods_running(old_status_replicas: int, pods: dict[str, list[str]], expected: bool) -> None:
    old = rs("old", 0)
    old["status"]["replicas"] = old_status_replicas
    by_uid = {uid: [{"status": {"phase": phase}} for phase in phases] for uid, phases in pods.items()}
    assert old_pods_running(rs("new", 1, age=1), [old], by_uid) is expected


# -- revision history -----------------------------------------------------------------------------


def test_history_cleanup_deletes_lowest_revisions_beyond_the_limit_only_when_empty() -> None:
    d = deployment(1)
    d["spec"]["revisionHistoryLimit"] = 1
    olds = []
    for revision, size in ((1, 0), (2, 1), (3, 0), (4, 0)):
        old = rs(f"r{revision}", size)
        old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(revision)
        olds.append(old)
    unobserved = olds[2]
    unobserved["metadata"]["generation"] = 2
    unobserved["status"]["observedGeneration"] = 1
    doomed = plan_history_cleanup(d, list(reversed(olds)))
    # three beyond the limit (r1, r2, r3): r2 still has a replica, r3's last change is unobserved
    assert [x["metadata"]["name"] for x in doomed] == ["r1"]


def test_history_cleanup_ignores_replica_sets_being_deleted_and_no_limit() -> None:
    d = deployment(1)
    d["spec"]["revisionHistoryLimit"] = 1
    going = rs("going", 0)
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert plan_history_cleanup(d, [going, rs("kept", 0)]) == []
    d["spec"]["revisionHistoryLimit"] = 2**31 - 1
    assert plan_history_cleanup(d, [rs("a", 0), rs("b", 0)]) == []


# -- a whole rollout, simulated -------------------------------------------------------------------


@dataclass
class SimulatedReplicaSet:
    """A ReplicaSet and its pods as the ReplicaSet controller would keep them: `pods` exist,
    `ready` of them are available.  Pods start unavailable and become available a tick later
    (never, with `broken`)."""

    name: str
    age: int
    spec: int
    pods: int = 0
    ready: int = 0
    broken: bool = False

    def obj(self) -> dict[str, Any]:
        made = rs(self.name, self.spec, age=self.age, available=self.ready)
        made["status"]["replicas"] = self.pods
        return made

    def reconcile_pods(self) -> None:
        if self.pods < self.spec:
            self.pods = self.spec
        elif self.pods > self.spec:
            gone = self.pods - self.spec
            unready_gone = min(gone, self.pods - self.ready)  # not-ready pods are deleted first
            self.ready -= gone - unready_gone
            self.pods = self.spec

    def become_ready(self) -> None:
        if not self.broken:
            self.ready = self.pods


def simulate(d: dict[str, Any], old_size: int, *, broken: bool = False, ticks: int = 100) -> list[tuple[int, int]]:
    """Roll from one healthy old ReplicaSet to a new one; returns (pods, available) at every moment."""
    old = SimulatedReplicaSet("old", 0, old_size, old_size, old_size)
    new = SimulatedReplicaSet("new", 1, 0, broken=broken)
    seen = []
    for _ in range(ticks):
        objs = {sim.name: sim.obj() for sim in (old, new)}
        every = [objs["old"], objs["new"]]
        target = plan_new_replica_set(d, every, objs["new"])
        if target is not None:
            new.spec = target
        else:
            for step in plan_old_replica_sets(d, every, active([objs["old"]]), objs["new"]):
                assert step.name == "old"
                old.spec = step.replicas
        for sim in (old, new):
            sim.reconcile_pods()
        seen.append((old.pods + new.pods, old.ready + new.ready))
        for sim in (old, new):
            sim.become_ready()
        seen.append((old.pods + new.pods, old.ready + new.ready))
        if old.pods == 0 and new.ready == replicas(d):
            break
    return seen


@pytest.mark.parametrize(
    ("wanted", "surge", "unavailable"),
    [
        (10, "25%", "25%"),
        (10, 0, 1),
        (10, 1, 0),
        (3, "50%", "50%"),
        (1, "25%", "25%"),
        (7, "100%", 0),
        (5, 0, "100%"),
        (4, 2, 3),
    ],
)
def test_rollout_never_exceeds_max_surge_nor_drops_below_min_available(
    wanted: int, surge: Any, unavailable: Any
) -> None:
    d = deployment(wanted, surge, unavailable)
    ceiling = wanted + max_surge(d)
    floor = wanted - max_unavailable(d)
    seen = simulate(d, wanted)
    assert all(pods <= ceiling for pods, _ in seen), seen
    assert all(available >= floor for _, available in seen), seen
    assert seen[-1] == (wanted, wanted)  # and it finishes


def test_rollout_with_pods_that_never_become_ready_stops_at_max_unavailable() -> None:
    d = deployment(10, "25%", "25%")
    seen = simulate(d, 10, broken=True, ticks=20)
    assert all(pods <= 13 and available >= 8 for pods, available in seen)
    assert seen[-1] == (13, 8)  # stuck: 8 old available, 5 new broken
