"""The scheduling queue: pop order, backoff timing, parking unschedulable pods and moving them on
cluster events, gated pods, and events that happen while a pod is being scheduled."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.scheduler.events import (
    EVENT_ASSIGNED_POD_DELETE,
    EVENT_FORCE_ACTIVATE,
    EVENT_NODE_ADD,
    NODE,
    ActionType,
    ClusterEvent,
    node_update_events,
    pod_update_action,
)
from kubelite.scheduler.plugins import default_events_to_register
from kubelite.scheduler.queue import ACTIVE, BACKOFF, UNSCHEDULABLE, SchedulingQueue, backoff_duration
from kubelite.testing.fake_clock import FakeClock

FIT = "NodeResourcesFit"
TAINTS = "TaintToleration"
AFFINITY = "NodeAffinity"


def make_pod(name: str, *, priority: int | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "x"}], **spec}
    if priority is not None:
        body["priority"] = priority
    return {"metadata": {"name": name, "namespace": "default", "uid": name}, "spec": body}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> SchedulingQueue:
    return SchedulingQueue(clock=clock, events_to_register=default_events_to_register())


def fail(queue: SchedulingQueue, name: str, *plugins: str) -> str:
    """Pop `name` (it must be next) and report it unschedulable by `plugins`."""
    queued = queue.pop()
    assert queued is not None and queued.key == name
    return queue.add_unschedulable_if_not_present(queued, unschedulable_plugins=plugins)


# --- ordering ---------------------------------------------------------------------------------------


def test_pop_orders_by_priority_then_arrival(queue: SchedulingQueue, clock: FakeClock) -> None:
    for name, priority in [("low", 0), ("high-late", 100), ("mid", 50), ("low-late", None)]:
        queue.add(make_pod(name, priority=priority))
        clock.advance(1)
    queue.add(make_pod("high-later", priority=100))
    order = []
    while (queued := queue.pop()) is not None:
        order.append(queued.key)
        queue.done(queued.key)
    assert order == ["high-late", "high-later", "mid", "low", "low-late"]


def test_pop_counts_attempts_and_cycles(queue: SchedulingQueue) -> None:
    queue.add(make_pod("a"))
    queued = queue.pop()
    assert queued is not None and queued.attempts == 1 and queue.scheduling_cycle == 1
    assert queued.initial_attempt_timestamp is not None
    assert queue.pop() is None


def test_update_of_an_active_pod_reorders_it(queue: SchedulingQueue) -> None:
    queue.add(make_pod("a"))
    queue.add(make_pod("b"))
    queue.update(make_pod("b"), make_pod("b", priority=10))
    popped = queue.pop()
    assert popped is not None and popped.key == "b"
    assert len(queue) == 1


def test_delete_removes_from_every_queue(queue: SchedulingQueue) -> None:
    queue.add(make_pod("a"))
    queue.add(make_pod("b"))
    fail(queue, "a", FIT)
    queue.delete(make_pod("a"))
    queue.delete(make_pod("b"))
    assert queue.lengths() == (0, 0, 0)
    assert queue.pop() is None


# --- backoff --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (6, 10.0), (60, 10.0)],
)
def test_backoff_doubles_from_1s_to_10s(attempts: int, seconds: float) -> None:
    assert backoff_duration(attempts, initial=1.0, maximum=10.0) == seconds


def test_a_failure_without_rejecting_plugins_backs_off_then_becomes_active(
    queue: SchedulingQueue, clock: FakeClock
) -> None:
    queue.add(make_pod("a"))
    assert fail(queue, "a") == BACKOFF
    clock.advance(0.999)
    assert queue.flush_backoff_completed() == 0
    assert queue.next_backoff_expiry() == pytest.approx(clock.now() + 0.001)
    clock.advance(0.001)
    assert queue.flush_backoff_completed() == 1
    assert queue.where("a") == ACTIVE
    # the second failure backs off for 2 s
    assert fail(queue, "a") == BACKOFF
    clock.advance(1.5)
    assert queue.flush_backoff_completed() == 0
    clock.advance(0.5)
    assert queue.flush_backoff_completed() == 1


# --- unschedulable pods and events ------------------------------------------------------------------


def test_rejected_pod_waits_for_an_event_its_plugin_registered(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(make_pod("a"))
    assert fail(queue, "a", FIT) == UNSCHEDULABLE
    label_change = ClusterEvent(NODE, ActionType.UPDATE_NODE_LABEL, "NodeLabelChange")
    assert queue.move_all_to_active_or_backoff(label_change) == 0
    assert queue.where("a") == UNSCHEDULABLE
    # a pod deletion frees resources: still inside the 1 s backoff, so to backoffQ
    assert queue.move_all_to_active_or_backoff(EVENT_ASSIGNED_POD_DELETE) == 1
    assert queue.where("a") == BACKOFF
    clock.advance(1)
    queue.flush_backoff_completed()
    assert queue.where("a") == ACTIVE


def test_event_after_backoff_expired_goes_straight_to_active(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(make_pod("a"))
    fail(queue, "a", TAINTS)
    clock.advance(5)
    taint_change = ClusterEvent(NODE, ActionType.UPDATE_NODE_TAINT, "NodeTaintChange")
    assert queue.move_all_to_active_or_backoff(taint_change) == 1
    assert queue.where("a") == ACTIVE


@pytest.mark.parametrize(
    ("plugin", "event", "moves"),
    [
        (FIT, EVENT_NODE_ADD, True),
        (FIT, ClusterEvent(NODE, ActionType.UPDATE_NODE_ALLOCATABLE), True),
        (FIT, ClusterEvent(NODE, ActionType.UPDATE_NODE_TAINT), False),
        (AFFINITY, ClusterEvent(NODE, ActionType.UPDATE_NODE_LABEL), True),
        (AFFINITY, EVENT_ASSIGNED_POD_DELETE, False),
        (TAINTS, ClusterEvent(NODE, ActionType.UPDATE_NODE_LABEL), False),
        ("NodePorts", EVENT_ASSIGNED_POD_DELETE, True),
        ("NodeName", EVENT_NODE_ADD, True),
        ("NodeUnschedulable", ClusterEvent(NODE, ActionType.UPDATE_NODE_TAINT), True),
        ("SomeUnknownPlugin", EVENT_NODE_ADD, False),
        (FIT, EVENT_FORCE_ACTIVATE, True),
    ],
)
def test_which_events_move_which_rejections(
    queue: SchedulingQueue, clock: FakeClock, plugin: str, event: ClusterEvent, moves: bool
) -> None:
    queue.add(make_pod("a"))
    fail(queue, "a", plugin)
    clock.advance(30)
    queue.move_all_to_active_or_backoff(event)
    assert queue.where("a") == (ACTIVE if moves else UNSCHEDULABLE)


def test_pre_check_limits_which_pods_move(queue: SchedulingQueue) -> None:
    for name in ("a", "b"):
        queue.add(make_pod(name))
        fail(queue, name, FIT)
    moved = queue.move_all_to_active_or_backoff(EVENT_NODE_ADD, pre_check=lambda q: q.key == "b")
    assert moved == 1
    assert (queue.where("a"), queue.where("b")) == (UNSCHEDULABLE, BACKOFF)


def test_parked_pods_are_retried_after_five_minutes(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(make_pod("a"))
    fail(queue, "a", "SomeUnknownPlugin")
    clock.advance(300)
    assert queue.flush_unschedulable_leftover() == 0
    clock.advance(0.001)
    assert queue.flush_unschedulable_leftover() == 1
    assert queue.where("a") == ACTIVE


def test_event_during_the_attempt_keeps_the_pod_from_being_parked(queue: SchedulingQueue) -> None:
    queue.add(make_pod("a"))
    queued = queue.pop()
    assert queued is not None
    queue.move_all_to_active_or_backoff(EVENT_NODE_ADD)  # a node joined while "a" was being scheduled
    where = queue.add_unschedulable_if_not_present(queued, unschedulable_plugins=[FIT])
    assert where == BACKOFF


def test_irrelevant_event_during_the_attempt_still_parks_the_pod(queue: SchedulingQueue) -> None:
    queue.add(make_pod("a"))
    queued = queue.pop()
    assert queued is not None
    queue.move_all_to_active_or_backoff(EVENT_ASSIGNED_POD_DELETE)
    assert queue.add_unschedulable_if_not_present(queued, unschedulable_plugins=[AFFINITY]) == UNSCHEDULABLE


def test_events_before_the_attempt_do_not_count(queue: SchedulingQueue) -> None:
    queue.add(make_pod("a"))
    queue.add(make_pod("b"))
    first = queue.pop()
    assert first is not None
    queue.move_all_to_active_or_backoff(EVENT_NODE_ADD)  # seen while "a" is in flight, before "b" pops
    second = queue.pop()
    assert second is not None
    assert queue.add_unschedulable_if_not_present(second, unschedulable_plugins=[FIT]) == UNSCHEDULABLE
    assert queue.add_unschedulable_if_not_present(first, unschedulable_plugins=[FIT]) == BACKOFF


def test_returning_a_pod_that_is_already_queued_is_an_error(queue: SchedulingQueue) -> None:
    queue.add(make_pod("a"))
    queued = queue.pop()
    assert queued is not None
    queue.add(make_pod("a"))  # the informer saw it again meanwhile: recorded as an update, not queued
    assert queue.where("a") is None
    queue.add_unschedulable_if_not_present(queued, unschedulable_plugins=[FIT])
    with pytest.raises(ValueError, match="already queued"):
        queue.add_unschedulable_if_not_present(queued, unschedulable_plugins=[FIT])


def test_activate_moves_a_parked_pod_at_once(queue: SchedulingQueue) -> None:
    queue.add(make_pod("a"))
    fail(queue, "a", FIT)
    assert queue.activate(["a", "missing"]) == 1
    assert queue.where("a") == ACTIVE


def test_pending_pods_summary(queue: SchedulingQueue) -> None:
    for name in ("a", "b", "c"):
        queue.add(make_pod(name))
    fail(queue, "a", FIT)
    fail(queue, "b")
    pods, summary = queue.pending_pods()
    assert sorted(q.key for q in pods) == ["a", "b", "c"]
    assert summary == "activeQ:1; backoffQ:1; unschedulablePods:1"


# --- pod updates and scheduling gates -----------------------------------------------------------------


def test_gated_pod_waits_until_its_gates_are_removed(queue: SchedulingQueue) -> None:
    gated = make_pod("a", schedulingGates=[{"name": "example.com/wait"}])
    queue.add(gated)
    assert queue.where("a") == UNSCHEDULABLE
    assert queue.pop() is None
    assert queue.move_all_to_active_or_backoff(EVENT_FORCE_ACTIVATE) == 0
    queue.flush_unschedulable_leftover()
    queue.update(gated, make_pod("a", schedulingGates=[{"name": "example.com/wait"}], tolerations=[]))
    assert queue.where("a") == UNSCHEDULABLE
    queue.update(gated, make_pod("a"))
    assert queue.where("a") == ACTIVE


def test_adding_a_toleration_requeues_a_pod_rejected_for_a_taint(queue: SchedulingQueue, clock: FakeClock) -> None:
    old = make_pod("a")
    queue.add(old)
    fail(queue, "a", TAINTS)
    clock.advance(5)
    queue.update(old, make_pod("a", priority=None, **{"activeDeadlineSeconds": 5}))
    assert queue.where("a") == UNSCHEDULABLE  # not a change TaintToleration cares about
    queue.update(old, make_pod("a", tolerations=[{"operator": "Exists"}]))
    assert queue.where("a") == ACTIVE


def test_update_of_an_unknown_pod_queues_it(queue: SchedulingQueue) -> None:
    queue.update(make_pod("a"), make_pod("a"))
    assert queue.where("a") == ACTIVE


# --- event helpers ------------------------------------------------------------------------------------


def test_node_update_events() -> None:
    old = {"metadata": {"labels": {"a": "1"}}, "spec": {}, "status": {"allocatable": {"cpu": "1"}}}
    new = {
        "metadata": {"labels": {"a": "2"}},
        "spec": {"unschedulable": True},
        "status": {"allocatable": {"cpu": "2"}, "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert [e.label for e in node_update_events(old, new)] == [
        "NodeSpecUnschedulableChange",
        "NodeAllocatableChange",
        "NodeLabelChange",
        "NodeConditionChange",
    ]
    assert node_update_events(old, old) == []


def test_pod_update_action() -> None:
    base = make_pod("a", schedulingGates=[{"name": "g"}])
    changed = make_pod("a", tolerations=[{"operator": "Exists"}])
    changed["metadata"]["labels"] = {"x": "y"}
    action = pod_update_action(base, changed)
    assert action == (
        ActionType.UPDATE_POD_LABEL
        | ActionType.UPDATE_POD_TOLERATIONS
        | ActionType.UPDATE_POD_SCHEDULING_GATES_ELIMINATED
    )
    assert pod_update_action(base, base) == ActionType.UPDATE_POD_OTHER
