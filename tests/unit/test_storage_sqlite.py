"""SqliteBackend: the shared backend contract, plus what keeps the file healthy under churn.

Bounds asserted here (see the SqliteBackend module docstring for where they come from):

* the -wal file never exceeds `_WAL_BOUND` (1.5 MiB) while 4000 writes of 1-2 KB (~6 MB of values,
  each written to the object row, its log row and the next log row's prev_value) go through it, with
  wal_max_bytes=1 MiB and wal_autocheckpoint=100 pages: passive checkpoints keep it near 100 pages,
  a TRUNCATE follows any batch that leaves it above 1 MiB, and a batch (<= 20 writes here, ~20 KB of
  pages each) can add at most ~0.4 MiB on top;
* once a reader that pinned an old snapshot (so no checkpoint could reset the WAL) lets go, the next
  batch brings the WAL back under the bound;
* the event log of a key renewed forever holds at most history_max_events + compaction_chunk rows
  when writes come one at a time, and exactly history_max_events after `maintain`.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from kubelite.storage.interface import (
    Backend,
    Compacted,
    EventType,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    StorageError,
)
from kubelite.storage.sqlite import SqliteBackend, SqliteTuning, _prefix_end
from kubelite.testing.backend_contract import (
    PersistentBackendContract,
    check_lagging_subscriber_behind_compaction_gets_compacted,
    check_lagging_subscriber_catches_up,
    collect,
)

_WAL_MAX = 1024 * 1024
_WAL_BOUND = _WAL_MAX + 512 * 1024


class TestSqliteBackend(PersistentBackendContract):
    @pytest.fixture
    def open_backend(self, tmp_path: Path) -> Callable[[], Backend]:
        path = str(tmp_path / "state.db")
        return lambda: SqliteBackend(path)


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _size(path: str) -> int:
    """The file's size; 0 if it does not exist (SQLite removes the -wal file on a clean close)."""
    return os.path.getsize(path) if os.path.exists(path) else 0


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "state.db")


async def _started(backend: SqliteBackend) -> SqliteBackend:
    await backend.start()
    return backend


async def test_new_database_uses_wal_and_incremental_auto_vacuum(db_path: str) -> None:
    backend = await _started(SqliteBackend(db_path))
    await backend.create("/a", b"v")
    probe = sqlite3.connect(db_path)
    try:
        assert probe.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert probe.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL
    finally:
        probe.close()
        await backend.close()
    assert _size(db_path + "-wal") == 0


async def test_wal_stays_bounded_under_churn(db_path: str) -> None:
    tuning = SqliteTuning(wal_autocheckpoint_pages=100, wal_max_bytes=_WAL_MAX)
    backend = await _started(SqliteBackend(db_path, history_max_events=500, tuning=tuning))
    rng = random.Random(1)
    written = 0
    wal_max = 0

    async def churn(worker: int) -> None:
        nonlocal written, wal_max
        revisions: dict[str, int] = {}
        for i in range(200):
            key = f"/registry/configmaps/ns/{worker}-{i % 10}"
            value = rng.randbytes(rng.randrange(1024, 2048))
            if key not in revisions:
                revisions[key] = await backend.create(key, value)
            elif i % 7 == 0:
                await backend.delete(key, expected_revision=revisions.pop(key))
            else:
                revisions[key] = await backend.update(key, value, expected_revision=revisions[key])
            written += len(value)
            wal_max = max(wal_max, _size(db_path + "-wal"))

    async with asyncio.TaskGroup() as tasks:
        for worker in range(20):
            tasks.create_task(churn(worker))
    stats = await backend.stats()
    await backend.close()
    assert stats.current_revision == 4000
    assert written > 3 * _WAL_BOUND  # each value goes through the WAL 2-3 times (object, log, prev_value)
    assert wal_max <= _WAL_BOUND
    assert stats.log_rows <= 500 + tuning.compaction_chunk + tuning.max_batch
    assert _size(db_path) < 8 * 1024 * 1024
    assert _size(db_path + "-wal") == 0


async def test_wal_shrinks_back_once_a_reader_pinning_it_lets_go(db_path: str) -> None:
    tuning = SqliteTuning(wal_autocheckpoint_pages=100, wal_max_bytes=_WAL_MAX)
    backend = await _started(SqliteBackend(db_path, tuning=tuning))
    reader = sqlite3.connect(db_path, isolation_level=None)
    try:
        revision = await backend.create("/k", b"0")
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM kv").fetchone()  # pins this snapshot: the WAL cannot reset
        for _ in range(600):
            revision = await backend.update("/k", os.urandom(2048), expected_revision=revision)
        pinned = _size(db_path + "-wal")
        reader.execute("COMMIT")
        # The next commit's checkpoint completes; the one after restarts the WAL, cut to wal_max_bytes.
        for i in range(2):
            revision = await backend.update("/k", b"%d" % i, expected_revision=revision)
        assert pinned > _WAL_BOUND  # without the TRUNCATE it would stay this big
        assert _size(db_path + "-wal") <= _WAL_BOUND
    finally:
        reader.close()
        await backend.close()


