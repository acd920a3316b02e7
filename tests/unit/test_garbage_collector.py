"""The garbage collector: its graph and decisions table-tested, its shell run against FakeClient."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.garbagecollector import (
    GarbageCollector,
    OwnerState,
    Plan,
    Verdict,
    deletable_resources,
    owner_state,
    plan_for_dependent,
)
from kubelite.controllers.gc_graph import (
    DependencyGraph,
    Identity,
    OwnerRef,
    deletion_starts_with_finalizer,
    references_diff,
    remove_finalizer_patch,
    remove_references_merge_patch,
    remove_references_patch,
    unblock_references_patch,
)
from kubelite.machinery.errors import ApiError
from kubelite.machinery.resources import BUILTIN_RESOURCES, Resource
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

PODS = builtin("", "pods")
REPLICASETS = builtin("apps", "replicasets")
DEPLOYMENTS = builtin("apps", "deployments")
CLUSTERROLES = builtin("rbac.authorization.k8s.io", "clusterroles")
EVENTS = builtin("", "events")
RESOURCES = (PODS, REPLICASETS, DEPLOYMENTS, CLUSTERROLES)
STAMP = "2026-01-01T00:00:00Z"


def ref(uid: str, *, name: str = "o", kind: str = "ReplicaSet", block: bool | None = None) -> OwnerRef:
    return OwnerRef("apps/v1", kind, name, uid, True, block)


def obj(
    uid: str,
    *,
    name: str = "x",
    namespace: str = "ns",
    owners: Sequence[OwnerRef] = (),
    deleting: bool = False,
    finalizers: Sequence[str] = (),
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": uid}
    if namespace:
        meta["namespace"] = namespace
    if owners:
        meta["ownerReferences"] = [
            {
                "apiVersion": r.api_version,
                "kind": r.kind,
                "name": r.name,
                "uid": r.uid,
                "controller": r.controller,
                "blockOwnerDeletion": r.block_owner_deletion,
            }
            for r in owners
        ]
    if deleting:
        meta["deletionTimestamp"] = STAMP
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"metadata": meta}


# -- decisions ------------------------------------------------------------------------------------

SOLID, DANGLING, WAITING = OwnerState.SOLID, OwnerState.DANGLING, OwnerState.WAITING
A, B = ref("a"), ref("b")


@pytest.mark.parametrize(
    ("states", "finalizers", "has_dependents", "dependent_deleting", "expected"),
    [
        pytest.param([], (), False, False, Plan(Verdict.KEEP), id="no-owners-kept"),
        pytest.param([(A, SOLID)], (), False, False, Plan(Verdict.KEEP), id="live-owner-kept"),
        pytest.param(
            [(A, SOLID), (B, DANGLING)],
            (),
            False,
            False,
            Plan(Verdict.REMOVE_REFERENCES, owner_uids=("b",)),
            id="second-owner-gone-reference-removed",
        ),
        pytest.param(
            [(A, WAITING), (B, SOLID)],
            (),
            True,
            False,
            Plan(Verdict.REMOVE_REFERENCES, owner_uids=("a",)),
            id="live-owner-keeps-it-from-a-foreground-owner",
        ),
        pytest.param(
            [(A, DANGLING)], (), False, False, Plan(Verdict.DELETE, propagation="Background"), id="owner-gone-deleted"
        ),
        pytest.param(
            [(A, DANGLING), (B, DANGLING)],
            (),
            True,
            False,
            Plan(Verdict.DELETE, propagation="Background"),
            id="all-owners-gone-background-even-with-dependents",
        ),
        pytest.param(
            [(A, WAITING)],
            (),
            True,
            False,
            Plan(Verdict.DELETE, propagation="Foreground"),
            id="foreground-owner-and-dependents-foreground",
        ),
        pytest.param(
            [(A, WAITING)],
            (),
            True,
            True,
            Plan(Verdict.DELETE, propagation="Foreground", unblock_first=True),
            id="foreground-cycle-unblocks-first",
        ),
        pytest.param(
            [(A, WAITING)],
            (),
            False,
            False,
            Plan(Verdict.DELETE, propagation="Background"),
            id="foreground-owner-leaf-background",
        ),
        pytest.param(
            [(A, DANGLING)],
            ("orphan",),
            True,
            False,
            Plan(Verdict.DELETE, propagation="Orphan"),
            id="own-orphan-finalizer-honoured",
        ),
        pytest.param(
            [(A, DANGLING)],
            ("foregroundDeletion",),
            False,
            False,
            Plan(Verdict.DELETE, propagation="Foreground"),
            id="own-foreground-finalizer-honoured",
        ),
    ],
)
def test_plan_for_dependent_given_its_owners_states(
    states: list[tuple[OwnerRef, OwnerState]],
    finalizers: tuple[str, ...],
    has_dependents: bool,
    dependent_deleting: bool,
    expected: Plan,
) -> None:
    plan = plan_for_dependent(
        states,
        finalizers=finalizers,
        has_dependents=has_dependents,
        a_dependent_is_deleting_dependents=dependent_deleting,
    )
    assert plan == expected


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        (None, DANGLING),
        (obj("other-uid"), DANGLING),
        (obj("a"), SOLID),
        (obj("a", deleting=True), SOLID),
        (obj("a", deleting=True, finalizers=["orphan"]), SOLID),
        (obj("a", deleting=True, finalizers=["foregroundDeletion"]), WAITING),
        (obj("a", finalizers=["foregroundDeletion"]), SOLID),
    ],
)
def test_owner_state_from_live_read(live: dict[str, Any] | None, expected: OwnerState) -> None:
    assert owner_state(A, live) is expected


def test_patches_name_the_dependent_uid_and_keep_other_references() -> None:
    assert remove_references_patch("dep", ["a"]) == {
        "metadata": {"ownerReferences": [{"$patch": "delete", "uid": "a"}], "uid": "dep"}
    }
    latest = obj("dep", owners=[ref("a", block=True), ref("b")])
    latest["metadata"]["resourceVersion"] = "7"
    merge = remove_references_merge_patch(latest, ["a"])
    assert [r["uid"] for r in merge["metadata"]["ownerReferences"]] == ["b"]
    assert merge["metadata"]["resourceVersion"] == "7"
    assert remove_references_merge_patch(latest, ["a", "b"])["metadata"]["ownerReferences"] is None
    unblock = unblock_references_patch(latest)
    assert unblock is not None
    assert [(r["uid"], r["blockOwnerDeletion"]) for r in unblock["metadata"]["ownerReferences"]] == [("a", False)]
    assert unblock_references_patch(obj("dep", owners=[ref("b")])) is None


def test_remove_finalizer_patch_is_compare_and_swap_and_none_when_absent() -> None:
    owner = obj("o", deleting=True, finalizers=["foregroundDeletion", "example.com/x"])
    owner["metadata"]["resourceVersion"] = "3"
    assert remove_finalizer_patch(owner, "foregroundDeletion") == {
        "metadata": {"finalizers": ["example.com/x"], "resourceVersion": "3"}
    }
    assert remove_finalizer_patch(owner, "orphan") is None
    last = obj("o", deleting=True, finalizers=["orphan"])
    assert remove_finalizer_patch(last, "orphan") == {"metadata": {"finalizers": None, "resourceVersion": None}}


def test_deletable_resources_are_preferred_deletable_watchable_and_not_events() -> None:
    names = {(r.group, r.version, r.plural) for r in deletable_resources()}
    assert ("", "v1", "pods") in names and ("apps", "v1", "replicasets") in names
    assert ("", "v1", "namespaces") in names and ("rbac.authorization.k8s.io", "v1", "clusterroles") in names
    assert ("", "v1", "events") not in names and ("events.k8s.io", "v1", "events") not in names
    assert ("autoscaling", "v1", "horizontalpodautoscalers") not in names  # not preferred
    assert ("autoscaling", "v2", "horizontalpodautoscalers") in names
    assert ("", "v1", "bindings") not in names and ("", "v1", "componentstatuses") not in names
    assert not any(r.group == "metrics.k8s.io" for r in deletable_resources())
    assert all(r in BUILTIN_RESOURCES for r in deletable_resources())


def test_references_diff_and_deletion_transitions() -> None:
    old = [ref("a", block=True), ref("b")]
    new = [ref("a", block=False), ref("c")]
    added, removed, changed = references_diff(old, new)
    assert [r.uid for r in added] == ["c"] and [r.uid for r in removed] == ["b"]
    assert changed == [(ref("a", block=True), ref("a", block=False))]
    deleting = obj("o", deleting=True, finalizers=["orphan"])
    assert deletion_starts_with_finalizer(None, deleting, "orphan")  # first sight (a fresh collector)
    assert deletion_starts_with_finalizer(obj("o"), deleting, "orphan")
    assert not deletion_starts_with_finalizer(deleting, deleting, "orphan")  # resync
    assert not deletion_starts_with_finalizer(obj("o"), deleting, "foregroundDeletion")


# -- the graph ------------------------------------------------------------------------------------


def observe(graph: DependencyGraph, o: dict[str, Any], kind: str = "ReplicaSet", old: Any = None) -> Any:
    return graph.observe(o, api_version="apps/v1", kind=kind, old=old)


def test_graph_links_owners_and_dependents_and_costs_one_node_per_plain_object() -> None:
    graph = DependencyGraph()
    assert not observe(graph, obj("rs", name="o"))
    actions = observe(graph, obj("pod", owners=[ref("rs", block=True)]), kind="Pod")
    assert not actions
    owner = graph.get("rs")
    assert owner is not None and owner.dependents == {"pod"}
    assert [d.uid for d in graph.blocking_dependents(owner)] == ["pod"]
    assert len(graph) == 2


def test_graph_verifies_an_unobserved_owner_and_adopts_it_when_observed() -> None:
    graph = DependencyGraph()
    actions = observe(graph, obj("pod", owners=[ref("rs")]), kind="Pod")
    assert actions.attempt_to_delete == ["rs"]  # a virtual node: does it exist?
    virtual = graph.get("rs")
    assert virtual is not None and not virtual.observed
    assert virtual.identity == Identity("apps/v1", "ReplicaSet", "ns", "o", "rs")
    assert not observe(graph, obj("rs", name="o"))
    assert virtual.observed


def test_graph_deleted_owner_queues_its_dependents_and_remembers_it_absent() -> None:
    graph = DependencyGraph()
    observe(graph, obj("rs", name="o"))
    observe(graph, obj("pod-1", owners=[ref("rs")]), kind="Pod")
    observe(graph, obj("pod-2", owners=[ref("rs")]), kind="Pod")
    actions = graph.observe_deletion(obj("rs", name="o"), api_version="apps/v1", kind="ReplicaSet")
    assert sorted(actions.attempt_to_delete) == ["pod-1", "pod-2"]
    assert "rs" not in graph
    assert Identity("apps/v1", "ReplicaSet", "ns", "o", "rs") in graph.absent


def test_graph_foreground_and_orphan_deletions_start_once() -> None:
    graph = DependencyGraph()
    observe(graph, obj("rs", name="o"))
    observe(graph, obj("pod", owners=[ref("rs")]), kind="Pod")
    fg = obj("rs", name="o", deleting=True, finalizers=["foregroundDeletion"])
    actions = observe(graph, fg, old=obj("rs", name="o"))
    assert actions.attempt_to_delete == ["pod", "rs"]
    node = graph.get("rs")
    assert node is not None and node.deleting_dependents and node.being_deleted
    assert not observe(graph, fg, old=fg)  # a resync starts nothing
    # the last dependent going away wakes the waiting owner
    gone = graph.observe_deletion(obj("pod", owners=[ref("rs")]), api_version="v1", kind="Pod")
    assert gone.attempt_to_delete == ["rs"]

    orphaning = obj("d", name="d", deleting=True, finalizers=["orphan"])
    assert observe(graph, orphaning, kind="Deployment").attempt_to_orphan == ["d"]


def test_graph_dependent_dropping_a_blocking_reference_wakes_the_owner() -> None:
    graph = DependencyGraph()
    observe(graph, obj("rs", name="o"))
    observe(graph, obj("pod", owners=[ref("rs", block=True)]), kind="Pod")
    actions = observe(graph, obj("pod", owners=[ref("rs", block=False)]), kind="Pod")
    assert actions.attempt_to_delete == ["rs"]
    actions = observe(graph, obj("pod"), kind="Pod")
    assert not actions  # the reference was no longer blocking
    owner = graph.get("rs")
    assert owner is not None and owner.dependents == set()


def test_graph_reports_a_namespaced_owner_in_another_namespace() -> None:
    graph = DependencyGraph()
    observe(graph, obj("rs", name="o", namespace="a"))
    actions = observe(graph, obj("pod", namespace="b", owners=[ref("rs")]), kind="Pod")
    assert actions.attempt_to_delete == ["pod"]
    assert [(dep.uid, r.uid) for dep, r in actions.invalid_namespace_refs] == [("pod", "rs")]
    # the other order: the dependent first (virtual owner guessed in "b"), then the owner in "a"
    graph = DependencyGraph()
    observe(graph, obj("pod", namespace="b", owners=[ref("rs")]), kind="Pod")
    actions = observe(graph, obj("rs", name="o", namespace="a"))
    assert actions.attempt_to_delete == ["pod"]
    assert [(dep.uid, r.uid) for dep, r in actions.invalid_namespace_refs] == [("pod", "rs")]


def test_graph_virtual_delete_keeps_an_observed_node_and_drops_a_disproved_guess() -> None:
    graph = DependencyGraph()
    observe(graph, obj("pod", owners=[ref("rs")]), kind="Pod")
    guess = Identity("apps/v1", "ReplicaSet", "ns", "o", "rs")
    actions = graph.virtual_delete(guess)
    assert actions.attempt_to_delete == ["pod"] and "rs" not in graph
    # an observed object is not removed by a virtual delete of other coordinates
    graph = DependencyGraph()
    observe(graph, obj("rs", name="real"))
    observe(graph, obj("pod", owners=[ref("rs", name="wrong")]), kind="Pod")
    actions = graph.virtual_delete(Identity("apps/v1", "ReplicaSet", "ns", "wrong", "rs"))
    assert actions.attempt_to_delete == ["pod"] and "rs" in graph


def test_graph_virtual_owner_with_conflicting_guesses_tries_the_next_one() -> None:
    graph = DependencyGraph()
    observe(graph, obj("pod-a", namespace="a", owners=[ref("rs")]), kind="Pod")
    observe(graph, obj("pod-b", namespace="b", owners=[ref("rs")]), kind="Pod")
    first = Identity("apps/v1", "ReplicaSet", "a", "o", "rs")
    actions = graph.virtual_delete(first)
    # pod-b's reference matches too (references carry no namespace): it is re-checked, harmlessly
    assert "pod-a" in actions.attempt_to_delete and actions.attempt_to_delete_later == ["rs"]
    node = graph.get("rs")
    assert node is not None and node.identity.namespace == "b"


# -- the shell, against FakeClient ----------------------------------------------------------------


def owner_ref(owner: dict[str, Any], *, block: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": block,
    }


async def make(
    client: FakeClient,
    resource: Resource,
    name: str,
    *,
    namespace: str | None = "ns",
    owners: Sequence[dict[str, Any]] = (),
    refs: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    all_refs = [owner_ref(o) for o in owners] + list(refs)
    if all_refs:
        meta["ownerReferences"] = all_refs
    body: dict[str, Any] = {"metadata": meta}
    if resource == PODS:
        body["spec"] = {"containers": [{"name": "c", "image": "busybox"}]}
    return await client.create(resource, body, namespace if resource.namespaced else None)


async def three_levels(client: FakeClient, name: str = "web", pods: int = 2) -> dict[str, Any]:
    deployment = await make(client, DEPLOYMENTS, name)
    rs = await make(client, REPLICASETS, f"{name}-rs", owners=[deployment])
    for i in range(pods):
        await make(client, PODS, f"{name}-pod-{i}", owners=[rs])
    return deployment


def names(client: FakeClient, resource: Resource) -> list[str]:
    return [o["metadata"]["name"] for o in client.objects(resource)]


def stored(client: FakeClient, resource: Resource, name: str) -> dict[str, Any] | None:
    return next((o for o in client.objects(resource) if o["metadata"]["name"] == name), None)


@contextlib.asynccontextmanager
async def running_gc(
    client: FakeClient, clock: FakeClock, resources: Sequence[Resource] = RESOURCES
) -> AsyncIterator[GarbageCollector]:
    """A collector with its own informers and recorder, synced, until the block ends."""
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "garbage-collector-controller", clock=clock)
    gc = GarbageCollector(ControllerContext(client, factory, recorder, clock), resources=resources)
    async with asyncio.TaskGroup() as tasks:
        running = [tasks.create_task(factory.run()), tasks.create_task(recorder.run()), tasks.create_task(gc.run())]
        try:
            async with asyncio.timeout(5):
                await factory.wait_for_sync()
            yield gc
        finally:
            for task in running:
                task.cancel()


async def eventually(condition: Callable[[], bool], clock: FakeClock, *, timeout: float = 5.0) -> None:
    """Until `condition()` holds, letting fake time pass in small steps (so back-offs run out)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await clock.step(0.05)


