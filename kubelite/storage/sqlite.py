"""SQLite `Backend`: the embedded default datastore (one file, WAL, one writer thread, group commit).

Tables (one database file plus its -wal and -shm)::

    meta(name PRIMARY KEY, value)        current_revision, compacted_revision (they survive an empty log)
    kv(key PRIMARY KEY, value, create_revision, mod_revision)                   current objects
    log(revision PRIMARY KEY, created_at, type, key, value, prev_value)         the event log

Threads and ordering:

* One writer thread owns the only read-write connection; the event loop hands it operations through a
  queue.  It takes everything queued (up to `max_batch`) and applies it in ONE transaction (group
  commit), validating each operation against the state the previous ones left, so a create of an
  existing key or a failed compare-and-swap fails alone and the rest of the batch commits.  The object
  change and its log row are written in the same transaction.
* A caller's future is resolved only after COMMIT returned.  In the same event-loop callback, before the
  futures, the batch's events go to the subscribers: a subscriber never sees an uncommitted event and
  sees batch N before batch N+1.
* Reads use a second, read-only connection in its own thread; WAL lets it read a snapshot while the
  writer commits (`list` reads the objects and the revision in one read transaction).
* The event loop never calls sqlite.  A call cancelled while waiting may or may not have been applied.

Durability: ``synchronous=FULL`` by default.  In WAL mode NORMAL does not sync the WAL at commit, so an
OS crash or power cut can lose the last acknowledged writes (the database stays consistent).  The API
server reports the revision to clients as committed, as etcd (which fsyncs) would, so the default syncs
at every commit; group commit pays for it, one fsync per batch instead of per write.  NORMAL is a knob
for benchmarks and throw-away clusters.

Staying healthy under churn (the failure modes kine/k3s users hit with SQLite):

* No ``database is locked``: one writer connection; ``busy_timeout`` on both connections for the moments
  a checkpoint and a reader meet.
* The WAL stays bounded: ``wal_autocheckpoint`` (passive, at commit), plus a ``wal_checkpoint(TRUNCATE)``
  from the writer thread every `checkpoint_interval_seconds` and whenever the -wal file is larger than
  `wal_max_bytes`; ``journal_size_limit`` (= `wal_max_bytes`) cuts the file when the WAL restarts.
  Bound: about `wal_max_bytes` plus one batch or compaction step.  A reader holding an old snapshot
  stops any checkpoint from resetting the WAL; a TRUNCATE waits for it only briefly (writes wait behind
  it) and is retried after `checkpoint_retry_seconds`; the WAL shrinks back once the reader lets go.
* The history stays bounded, also for one key updated forever (a Lease): at most `history_max_events`
  events and none older than `history_max_age_seconds` are kept.  Rows are deleted `compaction_chunk`
  at a time in their own small transactions between write batches, never in one huge DELETE: after a
  batch when a whole chunk is owed (so compaction costs one extra commit per chunk of writes, not per
  batch), and any remainder once the writer has been idle for `idle_seconds`.  Under the limits the log
  holds at most ``history_max_events + compaction_chunk + max_batch`` rows.  `compact` is logical at
  once (meta row) and physical in the same chunks.
* Space is reclaimed: ``auto_vacuum=INCREMENTAL`` is set when the file is created and
  ``incremental_vacuum`` gives free pages beyond `vacuum_keep_pages` back after compaction.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from kubelite.storage.interface import (
    Compacted,
    Event,
    EventType,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionMismatch,
    StorageError,
)
from kubelite.storage.memory import Fanout

logger = logging.getLogger(__name__)

__all__ = ["SqliteBackend", "SqliteStats", "SqliteTuning"]

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    type TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB,
    prev_value BLOB
);
INSERT OR IGNORE INTO meta (name, value) VALUES ('current_revision', 0), ('compacted_revision', 0);
"""


