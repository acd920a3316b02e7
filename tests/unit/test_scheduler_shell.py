"""The scheduler shell against FakeClient + FakeClock: informers → queue → schedule → bind."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from kubelite.client.events import EVENTS
from kubelite.client.interface import builtin
from kubelite.machinery import errors
from kubelite.scheduler.plugins import default_events_to_register
from kubelite.scheduler.queue import UNSCHEDULABLE, SchedulingQueue
from kubelite.scheduler.scheduler import Scheduler
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

NODES = builtin("", "nodes")
PODS = builtin("", "pods")
WAIT = 10.0  # real seconds any condition may take


def node(name: str, *, cpu: str = "4", memory: str = "8Gi", unschedulable: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"unschedulable": True} if unschedulable else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def pod(name: str, *, cpu: str = "100m", memory: str = "64Mi", scheduler: str = "default-scheduler") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "schedulerName": scheduler,
            "containers": [
                {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
            ],
        },
        "status": {"phase": "Pending"},
    }


@dataclass
class Harness:
    client: FakeClient
    clock: FakeClock
    scheduler: Scheduler

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not condition():  # noqa: ASYNC110 (polling fake state, tests only)
                await asyncio.sleep(0.005)

    async def wait_out_backoff(self, uid: str) -> None:
        """A cluster event moved the pod to backoffQ (it failed less than its backoff ago, as
        upstream): let that time pass on the fake clock."""
        await self.wait_for(lambda: self.scheduler.queue.where(uid) != UNSCHEDULABLE)
        self.clock.advance(10.0)

    def pod(self, name: str) -> dict[str, Any]:
        return next(p for p in self.client.objects(PODS) if p["metadata"]["name"] == name)

    def node_of(self, name: str) -> str | None:
        return self.pod(name)["spec"].get("nodeName")

    def events(self, reason: str) -> list[dict[str, Any]]:
        return [e for e in self.client.objects(EVENTS) if e["reason"] == reason]

    def bound(self) -> dict[str, str]:
        pods = self.client.objects(PODS)
        return {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName")}


@contextlib.asynccontextmanager
async def running(client: FakeClient, clock: FakeClock | None = None) -> AsyncIterator[Harness]:
    clock = clock or FakeClock()
    scheduler = Scheduler(client, clock=clock, rng=random.Random(1))
    task = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(WAIT):
            await scheduler.nodes.wait_for_sync()
            await scheduler.pods.wait_for_sync()
        yield Harness(client, clock, scheduler)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_pods_spread_over_equal_nodes_by_score() -> None:
    client = FakeClient()
    for name in ("n1", "n2", "n3"):
        await client.create(NODES, node(name))
    for i in range(6):
        await client.create(PODS, pod(f"p{i}", cpu="1", memory="1Gi"))
    async with running(client) as h:
        await h.wait_for(lambda: len(h.bound()) == 6)
        await h.scheduler.recorder.flush()
        per_node = sorted(list(h.bound().values()).count(n) for n in ("n1", "n2", "n3"))
        assert per_node == [2, 2, 2]
        scheduled = {e["involvedObject"]["name"]: e["message"] for e in h.events("Scheduled")}
        assert scheduled["p0"] == f"Successfully assigned default/p0 to {h.node_of('p0')}"
        assert len(scheduled) == 6
        assert all(e["source"]["component"] == "default-scheduler" for e in h.events("Scheduled"))


async def test_cordoned_node_is_avoided() -> None:
    client = FakeClient()
    await client.create(NODES, node("cordoned", cpu="64", unschedulable=True))
    await client.create(NODES, node("open", cpu="1"))
    async with running(client) as h:
        for i in range(3):
            await client.create(PODS, pod(f"p{i}"))
        await h.wait_for(lambda: len(h.bound()) == 3)
        assert set(h.bound().values()) == {"open"}


async def test_pods_of_other_schedulers_are_left_alone() -> None:
    client = FakeClient()
    await client.create(NODES, node("n1"))
    async with running(client) as h:
        await client.create(PODS, pod("theirs", scheduler="other"))
        await client.create(PODS, pod("ours"))
        await h.wait_for(lambda: "ours" in h.bound())
        assert h.node_of("theirs") is None
        assert h.scheduler.queue.where(h.pod("theirs")["metadata"]["uid"]) is None


async def test_too_big_pod_gets_condition_and_event_then_schedules_when_room_appears() -> None:
    client = FakeClient()
    for name in ("n1", "n2", "n3"):
        await client.create(NODES, node(name, cpu="2"))
    async with running(client) as h:
        created = await client.create(PODS, pod("big", cpu="3"))
        uid = created["metadata"]["uid"]
        message = (
            "0/3 nodes are available: 3 Insufficient cpu. "
            "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
        )

        def condition() -> dict[str, Any] | None:
            conditions = h.pod("big").get("status", {}).get("conditions") or []
            return next((c for c in conditions if c["type"] == "PodScheduled"), None)

        await h.wait_for(lambda: condition() is not None)
        assert condition() == {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        await h.wait_for(lambda: h.scheduler.queue.where(uid) == UNSCHEDULABLE)
        await h.scheduler.recorder.flush()
        [event] = h.events("FailedScheduling")
        assert (event["type"], event["message"], event["count"]) == ("Warning", message, 1)
        assert event["involvedObject"]["kind"] == "Pod" and event["involvedObject"]["uid"] == uid

        # a node with room arrives: retried on that event (after its backoff), not by polling
        await client.create(NODES, node("roomy", cpu="8"))
        await h.wait_out_backoff(uid)
        await h.wait_for(lambda: h.node_of("big") == "roomy")


async def test_unschedulable_pod_retried_when_a_bound_pod_is_deleted() -> None:
    client = FakeClient()
    await client.create(NODES, node("n1", cpu="2"))
    async with running(client) as h:
        await client.create(PODS, pod("first", cpu="1500m"))
        await h.wait_for(lambda: h.node_of("first") == "n1")
        second = await client.create(PODS, pod("second", cpu="1"))
        await h.wait_for(lambda: h.scheduler.queue.where(second["metadata"]["uid"]) == UNSCHEDULABLE)
        await client.delete(PODS, "first", "default", grace_period_seconds=0)
        await h.wait_out_backoff(second["metadata"]["uid"])
        await h.wait_for(lambda: h.node_of("second") == "n1")


async def test_uncordon_makes_pending_pod_schedulable() -> None:
    client = FakeClient()
    await client.create(NODES, node("n1", unschedulable=True))
    async with running(client) as h:
        waiting = await client.create(PODS, pod("p"))
        await h.wait_for(lambda: h.scheduler.queue.where(waiting["metadata"]["uid"]) == UNSCHEDULABLE)
        await h.wait_for(lambda: bool(h.pod("p")["status"].get("conditions")))
        assert "1 node(s) were unschedulable" in h.pod("p")["status"]["conditions"][0]["message"]
        await client.patch(NODES, "n1", {"spec": {"unschedulable": None}})
        await h.wait_out_backoff(waiting["metadata"]["uid"])
        await h.wait_for(lambda: h.node_of("p") == "n1")


async def test_repeated_failures_patch_condition_once_and_aggregate_events() -> None:
    client = FakeClient()
    await client.create(NODES, node("n1", cpu="1"))
    async with running(client) as h:
        big = await client.create(PODS, pod("big", cpu="2"))
        uid = big["metadata"]["uid"]
        await h.wait_for(lambda: h.scheduler.queue.where(uid) == UNSCHEDULABLE)
        # an unrelated node change that the pod's rejecting plugin registered (NodeAdd) retries it
        await client.create(NODES, node("n2", cpu="1"))
        await h.wait_out_backoff(uid)

        def patches() -> list[Any]:
            return [a for a in client.actions if a.verb == "patch" and a.resource == "pods" and a.name == "big"]

        await h.wait_for(lambda: len(patches()) == 2)
        await h.wait_for(lambda: h.scheduler.queue.where(uid) == UNSCHEDULABLE)
        await h.scheduler.recorder.flush()
        messages = [a.body["status"]["conditions"][0]["message"] for a in patches()]
        assert messages[0].startswith("0/1 nodes are available: 1 Insufficient cpu.")
        assert messages[-1].startswith("0/2 nodes are available: 2 Insufficient cpu.")
        assert len(patches()) == 2  # one per distinct message
        assert sum(e["count"] for e in h.events("FailedScheduling")) == 2


async def test_binding_conflict_requeues_and_binds_after_backoff() -> None:
    client = FakeClient()
    await client.create(NODES, node("n1"))
    conflict = errors.conflict("pods", "", "p", "the object has been modified")
    client.inject_error("create_subresource", conflict, resource=PODS)
    async with running(client) as h:
        created = await client.create(PODS, pod("p"))
        uid = created["metadata"]["uid"]
        await h.wait_for(lambda: h.scheduler.queue.where(uid) == "backoffQ")
        assert h.scheduler.cache.node_of(uid) is None  # the assumption was forgotten
        await h.clock.wait_for_sleepers(1)
        h.clock.advance(1.0)
        await h.wait_for(lambda: h.node_of("p") == "n1")
        await h.scheduler.recorder.flush()
        [failed] = h.events("FailedScheduling")
        assert failed["message"] == (
            'running Bind plugin "DefaultBinder": Operation cannot be fulfilled on pods "p": '
            "the object has been modified"
        )
        conditions = h.pod("p")["status"]["conditions"]
        assert [(c["type"], c["status"], c["reason"]) for c in conditions] == [
            ("PodScheduled", "False", "SchedulerError")
        ]


async def test_pod_bound_by_someone_else_is_not_rescheduled() -> None:
    client = FakeClient()
    await client.create(NODES, node("n1"))
    await client.create(NODES, node("n2"))
    created = await client.create(PODS, pod("p"))
    await client.create_subresource(
        PODS, "p", "binding", {"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n2"}}, "default"
    )
    async with running(client) as h:
        uid = created["metadata"]["uid"]
        await h.wait_for(lambda: h.scheduler.cache.node_of(uid) == "n2")
        assert h.scheduler.queue.where(uid) is None
        assert not [a for a in client.actions if a.verb == "create_subresource" and a.name == "p"][1:]


async def test_assumed_pods_count_before_informer_confirms() -> None:
    client = FakeClient()
    await client.create(NODES, node("small", cpu="1"))
    async with running(client) as h:
        for i in range(3):
            await client.create(PODS, pod(f"p{i}", cpu="400m"))
        await h.wait_for(lambda: len(h.bound()) == 2)
        await h.wait_for(lambda: h.scheduler.queue.lengths()[2] == 1)
        assert h.scheduler.cache.snapshot.get("small").requested.milli_cpu == 800  # type: ignore[union-attr]


async def test_no_nodes_reports_upstream_message_and_retries_after_backoff() -> None:
    client = FakeClient()
    async with running(client) as h:
        created = await client.create(PODS, pod("p"))
        uid = created["metadata"]["uid"]
        await h.wait_for(lambda: h.scheduler.queue.where(uid) == "backoffQ")
        await h.wait_for(lambda: bool(h.pod("p")["status"].get("conditions")))
        [condition] = h.pod("p")["status"]["conditions"]
        assert (condition["reason"], condition["message"]) == ("Unschedulable", "no nodes available to schedule pods")
        await client.create(NODES, node("n1"))
        h.clock.advance(10.0)
        await h.wait_for(lambda: h.node_of("p") == "n1")


# -- the queue's async pop -------------------------------------------------------------------------


def queue_pod(name: str) -> dict[str, Any]:
    return {**pod(name), "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"}}


async def test_pop_wait_returns_when_a_pod_is_added() -> None:
    clock = FakeClock()
    queue = SchedulingQueue(clock=clock, events_to_register=default_events_to_register())
    popping = asyncio.create_task(queue.pop_wait())
    await asyncio.sleep(0)
    assert not popping.done()
    queue.add(queue_pod("a"))
    assert (await asyncio.wait_for(popping, WAIT)).key == "uid-a"


async def test_pop_wait_wakes_when_backoff_ends_on_the_clock() -> None:
    clock = FakeClock()
    queue = SchedulingQueue(clock=clock, events_to_register=default_events_to_register())
    queue.add(queue_pod("a"))
    queued = await queue.pop_wait()
    assert queue.add_unschedulable_if_not_present(queued) == "backoffQ"  # an error: plain backoff
    popping = asyncio.create_task(queue.pop_wait())
    await clock.wait_for_sleepers(1)
    assert not popping.done()
    clock.advance(1.0)
    assert (await asyncio.wait_for(popping, WAIT)).key == "uid-a"


async def test_pop_wait_flushes_pods_parked_longer_than_five_minutes() -> None:
    clock = FakeClock()
    queue = SchedulingQueue(clock=clock, events_to_register=default_events_to_register())
    queue.add(queue_pod("a"))
    queued = await queue.pop_wait()
    queue.add_unschedulable_if_not_present(queued, unschedulable_plugins=["NodeResourcesFit"])
    assert queue.where("uid-a") == UNSCHEDULABLE
    popping = asyncio.create_task(queue.pop_wait())
    await clock.wait_for_sleepers(1)
    clock.advance(290)
    await clock.wait_for_sleepers(1)
    assert not popping.done()
    await clock.run_until_idle(limit=40)
    assert (await asyncio.wait_for(popping, WAIT)).key == "uid-a"
