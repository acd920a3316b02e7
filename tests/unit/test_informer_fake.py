"""Informer over FakeClient: initial list, watch events, 410 re-list differences, indexes, handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import orjson
import pytest

from kubelite.client import ObjectKey, builtin, resource_for
from kubelite.client.errors import TransportError
from kubelite.client.http import _watch_event, resource_path
from kubelite.client.informer import Informer, SharedInformerFactory
from kubelite.client.interface import WatchEvent
from kubelite.machinery import errors
from kubelite.machinery.errors import ApiError
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

PODS = builtin("", "pods")
CONFIGMAPS = builtin("", "configmaps")
NODES = builtin("", "nodes")


def configmap(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "data": {"k": name}}


def pod(name: str, node: str = "", namespace: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"nodeName": node, "containers": []}}


class Recorder:
    """Records handler calls as (handler, event, key[, key]) tuples."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.calls: list[tuple[str, ...]] = []

    def on_add(self, obj: dict[str, Any]) -> None:
        self.calls.append((self.label, "add", _name(obj)))

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.calls.append((self.label, "update", _name(new)))

    def on_delete(self, obj: dict[str, Any]) -> None:
        self.calls.append((self.label, "delete", _name(obj)))

    def attach(self, informer: Informer) -> Recorder:
        informer.add_handler(self.on_add, self.on_update, self.on_delete)
        return self


def _name(obj: dict[str, Any]) -> str:
    return obj["metadata"]["name"]


async def eventually(condition: Callable[[], bool], *, steps: int = 10_000) -> None:
    """Let the loop run until `condition` holds; everything is in memory, so no real time passes."""
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


