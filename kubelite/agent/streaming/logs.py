"""Reading container logs for ``kubectl logs``: CRI records in, what the kubelet sends out.

The runtime writes ``<RFC3339Nano> <stdout|stderr> <F|P> <content>`` records (see
`kubelite.agent.runtime.logs`) to ``<path>`` and rotates it to ``<path>.1`` (``.2`` …).  This module

* parses records (`parse_record`) and the query (`parse_log_options`, errors as `ValueError` with the
  message the API server shows);
* formats them as the kubelet does (`LogFormatter`): ``P`` records are joined into one line, and with
  `timestamps` each line starts with the time of its first record and a space;
* selects them: `since` (records at or after a time), `tail_lines` (the last N lines), `limit_bytes`
  (output cut after N bytes).  Unlike the kubelet, which reads only the current file, the rotated
  files are read too (oldest first), so a rotation does not hide recent lines;
* follows (`follow_records`): after the existing records, new ones as they are written, across
  rotations (the old file is read to its end, then the new one from its start), until `until`
  completes (the container exited: whatever it wrote is then read and the stream ends) or the
  consumer stops.

Following polls the file every `FOLLOW_POLL_INTERVAL` seconds while it is idle (the standard library
has no inotify); the end of the container ends the wait at once.
"""

from __future__ import annotations

import asyncio
import calendar
import collections
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "FOLLOW_POLL_INTERVAL",
    "LogFormatter",
    "LogOptions",
    "LogRecord",
    "follow_records",
    "log_files",
    "parse_log_options",
    "parse_record",
    "parse_timestamp",
    "read_logs",
]

FOLLOW_POLL_INTERVAL = 0.1
READ_CHUNK = 64 * 1024
MAX_RECORD = 1024 * 1024  # a "line" longer than this without a newline is not a CRI record; it is cut

_TIMESTAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))")


def parse_timestamp(text: str) -> int:
    """RFC 3339 (up to nanoseconds, ``Z`` or an offset) as nanoseconds since the epoch."""
    match = _TIMESTAMP.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if match[9]:
        offset = (int(match[10]) * 60 + int(match[11])) * 60
        seconds -= offset if match[9] == "+" else -offset
    fraction = int((match[7] or "0").ljust(9, "0"))
    return seconds * 1_000_000_000 + fraction


@dataclass(frozen=True, slots=True)
class LogRecord:
    timestamp: str  # as written (RFC3339Nano)
    time_ns: int
    stream: str  # "stdout" | "stderr"
    partial: bool
    content: bytes


