"""Non-blocking descriptors on the event loop: readers, writers and process exit, without threads.

* `FdReader.read` waits for readability with ``loop.add_reader`` and reads what is there; the data
  stays in the kernel's pipe until someone reads (natural back-pressure, nothing buffered here).
  ``EIO`` (a pty whose other side closed) counts as end of stream.
* `FdWriter` queues, writes when the descriptor is writable, and `drain` waits until the queue is empty.
* `ProcessWatch` waits for any process to exit through a pidfd (Linux ≥ 5.3), also one that is not
  our child (a runtime that restarted); if it is our child it is reaped and its wait status returned.
  Without pidfds it falls back to checking every `FALLBACK_POLL_INTERVAL` seconds.

None of these own their descriptor unless said so; the caller closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal

__all__ = ["FALLBACK_POLL_INTERVAL", "FdReader", "FdWriter", "ProcessWatch", "exit_code_from_status"]

FALLBACK_POLL_INTERVAL = 0.2


def exit_code_from_status(status: int) -> int:
    """A wait status as a container exit code: the exit status, or 128 + signal."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _wait_readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, _resolve, ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def _wait_writable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_writer(fd, _resolve, ready)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


class FdReader:
    """Reads a pipe, FIFO or pty master.  Sets the descriptor non-blocking."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.eof = False
        os.set_blocking(fd, False)

    def read_nowait(self, n: int = 65536) -> bytes | None:
        """What is available now; ``None`` if nothing is (yet), ``b""`` at end of stream."""
        if self.eof:
            return b""
        try:
            data = os.read(self.fd, n)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.eof = True
        return data

    async def read(self, n: int = 65536) -> bytes:
        while (data := self.read_nowait(n)) is None:
            await _wait_readable(self.fd)
        return data

    async def read_all(self, limit: int = 16 * 1024 * 1024) -> bytes:
        """Everything up to end of stream, at most `limit` bytes (the rest is read and dropped)."""
        chunks: list[bytes] = []
        size = 0
        while data := await self.read():
            if size < limit:
                chunks.append(data[: limit - size])
                size += len(chunks[-1])
        return b"".join(chunks)


class FdWriter:
    """Writes to a pipe or pty master.  `close` ends the input: it closes the descriptor if this writer
    owns it (a pipe), else writes `eof_bytes` (a pty: the terminal's end-of-file character)."""

    def __init__(self, fd: int, *, owns_fd: bool = True, eof_bytes: bytes = b"\x04") -> None:
        self.fd = fd
        self._owns_fd = owns_fd
        self._eof_bytes = eof_bytes
        self._queue = bytearray()
        self._closing = False
        self.closed = False
        os.set_blocking(fd, False)

    def write(self, data: bytes) -> None:
        if self._closing:
            raise BrokenPipeError(errno.EPIPE, "stdin is closed")
        self._queue += data
        self._flush()

    def _flush(self) -> None:
        while self._queue and not self.closed:
            try:
                written = os.write(self.fd, self._queue)
            except BlockingIOError:
                return
            del self._queue[:written]
        if self._closing and not self._queue:
            self._finish()

    def _finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._owns_fd:
            os.close(self.fd)
        else:
            with contextlib.suppress(OSError):
                os.write(self.fd, self._eof_bytes)

    async def drain(self) -> None:
        while self._queue and not self.closed:
            await _wait_writable(self.fd)
            self._flush()

    def close(self) -> None:
        """End of input once the queue is written (call `drain` first to be sure it is)."""
        self._closing = True
        try:
            self._flush()
        except OSError:
            self._queue.clear()
            self._finish()
        if self._queue:  # the process does not read: drop the rest rather than block
            self._queue.clear()
            self._finish()

    def abort(self) -> None:
        """Drop queued data; close the descriptor if owned."""
        self._queue.clear()
        self._closing = True
        if not self.closed:
            self.closed = True
            if self._owns_fd:
                os.close(self.fd)


class ProcessWatch:
    """Waits for one process to exit.  Holds a pidfd (closed by `close` or after `wait`)."""

    def __init__(self, pid: int) -> None:
        """Raises `ProcessLookupError` if `pid` does not exist any more."""
        self.pid = pid
        self.pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self.pidfd = os.pidfd_open(pid)
        if self.pidfd is None:
            os.kill(pid, 0)  # raises ProcessLookupError

    def send_signal(self, signum: int) -> bool:
        """Signal the process if it still exists (race-free with a pidfd); ``False`` if it is gone."""
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signum)
            else:
                os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def _reap(self) -> int | None:
        """The wait status if the process is our child and has exited; ``None`` if it runs."""
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        return status if pid else None

    async def wait(self) -> int | None:
        """Wait for the exit.  Returns the wait status if we could reap it (our child), else
        ``None`` (the exit status is then somebody else's to collect)."""
        try:
            if self.pidfd is not None:
                await _wait_readable(self.pidfd)
                try:
                    return self._reap()
                except ChildProcessError:
                    return None
            while True:
                try:
                    status = self._reap()
                    if status is not None:
                        return status
                except ChildProcessError:
                    try:
                        os.kill(self.pid, 0)
                    except ProcessLookupError:
                        return None
                await asyncio.sleep(FALLBACK_POLL_INTERVAL)
        finally:
            self.close()

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
