"""The DaemonSet controller: eligibility predicates, per-node and rolling-update planning, status
counts (pure, table-driven), then the controller against a FakeClient and a FakeClock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.daemonset import DaemonSetController
from kubelite.controllers.daemonset_placement import (
    Eligibility,
    daemon_tolerations,
    node_should_run,
    pin_to_node,
    required_affinity_matches,
    target_node_name,
    term_matches,
    tolerates,
)
from kubelite.controllers.daemonset_status import next_status, status_changed, status_counts
from kubelite.controllers.daemonset_update import (
    FailedPodBackoff,
    NodePlan,
    plan_node,
    plan_rolling_update,
    rolling_limits,
    scaled_value,
)
from kubelite.controllers.history import CONTROLLER_REVISION_HASH_LABEL, compute_hash, template_patch
from kubelite.controllers.podutil import is_ready
from kubelite.machinery.meta import rfc3339
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

T = TypeVar("T")
NS = "ns"
DAEMONSETS = builtin("apps", "daemonsets")
REVISIONS = builtin("apps", "controllerrevisions")
PODS = builtin("", "pods")
NODES = builtin("", "nodes")
EVENTS = builtin("", "events")
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
HASH = CONTROLLER_REVISION_HASH_LABEL


# -- builders -------------------------------------------------------------------------------------


def make_node(name: str, *, labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None) -> dict:
    node: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}}}
    if taints:
        node["spec"] = {"taints": taints}
    return node


def make_ds(
    name: str = "agent",
    *,
    image: str = "agent:1",
    strategy: dict[str, Any] | None = None,
    min_ready: int = 0,
    history_limit: int = 10,
    **pod_spec: Any,
) -> dict[str, Any]:
    """A DaemonSet as the API server stores it (its defaults applied)."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": image}], **pod_spec},
        },
        "updateStrategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        "revisionHistoryLimit": history_limit,
    }
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": NS}, "spec": spec}


def make_pod(
    name: str,
    node: str,
    *,
    hash_value: str = "new",
    phase: str = "Running",
    ready_at: datetime | None = None,
    created: datetime = NOW,
    bound: bool = False,
    deleting: bool = False,
) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(ready_at)}] if ready_at else []
    meta: dict[str, Any] = {"name": name, "creationTimestamp": rfc3339(created), "labels": {HASH: hash_value}}
    if deleting:
        meta["deletionTimestamp"] = rfc3339(NOW)
    spec: dict[str, Any] = {"affinity": pin_to_node(None, node)}
    if bound:
        spec["nodeName"] = node
    return {"metadata": meta, "spec": spec, "status": {"phase": phase, "conditions": conditions}}


def taint(key: str, effect: str, value: str = "") -> dict[str, str]:
    found = {"key": key, "effect": effect}
    if value:
        found["value"] = value
    return found


# -- eligibility: node selector terms -------------------------------------------------------------

NODE = make_node("n1", labels={"zone": "a", "cpus": "8", "gpu": "yes"})


@pytest.mark.parametrize(
    ("requirement", "matches"),
    [
        ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
        ({"key": "zone", "operator": "In", "values": ["b"]}, False),
        ({"key": "missing", "operator": "In", "values": ["a"]}, False),
        ({"key": "zone", "operator": "NotIn", "values": ["b"]}, True),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
        ({"key": "missing", "operator": "NotIn", "values": ["a"]}, True),
        ({"key": "gpu", "operator": "Exists"}, True),
        ({"key": "missing", "operator": "Exists"}, False),
        ({"key": "missing", "operator": "DoesNotExist"}, True),
        ({"key": "gpu", "operator": "DoesNotExist"}, False),
        ({"key": "cpus", "operator": "Gt", "values": ["4"]}, True),
        ({"key": "cpus", "operator": "Gt", "values": ["8"]}, False),
        ({"key": "cpus", "operator": "Lt", "values": ["16"]}, True),
        ({"key": "cpus", "operator": "Lt", "values": ["-1"]}, False),
        ({"key": "zone", "operator": "Gt", "values": ["1"]}, False),  # label not a number
        ({"key": "missing", "operator": "Lt", "values": ["100"]}, False),
        # malformed requirements spoil their term: it matches nothing
        ({"key": "zone", "operator": "NotIn", "values": []}, False),
        ({"key": "cpus", "operator": "Gt", "values": ["four"]}, False),
        ({"key": "cpus", "operator": "Gt", "values": ["1", "2"]}, False),
        ({"key": "gpu", "operator": "Exists", "values": ["yes"]}, False),
        ({"key": "zone", "operator": "Like", "values": ["a"]}, False),
    ],
)
def test_match_expressions_operators(requirement: dict[str, Any], matches: bool) -> None:
    assert term_matches({"matchExpressions": [requirement]}, NODE) is matches


