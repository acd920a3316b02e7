"""What the process runtime keeps on disk so that a restarted runtime knows what exists.

Layout under the runtime's root directory::

    sandboxes/<id>/sandbox.json   SandboxRecord
    sandboxes/<id>/uts, ipc       the pod's namespaces, kept alive by bind mounts (isolated mode)
    containers/<id>/container.json  ContainerRecord
    containers/<id>/stdout, stderr, stdin   FIFOs between the container and the runtime's log pumps
    containers/<id>/exit          the exit code, written by the container's shim when it ends
    logs/<sandbox id>/...         default log directory

A record is written whole to a temporary file and renamed over the old one, so a reader sees the old or
the new record, never a mix.  Records are plain data; the runtime owns every write.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from kubelite.agent.runtime.interface import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    Mount,
    PodSandboxConfig,
    PodSandboxStatus,
    Resources,
    SandboxState,
)

__all__ = ["ContainerRecord", "SandboxRecord", "load_json", "write_json_atomic"]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as file:
        json.dump(data, file, separators=(",", ":"))
    os.replace(tmp, path)


def load_json(path: Path) -> dict[str, Any] | None:
    """The record at `path`; ``None`` if missing or unreadable (a crash before its first write)."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            return data
    return None


@dataclass(slots=True)
class SandboxRecord:
    id: str
    config: PodSandboxConfig
    state: SandboxState
    created_at: datetime
    cgroup_parent: str
    log_directory: str
    namespaces: dict[str, str] = field(default_factory=dict)  # kind (uts, ipc) → bind-mounted file

    def status(self) -> PodSandboxStatus:
        config = self.config
        return PodSandboxStatus(
            id=self.id,
            uid=config.uid,
            name=config.name,
            namespace=config.namespace,
            state=self.state,
            created_at=self.created_at,
            hostname=config.hostname or config.name,
            netns_path=config.netns_path,
            cgroup_parent=self.cgroup_parent,
            labels=dict(config.labels),
            annotations=dict(config.annotations),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "config": asdict(self.config),
            "state": self.state.value,
            "created_at": _time(self.created_at),
            "cgroup_parent": self.cgroup_parent,
            "log_directory": self.log_directory,
            "namespaces": self.namespaces,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxRecord:
        created = _parse_time(data["created_at"])
        assert created is not None
        return cls(
            id=data["id"],
            config=PodSandboxConfig(**data["config"]),
            state=SandboxState(data["state"]),
            created_at=created,
            cgroup_parent=data["cgroup_parent"],
            log_directory=data["log_directory"],
            namespaces=dict(data.get("namespaces", {})),
        )


@dataclass(slots=True)
class ContainerRecord:
    """A container as persisted.  `shim_pid`/`shim_started` identify the shim (whose exit is the
    container's), `pid`/`pid_started` the container's main process (start times in clock ticks, see
    `kubelite.agent.runtime.procfs.start_time`)."""

    id: str
    sandbox_id: str
    config: ContainerConfig
    log_path: str
    cgroup_path: str
    state: ContainerState
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    shim_pid: int | None = None
    shim_started: int | None = None
    pid: int | None = None
    pid_started: int | None = None
    pgid: int | None = None  # unisolated: the process group that stopping signals

    def status(self) -> ContainerStatus:
        config = self.config
        return ContainerStatus(
            id=self.id,
            sandbox_id=self.sandbox_id,
            name=config.name,
            attempt=config.attempt,
            image=config.image,
            state=self.state,
            created_at=self.created_at,
            pid=self.pid if self.state == ContainerState.RUNNING else None,
            started_at=self.started_at,
            finished_at=self.finished_at,
            exit_code=self.exit_code,
            reason=self.reason,
            message=self.message,
            log_path=self.log_path,
            labels=dict(config.labels),
            annotations=dict(config.annotations),
        )

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["config"] = asdict(self.config)
        data["config"]["command"] = list(self.config.command)
        data["state"] = self.state.value
        for name in ("created_at", "started_at", "finished_at"):
            data[name] = _time(data[name])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerRecord:
        config_data = dict(data["config"])
        config_data["command"] = tuple(config_data["command"])
        config_data["resources"] = Resources(**config_data["resources"])
        config_data["mounts"] = tuple(Mount(**m) for m in config_data.get("mounts") or ())
        values = dict(data)
        values["config"] = ContainerConfig(**config_data)
        values["state"] = ContainerState(data["state"])
        for name in ("created_at", "started_at", "finished_at"):
            values[name] = _parse_time(data.get(name))
        return cls(**values)

    def exited(self, *, exit_code: int, reason: str, message: str, finished_at: datetime) -> ContainerRecord:
        return replace(
            self,
            state=ContainerState.EXITED,
            exit_code=exit_code,
            reason=reason,
            message=message,
            finished_at=finished_at,
        )