def parse_record(line: bytes) -> LogRecord | None:
    """One CRI record (without its newline); ``None`` for a malformed line (skipped, as the kubelet
    does after logging it)."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    try:
        stamp = parts[0].decode("ascii")
        time_ns = parse_timestamp(stamp)
    except (UnicodeDecodeError, ValueError):
        return None
    content = parts[3] if len(parts) == 4 else b""
    return LogRecord(stamp, time_ns, parts[1].decode(), parts[2] == b"P", content)


@dataclass(frozen=True, slots=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    tail_lines: int | None = None
    since_ns: int | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


def _flag(query: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter, parsed as Go's ``strconv.ParseBool`` (absent or empty: false)."""
    value = query.get(name, "")
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("", "0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError(f"invalid value for {name}: {value!r}")


def _int(query: Mapping[str, str], name: str) -> int | None:
    if name not in query:
        return None
    try:
        return int(query[name])
    except ValueError:
        raise ValueError(f"invalid value for {name}: {query[name]!r}") from None


def parse_log_options(query: Mapping[str, str], *, now_ns: int | None = None) -> LogOptions:
    """The ``/containerLogs`` query as `LogOptions`; `ValueError` (with the upstream wording where
    there is one) for a bad combination or value."""
    since_seconds = _int(query, "sinceSeconds")
    since_time = query.get("sinceTime")
    if since_seconds is not None and since_time:
        raise ValueError("at most one of `sinceTime` or `sinceSeconds` may be specified")
    since_ns: int | None = None
    if since_seconds is not None:
        if since_seconds < 1:
            raise ValueError("sinceSeconds: Invalid value: must be greater than 0")
        since_ns = (now_ns if now_ns is not None else time.time_ns()) - since_seconds * 1_000_000_000
    elif since_time:
        since_ns = parse_timestamp(since_time)
    tail = _int(query, "tailLines")
    if tail is not None and tail < 0:
        tail = None  # the kubelet treats a negative tail as "all"
    limit = _int(query, "limitBytes")
    if limit is not None and limit < 1:
        raise ValueError("limitBytes: Invalid value: must be greater than 0")
    return LogOptions(
        follow=_flag(query, "follow"),
        previous=_flag(query, "previous"),
        tail_lines=tail,
        since_ns=since_ns,
        timestamps=_flag(query, "timestamps"),
        limit_bytes=limit,
    )


class LogFormatter:
    """Records → output bytes.  Stateful: it knows whether the next record starts a line."""

    def __init__(self, *, timestamps: bool = False) -> None:
        self.timestamps = timestamps
        self._at_line_start = True

    def format(self, record: LogRecord) -> bytes:
        prefix = (record.timestamp.encode() + b" ") if self.timestamps and self._at_line_start else b""
        self._at_line_start = not record.partial
        return prefix + record.content + (b"" if record.partial else b"\n")


def log_files(path: Path) -> list[Path]:
    """The rotated files of `path`, oldest first, then `path` itself (if it exists)."""
    rotated: list[tuple[int, Path]] = []
    for candidate in path.parent.glob(path.name + ".*"):
        suffix = candidate.name[len(path.name) + 1 :]
        if suffix.isdigit():
            rotated.append((int(suffix), candidate))
    files = [p for _, p in sorted(rotated, reverse=True)]
    if path.exists():
        files.append(path)
    return files


class _LineReader:
    """Complete lines from an open file; keeps an unfinished last line for the next read."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self._pending = bytearray()

    def read_lines(self) -> list[bytes]:
        data = self.file.read(READ_CHUNK)
        if not data:
            return []
        self._pending += data
        *lines, rest = self._pending.split(b"\n")
        self._pending = bytearray(rest)
        if len(self._pending) > MAX_RECORD:
            lines.append(bytes(self._pending))
            self._pending.clear()
        return [bytes(line) for line in lines]

    def read_all(self) -> Iterator[bytes]:
        while lines := self.read_lines():
            yield from lines


def _records(lines: Iterable[bytes]) -> Iterator[LogRecord]:
    for line in lines:
        record = parse_record(line)
        if record is not None:
            yield record


def _tail(records: Iterable[LogRecord], lines: int) -> list[LogRecord]:
    """The records of the last `lines` lines (a line is its ``P`` records and the closing ``F``)."""
    kept: collections.deque[list[LogRecord]] = collections.deque(maxlen=lines) if lines else collections.deque()
    current: list[LogRecord] = []
    for record in records:
        current.append(record)
        if not record.partial:
            if lines:
                kept.append(current)
            current = []
    if current and lines:
        kept.append(current)
    return [record for line in kept for record in line]


@dataclass
class _Cursor:
    """Where following continues: the open current file and its reader."""

    reader: _LineReader
    inode: int


def _read_existing(path: Path, options: LogOptions) -> tuple[list[LogRecord], _Cursor | None]:
    """Blocking: the selected records already written, and (for following) the open current file
    positioned after them."""
    files = log_files(path)
    cursor: _Cursor | None = None
    opened: list[BinaryIO] = []
    try:
        readers: list[_LineReader] = []
        for file_path in files:
            try:
                handle = open(file_path, "rb")
            except FileNotFoundError:
                continue
            opened.append(handle)
            readers.append(_LineReader(handle))
        records: Iterable[LogRecord] = _records(line for reader in readers for line in reader.read_all())
        if options.since_ns is not None:
            since = options.since_ns
            records = (r for r in records if r.time_ns >= since)
        selected = _tail(records, options.tail_lines) if options.tail_lines is not None else list(records)
        if options.follow and readers and files[-1] == path and readers[-1].file.name == str(path):
            current = readers[-1]
            cursor = _Cursor(current, os.fstat(current.file.fileno()).st_ino)
            opened.remove(current.file)
        return selected, cursor
    finally:
        for handle in opened:
            handle.close()


async def follow_records(
    path: Path, *, from_end: bool = False, until: Awaitable[object] | None = None, options: LogOptions | None = None
) -> AsyncIterator[LogRecord]:
    """Records of the log at `path`: the existing ones selected by `options` (none with `from_end`),
    then, if `until` is given, new ones until `until` completes (then the rest written so far) —
    across rotations.  Without `until` it stops after the existing records."""
    options = options or LogOptions()
    cursor: _Cursor | None = None
    waiter: asyncio.Future[object] | None = asyncio.ensure_future(until) if until is not None else None
    try:
        if from_end:
            cursor = await asyncio.to_thread(_open_at_end, path)
        else:
            follow = LogOptions(follow=waiter is not None, tail_lines=options.tail_lines, since_ns=options.since_ns)
            existing, cursor = await asyncio.to_thread(_read_existing, path, follow)
            for record in existing:
                yield record
        if waiter is None:
            return
        while True:
            finished = waiter.done()
            if cursor is None:
                cursor = await asyncio.to_thread(_open_at_start, path)
            lines = await asyncio.to_thread(cursor.reader.read_lines) if cursor else []
            if lines:
                for record in _records(lines):
                    if options.since_ns is None or record.time_ns >= options.since_ns:
                        yield record
                continue
            if cursor is not None and await asyncio.to_thread(_rotated, path, cursor.inode):
                for record in _records(await asyncio.to_thread(lambda c=cursor: list(c.reader.read_all()))):
                    yield record
                cursor.reader.file.close()
                cursor = None
                continue
            if finished:
                return
            await asyncio.wait([waiter], timeout=FOLLOW_POLL_INTERVAL)
    finally:
        if waiter is not None and not waiter.done():
            waiter.cancel()
        if cursor is not None:
            cursor.reader.file.close()


def _open_at_end(path: Path) -> _Cursor | None:
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    handle.seek(0, os.SEEK_END)
    return _Cursor(_LineReader(handle), os.fstat(handle.fileno()).st_ino)


def _open_at_start(path: Path) -> _Cursor | None:
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    return _Cursor(_LineReader(handle), os.fstat(handle.fileno()).st_ino)


def _rotated(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino != inode
    except FileNotFoundError:
        return True


async def read_logs(path: Path, options: LogOptions, *, until: Awaitable[object] | None = None) -> AsyncIterator[bytes]:
    """The response body of ``GET /containerLogs``: chunks of formatted output.  With
    `options.follow`, `until` (the container's end) decides when following stops; without `follow`
    it is not awaited (and is closed if it is a coroutine)."""
    if not options.follow and until is not None:
        if asyncio.iscoroutine(until):
            until.close()
        until = None
    formatter = LogFormatter(timestamps=options.timestamps)
    remaining = options.limit_bytes
    chunk = bytearray()
    records = follow_records(path, until=until, options=options)
    try:
        async for record in records:
            chunk += formatter.format(record)
            if remaining is not None and len(chunk) >= remaining:
                yield bytes(chunk[:remaining])
                return
            if len(chunk) >= READ_CHUNK or options.follow:
                if remaining is not None:
                    remaining -= len(chunk)
                yield bytes(chunk)
                chunk.clear()
        if chunk:
            yield bytes(chunk)
    finally:
        await records.aclose()