@pytest.mark.parametrize(
    ("requirement", "matches"),
    [
        ({"key": "metadata.name", "operator": "In", "values": ["n1"]}, True),
        ({"key": "metadata.name", "operator": "In", "values": ["n2"]}, False),
        ({"key": "metadata.name", "operator": "NotIn", "values": ["n2"]}, True),
        ({"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}, False),
        ({"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]}, False),  # one value only
        ({"key": "metadata.name", "operator": "Exists"}, False),
    ],
)
def test_match_fields_select_the_node_by_name(requirement: dict[str, Any], matches: bool) -> None:
    assert term_matches({"matchFields": [requirement]}, NODE) is matches


def test_requirements_of_a_term_are_anded_and_terms_ored() -> None:
    zone_a = {"key": "zone", "operator": "In", "values": ["a"]}
    zone_b = {"key": "zone", "operator": "In", "values": ["b"]}
    gpu = {"key": "gpu", "operator": "Exists"}

    def spec(*terms: dict[str, Any]) -> dict[str, Any]:
        required = {"nodeSelectorTerms": list(terms)}
        return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}}

    assert required_affinity_matches(spec({"matchExpressions": [zone_a, gpu]}), NODE)
    assert not required_affinity_matches(spec({"matchExpressions": [zone_b, gpu]}), NODE)
    assert required_affinity_matches(spec({"matchExpressions": [zone_b]}, {"matchExpressions": [zone_a]}), NODE)
    assert not required_affinity_matches(spec({}), NODE)  # an empty term matches nothing
    assert not required_affinity_matches(spec(), NODE)
    assert required_affinity_matches({}, NODE)


def test_node_selector_needs_every_label_equal() -> None:
    assert required_affinity_matches({"nodeSelector": {"zone": "a", "gpu": "yes"}}, NODE)
    assert not required_affinity_matches({"nodeSelector": {"zone": "a", "gpu": "no"}}, NODE)
    assert not required_affinity_matches({"nodeSelector": {"rack": "1"}}, NODE)


# -- eligibility: taints and tolerations ----------------------------------------------------------


@pytest.mark.parametrize(
    ("toleration", "tolerated"),
    [
        ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, True),
        ({"key": "k", "value": "v", "effect": "NoSchedule"}, True),  # operator defaults to Equal
        ({"key": "k", "operator": "Equal", "value": "w", "effect": "NoSchedule"}, False),
        ({"key": "k", "operator": "Exists", "effect": "NoSchedule"}, True),
        ({"key": "k", "operator": "Exists"}, True),  # empty effect matches every effect
        ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
        ({"operator": "Exists"}, True),  # empty key with Exists tolerates everything
        ({"key": "k", "operator": "Bogus", "value": "v"}, False),
    ],
)
def test_toleration_matching(toleration: dict[str, Any], tolerated: bool) -> None:
    assert tolerates(toleration, taint("k", "NoSchedule", "v")) is tolerated


@pytest.mark.parametrize(
    ("taints", "tolerations", "expected"),
    [
        ([], [], Eligibility(True, True)),
        ([taint("dedicated", "NoSchedule")], [], Eligibility(False, True)),
        ([taint("dedicated", "NoExecute")], [], Eligibility(False, False)),
        ([taint("dedicated", "PreferNoSchedule")], [], Eligibility(True, True)),
        ([taint("dedicated", "NoExecute")], [{"key": "dedicated", "operator": "Exists"}], Eligibility(True, True)),
        # the daemon defaults: node problems and cordoning never keep a daemon off a node
        ([taint("node.kubernetes.io/not-ready", "NoExecute")], [], Eligibility(True, True)),
        ([taint("node.kubernetes.io/unreachable", "NoExecute")], [], Eligibility(True, True)),
        ([taint("node.kubernetes.io/unschedulable", "NoSchedule")], [], Eligibility(True, True)),
        ([taint("node.kubernetes.io/memory-pressure", "NoSchedule")], [], Eligibility(True, True)),
        ([taint("node.kubernetes.io/network-unavailable", "NoSchedule")], [], Eligibility(False, True)),
    ],
)
def test_node_eligibility_from_taints(
    taints: list[dict[str, Any]], tolerations: list[dict[str, Any]], expected: Eligibility
) -> None:
    ds = make_ds(tolerations=tolerations) if tolerations else make_ds()
    assert node_should_run(make_node("n1", taints=taints), ds) == expected


def test_host_network_daemons_tolerate_an_unavailable_network() -> None:
    node = make_node("n1", taints=[taint("node.kubernetes.io/network-unavailable", "NoSchedule")])
    assert node_should_run(node, make_ds(hostNetwork=True)) == Eligibility(True, True)


def test_template_node_name_and_selector_restrict_the_nodes() -> None:
    assert node_should_run(NODE, make_ds(nodeName="n2")) == Eligibility(False, False)
    assert node_should_run(NODE, make_ds(nodeName="n1")) == Eligibility(True, True)
    assert node_should_run(NODE, make_ds(nodeSelector={"zone": "b"})) == Eligibility(False, False)


def test_daemon_tolerations_are_added_in_upstream_order_replacing_equal_ones() -> None:
    mine = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    other = {"key": "team", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}
    tolerations = daemon_tolerations({"tolerations": [mine, other]})
    assert tolerations == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},  # no time limit
        other,
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert daemon_tolerations({"hostNetwork": True})[-1]["key"] == "node.kubernetes.io/network-unavailable"