async def settled(condition: Callable[[], bool], *, timeout: float = 5.0) -> None:
    """Until `condition()` holds, without moving fake time."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0)


def caches_follow_the_api(gc: GarbageCollector, client: FakeClient) -> bool:
    """Every informer cache equals the store: nothing changed a cached object in place."""
    return all(
        sorted(informer.list(), key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        == client.objects(informer.resource)
        for informer in gc.context.informers.informers()
    )


class DeletionLog:
    """Records, in resourceVersion order, the deletions and finalizer changes of some resources."""

    def __init__(self, client: FakeClient, resources: Sequence[Resource]) -> None:
        self.client = client
        self.resources = resources
        self.entries: list[tuple[int, str, str, str]] = []  # (revision, what, kind, name)

    async def _watch(self, resource: Resource, since: str) -> None:
        async for event in self.client.watch(resource, resource_version=since):
            meta = event.object["metadata"]
            what = event.type
            if event.type == "MODIFIED" and "foregroundDeletion" in (meta.get("finalizers") or ()):
                what = "FOREGROUND"
            self.entries.append((int(meta["resourceVersion"]), what, event.object["kind"], meta["name"]))

    @contextlib.asynccontextmanager
    async def recording(self) -> AsyncIterator[DeletionLog]:
        since = str(self.client.revision)
        async with asyncio.TaskGroup() as tasks:
            watches = [tasks.create_task(self._watch(r, since)) for r in self.resources]
            try:
                yield self
            finally:
                for watch in watches:
                    watch.cancel()

    def revisions(self, what: str, kind: str) -> list[int]:
        return [rev for rev, w, k, _ in sorted(self.entries) if (w, k) == (what, kind)]


async def test_background_cascade_deletes_replicasets_then_their_pods() -> None:
    client, clock = FakeClient(), FakeClock()
    deployment = await three_levels(client)
    await make(client, PODS, "unrelated")
    async with running_gc(client, clock):
        await client.delete(DEPLOYMENTS, "web", "ns", propagation_policy="Background")
        await eventually(lambda: names(client, PODS) == ["unrelated"], clock)
    assert names(client, REPLICASETS) == [] and names(client, DEPLOYMENTS) == []
    assert deployment["metadata"]["uid"] not in names(client, PODS)


async def test_foreground_cascade_deletes_bottom_up_then_removes_the_finalizer() -> None:
    client, clock = FakeClient(), FakeClock()
    await three_levels(client, pods=3)
    log = DeletionLog(client, (PODS, REPLICASETS, DEPLOYMENTS))
    async with running_gc(client, clock) as gc, log.recording():
        marked = await client.delete(DEPLOYMENTS, "web", "ns", propagation_policy="Foreground")
        assert marked["metadata"]["finalizers"] == ["foregroundDeletion"]
        await eventually(lambda: not names(client, DEPLOYMENTS), clock)
        await eventually(lambda: caches_follow_the_api(gc, client), clock)
    pods_gone = log.revisions("DELETED", "Pod")
    [rs_foreground] = log.revisions("FOREGROUND", "ReplicaSet")
    [rs_gone] = log.revisions("DELETED", "ReplicaSet")
    [deployment_gone] = log.revisions("DELETED", "Deployment")
    assert len(pods_gone) == 3
    # the ReplicaSet, having dependents, was deleted in Foreground itself and outlived its pods
    assert rs_foreground < min(pods_gone) and max(pods_gone) < rs_gone < deployment_gone


async def test_foreground_owner_does_not_wait_for_non_blocking_dependents() -> None:
    client, clock = FakeClient(), FakeClock()
    owner = await make(client, DEPLOYMENTS, "web")
    blocking_rs = await make(client, REPLICASETS, "blocking", owners=[owner])
    await make(client, PODS, "held", owners=[blocking_rs])
    # a pod already terminating on a node holds its ReplicaSet, which holds the Deployment
    pod = await make(client, PODS, "terminating", refs=[owner_ref(blocking_rs)])
    await client.create_subresource(PODS, "terminating", "binding", {"target": {"name": "n1"}}, "ns")
    await client.delete(PODS, pod["metadata"]["name"], "ns")
    await make(client, REPLICASETS, "free", refs=[owner_ref(owner, block=False)])
    async with running_gc(client, clock):
        await client.delete(DEPLOYMENTS, "web", "ns", propagation_policy="Foreground")
        await eventually(
            lambda: names(client, PODS) == ["terminating"] and names(client, REPLICASETS) == ["blocking"], clock
        )
        assert names(client, DEPLOYMENTS) == ["web"]  # still waiting for the blocking ReplicaSet
        # the kubelet confirms the pod is gone: the chain unwinds
        await client.delete(PODS, "terminating", "ns", grace_period_seconds=0)
        await eventually(lambda: not names(client, DEPLOYMENTS) and not names(client, REPLICASETS), clock)


async def test_orphan_removes_owner_references_and_the_finalizer_and_keeps_dependents() -> None:
    client, clock = FakeClient(), FakeClock()
    deployment = await three_levels(client)
    uid = deployment["metadata"]["uid"]
    async with running_gc(client, clock) as gc:
        await client.delete(DEPLOYMENTS, "web", "ns", propagation_policy="Orphan")
        await eventually(lambda: not names(client, DEPLOYMENTS), clock)
        await eventually(lambda: caches_follow_the_api(gc, client), clock)
    [rs] = client.objects(REPLICASETS)
    assert not rs["metadata"].get("ownerReferences") and uid not in str(rs)
    pods = client.objects(PODS)
    assert len(pods) == 2
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in pods)


async def test_dangling_owner_uid_with_a_namesake_alive_deletes_the_dependent() -> None:
    client, clock = FakeClient(), FakeClock()
    await make(client, DEPLOYMENTS, "web")
    stale = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "old-uid", "controller": True}
    rs = await make(client, REPLICASETS, "web-old", refs=[stale])
    await make(client, PODS, "web-old-pod", owners=[rs])
    async with running_gc(client, clock) as gc:
        await eventually(lambda: not names(client, REPLICASETS) and not names(client, PODS), clock)
        await eventually(lambda: len(gc.graph) == 1, clock)  # the disproved owner left no trace
    assert names(client, DEPLOYMENTS) == ["web"]


async def test_owner_recreated_while_collector_was_down_its_old_dependents_are_deleted() -> None:
    client, clock = FakeClient(), FakeClock()
    await three_levels(client)
    await client.delete(DEPLOYMENTS, "web", "ns")  # nobody collects now
    fresh = await make(client, DEPLOYMENTS, "web")
    await make(client, REPLICASETS, "web-new", owners=[fresh])
    async with running_gc(client, clock):
        await eventually(lambda: names(client, REPLICASETS) == ["web-new"] and not names(client, PODS), clock)
    assert names(client, DEPLOYMENTS) == ["web"]


async def test_dependent_with_two_owners_loses_only_the_gone_owners_reference() -> None:
    client, clock = FakeClient(), FakeClock()
    first = await make(client, REPLICASETS, "first")
    second = await make(client, REPLICASETS, "second")
    await make(client, PODS, "shared", owners=[first, second])
    async with running_gc(client, clock):
        await client.delete(REPLICASETS, "first", "ns")
        await eventually(lambda: len(stored(client, PODS, "shared")["metadata"]["ownerReferences"]) == 1, clock)  # type: ignore[index]
        assert client.objects(REPLICASETS)[0]["metadata"]["name"] == "second"
    pod = stored(client, PODS, "shared")
    assert pod is not None
    assert [r["uid"] for r in pod["metadata"]["ownerReferences"]] == [second["metadata"]["uid"]]


async def test_dependent_of_a_foreground_owner_with_another_live_owner_is_kept() -> None:
    client, clock = FakeClient(), FakeClock()
    going = await make(client, REPLICASETS, "going")
    staying = await make(client, REPLICASETS, "staying")
    await make(client, PODS, "shared", owners=[going, staying])
    async with running_gc(client, clock):
        await client.delete(REPLICASETS, "going", "ns", propagation_policy="Foreground")
        await eventually(lambda: names(client, REPLICASETS) == ["staying"], clock)
    pod = stored(client, PODS, "shared")
    assert pod is not None
    assert [r["uid"] for r in pod["metadata"]["ownerReferences"]] == [staying["metadata"]["uid"]]


async def test_fresh_collector_finishes_work_a_stopped_one_left() -> None:
    client, clock = FakeClient(), FakeClock()
    await three_levels(client, "fg")
    await three_levels(client, "orphaned")
    await three_levels(client, "bg")
    # the first collector gets a foreground deletion half-way: pod deletions fail
    client.inject_error("delete", ApiError(500, "InternalError", "boom"), resource=PODS, times=2)
    async with running_gc(client, clock):
        await client.delete(DEPLOYMENTS, "fg", "ns", propagation_policy="Foreground")
        # fake time stands still, so the failed deletions are not retried before this collector stops
        await settled(lambda: sum(a.verb == "delete" and a.resource == "pods" for a in client.actions) >= 2)
        rs = stored(client, REPLICASETS, "fg-rs")
        assert rs is not None and rs["metadata"].get("deletionTimestamp")
    # while no collector runs
    await client.delete(DEPLOYMENTS, "orphaned", "ns", propagation_policy="Orphan")
    await client.delete(DEPLOYMENTS, "bg", "ns", propagation_policy="Background")
    async with running_gc(client, clock):
        await eventually(lambda: names(client, DEPLOYMENTS) == [], clock)
        await eventually(lambda: names(client, REPLICASETS) == ["orphaned-rs"], clock)
        await eventually(lambda: sorted(names(client, PODS)) == ["orphaned-pod-0", "orphaned-pod-1"], clock)
    rs = stored(client, REPLICASETS, "orphaned-rs")
    assert rs is not None and not rs["metadata"].get("ownerReferences")


async def test_objects_without_owners_or_dependents_cost_no_reads() -> None:
    client, clock = FakeClient(), FakeClock()
    for i in range(20):
        await make(client, PODS, f"plain-{i}")
    client.clear_actions()
    async with running_gc(client, clock) as gc:
        await client.delete(PODS, "plain-0", "ns")
        await make(client, PODS, "plain-new")
        await eventually(lambda: "plain-0" not in names(client, PODS), clock)
        await clock.step(1)
        assert len(gc.graph) == 20
    assert [a for a in client.actions if a.verb not in ("list", "watch", "delete", "create")] == []


async def test_owner_in_another_namespace_is_reported_and_treated_as_absent() -> None:
    client, clock = FakeClient(), FakeClock()
    rs = await make(client, REPLICASETS, "web", namespace="a")
    await make(client, PODS, "stray", namespace="b", refs=[owner_ref(rs)])
    deployment = await make(client, DEPLOYMENTS, "web", namespace="a")
    await make(client, CLUSTERROLES, "bad", refs=[owner_ref(deployment)])
    async with running_gc(client, clock) as gc:
        await eventually(lambda: not names(client, PODS), clock)
        await eventually(lambda: len(client.objects(EVENTS)) == 2, clock)
        await gc.recorder.flush()
    assert names(client, CLUSTERROLES) == ["bad"]  # cluster-scoped → namespaced: never collected
    events = {(e["involvedObject"]["name"], e["reason"], e["type"]): e for e in client.objects(EVENTS)}
    stray = events[("stray", "OwnerRefInvalidNamespace", "Warning")]
    assert stray["message"] == (
        f"ownerRef [apps/v1/ReplicaSet, namespace: b, name: web, uid: {rs['metadata']['uid']}] "
        'does not exist in namespace "b"'
    )
    assert stray["metadata"]["namespace"] == "b"
    bad = events[("bad", "OwnerRefInvalidNamespace", "Warning")]
    assert bad["metadata"]["namespace"] == "default" and 'namespace ""' in bad["message"]


async def test_unwatched_owner_kind_is_verified_by_a_live_read() -> None:
    client, clock = FakeClient(), FakeClock()
    rs = await make(client, REPLICASETS, "web")
    await make(client, PODS, "kept", owners=[rs])
    stale = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "uid": "gone-uid"}
    await make(client, PODS, "orphaned", refs=[stale])
    async with running_gc(client, clock, resources=(PODS,)) as gc:
        await eventually(lambda: names(client, PODS) == ["kept"], clock)
        await clock.step(10)
        assert names(client, PODS) == ["kept"]
        node = gc.graph.get(rs["metadata"]["uid"])
        assert node is not None and not node.observed  # known only through its dependent


async def test_namespaced_dependents_of_a_cluster_scoped_owner_follow_it() -> None:
    client, clock = FakeClient(), FakeClock()
    owner = await make(client, CLUSTERROLES, "owner")
    await make(client, PODS, "in-a", namespace="a", owners=[owner])
    await make(client, PODS, "in-b", namespace="b", owners=[owner])
    async with running_gc(client, clock) as gc:
        await clock.step(1)
        assert sorted(names(client, PODS)) == ["in-a", "in-b"]
        await client.delete(CLUSTERROLES, "owner")
        await eventually(lambda: not names(client, PODS), clock)
        await eventually(lambda: caches_follow_the_api(gc, client), clock)


async def test_foreground_deletion_without_dependents_finishes_at_once() -> None:
    client, clock = FakeClient(), FakeClock()
    await make(client, DEPLOYMENTS, "lonely")
    async with running_gc(client, clock):
        await client.delete(DEPLOYMENTS, "lonely", "ns", propagation_policy="Foreground")
        await eventually(lambda: not names(client, DEPLOYMENTS), clock)


async def test_owner_replaced_unseen_during_a_relist_still_frees_its_dependents() -> None:
    # a watch buffer of one: two quick changes overflow it and the informer lists again, so the
    # deletion and re-creation of the ReplicaSet arrive as one update with a new uid
    client, clock = FakeClient(watch_buffer=1), FakeClock()
    rs = await make(client, REPLICASETS, "web")
    await make(client, PODS, "old-pod", owners=[rs])
    async with running_gc(client, clock) as gc:
        await client.delete(REPLICASETS, "web", "ns", propagation_policy="Orphan")
        await client.patch(REPLICASETS, "web", {"metadata": {"finalizers": None}}, "ns")  # nobody orphans it
        await client.create(REPLICASETS, {"metadata": {"name": "web"}}, "ns")
        await eventually(lambda: not names(client, PODS), clock)
        assert rs["metadata"]["uid"] not in gc.graph
