"""Reading ``/proc`` for the process runtime: start times (to tell a live process from a reused pid),
namespace pids, sessions and usage of process trees.  Blocking; call from a worker thread."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = [
    "PAGE_SIZE",
    "TICKS_PER_SECOND",
    "children_of",
    "init_pid_of",
    "is_alive",
    "pid_namespace_members",
    "session_members",
    "start_time",
    "tree_usage",
]

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name: [0] is the state (field 3 of proc(5))."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot; ``None`` if there is no such process.  A pid and
    its start time identify a process across pid reuse."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20 or fields[0] == "Z":
        return None
    return int(fields[19])


def is_alive(pid: int, started: int | None) -> bool:
    """`pid` exists (not as a zombie) and is the process that started at `started`."""
    return started is not None and start_time(pid) == started


def init_pid_of(pids: set[int]) -> int | None:
    """The one of `pids` that is PID 1 of its own (child) pid namespace, by its ``NSpid`` line."""
    for pid in sorted(pids):
        with contextlib.suppress(OSError):
            for line in (PROC / str(pid) / "status").read_text().splitlines():
                if line.startswith("NSpid:"):
                    values = line.split()[1:]
                    if len(values) > 1 and values[-1] == "1":
                        return pid
                    break
    return None


def pid_namespace_members(pid: int) -> set[int]:
    """Every process in the pid namespace whose init is `pid` (for isolation without cgroups)."""
    try:
        namespace = os.readlink(PROC / str(pid) / "ns" / "pid")
    except OSError:
        return set()
    members: set[int] = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(PROC):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(PROC / entry.name / "ns" / "pid") == namespace:
                        members.add(int(entry.name))
    return members


def children_of(parent: int) -> set[int]:
    """Processes whose parent is `parent` (by scanning; ``/proc/<pid>/task/*/children`` is optional)."""
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(PROC):
            if entry.name.isdigit():
                fields = _stat_fields(int(entry.name))
                if fields and fields[1] == str(parent):
                    found.add(int(entry.name))
    return found


def session_members(leader: int) -> set[int]:
    """Processes in the session or process group led by `leader` (zombies left out)."""
    members: set[int] = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(PROC):
            if not entry.name.isdigit():
                continue
            fields = _stat_fields(int(entry.name))
            if fields and fields[0] != "Z" and str(leader) in (fields[2], fields[3]):
                members.add(int(entry.name))
    return members


def tree_usage(pids: set[int]) -> tuple[int, int]:
    """(CPU time in ns, resident memory in bytes) summed over `pids` (for runs without cgroups)."""
    cpu_ticks = rss_pages = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None or len(fields) < 22:
            continue
        cpu_ticks += int(fields[11]) + int(fields[12])
        rss_pages += int(fields[21])
    return cpu_ticks * 1_000_000_000 // TICKS_PER_SECOND, rss_pages * PAGE_SIZE
