"""What a volume holds, as pure functions: payloads of configMap, secret, downwardAPI and projected
volumes from the objects they name, and hostPath type checks.  Failures raise `VolumeError` whose text
is the kubelet's (it follows ``MountVolume.SetUp failed for volume "x" : `` in the FailedMount event).
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubelite.agent.pods.env import EnvError, _field_value, _find_container, _resource_value, host_allocatable
from kubelite.agent.volumes.atomic import FileProjection

__all__ = [
    "DEFAULT_MODE",
    "VolumeError",
    "check_host_path",
    "config_map_payload",
    "downward_payload",
    "secret_payload",
]

DEFAULT_MODE = 0o644  # defaultMode 420, as the API server defaults it


class VolumeError(Exception):
    """A volume cannot be set up (yet); the message is the kubelet's."""


def _mode(value: Any, default: int) -> int:
    return int(value) if value is not None else default


def _keyed_payload(
    data: Mapping[str, bytes], source: dict[str, Any], *, kind: str, default_mode: int
) -> dict[str, FileProjection]:
    """Every key as a file, or only `items` (key → path, mode); a missing item key is an error unless
    the source is optional."""
    items = source.get("items") or []
    if not items:
        return {key: FileProjection(value, default_mode) for key, value in data.items()}
    payload = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if source.get("optional"):
                continue
            what = "config" if kind == "configmap" else "secret"
            raise VolumeError(f"{kind} references non-existent {what} key: {key}")
        payload[str(item.get("path") or key)] = FileProjection(data[key], _mode(item.get("mode"), default_mode))
    return payload


def config_map_payload(
    config_map: dict[str, Any] | None, source: dict[str, Any], *, default_mode: int | None = None
) -> dict[str, FileProjection]:
    """A configMap volume (or projected source); `config_map` None = not found."""
    mode = _mode(source.get("defaultMode") if default_mode is None else default_mode, DEFAULT_MODE)
    if config_map is None:
        if source.get("optional"):
            return {}
        raise VolumeError(f'configmap "{source.get("name", "")}" not found')
    data = {k: str(v).encode() for k, v in (config_map.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (config_map.get("binaryData") or {}).items()})
    return _keyed_payload(data, source, kind="configmap", default_mode=mode)


def secret_payload(
    secret: dict[str, Any] | None, source: dict[str, Any], *, default_mode: int | None = None
) -> dict[str, FileProjection]:
    """A secret volume (`secretName`) or projected source (`name`); `secret` None = not found."""
    mode = _mode(source.get("defaultMode") if default_mode is None else default_mode, DEFAULT_MODE)
    if secret is None:
        if source.get("optional"):
            return {}
        raise VolumeError(f'secret "{source.get("secretName") or source.get("name") or ""}" not found')
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return _keyed_payload(data, source, kind="secret", default_mode=mode)


def downward_payload(
    pod: dict[str, Any], source: dict[str, Any], *, node_name: str = "", default_mode: int | None = None
) -> dict[str, FileProjection]:
    """A downwardAPI volume: fieldRef (metadata.name/namespace/uid/labels/annotations, …) and
    resourceFieldRef items; labels and annotations as sorted ``key="value"`` lines."""
    mode = _mode(source.get("defaultMode") if default_mode is None else default_mode, DEFAULT_MODE)
    payload = {}
    for item in source.get("items") or []:
        try:
            if item.get("fieldRef"):
                value = _field_value(
                    str(item["fieldRef"].get("fieldPath") or ""), pod, node_name=node_name, node_ip="", pod_ip=""
                )
            elif item.get("resourceFieldRef"):
                selector = item["resourceFieldRef"]
                container = _find_container(pod, str(selector.get("containerName") or ""))
                value = _resource_value(selector, container, host_allocatable())
            else:
                continue
        except EnvError as exc:
            raise VolumeError(exc.message) from exc
        payload[str(item.get("path") or "")] = FileProjection(value.encode(), _mode(item.get("mode"), mode))
    return payload


HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice")


def check_host_path(path: str, path_type: str) -> None:
    """The hostPath `type` check, creating what the *OrCreate types create (0755 directory, 0644
    file).  Raises `VolumeError` with upstream's wording.  Blocking."""
    target = Path(path)
    if path_type == "DirectoryOrCreate" and not os.path.lexists(target):
        target.mkdir(mode=0o755, parents=True)
        return
    if path_type == "FileOrCreate" and not os.path.lexists(target):
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        target.touch(mode=0o644)
        return
    try:
        mode = os.stat(target).st_mode
    except OSError:
        mode = 0
    checks = {
        "DirectoryOrCreate": (stat.S_ISDIR, "a directory"),
        "Directory": (stat.S_ISDIR, "a directory"),
        "FileOrCreate": (stat.S_ISREG, "a file"),
        "File": (stat.S_ISREG, "a file"),
        "Socket": (stat.S_ISSOCK, "a socket file"),
        "CharDevice": (stat.S_ISCHR, "a character device"),
        "BlockDevice": (stat.S_ISBLK, "a block device"),
    }
    if path_type not in checks:
        if path_type == "" and not os.path.lexists(target):
            target.mkdir(mode=0o755, parents=True)  # what containerd does with a missing bind source
        if path_type not in HOST_PATH_TYPES:
            raise VolumeError(f"invalid HostPathType {path_type!r}")
        return  # "": no check
    test, what = checks[path_type]
    if not test(mode):
        raise VolumeError(f"hostPath type check failed: {path} is not {what}")