async def test_history_of_a_lease_renewed_forever_is_compacted_by_count(db_path: str) -> None:
    tuning = SqliteTuning(compaction_chunk=20)
    backend = await _started(SqliteBackend(db_path, history_max_events=100, tuning=tuning))
    key = "/registry/leases/kube-node-lease/node-1"
    try:
        revision = await backend.create(key, b"0")
        for i in range(1500):
            revision = await backend.update(key, b"renew %d" % i, expected_revision=revision)
            if i % 100 == 0:
                assert (await backend.stats()).log_rows <= 100 + 20
        stats = await backend.stats()
        assert stats.log_rows <= 100 + 20
        assert revision - 100 - 20 <= stats.compacted_revision <= revision - 100
        await backend.maintain()
        stats = await backend.stats()
        assert (stats.log_rows, stats.compacted_revision) == (100, revision - 100)
        assert len(await backend.events(revision - 100)) == 100
        with pytest.raises(Compacted):
            await backend.events(revision - 101)
    finally:
        await backend.close()


async def test_history_is_compacted_by_age(db_path: str) -> None:
    clock = _Clock(1_000_000.0)
    backend = await _started(SqliteBackend(db_path, history_max_age_seconds=60, clock=clock))
    try:
        old = [await backend.create(f"/a/{i}", b"v") for i in range(30)]
        clock.now += 61
        young = [await backend.create(f"/b/{i}", b"v") for i in range(5)]
        await backend.maintain()
        assert await backend.compacted_revision() == old[-1]
        assert [e.revision for e in await backend.events(old[-1])] == young
        assert (await backend.stats()).log_rows == 5
    finally:
        await backend.close()


async def test_failed_writes_do_not_fail_the_rest_of_their_batch(db_path: str) -> None:
    backend = await _started(SqliteBackend(db_path))
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        a = await backend.create("/b/a", b"a")
        start = await backend.stats()
        # Hold the write lock so the writer waits (busy_timeout) and everything below queues into a batch.
        blocker.execute("BEGIN IMMEDIATE")
        calls = [
            backend.create("/b/first", b"1"),
            backend.create("/b/x", b"x"),
            backend.create("/b/a", b"again"),  # KeyExists
            backend.update("/b/x", b"x2", expected_revision=None),  # sees the create just before it
            backend.update("/b/a", b"a2", expected_revision=a + 100),  # RevisionMismatch
            backend.delete("/b/missing", expected_revision=None),  # KeyNotFound
            backend.create("/b/x", b"x3"),  # KeyExists: created earlier in this batch
            backend.delete("/b/a", expected_revision=a),
        ]
        async with asyncio.TaskGroup() as tasks:
            pending = [tasks.create_task(_outcome(call)) for call in calls]
            await asyncio.sleep(0)
            blocker.execute("COMMIT")
        outcomes = [task.result() for task in pending]
        assert outcomes[:2] == [a + 1, a + 2]
        assert isinstance(outcomes[2], KeyExists)
        assert outcomes[3] == a + 3
        assert isinstance(outcomes[4], RevisionMismatch) and outcomes[4].current_revision == a
        assert isinstance(outcomes[5], KeyNotFound)
        assert isinstance(outcomes[6], KeyExists)
        assert outcomes[7] == (a + 4, b"a")
        events = await backend.events(a)
        assert [(e.type, e.key, e.revision) for e in events] == [
            (EventType.PUT, "/b/first", a + 1),
            (EventType.PUT, "/b/x", a + 2),
            (EventType.PUT, "/b/x", a + 3),
            (EventType.DELETE, "/b/a", a + 4),
        ]
        stats = await backend.stats()
        assert stats.writes - start.writes == len(calls)
        assert stats.write_batches - start.write_batches <= 2  # the first call alone, the rest together
    finally:
        blocker.close()
        await backend.close()


async def _outcome(call: object) -> object:
    try:
        return await call  # type: ignore[misc]
    except (KeyExists, KeyNotFound, RevisionMismatch) as exc:
        return exc