def test_pinning_replaces_required_terms_and_keeps_the_rest_of_the_affinity() -> None:
    preferred = [{"weight": 1, "preference": {"matchExpressions": [{"key": "z", "operator": "Exists"}]}}]
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["old"]}]},
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": preferred,
        },
        "podAntiAffinity": {"x": 1},
    }
    pinned = pin_to_node(affinity, "n7")
    assert pinned["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]
    }
    assert pinned["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == preferred
    assert pinned["podAntiAffinity"] == {"x": 1}
    assert (
        affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        != (pinned["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0])
    )  # the input is left alone
    assert target_node_name({"spec": {"affinity": pinned}}) == "n7"
    assert target_node_name({"spec": {"affinity": pinned, "nodeName": "bound"}}) == "bound"
    assert target_node_name({"spec": {}}) is None


# -- the per-node plan ----------------------------------------------------------------------------

RUN = Eligibility(True, True)
STAY = Eligibility(False, True)
GO = Eligibility(False, False)


def names(pods: Any) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def node_plan(pods: list[dict[str, Any]], eligibility: Eligibility = RUN, *, surge: bool = False) -> NodePlan:
    return plan_node(pods, eligibility, hash_value="new", surge=surge, min_ready=0, now=NOW)


def test_eligible_node_without_a_pod_gets_one() -> None:
    assert node_plan([]) == NodePlan(create=True)
    assert node_plan([], STAY) == NodePlan()


def test_surplus_pods_go_and_the_oldest_scheduled_stays() -> None:
    older = make_pod("older", "n1", created=NOW - timedelta(hours=1))
    bound = make_pod("bound", "n1", bound=True)
    newest = make_pod("newest", "n1", created=NOW + timedelta(hours=1))
    assert names(node_plan([older, newest, bound]).delete) == ["older", "newest"]


def test_a_node_that_may_not_keep_its_pods_loses_them_all() -> None:
    pods = [make_pod("a", "n1"), make_pod("b", "n1", deleting=True)]
    assert names(node_plan(pods, GO).delete) == ["a"]
    assert node_plan(pods, STAY).delete == ()


def test_finished_pods_are_deleted_and_a_going_pod_blocks_its_replacement() -> None:
    plan = node_plan([make_pod("f", "n1", phase="Failed"), make_pod("s", "n1", phase="Succeeded")])
    assert (names(plan.failed), names(plan.succeeded), plan.create) == (["f"], ["s"], False)
    assert node_plan([make_pod("going", "n1", deleting=True)]) == NodePlan()


def test_with_surge_the_old_pod_goes_once_the_new_one_is_available() -> None:
    old = make_pod("old", "n1", hash_value="old", ready_at=NOW, created=NOW - timedelta(hours=1))
    new = make_pod("new", "n1", hash_value="new")
    assert node_plan([old, new], surge=True).delete == ()
    ready_new = make_pod("new", "n1", hash_value="new", ready_at=NOW)
    assert names(node_plan([old, ready_new], surge=True).delete) == ["old"]
    unready_old = make_pod("old", "n1", hash_value="old")
    assert names(node_plan([unready_old, new], surge=True).delete) == ["old"]
    extra = make_pod("extra", "n1", hash_value="new", created=NOW + timedelta(hours=1))
    assert names(node_plan([old, new, extra], surge=True).delete) == ["extra"]
    assert node_plan([make_pod("going", "n1", deleting=True)], surge=True) == NodePlan(create=True)


# -- rolling updates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [(2, 10, 2), ("10%", 10, 1), ("10%", 11, 2), ("50%", 3, 2), ("0%", 5, 0), ("100%", 4, 4)],
)
def test_percentages_scale_to_the_desired_nodes_rounded_up(value: int | str, total: int, expected: int) -> None:
    assert scaled_value(value, total, round_up=True) == expected


@pytest.mark.parametrize("value", ["10", "ten%", True])
def test_bad_int_or_percent_values_are_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        scaled_value(value, 10, round_up=True)


@pytest.mark.parametrize(
    ("rolling", "desired", "limits"),
    [
        ({}, 5, (0, 1)),  # apps/v1 defaults
        ({"maxUnavailable": "20%", "maxSurge": 0}, 10, (0, 2)),
        ({"maxUnavailable": 0, "maxSurge": "25%"}, 10, (3, 0)),
        ({"maxUnavailable": 0, "maxSurge": 0}, 3, (0, 1)),  # impossible: accept one unavailable
        ({"maxUnavailable": "10%", "maxSurge": 0}, 0, (0, 0)),
    ],
)
def test_rolling_limits(rolling: dict[str, Any], desired: int, limits: tuple[int, int]) -> None:
    ds = make_ds(strategy={"type": "RollingUpdate", "rollingUpdate": rolling})
    assert rolling_limits(ds, desired) == limits
    assert rolling_limits(make_ds(strategy={"type": "OnDelete"}), desired) == ((0, 1) if desired else (0, 0))


def rolling(node_pods: dict[str, list[dict[str, Any]]], *, surge: int = 0, unavailable: int = 1, **kw: Any) -> Any:
    return plan_rolling_update(
        node_pods,
        hash_value="new",
        generation=None,
        max_surge=surge,
        max_unavailable=unavailable,
        desired=kw.pop("desired", len(node_pods)),
        should_run=kw.pop("should_run", dict.fromkeys(node_pods, True)),
        min_ready=0,
        now=NOW,
    )


def old_ready(node: str) -> dict[str, Any]:
    return make_pod(f"old-{node}", node, hash_value="old", ready_at=NOW)


def test_rollout_deletes_at_most_max_unavailable_available_old_pods() -> None:
    node_pods = {n: [old_ready(n)] for n in ("n1", "n2", "n3", "n4")}
    assert names(rolling(node_pods, unavailable=1).delete) == ["old-n1"]
    assert names(rolling(node_pods, unavailable=3).delete) == ["old-n1", "old-n2", "old-n3"]


def test_rollout_counts_missing_and_unready_new_pods_against_max_unavailable() -> None:
    node_pods = {"n1": [], "n2": [old_ready("n2")], "n3": [old_ready("n3")]}
    assert rolling(node_pods, unavailable=1).delete == ()
    node_pods = {"n1": [make_pod("new-n1", "n1")], "n2": [old_ready("n2")], "n3": [old_ready("n3")]}
    assert names(rolling(node_pods, unavailable=2).delete) == ["old-n2"]


def test_rollout_always_replaces_unavailable_old_pods() -> None:
    broken = make_pod("old-n1", "n1", hash_value="old")
    node_pods = {"n1": [broken], "n2": [old_ready("n2")], "n3": [old_ready("n3")]}
    assert names(rolling(node_pods, unavailable=1).delete) == ["old-n1"]


def test_surge_starts_at_most_max_surge_new_pods_and_retires_old_ones_when_replaced() -> None:
    node_pods = {n: [old_ready(n)] for n in ("n1", "n2", "n3")}
    plan = rolling(node_pods, surge=1, unavailable=0)
    assert (plan.delete, plan.create_on) == ((), ("n1",))

    node_pods["n1"].append(make_pod("new-n1", "n1"))
    plan = rolling(node_pods, surge=1, unavailable=0)
    assert (plan.delete, plan.create_on) == ((), ())  # n1's new pod is not available yet

    node_pods["n1"][1] = make_pod("new-n1", "n1", ready_at=NOW)
    plan = rolling(node_pods, surge=1, unavailable=0)
    assert (names(plan.delete), plan.create_on) == (["old-n1"], ("n2",))


def test_surge_keeps_pods_on_disqualified_nodes_until_enough_others_are_available() -> None:
    node_pods = {"n1": [old_ready("n1")], "n2": [], "n3": [old_ready("n3")]}
    should_run = {"n1": False, "n2": True, "n3": True}
    plan = rolling(node_pods, surge=1, unavailable=0, desired=2, should_run=should_run)
    assert plan.delete == ()  # 2 available, 2 desired: n1's pod still carries its share
    node_pods["n2"] = [make_pod("new-n2", "n2", ready_at=NOW)]
    plan = rolling(node_pods, surge=1, unavailable=0, desired=2, should_run=should_run)
    assert names(plan.delete) == ["old-n1"]


# -- status ----------------------------------------------------------------------------------------


def test_status_counts_per_node() -> None:
    eligibility = {"n1": RUN, "n2": RUN, "n3": RUN, "n4": STAY, "n5": RUN}
    node_pods = {
        "n1": [make_pod("a", "n1", ready_at=NOW - timedelta(seconds=30))],
        "n2": [make_pod("b", "n2", ready_at=NOW - timedelta(seconds=5), hash_value="old")],
        "n3": [make_pod("c", "n3")],
        "n4": [make_pod("d", "n4", ready_at=NOW)],
    }
    counts = status_counts(
        list(eligibility), eligibility, node_pods, hash_value="new", generation=None, min_ready=10, now=NOW
    )
    assert counts == {
        "desiredNumberScheduled": 4,
        "currentNumberScheduled": 3,
        "numberMisscheduled": 1,
        "numberReady": 2,
        "updatedNumberScheduled": 2,
        "numberAvailable": 1,
        "numberUnavailable": 3,
    }


def test_status_keeps_other_fields_and_omits_zero_optional_counts() -> None:
    ds = make_ds()
    ds["metadata"]["generation"] = 4
    ds["status"] = {"collisionCount": 2, "numberAvailable": 3, "observedGeneration": 3}
    counts = dict.fromkeys(("desiredNumberScheduled", "currentNumberScheduled", "numberReady"), 0)
    status = next_status(ds, counts)
    assert status == {
        "collisionCount": 2,
        "observedGeneration": 3,
        "desiredNumberScheduled": 0,
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "numberReady": 0,
    }
    assert next_status(ds, counts, observed_generation=4)["observedGeneration"] == 4
    ds["status"] = status
    assert not status_changed(ds, status)
    assert not status_changed(ds, {**status, "numberAvailable": 0})
    assert status_changed(ds, {**status, "numberReady": 1})


def test_failed_pod_backoff_doubles_and_starts_over_after_a_quiet_period() -> None:
    backoff = FailedPodBackoff(initial=1, cap=4)
    assert backoff.remaining("k", 0) == 0
    delays = []
    now = 0.0
    for _ in range(4):
        backoff.next("k", now)
        delays.append(backoff.remaining("k", now))
        now += delays[-1]
    assert delays == [1, 2, 4, 4]
    backoff.next("k", now + 100)  # untouched for more than twice the cap
    assert backoff.remaining("k", now + 100) == 1
    backoff.gc(now + 1000)
    assert backoff.remaining("k", now + 1000) == 0


# -- the controller against a fake API ------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(client: FakeClient, clock: FakeClock) -> AsyncIterator[DaemonSetController]:
    """The controller with its informers and event recorder until the block ends; then checks that
    it changed no object in the informer caches."""
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "daemonset-controller", clock=clock)
    controller = DaemonSetController(ControllerContext(client, factory, recorder, clock))
    tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
    try:
        await asyncio.wait_for(factory.wait_for_sync(), 5)
        yield controller
        await idle(controller)
        await recorder.flush()
        assert_caches_match_the_api(client, controller)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def assert_caches_match_the_api(client: FakeClient, controller: DaemonSetController) -> None:
    informers = ((controller.daemonsets, DAEMONSETS), (controller.pods, PODS), (controller.revisions, REVISIONS))
    for informer, resource in informers:
        stored = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in client.objects(resource)}
        for cached in informer.list():
            meta = cached["metadata"]
            current = stored.get((meta.get("namespace"), meta["name"]))
            if current is not None and current["metadata"]["resourceVersion"] == meta["resourceVersion"]:
                assert cached == current, f"{resource.plural} {meta['name']} was changed in the cache"


