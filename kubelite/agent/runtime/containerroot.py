"""The root file system an isolated container without a `rootfs` runs in: the host's, copy-on-write.

Volumes mount at paths the host does not have (``/data``, ``/etc/config``), and a container must never
change the host's files.  So INIT (`launch`) builds, inside the container's private mount namespace, a
root of its own and enters it (``unshare --root``)::

    <mount dir>            a tmpfs, private to the container's mount namespace
      upper/ work/         overlayfs upper and work directories (copy-on-write, gone with the container)
      root/                overlay: lowerdir = the host's /, upper on the tmpfs
        proc               a new proc (the container's pid namespace)
        sys dev tmp        recursive binds of the host's (shared: tests and tools rely on a shared /tmp)
        <other mounts>     recursive binds of every other file system mounted on the host (its top-most
                           mount points), since overlayfs shows only the root file system itself
        <volume mounts>    the container's `Mount`s, in order; missing targets are created in the
                           overlay (directories by ``X-mount.mkdir``, files by INIT), never on the host

Everything is mounted by one ``mount -a --fstab`` for the root and one for the container's mounts, so
the cost is a handful of execs (a few milliseconds) whatever the number of mounts.  The mount dir is one
empty directory per runtime, shared by every container: each mounts its own tmpfs on it in its own
namespace, so the host only ever sees the empty directory.

Mount targets are resolved in the root (symlinks on the way, such as ``/var/run -> /run``, followed as
the host has them).  A missing target under a shared directory (/tmp, /dev, /sys, or another file
system bound from the host) is created there, so on the host: the price of sharing them.  /run is part
of the copy-on-write root (its own mounts, such as /run/netns, are bound) unless it is a file system of
its own, which is bound like any other.

Limits: paths with commas or colons in the mount dir break the overlay options; a file mount target
nested inside an earlier directory mount must exist in that mount's source.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["SHARED_DIRS", "bind_fstab", "fstab_escape", "host_mount_points", "root_fstab", "top_mount_points"]

# Recursively bound from the host rather than overlaid (pseudo file systems, runtime state, shared /tmp).
SHARED_DIRS = ("/sys", "/dev", "/tmp")


def fstab_escape(path: str) -> str:
    """A path as fstab(5) and mountinfo spell it (octal escapes for blanks and backslashes)."""
    return path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012")


def _unescape(path: str) -> str:
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and i + 4 <= len(path) and path[i + 1 : i + 4].isdigit():
            out.append(chr(int(path[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def host_mount_points(mountinfo: str) -> list[str]:
    """Mount points (unescaped) listed in a ``/proc/<pid>/mountinfo`` text, in order."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(_unescape(fields[4]))
    return points


def _under(path: str, parent: str) -> bool:
    return parent == "/" or path == parent or path.startswith(parent.rstrip("/") + "/")


def top_mount_points(points: Iterable[str], *, skip: Sequence[str] = ("/proc", *SHARED_DIRS)) -> list[str]:
    """The host mount points a container root binds besides `skip`: not ``/``, not under `skip`, and
    not under another mount point of the result (a recursive bind brings those along)."""
    candidates = sorted({p for p in points if p != "/" and not any(_under(p, s) for s in skip)})
    top: list[str] = []
    for point in candidates:  # sorted: a parent comes before what is under it
        if not any(_under(point, t) for t in top):
            top.append(point)
    return top


def _read_mount_points() -> list[str]:
    try:
        return host_mount_points(Path("/proc/self/mountinfo").read_text())
    except OSError:
        return []


def root_fstab(mount_dir: str, *, mount_points: Iterable[str] | None = None) -> str:
    """The fstab that builds the root under `mount_dir` (whose ``upper``/``work``/``root`` exist on the
    tmpfs by then).  `mount_points`: the host's (default: read from ``/proc/self/mountinfo``)."""
    points = _read_mount_points() if mount_points is None else list(mount_points)
    root = f"{mount_dir}/root"
    overlay = f"lowerdir=/,upperdir={mount_dir}/upper,workdir={mount_dir}/work"
    lines = [f"overlay {fstab_escape(root)} overlay {overlay} 0 0"]
    binds = [d for d in SHARED_DIRS if os.path.isdir(d)]
    binds += [p for p in top_mount_points(points) if os.path.lexists(p)]
    lines += [f"{fstab_escape(p)} {fstab_escape(root + p)} none rbind 0 0" for p in binds]
    lines.append(f"proc {fstab_escape(root)}/proc proc nosuid,nodev,noexec 0 0")
    return "\n".join(lines)


def bind_fstab(root: str, binds: Sequence[tuple[str, str, bool]]) -> tuple[str, list[str]]:
    """The fstab of the container's mounts under `root` (source, target in the container, readonly),
    and the file targets INIT creates first when missing (directory targets: ``X-mount.mkdir``)."""
    lines, files = [], []
    for source, target, readonly in binds:
        # the root mirrors the host's /: a symlink on the way (/var/run -> /run) resolves inside it
        where = root + os.path.realpath(target)
        options = ["bind"] + (["ro"] if readonly else [])
        if os.path.isdir(source):
            options.append("X-mount.mkdir")
        else:
            files.append(where)
        lines.append(f"{fstab_escape(source)} {fstab_escape(where)} none {','.join(options)} 0 0")
    return "\n".join(lines), files
