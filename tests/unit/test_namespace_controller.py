"""The namespace controller: its decisions table-tested, its shell against FakeClient + FakeClock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.namespace import (
    CONDITION_TYPES,
    NamespaceController,
    ResourceOutcome,
    assess_remaining,
    deletable_resources,
    failure_conditions,
    finalizers_after_release,
    is_namespace_active,
    merge_conditions,
    pod_grace_estimate,
    requeue_seconds,
)
from kubelite.machinery import errors
from kubelite.machinery.meta import deep_copy, rfc3339
from kubelite.machinery.resources import BUILTIN_RESOURCES, Resource
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

NAMESPACES = builtin("", "namespaces")
PODS = builtin("", "pods")
CONFIG_MAPS = builtin("", "configmaps")
SECRETS = builtin("", "secrets")
SERVICES = builtin("", "services")
DEPLOYMENTS = builtin("apps", "deployments")
WAIT = 5.0
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class NamespaceLifecycleClient(FakeClient):
    """FakeClient plus what the API server does for namespaces: DELETE marks a namespace whose
    `spec.finalizers` is not empty Terminating (deletionTimestamp from the test's clock) instead of
    removing it, a status update keeps it, and `namespaces/finalize` replaces `spec.finalizers`,
    deleting the namespace once no finalizer of either kind is left."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    async def delete(self, resource: Resource, name: str, namespace: str | None = None, **options: Any) -> Any:
        if resource != NAMESPACES:
            return await super().delete(resource, name, namespace, **options)
        current = self._current(resource, None, name)
        if current["metadata"].get("deletionTimestamp"):
            self._record("delete", resource, None, name)
            return deep_copy(current)
        if not (current.get("spec") or {}).get("finalizers"):
            return await super().delete(resource, name, namespace, **options)
        self._record("delete", resource, None, name)
        marked = deep_copy(current)
        marked["metadata"]["deletionTimestamp"] = rfc3339(self.clock.utcnow())
        marked["metadata"]["deletionGracePeriodSeconds"] = 0
        marked.setdefault("status", {})["phase"] = "Terminating"
        return deep_copy(self._commit(resource, "MODIFIED", marked, current))

    async def update(
        self, resource: Resource, obj: dict[str, Any], namespace: str | None = None, *, subresource: str | None = None
    ) -> dict[str, Any]:
        if resource != NAMESPACES or subresource not in ("finalize", "status"):
            return await super().update(resource, obj, namespace, subresource=subresource)
        name = obj["metadata"]["name"]
        self._record("update", resource, None, name, subresource, obj)
        current = self._current(resource, None, name)
        wanted = obj["metadata"].get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise errors.conflict("namespaces", "", name, "the object has been modified")
        if subresource == "status":  # FakeClient would delete a namespace being deleted without metadata.finalizers
            updated = deep_copy(current)
            updated["status"] = deep_copy(obj.get("status") or {})
            return deep_copy(self._commit(resource, "MODIFIED", updated, current))
        finalized = deep_copy(current)
        finalizers = (obj.get("spec") or {}).get("finalizers") or []
        finalized.setdefault("spec", {})["finalizers"] = finalizers
        if not finalizers:
            finalized["spec"].pop("finalizers")
        meta = finalized["metadata"]
        kind = (
            "DELETED" if meta.get("deletionTimestamp") and not finalizers and not meta.get("finalizers") else "MODIFIED"
        )
        return deep_copy(self._commit(resource, kind, finalized, current))


def namespace(name: str, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, **extra}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def pod(name: str, *, node: str = "", grace: int | None = None, phase: str = "Pending") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": phase}}


def condition(ns: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in (ns.get("status") or {}).get("conditions") or () if c["type"] == kind), None)