async def idle(controller: DaemonSetController) -> None:
    """Until informer events have been handled and no key is queued or being reconciled."""
    quiet = 0
    async with asyncio.timeout(5):
        while quiet < 3:
            await asyncio.sleep(0.001)
            quiet = quiet + 1 if not len(controller.queue) and not controller.queue.processing() else 0


async def advance_until(controller: DaemonSetController, clock: FakeClock, check: Callable[[], T]) -> T:
    """Step the fake clock from one due time to the next until `check()` holds."""
    async with asyncio.timeout(5):
        while True:
            await idle(controller)
            if result := check():
                return result
            deadline = clock.next_deadline()
            assert deadline is not None, "nothing is due and the condition does not hold"
            await clock.step(max(0.0, deadline - clock.now()))


async def add_nodes(client: FakeClient, *nodes: str | dict[str, Any]) -> None:
    for node in nodes:
        await client.create(NODES, make_node(node) if isinstance(node, str) else node)


async def create_ds(client: FakeClient, name: str = "agent", **kw: Any) -> dict[str, Any]:
    return await client.create(DAEMONSETS, make_ds(name, **kw), NS)


async def set_image(client: FakeClient, image: str, name: str = "agent") -> None:
    body = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}
    await client.patch(DAEMONSETS, name, body, NS)


