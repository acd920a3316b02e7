"""One container of the process runtime: its record, its live resources (the shim's pidfd, the FIFOs
the log pumps read, the log writer) and the operations on them.

`ProcessRuntime` serializes the calls on one container (`lock`) and runs the blocking methods — every
method that is not ``async`` — in worker threads.  `run` is the container's life after its start: it
pumps the logs until the shim exits, then makes sure no process is left and works out the exit code
and reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from kubelite.agent.runtime import launch, procfs
from kubelite.agent.runtime.cgroups import Cgroup, CgroupLayout
from kubelite.agent.runtime.exec import ProcessExec
from kubelite.agent.runtime.fdio import FdReader, FdWriter, ProcessWatch, exit_code_from_status
from kubelite.agent.runtime.interface import (
    REASON_COMPLETED,
    REASON_ERROR,
    REASON_OOM_KILLED,
    ContainerState,
    ContainerStats,
    StartError,
)
from kubelite.agent.runtime.launch import Tools
from kubelite.agent.runtime.logs import CriFramer, CriLogWriter, format_timestamp
from kubelite.agent.runtime.state import ContainerRecord, SandboxRecord, write_json_atomic

__all__ = ["HostSetup", "ProcessContainer", "exit_reason"]

logger = logging.getLogger(__name__)

LOG_DRAIN_TIMEOUT = 2.0  # after the exit, for the log pumps to reach end of stream
CGROUP_EMPTY_TIMEOUT = 2.0
UNKNOWN_EXIT_CODE = 255
STREAMS = ("stdout", "stderr")


def exit_reason(exit_code: int, oom_kills: int) -> str:
    """The terminated reason the kubelet shows: a failed container whose cgroup saw an OOM kill was
    OOMKilled, whichever of its processes the kernel picked."""
    if exit_code == 0:
        return REASON_COMPLETED
    return REASON_OOM_KILLED if oom_kills > 0 else REASON_ERROR


@dataclass(frozen=True, slots=True)
class HostSetup:
    """What every container of one runtime shares."""

    tools: Tools
    isolated: bool
    layout: CgroupLayout
    home: str
    log_max_bytes: int
    log_max_files: int
    start_timeout: float


class ProcessContainer:
    """A container's record plus what exists only while a runtime instance watches it.  `record` is
    replaced, never mutated, so a reader on the event loop always sees a consistent snapshot."""

    def __init__(self, record: ContainerRecord, setup: HostSetup, directory: Path) -> None:
        self.record = record
        self.setup = setup
        self.directory = directory
        self.cgroup = Cgroup(setup.layout, record.cgroup_path) if setup.layout.mode != "none" else None
        self.lock = asyncio.Lock()  # serializes start / stop / remove
        self.save_lock = asyncio.Lock()
        self.exited = asyncio.Event()  # set once EXITED (or removed, or the runtime closed)
        self.removed = False
        self._final = False  # the container has ended: flush a partial last line as a full one
        self._watch: ProcessWatch | None = None  # the shim
        self._readers: list[tuple[str, FdReader]] = []
        self._log_writer: CriLogWriter | None = None

    @property
    def id(self) -> str:
        return self.record.id

    def save(self) -> None:
        write_json_atomic(self.directory / "container.json", self.record.to_json())

    # create and remove

    def prepare(self) -> list[str]:
        """Directory, FIFOs, cgroups with the limits, the record.  Returns the limits that cannot be
        enforced here."""
        self.directory.mkdir(parents=True)
        try:
            for stream in STREAMS + (("stdin",) if self.record.config.stdin else ()):
                os.mkfifo(self.directory / stream, 0o600)
            Path(self.record.log_path).parent.mkdir(parents=True, exist_ok=True)
            unenforced: list[str] = []
            if self.cgroup is not None:
                self.cgroup.create()
                unenforced = self.cgroup.apply(self.record.config.resources)
            self.save()
            return unenforced
        except BaseException:
            self.remove_files()
            raise

    def remove_files(self) -> None:
        """Kill what is left, remove the cgroups and the state directory (not the log)."""
        if self.cgroup is not None:
            self.cgroup.kill()
            self.cgroup.wait_empty(CGROUP_EMPTY_TIMEOUT)
            if not self.cgroup.remove():
                logger.warning("container cgroup busy, not removed", extra={"cgroup": self.cgroup.path})
        with contextlib.suppress(FileNotFoundError):
            for entry in self.directory.iterdir():
                entry.unlink()
            self.directory.rmdir()

    # start

    def launch(self, sandbox: SandboxRecord) -> None:
        """Spawn the chain and return once the container's PID 1 is in its cgroups; fills in the
        record's pids.  Raises `StartError` (nothing is left running then)."""
        setup, record = self.setup, self.record
        hostname = sandbox.config.hostname or sandbox.config.name
        env = launch.container_environment(record.config, hostname=hostname, home=setup.home)
        launch.check_startable(record.config, env)
        if setup.isolated:
            launch.check_mounts(record.config)  # unisolated: ignored, see ProcessRuntime.isolation_note
        argv = launch.container_argv(
            setup.tools,
            record.config,
            isolated=setup.isolated,
            exit_file=self.directory / "exit",
            env=env,
            namespaces=sandbox.namespaces,
            netns_path=sandbox.config.netns_path,
            procs_files=self.cgroup.procs_files() if self.cgroup is not None else (),
        )
        (self.directory / "exit").unlink(missing_ok=True)
        ready_read, shim = self._spawn(argv, env)
        try:
            try:
                line = launch.read_ready(ready_read, setup.start_timeout)
            except TimeoutError:
                line = None
            finally:
                os.close(ready_read)
            if line is None:
                raise StartError(self._failed_start(shim))
            if setup.isolated:
                pid, pgid = self._find_init(shim), None
            else:  # the command leads its own process group, unless there is no setsid to make one
                pid = int(line)
                pgid = pid if setup.tools.setsid else shim
            self._log_writer = CriLogWriter(
                Path(record.log_path), max_bytes=setup.log_max_bytes, max_files=setup.log_max_files
            )
        except BaseException:
            self.release_io()
            raise
        self.record = replace(
            record,
            shim_pid=shim,
            shim_started=procfs.start_time(shim),
            pid=pid,
            pid_started=procfs.start_time(pid) if pid else None,
            pgid=pgid,
        )

    def _spawn(self, argv: list[str], env: dict[str, str]) -> tuple[int, int]:
        """Start the shim with the FIFOs as its streams; returns (ready pipe, shim pid)."""
        child_fds: list[int] = []
        ready_read = None
        try:
            for stream in STREAMS:
                reader = FdReader(os.open(self.directory / stream, os.O_RDONLY | os.O_NONBLOCK))
                self._readers.append((stream, reader))
                # Read-write: the container itself keeps a reader, so it never gets SIGPIPE while the
                # runtime is away (a restart); the pipe buffers meanwhile.
                child_fds.append(os.open(self.directory / stream, os.O_RDWR))
            if self.record.config.stdin:
                child_fds.append(os.open(self.directory / "stdin", os.O_RDWR))
            else:
                child_fds.append(os.open(os.devnull, os.O_RDONLY))
            ready_read, ready_write = os.pipe()
            child_fds.append(ready_write)
            shim = launch.spawn(
                argv, env=env, stdout=child_fds[0], stderr=child_fds[1], stdin=child_fds[2], ready_fd=ready_write
            )
            self._watch = ProcessWatch(shim)
            return ready_read, shim
        except BaseException:
            self.release_io()
            if ready_read is not None:
                os.close(ready_read)
            raise
        finally:
            for fd in child_fds:
                os.close(fd)

    def _find_init(self, shim: int) -> int | None:
        """The host pid of the container's PID 1 (``None`` if it is gone already)."""
        if self.cgroup is not None:
            return procfs.init_pid_of(self.cgroup.pids())
        return procfs.init_pid_of(procfs.children_of(shim))

    def _failed_start(self, shim: int) -> str:
        """Kill what a failed start left, reap the shim, and say what the container printed."""
        if self.cgroup is not None:
            self.cgroup.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shim, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(shim, 0)
        output = b"".join(reader.read_nowait() or b"" for _, reader in self._readers)
        text = output.decode(errors="replace").strip()
        return f"the container failed to start: {text}" if text else "the container failed to start"

    def reattach(self) -> bool:
        """After a runtime restart: watch the shim again and reopen the log FIFOs.  ``False`` if the
        shim is gone (the container ended while nobody watched)."""
        record = self.record
        if not record.shim_pid or not procfs.is_alive(record.shim_pid, record.shim_started):
            return False
        try:
            watch = ProcessWatch(record.shim_pid)
        except ProcessLookupError:
            return False
        if not procfs.is_alive(record.shim_pid, record.shim_started):  # the pid was reused meanwhile
            watch.close()
            return False
        self._watch = watch
        try:
            for stream in STREAMS:
                fd = os.open(self.directory / stream, os.O_RDONLY | os.O_NONBLOCK)
                self._readers.append((stream, FdReader(fd)))
            self._log_writer = CriLogWriter(
                Path(record.log_path), max_bytes=self.setup.log_max_bytes, max_files=self.setup.log_max_files
            )
        except BaseException:
            self.release_io()
            raise
        return True

    def release_io(self) -> None:
        for _, reader in self._readers:
            with contextlib.suppress(OSError):
                os.close(reader.fd)
        self._readers = []
        if self._log_writer is not None:
            self._log_writer.close()
            self._log_writer = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    # running

    async def run(self) -> tuple[int, str, str]:
        """Pump the logs until the shim exits; then `finish`.  Returns (exit code, reason, message).
        Cancelled when the runtime closes: the container keeps running."""
        try:
            async with asyncio.TaskGroup() as group:
                pumps = [group.create_task(self._pump(stream, reader)) for stream, reader in self._readers]
                assert self._watch is not None
                status = await self._watch.wait()
                result = await asyncio.to_thread(self.finish, status)
                if pumps:
                    await asyncio.wait(pumps, timeout=LOG_DRAIN_TIMEOUT)
                self._final = True
                for pump in pumps:
                    pump.cancel()
            return result
        finally:
            self.release_io()

    async def _pump(self, stream: str, reader: FdReader) -> None:
        """Copy one stream into the log as CRI records until its end (every writer closed it)."""
        framer = CriFramer(stream)
        writer = self._log_writer
        assert writer is not None
        try:
            while data := await reader.read():
                records = framer.feed(data, format_timestamp(time.time_ns()))
                if records:
                    await asyncio.to_thread(writer.write, records)
            await asyncio.to_thread(writer.write, framer.flush(format_timestamp(time.time_ns())))
        except asyncio.CancelledError:
            stamp = format_timestamp(time.time_ns())
            rest: list[bytes] = []
            with contextlib.suppress(OSError):
                while chunk := reader.read_nowait():
                    rest += framer.feed(chunk, stamp)
            rest += framer.flush(stamp, final=self._final)
            with contextlib.suppress(OSError):
                writer.write(rest)  # small and final: not worth a thread hop during cancellation
            raise
        except OSError:
            logger.exception("container log pump failed", extra={"container": self.id, "stream": stream})

    def finish(self, status: int | None) -> tuple[int, str, str]:
        """After the shim exited: the exit code (its wait status, else the file it wrote), no process
        left behind, and the reason."""
        record = self.record
        message = ""
        if status is None and record.shim_pid:
            with contextlib.suppress(ChildProcessError):  # ours if a runtime in this process started it
                pid, waited = os.waitpid(record.shim_pid, os.WNOHANG)
                status = waited if pid else None
        if status is not None:
            exit_code = exit_code_from_status(status)
        else:
            try:
                exit_code = int((self.directory / "exit").read_text())
            except (OSError, ValueError):
                exit_code = UNKNOWN_EXIT_CODE
                message = "the exit status was lost: the container's shim ended without recording it"
        self.signal(signal.SIGKILL)
        oom_kills = 0
        if self.cgroup is not None:
            self.cgroup.wait_empty(CGROUP_EMPTY_TIMEOUT)
            oom_kills = self.cgroup.oom_kills()
        return exit_code, exit_reason(exit_code, oom_kills), message

    def pids(self) -> set[int]:
        record = self.record
        if self.cgroup is not None:
            return self.cgroup.pids()
        if self.setup.isolated:
            alive = record.pid is not None and procfs.is_alive(record.pid, record.pid_started)
            return procfs.pid_namespace_members(record.pid) if alive and record.pid else set()
        return procfs.session_members(record.pgid) if record.pgid else set()

    def signal(self, signum: int) -> None:
        """Signal every process of the container (SIGKILL also atomically through the cgroup)."""
        if signum == signal.SIGKILL and self.cgroup is not None:
            self.cgroup.kill()
        if not self.setup.isolated and self.record.pgid:
            try:
                os.killpg(self.record.pgid, signum)
            except ProcessLookupError:
                return  # the group is empty; only a process that left it (and kept the session) could be left
            except PermissionError:
                pass
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    def stats(self) -> ContainerStats:
        if self.cgroup is not None:
            cpu = self.cgroup.cpu_usage_ns()
            usage, working_set = self.cgroup.memory_usage()
        else:
            cpu, usage = procfs.tree_usage(self.pids() if self.record.state == ContainerState.RUNNING else set())
            working_set = usage
        return ContainerStats(
            container_id=self.id,
            timestamp=datetime.now(UTC),
            cpu_usage_ns=cpu,
            memory_working_set_bytes=working_set,
            memory_usage_bytes=usage,
        )

    # exec

    def spawn_exec(self, sandbox: SandboxRecord, command: list[str], *, stdin: bool, tty: bool) -> ProcessExec:
        config = self.record.config
        hostname = sandbox.config.hostname or sandbox.config.name
        env = launch.container_environment(config, hostname=hostname, home=self.setup.home)
        if tty:
            env.setdefault("TERM", "xterm")
        argv = launch.exec_argv(
            self.setup.tools,
            command,
            isolated=self.setup.isolated,
            target_pid=self.record.pid,
            working_dir=config.working_dir,
            procs_files=self.cgroup.procs_files() if self.cgroup is not None else (),
            tty=tty,
        )
        if tty:
            master, slave = os.openpty()
            try:
                pid = launch.spawn(argv, env=env, stdin=slave, stdout=slave, stderr=slave, new_session=False)
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            return ProcessExec(
                pid=pid,
                stdin=FdWriter(master, owns_fd=False) if stdin else None,
                stdout=FdReader(master),
                stderr=None,
                pty_master=master,
                owned_fds=[master],
            )
        fds: list[int] = []
        try:
            for _ in range(3 if stdin else 2):
                fds.extend(os.pipe())
            if not stdin:
                fds.extend((os.open(os.devnull, os.O_RDONLY), -1))
            out_read, out_write, err_read, err_write, in_read, in_write = fds
            pid = launch.spawn(argv, env=env, stdin=in_read, stdout=out_write, stderr=err_write)
        except BaseException:
            for fd in fds:
                if fd >= 0:
                    os.close(fd)
            raise
        for fd in (out_write, err_write, in_read):
            os.close(fd)
        return ProcessExec(
            pid=pid,
            stdin=FdWriter(in_write) if stdin else None,
            stdout=FdReader(out_read),
            stderr=FdReader(err_read),
            pty_master=None,
            owned_fds=[out_read, err_read],
        )
