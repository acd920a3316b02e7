"""`AtomicWriter`: a directory of projected files that changes all at once, in the kubelet's layout.

::

    <dir>/..2024_05_01_10_00_00.123456789/   the current payload (a timestamped directory)
    <dir>/..data -> ..2024_05_01_10_00_00.123456789
    <dir>/<key>  -> ..data/<key>              one symlink per top-level entry of the payload

An update writes a new timestamped directory, points a temporary symlink at it and renames that over
``..data`` (rename is atomic), adds the user-visible symlinks for new top-level entries, removes the ones
gone, then removes the old directory.  A reader that opened ``<dir>/<key>`` sees either the old or the new
payload, never a mix.  A subPath mount binds one resolved file and so keeps the old content (as upstream).
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DATA_DIR", "AtomicWriter", "FileProjection"]

DATA_DIR = "..data"
_TMP_LINK = "..data_tmp"


@dataclass(frozen=True, slots=True)
class FileProjection:
    data: bytes
    mode: int = 0o644


class AtomicWriter:
    """Writes payloads (relative path → `FileProjection`) into `target` (created if missing).  Blocking."""

    def __init__(self, target: Path) -> None:
        self.target = Path(target)

    def current(self) -> dict[str, FileProjection] | None:
        """The payload now visible, or None before the first write."""
        data = self.target / DATA_DIR
        if not data.is_symlink():
            return None
        root = self.target / os.readlink(data)
        found: dict[str, FileProjection] = {}
        for path in root.rglob("*"):
            if path.is_file():
                found[str(path.relative_to(root))] = FileProjection(path.read_bytes(), path.stat().st_mode & 0o7777)
        return found

    def write(self, payload: Mapping[str, FileProjection]) -> bool:
        """Make `payload` the visible content; False when it already was (nothing touched)."""
        for relative in payload:
            _check_relative(relative)
        if self.current() == dict(payload):
            return False
        self.target.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + str(secrets.randbelow(10**9))
        new = self.target / stamp
        new.mkdir(mode=0o755)
        for relative, projection in payload.items():
            path = new / relative
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            path.write_bytes(projection.data)
            os.chmod(path, projection.mode)
        old_link = self.target / DATA_DIR
        old = os.readlink(old_link) if old_link.is_symlink() else None
        tmp = self.target / _TMP_LINK
        tmp.unlink(missing_ok=True)
        os.symlink(stamp, tmp)
        os.rename(tmp, old_link)
        tops = {relative.split("/", 1)[0] for relative in payload}
        for top in tops:
            link = self.target / top
            if not link.is_symlink():
                os.symlink(f"{DATA_DIR}/{top}", link)
        for entry in self.target.iterdir():
            if not entry.name.startswith("..") and entry.name not in tops and entry.is_symlink():
                entry.unlink()
        if old is not None and old != stamp:
            shutil.rmtree(self.target / old, ignore_errors=True)
        return True


def _check_relative(path: str) -> None:
    """Payload paths are relative, without ``..`` elements, and do not start with ``..`` (reserved)."""
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or parts[0].startswith(".."):
        raise ValueError(f"invalid path {path!r} in the volume's payload")
