"""The watch cache over real backends: reads, revision waits, watch replay, 410, overflow, restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from kubelite.storage.cache import WatchCache, WatchClosed
from kubelite.storage.interface import Compacted
from kubelite.storage.memory import MemoryBackend
from kubelite.storage.sqlite import SqliteBackend

PREFIX = "/registry/core/configmaps/"


def _cm(name: str, value: str = "1") -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}})


async def _started(backend: MemoryBackend | SqliteBackend) -> WatchCache:
    await backend.start()
    cache = WatchCache(backend, history_size=100, watcher_queue=5)
    await cache.start()
    return cache


async def test_reads_reflect_writes_with_resource_version() -> None:
    backend = MemoryBackend()
    cache = await _started(backend)
    rev = await backend.create(PREFIX + "default/a", _cm("a"))
    await cache.wait_for_revision(rev)
    entry = cache.get(PREFIX + "default/a")
    assert entry is not None
    assert entry.obj["metadata"]["resourceVersion"] == str(rev)
    assert orjson.loads(entry.data) == entry.obj
    await backend.create(PREFIX + "other/b", _cm("b"))
    rev = await backend.create(PREFIX + "default/c", _cm("c"))
    await cache.wait_for_revision(rev)
    assert [e.key for e in cache.list(PREFIX)] == [PREFIX + "default/a", PREFIX + "default/c", PREFIX + "other/b"]
    assert [e.key for e in cache.list(PREFIX + "default/")] == [PREFIX + "default/a", PREFIX + "default/c"]
    await cache.close()
    await backend.close()


async def test_watch_from_revision_replays_then_follows() -> None:
    backend = MemoryBackend()
    cache = await _started(backend)
    start = await backend.create(PREFIX + "default/a", _cm("a"))
    await backend.create(PREFIX + "default/b", _cm("b"))
    rev = await backend.update(PREFIX + "default/b", _cm("b", "2"), expected_revision=None)
    await cache.wait_for_revision(rev)
    watcher = cache.watch(PREFIX + "default/", start)
    rev, _ = await backend.delete(PREFIX + "default/a", expected_revision=None)
    seen = [await watcher.next() for _ in range(3)]
    assert [(e.type, e.key.rsplit("/", 1)[1]) for e in seen] == [("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "a")]
    assert seen[2].entry.obj["metadata"]["resourceVersion"] == str(rev)
    assert b'"type":"DELETED"' in seen[2].encoded("DELETED")
    watcher.close()
    with pytest.raises(WatchClosed):
        await watcher.next()
    await cache.close()
    await backend.close()


async def test_watch_from_before_the_window_is_compacted() -> None:
    backend = MemoryBackend()
    await backend.start()
    cache = WatchCache(backend, history_size=3)
    await cache.start()
    for i in range(6):
        rev = await backend.create(f"{PREFIX}default/x{i}", _cm(f"x{i}"))
    await cache.wait_for_revision(rev)
    with pytest.raises(Compacted):
        cache.watch(PREFIX, 1)
    cache.watch(PREFIX, rev - 2).close()
    await cache.close()
    await backend.close()


async def test_slow_watcher_is_closed_instead_of_buffering_forever() -> None:
    backend = MemoryBackend()
    cache = await _started(backend)
    watcher = cache.watch(PREFIX, None)
    for i in range(10):
        rev = await backend.create(f"{PREFIX}default/s{i}", _cm(f"s{i}"))
    await cache.wait_for_revision(rev)
    assert watcher.overflowed
    with pytest.raises(WatchClosed):
        while True:
            await asyncio.wait_for(watcher.next(), 1)
    await cache.close()
    await backend.close()


async def test_history_survives_restart_of_a_sqlite_backend(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    backend = SqliteBackend(path)
    cache = await _started(backend)
    first = await backend.create(PREFIX + "default/a", _cm("a"))
    await backend.create(PREFIX + "default/b", _cm("b"))
    await backend.delete(PREFIX + "default/b", expected_revision=None)
    await cache.close()
    await backend.close()

    backend = SqliteBackend(path)
    cache = await _started(backend)
    entry = cache.get(PREFIX + "default/a")
    assert entry is not None and entry.revision == first
    watcher = cache.watch(PREFIX, first)
    seen = [await watcher.next() for _ in range(2)]
    assert [(e.type, e.key.rsplit("/", 1)[1]) for e in seen] == [("ADDED", "b"), ("DELETED", "b")]
    watcher.close()
    await cache.close()
    await backend.close()
