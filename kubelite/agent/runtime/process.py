"""`ProcessRuntime`: every container is a tree of host processes started from its command; no images.

Isolated mode (root on Linux, util-linux present; the default there): each container gets its own PID
and mount namespaces (its command is PID 1 and sees only its own processes), shares the pod's UTS
(hostname = the pod's) and IPC namespaces and the pod's network namespace (the host's unless the
sandbox names one), and runs in its own cgroups (``<cgroup parent>/<container id>``) with the memory,
CPU and pids limits of its `Resources`.  `launch` explains the process chain, `container` one
container's life.

Unisolated mode (anywhere else): the container is a process group in its own session, with host
namespaces, no limits and no bind mounts (`ContainerConfig.mounts` are ignored).  `isolation_note`
says so, for the node's conditions.

What the runtime guarantees on top of the `Runtime` contract:

* Processes never outlive their container.  Isolated: PID 1's exit takes its pid namespace down, and
  whatever is left in the container's cgroups (``exec`` helpers) is killed (``cgroup.kill`` where the
  kernel has it).  Unisolated: the process group and session are killed; a process that leaves both
  (double fork + setsid) escapes — that is the price of no namespaces.
* OOM: a non-zero exit with the cgroup's ``oom_kill`` counter raised is reason ``OOMKilled``.
* Logs: the container writes into FIFOs it holds open read-write itself, so it never gets SIGPIPE
  while the runtime is away; the runtime's pumps turn the streams into CRI records (`logs`).
* Restarts: state is kept under `root_dir` (`state`); `recover` (run by `start`) re-attaches to live
  containers through pidfds and the FIFOs, and finishes the ones that ended meanwhile from the exit
  code their shim wrote.  `cleanup_orphans` kills and removes what no record accounts for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import signal
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kubelite.agent.runtime.cgroups import Cgroup, CgroupLayout, detect_layout
from kubelite.agent.runtime.container import UNKNOWN_EXIT_CODE, HostSetup, ProcessContainer, exit_reason
from kubelite.agent.runtime.exec import ProcessExec, collect
from kubelite.agent.runtime.fdio import FdWriter
from kubelite.agent.runtime.interface import (
    REASON_ERROR,
    REASON_START_ERROR,
    ContainerConfig,
    ContainerRuntimeError,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
    PodSandboxConfig,
    PodSandboxStatus,
    SandboxState,
    StartError,
    UnsupportedError,
)
from kubelite.agent.runtime.launch import Tools
from kubelite.agent.runtime.logs import DEFAULT_MAX_BYTES
from kubelite.agent.runtime.namespaces import KINDS, create_pod_namespaces, is_namespace_mount, release_namespace
from kubelite.agent.runtime.state import ContainerRecord, SandboxRecord, load_json, write_json_atomic

__all__ = ["OrphanReport", "ProcessRuntime", "detect_isolation", "exit_reason"]

logger = logging.getLogger(__name__)
_R = TypeVar("_R")

START_TIMEOUT = 10.0  # until the container's PID 1 reports that it is in its cgroups
KILL_TIMEOUT = 10.0  # after SIGKILL, until the container counts as exited
CGROUP_EMPTY_TIMEOUT = 2.0
START_ERROR_EXIT_CODE = 128
HOSTNAME_MAX = 64


def detect_isolation(tools: Tools) -> str | None:
    """Why containers cannot be isolated on this host, or ``None`` if they can."""
    if sys.platform != "linux":
        return "not Linux"
    if os.geteuid() != 0:
        return "not running as root"
    missing = [name for name in ("unshare", "nsenter", "setsid", "mount") if getattr(tools, name) is None]
    if missing:
        return f"{', '.join(missing)} (util-linux) not found"
    return None


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class OrphanReport:
    """What `ProcessRuntime.cleanup_orphans` removed."""

    killed_processes: int = 0
    removed_cgroups: list[str] = field(default_factory=list)
    removed_containers: list[str] = field(default_factory=list)
    removed_sandboxes: list[str] = field(default_factory=list)


class _Sandbox:
    def __init__(self, record: SandboxRecord) -> None:
        self.record = record
        self.lock = asyncio.Lock()


class ProcessRuntime:
    """Implements `kubelite.agent.runtime.interface.Runtime` with host processes (module docstring).

    `isolated` ``None`` detects; ``True`` where isolation is impossible raises `UnsupportedError`.
    Containers' cgroups live under `cgroup_root` (relative to each hierarchy) unless a sandbox names
    its own parent; `cleanup_orphans` only looks there.  Use as ``async with`` or `start`/`close`.
    """

    name = "process"

    def __init__(
        self,
        root_dir: Path,
        *,
        isolated: bool | None = None,
        cgroup_root: str = "kubelite",
        log_max_bytes: int = DEFAULT_MAX_BYTES,
        log_max_files: int = 1,
        start_timeout: float = START_TIMEOUT,
        tools: Tools | None = None,
        cgroup_layout: CgroupLayout | None = None,
    ) -> None:
        self.root_dir = Path(root_dir)
        tools = tools or Tools.find()
        impossible = detect_isolation(tools)
        if isolated and impossible:
            raise UnsupportedError(f"containers cannot be isolated here: {impossible}")
        isolated = impossible is None if isolated is None else isolated
        layout = CgroupLayout(mode="none")
        if isolated:
            layout = cgroup_layout or detect_layout()
            if not layout.writable():
                layout = CgroupLayout(mode="none")
        self._setup = HostSetup(
            tools=tools,
            isolated=isolated,
            layout=layout,
            home="/root" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_dir,
            log_max_bytes=log_max_bytes,
            log_max_files=log_max_files,
            start_timeout=start_timeout,
        )
        self._cgroup_root = cgroup_root.strip("/")
        self._note: str | None = None
        if not isolated:
            self._note = (
                f"containers run unisolated ({impossible or 'isolation turned off'}): they share the host's PID, "
                "mount, UTS, IPC and network namespaces, their resource limits are not enforced and their "
                "mounts (the pod's /etc/hosts and /etc/resolv.conf, its volumes) are not made: pod volumes are "
                "materialised under the pod directory on the node but not mounted into containers"
            )
        elif layout.mode == "none":
            self._note = "no writable cgroup hierarchy: container resource limits are not enforced"
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, ProcessContainer] = {}
        self._group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self._warned_limits: set[str] = set()

    @property
    def isolated(self) -> bool:
        return self._setup.isolated

    @property
    def isolation_note(self) -> str | None:
        """What this node cannot do that a fully isolated one can (``None``: nothing), for the
        node's conditions."""
        return self._note

    @property
    def cgroup_layout(self) -> CgroupLayout:
        return self._setup.layout

    # lifecycle

    async def __aenter__(self) -> ProcessRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._runner is not None:
            return
        if self._note:
            logger.warning("container runtime degraded", extra={"note": self._note})
        for sub in ("sandboxes", "containers", "logs"):
            await asyncio.to_thread((self.root_dir / sub).mkdir, parents=True, exist_ok=True)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._run(ready), name="process-runtime")
        await ready
        await self.recover()

    async def _run(self, ready: asyncio.Future[None]) -> None:
        """Owns the task group of every container's monitor; runs until `close` cancels it."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            ready.set_result(None)
            await asyncio.get_running_loop().create_future()

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        self._group = None
        for container in self._containers.values():
            container.release_io()
            container.exited.set()  # waiters see a container that is not EXITED: "runtime closed"
        self._containers.clear()
        self._sandboxes.clear()

    async def remove_all(self) -> None:
        """Remove every sandbox (killing what still runs) and then this runtime's cgroup root, if empty:
        for an agent that stops its pods on the way out and leaves nothing behind (state, mounts, cgroups)."""
        for sandbox_id in list(self._sandboxes):
            await self.remove_pod_sandbox(sandbox_id)
        root = self._cgroup(self._cgroup_root)
        if root is not None and not root.children():
            await asyncio.to_thread(root.remove)

    def _require_group(self) -> asyncio.TaskGroup:
        if self._group is None:
            raise InvalidStateError("the runtime is not started")
        return self._group

    # lookups and persistence

    def _sandbox(self, sandbox_id: str) -> _Sandbox:
        try:
            return self._sandboxes[sandbox_id]
        except KeyError:
            raise NotFoundError(f"pod sandbox {sandbox_id!r} not found") from None

    def _container(self, container_id: str) -> ProcessContainer:
        try:
            return self._containers[container_id]
        except KeyError:
            raise NotFoundError(f"container {container_id!r} not found") from None

    def _sandbox_dir(self, sandbox_id: str) -> Path:
        return self.root_dir / "sandboxes" / sandbox_id

    def _new_container(self, record: ContainerRecord) -> ProcessContainer:
        return ProcessContainer(record, self._setup, self.root_dir / "containers" / record.id)

    def _cgroup(self, path: str) -> Cgroup | None:
        return Cgroup(self._setup.layout, path) if self._setup.layout.mode != "none" else None

    async def _save_sandbox(self, sandbox: _Sandbox) -> None:
        path = self._sandbox_dir(sandbox.record.id) / "sandbox.json"
        await asyncio.to_thread(write_json_atomic, path, sandbox.record.to_json())

    async def _save_container(self, container: ProcessContainer) -> None:
        async with container.save_lock:  # the snapshot is taken inside the lock: the last write is the newest
            if not container.removed:
                await asyncio.to_thread(container.save)

    # sandboxes

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        if not config.uid or not config.name:
            raise InvalidArgumentError("a pod sandbox needs a uid and a name")
        hostname = config.hostname or config.name
        if len(hostname.encode()) > HOSTNAME_MAX:
            raise InvalidArgumentError(f"hostname {hostname!r} is longer than {HOSTNAME_MAX} bytes")
        if config.netns_path is not None:
            if not self.isolated:
                raise UnsupportedError("a pod network namespace needs isolated mode (root)")
            if not await asyncio.to_thread(os.path.exists, config.netns_path):
                raise InvalidArgumentError(f"network namespace {config.netns_path} does not exist")
        sandbox_id = uuid.uuid4().hex
        record = SandboxRecord(
            id=sandbox_id,
            config=config,
            state=SandboxState.READY,
            created_at=_now(),
            cgroup_parent=(config.cgroup_parent or f"{self._cgroup_root}/pod{config.uid}").strip("/"),
            log_directory=config.log_directory or str(self.root_dir / "logs" / sandbox_id),
        )
        await asyncio.to_thread(self._setup_sandbox_blocking, record, hostname)
        self._sandboxes[sandbox_id] = _Sandbox(record)
        return sandbox_id

    def _setup_sandbox_blocking(self, record: SandboxRecord, hostname: str) -> None:
        directory = self._sandbox_dir(record.id)
        directory.mkdir(parents=True)
        try:
            tools = self._setup.tools
            if self.isolated and tools.unshare is not None:
                record.namespaces = create_pod_namespaces(directory, hostname, unshare=tools.unshare, sh=tools.sh)
            cgroup = self._cgroup(record.cgroup_parent)
            if cgroup is not None:
                cgroup.create()
            Path(record.log_directory).mkdir(parents=True, exist_ok=True)
            write_json_atomic(directory / "sandbox.json", record.to_json())
        except BaseException:
            self._remove_sandbox_blocking(record)
            raise

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        async with sandbox.lock:
            await self._kill_sandbox_containers(sandbox_id)
            if sandbox.record.state != SandboxState.NOTREADY:
                sandbox.record.state = SandboxState.NOTREADY
                await self._save_sandbox(sandbox)
            # a stopped sandbox never runs a container again: its namespace mounts go now, so a stopped
            # agent leaves no mount behind in its data directory
            await asyncio.to_thread(self._release_namespaces, sandbox.record)

    @staticmethod
    def _release_namespaces(record: SandboxRecord) -> None:
        for path in record.namespaces.values():
            release_namespace(Path(path))

    async def _kill_sandbox_containers(self, sandbox_id: str) -> None:
        async with asyncio.TaskGroup() as group:
            for container in self._sandbox_containers(sandbox_id):
                group.create_task(self.stop_container(container.id, 0))

    def _sandbox_containers(self, sandbox_id: str) -> list[ProcessContainer]:
        return [c for c in self._containers.values() if c.record.sandbox_id == sandbox_id]

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        async with sandbox.lock:
            await self._kill_sandbox_containers(sandbox_id)
            for container in self._sandbox_containers(sandbox_id):
                await self.remove_container(container.id)
            await asyncio.to_thread(self._remove_sandbox_blocking, sandbox.record)
            self._sandboxes.pop(sandbox_id, None)

    def _remove_sandbox_blocking(self, record: SandboxRecord) -> None:
        self._release_namespaces(record)
        cgroup = self._cgroup(record.cgroup_parent)
        if cgroup is not None and not cgroup.children():  # another sandbox of the pod may use it
            cgroup.kill()
            cgroup.wait_empty(CGROUP_EMPTY_TIMEOUT)
            cgroup.remove()
        if record.log_directory == str(self.root_dir / "logs" / record.id):
            shutil.rmtree(record.log_directory, ignore_errors=True)
        shutil.rmtree(self._sandbox_dir(record.id), ignore_errors=True)

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        return self._sandbox(sandbox_id).record.status()

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return [sandbox.record.status() for sandbox in self._sandboxes.values()]

    # containers

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        sandbox = self._sandbox(sandbox_id).record
        if sandbox.state != SandboxState.READY:
            raise InvalidStateError(f"pod sandbox {sandbox_id} is not ready")
        if not config.name:
            raise InvalidArgumentError("a container needs a name")
        if not config.command:
            raise InvalidArgumentError("no command specified")
        container_id = uuid.uuid4().hex
        log_path = Path(config.log_path or f"{config.name}/{config.attempt}.log")
        if not log_path.is_absolute():
            log_path = Path(sandbox.log_directory) / log_path
        record = ContainerRecord(
            id=container_id,
            sandbox_id=sandbox_id,
            config=replace(config, command=tuple(config.command)),
            log_path=str(log_path),
            cgroup_path=f"{sandbox.cgroup_parent}/{container_id}",
            state=ContainerState.CREATED,
            created_at=_now(),
        )
        container = self._new_container(record)
        unenforced = await asyncio.to_thread(container.prepare)
        for controller in set(unenforced) - self._warned_limits:
            self._warned_limits.add(controller)
            logger.warning("cgroup controller missing, limit not enforced", extra={"controller": controller})
        self._containers[container_id] = container
        return container_id

    async def start_container(self, container_id: str) -> None:
        container = self._container(container_id)
        # Started in the runtime's task group: a caller cancelled mid-start cannot leave behind a
        # process that nobody watches.
        task = self._require_group().create_task(self._start(container), name=f"start-{container_id}")
        error = await asyncio.shield(task)
        if error is not None:
            raise error

    async def _start(self, container: ProcessContainer) -> ContainerRuntimeError | None:
        async with container.lock:
            record = container.record
            if record.state != ContainerState.CREATED:
                return InvalidStateError(f"container {record.id} is {record.state}, not CREATED")
            sandbox = self._sandboxes.get(record.sandbox_id)
            if sandbox is None or sandbox.record.state != SandboxState.READY:
                return InvalidStateError(f"pod sandbox {record.sandbox_id} is not ready")
            started_at = _now()
            launching = asyncio.ensure_future(asyncio.to_thread(container.launch, sandbox.record))
            closing = False
            try:
                try:
                    await asyncio.shield(launching)
                except asyncio.CancelledError:
                    # The runtime is closing mid-start.  The thread goes on regardless: let it finish
                    # and record the outcome, so that the next runtime takes the container over.
                    closing = True
                    await launching
            except Exception as exc:
                error = exc if isinstance(exc, StartError) else StartError(f"starting the container failed: {exc}")
                container.record = replace(
                    record,
                    state=ContainerState.EXITED,
                    exit_code=START_ERROR_EXIT_CODE,
                    reason=REASON_START_ERROR,
                    message=str(error),
                    finished_at=_now(),
                )
                await self._save_container(container)
                container.exited.set()
                if closing:
                    raise asyncio.CancelledError from None
                return error
            container.record = replace(container.record, state=ContainerState.RUNNING, started_at=started_at)
            await self._save_container(container)
            if closing:
                container.release_io()
                raise asyncio.CancelledError
            self._require_group().create_task(self._monitor(container), name=f"container-{record.id}")
            return None

    async def _monitor(self, container: ProcessContainer) -> None:
        """The container's life after start: record how it ended and wake its waiters."""
        try:
            exit_code, reason, message = await container.run()
        except Exception:
            logger.exception("container monitor failed", extra={"container": container.id})
            exit_code, reason, message = UNKNOWN_EXIT_CODE, REASON_ERROR, "the runtime lost track of the container"
        container.record = container.record.exited(
            exit_code=exit_code, reason=reason, message=message, finished_at=_now()
        )
        await self._save_container(container)
        container.exited.set()

    async def stop_container(self, container_id: str, timeout: float) -> None:
        container = self._containers.get(container_id)
        if container is None:
            return
        async with container.lock:
            if container.record.state != ContainerState.RUNNING:
                return
            if timeout > 0:
                await asyncio.to_thread(container.signal, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await container.exited.wait()
            await self._kill(container)

    async def _kill(self, container: ProcessContainer) -> None:
        if container.exited.is_set():
            return
        await asyncio.to_thread(container.signal, signal.SIGKILL)
        try:
            async with asyncio.timeout(KILL_TIMEOUT):
                await container.exited.wait()
        except TimeoutError:
            raise ContainerRuntimeError(f"container {container.id} did not exit after SIGKILL") from None

    async def remove_container(self, container_id: str) -> None:
        container = self._containers.get(container_id)
        if container is None:
            return
        async with container.lock:
            if container.record.state == ContainerState.RUNNING:
                await self._kill(container)
            async with container.save_lock:
                container.removed = True
            self._containers.pop(container_id, None)
            await asyncio.to_thread(container.remove_files)
            container.exited.set()

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._container(container_id).record.status()

    async def list_containers(
        self, *, sandbox_id: str | None = None, state: ContainerState | None = None
    ) -> list[ContainerStatus]:
        return [
            c.record.status()
            for c in self._containers.values()
            if (sandbox_id is None or c.record.sandbox_id == sandbox_id) and (state is None or c.record.state == state)
        ]

    async def wait_container(self, container_id: str) -> ContainerStatus:
        container = self._container(container_id)
        await container.exited.wait()
        # a waiter that was waiting when the container ended sees its end, even if a remove followed at once
        if container.removed and container.record.state != ContainerState.EXITED:
            raise NotFoundError(f"container {container_id!r} was removed")
        if container.record.state != ContainerState.EXITED:
            raise ContainerRuntimeError("the runtime was closed")
        return container.record.status()

    def container_log_path(self, container_id: str) -> Path:
        return Path(self._container(container_id).record.log_path)

    async def stats(self, container_id: str) -> ContainerStats:
        return await asyncio.to_thread(self._container(container_id).stats)

    async def exec(
        self, container_id: str, command: list[str], *, stdin: bool = False, tty: bool = False
    ) -> ProcessExec:
        container = self._container(container_id)
        record = container.record
        if record.state != ContainerState.RUNNING or (self.isolated and not record.pid):
            raise InvalidStateError(f"container {container_id} is not running")
        if not command:
            raise InvalidArgumentError("no command specified")
        if tty and self._setup.tools.setsid is None:
            raise UnsupportedError("a tty needs setsid (util-linux)")
        sandbox = self._sandbox(record.sandbox_id).record
        return await asyncio.to_thread(container.spawn_exec, sandbox, list(command), stdin=stdin, tty=tty)

    async def attach_stdin(self, container_id: str) -> FdWriter | None:
        container = self._container(container_id)
        if not container.record.config.stdin:
            return None
        # the container holds its stdin FIFO open read-write itself, so this open never blocks and the
        # container never sees end-of-file when an attached client leaves
        fd = await asyncio.to_thread(os.open, container.directory / "stdin", os.O_WRONLY | os.O_NONBLOCK)
        return FdWriter(fd)

    async def exec_sync(self, container_id: str, command: list[str], *, timeout: float | None = None) -> ExecResult:
        process = await self.exec(container_id, command)
        try:
            async with asyncio.timeout(timeout):
                return await collect(process)
        finally:
            await process.aclose()

    # restart

    async def recover(self) -> list[ContainerStatus]:
        """Load the sandboxes and containers recorded under `root_dir` that this instance does not
        know yet: re-attach to running containers, finish those that ended meanwhile.  Idempotent;
        `start` calls it.  Returns the statuses of the containers it took over."""
        group = self._require_group()
        sandboxes, records = await asyncio.to_thread(self._load_blocking)
        for sandbox in sandboxes:
            self._sandboxes.setdefault(sandbox.id, _Sandbox(sandbox))
        recovered: list[ContainerStatus] = []
        for record in records:
            if record.id in self._containers:
                continue
            container = self._new_container(record)
            self._containers[record.id] = container
            if record.state == ContainerState.RUNNING:
                try:
                    attached = await asyncio.to_thread(container.reattach)
                except OSError:
                    logger.exception("re-attaching to a container failed", extra={"container": record.id})
                    attached = False
                if attached:
                    group.create_task(self._monitor(container), name=f"container-{record.id}")
                else:
                    exit_code, reason, message = await asyncio.to_thread(container.finish, None)
                    container.record = record.exited(
                        exit_code=exit_code, reason=reason, message=message, finished_at=_now()
                    )
                    await self._save_container(container)
            if container.record.state not in (ContainerState.RUNNING, ContainerState.CREATED):
                container.exited.set()
            recovered.append(container.record.status())
        return recovered

    def _load_blocking(self) -> tuple[list[SandboxRecord], list[ContainerRecord]]:
        sandboxes = self._records("sandboxes", "sandbox.json", SandboxRecord.from_json)
        for sandbox in sandboxes:
            if sandbox.namespaces and not all(is_namespace_mount(Path(p)) for p in sandbox.namespaces.values()):
                sandbox.state = SandboxState.NOTREADY  # its namespaces are gone (a reboot)
        return sandboxes, self._records("containers", "container.json", ContainerRecord.from_json)

    def _records(self, kind: str, name: str, parse: Callable[[dict[str, Any]], _R]) -> list[_R]:
        """The readable records of one kind; an unreadable one is skipped (its directory is left to
        `cleanup_orphans`)."""
        found = []
        for path in sorted((self.root_dir / kind).glob(f"*/{name}")):
            data = load_json(path)
            try:
                if data is None:
                    raise ValueError("not a JSON object")
                found.append(parse(data))
            except (KeyError, TypeError, ValueError):
                logger.warning("unreadable runtime record skipped", extra={"path": str(path)})
        return found

    async def cleanup_orphans(self) -> OrphanReport:
        """Kill and remove what no record accounts for: containers of sandboxes that are gone, cgroups
        under the runtime's cgroup root without a container or sandbox, and state directories without
        a readable record (a crash mid-create).  Call after `start`."""
        report = OrphanReport()
        for container in list(self._containers.values()):
            if container.record.sandbox_id not in self._sandboxes:
                await self.remove_container(container.id)
                report.removed_containers.append(container.id)
        known_cgroups = {c.record.cgroup_path for c in self._containers.values()}
        known_parents = {s.record.cgroup_parent for s in self._sandboxes.values()}
        await asyncio.to_thread(self._cleanup_blocking, report, known_cgroups, known_parents)
        return report

    def _cleanup_blocking(self, report: OrphanReport, known_cgroups: set[str], known_parents: set[str]) -> None:
        root = self._cgroup(self._cgroup_root)
        if root is not None:
            for pod in sorted(root.children()):
                pod_group = Cgroup(self._setup.layout, f"{root.path}/{pod}")
                for child in sorted(pod_group.children()):
                    if f"{pod_group.path}/{child}" not in known_cgroups:
                        self._remove_orphan_cgroup(Cgroup(self._setup.layout, f"{pod_group.path}/{child}"), report)
                if pod_group.path not in known_parents and not pod_group.children():
                    self._remove_orphan_cgroup(pod_group, report)
        for directory in sorted((self.root_dir / "sandboxes").iterdir()):
            if directory.name not in self._sandboxes:
                for kind in KINDS:
                    release_namespace(directory / kind)
                shutil.rmtree(directory, ignore_errors=True)
                report.removed_sandboxes.append(directory.name)
        for directory in sorted((self.root_dir / "containers").iterdir()):
            if directory.name not in self._containers:
                shutil.rmtree(directory, ignore_errors=True)
                report.removed_containers.append(directory.name)

    @staticmethod
    def _remove_orphan_cgroup(cgroup: Cgroup, report: OrphanReport) -> None:
        report.killed_processes += len(cgroup.pids())
        cgroup.kill()
        cgroup.wait_empty(CGROUP_EMPTY_TIMEOUT)
        if cgroup.remove():
            report.removed_cgroups.append(cgroup.path)
