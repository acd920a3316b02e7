"""`ProcessExec`: a command started by the process runtime inside a container (``kubectl exec``).

The command leads its own session and process group (with a tty, the terminal is its controlling
terminal), so `aclose` kills all of it, also the part ``nsenter`` forked into the container's pid
namespace.  Its descriptors are ours until `aclose`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import termios

from kubelite.agent.runtime.fdio import FdReader, FdWriter, ProcessWatch, exit_code_from_status
from kubelite.agent.runtime.interface import ExecResult, UnsupportedError

__all__ = ["EXEC_DRAIN_TIMEOUT", "ProcessExec", "collect"]

# After the command exits, how long its output may still arrive (from children that inherited it).
EXEC_DRAIN_TIMEOUT = 1.0
UNKNOWN_EXIT_CODE = 255


class ProcessExec:
    """Implements `kubelite.agent.runtime.interface.ExecProcess`."""

    def __init__(
        self,
        *,
        pid: int,
        stdin: FdWriter | None,
        stdout: FdReader,
        stderr: FdReader | None,
        pty_master: int | None,
        owned_fds: list[int],
    ) -> None:
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._pty_master = pty_master
        self._owned_fds = owned_fds
        self._watch = ProcessWatch(pid)
        self._exit_code: int | None = None
        self._wait_lock = asyncio.Lock()

    def resize(self, width: int, height: int) -> None:
        if self._pty_master is None:
            raise UnsupportedError("resize needs a tty")
        fcntl.ioctl(self._pty_master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        async with self._wait_lock:
            if self._exit_code is None:
                status = await self._watch.wait()
                self._exit_code = exit_code_from_status(status) if status is not None else UNKNOWN_EXIT_CODE
            return self._exit_code

    def kill(self) -> None:
        """SIGKILL the command's whole process group (nothing once it has been waited for: its pid may
        belong to someone else by then)."""
        if self._exit_code is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self._watch.send_signal(signal.SIGKILL)

    async def aclose(self) -> None:
        if self._exit_code is None:
            self.kill()
            await self.wait()
        if self.stdin is not None:
            self.stdin.abort()
        for fd in self._owned_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._owned_fds = []


async def _read_into(reader: FdReader, sink: list[bytes], limit: int) -> None:
    size = 0
    while data := await reader.read():
        if size < limit:
            sink.append(data[: limit - size])
            size += len(sink[-1])


async def collect(process: ProcessExec, *, limit: int = 16 * 1024 * 1024) -> ExecResult:
    """Run `process` to its end, collecting up to `limit` bytes of each output stream.  Output that
    children still write after the command exited is taken for `EXEC_DRAIN_TIMEOUT` more seconds."""
    out: list[bytes] = []
    err: list[bytes] = []
    async with asyncio.TaskGroup() as group:
        readers = [group.create_task(_read_into(process.stdout, out, limit))]
        if process.stderr is not None:
            readers.append(group.create_task(_read_into(process.stderr, err, limit)))
        exit_code = await process.wait()
        await asyncio.wait(readers, timeout=EXEC_DRAIN_TIMEOUT)
        for reader in readers:
            reader.cancel()
    return ExecResult(exit_code=exit_code, stdout=b"".join(out), stderr=b"".join(err))