def live_pods(client: FakeClient) -> list[dict[str, Any]]:
    return [p for p in client.objects(PODS) if not p["metadata"].get("deletionTimestamp")]


def by_node(client: FakeClient) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for pod in live_pods(client):
        found.setdefault(target_node_name(pod) or "", []).append(pod)
    return found


def stored_ds(client: FakeClient, name: str = "agent") -> dict[str, Any]:
    return next(d for d in client.objects(DAEMONSETS) if d["metadata"]["name"] == name)


def current_hash(client: FakeClient) -> str:
    newest = max(client.objects(REVISIONS), key=lambda r: r["revision"])
    return str(newest["metadata"]["labels"][HASH])


def reasons(client: FakeClient) -> list[str]:
    return [e["reason"] for e in client.objects(EVENTS)]


async def make_ready(client: FakeClient, clock: FakeClock, pod: dict[str, Any]) -> None:
    """Report the pod Running and Ready, as its kubelet would."""
    condition = {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(clock.utcnow())}
    body = {"status": {"phase": "Running", "conditions": [condition]}}
    await client.patch(PODS, pod["metadata"]["name"], body, NS, subresource="status")


async def make_all_ready(client: FakeClient, clock: FakeClock) -> None:
    for pod in live_pods(client):
        if not is_ready(pod):
            await make_ready(client, clock, pod)