async def eventually(check: Callable[[], Any], *, timeout: float = WAIT) -> Any:
    """Poll `check` (sync or async) until it returns something truthy, within `timeout` real seconds."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.002)


async def gone(client: FakeClient, resource: Resource, name: str, namespace: str | None = None) -> bool:
    try:
        await client.get(resource, name, namespace)
    except errors.ApiError as exc:
        return exc.code == 404
    return False


async def current(client: FakeClient, name: str) -> dict[str, Any]:
    return await client.get(NAMESPACES, name)


@contextlib.asynccontextmanager
async def running(client: FakeClient, clock: FakeClock, **options: Any) -> AsyncIterator[NamespaceController]:
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "namespace-controller", clock=clock)
    options.setdefault("deletion_grace_seconds", 0)
    controller = NamespaceController(ControllerContext(client, factory, recorder, clock), **options)
    async with asyncio.TaskGroup() as tasks:
        started = [tasks.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
        try:
            await factory.wait_for_sync()
            yield controller
        finally:
            for task in started:
                task.cancel()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_wall=NOW)


@pytest.fixture
def client(clock: FakeClock) -> NamespaceLifecycleClient:
    return NamespaceLifecycleClient(clock)


# -- decisions --------------------------------------------------------------------------------------


def test_deletable_resources_are_namespaced_stored_preferred_listable_and_deletable() -> None:
    names = {(r.group, r.plural) for r in deletable_resources(BUILTIN_RESOURCES)}
    for wanted in [("", "pods"), ("", "configmaps"), ("", "secrets"), ("", "services"), ("", "events")]:
        assert wanted in names
    assert (
        ("apps", "deployments") in names
        and ("batch", "jobs") in names
        and ("autoscaling", "horizontalpodautoscalers") in names
    )
    for unwanted in [
        ("", "namespaces"),  # cluster-scoped
        ("", "bindings"),  # create only
        ("authorization.k8s.io", "localsubjectaccessreviews"),  # create only, not stored
        ("metrics.k8s.io", "pods"),  # read only, computed
        ("events.k8s.io", "events"),  # the core Events again
    ]:
        assert unwanted not in names
    hpas = [r for r in deletable_resources(BUILTIN_RESOURCES) if r.plural == "horizontalpodautoscalers"]
    assert [r.version for r in hpas] == ["v2"]


@pytest.mark.parametrize(
    ("pods", "since_deletion", "estimate"),
    [
        ([], 0, 0),
        ([pod("a", grace=30), pod("b", grace=60)], 10, 60),
        ([pod("a", grace=30)], 30, 0),  # that long has passed: no more waiting on grace
        ([pod("a", grace=90, phase="Succeeded"), pod("b", grace=20)], 0, 20),  # finished pods need no time
        ([pod("a")], 0, 0),  # no grace period given
    ],
)
def test_pod_grace_estimate_is_longest_grace_of_unfinished_pods_until_it_has_passed(
    pods: list[dict[str, Any]], since_deletion: int, estimate: int
) -> None:
    deleted_at = NOW - timedelta(seconds=since_deletion)
    assert pod_grace_estimate(pods, deleted_at=deleted_at, now=NOW) == estimate


def held(name: str, *finalizers: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "finalizers": list(finalizers)}}


@pytest.mark.parametrize(
    ("remaining", "estimate", "expected"),
    [
        ([], 30, ResourceOutcome(CONFIG_MAPS)),
        ([held("a"), held("b")], 30, ResourceOutcome(CONFIG_MAPS, 2, {}, 30)),
        (
            [held("a", "x/y"), held("b", "x/y", "z")],
            0,
            ResourceOutcome(CONFIG_MAPS, 2, {"x/y": 2, "z": 1}, 15),
        ),
        (
            [held("a")],
            0,
            ResourceOutcome(
                CONFIG_MAPS, 1, error="unexpected items still remain in namespace: ns for gvr: /v1, Resource=configmaps"
            ),
        ),
    ],
)
def test_assess_remaining_waits_for_grace_and_finalizers_and_fails_otherwise(
    remaining: list[dict[str, Any]], estimate: int, expected: ResourceOutcome
) -> None:
    assert assess_remaining(CONFIG_MAPS, "ns", remaining, estimate) == expected


def test_failure_conditions_use_upstream_reasons_and_sorted_messages() -> None:
    outcomes = [
        ResourceOutcome(PODS, 2, {}, 30),
        ResourceOutcome(CONFIG_MAPS, 1, {"example.com/hold": 1}, 15),
        ResourceOutcome(DEPLOYMENTS, 1, {"example.com/hold": 1, "foregroundDeletion": 1}, 15),
        ResourceOutcome(SECRETS, error="secrets is forbidden"),
        ResourceOutcome(SERVICES, error="boom"),
    ]
    found = {c["type"]: c for c in failure_conditions(outcomes)}
    assert set(found) == {
        "NamespaceDeletionContentFailure",
        "NamespaceContentRemaining",
        "NamespaceFinalizersRemaining",
    }
    assert found["NamespaceDeletionContentFailure"] == {
        "type": "NamespaceDeletionContentFailure",
        "status": "True",
        "reason": "ContentDeletionFailed",
        "message": "Failed to delete all resource types, 2 remaining: boom, secrets is forbidden",
    }
    assert found["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert found["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: configmaps. has 1 resource instances, "
        "deployments.apps has 1 resource instances, pods. has 2 resource instances"
    )
    assert found["NamespaceFinalizersRemaining"]["reason"] == "SomeFinalizersRemain"
    assert found["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/hold in 2 resource instances, "
        "foregroundDeletion in 1 resource instances"
    )
    assert failure_conditions([ResourceOutcome(PODS)]) == []


def test_merge_conditions_adds_every_owned_type_then_changes_only_what_differs() -> None:
    foreign = {"type": "Other", "status": "True", "reason": "R", "message": "m", "lastTransitionTime": "t0"}
    conditions, changed = merge_conditions([foreign], [], now="t1")
    assert changed
    assert [c["type"] for c in conditions] == ["Other", *CONDITION_TYPES]
    by_type = {c["type"]: c for c in conditions}
    assert by_type["NamespaceDeletionDiscoveryFailure"] == {
        "type": "NamespaceDeletionDiscoveryFailure",
        "status": "False",
        "reason": "ResourcesDiscovered",
        "message": "All resources successfully discovered",
        "lastTransitionTime": "t1",
    }
    assert by_type["NamespaceDeletionGroupVersionParsingFailure"]["reason"] == "ParsedGroupVersions"
    assert by_type["NamespaceDeletionContentFailure"]["message"] == (
        "All content successfully deleted, may be waiting on finalization"
    )
    assert by_type["NamespaceContentRemaining"]["reason"] == "ContentRemoved"
    assert by_type["NamespaceFinalizersRemaining"]["reason"] == "ContentHasNoFinalizers"
    assert by_type["NamespaceFinalizersRemaining"]["message"] == "All content-preserving finalizers finished"

    again, changed = merge_conditions(conditions, [], now="t2")
    assert not changed and again == conditions

    remaining = [
        {"type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain", "message": "a"}
    ]
    flipped, changed = merge_conditions(conditions, remaining, now="t3")
    assert changed
    assert condition({"status": {"conditions": flipped}}, "NamespaceContentRemaining") == {
        **remaining[0],
        "lastTransitionTime": "t3",
    }
    reworded = [{**remaining[0], "message": "b"}]
    updated, changed = merge_conditions(flipped, reworded, now="t4")
    assert changed
    # same status: the message changes, the transition time does not
    assert condition({"status": {"conditions": updated}}, "NamespaceContentRemaining") == {
        **reworded[0],
        "lastTransitionTime": "t3",
    }
    assert conditions[1]["lastTransitionTime"] == "t1"  # the input was not changed


def test_release_removes_only_the_kubernetes_finalizer() -> None:
    assert finalizers_after_release(["kubernetes"]) == []
    assert finalizers_after_release(["z.io/x", "kubernetes", "a.io/y", "a.io/y"]) == ["a.io/y", "z.io/x"]


def test_requeue_is_half_the_estimate_plus_one_second() -> None:
    assert [requeue_seconds(e) for e in (1, 15, 30)] == [1, 8, 16]


def test_namespace_is_active_only_in_phase_active_and_not_deleted() -> None:
    assert is_namespace_active({"status": {"phase": "Active"}})
    assert not is_namespace_active({"status": {"phase": "Terminating"}})
    assert not is_namespace_active({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Active"}})


# -- the controller ---------------------------------------------------------------------------------


async def populate(client: FakeClient, ns: str) -> None:
    await client.create(NAMESPACES, namespace(ns))
    await client.create(CONFIG_MAPS, {"metadata": {"name": "cm"}, "data": {"a": "b"}}, ns)
    await client.create(SECRETS, {"metadata": {"name": "s"}}, ns)
    await client.create(SERVICES, {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}}, ns)
    await client.create(DEPLOYMENTS, {"metadata": {"name": "web"}, "spec": {"replicas": 1}}, ns)
    await client.create(PODS, pod("unbound"), ns)


async def test_deleted_namespace_is_emptied_then_finalized_and_gone(
    client: NamespaceLifecycleClient, clock: FakeClock
) -> None:
    await populate(client, "doomed")
    await populate(client, "kept")
    async with running(client, clock):
        await client.delete(NAMESPACES, "doomed")
        await eventually(lambda: gone(client, NAMESPACES, "doomed"))
    for resource in (CONFIG_MAPS, SECRETS, SERVICES, DEPLOYMENTS, PODS):
        assert [o["metadata"]["namespace"] for o in client.objects(resource)] == ["kept"]
    kept = await current(client, "kept")
    assert kept["spec"]["finalizers"] == ["kubernetes"] and "conditions" not in kept["status"]
    finalize = [a for a in client.actions if a.subresource == "finalize"]
    assert [(a.verb, a.name) for a in finalize] == [("update", "doomed")]
    assert finalize[0].body["spec"]["finalizers"] == []
    # the conditions were written (all fine) before the namespace was released
    status_writes = [a for a in client.actions if a.resource == "namespaces" and a.subresource == "status"]
    assert status_writes, "conditions were never written"
    last = status_writes[-1].body["status"]["conditions"]
    assert {c["type"]: c["status"] for c in last} == dict.fromkeys(CONDITION_TYPES, "False")


async def test_content_held_by_foreign_finalizers_keeps_namespace_terminating_until_they_go(
    client: NamespaceLifecycleClient, clock: FakeClock
) -> None:
    await client.create(NAMESPACES, namespace("held"))
    await client.create(CONFIG_MAPS, {"metadata": {"name": "cm", "finalizers": ["example.com/hold"]}}, "held")
    await client.create(SECRETS, {"metadata": {"name": "s"}}, "held")
    async with running(client, clock) as controller:
        await client.delete(NAMESPACES, "held")

        async def reported() -> bool:
            found = condition(await current(client, "held"), "NamespaceFinalizersRemaining")
            return bool(found and found["status"] == "True")

        await eventually(reported)
        await eventually(lambda: controller.queue.waiting() == 1 and controller.queue.processing() == 0)
        ns = await current(client, "held")
        assert ns["status"]["phase"] == "Terminating" and ns["spec"]["finalizers"] == ["kubernetes"]
        assert condition(ns, "NamespaceContentRemaining") == {
            "type": "NamespaceContentRemaining",
            "status": "True",
            "reason": "SomeResourcesRemain",
            "message": "Some resources are remaining: configmaps. has 1 resource instances",
            "lastTransitionTime": rfc3339(NOW),
        }
        assert condition(ns, "NamespaceFinalizersRemaining") == {
            "type": "NamespaceFinalizersRemaining",
            "status": "True",
            "reason": "SomeFinalizersRemain",
            "message": (
                "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
            ),
            "lastTransitionTime": rfc3339(NOW),
        }
        assert (condition(ns, "NamespaceDeletionContentFailure") or {}).get("status") == "False"
        cm = (await client.get(CONFIG_MAPS, "cm", "held"))["metadata"]
        assert cm["finalizers"] == ["example.com/hold"] and cm["deletionTimestamp"]  # waited for, not stripped
        assert await gone(client, SECRETS, "s", "held")

        # the finalizer's owner finishes; the controller looks again 15/2+1 s later, not before
        await client.patch(CONFIG_MAPS, "cm", {"metadata": {"finalizers": None}}, "held")
        await clock.step(7)
        assert not await gone(client, NAMESPACES, "held")
        await clock.step(1)
        await eventually(lambda: gone(client, NAMESPACES, "held"))


async def test_graceful_pods_are_waited_for_by_their_grace_period(
    client: NamespaceLifecycleClient, clock: FakeClock
) -> None:
    await client.create(NAMESPACES, namespace("pods"))
    for name in ("a", "b"):
        await client.create(PODS, pod(name, node="n1", grace=30, phase="Running"), "pods")
    async with running(client, clock) as controller:
        await client.delete(NAMESPACES, "pods")

        async def reported() -> dict[str, Any] | None:
            found = condition(await current(client, "pods"), "NamespaceContentRemaining")
            return found if found and found["status"] == "True" else None

        remaining = await eventually(reported)
        assert remaining["message"] == "Some resources are remaining: pods. has 2 resource instances"
        ns = await current(client, "pods")
        assert (condition(ns, "NamespaceFinalizersRemaining") or {}).get("status") == "False"
        assert all(p["metadata"].get("deletionTimestamp") for p in client.objects(PODS))  # graceful, not forced

        # the node agent finishes the pods; the next look is 30/2+1 s after the first
        await eventually(lambda: controller.queue.waiting() == 1 and controller.queue.processing() == 0)
        for name in ("a", "b"):
            await client.delete(PODS, name, "pods", grace_period_seconds=0)
        await clock.step(15)
        assert not await gone(client, NAMESPACES, "pods")
        await clock.step(1)
        await eventually(lambda: gone(client, NAMESPACES, "pods"))


async def test_namespace_events_are_acted_on_after_the_deletion_grace_period(
    client: NamespaceLifecycleClient, clock: FakeClock
) -> None:
    await populate(client, "later")
    async with running(client, clock, deletion_grace_seconds=5) as controller:
        await client.delete(NAMESPACES, "later")
        await eventually(lambda: controller.queue.waiting() == 1)
        await clock.step(4.9)
        assert not [a for a in client.actions if a.verb == "delete" and a.resource != "namespaces"]
        await clock.step(0.1)
        await eventually(lambda: gone(client, NAMESPACES, "later"))


async def test_failed_deletes_are_reported_and_retried_with_back_off(
    client: NamespaceLifecycleClient, clock: FakeClock
) -> None:
    await populate(client, "flaky")
    failure = errors.internal("etcd is having a bad day")
    client.inject_error("delete", failure, resource=SECRETS)
    async with running(client, clock, deletion_grace_seconds=1) as controller:
        await client.delete(NAMESPACES, "flaky")
        await eventually(lambda: controller.queue.waiting() == 1)
        await clock.step(1)

        async def reported() -> dict[str, Any] | None:
            found = condition(await current(client, "flaky"), "NamespaceDeletionContentFailure")
            return found if found and found["status"] == "True" else None

        failed = await eventually(reported)
        assert failed["reason"] == "ContentDeletionFailed"
        assert failed["message"] == f"Failed to delete all resource types, 1 remaining: {failure.message}"
        assert not await gone(client, NAMESPACES, "flaky")
        await eventually(lambda: controller.queue.processing() == 0)
        await clock.step(0.005)  # the first retry comes 5 ms later
        await eventually(lambda: gone(client, NAMESPACES, "flaky"))


async def test_other_spec_finalizers_are_kept_and_active_namespaces_untouched(
    client: NamespaceLifecycleClient, clock: FakeClock
) -> None:
    shared = namespace("shared")
    shared["spec"]["finalizers"] = ["kubernetes", "example.com/cleanup"]
    await client.create(NAMESPACES, shared)
    await populate(client, "active")
    async with running(client, clock):
        await client.delete(NAMESPACES, "shared")

        async def released() -> bool:
            return (await current(client, "shared"))["spec"].get("finalizers") == ["example.com/cleanup"]

        await eventually(released)
    assert (await current(client, "shared"))["status"]["phase"] == "Terminating"
    touched = {
        a.namespace for a in client.actions if a.verb in ("delete", "update", "patch") and a.resource != "namespaces"
    }
    assert "active" not in touched
    assert not [a for a in client.actions if a.name == "active" and a.verb != "create"]


async def test_a_restarted_controller_finishes_what_an_earlier_one_started(
    client: NamespaceLifecycleClient, clock: FakeClock
) -> None:
    await client.create(NAMESPACES, namespace("again"))
    await client.create(CONFIG_MAPS, {"metadata": {"name": "cm", "finalizers": ["example.com/hold"]}}, "again")
    async with running(client, clock):
        await client.delete(NAMESPACES, "again")

        async def reported() -> bool:
            found = condition(await current(client, "again"), "NamespaceFinalizersRemaining")
            return bool(found and found["status"] == "True")

        await eventually(reported)
    await client.patch(CONFIG_MAPS, "cm", {"metadata": {"finalizers": None}}, "again")
    async with running(client, clock, deletion_grace_seconds=0):
        await eventually(lambda: gone(client, NAMESPACES, "again"))


async def test_reconcile_leaves_the_informer_cache_unchanged(
    client: NamespaceLifecycleClient, clock: FakeClock
) -> None:
    await client.create(NAMESPACES, namespace("cached"))
    await client.create(CONFIG_MAPS, {"metadata": {"name": "cm", "finalizers": ["example.com/hold"]}}, "cached")
    async with running(client, clock, deletion_grace_seconds=3600) as controller:
        await client.delete(NAMESPACES, "cached")
        await eventually(
            lambda: (controller.namespaces.get("cached") or {}).get("metadata", {}).get("deletionTimestamp")
        )
        cached = controller.namespaces.get("cached")
        assert cached is not None
        before = deep_copy(cached)
        await controller.reconcile("cached")
        assert cached == before
        written = condition(await current(client, "cached"), "NamespaceFinalizersRemaining")
        assert written is not None and written["status"] == "True"  # the pass did its work on copies
