"""The ReplicaSet / ReplicationController controller: its pure decisions table-tested, then the
controller run against a FakeClient with a FakeClock while the test plays the kubelet (patching pod
status as a node would)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import WatchEvent, builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.expectations import EXPECTATIONS_TIMEOUT
from kubelite.controllers.replicaset import (
    BURST_REPLICAS,
    REPLICA_SET,
    REPLICATION_CONTROLLER,
    ReplicaController,
    ReplicaSetController,
    ReplicationControllerController,
    desired_replicas,
    owners_selecting,
    plan_replicas,
    pod_owner_index,
)
from kubelite.controllers.replicaset_status import (
    ReplicaFailure,
    calculate_status,
    next_availability_check,
    status_changed,
)
from kubelite.machinery import errors
from kubelite.machinery.meta import deep_copy, rfc3339
from kubelite.machinery.selectors import SelectorError
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import DEFAULT_START, FakeClock

PODS = builtin("", "pods")
EVENTS = builtin("", "events")
RS = REPLICA_SET.resource
RC = REPLICATION_CONTROLLER.resource
NS = "ns"
NOW = DEFAULT_START
T = TypeVar("T")


def make_rs(name: str = "web", *, replicas: int | None = 3, generation: int = 1, **spec: Any) -> dict[str, Any]:
    full_spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name, "tier": "front"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        },
    }
    if replicas is not None:
        full_spec["replicas"] = replicas
    full_spec.update(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": generation},
        "spec": full_spec,
    }


def make_pod(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    node: str = "",
    phase: str = "Running",
    ready_at: datetime | None = None,
    owner: str | None = None,
    created: datetime = NOW,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "uid": f"uid-{name}",
        "creationTimestamp": rfc3339(created),
        "labels": {"app": "web", "tier": "front"} if labels is None else labels,
    }
    if owner is not None:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": f"uid-{owner}", "controller": True}
        ]
    conditions = []
    if ready_at is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(ready_at)})
    return {
        "metadata": meta,
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions},
    }


def names(pods: Any) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


# -- decisions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("active", "desired", "create", "delete"),
    [(0, 3, 3, 0), (2, 3, 1, 0), (3, 3, 0, 0), (5, 3, 0, 2), (2, 0, 0, 2), (0, 0, 0, 0)],
)
def test_plan_creates_or_deletes_the_difference(active: int, desired: int, create: int, delete: int) -> None:
    plan = plan_replicas([make_pod(f"p{i}") for i in range(active)], desired)
    assert (plan.create, len(plan.delete)) == (create, delete)


def test_plan_never_creates_or_deletes_more_than_the_burst_per_sync() -> None:
    assert plan_replicas([], 2000).create == BURST_REPLICAS
    assert plan_replicas([], 10, burst=4).create == 4
    assert len(plan_replicas([make_pod(f"p{i}") for i in range(10)], 0, burst=3).delete) == 3


def test_plan_deletes_unscheduled_then_pending_then_not_ready_pods_first() -> None:
    ready = NOW - timedelta(minutes=5)
    pods = [
        make_pod("pending", node="n3", phase="Pending"),
        make_pod("ready", node="n1", ready_at=ready),
        make_pod("unscheduled", phase="Pending"),
        make_pod("not-ready", node="n2"),
    ]
    assert names(plan_replicas(pods, 3).delete) == ["unscheduled"]
    assert names(plan_replicas(pods, 1).delete) == ["unscheduled", "pending", "not-ready"]


@pytest.mark.parametrize(("spec_replicas", "desired"), [(None, 1), (0, 0), (4, 4)])
def test_desired_replicas_default_to_one(spec_replicas: int | None, desired: int) -> None:
    assert desired_replicas(make_rs(replicas=spec_replicas)) == desired


@pytest.mark.parametrize(
    ("kind", "selector", "labels", "matches"),
    [
        (REPLICA_SET, {"matchLabels": {"app": "web"}}, {"app": "web", "x": "y"}, True),
        (REPLICA_SET, {"matchLabels": {"app": "web"}}, {"app": "api"}, False),
        (REPLICA_SET, {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "web"]}]}, {"app": "web"},
         True),
        (REPLICA_SET, {}, {"app": "web"}, False),
        (REPLICA_SET, None, {"app": "web"}, False),
        (REPLICATION_CONTROLLER, {"app": "web"}, {"app": "web", "x": "y"}, True),
        (REPLICATION_CONTROLLER, {"app": "web"}, {"x": "y"}, False),
        (REPLICATION_CONTROLLER, {}, {"app": "web"}, False),
    ],
)  # fmt: skip
def test_selector_reads_each_kinds_shape_and_empty_selects_nothing(
    kind: Any, selector: Any, labels: dict[str, str], matches: bool
) -> None:
    owner = {"spec": {"selector": selector}}
    assert kind.selector(owner).matches(labels) is matches


def test_invalid_selector_raises_and_matches_no_orphan() -> None:
    bad = make_rs("bad", selector={"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]})
    with pytest.raises(SelectorError):
        REPLICA_SET.selector(bad)
    good = make_rs("web")
    assert names(owners_selecting(make_pod("p"), [bad, good, make_rs("api")], REPLICA_SET)) == ["web"]


def test_pods_are_indexed_by_controller_uid_and_orphans_by_namespace() -> None:
    assert pod_owner_index(make_pod("a", owner="web")) == ["uid-web"]
    assert pod_owner_index(make_pod("b")) == ["orphan:ns"]


# -- status -----------------------------------------------------------------------------------------


def test_status_counts_replicas_fully_labeled_ready_and_available() -> None:
    rs = make_rs(minReadySeconds=10, generation=4)
    pods = [
        make_pod("available", ready_at=NOW - timedelta(seconds=30)),
        make_pod("ready-too-recently", ready_at=NOW - timedelta(seconds=3)),
        make_pod("not-ready"),
        make_pod("partly-labeled", labels={"app": "web"}, ready_at=NOW - timedelta(seconds=30)),
    ]
    status = calculate_status(rs, pods, now=NOW, failure=None)
    assert status == {
        "replicas": 4,
        "fullyLabeledReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 2,
        "observedGeneration": 4,
    }


def test_status_leaves_out_zero_counts_but_always_says_replicas_and_keeps_unknown_fields() -> None:
    rs = make_rs()
    rs["status"] = {"replicas": 2, "readyReplicas": 2, "somethingNew": "kept"}
    assert calculate_status(rs, [], now=NOW, failure=None) == {
        "replicas": 0,
        "observedGeneration": 1,
        "somethingNew": "kept",
    }


def test_without_min_ready_seconds_ready_pods_are_available_at_once() -> None:
    status = calculate_status(make_rs(), [make_pod("p", ready_at=NOW)], now=NOW, failure=None)
    assert status["readyReplicas"] == status["availableReplicas"] == 1


def test_failure_adds_replica_failure_once_and_a_clean_sync_removes_it() -> None:
    rs = make_rs()
    first = ReplicaFailure("FailedCreate", 'pods "web-" is forbidden: exceeded quota')
    status = calculate_status(rs, [], now=NOW, failure=first)
    assert status["conditions"] == [
        {
            "type": "ReplicaFailure",
            "status": "True",
            "lastTransitionTime": rfc3339(NOW),
            "reason": "FailedCreate",
            "message": 'pods "web-" is forbidden: exceeded quota',
        }
    ]
    rs["status"] = status
    later = calculate_status(rs, [], now=NOW + timedelta(minutes=1), failure=ReplicaFailure("FailedCreate", "other"))
    assert later["conditions"] == status["conditions"]  # the first failure's condition stays as it was
    rs["status"] = later
    assert "conditions" not in calculate_status(rs, [], now=NOW, failure=None)


def test_other_conditions_survive_the_replica_failure_bookkeeping() -> None:
    rs = make_rs()
    custom = {"type": "Custom", "status": "True"}
    rs["status"] = {"replicas": 0, "conditions": [custom]}
    failed = calculate_status(rs, [], now=NOW, failure=ReplicaFailure("FailedDelete", "boom"))
    assert [c["type"] for c in failed["conditions"]] == ["Custom", "ReplicaFailure"]
    rs["status"] = failed
    assert calculate_status(rs, [], now=NOW, failure=None)["conditions"] == [custom]


@pytest.mark.parametrize(
    ("stored", "computed", "changed"),
    [
        ({"replicas": 1, "observedGeneration": 1}, {"replicas": 1, "observedGeneration": 1}, False),
        ({"replicas": 1, "readyReplicas": 0, "observedGeneration": 1}, {"replicas": 1, "observedGeneration": 1}, False),
        ({}, {"replicas": 0}, False),
        ({"replicas": 1, "observedGeneration": 1}, {"replicas": 1, "observedGeneration": 2}, True),
        ({"replicas": 1}, {"replicas": 1, "readyReplicas": 1}, True),
        ({"replicas": 0, "conditions": [{"type": "ReplicaFailure"}]}, {"replicas": 0}, True),
    ],
)
def test_status_is_written_only_when_it_changed(
    stored: dict[str, Any], computed: dict[str, Any], changed: bool
) -> None:
    assert status_changed({"status": stored}, computed) is changed


def test_next_availability_check_is_when_the_first_ready_pod_becomes_available() -> None:
    pods = [
        make_pod("soon", ready_at=NOW - timedelta(seconds=8)),
        make_pod("later", ready_at=NOW - timedelta(seconds=2)),
        make_pod("available", ready_at=NOW - timedelta(seconds=60)),
        make_pod("not-ready"),
    ]
    assert next_availability_check(pods, 10, NOW) == 2
    assert next_availability_check(pods, 0, NOW) is None
    assert next_availability_check([make_pod("available", ready_at=NOW - timedelta(seconds=60))], 10, NOW) is None


# -- the controller against a fake API --------------------------------------------------------------


class LaggingClient(FakeClient):
    """A FakeClient whose pod watches hold their events while `pod_events` is cleared: the
    controller's pod cache lags behind its own writes."""

    def __init__(self) -> None:
        super().__init__()
        self.pod_events = asyncio.Event()
        self.pod_events.set()

    async def watch(self, resource: Any, *args: Any, **kwargs: Any) -> AsyncIterator[WatchEvent]:
        async for event in super().watch(resource, *args, **kwargs):
            if resource.plural == "pods":
                await self.pod_events.wait()
            yield event


