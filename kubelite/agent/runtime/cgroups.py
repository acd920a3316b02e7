"""cgroups for the process runtime: find the hierarchies, make per-pod and per-container groups, apply
limits, read usage, and kill everything inside a group.

Layouts, read from ``/proc/self/mountinfo`` (`parse_mountinfo`):

* ``v1``: one mount per controller, or co-mounted ones (``cpu,cpuacct``).
* ``v2``: one unified hierarchy holding the controllers; they are enabled down the tree through
  ``cgroup.subtree_control``.
* ``hybrid``: v1 controllers plus a cgroup2 mount (usually ``/sys/fs/cgroup/unified``) without them.
  Limits go through v1; the runtime still makes a group in the unified tree, because it gives
  ``cgroup.kill`` (atomic kill of a whole group) and ``cgroup.events`` (wait until empty).
* ``none``: no cgroup file system; nothing is enforced.

A `Cgroup` is one relative path (``kubelite/pod<uid>/<container id>``) present in every hierarchy the
runtime uses.  Everything here does blocking file I/O: call it from a worker thread.  Conversions from
Kubernetes quantities follow the kubelet (`cpu_shares`, `cpu_weight`, `cpu_quota`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kubelite.agent.runtime.interface import Resources

__all__ = [
    "CFS_PERIOD_US",
    "Cgroup",
    "CgroupLayout",
    "cpu_quota",
    "cpu_shares",
    "cpu_weight",
    "detect_layout",
    "parse_mountinfo",
]

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
V2_CONTROLLERS = ("memory", "cpu", "pids")
UNIFIED = "unified"  # the role of the cgroup2 directory in `Cgroup.dirs`

CFS_PERIOD_US = 100_000
MIN_SHARES, MAX_SHARES = 2, 262_144
MIN_QUOTA_US = 1_000


def cpu_shares(request_millis: int | None) -> int:
    """cgroup v1 ``cpu.shares`` for a CPU request, as the kubelet computes it (no request → 2)."""
    if not request_millis:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, request_millis * 1024 // 1000))


def cpu_weight(shares: int) -> int:
    """cgroup v2 ``cpu.weight`` for v1 shares (the kubelet's / runc's mapping of [2, 262144] to [1, 10000])."""
    return 1 + ((shares - MIN_SHARES) * 9999) // (MAX_SHARES - MIN_SHARES)


def cpu_quota(limit_millis: int, period_us: int = CFS_PERIOD_US) -> int:
    """CFS quota in microseconds per `period_us` for a CPU limit (at least 1 ms, as the kubelet)."""
    return max(MIN_QUOTA_US, limit_millis * period_us // 1000)


@dataclass(frozen=True, slots=True)
class CgroupLayout:
    """Where the hierarchies are.  `v1` maps each v1 controller the runtime uses to its mount point;
    `v2_controllers` are the controllers enabled at the unified root (only used in ``v2`` mode)."""

    mode: str  # "v1" | "v2" | "hybrid" | "none"
    v1: Mapping[str, Path] = field(default_factory=dict)
    unified: Path | None = None
    v2_controllers: frozenset[str] = frozenset()

    def roots(self) -> dict[str, Path]:
        """Role (a v1 controller name, or ``unified``) → hierarchy root, for every hierarchy used."""
        roots = dict(self.v1) if self.mode in ("v1", "hybrid") else {}
        if self.unified is not None and self.mode in ("v2", "hybrid"):
            roots[UNIFIED] = self.unified
        return roots

    def writable(self) -> bool:
        roots = self.roots()
        return bool(roots) and all(os.access(root, os.W_OK) for root in roots.values())


def _unescape(field_: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_)


def parse_mountinfo(text: str) -> CgroupLayout:
    """The cgroup layout described by the text of ``/proc/<pid>/mountinfo`` (pure)."""
    v1: dict[str, Path] = {}
    unified: Path | None = None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        mount_point, fstype, super_options = Path(_unescape(fields[4])), tail[0], tail[2].split(",")
        if fstype == "cgroup2" and unified is None:
            unified = mount_point
        elif fstype == "cgroup":
            for controller in super_options:
                if controller in V1_CONTROLLERS:
                    v1.setdefault(controller, mount_point)
    if v1:
        mode = "hybrid" if unified is not None else "v1"
    else:
        mode = "v2" if unified is not None else "none"
    return CgroupLayout(mode=mode, v1=v1, unified=unified)


def detect_layout(mountinfo: Path = Path("/proc/self/mountinfo")) -> CgroupLayout:
    """`parse_mountinfo` of this process, plus the controllers available at a v2 root."""
    try:
        layout = parse_mountinfo(mountinfo.read_text())
    except OSError:
        return CgroupLayout(mode="none")
    if layout.mode == "v2" and layout.unified is not None:
        try:
            available = frozenset((layout.unified / "cgroup.controllers").read_text().split())
        except OSError:
            available = frozenset()
        layout = CgroupLayout(mode="v2", unified=layout.unified, v2_controllers=available)
    return layout


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read_keyed(path: Path) -> dict[str, int]:
    """``key value`` lines (memory.stat, memory.events, cpu.stat, memory.oom_control)."""
    values: dict[str, int] = {}
    try:
        text = path.read_text()
    except OSError:
        return values
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            values[key] = int(value)
    return values


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Cgroup:
    """One group, `path` relative to every hierarchy root (``kubelite/pod<uid>/<id>``)."""

    def __init__(self, layout: CgroupLayout, path: str) -> None:
        self.layout = layout
        self.path = path.strip("/")
        self.dirs: dict[str, Path] = {role: root / self.path for role, root in layout.roots().items()}

    def __repr__(self) -> str:
        return f"Cgroup({self.path!r}, {self.layout.mode})"

    def distinct_dirs(self) -> list[Path]:
        """Each directory once (co-mounted controllers share one)."""
        return list(dict.fromkeys(self.dirs.values()))

    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a process writes ``0`` to, to join this group everywhere."""
        return [directory / "cgroup.procs" for directory in self.distinct_dirs()]

    def _dir(self, role: str) -> Path | None:
        if self.layout.mode == "v2":
            if role in self.layout.v2_controllers or role == UNIFIED:
                return self.dirs.get(UNIFIED)
            return None
        return self.dirs.get(role)

    # lifecycle

    def create(self) -> None:
        """Make the directories (and parents); on v2 enable the controllers down to this group.
        Idempotent."""
        if self.layout.mode == "v2" and self.layout.unified is not None:
            wanted = [c for c in V2_CONTROLLERS if c in self.layout.v2_controllers]
            current = self.layout.unified
            for part in self.path.split("/"):
                self._enable_controllers(current, wanted)
                current = current / part
                current.mkdir(exist_ok=True)
            return
        for directory in self.distinct_dirs():
            directory.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _enable_controllers(directory: Path, wanted: list[str]) -> None:
        try:
            enabled = set((directory / "cgroup.subtree_control").read_text().split())
        except OSError:
            return
        for controller in wanted:
            if controller not in enabled:
                with contextlib.suppress(OSError):
                    _write(directory / "cgroup.subtree_control", f"+{controller}")

    def remove(self) -> bool:
        """rmdir everywhere; ``False`` if a directory is still busy (processes or child groups)."""
        removed = True
        for directory in self.distinct_dirs():
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise
                removed = False
        return removed

    def children(self) -> set[str]:
        """Names of the child groups, over all hierarchies."""
        names: set[str] = set()
        for directory in self.distinct_dirs():
            with contextlib.suppress(OSError):
                names.update(entry.name for entry in os.scandir(directory) if entry.is_dir(follow_symlinks=False))
        return names

    # limits

    def apply(self, resources: Resources) -> list[str]:
        """Write the limits.  Returns what could not be enforced (a controller that is missing)."""
        missing: list[str] = []
        v2 = self.layout.mode == "v2"
        memory = self._dir("memory")
        if memory is None:
            if resources.memory_limit_bytes is not None:
                missing.append("memory")
        elif v2:
            limit = resources.memory_limit_bytes
            _write(memory / "memory.max", str(limit) if limit is not None else "max")
            for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                with contextlib.suppress(OSError):
                    _write(memory / name, value)
        elif resources.memory_limit_bytes is not None:
            _write(memory / "memory.limit_in_bytes", str(resources.memory_limit_bytes))
        cpu = self._dir("cpu")
        shares = cpu_shares(resources.cpu_request_millis)
        limit_millis = resources.cpu_limit_millis
        if cpu is None:
            if resources.cpu_request_millis is not None or limit_millis is not None:
                missing.append("cpu")
        elif v2:
            _write(cpu / "cpu.weight", str(cpu_weight(shares)))
            quota = str(cpu_quota(limit_millis)) if limit_millis else "max"
            _write(cpu / "cpu.max", f"{quota} {CFS_PERIOD_US}")
        else:
            _write(cpu / "cpu.shares", str(shares))
            if limit_millis:
                _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
                _write(cpu / "cpu.cfs_quota_us", str(cpu_quota(limit_millis)))
        pids = self._dir("pids")
        if pids is None:
            if resources.pids_limit is not None:
                missing.append("pids")
        else:
            _write(pids / "pids.max", str(resources.pids_limit) if resources.pids_limit else "max")
        return missing

    # processes

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.procs_files():
            with contextlib.suppress(OSError):
                found.update(int(line) for line in path.read_text().split())
        return found

    def signal(self, signum: int) -> int:
        """Send `signum` to every process in the group; returns how many were signalled."""
        count = 0
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
                count += 1
        return count

    def kill(self) -> None:
        """SIGKILL everything: ``cgroup.kill`` where the kernel has it (atomic, also catches processes
        being forked), else repeated SIGKILL of every listed pid until none is left."""
        unified = self.dirs.get(UNIFIED)
        if unified is not None and (unified / "cgroup.kill").exists():
            with contextlib.suppress(FileNotFoundError):
                _write(unified / "cgroup.kill", "1")
        for _ in range(100):
            if not self.signal(signal.SIGKILL):
                return
            time.sleep(0.001)

    def wait_empty(self, timeout: float) -> bool:
        """Block until no process is left (``False`` on timeout).  Uses ``cgroup.events`` change
        notification where there is a unified group, else re-reads the process lists with back-off."""
        deadline = time.monotonic() + timeout
        unified = self.dirs.get(UNIFIED)
        events = unified / "cgroup.events" if unified is not None else None
        if events is not None and events.exists():
            try:
                return self._wait_unpopulated(events, deadline)
            except FileNotFoundError:
                return True
        delay = 0.001
        while self.pids():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)
        return True

    @staticmethod
    def _wait_unpopulated(events: Path, deadline: float) -> bool:
        fd = os.open(events, os.O_RDONLY)
        try:
            poller = select.poll()
            poller.register(fd, select.POLLPRI | select.POLLERR)
            while True:
                os.lseek(fd, 0, os.SEEK_SET)
                if b"populated 0" in os.read(fd, 4096):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                poller.poll(remaining * 1000)
        finally:
            os.close(fd)

    # usage

    def oom_kills(self) -> int:
        """How many processes the kernel OOM killer killed in this group."""
        memory = self._dir("memory")
        if memory is None:
            return 0
        name = "memory.events" if self.layout.mode == "v2" else "memory.oom_control"
        return _read_keyed(memory / name).get("oom_kill", 0)

    def cpu_usage_ns(self) -> int:
        if self.layout.mode == "v2":
            cpu = self._dir("cpu") or self.dirs.get(UNIFIED)
            return _read_keyed(cpu / "cpu.stat").get("usage_usec", 0) * 1000 if cpu else 0
        cpuacct = self._dir("cpuacct")
        return (_read_int(cpuacct / "cpuacct.usage") or 0) if cpuacct else 0

    def memory_usage(self) -> tuple[int, int]:
        """(usage, working set) in bytes; the working set leaves out inactive page cache."""
        memory = self._dir("memory")
        if memory is None:
            return 0, 0
        if self.layout.mode == "v2":
            usage = _read_int(memory / "memory.current") or 0
            inactive = _read_keyed(memory / "memory.stat").get("inactive_file", 0)
        else:
            usage = _read_int(memory / "memory.usage_in_bytes") or 0
            inactive = _read_keyed(memory / "memory.stat").get("total_inactive_file", 0)
        return usage, max(0, usage - inactive)