async def test_three_nodes_get_one_pinned_pod_each() -> None:
    client, clock = FakeClient(), FakeClock()
    await add_nodes(client, "n1", "n2", "n3")
    async with running(client, clock) as controller:
        ds = await create_ds(client)
        await idle(controller)
    pods = by_node(client)
    assert sorted(pods) == ["n1", "n2", "n3"]
    [revision] = client.objects(REVISIONS)
    hash_value = revision["metadata"]["labels"][HASH]
    assert hash_value == compute_hash(ds["spec"]["template"])
    assert revision["metadata"]["name"] == f"agent-{hash_value}"
    assert revision["revision"] == 1
    assert revision["data"] == template_patch(ds["spec"]["template"])
    assert revision["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
    for node, [pod] in pods.items():
        meta, spec = pod["metadata"], pod["spec"]
        assert meta["generateName"] == "agent-"
        assert meta["labels"] == {"app": "agent", HASH: hash_value, "pod-template-generation": "1"}
        [owner] = meta["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "DaemonSet",
            "agent",
            ds["metadata"]["uid"],
            True,
        )
        assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
        }
        assert {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"} in spec[
            "tolerations"
        ]
        assert "nodeName" not in spec  # the scheduler binds it
    status = stored_ds(client)["status"]
    assert status == {
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 3,
        "numberMisscheduled": 0,
        "numberReady": 0,
        "updatedNumberScheduled": 3,
        "numberUnavailable": 3,
        "observedGeneration": 1,
    }
    assert reasons(client).count("SuccessfulCreate") == 3


async def test_added_node_gets_a_pod_and_removed_node_loses_its_pod() -> None:
    client, clock = FakeClient(), FakeClock()
    await add_nodes(client, "n1", "n2")
    async with running(client, clock) as controller:
        await create_ds(client)
        await idle(controller)
        await add_nodes(client, "n3")
        await idle(controller)
        assert sorted(by_node(client)) == ["n1", "n2", "n3"]
        await client.delete(NODES, "n2")
        await idle(controller)
        assert sorted(by_node(client)) == ["n1", "n3"]
    assert stored_ds(client)["status"]["desiredNumberScheduled"] == 2
    assert "SuccessfulDelete" in reasons(client)


async def test_untolerated_taints_keep_new_pods_off_and_no_execute_evicts() -> None:
    client, clock = FakeClient(), FakeClock()
    dedicated = make_node("n3", taints=[taint("dedicated", "NoSchedule")])
    await add_nodes(client, "n1", "n2", dedicated)
    async with running(client, clock) as controller:
        await create_ds(client)
        await idle(controller)
        assert sorted(by_node(client)) == ["n1", "n2"]
        # NoSchedule added later: the pod stays (misscheduled); NoExecute: it goes
        await client.patch(NODES, "n1", {"spec": {"taints": [taint("maintenance", "NoSchedule")]}})
        await idle(controller)
        assert sorted(by_node(client)) == ["n1", "n2"]
        status = stored_ds(client)["status"]
        assert (status["desiredNumberScheduled"], status["numberMisscheduled"]) == (1, 1)
        await client.patch(NODES, "n1", {"spec": {"taints": [taint("maintenance", "NoExecute")]}})
        await idle(controller)
        assert sorted(by_node(client)) == ["n2"]


async def test_node_selector_decides_which_nodes_run_the_daemon() -> None:
    client, clock = FakeClient(), FakeClock()
    await add_nodes(client, make_node("gpu", labels={"gpu": "yes"}), "plain")
    async with running(client, clock) as controller:
        await create_ds(client, nodeSelector={"gpu": "yes"})
        await idle(controller)
        assert sorted(by_node(client)) == ["gpu"]
        await client.patch(NODES, "plain", {"metadata": {"labels": {"gpu": "yes"}}})
        await idle(controller)
        assert sorted(by_node(client)) == ["gpu", "plain"]


