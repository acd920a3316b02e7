"""The contract every storage `Backend` passes: one suite, run against memory, SQLite and (later) etcd.

Subclass a contract class in a test module and provide the `open_backend` fixture: a callable returning
a new, unstarted backend over the same storage each time it is called (a persistent backend reopens its
data; a memory backend starts empty)::

    class TestMemoryBackend(BackendContract):
        @pytest.fixture
        def open_backend(self) -> Callable[[], Backend]:
            return MemoryBackend

Persistent backends subclass `PersistentBackendContract`, which adds the restart tests.  The suite uses
nothing but the `Backend` protocol; compaction is explicit (`compact`) because automatic history limits
are each backend's own configuration and are tested with that backend.  The helpers below (`collect`,
`check_lagging_subscriber_catches_up`, ...) are for those backend-specific tests.

Timeouts in here only turn a hang into a failure; nothing asserts on speed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import pytest

from kubelite.storage.interface import (
    Backend,
    Compacted,
    Event,
    EventType,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionMismatch,
)

__all__ = [
    "HANG_TIMEOUT",
    "BackendContract",
    "PersistentBackendContract",
    "check_lagging_subscriber_behind_compaction_gets_compacted",
    "check_lagging_subscriber_catches_up",
    "collect",
]

HANG_TIMEOUT = 10.0  # seconds before a stuck await fails the test


async def collect(subscription: AsyncIterator[Event], until_revision: int) -> list[Event]:
    """Events from `subscription` up to and including `until_revision`."""
    events: list[Event] = []
    if until_revision <= 0:
        return events
    async with asyncio.timeout(HANG_TIMEOUT):
        async for event in subscription:
            events.append(event)
            if event.revision >= until_revision:
                break
    return events


def assert_contiguous(events: list[Event], after: int) -> None:
    """Revisions are after+1, after+2, ... with no gap and no repeat."""
    assert [e.revision for e in events] == list(range(after + 1, after + 1 + len(events)))


async def check_lagging_subscriber_catches_up(backend: Backend, *, writes: int) -> None:
    """For a backend whose subscriber buffer is much smaller than `writes`: a subscriber that does not
    read while `writes` commits happen still gets every event, in order, once it reads."""
    start = await backend.current_revision()
    subscription = backend.subscribe()
    for i in range(writes):
        await backend.create(f"/lag/{i:05d}", b"v")
    events = await collect(subscription, start + writes)
    assert_contiguous(events, start)
    assert [e.key for e in events] == [f"/lag/{i:05d}" for i in range(writes)]


async def check_lagging_subscriber_behind_compaction_gets_compacted(backend: Backend, *, writes: int) -> None:
    """A subscriber that overflowed its buffer and whose missed events were compacted away gets
    `Compacted` (the consumer re-lists) instead of a silent gap."""
    subscription = backend.subscribe()
    for i in range(writes):
        await backend.create(f"/lag/{i:05d}", b"v")
    await backend.compact(await backend.current_revision())
    with pytest.raises(Compacted):
        await collect(subscription, await backend.current_revision())


class BackendContract:
    """The `Backend` contract (kubelite.storage.interface) as tests; see the module docstring."""

    @pytest.fixture
    def open_backend(self) -> Callable[[], Backend]:
        raise NotImplementedError("a backend's test class provides the open_backend fixture")

    @pytest.fixture
    async def backend(self, open_backend: Callable[[], Backend]) -> AsyncIterator[Backend]:
        backend = open_backend()
        await backend.start()
        yield backend
        await backend.close()

    # get / create / list

    async def test_create_returns_next_revision_and_get_returns_the_value(self, backend: Backend) -> None:
        start = await backend.current_revision()
        revision = await backend.create("/registry/pods/default/a", b'{"x":1}')
        assert revision == start + 1
        assert await backend.get("/registry/pods/default/a") == KeyValue(
            "/registry/pods/default/a", b'{"x":1}', revision, revision
        )

    async def test_get_of_missing_key_returns_none(self, backend: Backend) -> None:
        assert await backend.get("/registry/pods/default/missing") is None

    async def test_values_are_opaque_bytes(self, backend: Backend) -> None:
        values = {"/v/empty": b"", "/v/binary": bytes(range(256)), "/v/big": b"x" * 200_000}
        for key, value in values.items():
            await backend.create(key, value)
        for key, value in values.items():
            got = await backend.get(key)
            assert got is not None and got.value == value

    async def test_list_returns_keys_under_prefix_sorted_by_key(self, backend: Backend) -> None:
        keys = [
            "/registry/pods/b/x",
            "/registry/pods/a/y",
            "/registry/pods/a/x",
            "/registry/pods/\u00e9/x",
            "/registry/pods/\U0001f600/x",
            "/registry/podsx/a/x",
            "/registry/pod",
            "/registry/services/a/x",
        ]
        random.Random(7).shuffle(keys)
        for key in keys:
            await backend.create(key, key.encode())
        items, _ = await backend.list("/registry/pods/")
        expected = sorted(k for k in keys if k.startswith("/registry/pods/"))
        assert [kv.key for kv in items] == expected
        assert [kv.value for kv in items] == [k.encode() for k in expected]
        everything, _ = await backend.list("")
        assert [kv.key for kv in everything] == sorted(keys)
        assert await backend.list("/registry/nothing/") == ([], await backend.current_revision())

    async def test_list_is_consistent_at_the_current_revision(self, backend: Backend) -> None:
        await backend.create("/l/a", b"1")
        revision = await backend.update("/l/a", b"2", expected_revision=None)
        items, at = await backend.list("/l/")
        assert at == revision == await backend.current_revision()
        assert [(kv.key, kv.value, kv.mod_revision) for kv in items] == [("/l/a", b"2", revision)]

    # revisions

    async def test_every_write_increments_the_revision_by_exactly_one(self, backend: Backend) -> None:
        start = await backend.current_revision()
        got = [
            await backend.create("/r/a", b"1"),
            await backend.create("/r/b", b"1"),
            await backend.update("/r/a", b"2", expected_revision=None),
            (await backend.delete("/r/b", expected_revision=None))[0],
            await backend.create("/r/b", b"3"),
        ]
        assert got == [start + i for i in range(1, 6)]
        assert await backend.current_revision() == start + 5

    async def test_failed_writes_change_nothing_and_emit_no_events(self, backend: Backend) -> None:
        revision = await backend.create("/f/a", b"1")
        subscription = backend.subscribe()
        with pytest.raises(KeyExists):
            await backend.create("/f/a", b"2")
        with pytest.raises(KeyNotFound):
            await backend.update("/f/missing", b"2", expected_revision=None)
        with pytest.raises(RevisionMismatch):
            await backend.update("/f/a", b"2", expected_revision=revision + 100)
        with pytest.raises(RevisionMismatch):
            await backend.delete("/f/a", expected_revision=revision + 100)
        assert await backend.current_revision() == revision
        assert await backend.get("/f/a") == KeyValue("/f/a", b"1", revision, revision)
        marker = await backend.create("/f/marker", b"")
        assert [e.revision for e in await collect(subscription, marker)] == [marker]

    # compare-and-swap

    async def test_create_of_existing_key_raises_key_exists(self, backend: Backend) -> None:
        await backend.create("/c/a", b"1")
        with pytest.raises(KeyExists):
            await backend.create("/c/a", b"2")

    async def test_update_and_delete_of_missing_key_raise_key_not_found(self, backend: Backend) -> None:
        with pytest.raises(KeyNotFound):
            await backend.update("/c/missing", b"1", expected_revision=None)
        with pytest.raises(KeyNotFound):
            await backend.update("/c/missing", b"1", expected_revision=1)
        with pytest.raises(KeyNotFound):
            await backend.delete("/c/missing", expected_revision=None)

    async def test_update_with_matching_revision_keeps_create_revision(self, backend: Backend) -> None:
        created = await backend.create("/c/a", b"1")
        await backend.create("/c/other", b"1")
        updated = await backend.update("/c/a", b"2", expected_revision=created)
        assert await backend.get("/c/a") == KeyValue("/c/a", b"2", created, updated)

    async def test_update_with_stale_revision_raises_mismatch_with_current_revision(self, backend: Backend) -> None:
        created = await backend.create("/c/a", b"1")
        updated = await backend.update("/c/a", b"2", expected_revision=created)
        with pytest.raises(RevisionMismatch) as raised:
            await backend.update("/c/a", b"3", expected_revision=created)
        assert (raised.value.key, raised.value.current_revision) == ("/c/a", updated)

    async def test_update_without_expected_revision_is_unconditional(self, backend: Backend) -> None:
        await backend.create("/c/a", b"1")
        await backend.update("/c/a", b"2", expected_revision=None)
        revision = await backend.update("/c/a", b"3", expected_revision=None)
        assert await backend.get("/c/a") == KeyValue("/c/a", b"3", revision - 2, revision)

    async def test_delete_with_matching_revision_returns_revision_and_value(self, backend: Backend) -> None:
        created = await backend.create("/c/a", b"1")
        assert await backend.delete("/c/a", expected_revision=created) == (created + 1, b"1")
        assert await backend.get("/c/a") is None

    async def test_delete_with_stale_revision_raises_mismatch(self, backend: Backend) -> None:
        created = await backend.create("/c/a", b"1")
        updated = await backend.update("/c/a", b"2", expected_revision=None)
        with pytest.raises(RevisionMismatch) as raised:
            await backend.delete("/c/a", expected_revision=created)
        assert raised.value.current_revision == updated
        assert await backend.get("/c/a") is not None

    async def test_create_after_delete_starts_a_new_create_revision(self, backend: Backend) -> None:
        await backend.create("/c/a", b"1")
        await backend.delete("/c/a", expected_revision=None)
        again = await backend.create("/c/a", b"2")
        assert await backend.get("/c/a") == KeyValue("/c/a", b"2", again, again)

    async def test_concurrent_compare_and_swap_has_exactly_one_winner(self, backend: Backend) -> None:
        created = await backend.create("/c/a", b"0")

        async def attempt(i: int) -> int | RevisionMismatch:
            try:
                return await backend.update("/c/a", str(i).encode(), expected_revision=created)
            except RevisionMismatch as exc:
                return exc

        outcomes = await asyncio.gather(*(attempt(i) for i in range(20)))
        winners = [o for o in outcomes if isinstance(o, int)]
        assert winners == [created + 1]
        assert all(o.current_revision == created + 1 for o in outcomes if isinstance(o, RevisionMismatch))

    # the event log

    async def test_events_replay_since_a_revision_with_prev_value(self, backend: Backend) -> None:
        start = await backend.current_revision()
        r1 = await backend.create("/e/a", b"1")
        r2 = await backend.update("/e/a", b"2", expected_revision=r1)
        r3, _ = await backend.delete("/e/a", expected_revision=r2)
        assert await backend.events(start) == [
            Event(EventType.PUT, "/e/a", r1, b"1", None),
            Event(EventType.PUT, "/e/a", r2, b"2", b"1"),
            Event(EventType.DELETE, "/e/a", r3, None, b"2"),
        ]
        assert [e.revision for e in await backend.events(r1)] == [r2, r3]
        assert await backend.events(r3) == []

    async def test_compact_makes_older_revisions_raise_compacted(self, backend: Backend) -> None:
        revisions = [await backend.create(f"/e/{i}", b"v") for i in range(5)]
        await backend.compact(revisions[2])
        assert await backend.compacted_revision() == revisions[2]
        with pytest.raises(Compacted) as raised:
            await backend.events(revisions[1])
        assert (raised.value.requested, raised.value.compacted) == (revisions[1], revisions[2])
        assert [e.revision for e in await backend.events(revisions[2])] == revisions[3:]

    async def test_compact_keeps_current_objects_and_never_goes_back(self, backend: Backend) -> None:
        revisions = [await backend.create(f"/e/{i}", b"v") for i in range(5)]
        await backend.compact(revisions[3])
        await backend.compact(revisions[1])
        assert await backend.compacted_revision() == revisions[3]
        items, _ = await backend.list("/e/")
        assert [kv.mod_revision for kv in items] == revisions
        assert await backend.create("/e/next", b"v") == revisions[-1] + 1

    # subscribe

    async def test_subscribe_delivers_committed_events_in_order(self, backend: Backend) -> None:
        before = await backend.create("/s/before", b"0")
        subscription = backend.subscribe()
        r1 = await backend.create("/s/a", b"1")
        r2 = await backend.update("/s/a", b"2", expected_revision=r1)
        r3, _ = await backend.delete("/s/a", expected_revision=r2)
        assert await collect(subscription, r3) == [
            Event(EventType.PUT, "/s/a", r1, b"1", None),
            Event(EventType.PUT, "/s/a", r2, b"2", b"1"),
            Event(EventType.DELETE, "/s/a", r3, None, b"2"),
        ]
        assert r1 == before + 1

    async def test_subscribe_has_no_gaps_under_concurrent_writes(self, backend: Backend) -> None:
        start = await backend.current_revision()
        subscriptions = [backend.subscribe(), backend.subscribe()]

        async def writer(i: int) -> None:
            revision = await backend.create(f"/s/{i}", b"0")
            for j in range(1, 15):
                revision = await backend.update(f"/s/{i}", str(j).encode(), expected_revision=revision)
            await backend.delete(f"/s/{i}", expected_revision=revision)

        async with asyncio.TaskGroup() as tasks:
            for i in range(25):
                tasks.create_task(writer(i))
        end = await backend.current_revision()
        assert end == start + 25 * 16
        first, second = [await collect(s, end) for s in subscriptions]
        assert_contiguous(first, start)
        assert first == second == await backend.events(start)

    async def test_subscription_ends_when_the_backend_closes(self, backend: Backend) -> None:
        subscription = backend.subscribe()
        revision = await backend.create("/s/a", b"1")

        async def drain() -> list[int]:
            return [event.revision async for event in subscription]

        async with asyncio.timeout(HANG_TIMEOUT), asyncio.TaskGroup() as tasks:
            draining = tasks.create_task(drain())
            await asyncio.sleep(0)
            await backend.close()
        assert draining.result() == [revision]


class PersistentBackendContract(BackendContract):
    """`BackendContract` plus what a backend that keeps its data across restarts must do."""

    async def test_reopen_keeps_keys_values_and_revisions(
        self, backend: Backend, open_backend: Callable[[], Backend]
    ) -> None:
        created = await backend.create("/p/a", b"1")
        updated = await backend.update("/p/a", b"2", expected_revision=created)
        await backend.create("/p/b", b"3")
        before = await backend.list("/p/")
        await backend.close()
        reopened = open_backend()
        await reopened.start()
        try:
            assert await reopened.list("/p/") == before
            assert await reopened.get("/p/a") == KeyValue("/p/a", b"2", created, updated)
            assert [e.revision for e in await reopened.events(created - 1)] == [created, updated, updated + 1]
        finally:
            await reopened.close()

    async def test_revision_keeps_increasing_after_reopen_when_newest_key_was_deleted(
        self, backend: Backend, open_backend: Callable[[], Backend]
    ) -> None:
        await backend.create("/p/a", b"1")
        await backend.create("/p/b", b"1")
        deleted, _ = await backend.delete("/p/b", expected_revision=None)
        await backend.close()
        reopened = open_backend()
        await reopened.start()
        try:
            assert await reopened.current_revision() == deleted
            assert await reopened.create("/p/c", b"1") == deleted + 1
        finally:
            await reopened.close()

    async def test_revision_and_compaction_survive_reopen_after_compacting_everything(
        self, backend: Backend, open_backend: Callable[[], Backend]
    ) -> None:
        await backend.create("/p/a", b"1")
        last, _ = await backend.delete("/p/a", expected_revision=None)
        await backend.compact(last)
        await backend.close()
        for _ in range(2):  # twice: the second time, the reopened backend's own compaction is reloaded
            reopened = open_backend()
            await reopened.start()
            try:
                assert await reopened.current_revision() == last
                assert await reopened.compacted_revision() == last
                with pytest.raises(Compacted):
                    await reopened.events(last - 1)
                key = f"/p/{last}"
                revision = await reopened.create(key, b"1")
                assert revision == last + 1
                assert await reopened.events(last) == [Event(EventType.PUT, key, revision, b"1", None)]
                await reopened.compact(revision)
                last = revision
            finally:
                await reopened.close()