async def test_reopen_after_compaction_keeps_revisions_increasing(db_path: str) -> None:
    backend = await _started(SqliteBackend(db_path, history_max_events=10))
    revisions = [await backend.create(f"/k/{i}", b"v") for i in range(50)]
    for i in range(45, 50):  # the newest objects are gone: only the meta row remembers revision 55
        await backend.delete(f"/k/{i}", expected_revision=revisions[i])
    last = await backend.current_revision()
    await backend.compact(last)
    await backend.maintain()
    assert (await backend.stats()).log_rows == 0
    await backend.close()

    backend = await _started(SqliteBackend(db_path, history_max_events=10))
    try:
        assert (await backend.current_revision(), await backend.compacted_revision()) == (last, last)
        items, at = await backend.list("/k/")
        assert at == last and sorted(kv.mod_revision for kv in items) == revisions[:45]
        assert await backend.create("/k/new", b"v") == last + 1
    finally:
        await backend.close()


async def test_compaction_is_logical_at_once_and_deletes_rows_in_chunks(db_path: str) -> None:
    tuning = SqliteTuning(compaction_chunk=100)
    backend = await _started(SqliteBackend(db_path, tuning=tuning))
    try:
        tasks = [backend.create(f"/k/{i}", b"v" * 100) for i in range(2000)]
        await asyncio.gather(*tasks)
        before = await backend.stats()
        await backend.compact(2000)
        with pytest.raises(Compacted):
            await backend.events(1999)
        await backend.maintain()
        after = await backend.stats()
        assert after.log_rows == 0
        assert after.compaction_steps - before.compaction_steps >= 2000 // 100
        assert len((await backend.list("/k/"))[0]) == 2000
    finally:
        await backend.close()


async def test_space_is_reclaimed_after_compaction(db_path: str) -> None:
    tuning = SqliteTuning(vacuum_keep_pages=16)
    backend = await _started(SqliteBackend(db_path, tuning=tuning))
    try:
        revision = await backend.create("/big", b"0")
        for _ in range(300):
            revision = await backend.update("/big", os.urandom(8192), expected_revision=revision)
        await backend.maintain()
        full = await backend.stats()
        await backend.compact(revision)
        await backend.maintain()
        reclaimed = await backend.stats()
        assert reclaimed.freelist_pages <= 16
        assert reclaimed.db_bytes < full.db_bytes / 4
    finally:
        await backend.close()


async def test_close_flushes_writes_already_issued(db_path: str) -> None:
    backend = await _started(SqliteBackend(db_path))
    async with asyncio.TaskGroup() as tasks:
        writes = [tasks.create_task(backend.create(f"/k/{i:03d}", b"v")) for i in range(100)]
        await asyncio.sleep(0)
        await backend.close()
    assert sorted(task.result() for task in writes) == list(range(1, 101))
    with pytest.raises(StorageError):
        await backend.create("/k/late", b"v")
    backend = await _started(SqliteBackend(db_path))
    try:
        assert len((await backend.list("/k/"))[0]) == 100
    finally:
        await backend.close()


async def test_subscriber_sees_a_batch_only_after_it_committed(db_path: str) -> None:
    backend = await _started(SqliteBackend(db_path))
    try:
        subscription = backend.subscribe()
        revisions = await asyncio.gather(*(backend.create(f"/k/{i}", b"v") for i in range(50)))
        for event in await collect(subscription, max(revisions)):
            assert await backend.get(event.key) is not None  # readable by then: it was committed
    finally:
        await backend.close()


async def test_lagging_subscriber_catches_up_from_the_log(db_path: str) -> None:
    backend = await _started(SqliteBackend(db_path, subscriber_buffer=4))
    try:
        await check_lagging_subscriber_catches_up(backend, writes=100)
    finally:
        await backend.close()


async def test_lagging_subscriber_behind_compaction_gets_compacted(db_path: str) -> None:
    backend = await _started(SqliteBackend(db_path, subscriber_buffer=4))
    try:
        await check_lagging_subscriber_behind_compaction_gets_compacted(backend, writes=50)
    finally:
        await backend.close()


async def test_value_that_is_not_bytes_is_rejected_before_the_writer(db_path: str) -> None:
    backend = await _started(SqliteBackend(db_path))
    try:
        with pytest.raises(TypeError):
            await backend.create("/k", "text")  # type: ignore[arg-type]
        assert await backend.current_revision() == 0
    finally:
        await backend.close()


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        ("", None),
        ("/registry/pods/", "/registry/pods0"),
        ("a\U0010ffff", "b"),
        ("\U0010ffff", None),
        ("a\ud7ff", "a\ue000"),
    ],
)
def test_prefix_end_is_the_exclusive_upper_bound(prefix: str, end: str | None) -> None:
    assert _prefix_end(prefix) == end