async def test_rolling_update_replaces_at_most_max_unavailable_pods_at_a_time() -> None:
    client, clock = FakeClient(), FakeClock()
    nodes = {"n1", "n2", "n3", "n4"}
    await add_nodes(client, *sorted(nodes))
    async with running(client, clock) as controller:
        await create_ds(client)
        await idle(controller)
        await make_all_ready(client, clock)
        await idle(controller)
        await set_image(client, "agent:2")
        await idle(controller)
        new_hash = current_hash(client)
        for _ in range(20):
            pods = live_pods(client)
            available = {target_node_name(p) for p in pods if is_ready(p)}
            assert len(nodes - available) <= 1, "more than maxUnavailable nodes without an available pod"
            if len(pods) == 4 and all(p["metadata"]["labels"][HASH] == new_hash and is_ready(p) for p in pods):
                break
            await make_all_ready(client, clock)
            await idle(controller)
        else:
            pytest.fail("the rollout did not finish")
    revisions = sorted((r["revision"], r["metadata"]["labels"][HASH]) for r in client.objects(REVISIONS))
    assert [number for number, _ in revisions] == [1, 2] and revisions[1][1] == new_hash
    status = stored_ds(client)["status"]
    assert (status["updatedNumberScheduled"], status["numberAvailable"], status["observedGeneration"]) == (4, 4, 2)


async def test_surge_rollout_keeps_every_node_available() -> None:
    client, clock = FakeClient(), FakeClock()
    nodes = {"n1", "n2", "n3"}
    await add_nodes(client, *sorted(nodes))
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    async with running(client, clock) as controller:
        await create_ds(client, strategy=strategy)
        await idle(controller)
        await make_all_ready(client, clock)
        await idle(controller)
        await set_image(client, "agent:2")
        await idle(controller)
        new_hash = current_hash(client)
        for _ in range(20):
            pods = live_pods(client)
            assert {target_node_name(p) for p in pods if is_ready(p)} == nodes
            assert len(pods) <= 4, "more than maxSurge extra pods"
            if len(pods) == 3 and all(p["metadata"]["labels"][HASH] == new_hash and is_ready(p) for p in pods):
                break
            await make_all_ready(client, clock)
            await idle(controller)
        else:
            pytest.fail("the rollout did not finish")


async def test_on_delete_replaces_only_pods_the_user_deleted() -> None:
    client, clock = FakeClient(), FakeClock()
    await add_nodes(client, "n1", "n2")
    async with running(client, clock) as controller:
        await create_ds(client, strategy={"type": "OnDelete"})
        await idle(controller)
        old_hash = current_hash(client)
        await set_image(client, "agent:2")
        await idle(controller)
        new_hash = current_hash(client)
        assert new_hash != old_hash
        assert {p["metadata"]["labels"][HASH] for p in live_pods(client)} == {old_hash}
        victim = by_node(client)["n1"][0]
        await client.delete(PODS, victim["metadata"]["name"], NS)
        await idle(controller)
        assert by_node(client)["n1"][0]["metadata"]["labels"][HASH] == new_hash
        assert by_node(client)["n2"][0]["metadata"]["labels"][HASH] == old_hash
    assert stored_ds(client)["status"]["updatedNumberScheduled"] == 1


async def test_status_counts_availability_after_min_ready_seconds() -> None:
    client, clock = FakeClient(), FakeClock()
    await add_nodes(client, "n1", "n2")
    async with running(client, clock) as controller:
        await create_ds(client, min_ready=10)
        await idle(controller)
        await make_all_ready(client, clock)
        await idle(controller)
        status = stored_ds(client)["status"]
        assert (status["numberReady"], status.get("numberAvailable", 0), status["numberUnavailable"]) == (2, 0, 2)
        start = clock.now()
        await advance_until(controller, clock, lambda: stored_ds(client)["status"].get("numberAvailable") == 2)
        assert clock.now() - start == pytest.approx(10)
        assert "numberUnavailable" not in stored_ds(client)["status"]


async def test_failed_pod_is_replaced_with_a_back_off_per_node() -> None:
    client, clock = FakeClient(), FakeClock()
    await add_nodes(client, "n1")
    async with running(client, clock) as controller:
        await create_ds(client)
        await idle(controller)
        [first] = live_pods(client)
        await client.patch(PODS, first["metadata"]["name"], {"status": {"phase": "Failed"}}, NS, subresource="status")
        await idle(controller)
        [second] = live_pods(client)
        assert second["metadata"]["name"] != first["metadata"]["name"]
        assert reasons(client).count("FailedDaemonPod") == 1

        # failing again at once: the deletion waits for the node's back-off (1 s, then 2 s …)
        await client.patch(PODS, second["metadata"]["name"], {"status": {"phase": "Failed"}}, NS, subresource="status")
        await idle(controller)
        assert [p["metadata"]["name"] for p in live_pods(client)] == [second["metadata"]["name"]]
        start = clock.now()
        await advance_until(controller, clock, lambda: second["metadata"]["name"] not in names(live_pods(client)))
        assert clock.now() - start == pytest.approx(1)
        await idle(controller)
        assert len(live_pods(client)) == 1
    events = [e for e in client.objects(EVENTS) if e["reason"] == "FailedDaemonPod"]
    assert events[0]["type"] == "Warning"
    assert (
        events[0]["message"]
        == f"Found failed daemon pod ns/{first['metadata']['name']} on node n1, will try to kill it"
    )