class DroppingClient(FakeClient):
    """A FakeClient whose pod watches lose the next `drop_pod_adds` ADDED events (a lost watch event
    the informer never learns about)."""

    def __init__(self) -> None:
        super().__init__()
        self.drop_pod_adds = 0
        self.dropped: list[str] = []

    async def watch(self, resource: Any, *args: Any, **kwargs: Any) -> AsyncIterator[WatchEvent]:
        async for event in super().watch(resource, *args, **kwargs):
            if resource.plural == "pods" and event.type == "ADDED" and self.drop_pod_adds:
                self.drop_pod_adds -= 1
                self.dropped.append(event.object["metadata"]["name"])
                continue
            yield event


@contextlib.asynccontextmanager
async def running(
    client: FakeClient, clock: FakeClock, controller_class: type[ReplicaController] = ReplicaSetController
) -> AsyncIterator[ReplicaController]:
    """The controller with its informers and event recorder, until the block ends."""
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, controller_class.name, clock=clock)
    controller = controller_class(ControllerContext(client, factory, recorder, clock))
    tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
    try:
        await asyncio.wait_for(factory.wait_for_sync(), 5)
        yield controller
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def eventually(check: Callable[[], T], *, timeout: float = 5.0) -> T:
    """Yield to the loop until `check()` is truthy (real time, at most `timeout`)."""
    async with asyncio.timeout(timeout):
        while True:
            if result := check():
                return result
            await asyncio.sleep(0.001)


