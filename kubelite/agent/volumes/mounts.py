"""A container's ``volumeMounts`` as runtime `Mount`s (the kubelet's makeMounts).

* ``mountPath`` ← the volume's directory (or file) on the node, or ``subPath`` inside it (created as a
  0750 directory when missing, as upstream), ``subPathExpr`` expanded with the container's environment
  (``$(VAR)``; an unknown name stays as written).
* ``readOnly`` from the mount or the volume: a claim source's ``readOnly``; configMap, secret,
  downwardAPI and projected volumes are always read-only (upstream since 1.10).
* ``mountPropagation`` is ignored: every mount is private to the container.
* The pod's own mounts (/etc/hosts, /etc/resolv.conf) follow, unless the container mounts something at
  that path itself.

Failures raise `EnvError` with reason ``CreateContainerConfigError`` and upstream's words.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelite.agent.pods.env import CREATE_CONTAINER_CONFIG_ERROR, EnvError, expand, mapping_for
from kubelite.agent.runtime.interface import Mount

__all__ = ["VolumePath", "container_mounts", "sub_path"]


@dataclass(frozen=True, slots=True)
class VolumePath:
    """Where a set-up volume is on the node, and whether it must be mounted read-only."""

    host_path: str
    readonly: bool = False


def sub_path(mount: dict[str, Any], env: Mapping[str, str]) -> str:
    """The mount's subPath, subPathExpr expanded; checked to stay inside the volume."""
    path = str(mount.get("subPath") or "")
    if mount.get("subPathExpr"):
        path = expand(str(mount["subPathExpr"]), mapping_for(dict(env)))
    if not path:
        return ""
    if path.startswith("/"):
        raise EnvError(CREATE_CONTAINER_CONFIG_ERROR, f"error SubPath `{path}` must not be an absolute path")
    if ".." in path.split("/"):
        raise EnvError(CREATE_CONTAINER_CONFIG_ERROR, f"unable to provision SubPath `{path}`: must not contain '..'")
    return path


def container_mounts(
    container: dict[str, Any],
    env: Mapping[str, str],
    volumes: Mapping[str, VolumePath],
    *,
    pod_mounts: Sequence[Mount] = (),
) -> tuple[Mount, ...]:
    """The runtime mounts of `container` (module docstring).  Creates missing subPath directories on
    the node (inside the volume).  Blocking (file system)."""
    found: list[Mount] = []
    for mount in container.get("volumeMounts") or []:
        name = str(mount.get("name") or "")
        volume = volumes.get(name)
        if volume is None:
            raise EnvError(
                CREATE_CONTAINER_CONFIG_ERROR,
                f'cannot find volume "{name}" to mount into container "{container.get("name", "")}"',
            )
        source = volume.host_path
        relative = sub_path(mount, env)
        if relative:
            base = Path(volume.host_path)
            source = str(base / relative)
            if not os.path.lexists(source):
                os.makedirs(source, mode=0o750, exist_ok=True)
            real = os.path.realpath(source)
            real_base = os.path.realpath(base)
            if real != real_base and not real.startswith(real_base.rstrip("/") + "/"):
                raise EnvError(
                    CREATE_CONTAINER_CONFIG_ERROR, f"subpath {source!r} not within volume path {str(base)!r}"
                )
            source = real  # a projected key is a symlink into ..data: bind what it points at now
        readonly = bool(mount.get("readOnly")) or volume.readonly
        found.append(Mount(source, str(mount.get("mountPath") or ""), readonly))
    taken = {m.container_path for m in found}
    found += [m for m in pod_mounts if m.container_path not in taken]
    return tuple(found)
