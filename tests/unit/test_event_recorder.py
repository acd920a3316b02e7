"""EventRecorder against FakeClient + FakeClock: shape, aggregation, bounds, errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from kubelite.client.errors import TransportError
from kubelite.client.events import EVENTS, EventRecorder
from kubelite.machinery import errors
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": "7"},
}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u-n1", "resourceVersion": "3"}}


@contextlib.asynccontextmanager
async def running(recorder: EventRecorder) -> AsyncIterator[EventRecorder]:
    task = asyncio.create_task(recorder.run())
    try:
        yield recorder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_event_is_written_with_upstream_shape() -> None:
    client, clock = FakeClient(), FakeClock()
    recorder = EventRecorder(client, "default-scheduler", clock=clock)
    async with running(recorder):
        recorder.event(POD, "Normal", "Scheduled", "Successfully assigned shop/web to n1")
        await recorder.flush()
    [event] = client.objects(EVENTS)
    assert event["metadata"]["namespace"] == "shop"
    assert event["metadata"]["name"].startswith("web.")
    int(event["metadata"]["name"].removeprefix("web."), 16)  # hex suffix
    assert event["involvedObject"] == {
        "kind": "Pod",
        "apiVersion": "v1",
        "namespace": "shop",
        "name": "web",
        "uid": "u-1",
        "resourceVersion": "7",
    }
    assert event["type"] == "Normal"
    assert event["reason"] == "Scheduled"
    assert event["message"] == "Successfully assigned shop/web to n1"
    assert event["source"] == {"component": "default-scheduler"}
    assert event["reportingComponent"] == "default-scheduler"
    assert event["count"] == 1
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-01-01T00:00:00Z"


async def test_cluster_scoped_object_events_go_to_default_namespace_with_host_and_field_path() -> None:
    client, clock = FakeClient(), FakeClock()
    recorder = EventRecorder(client, "kubelet", "n1", clock=clock)
    async with running(recorder):
        recorder.event(NODE, "Normal", "NodeReady", "Node n1 status is now: NodeReady", field_path="spec")
        await recorder.flush()
    [event] = client.objects(EVENTS)
    assert event["metadata"]["namespace"] == "default"
    assert "namespace" not in event["involvedObject"]
    assert event["involvedObject"]["fieldPath"] == "spec"
    assert event["source"] == {"component": "kubelet", "host": "n1"}
    assert event["reportingInstance"] == "n1"


async def test_identical_events_within_ten_minutes_bump_count_instead_of_creating() -> None:
    client, clock = FakeClient(), FakeClock()
    recorder = EventRecorder(client, "default-scheduler", clock=clock)
    async with running(recorder):
        recorder.event(POD, "Warning", "FailedScheduling", "0/1 nodes are available")
        await recorder.flush()
        clock.advance(60)
        recorder.event(POD, "Warning", "FailedScheduling", "0/1 nodes are available")
        recorder.event(POD, "Warning", "FailedScheduling", "0/1 nodes are available")
        await recorder.flush()
    [event] = client.objects(EVENTS)
    assert event["count"] == 3
    assert event["firstTimestamp"] == "2026-01-01T00:00:00Z"
    assert event["lastTimestamp"] == "2026-01-01T00:01:00Z"
    assert [a.verb for a in client.actions] == ["create", "patch", "patch"]


async def test_different_message_or_after_window_creates_new_event() -> None:
    client, clock = FakeClient(), FakeClock()
    recorder = EventRecorder(client, "default-scheduler", clock=clock)
    async with running(recorder):
        recorder.event(POD, "Warning", "FailedScheduling", "a")
        recorder.event(POD, "Warning", "FailedScheduling", "b")
        await recorder.flush()
        clock.advance(601)
        recorder.event(POD, "Warning", "FailedScheduling", "a")
        await recorder.flush()
    events = client.objects(EVENTS)
    assert sorted((e["message"], e["count"]) for e in events) == [("a", 1), ("a", 1), ("b", 1)]


async def test_aggregated_event_deleted_meanwhile_is_created_again() -> None:
    client, clock = FakeClient(), FakeClock()
    recorder = EventRecorder(client, "default-scheduler", clock=clock)
    async with running(recorder):
        recorder.event(POD, "Warning", "FailedScheduling", "a")
        await recorder.flush()
        [event] = client.objects(EVENTS)
        await client.delete(EVENTS, event["metadata"]["name"], "shop")
        recorder.event(POD, "Warning", "FailedScheduling", "a")
        await recorder.flush()
    [again] = client.objects(EVENTS)
    assert again["count"] == 1


async def test_full_queue_drops_oldest() -> None:
    client, clock = FakeClient(), FakeClock()
    recorder = EventRecorder(client, "c", clock=clock, max_queued=2)
    for reason in ("A", "B", "C"):
        recorder.event(POD, "Normal", reason, reason)
    assert recorder.dropped == 1
    async with running(recorder):
        await recorder.flush()
    assert sorted(e["reason"] for e in client.objects(EVENTS)) == ["B", "C"]


async def test_write_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    client, clock = FakeClient(), FakeClock()
    recorder = EventRecorder(client, "c", clock=clock)
    client.inject_error("create", errors.forbidden("events", "", "", "no"), resource=EVENTS)
    async with running(recorder):
        recorder.event(POD, "Normal", "A", "first")
        recorder.event(POD, "Normal", "B", "second")
        await recorder.flush()
    assert [e["reason"] for e in client.objects(EVENTS)] == ["B"]
    assert "cannot write event" in caplog.text


async def test_transient_write_errors_are_retried() -> None:
    client, clock = FakeClient(), FakeClock()
    recorder = EventRecorder(client, "c", clock=clock)
    client.inject_error("create", TransportError("connection refused"), resource=EVENTS)
    async with running(recorder):
        recorder.event(POD, "Normal", "A", "first")
        await clock.wait_for_sleepers(1)
        clock.advance(5)
        await recorder.flush()
    assert [e["reason"] for e in client.objects(EVENTS)] == ["A"]


async def test_malformed_object_does_not_raise() -> None:
    recorder = EventRecorder(FakeClient(), "c", clock=FakeClock())
    recorder.event(None, "Normal", "A", "x")  # type: ignore[arg-type]
    await recorder.flush()