async def idle(controller: ReplicaController) -> None:
    """Until informer events have been handled and no key is queued or being reconciled."""
    queue = controller.queue
    quiet = 0
    async with asyncio.timeout(5):
        while quiet < 5:
            await asyncio.sleep(0.001)
            quiet = quiet + 1 if not len(queue) and not queue.processing() else 0


def pods_of(client: FakeClient, *, active: bool = True) -> list[dict[str, Any]]:
    return [
        p
        for p in client.objects(PODS)
        if not active
        or (
            p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        )
    ]


def stored(client: FakeClient, name: str = "web", resource: Any = RS) -> dict[str, Any]:
    return next(o for o in client.objects(resource) if o["metadata"]["name"] == name)


def status_of(client: FakeClient, name: str = "web", resource: Any = RS) -> dict[str, Any]:
    return dict(stored(client, name, resource).get("status") or {})


def events(client: FakeClient) -> list[tuple[str, str, str]]:
    return [(e["type"], e["reason"], e["message"]) for e in client.objects(EVENTS)]


async def create_rs(client: FakeClient, name: str = "web", **spec: Any) -> dict[str, Any]:
    rs = make_rs(name, **spec)
    for key in ("uid", "generation"):
        del rs["metadata"][key]
    return await client.create(RS, rs, NS)


async def scale(client: FakeClient, replicas: int, name: str = "web", resource: Any = RS) -> None:
    await client.patch(resource, name, {"spec": {"replicas": replicas}}, NS)


