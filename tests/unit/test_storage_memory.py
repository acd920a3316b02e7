"""MemoryBackend: the shared backend contract, plus its history limits and subscriber overflow."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kubelite.storage.interface import Backend, Compacted, StorageError
from kubelite.storage.memory import MemoryBackend
from kubelite.testing.backend_contract import (
    BackendContract,
    check_lagging_subscriber_behind_compaction_gets_compacted,
    check_lagging_subscriber_catches_up,
)


class TestMemoryBackend(BackendContract):
    @pytest.fixture
    def open_backend(self) -> Callable[[], Backend]:
        return MemoryBackend


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_history_of_a_key_updated_forever_is_bounded_by_count() -> None:
    backend = MemoryBackend(history_max_events=50)
    revision = await backend.create("/registry/leases/kube-system/leader", b"0")
    for i in range(1000):
        revision = await backend.update(
            "/registry/leases/kube-system/leader", b"%d" % i, expected_revision=revision
        )
    compacted = await backend.compacted_revision()
    assert compacted == revision - 50
    assert len(await backend.events(compacted)) == 50
    with pytest.raises(Compacted):
        await backend.events(compacted - 1)


async def test_history_is_bounded_by_age() -> None:
    clock = _Clock(1000.0)
    backend = MemoryBackend(history_max_age_seconds=60, clock=clock)
    old = [await backend.create(f"/a/{i}", b"v") for i in range(5)]
    clock.now += 61
    young = await backend.create("/a/young", b"v")
    assert await backend.compacted_revision() == old[-1]
    assert [e.revision for e in await backend.events(old[-1])] == [young]


async def test_lagging_subscriber_catches_up_from_the_log() -> None:
    await check_lagging_subscriber_catches_up(MemoryBackend(subscriber_buffer=4), writes=100)


async def test_lagging_subscriber_behind_compaction_gets_compacted() -> None:
    await check_lagging_subscriber_behind_compaction_gets_compacted(
        MemoryBackend(subscriber_buffer=4), writes=50
    )


async def test_calls_after_close_raise_storage_error() -> None:
    backend = MemoryBackend()
    await backend.close()
    with pytest.raises(StorageError):
        await backend.create("/a", b"v")
    assert [event async for event in backend.subscribe()] == []
