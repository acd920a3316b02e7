"""Container logs in the CRI format, written by the runtime, with size-based rotation.

One record per line: ``<RFC3339Nano timestamp> <stream> <tag> <content>\\n`` where stream is ``stdout``
or ``stderr`` and tag is ``F`` (a full line) or ``P`` (a partial line: the content continues in the
stream's next record).  Lines longer than `MAX_LINE` bytes are split into ``P`` records, as containerd
does; so is a last line without a newline that is still open when the stream is flushed.  This is the
format the kubelet reads (``kubectl logs``), so the containerd and process runtimes produce the same
files.

`CriFramer` turns a byte stream into records (pure, one per stream); `CriLogWriter` appends records to
the file and rotates it: once writing a batch would take the file past `max_bytes`, the file becomes
``<path>.1`` (the older ``.1`` moves to ``.2`` … up to `max_files`), and a new file starts.  A record is
never split across files.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

__all__ = ["DEFAULT_MAX_BYTES", "MAX_LINE", "CriFramer", "CriLogWriter", "format_timestamp"]

MAX_LINE = 16 * 1024
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


def format_timestamp(ns: int) -> str:
    """UTC RFC 3339 with nanoseconds, trailing zeros trimmed (Go's ``time.RFC3339Nano``)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


class CriFramer:
    """Cuts one stream into CRI records.  Not thread-safe; one per stream."""

    def __init__(self, stream: str, *, max_line: int = MAX_LINE) -> None:
        self._prefix = f" {stream} ".encode()
        self._max_line = max_line
        self._pending = bytearray()

    def _record(self, timestamp: bytes, tag: bytes, content: bytes | bytearray) -> bytes:
        return b"".join((timestamp, self._prefix, tag, b" ", content, b"\n"))

    def feed(self, data: bytes, timestamp: str) -> list[bytes]:
        """Records for the complete lines (and over-long pieces) in `data`; the rest is kept."""
        stamp = timestamp.encode()
        records: list[bytes] = []
        self._pending += data
        start = 0
        pending = self._pending
        while True:
            end = pending.find(b"\n", start)
            if end < 0:
                break
            while end - start > self._max_line:
                records.append(self._record(stamp, b"P", pending[start : start + self._max_line]))
                start += self._max_line
            records.append(self._record(stamp, b"F", pending[start:end]))
            start = end + 1
        while len(pending) - start >= self._max_line:
            records.append(self._record(stamp, b"P", pending[start : start + self._max_line]))
            start += self._max_line
        del pending[:start]
        return records

    def flush(self, timestamp: str, *, final: bool = True) -> list[bytes]:
        """The unterminated rest: an ``F`` record at the end of the stream (`final`), else ``P``."""
        if not self._pending:
            return []
        record = self._record(timestamp.encode(), b"F" if final else b"P", self._pending)
        self._pending.clear()
        return [record]


class CriLogWriter:
    """Appends records to `path` and rotates it (see the module docstring).  Thread-safe: the runtime
    writes from worker threads, one call per batch of records.  Call `close` when done."""

    def __init__(self, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, max_files: int = 1) -> None:
        if max_bytes <= 0 or max_files < 1:
            raise ValueError("max_bytes must be positive and max_files at least 1")
        self.path = path
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, records: list[bytes]) -> None:
        with self._lock:
            if self._fd is None:
                return
            batch: list[bytes] = []
            batch_size = 0
            for record in records:
                if self._size + batch_size + len(record) > self.max_bytes and self._size + batch_size > 0:
                    self._write_all(batch)
                    batch, batch_size = [], 0
                    self._rotate()
                batch.append(record)
                batch_size += len(record)
            self._write_all(batch)

    def _write_all(self, batch: list[bytes]) -> None:
        assert self._fd is not None
        data = memoryview(b"".join(batch))
        while data:
            written = os.write(self._fd, data)
            data = data[written:]
            self._size += written

    def _rotate(self) -> None:
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        for index in range(self.max_files - 1, 0, -1):
            older = Path(f"{self.path}.{index}")
            if older.exists():
                os.replace(older, f"{self.path}.{index + 1}")
        os.replace(self.path, f"{self.path}.1")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = 0

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