async def kubelet_run(
    client: FakeClient, clock: FakeClock, pod: dict[str, Any], *, node: str = "n1", ready: bool = True
) -> None:
    """Bind the pod and report it Running (and Ready since now), as the scheduler and a node would."""
    name = pod["metadata"]["name"]
    await client.patch(PODS, name, {"spec": {"nodeName": node}}, NS)
    condition = {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": rfc3339(clock.utcnow())}
    await client.patch(
        PODS, name, {"status": {"phase": "Running", "conditions": [condition]}}, NS, subresource="status"
    )


async def test_scale_up_creates_pods_from_the_template_owned_by_the_replicaset() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        rs = await create_rs(client, replicas=3)
        await eventually(lambda: len(pods_of(client)) == 3)
        await idle(controller)
        pods = pods_of(client)
        for pod in pods:
            meta = pod["metadata"]
            assert meta["name"].startswith("web-") and meta["generateName"] == "web-"
            assert meta["labels"] == {"app": "web", "tier": "front"}
            assert meta["ownerReferences"] == [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web",
                    "uid": rs["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
            assert pod["spec"] == {"containers": [{"name": "c", "image": "busybox"}]}
        await scale(client, 5)
        await eventually(lambda: len(pods_of(client)) == 5)
        await idle(controller)
        assert len(pods_of(client)) == 5
        assert status_of(client) == {"replicas": 5, "fullyLabeledReplicas": 5, "observedGeneration": 2}
        created = [e for e in events(client) if e[1] == "SuccessfulCreate"]
        assert len(created) == 5 and all(e[2].startswith("Created pod: web-") for e in created)


async def test_deleted_and_failed_pods_are_replaced_and_failed_ones_left_for_pod_gc() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await create_rs(client, replicas=2)
        first = await eventually(lambda: len(pods_of(client)) == 2 and pods_of(client))
        await client.delete(PODS, first[0]["metadata"]["name"], NS)
        await eventually(
            lambda: len(pods_of(client)) == 2 and first[0]["metadata"]["name"] not in names(pods_of(client))
        )
        failed = first[1]["metadata"]["name"]
        await client.patch(PODS, failed, {"status": {"phase": "Failed"}}, NS, subresource="status")
        await eventually(lambda: len(pods_of(client)) == 2 and failed not in names(pods_of(client)))
        await idle(controller)
        assert failed in names(pods_of(client, active=False))  # not deleted: finished pods are the pod GC's
        assert len(pods_of(client)) == 2 and status_of(client)["replicas"] == 2


async def test_scale_down_deletes_unscheduled_and_not_ready_pods_first() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await create_rs(client, replicas=4)
        pods = await eventually(lambda: len(pods_of(client)) == 4 and pods_of(client))
        await kubelet_run(client, clock, pods[0], node="n1")
        await kubelet_run(client, clock, pods[1], node="n2")
        await kubelet_run(client, clock, pods[2], node="n3", ready=False)  # pods[3] stays unscheduled
        await eventually(lambda: status_of(client).get("readyReplicas") == 2)
        await scale(client, 2)
        await eventually(lambda: len(pods_of(client)) == 2)
        await idle(controller)
        kept = {p["metadata"]["name"] for p in pods_of(client)}
        assert kept == {pods[0]["metadata"]["name"], pods[1]["metadata"]["name"]}
        gone = [p for p in client.objects(PODS) if p["metadata"]["name"] not in kept]
        # the unscheduled pod went at once; the bound one is in its grace period on the node
        assert names(gone) == [pods[2]["metadata"]["name"]] and gone[0]["metadata"]["deletionTimestamp"]
        assert status_of(client)["replicas"] == 2 and status_of(client)["readyReplicas"] == 2
        assert sum(1 for e in events(client) if e[1] == "SuccessfulDelete") == 2


async def test_matching_orphans_are_adopted_and_pods_that_stop_matching_are_released() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        orphan = make_pod("loose")
        del orphan["metadata"]["uid"]
        await client.create(PODS, orphan, NS)
        other = make_pod("other", labels={"app": "api"})
        del other["metadata"]["uid"]
        await client.create(PODS, other, NS)
        rs = await create_rs(client, replicas=2)
        await eventually(lambda: len([p for p in pods_of(client) if p["metadata"].get("ownerReferences")]) == 2)
        await idle(controller)
        owned = [p for p in pods_of(client) if p["metadata"].get("ownerReferences")]
        assert "loose" in names(owned) and "other" not in names(owned)
        loose = stored_pod(client, "loose")
        assert loose["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert sum(1 for e in events(client) if e[1] == "SuccessfulCreate") == 1  # one new pod next to the adopted

        await client.patch(PODS, "loose", {"metadata": {"labels": {"app": "elsewhere"}}}, NS)
        await eventually(lambda: not stored_pod(client, "loose")["metadata"].get("ownerReferences"))
        await eventually(lambda: len([p for p in pods_of(client) if p["metadata"].get("ownerReferences")]) == 2)
        await idle(controller)
        assert len(pods_of(client)) == 4  # loose, other and two of the ReplicaSet's


def stored_pod(client: FakeClient, name: str) -> dict[str, Any]:
    return next(p for p in client.objects(PODS) if p["metadata"]["name"] == name)


async def test_expectations_prevent_double_creation_while_the_pod_cache_lags() -> None:
    client, clock = LaggingClient(), FakeClock()
    async with running(client, clock) as controller:
        client.pod_events.clear()
        await create_rs(client, replicas=3)
        await eventually(lambda: len(client.objects(PODS)) == 3)
        await eventually(lambda: status_of(client).get("observedGeneration") == 1)
        for _ in range(3):  # the owner is synced again while none of its pods is in the cache yet
            controller.enqueue_key(f"{NS}/web")
            await idle(controller)
        assert controller.pods.list() == [] and len(client.objects(PODS)) == 3
        client.pod_events.set()
        await eventually(lambda: len(controller.pods.list()) == 3)
        await idle(controller)
        assert len(client.objects(PODS)) == 3 and status_of(client)["replicas"] == 3


async def test_lost_pod_event_stalls_the_owner_only_until_its_expectations_expire() -> None:
    client, clock = DroppingClient(), FakeClock()
    async with running(client, clock) as controller:
        client.drop_pod_adds = 1
        await create_rs(client, replicas=3)
        await eventually(lambda: len(controller.pods.list()) == 2 and client.dropped)
        await client.delete(PODS, client.dropped[0], NS)  # gone before the informer ever saw it
        await idle(controller)
        assert len(client.objects(PODS)) == 2  # still waiting to observe the third creation
        await clock.step(EXPECTATIONS_TIMEOUT + 1)
        await eventually(lambda: len(client.objects(PODS)) == 3)


async def test_status_write_conflict_is_retried_once_onto_a_fresh_read() -> None:
    client, clock = FakeClient(), FakeClock()
    client.inject_error("update", errors.conflict("replicasets", "apps", "web", "stale"), resource=RS, times=1)
    async with running(client, clock) as controller:
        await create_rs(client, replicas=1)
        await eventually(lambda: status_of(client).get("replicas") == 1)
        await idle(controller)
    writes = [a for a in client.actions if a.verb == "update" and a.resource == "replicasets"]
    assert [a.subresource for a in writes][:2] == ["status", "status"]
    assert any(a.verb == "get" and a.resource == "replicasets" for a in client.actions)


async def test_status_counts_available_pods_once_ready_for_min_ready_seconds() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await create_rs(client, replicas=2, minReadySeconds=30)
        pods = await eventually(lambda: len(pods_of(client)) == 2 and pods_of(client))
        await kubelet_run(client, clock, pods[0])
        await clock.step(10)
        await kubelet_run(client, clock, pods[1])
        await eventually(lambda: status_of(client).get("readyReplicas") == 2)
        await idle(controller)
        assert "availableReplicas" not in status_of(client)
        await clock.step(20)  # the first pod has been ready for 30 s
        await eventually(lambda: status_of(client).get("availableReplicas") == 1)
        await idle(controller)
        await clock.step(10)
        await eventually(lambda: status_of(client).get("availableReplicas") == 2)
        assert status_of(client) == {
            "replicas": 2,
            "fullyLabeledReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "observedGeneration": 1,
        }


async def test_refused_creation_sets_replica_failure_and_a_later_success_clears_it() -> None:
    client, clock = FakeClient(), FakeClock()
    refused = errors.forbidden("pods", "", "web-", "exceeded quota: compute-resources")
    # refused twice: the sync that fails, and the one its status write wakes (as upstream's)
    client.inject_error("create", refused, resource=PODS, times=2)
    async with running(client, clock) as controller:
        await create_rs(client, replicas=3)
        await eventually(lambda: status_of(client).get("conditions"))
        await idle(controller)
        failed = status_of(client)["conditions"]
        assert failed == [
            {
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": rfc3339(clock.utcnow()),
                "reason": "FailedCreate",
                "message": str(refused),
            }
        ]
        creates = [a for a in client.actions if a.verb == "create" and a.resource == "pods"]
        assert len(creates) == 2  # slow start: each sync stops at its first refusal
        assert pods_of(client) == []
        assert ("Warning", "FailedCreate", f"Error creating: {refused.message}") in events(client)
        await clock.step(1)  # the retry back-off
        await eventually(lambda: len(pods_of(client)) == 3)
        await eventually(lambda: "conditions" not in status_of(client))


async def test_refused_deletion_sets_replica_failure_with_failed_delete() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await create_rs(client, replicas=2)
        await eventually(lambda: len(pods_of(client)) == 2)
        await idle(controller)
        client.inject_error("delete", errors.internal("etcd is down"), resource=PODS, times=2)
        await scale(client, 1)
        await eventually(lambda: status_of(client).get("conditions"))
        await idle(controller)
        conditions = status_of(client)["conditions"]
        assert (conditions[0]["reason"], conditions[0]["message"]) == (
            "FailedDelete",
            "Internal error occurred: etcd is down",
        )
        assert len(pods_of(client)) == 2
        await clock.step(1)
        await eventually(lambda: len(pods_of(client)) == 1 and "conditions" not in status_of(client))


async def test_owner_being_deleted_neither_replaces_nor_adopts_but_keeps_its_status() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await create_rs(client, replicas=2)
        pods = await eventually(lambda: len(pods_of(client)) == 2 and pods_of(client))
        await idle(controller)
        await client.patch(RS, "web", {"metadata": {"finalizers": ["example.com/hold"]}}, NS)
        await client.delete(RS, "web", NS)
        await client.delete(PODS, pods[0]["metadata"]["name"], NS)
        orphan = make_pod("loose")
        del orphan["metadata"]["uid"]
        await client.create(PODS, orphan, NS)
        await eventually(lambda: status_of(client)["replicas"] == 1)
        await idle(controller)
        assert len(pods_of(client)) == 2  # the survivor and the orphan; nothing new
        assert not stored_pod(client, "loose")["metadata"].get("ownerReferences")


async def test_reconcile_leaves_the_informer_caches_unchanged() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await create_rs(client, replicas=3, minReadySeconds=5)
        pods = await eventually(lambda: len(pods_of(client)) == 3 and pods_of(client))
        await kubelet_run(client, clock, pods[0])
        await client.patch(PODS, pods[1]["metadata"]["name"], {"metadata": {"labels": {"app": "gone"}}}, NS)
        await idle(controller)
        before = (deep_copy({"p": controller.pods.list()}), deep_copy({"o": controller.owners.list()}))
        await controller.reconcile(f"{NS}/web")
        assert (controller.pods.list(), controller.owners.list()) == (before[0]["p"], before[1]["o"])


async def test_replication_controller_keeps_its_replicas_with_a_map_selector() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock, ReplicationControllerController) as controller:
        orphan = make_pod("loose", labels={"app": "legacy"})
        del orphan["metadata"]["uid"]
        await client.create(PODS, orphan, NS)
        rc = {
            "metadata": {"name": "legacy"},
            "spec": {
                "replicas": 3,
                "selector": {"app": "legacy"},
                "template": {
                    "metadata": {"labels": {"app": "legacy"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        }
        created = await client.create(RC, rc, NS)
        await eventually(lambda: len(pods_of(client)) == 3)
        await idle(controller)
        for pod in pods_of(client):
            ref = pod["metadata"]["ownerReferences"][0]
            assert (ref["apiVersion"], ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
                "v1",
                "ReplicationController",
                "legacy",
                created["metadata"]["uid"],
                True,
            )
        assert "loose" in names(pods_of(client))
        await kubelet_run(client, clock, stored_pod(client, "loose"))
        await eventually(lambda: status_of(client, "legacy", RC).get("readyReplicas") == 1)
        await scale(client, 1, "legacy", RC)
        await eventually(lambda: len(pods_of(client)) == 1)
        await idle(controller)
        assert names(pods_of(client)) == ["loose"]  # the ready one stays
        assert status_of(client, "legacy", RC) == {
            "replicas": 1,
            "fullyLabeledReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "observedGeneration": 2,
        }
        assert {e[1] for e in events(client)} == {"SuccessfulCreate", "SuccessfulDelete"}
