"""The pieces every workload controller shares: pod facts, deletion order, expectations, ownership."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.interface import builtin
from kubelite.controllers import podutil
from kubelite.controllers.expectations import Expectations
from kubelite.controllers.ownership import PodControl, claim, controller_ref, pod_from_template, slow_start_batch
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import rfc3339
from kubelite.machinery.selectors import label_selector_from_dict
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

PODS = builtin("", "pods")
REPLICASETS = builtin("apps", "replicasets")
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def pod(
    name: str,
    *,
    node: str = "",
    phase: str = "Running",
    ready_at: datetime | None = None,
    restarts: int = 0,
    created: datetime = NOW,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    conditions = []
    if ready_at is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(ready_at)})
    return {
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": rfc3339(created), "labels": labels or {}},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions, "containerStatuses": [{"restartCount": restarts}]},
    }


# -- podutil ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("min_ready", "ready_for", "available"),
    [(0, 0, True), (10, 5, False), (10, 10, True), (10, None, False)],
)
def test_available_needs_ready_for_min_ready_seconds(min_ready: int, ready_for: int | None, available: bool) -> None:
    ready_at = None if ready_for is None else NOW - timedelta(seconds=ready_for)
    assert podutil.is_available(pod("p", ready_at=ready_at), min_ready, NOW) is available


def test_seconds_until_available_tells_when_to_look_again() -> None:
    assert podutil.seconds_until_available(pod("p", ready_at=NOW - timedelta(seconds=3)), 10, NOW) == 7
    assert podutil.seconds_until_available(pod("p", ready_at=NOW - timedelta(seconds=30)), 10, NOW) is None
    assert podutil.seconds_until_available(pod("p"), 10, NOW) is None


def test_terminal_and_terminating_pods_are_not_active() -> None:
    assert podutil.is_active(pod("a"))
    assert not podutil.is_active(pod("b", phase="Succeeded"))
    assert not podutil.is_active(pod("c", phase="Failed"))
    deleting = pod("d")
    deleting["metadata"]["deletionTimestamp"] = rfc3339(NOW)
    assert not podutil.is_active(deleting)


def test_deletion_order_prefers_unassigned_pending_not_ready_crowded_recent_restarting_new() -> None:
    ready_old = NOW - timedelta(minutes=10)
    ready_new = NOW - timedelta(minutes=1)
    pods = [
        pod("ready-long-ago", node="n1", ready_at=ready_old),
        pod("unassigned", phase="Pending"),
        pod("pending-on-node", node="n2", phase="Pending"),
        pod("running-not-ready", node="n3"),
        pod("ready-recently", node="n4", ready_at=ready_new),
        pod("crowded-a", node="n5", ready_at=ready_old, created=NOW - timedelta(hours=1)),
        pod("crowded-b", node="n5", ready_at=ready_old, created=NOW - timedelta(hours=2), restarts=3),
    ]
    order = [p["metadata"]["name"] for p in podutil.deletion_order(pods)]
    assert order[:3] == ["unassigned", "pending-on-node", "running-not-ready"]
    # two pods share n5: they go before lone ready pods; among them more restarts first
    assert order[3:5] == ["crowded-b", "crowded-a"]
    assert order[5:] == ["ready-recently", "ready-long-ago"]


def test_deletion_order_honours_pod_deletion_cost_among_ready_pods() -> None:
    cheap, dear, plain = (pod(n, node=n, ready_at=NOW) for n in ("cheap", "dear", "plain"))
    cheap["metadata"]["annotations"] = {podutil.POD_DELETION_COST: "-5"}
    dear["metadata"]["annotations"] = {podutil.POD_DELETION_COST: "100"}
    assert [p["metadata"]["name"] for p in podutil.deletion_order([dear, plain, cheap])] == ["cheap", "plain", "dear"]
    plain["metadata"]["annotations"] = {podutil.POD_DELETION_COST: "not a number"}
    assert podutil.deletion_cost(plain) == 0


def test_deletion_order_takes_newer_pods_first_when_otherwise_equal() -> None:
    older = pod("older", node="a", ready_at=NOW, created=NOW - timedelta(hours=2))
    newer = pod("newer", node="b", ready_at=NOW, created=NOW - timedelta(hours=1))
    assert [p["metadata"]["name"] for p in podutil.deletion_order([older, newer])] == ["newer", "older"]


# -- expectations ---------------------------------------------------------------------------------


def test_expectations_hold_until_observed_or_stale() -> None:
    clock = FakeClock()
    exp = Expectations(clock, timeout=300)
    assert exp.satisfied("ns/rs")
    exp.expect("ns/rs", adds=2, deletes={"ns/p1"})
    exp.creation_observed("ns/rs")
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs")
    exp.deletion_observed("ns/rs", "ns/p1")
    assert exp.satisfied("ns/rs")

    exp.expect("ns/rs", adds=3)
    exp.creation_failed("ns/rs", 2)
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")

    exp.expect("ns/rs", adds=1)
    clock._now += 301  # a lost watch event must not wedge the controller for ever
    assert exp.satisfied("ns/rs")
    exp.forget("ns/rs")
    assert exp.satisfied("ns/rs")


# -- ownership ------------------------------------------------------------------------------------


def owner(uid: str = "rs-uid") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": uid},
        "spec": {"selector": {"matchLabels": {"app": "web"}}},
    }


def test_pod_from_template_copies_template_and_sets_controller_reference() -> None:
    template = {
        "metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}, "finalizers": ["x/y"]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    new = pod_from_template(template, owner(), api_version="apps/v1", kind="ReplicaSet")
    assert new["metadata"]["generateName"] == "web-"
    assert new["metadata"]["namespace"] == "ns"
    assert new["metadata"]["labels"] == {"app": "web"} and new["metadata"]["annotations"] == {"a": "b"}
    assert new["metadata"]["finalizers"] == ["x/y"]
    assert controller_ref(new) == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web",
        "uid": "rs-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    new["spec"]["containers"][0]["image"] = "changed"
    new["metadata"]["labels"]["app"] = "changed"
    assert template["spec"]["containers"][0]["image"] == "busybox"  # the template is not shared
    assert template["metadata"]["labels"]["app"] == "web"


async def make(client: FakeClient, name: str, labels: dict[str, str], refs: list[dict[str, Any]] | None = None) -> Any:
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if refs:
        meta["ownerReferences"] = refs
    return await client.create(PODS, {"metadata": meta, "spec": {"containers": [{"name": "c"}]}}, "ns")


async def test_claim_adopts_matching_orphans_releases_mismatches_and_skips_foreign() -> None:
    client = FakeClient()
    rs = owner()
    mine = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-uid", "controller": True}
    other = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "other", "controller": True}
    await make(client, "owned", {"app": "web"}, [mine])
    await make(client, "orphan", {"app": "web"})
    await make(client, "stray", {"app": "other"}, [mine])
    await make(client, "foreign", {"app": "web"}, [other])
    await make(client, "unrelated", {"app": "other"})
    candidates = (await client.list(PODS, "ns"))["items"]
    fresh_reads = 0

    async def fresh() -> dict[str, Any]:
        nonlocal fresh_reads
        fresh_reads += 1
        return rs

    owned = await claim(
        client,
        PODS,
        rs,
        label_selector_from_dict(rs["spec"]["selector"]),
        candidates,
        owner_api_version="apps/v1",
        owner_kind="ReplicaSet",
        fresh_owner=fresh,
    )
    assert sorted(p["metadata"]["name"] for p in owned) == ["orphan", "owned"]
    assert fresh_reads == 1
    stored = {p["metadata"]["name"]: p for p in (await client.list(PODS, "ns"))["items"]}
    assert controller_ref(stored["orphan"])["uid"] == "rs-uid"  # type: ignore[index]
    assert not stored["stray"]["metadata"].get("ownerReferences")
    assert controller_ref(stored["foreign"])["uid"] == "other"  # type: ignore[index]
    assert not stored["unrelated"]["metadata"].get("ownerReferences")


async def test_claim_adds_finalizers_with_the_adoption_and_keeps_the_objects_own() -> None:
    client = FakeClient()
    await make(client, "orphan", {"app": "web"})
    await client.patch(PODS, "orphan", {"metadata": {"finalizers": ["their/own"]}}, "ns")
    candidates = (await client.list(PODS, "ns"))["items"]
    rs = owner()

    async def fresh() -> dict[str, Any]:
        return rs

    owned = await claim(
        client,
        PODS,
        rs,
        label_selector_from_dict({"matchLabels": {"app": "web"}}),
        candidates,
        owner_api_version="apps/v1",
        owner_kind="ReplicaSet",
        fresh_owner=fresh,
        finalizers=["batch.kubernetes.io/job-tracking"],
    )
    assert sorted(owned[0]["metadata"]["finalizers"]) == ["batch.kubernetes.io/job-tracking", "their/own"]
    adoptions = [a for a in client.actions if a.verb == "patch"][-1:]
    assert adoptions and "ownerReferences" in adoptions[0].body["metadata"]  # one patch does both


async def test_claim_never_adopts_into_a_deleted_or_replaced_owner() -> None:
    client = FakeClient()
    await make(client, "orphan", {"app": "web"})
    candidates = (await client.list(PODS, "ns"))["items"]

    async def replaced() -> dict[str, Any]:
        return owner(uid="new-uid")

    owned = await claim(
        client,
        PODS,
        owner(),
        label_selector_from_dict({"matchLabels": {"app": "web"}}),
        candidates,
        owner_api_version="apps/v1",
        owner_kind="ReplicaSet",
        fresh_owner=replaced,
    )
    assert owned == []
    assert not (await client.get(PODS, "orphan", "ns"))["metadata"].get("ownerReferences")


async def test_slow_start_batch_grows_batches_and_stops_after_a_failing_batch() -> None:
    calls = 0

    async def ok() -> None:
        nonlocal calls
        calls += 1

    assert await slow_start_batch(10, 1, ok) == 10 and calls == 10

    calls = 0

    async def fail_from_fourth() -> None:
        nonlocal calls
        calls += 1
        if calls >= 4:
            raise ApiError(403, "Forbidden", "quota")

    # batches 1, 2, then 4 (all of which run; the ones from the 4th call fail) → stop
    assert await slow_start_batch(20, 1, fail_from_fourth) == 3
    assert calls == 7


async def test_pod_control_records_upstream_events() -> None:
    client = FakeClient()
    recorder = EventRecorder(client, "replicaset-controller")
    control = PodControl(client, recorder)
    rs = owner()
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}
    created = await control.create(pod_from_template(template, rs, api_version="apps/v1", kind="ReplicaSet"), rs)
    await control.delete(created, rs)
    await control.delete(created, rs)  # already gone: no error, no second event
    client.inject_error("create", ApiError(403, "Forbidden", 'pods "x" is forbidden: exceeded quota'), resource=PODS)
    with pytest.raises(ApiError):
        await control.create(pod_from_template(template, rs, api_version="apps/v1", kind="ReplicaSet"), rs)
    writer = asyncio.create_task(recorder.run())
    try:
        await asyncio.wait_for(recorder.flush(), 5)
    finally:
        writer.cancel()
    events = client.objects(builtin("", "events"))
    seen = sorted((e["reason"], e["message"]) for e in events)
    assert seen == [
        ("FailedCreate", 'Error creating: pods "x" is forbidden: exceeded quota'),
        ("SuccessfulCreate", f"Created pod: {created['metadata']['name']}"),
        ("SuccessfulDelete", f"Deleted pod: {created['metadata']['name']}"),
    ]