@dataclass(frozen=True, slots=True)
class SqliteTuning:
    """Knobs that keep the file healthy; the defaults suit a server (see the module docstring)."""

    max_batch: int = 256  # writes per group commit
    compaction_chunk: int = 200  # log rows deleted per compaction transaction (~1 MB with 2 KB objects)
    age_check_interval_seconds: float = 1.0  # how often the age limit is evaluated (by `clock`)
    idle_seconds: float = 0.05  # no write for this long: the writer also deletes less than a chunk
    wal_autocheckpoint_pages: int = 1000  # passive checkpoint at commit beyond this many WAL pages
    wal_max_bytes: int = 16 * 1024 * 1024  # TRUNCATE checkpoint beyond this; also journal_size_limit
    checkpoint_interval_seconds: float = 30.0  # periodic TRUNCATE checkpoint
    checkpoint_busy_timeout_ms: int = 100  # how long a TRUNCATE waits for readers (it holds up writes)
    checkpoint_retry_seconds: float = 1.0  # back-off after a TRUNCATE that readers blocked
    vacuum_keep_pages: int = 1024  # free pages kept for reuse; more are vacuumed after compaction
    vacuum_step_pages: int = 2048  # at most this many pages per incremental_vacuum
    busy_timeout_ms: int = 5000


@dataclass(frozen=True, slots=True)
class SqliteStats:
    """What `bench/store.py` and the health tests look at (counters are since `start`)."""

    db_bytes: int
    wal_bytes: int
    log_rows: int
    freelist_pages: int
    current_revision: int
    compacted_revision: int
    writes: int  # operations committed or rejected by the writer
    write_batches: int  # write transactions (writes / write_batches = mean group-commit size)
    compaction_steps: int  # chunked log deletions
    checkpoints: int  # TRUNCATE checkpoints


