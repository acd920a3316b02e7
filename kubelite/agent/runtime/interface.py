"""The container runtime contract the node agent drives: CRI-shaped, one protocol for every runtime.

A pod is a *sandbox* (the namespaces and cgroup its containers share) holding *containers*.  The agent
calls, per pod: `run_pod_sandbox` → for each container `create_container` + `start_container` →
`wait_container` / `container_status` → `stop_container` → `remove_container` → `stop_pod_sandbox` →
`remove_pod_sandbox`.  `kubelite.testing.runtime_contract` checks every implementation (process,
containerd, simulated) against the same suite.  The contract:

* Ids are opaque strings chosen by the runtime.  Calls on an unknown id raise `NotFoundError`, except
  `stop_*` and `remove_*`, which are idempotent: they succeed for an id that is already gone.
* A container moves CREATED → RUNNING → EXITED and never back; a restart is a new container (the agent
  counts `attempt`).  UNKNOWN is CRI's state for a container whose state the runtime cannot tell.
* `stop_container(id, timeout)` sends SIGTERM to every process of the container, SIGKILL to whatever is
  left after `timeout` seconds, and returns once the container is EXITED.  No process of a container
  outlives it: when the main process exits, the rest of its processes are killed.
* `wait_container` returns the final status once the container is EXITED and its log is complete.
* Logs are files in the CRI format, one record per line: ``<RFC3339Nano> <stdout|stderr> <F|P> <text>``
  (``P`` marks a partial line continued in the next record).  The runtime writes and rotates them.
* `exit_code` follows the shell convention: ``128 + signal`` for a process killed by a signal.
  `reason` is ``Completed`` (exit 0), ``Error`` (non-zero), ``OOMKilled`` (killed by the kernel for
  exceeding the memory limit), or ``StartError`` (it never ran; `message` says why).

Error tree::

    ContainerRuntimeError
      NotFoundError          no container / sandbox with that id
      InvalidStateError      the operation does not fit the current state (start twice, create in a stopped sandbox)
      InvalidArgumentError   a config the runtime cannot honour (a netns path that does not exist, empty name)
      StartError             the container could not be started; it is now EXITED with reason StartError
      UnsupportedError       the runtime cannot do this in its mode (a netns without isolation)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

__all__ = [
    "ByteReader",
    "ByteWriter",
    "ContainerConfig",
    "ContainerRuntimeError",
    "ContainerState",
    "ContainerStats",
    "ContainerStatus",
    "ExecProcess",
    "ExecResult",
    "InvalidArgumentError",
    "InvalidStateError",
    "NotFoundError",
    "PodSandboxConfig",
    "PodSandboxStatus",
    "Resources",
    "Runtime",
    "SandboxState",
    "StartError",
    "UnsupportedError",
]


class ContainerRuntimeError(Exception):
    """Base of every runtime error."""


class NotFoundError(ContainerRuntimeError):
    pass


class InvalidStateError(ContainerRuntimeError):
    pass


class InvalidArgumentError(ContainerRuntimeError):
    pass


class StartError(ContainerRuntimeError):
    pass


class UnsupportedError(ContainerRuntimeError):
    pass


class ContainerState(StrEnum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    EXITED = "EXITED"
    UNKNOWN = "UNKNOWN"


class SandboxState(StrEnum):
    READY = "READY"
    NOTREADY = "NOTREADY"


# Reasons, spelled as the kubelet shows them in containerStatuses[].state.terminated.reason.
REASON_COMPLETED = "Completed"
REASON_ERROR = "Error"
REASON_OOM_KILLED = "OOMKilled"
REASON_START_ERROR = "StartError"


@dataclass(frozen=True, slots=True)
class PodSandboxConfig:
    """What a pod's containers share.

    `hostname` defaults to `name`.  `netns_path` is a network namespace file (``/run/netns/<pod>``) made
    by the caller; ``None`` means the host network.  `cgroup_parent` is the pod's cgroup path relative
    to each hierarchy's root (``kubelite/pod<uid>`` when ``None``).  Relative container `log_path`s are
    resolved under `log_directory` (a runtime-chosen directory when ``None``).
    """

    uid: str
    name: str
    namespace: str
    hostname: str = ""
    netns_path: str | None = None
    cgroup_parent: str | None = None
    log_directory: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resources:
    """Limits for one container, already converted from Quantities.  ``None`` = not set."""

    cpu_request_millis: int | None = None
    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None
    pids_limit: int | None = None


@dataclass(frozen=True, slots=True)
class Mount:
    """A bind mount into the container's mount namespace: `host_path` (a file or a directory on the node)
    appears at `container_path`.  Mounts apply in order, so a later one may sit inside an earlier one."""

    host_path: str
    container_path: str
    readonly: bool = False


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """One container.  `command` is already resolved (the image's entrypoint/cmd merged with the pod
    spec's command/args); `command[0]` is looked up in ``env["PATH"]``.  `working_dir` ``""`` means
    ``/``.  `log_path` is relative to the sandbox's log directory (``<name>/<attempt>.log`` when empty)
    or absolute.  `rootfs` is a directory to run in (chroot) instead of the host's ``/``; `image` is
    recorded, not pulled, by runtimes without images."""

    name: str
    command: tuple[str, ...] | list[str]
    image: str = ""
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    tty: bool = False
    stdin: bool = False
    resources: Resources = field(default_factory=Resources)
    log_path: str = ""
    rootfs: str | None = None
    attempt: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()


@dataclass(frozen=True, slots=True)
class PodSandboxStatus:
    id: str
    uid: str
    name: str
    namespace: str
    state: SandboxState
    created_at: datetime
    hostname: str
    netns_path: str | None
    cgroup_parent: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    """A snapshot.  `pid` is the host pid of the container's main process while it runs.  Timestamps
    are timezone-aware UTC."""

    id: str
    sandbox_id: str
    name: str
    attempt: int
    image: str
    state: ContainerState
    created_at: datetime
    pid: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    log_path: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContainerStats:
    """Usage as the kubelet's summary API reports it: cumulative CPU time, and the working set
    (usage minus inactive page cache), which is what evictions and `kubectl top` use."""

    container_id: str
    timestamp: datetime
    cpu_usage_ns: int
    memory_working_set_bytes: int
    memory_usage_bytes: int


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class ByteReader(Protocol):
    async def read(self, n: int = 65536) -> bytes:
        """Up to `n` bytes as soon as any are available; ``b""`` at end of stream."""
        ...


class ByteWriter(Protocol):
    def write(self, data: bytes) -> None:
        """Queue `data`; call `drain` to wait until it has been handed to the process."""
        ...

    async def drain(self) -> None: ...

    def close(self) -> None:
        """End of input: the process reads EOF (with a tty: an end-of-file character)."""
        ...


class ExecProcess(Protocol):
    """A command running inside a container (``kubectl exec``).  With `tty`, stderr is merged into
    `stdout` (`stderr` is ``None``).  `stdin` is ``None`` unless asked for.  The caller must
    `aclose()` it; that kills the process if it still runs and releases its descriptors."""

    @property
    def stdin(self) -> ByteWriter | None: ...

    @property
    def stdout(self) -> ByteReader: ...

    @property
    def stderr(self) -> ByteReader | None: ...

    def resize(self, width: int, height: int) -> None:
        """Set the terminal size (columns, rows); only with a tty."""
        ...

    async def wait(self) -> int:
        """The exit code, once the process has exited."""
        ...

    async def aclose(self) -> None: ...


class Runtime(Protocol):
    """See the module docstring for the contract.  Every method may be called concurrently; calls on
    one container are serialized by the runtime."""

    async def start(self) -> None:
        """Get ready (and reconnect to containers a previous instance left running)."""
        ...

    async def close(self) -> None:
        """Stop watching.  Running containers keep running; a new instance picks them up."""
        ...

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        """Create the pod's shared namespaces and cgroup; returns the sandbox id."""
        ...

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Kill every container of the sandbox (no grace period: the agent stops them gracefully
        first) and mark it NOTREADY.  Idempotent."""
        ...

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop it, remove its containers and release everything it holds.  Idempotent."""
        ...

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus: ...

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]: ...

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        """Prepare a container (cgroups with its limits, log file); it is CREATED.  Returns its id."""
        ...

    async def start_container(self, container_id: str) -> None:
        """Start a CREATED container; on return it is RUNNING (or EXITED if it exited already).
        Raises `StartError` when it cannot run (the container is then EXITED, reason StartError)."""
        ...

    async def stop_container(self, container_id: str, timeout: float) -> None:
        """SIGTERM the whole process tree, SIGKILL after `timeout` seconds; returns once EXITED."""
        ...

    async def remove_container(self, container_id: str) -> None:
        """Kill it if it runs, then forget it and release its resources.  Its log file stays (the
        agent owns log retention).  Idempotent."""
        ...

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def list_containers(
        self, *, sandbox_id: str | None = None, state: ContainerState | None = None
    ) -> list[ContainerStatus]: ...

    async def wait_container(self, container_id: str) -> ContainerStatus:
        """Return the final status once the container has exited (a CREATED container is waited for
        through its start; removing a running container makes it exit, killed).  Raises
        `NotFoundError` for an unknown id or a container removed before it ran."""
        ...

    async def exec(
        self, container_id: str, command: list[str], *, stdin: bool = False, tty: bool = False
    ) -> ExecProcess:
        """Run `command` in the running container's namespaces, cgroups and environment."""
        ...

    async def attach_stdin(self, container_id: str) -> ByteWriter | None:
        """A writer into the running container's stdin (`kubectl attach -i`), or ``None`` when the
        container was created without ``stdin``.  Closing the writer does not end the container's input."""
        ...

    async def exec_sync(self, container_id: str, command: list[str], *, timeout: float | None = None) -> ExecResult:
        """Run `command` to completion and collect its output (exec probes).  On `timeout` the command
        is killed and `TimeoutError` raised."""
        ...

    def container_log_path(self, container_id: str) -> Path:
        """Where the container's CRI log is written (rotated files are ``<path>.1``)."""
        ...

    async def stats(self, container_id: str) -> ContainerStats: ...