async def test_rollback_reuses_the_old_revision_with_a_new_number() -> None:
    client, clock = FakeClient(), FakeClock()
    await add_nodes(client, "n1")
    async with running(client, clock) as controller:
        await create_ds(client)
        await idle(controller)
        first_hash = current_hash(client)
        await set_image(client, "agent:2")
        await idle(controller)
        await make_all_ready(client, clock)
        await idle(controller)
        await set_image(client, "agent:1")
        await idle(controller)
        await make_all_ready(client, clock)
        await idle(controller)
    revisions = {r["metadata"]["labels"][HASH]: r["revision"] for r in client.objects(REVISIONS)}
    assert len(revisions) == 2
    assert revisions[first_hash] == 3
    [pod] = live_pods(client)
    assert pod["metadata"]["labels"][HASH] == first_hash


async def test_history_is_trimmed_but_revisions_of_live_pods_stay() -> None:
    client, clock = FakeClient(), FakeClock()
    await add_nodes(client, "n1")
    async with running(client, clock) as controller:
        await create_ds(client, strategy={"type": "OnDelete"}, history_limit=1)
        await idle(controller)
        live_hash = current_hash(client)
        for image in ("agent:2", "agent:3", "agent:4"):
            await set_image(client, image)
            await idle(controller)
        newest = current_hash(client)
    assert sorted(r["revision"] for r in client.objects(REVISIONS)) == [1, 4]
    assert {r["metadata"]["labels"][HASH] for r in client.objects(REVISIONS)} == {live_hash, newest}


async def test_hash_collision_bumps_the_collision_count() -> None:
    client, clock = FakeClient(), FakeClock()
    await add_nodes(client, "n1")
    template = make_ds()["spec"]["template"]
    squatter = {
        "metadata": {"name": f"agent-{compute_hash(template)}", "labels": {"app": "other"}},
        "data": {"something": "else"},
        "revision": 1,
    }
    await client.create(REVISIONS, squatter, NS)
    async with running(client, clock) as controller:
        await create_ds(client)
        await advance_until(controller, clock, lambda: len(client.objects(REVISIONS)) == 2)
    assert stored_ds(client)["status"]["collisionCount"] == 1
    assert {r["metadata"]["name"] for r in client.objects(REVISIONS)} == {
        squatter["metadata"]["name"],
        f"agent-{compute_hash(template, 1)}",
    }
    assert {p["metadata"]["labels"][HASH] for p in live_pods(client)} == {compute_hash(template, 1)}


async def test_matching_orphans_are_adopted_and_surplus_pods_deleted() -> None:
    client, clock = FakeClient(), FakeClock()
    await add_nodes(client, "n1", "n2")
    current = compute_hash(make_ds()["spec"]["template"])  # up to date: no rollout replaces them
    for name in ("orphan-a", "orphan-b"):
        orphan = make_pod(name, "n1", hash_value=current)
        orphan["metadata"]["labels"]["app"] = "agent"
        orphan["spec"]["containers"] = [{"name": "c", "image": "agent:1"}]
        del orphan["metadata"]["creationTimestamp"]
        await client.create(PODS, orphan, NS)
    async with running(client, clock) as controller:
        ds = await create_ds(client)
        await idle(controller)
    pods = by_node(client)
    assert [p["metadata"]["name"] for p in pods["n1"]] == ["orphan-a"]
    assert pods["n1"][0]["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
    assert len(pods["n2"]) == 1
    assert reasons(client).count("SuccessfulDelete") == 1  # orphan-b, the surplus one


async def test_empty_selector_selects_nothing_and_warns() -> None:
    client, clock = FakeClient(), FakeClock()
    await add_nodes(client, "n1")
    async with running(client, clock) as controller:
        ds = make_ds()
        ds["spec"]["selector"] = {}
        await client.create(DAEMONSETS, ds, NS)
        await idle(controller)
    assert client.objects(PODS) == []
    [event] = [e for e in client.objects(EVENTS) if e["reason"] == "SelectingAll"]
    assert event["message"] == "This daemon set is selecting all pods. A non-empty selector is required."