class _Kind(Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    COMPACT = "compact"
    BARRIER = "barrier"  # control: resolved once every earlier write is committed
    MAINTAIN = "maintain"  # control: housekeeping to completion
    STOP = "stop"  # control: checkpoint, close, exit


_CONTROL = frozenset({_Kind.BARRIER, _Kind.MAINTAIN, _Kind.STOP})


@dataclass(slots=True)
class _Op:
    kind: _Kind
    future: asyncio.Future[Any]
    key: str = ""
    value: bytes | None = None
    revision: int | None = None  # expected revision (update/delete) or target (compact)


class SqliteBackend:
    """`Backend` in one SQLite file; see the module docstring for threads, durability and bounds.

    `path` must be a file (two connections share it).  `clock` gives wall-clock seconds for the age limit
    (persisted with each event, so it must survive restarts; inject a fake one in tests).
    """

    def __init__(
        self,
        path: str,
        *,
        history_max_events: int = 10_000,
        history_max_age_seconds: float = 3600.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        subscriber_buffer: int = 10_000,
        tuning: SqliteTuning = SqliteTuning(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        if history_max_events < 0 or tuning.max_batch < 1 or tuning.compaction_chunk < 1:
            raise ValueError("history_max_events must be >= 0, max_batch and compaction_chunk >= 1")
        self._path = path
        self._subscriber_buffer = subscriber_buffer
        self._writer = _Writer(
            path,
            synchronous=synchronous,
            max_events=history_max_events,
            max_age=history_max_age_seconds,
            tuning=tuning,
            clock=clock,
        )
        self._busy_timeout_ms = tuning.busy_timeout_ms
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fanout: Fanout | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._rconn: sqlite3.Connection | None = None
        self._state = "new"  # new -> open -> closing -> closed
        self._closed = asyncio.Event()

    async def start(self) -> None:
        if self._state != "new":
            raise StorageError(f"backend is {self._state}")
        self._loop = asyncio.get_running_loop()
        self._state = "open"
        try:
            revision = await self._writer.start(self._loop)
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubelite-sqlite-reader")
            await self._loop.run_in_executor(self._reader, self._open_reader)
        except BaseException:
            await self._shutdown()
            raise
        self._fanout = Fanout(self.events, revision=revision, buffer=self._subscriber_buffer)
        self._writer.on_commit = self._fanout.publish

    async def close(self) -> None:
        """Flush queued writes, close the reader, checkpoint and close the writer, end subscriptions."""
        if self._state in ("closing", "closed"):
            await self._closed.wait()
            return
        if self._state == "new":
            self._state = "closed"
            self._closed.set()
            return
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._state = "closing"
        try:
            if self._writer.running:
                await self._writer.call(_Kind.BARRIER)  # every write issued before close is committed
            if self._fanout is not None:
                self._fanout.close()  # subscribers end after the events of those writes
            if self._reader is not None:
                if self._rconn is not None:
                    await asyncio.get_running_loop().run_in_executor(self._reader, self._rconn.close)
                self._reader.shutdown(wait=False)
            await self._writer.stop()
        finally:
            if self._fanout is not None:
                self._fanout.close()
            self._state = "closed"
            self._closed.set()

    # Reads: one read-only connection in its own thread.

    def _open_reader(self) -> None:
        uri = Path(self._path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA query_only = 1")
        self._rconn = conn

    async def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._state != "open" or self._reader is None:
            raise StorageError(f"backend is {self._state}")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._reader, fn, *args)
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite read failed: {exc}") from exc

    async def get(self, key: str) -> KeyValue | None:
        return await self._read(self._get, key)

    def _get(self, key: str) -> KeyValue | None:
        assert self._rconn is not None
        row = self._rconn.execute(
            "SELECT value, create_revision, mod_revision FROM kv WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else KeyValue(key, row[0], row[1], row[2])

    async def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        return await self._read(self._list, prefix)

    def _list(self, prefix: str) -> tuple[builtins.list[KeyValue], int]:
        conn = self._rconn
        assert conn is not None
        end = _prefix_end(prefix)
        columns = "SELECT key, value, create_revision, mod_revision FROM kv"
        conn.execute("BEGIN")
        try:
            if end is None:
                rows = conn.execute(f"{columns} WHERE key >= ? ORDER BY key", (prefix,)).fetchall()
            else:
                rows = conn.execute(
                    f"{columns} WHERE key >= ? AND key < ? ORDER BY key", (prefix, end)
                ).fetchall()
            revision = _meta(conn, "current_revision")
        finally:
            conn.execute("COMMIT")
        return [KeyValue(*row) for row in rows], revision

    async def current_revision(self) -> int:
        return await self._read(_meta, self._rconn, "current_revision")

    async def compacted_revision(self) -> int:
        return await self._read(_meta, self._rconn, "compacted_revision")

    async def events(self, since_revision: int) -> builtins.list[Event]:
        return await self._read(self._events, since_revision)

    def _events(self, since: int) -> builtins.list[Event]:
        conn = self._rconn
        assert conn is not None
        conn.execute("BEGIN")
        try:
            compacted = _meta(conn, "compacted_revision")
            if since < compacted:
                raise Compacted(since, compacted)
            rows = conn.execute(
                "SELECT type, key, revision, value, prev_value FROM log WHERE revision > ? ORDER BY revision",
                (since,),
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        return [Event(EventType(row[0]), *row[1:]) for row in rows]

    async def stats(self) -> SqliteStats:
        """File sizes and log size, read from disk (for benchmarks and health checks, not hot paths)."""
        return await self._read(self._stats)

    def _stats(self) -> SqliteStats:
        conn = self._rconn
        assert conn is not None
        conn.execute("BEGIN")
        try:
            log_rows = conn.execute("SELECT count(*) FROM log").fetchone()[0]
            current, compacted = _meta(conn, "current_revision"), _meta(conn, "compacted_revision")
            freelist = conn.execute("PRAGMA freelist_count").fetchone()[0]
        finally:
            conn.execute("COMMIT")
        return SqliteStats(
            db_bytes=_file_size(self._path),
            wal_bytes=_file_size(self._path + "-wal"),
            log_rows=log_rows,
            freelist_pages=freelist,
            current_revision=current,
            compacted_revision=compacted,
            writes=self._writer.writes,
            write_batches=self._writer.write_batches,
            compaction_steps=self._writer.compaction_steps,
            checkpoints=self._writer.checkpoints,
        )

    # Writes: all through the writer thread.

    async def create(self, key: str, value: bytes) -> int:
        result: int = await self._write(_Kind.CREATE, key=key, value=_as_bytes(value))
        return result

    async def update(self, key: str, value: bytes, *, expected_revision: int | None) -> int:
        result: int = await self._write(
            _Kind.UPDATE, key=key, value=_as_bytes(value), revision=expected_revision
        )
        return result

    async def delete(self, key: str, *, expected_revision: int | None) -> tuple[int, bytes]:
        result: tuple[int, bytes] = await self._write(_Kind.DELETE, key=key, revision=expected_revision)
        return result

    async def compact(self, revision: int) -> None:
        """Logical at once (`events` before `revision` raise `Compacted`); rows go in chunks later."""
        await self._write(_Kind.COMPACT, revision=revision)

    async def maintain(self) -> None:
        """Do the writer's housekeeping now, to completion: apply the history limits, delete compacted
        rows, vacuum, TRUNCATE-checkpoint.  The writer does all of it by itself over time; this gives
        tests and operators a point where it is done."""
        await self._write(_Kind.MAINTAIN)

    async def _write(self, kind: _Kind, **fields: Any) -> Any:
        if self._state != "open":
            raise StorageError(f"backend is {self._state}")
        return await self._writer.call(kind, **fields)

    def subscribe(self) -> AsyncIterator[Event]:
        if self._fanout is None:
            raise StorageError("backend is not started")
        return self._fanout.subscribe()


class _Writer:
    """The single writer: a thread with the read-write connection, fed by a queue from the event loop.

    Everything prefixed `_t_` runs in the writer thread only; the counters below are owned by it.
    """

    def __init__(
        self,
        path: str,
        *,
        synchronous: str,
        max_events: int,
        max_age: float,
        tuning: SqliteTuning,
        clock: Callable[[], float],
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self._max_events = max_events
        self._max_age = max_age
        self._tuning = tuning
        self._clock = clock
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_commit: Callable[[list[Event]], None] = lambda events: None
        self.running = False
        self._exited = False  # set by the thread as it stops taking ops
        # Counters, written by the writer thread only (read racily for stats).
        self.writes = 0
        self.write_batches = 0
        self.compaction_steps = 0
        self.checkpoints = 0
        # Writer-thread state.
        self._conn: sqlite3.Connection | None = None
        self._revision = 0
        self._compacted = 0  # logical: events <= this are gone for readers
        self._oldest = 1  # physical: the lowest revision still in the log (revision + 1 if empty)
        self._age_target = 0
        self._next_age_check = 0.0
        self._next_checkpoint = 0.0
        self._paused_until = 0.0  # housekeeping backs off after a failure
        self._checkpoint_retry_at = 0.0  # and a TRUNCATE checkpoint after readers blocked it

    async def start(self, loop: asyncio.AbstractEventLoop) -> int:
        """Open the database in the writer thread; returns the current revision."""
        self._loop = loop
        ready: asyncio.Future[int] = loop.create_future()
        self._thread = threading.Thread(
            target=self._t_main, args=(ready,), name="kubelite-sqlite-writer", daemon=True
        )
        self._thread.start()
        self.running = True
        try:
            return await ready
        except BaseException:
            self.running = False
            raise

    async def call(self, kind: _Kind, **fields: Any) -> Any:
        assert self._loop is not None
        future = self._loop.create_future()
        self._queue.put(_Op(kind, future, **fields))
        if self._exited and not future.done():  # the thread may have drained the queue before our put
            future.set_exception(StorageError("sqlite writer has stopped"))
        return await future

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        await self.call(_Kind.STOP)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def _resolve(self, future: asyncio.Future[Any], result: Any) -> None:
        """Called in the thread: resolve `future` on the loop."""
        self._deliver([(future, result)], [])

    def _deliver(self, results: list[tuple[asyncio.Future[Any], Any]], events: list[Event]) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._on_loop_deliver, results, events)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            logger.warning("sqlite writer finished after its event loop closed")

    def _on_loop_deliver(self, results: list[tuple[asyncio.Future[Any], Any]], events: list[Event]) -> None:
        if events:
            self.on_commit(events)
        for future, result in results:
            if future.done():  # the caller was cancelled
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _t_main(self, ready: asyncio.Future[int]) -> None:
        try:
            self._t_open()
        except Exception as exc:
            self._resolve(ready, StorageError(f"cannot open {self._path}: {exc}"))
            if self._conn is not None:
                self._conn.close()
            return
        self._resolve(ready, self._revision)
        try:
            self._t_loop()
        except Exception:
            logger.exception("sqlite writer failed")
        finally:
            self._t_close()

    def _t_loop(self) -> None:
        carry: _Op | None = None
        while True:
            op, carry = carry, None
            if op is None:
                op = self._t_next_op()
            if op is None:  # idle: one chunk of compaction debt or housekeeping
                self._t_after_batch(0, idle=True)
                continue
            if op.kind is _Kind.STOP:
                self._resolve(op.future, None)
                return
            if op.kind is _Kind.BARRIER:
                self._resolve(op.future, None)
                continue
            if op.kind is _Kind.MAINTAIN:
                self._t_maintain(op)
                continue
            batch = [op]
            while len(batch) < self._tuning.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt.kind in _CONTROL:
                    carry = nxt
                    break
                batch.append(nxt)
            self._t_commit(batch)
            self._t_after_batch(len(batch), idle=False)

    def _t_next_op(self) -> _Op | None:
        """The next queued op, or None once idle: at once if a chunk of compaction is owed, after
        `idle_seconds` if less is (under load the queue is empty between batches, which is not idle),
        else at the next housekeeping time."""
        debt = self._t_debt() if time.monotonic() >= self._paused_until else 0
        if debt >= self._tuning.compaction_chunk:
            timeout = 0.0
        elif debt > 0:
            timeout = self._tuning.idle_seconds
        else:
            timeout = max(
                0.0,
                min(self._next_checkpoint - time.monotonic(), self._tuning.age_check_interval_seconds),
            )
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _t_open(self) -> None:
        t = self._tuning
        conn = self._conn = sqlite3.connect(self._path, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(t.busy_timeout_ms)}")
        new = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        if new:  # must precede the first table; it cannot be switched later without a VACUUM
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise StorageError("cannot switch the database to WAL mode")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute(f"PRAGMA wal_autocheckpoint = {int(t.wal_autocheckpoint_pages)}")
        conn.execute(f"PRAGMA journal_size_limit = {int(t.wal_max_bytes)}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise StorageError(
                    f"database schema {version} is newer than this kubelite ({_SCHEMA_VERSION})"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            logger.warning("database was created without auto_vacuum=INCREMENTAL; space is not reclaimed")
        newest = conn.execute("SELECT max(revision), min(revision) FROM log").fetchone()
        self._revision = max(_meta(conn, "current_revision"), newest[0] or 0)
        self._compacted = _meta(conn, "compacted_revision")
        self._oldest = newest[1] if newest[1] is not None else self._revision + 1
        self._next_checkpoint = time.monotonic() + t.checkpoint_interval_seconds

    def _t_close(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            self._t_checkpoint()
            conn.execute("PRAGMA optimize")
        except sqlite3.Error:
            logger.exception("sqlite final checkpoint failed")
        finally:
            conn.close()
            self._conn = None
            self._exited = True
            while True:  # nothing should be queued; fail what is, rather than leave callers hanging
                try:
                    op = self._queue.get_nowait()
                except queue.Empty:
                    break
                self._resolve(op.future, StorageError("backend is closed"))

    def _t_commit(self, batch: list[_Op]) -> None:
        """Apply `batch` in one transaction; each op's outcome goes to its own future after COMMIT."""
        conn = self._conn
        assert conn is not None
        revision, compacted = self._revision, self._compacted
        outcomes: list[Any] = []
        events: list[Event] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            now = self._clock()
            for op in batch:
                try:
                    outcome, event = self._t_apply(conn, op, now)
                except (KeyExists, KeyNotFound, RevisionMismatch) as exc:
                    outcome, event = exc, None
                outcomes.append(outcome)
                if event is not None:
                    events.append(event)
            if self._revision != revision:
                _set_meta(conn, "current_revision", self._revision)
            if self._compacted != compacted:
                _set_meta(conn, "compacted_revision", self._compacted)
            conn.execute("COMMIT")
            self.writes += len(batch)
            self.write_batches += 1
        except Exception as exc:  # the whole batch failed (disk full, I/O error): nothing was applied
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            self._revision, self._compacted = revision, compacted
            outcomes = [_write_failed(exc) for _ in batch]
            events = []
        self._deliver([(op.future, outcome) for op, outcome in zip(batch, outcomes, strict=True)], events)

    def _t_apply(self, conn: sqlite3.Connection, op: _Op, now: float) -> tuple[Any, Event | None]:
        if op.kind is _Kind.COMPACT:
            assert op.revision is not None
            self._compacted = max(self._compacted, min(op.revision, self._revision))
            return None, None
        key, value = op.key, op.value
        revision = self._revision + 1
        if op.kind is _Kind.CREATE:
            if conn.execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone() is not None:
                raise KeyExists(key)
            conn.execute("INSERT INTO kv VALUES (?, ?, ?, ?)", (key, value, revision, revision))
            event = Event(EventType.PUT, key, revision, value, None)
            outcome: Any = revision
        else:
            row = conn.execute("SELECT value, mod_revision FROM kv WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise KeyNotFound(key)
            if op.revision is not None and row[1] != op.revision:
                raise RevisionMismatch(key, row[1])
            if op.kind is _Kind.UPDATE:
                conn.execute(
                    "UPDATE kv SET value = ?, mod_revision = ? WHERE key = ?", (value, revision, key)
                )
                event = Event(EventType.PUT, key, revision, value, row[0])
                outcome = revision
            else:
                conn.execute("DELETE FROM kv WHERE key = ?", (key,))
                event = Event(EventType.DELETE, key, revision, None, row[0])
                outcome = (revision, row[0])
        conn.execute(
            "INSERT INTO log VALUES (?, ?, ?, ?, ?, ?)",
            (revision, now, event.type.value, key, event.value, event.prev_value),
        )
        self._revision = revision
        return outcome, event

    # Housekeeping, between batches.

    def _t_target(self) -> int:
        """The revision the log should be compacted to under the history limits."""
        return min(self._revision, max(self._compacted, self._revision - self._max_events, self._age_target))

    def _t_debt(self) -> int:
        """Rows below the target still in the log."""
        return max(0, self._t_target() - self._oldest + 1)

    def _t_after_batch(self, batch_size: int, *, idle: bool) -> None:
        """Keep the log, the WAL and the file bounded; cheap when there is nothing to do.

        After a batch of n writes, up to 1 + n // compaction_chunk chunks are deleted if at least a chunk is
        owed, which keeps up with the count limit under any load; when idle, one chunk of any debt.
        """
        if time.monotonic() < self._paused_until:
            return
        try:
            if self._clock() >= self._next_age_check:
                self._t_check_age()
            chunk = self._tuning.compaction_chunk
            deleted = False
            for _ in range(1 + batch_size // chunk):
                debt = self._t_debt()
                if debt == 0 or (debt < chunk and not idle):
                    break
                self._t_compact_step()
                deleted = True
            if deleted:
                self._t_vacuum()
            now = time.monotonic()
            if now >= self._next_checkpoint or (
                now >= self._checkpoint_retry_at
                and _file_size(self._path + "-wal") > self._tuning.wal_max_bytes
            ):
                self._t_checkpoint()
        except Exception:  # a supervision point: writes go on, housekeeping is retried
            logger.exception("sqlite housekeeping failed; retrying in a second")
            self._paused_until = time.monotonic() + 1.0

    def _t_maintain(self, op: _Op) -> None:
        try:
            while not self._t_check_age():
                pass
            while self._t_debt() > 0:
                self._t_compact_step()
            while self._t_vacuum():
                pass
            self._t_checkpoint()
            outcome: Any = None
        except Exception as exc:
            outcome = _write_failed(exc)
        self._resolve(op.future, outcome)

    def _t_check_age(self) -> bool:
        """Move the age target past events older than the limit, scanning at most one chunk of rows.

        Events are in revision order and, but for wall-clock steps, in time order: the first young event
        ends the old prefix.  Returns False when the whole chunk was old (check again right away).
        """
        conn = self._conn
        assert conn is not None
        now = self._clock()
        cutoff = now - self._max_age
        start = max(self._compacted, self._age_target, self._oldest - 1)
        limit = self._tuning.compaction_chunk
        rows = conn.execute(
            "SELECT revision, created_at FROM log WHERE revision > ? ORDER BY revision LIMIT ?",
            (start, limit),
        ).fetchall()
        done = len(rows) < limit
        for revision, created_at in rows:
            if created_at >= cutoff:
                done = True
                break
            self._age_target = revision
        self._next_age_check = now + self._tuning.age_check_interval_seconds if done else now
        return done

    def _t_compact_step(self) -> None:
        """Delete at most one chunk of log rows below the target, in its own transaction."""
        conn = self._conn
        assert conn is not None
        upto = min(self._t_target(), self._oldest + self._tuning.compaction_chunk - 1)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM log WHERE revision <= ?", (upto,))
            if upto > self._compacted:
                _set_meta(conn, "compacted_revision", upto)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        self._compacted = max(self._compacted, upto)
        self._oldest = upto + 1
        self.compaction_steps += 1
        logger.debug("compacted event log", extra={"compacted_revision": self._compacted})

    def _t_vacuum(self) -> bool:
        """Give free pages beyond `vacuum_keep_pages` back to the file system; True if it did some."""
        conn = self._conn
        assert conn is not None
        excess = conn.execute("PRAGMA freelist_count").fetchone()[0] - self._tuning.vacuum_keep_pages
        if excess <= 0:
            return False
        conn.execute(f"PRAGMA incremental_vacuum({min(excess, self._tuning.vacuum_step_pages)})").fetchall()
        return True

    def _t_checkpoint(self) -> None:
        """TRUNCATE-checkpoint the WAL.  It waits for readers on older snapshots, and writes wait for it,
        so the wait is short and a blocked attempt is retried after a back-off, not after every batch."""
        conn = self._conn
        assert conn is not None
        t = self._tuning
        conn.execute(f"PRAGMA busy_timeout = {int(t.checkpoint_busy_timeout_ms)}")
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(t.busy_timeout_ms)}")
        now = time.monotonic()
        self.checkpoints += 1
        self._next_checkpoint = now + t.checkpoint_interval_seconds
        if busy:
            logger.debug("wal checkpoint blocked by a reader; retrying later")
            self._checkpoint_retry_at = now + t.checkpoint_retry_seconds


def _meta(conn: sqlite3.Connection | None, name: str) -> int:
    assert conn is not None
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def _set_meta(conn: sqlite3.Connection, name: str, value: int) -> None:
    conn.execute("UPDATE meta SET value = ? WHERE name = ?", (value, name))


def _write_failed(exc: Exception) -> StorageError:
    error = StorageError(f"sqlite write failed: {exc}")
    error.__cause__ = exc
    return error


def _as_bytes(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"value must be bytes, not {type(value).__name__}")
    return bytes(value)


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _prefix_end(prefix: str) -> str | None:
    """The smallest string above every string that starts with `prefix` (None: no upper bound).

    SQLite compares TEXT as UTF-8 bytes, which orders like code points, so incrementing the last code
    point (skipping the surrogate range, which UTF-8 cannot encode) gives the exclusive upper bound.
    """
    chars = list(prefix)
    while chars:
        point = ord(chars.pop()) + 1
        if point <= 0x10FFFF:
            if 0xD800 <= point <= 0xDFFF:
                point = 0xE000
            return "".join(chars) + chr(point)
    return None
