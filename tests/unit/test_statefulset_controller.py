"""The StatefulSet controller against a FakeClient and a FakeClock: ordered scale up and down,
claims, rolling updates with a partition, OnDelete, the retention policy and revisions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.history import hash_revision_data, template_patch
from kubelite.controllers.statefulset import StatefulSetController
from kubelite.controllers.statefulset_utils import POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL
from kubelite.machinery.meta import rfc3339
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

NS = "ns"
SETS = builtin("apps", "statefulsets")
REVISIONS = builtin("apps", "controllerrevisions")
PODS = builtin("", "pods")
CLAIMS = builtin("", "persistentvolumeclaims")
EVENTS = builtin("", "events")


def make_sts(
    *,
    replicas: int = 3,
    policy: str = "OrderedReady",
    strategy: dict[str, Any] | None = None,
    claims: bool = False,
    retention: tuple[str, str] = ("Retain", "Retain"),
    image: str = "nginx:1",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "serviceName": "nginx",
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}},
        "podManagementPolicy": policy,
        "updateStrategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": retention[0], "whenScaled": retention[1]},
        "revisionHistoryLimit": 10,
    }
    if claims:
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": NS}, "spec": spec}


@contextlib.asynccontextmanager
async def running(client: FakeClient, clock: FakeClock) -> AsyncIterator[StatefulSetController]:
    """The controller until the block ends; then checks it changed nothing in its caches."""
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "statefulset-controller", clock=clock)
    controller = StatefulSetController(ControllerContext(client, factory, recorder, clock))
    tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
    try:
        await asyncio.wait_for(factory.wait_for_sync(), 5)
        yield controller
        await idle(controller)
        await recorder.flush()
        caches = ((controller.sets, SETS), (controller.pods, PODS), (controller.revisions, REVISIONS))
        for informer, resource in (*caches, (controller.claims, CLAIMS)):
            stored = {o["metadata"]["name"]: o for o in client.objects(resource)}
            for cached in informer.list():
                current = stored.get(cached["metadata"]["name"])
                if (
                    current is not None
                    and current["metadata"]["resourceVersion"] == cached["metadata"]["resourceVersion"]
                ):
                    assert cached == current, f"{resource.plural} {cached['metadata']['name']} changed in the cache"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def idle(controller: StatefulSetController) -> None:
    quiet = 0
    async with asyncio.timeout(5):
        while quiet < 3:
            await asyncio.sleep(0.001)
            quiet = quiet + 1 if not len(controller.queue) and not controller.queue.processing() else 0


def pods(client: FakeClient) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in client.objects(PODS) if not p["metadata"].get("deletionTimestamp")}


def stored_sts(client: FakeClient) -> dict[str, Any]:
    return client.objects(SETS)[0]


def messages(client: FakeClient, reason: str | None = None) -> list[str]:
    return [e["message"] for e in client.objects(EVENTS) if reason is None or e["reason"] == reason]


async def make_ready(client: FakeClient, clock: FakeClock, name: str) -> None:
    condition = {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(clock.utcnow())}
    body = {"status": {"phase": "Running", "conditions": [condition]}}
    await client.patch(PODS, name, body, NS, subresource="status")


async def ready_all(client: FakeClient, clock: FakeClock, controller: StatefulSetController, count: int) -> None:
    """Make pods ready one at a time as the controller creates them, until `count` exist and are ready."""
    for _ in range(20):
        await idle(controller)
        unready = [
            name for name, pod in sorted(pods(client).items()) if (pod.get("status") or {}).get("phase") != "Running"
        ]
        if not unready and len(pods(client)) == count:
            return
        for name in unready:
            await make_ready(client, clock, name)
    raise AssertionError(f"never reached {count} ready pods: {sorted(pods(client))}")


async def set_image(client: FakeClient, image: str) -> None:
    body = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}
    await client.patch(SETS, "web", body, NS)


async def test_scale_up_creates_pods_in_order_waiting_for_each_to_be_ready() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        sts = await client.create(SETS, make_sts(), NS)
        await idle(controller)
        assert sorted(pods(client)) == ["web-0"]  # web-1 waits for web-0
        await make_ready(client, clock, "web-0")
        await idle(controller)
        assert sorted(pods(client)) == ["web-0", "web-1"]
        await make_ready(client, clock, "web-1")
        await idle(controller)
        await make_ready(client, clock, "web-2")
        await idle(controller)
    web1 = pods(client)["web-1"]
    [revision] = client.objects(REVISIONS)
    hash_value = hash_revision_data(template_patch(sts["spec"]["template"]), 0)
    assert revision["metadata"]["name"] == f"web-{hash_value}" and revision["revision"] == 1
    assert web1["metadata"]["labels"] == {
        "app": "web",
        POD_NAME_LABEL: "web-1",
        POD_INDEX_LABEL: "1",
        REVISION_LABEL: f"web-{hash_value}",
    }
    assert (web1["spec"]["hostname"], web1["spec"]["subdomain"]) == ("web-1", "nginx")
    assert web1["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
    status = stored_sts(client)["status"]
    assert status == {
        "observedGeneration": 1,
        "replicas": 3,
        "readyReplicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 3,
        "currentRevision": f"web-{hash_value}",
        "updateRevision": f"web-{hash_value}",
        "collisionCount": 0,
        "availableReplicas": 3,
    }
    assert messages(client, "SuccessfulCreate") == [
        f"create Pod web-{i} in StatefulSet web successful" for i in range(3)
    ]


async def test_scale_down_deletes_in_reverse_order_one_at_a_time() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await client.create(SETS, make_sts(replicas=3, policy="Parallel"), NS)
        await ready_all(client, clock, controller, 3)
        await client.patch(SETS, "web", {"spec": {"replicas": 1, "podManagementPolicy": "OrderedReady"}}, NS)
        await idle(controller)
    assert sorted(pods(client)) == ["web-0"]
    deleted = messages(client, "SuccessfulDelete")
    assert deleted == [
        "delete Pod web-2 in StatefulSet web successful",
        "delete Pod web-1 in StatefulSet web successful",
    ]


async def test_claims_are_created_before_their_pods_and_kept_on_scale_down() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await client.create(SETS, make_sts(replicas=2, claims=True), NS)
        await ready_all(client, clock, controller, 2)
        created = [
            (a.verb, a.resource, a.body["metadata"]["name"])
            for a in client.actions
            if a.verb == "create" and a.resource in ("pods", "persistentvolumeclaims")
        ]
        assert created == [
            ("create", "persistentvolumeclaims", "www-web-0"),
            ("create", "pods", "web-0"),
            ("create", "persistentvolumeclaims", "www-web-1"),
            ("create", "pods", "web-1"),
        ]
        await client.patch(SETS, "web", {"spec": {"replicas": 0}}, NS)
        await idle(controller)
    assert pods(client) == {}
    claims = {c["metadata"]["name"]: c for c in client.objects(CLAIMS)}
    assert sorted(claims) == ["www-web-0", "www-web-1"]
    assert claims["www-web-0"]["metadata"]["labels"] == {"app": "web"}
    assert not claims["www-web-0"]["metadata"].get("ownerReferences")
    assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in messages(client, "SuccessfulCreate")


async def test_retention_policy_delete_gives_claims_owner_references() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        sts = await client.create(SETS, make_sts(replicas=2, claims=True, retention=("Delete", "Delete")), NS)
        await ready_all(client, clock, controller, 2)
        claims = {c["metadata"]["name"]: c for c in client.objects(CLAIMS)}
        for claim in claims.values():
            [ref] = claim["metadata"]["ownerReferences"]
            assert (ref["kind"], ref["uid"], ref["controller"]) == ("StatefulSet", sts["metadata"]["uid"], True)
        web1_uid = pods(client)["web-1"]["metadata"]["uid"]
        await client.patch(SETS, "web", {"spec": {"replicas": 1}}, NS)
        await idle(controller)
    claims = {c["metadata"]["name"]: c for c in client.objects(CLAIMS)}
    [ref] = claims["www-web-1"]["metadata"]["ownerReferences"]  # the garbage collector takes it with the pod
    assert (ref["kind"], ref["name"], ref["uid"]) == ("Pod", "web-1", web1_uid)
    assert claims["www-web-0"]["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"


async def test_rolling_update_with_partition_replaces_only_pods_from_the_partition_up() -> None:
    client, clock = FakeClient(), FakeClock()
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
    async with running(client, clock) as controller:
        await client.create(SETS, make_sts(strategy=strategy), NS)
        await ready_all(client, clock, controller, 3)
        old = pods(client)["web-0"]["metadata"]["labels"][REVISION_LABEL]
        await set_image(client, "nginx:2")
        await idle(controller)
        assert sorted(pods(client)) == ["web-0", "web-1", "web-2"]  # web-2 deleted and re-created
        await ready_all(client, clock, controller, 3)
        await ready_all(client, clock, controller, 3)
    revisions = {p: pod["metadata"]["labels"][REVISION_LABEL] for p, pod in pods(client).items()}
    status = stored_sts(client)["status"]
    assert revisions["web-0"] == old == status["currentRevision"]
    assert revisions["web-1"] == revisions["web-2"] == status["updateRevision"] != old
    assert pods(client)["web-2"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert (status["updatedReplicas"], status["currentReplicas"]) == (2, 1)
    assert messages(client, "SuccessfulDelete") == [
        "delete Pod web-2 in StatefulSet web successful",
        "delete Pod web-1 in StatefulSet web successful",
    ]


async def test_on_delete_replaces_only_pods_the_user_deletes() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await client.create(SETS, make_sts(replicas=2, strategy={"type": "OnDelete"}), NS)
        await ready_all(client, clock, controller, 2)
        await set_image(client, "nginx:2")
        await idle(controller)
        assert messages(client, "SuccessfulDelete") == []
        await client.delete(PODS, "web-0", NS)
        await idle(controller)
    images = {name: pod["spec"]["containers"][0]["image"] for name, pod in pods(client).items()}
    assert images == {"web-0": "nginx:2", "web-1": "nginx:1"}
    status = stored_sts(client)["status"]
    assert status["updatedReplicas"] == 1 and status["currentRevision"] != status["updateRevision"]


async def test_failed_pod_is_recreated_with_an_event() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        await client.create(SETS, make_sts(replicas=1), NS)
        await ready_all(client, clock, controller, 1)
        first_uid = pods(client)["web-0"]["metadata"]["uid"]
        await client.patch(PODS, "web-0", {"status": {"phase": "Failed"}}, NS, subresource="status")
        await idle(controller)
    assert pods(client)["web-0"]["metadata"]["uid"] != first_uid
    assert messages(client, "RecreatingFailedPod") == ["StatefulSet ns/web is recreating failed Pod web-0"]


async def test_rollback_renumbers_the_old_revision_and_history_is_trimmed() -> None:
    client, clock = FakeClient(), FakeClock()
    async with running(client, clock) as controller:
        sts = make_sts(replicas=1)
        sts["spec"]["revisionHistoryLimit"] = 1
        await client.create(SETS, sts, NS)
        await ready_all(client, clock, controller, 1)
        for image in ("nginx:2", "nginx:3", "nginx:1"):
            await set_image(client, image)
            await ready_all(client, clock, controller, 1)
            await ready_all(client, clock, controller, 1)
    revisions = sorted(
        (r["revision"], r["data"]["spec"]["template"]["spec"]["containers"][0]["image"])
        for r in client.objects(REVISIONS)
    )
    assert revisions == [(3, "nginx:3"), (4, "nginx:1")]
    status = stored_sts(client)["status"]
    assert status["currentRevision"] == status["updateRevision"]


async def test_orphan_pods_of_the_set_are_adopted() -> None:
    client, clock = FakeClient(), FakeClock()
    orphan = {"metadata": {"name": "web-0", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}
    other = {"metadata": {"name": "other-0", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}
    await client.create(PODS, orphan, NS)
    await client.create(PODS, other, NS)
    async with running(client, clock) as controller:
        await client.create(SETS, make_sts(replicas=1), NS)
        await idle(controller)
    found = pods(client)
    assert found["web-0"]["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert not found["other-0"]["metadata"].get("ownerReferences")