@contextlib.asynccontextmanager
async def running(*coroutines: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    async with asyncio.TaskGroup() as tasks:
        started = [tasks.create_task(c) for c in coroutines]
        try:
            yield
        finally:
            for task in started:
                task.cancel()


async def test_initial_list_fills_the_cache_and_calls_on_add_before_sync() -> None:
    fake = FakeClient()
    for name in ("a", "b"):
        await fake.create(CONFIGMAPS, configmap(name))
    informer = Informer(fake, CONFIGMAPS, clock=FakeClock())
    recorder = Recorder().attach(informer)
    assert not informer.has_synced
    async with running(informer.run()):
        await asyncio.wait_for(informer.wait_for_sync(), 2)
        assert recorder.calls == [("", "add", "a"), ("", "add", "b")]
        cached = informer.get("default/a")
        assert cached is not None and cached["data"] == {"k": "a"}
        assert informer.get(ObjectKey("default", "b")) is not None
        assert sorted(_name(o) for o in informer.list()) == ["a", "b"]
        assert informer.last_resource_version == str(fake.revision)


async def test_initial_list_is_paginated_and_items_get_api_version_and_kind() -> None:
    fake = FakeClient()
    for i in range(7):
        await fake.create(CONFIGMAPS, configmap(f"cm{i}"))
    informer = Informer(fake, CONFIGMAPS, clock=FakeClock(), page_size=3)
    async with running(informer.run()):
        await asyncio.wait_for(informer.wait_for_sync(), 2)
    assert len(informer.list()) == 7
    assert [a.verb for a in fake.actions].count("list") == 3
    assert all(o["apiVersion"] == "v1" and o["kind"] == "ConfigMap" for o in informer.list())


async def test_watch_events_update_the_cache_and_reach_handlers_in_order() -> None:
    fake = FakeClient()
    informer = Informer(fake, CONFIGMAPS, clock=FakeClock())
    first, second = Recorder("h1").attach(informer), Recorder("h2")
    second.attach(informer)
    async with running(informer.run()):
        await informer.wait_for_sync()
        await fake.wait_for_watchers(1)
        await fake.create(CONFIGMAPS, configmap("a"))
        await fake.patch(CONFIGMAPS, "a", {"data": {"k": "changed"}}, "default")
        await fake.create(CONFIGMAPS, configmap("b", namespace="other"))
        await fake.delete(CONFIGMAPS, "a", "default")
        await eventually(lambda: len(first.calls) == 4)
    assert first.calls == [("h1", "add", "a"), ("h1", "update", "a"), ("h1", "add", "b"), ("h1", "delete", "a")]
    assert [c[1:] for c in second.calls] == [c[1:] for c in first.calls]
    assert informer.get("default/a") is None
    assert informer.get("other/b") is not None
    assert informer.last_resource_version == str(fake.revision)


async def test_handlers_are_called_one_after_the_other_per_event() -> None:
    fake = FakeClient()
    informer = Informer(fake, CONFIGMAPS, clock=FakeClock())
    calls: list[tuple[str, ...]] = []
    for label in ("h1", "h2", "h3"):
        recorder = Recorder(label)
        recorder.calls = calls
        recorder.attach(informer)
    async with running(informer.run()):
        await informer.wait_for_sync()
        await fake.wait_for_watchers(1)
        await fake.create(CONFIGMAPS, configmap("a"))
        await fake.delete(CONFIGMAPS, "a", "default")
        await eventually(lambda: len(calls) == 6)
    assert calls == [
        ("h1", "add", "a"),
        ("h2", "add", "a"),
        ("h3", "add", "a"),
        ("h1", "delete", "a"),
        ("h2", "delete", "a"),
        ("h3", "delete", "a"),
    ]


async def test_a_failing_handler_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeClient()
    informer = Informer(fake, CONFIGMAPS, clock=FakeClock())

    def broken(obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    informer.add_handler(on_add=broken)
    recorder = Recorder().attach(informer)
    async with running(informer.run()):
        await informer.wait_for_sync()
        await fake.wait_for_watchers(1)
        await fake.create(CONFIGMAPS, configmap("a"))
        await fake.create(CONFIGMAPS, configmap("b"))
        await eventually(lambda: len(recorder.calls) == 2)
    assert "informer event handler failed" in caplog.text


async def test_a_handler_added_after_sync_first_gets_every_cached_object() -> None:
    fake = FakeClient()
    await fake.create(CONFIGMAPS, configmap("a"))
    informer = Informer(fake, CONFIGMAPS, clock=FakeClock())
    async with running(informer.run()):
        await informer.wait_for_sync()
        late = Recorder().attach(informer)
        assert late.calls == [("", "add", "a")]
        handler = informer.add_handler(on_add=lambda obj: late.calls.append(("x", "add", _name(obj))))
        informer.remove_handler(handler)
        await fake.wait_for_watchers(1)
        await fake.create(CONFIGMAPS, configmap("b"))
        await eventually(lambda: ("", "add", "b") in late.calls)
    assert late.calls == [("", "add", "a"), ("x", "add", "a"), ("", "add", "b")]


async def test_watch_end_rewatches_from_the_last_resource_version() -> None:
    fake = FakeClient()
    informer = Informer(fake, CONFIGMAPS, clock=FakeClock())
    recorder = Recorder().attach(informer)
    async with running(informer.run()):
        await informer.wait_for_sync()
        await fake.wait_for_watchers(1)
        await fake.create(CONFIGMAPS, configmap("a"))
        await eventually(lambda: len(recorder.calls) == 1)
        fake.close_watches()
        await fake.create(CONFIGMAPS, configmap("b"))  # made while no watch is open
        await eventually(lambda: len(recorder.calls) == 2)
    assert recorder.calls == [("", "add", "a"), ("", "add", "b")]
    assert [a.verb for a in fake.actions].count("list") == 1, "no re-list needed"
    assert [a.verb for a in fake.actions].count("watch") == 2


async def test_bookmarks_advance_the_resource_version() -> None:
    fake = FakeClient()
    other = builtin("", "secrets")
    informer = Informer(fake, CONFIGMAPS, clock=FakeClock())
    async with running(informer.run()):
        await informer.wait_for_sync()
        await fake.wait_for_watchers(1)
        await fake.create(other, {"metadata": {"name": "s", "namespace": "default"}})
        fake.send_bookmarks()
        await eventually(lambda: informer.last_resource_version == str(fake.revision))
    assert informer.list() == []


async def test_expired_watch_relists_and_delivers_only_the_differences() -> None:
    fake = FakeClient()
    for name in ("a", "b", "c"):
        await fake.create(CONFIGMAPS, configmap(name))
    informer = Informer(fake, CONFIGMAPS, clock=FakeClock())
    recorder = Recorder().attach(informer)
    async with running(informer.run()):
        await informer.wait_for_sync()
        await fake.wait_for_watchers(1)
        await fake.create(CONFIGMAPS, configmap("d"))
        await eventually(lambda: len(recorder.calls) == 4)
        recorder.calls.clear()
        # changes the informer misses: its watch ends, and the history it would resume from is gone
        fake.close_watches()
        await fake.patch(CONFIGMAPS, "a", {"data": {"k": "new"}}, "default")
        await fake.delete(CONFIGMAPS, "b", "default")
        await fake.create(CONFIGMAPS, configmap("e"))
        fake.compact()
        await eventually(lambda: len(recorder.calls) == 3)
        assert sorted(recorder.calls) == [("", "add", "e"), ("", "delete", "b"), ("", "update", "a")]
        cached = informer.get("default/a")
        assert cached is not None and cached["data"] == {"k": "new"}
        assert sorted(_name(o) for o in informer.list()) == ["a", "c", "d", "e"]
        assert [a.verb for a in fake.actions].count("list") == 2


async def test_error_event_410_in_the_stream_makes_the_informer_list_again() -> None:
    fake = FakeClient()
    informer = Informer(fake, CONFIGMAPS, clock=FakeClock())
    recorder = Recorder().attach(informer)
    async with running(informer.run()):
        await informer.wait_for_sync()
        await fake.wait_for_watchers(1)
        await fake.create(CONFIGMAPS, configmap("a"))
        await eventually(lambda: len(recorder.calls) == 1)
        fake.expire_watches()
        await eventually(lambda: [a.verb for a in fake.actions].count("list") == 2)
        await fake.wait_for_watchers(1)
        await fake.create(CONFIGMAPS, configmap("b"))
        await eventually(lambda: len(recorder.calls) == 2)
    assert recorder.calls == [("", "add", "a"), ("", "add", "b")], "nothing changed: no re-delivery"


class ErrorEventClient:
    """Wraps a FakeClient; its first watch yields a raw ERROR event with a 410 Status."""

    def __init__(self, fake: FakeClient) -> None:
        self.fake = fake
        self.watches = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)

    async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[WatchEvent]:
        self.watches += 1
        if self.watches == 1:
            yield WatchEvent("ERROR", errors.expired("too old resource version: 1 (5)").status())
            return
        async for event in self.fake.watch(*args, **kwargs):
            yield event


async def test_raw_error_event_with_code_410_is_treated_as_expired() -> None:
    fake = FakeClient()
    await fake.create(CONFIGMAPS, configmap("a"))
    client = ErrorEventClient(fake)
    clock = FakeClock()
    informer = Informer(client, CONFIGMAPS, clock=clock)  # type: ignore[arg-type]
    async with running(informer.run()):
        await informer.wait_for_sync()
        # a 410 straight after a list counts as a failure: back off, then list again
        await clock.wait_for_sleepers(1)
        await clock.step(60)
        await fake.wait_for_watchers(1)
    assert client.watches == 2
    assert [a.verb for a in fake.actions].count("list") == 2


def test_http_watch_error_event_becomes_api_error_with_the_status_code() -> None:
    line = orjson.dumps({"type": "ERROR", "object": errors.gone_too_old(3, 10).status()})
    with pytest.raises(ApiError) as raised:
        _watch_event(line)
    assert (raised.value.code, raised.value.reason) == (410, "Expired")
    assert str(raised.value) == "too old resource version: 3 (10)"
    assert _watch_event(b'{"type":"ADDED","object":{"metadata":{}}}') == WatchEvent("ADDED", {"metadata": {}})


async def test_failures_are_retried_with_back_off_until_the_list_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kubelite.client.informer")
    fake = FakeClient()
    await fake.create(CONFIGMAPS, configmap("a"))
    fake.inject_error("list", TransportError("connection refused"), times=3)
    clock = FakeClock()
    informer = Informer(fake, CONFIGMAPS, clock=clock)
    delays = []
    async with running(informer.run()):
        for _ in range(3):
            await clock.wait_for_sleepers(1)
            deadline = clock.next_deadline()
            assert deadline is not None
            delays.append(deadline - clock.now())
            await clock.step(deadline - clock.now())
        await asyncio.wait_for(informer.wait_for_sync(), 2)
    assert delays[0] < delays[1] < delays[2] <= 30.0
    assert [r.message for r in caplog.records].count(
        "list/watch failing; retrying with back-off: connection refused"
    ) == 1
    assert "list/watch recovered" in caplog.text


async def test_resync_calls_on_update_with_the_same_object() -> None:
    fake = FakeClient()
    await fake.create(CONFIGMAPS, configmap("a"))
    clock = FakeClock()
    informer = Informer(fake, CONFIGMAPS, clock=clock, resync_seconds=30)
    updates: list[bool] = []
    informer.add_handler(on_update=lambda old, new: updates.append(old is new))
    async with running(informer.run()):
        await informer.wait_for_sync()
        await clock.wait_for_sleepers(1)
        await clock.step(30)
        await eventually(lambda: updates == [True])


async def test_label_selector_informer_sees_objects_leave_and_enter_its_selection() -> None:
    fake = FakeClient()
    await fake.create(CONFIGMAPS, configmap("a", app="web"))
    await fake.create(CONFIGMAPS, configmap("b", app="db"))
    informer = Informer(fake, CONFIGMAPS, label_selector="app=web", clock=FakeClock())
    recorder = Recorder().attach(informer)
    async with running(informer.run()):
        await informer.wait_for_sync()
        await fake.wait_for_watchers(1)
        await fake.patch(CONFIGMAPS, "a", {"metadata": {"labels": {"app": "db"}}}, "default")
        await fake.patch(CONFIGMAPS, "b", {"metadata": {"labels": {"app": "web"}}}, "default")
        await eventually(lambda: len(recorder.calls) == 3)
    assert recorder.calls == [("", "add", "a"), ("", "delete", "a"), ("", "add", "b")]
    assert [_name(o) for o in informer.list()] == ["b"]


async def test_namespace_and_custom_indexes_follow_changes() -> None:
    fake = FakeClient()
    await fake.create(PODS, pod("p1", node="n1"))
    await fake.create(PODS, pod("p2", node="n2", namespace="kube-system"))
    informer = Informer(fake, PODS, clock=FakeClock())
    informer.add_index("node", lambda obj: [n] if (n := (obj.get("spec") or {}).get("nodeName")) else [])
    async with running(informer.run()):
        await informer.wait_for_sync()
        assert [_name(o) for o in informer.by_index("namespace", "kube-system")] == ["p2"]
        assert [_name(o) for o in informer.by_index("node", "n1")] == ["p1"]
        await fake.wait_for_watchers(1)
        await fake.create(PODS, pod("p3", node="n1"))
        await fake.patch(PODS, "p1", {"spec": {"nodeName": "n2"}}, "default")
        await eventually(lambda: [_name(o) for o in informer.by_index("node", "n1")] == ["p3"])
        assert [_name(o) for o in informer.by_index("node", "n2")] == ["p1", "p2"]
        await fake.delete(PODS, "p2", "kube-system", grace_period_seconds=0)
        await eventually(lambda: [_name(o) for o in informer.by_index("node", "n2")] == ["p1"])
        assert informer.indexer.index_values("namespace") == ["default"]
        # an index added later covers what is cached already
        by_name = lambda obj: [obj["metadata"]["name"]]  # noqa: E731
        informer.add_index("name", by_name)
        assert [_name(o) for o in informer.by_index("name", "p3")] == ["p3"]
        informer.add_index("name", by_name)  # a second controller asking for the same index
        assert [_name(o) for o in informer.by_index("name", "p3")] == ["p3"]
        with pytest.raises(ValueError):
            informer.add_index("node", lambda obj: [])


async def test_shared_factory_shares_informers_and_starts_late_ones() -> None:
    fake = FakeClient()
    await fake.create(CONFIGMAPS, configmap("a"))
    await fake.create(NODES, {"metadata": {"name": "n1"}})
    factory = SharedInformerFactory(fake, clock=FakeClock())
    configmaps = factory.informer(CONFIGMAPS)
    assert factory.informer(CONFIGMAPS) is configmaps
    assert factory.informer(CONFIGMAPS, label_selector="x=y") is not configmaps
    assert factory.informer(CONFIGMAPS, "default") is not configmaps
    async with running(factory.run()):
        await asyncio.wait_for(factory.wait_for_sync(), 2)
        nodes = factory.informer(NODES)
        await asyncio.wait_for(nodes.wait_for_sync(), 2)
        assert nodes.get("n1") is not None
        assert factory.has_synced
    assert len(factory.informers()) == 4


def test_resource_lookups_and_paths() -> None:
    assert resource_for("apps/v1", "Deployment").plural == "deployments"
    assert builtin("autoscaling", "horizontalpodautoscalers").version == "v2"
    assert builtin("autoscaling", "horizontalpodautoscalers", "v1").version == "v1"
    with pytest.raises(LookupError):
        resource_for("v1", "Nope")
    assert resource_path(PODS, "ns", "p", "binding") == "/api/v1/namespaces/ns/pods/p/binding"
    assert resource_path(builtin("apps", "deployments")) == "/apis/apps/v1/deployments"
    assert resource_path(NODES, "ignored", "n1") == "/api/v1/nodes/n1"
