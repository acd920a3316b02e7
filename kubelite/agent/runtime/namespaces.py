"""A pod's shared namespaces without a holder process: UTS (the hostname) and IPC, made once per
sandbox and kept alive by bind-mounting them onto files (``unshare --uts=<file> --ipc=<file>``), as
``ip netns`` does for network namespaces.  Containers join them with ``nsenter --uts=<file>
--ipc=<file>``; releasing unmounts the files (the namespaces live on while a container still uses
them).  Blocking; call from a worker thread."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import subprocess
from pathlib import Path

from kubelite.agent.runtime.interface import ContainerRuntimeError

__all__ = ["KINDS", "create_pod_namespaces", "is_namespace_mount", "release_namespace"]

KINDS = ("uts", "ipc")
MNT_DETACH = 2
SET_HOSTNAME = 'printf %s "$1" > /proc/sys/kernel/hostname'

_libc = ctypes.CDLL(None, use_errno=True)


def create_pod_namespaces(directory: Path, hostname: str, *, unshare: str, sh: str) -> dict[str, str]:
    """New UTS and IPC namespaces bound to ``<directory>/uts`` and ``ipc``, the hostname set in the
    UTS one.  Returns kind → file.  On failure nothing is left mounted."""
    files = {kind: directory / kind for kind in KINDS}
    for path in files.values():
        path.touch()
    argv = [unshare, *(f"--{kind}={path}" for kind, path in files.items()), "--", sh, "-c", SET_HOSTNAME]
    try:
        result = subprocess.run([*argv, "sh", hostname], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        for path in files.values():
            release_namespace(path)
        raise ContainerRuntimeError(f"creating the pod's namespaces failed: {exc}") from exc
    if result.returncode != 0:
        for path in files.values():
            release_namespace(path)
        message = result.stderr.decode(errors="replace").strip()
        raise ContainerRuntimeError(f"creating the pod's namespaces failed: {message}")
    return {kind: str(path) for kind, path in files.items()}


def is_namespace_mount(path: Path) -> bool:
    """`path` still has a namespace bound onto it (after a reboot it is a plain empty file)."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except OSError:
        return False


def release_namespace(path: Path) -> None:
    """Unmount and delete the file; fine if it is neither mounted nor there."""
    if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, os.strerror(err), str(path))
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
