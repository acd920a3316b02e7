"""`PodVolumes`: one pod's volumes on the node — set up before its sandbox, refreshed while it runs, torn
down when it is gone.

Layout (as the kubelet's): ``<pods dir>/<uid>/volumes/<plugin>/<volume name>`` with the upstream plugin
directory names (``kubernetes.io~empty-dir``, ``~configmap``, ``~secret``, ``~downward-api``,
``~projected``).  hostPath and persistentVolumeClaim volumes have no directory there: their node path is
bind-mounted as is, and tear-down never touches it.

Contracts:

* `setup` is idempotent and keeps data: run again after an agent restart it finds the same directories
  (an emptyDir keeps its files, a memory emptyDir its mounted tmpfs).  It raises `VolumeSetupError` for
  the first volume that cannot be set up (a missing configMap, an unbound claim); the worker reports it
  as a FailedMount event and retries, the pod staying ContainerCreating.
* `refresh` rewrites configMap, secret, downwardAPI and projected volumes whose content changed (the
  atomic ``..data`` swap; subPath mounts keep the old file) and renews service account tokens at 80 % of
  their lifetime.  The worker calls it periodically (the kubelet's sync period is about a minute).
* `size_limit_violation` is the eviction manager's check of ``emptyDir.sizeLimit`` (disk usage).
* `teardown` unmounts memory emptyDirs and removes the pod's volume directories.  `cleanup_orphans`
  does that for pods whose agent was killed.
* Memory emptyDirs are tmpfs mounts in the agent's mount namespace (the host's) under the pod directory,
  made only as root; without root they are plain directories.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from kubelite.agent.volumes.atomic import AtomicWriter, FileProjection
from kubelite.agent.volumes.mounts import VolumePath
from kubelite.agent.volumes.sources import (
    DEFAULT_MODE,
    VolumeError,
    check_host_path,
    config_map_payload,
    downward_payload,
    secret_payload,
)
from kubelite.client.clock import Clock
from kubelite.client.interface import Client, builtin
from kubelite.machinery.errors import ApiError
from kubelite.machinery.quantity import QuantityError, quantity_from_json

log = logging.getLogger(__name__)

__all__ = ["LOCAL_PATH_PROVISIONER", "PLUGIN_DIRS", "PodVolumes", "VolumeSetupError", "cleanup_orphans"]

CONFIGMAPS = builtin("", "configmaps")
SECRETS = builtin("", "secrets")
PVCS = builtin("", "persistentvolumeclaims")
PVS = builtin("", "persistentvolumes")
SERVICEACCOUNTS = builtin("", "serviceaccounts")
LOCAL_PATH_PROVISIONER = "kubelite.io/local-path"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
DEFAULT_TOKEN_SECONDS = 3600

PLUGIN_DIRS = {
    "emptyDir": "kubernetes.io~empty-dir",
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
}
KNOWN = (*PLUGIN_DIRS, "hostPath", "persistentVolumeClaim")


class VolumeSetupError(Exception):
    """`volume` cannot be set up; `message` is what follows ``MountVolume.SetUp failed for volume "x" : ``."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {message}')
        self.volume = volume
        self.message = message


def _kind(volume: dict[str, Any]) -> str | None:
    return next((k for k in KNOWN if volume.get(k) is not None), None)


class PodVolumes:
    """One pod's volumes (module docstring).  Used by one worker."""

    def __init__(self, pod: dict[str, Any], *, client: Client, root: Path, clock: Clock, node_name: str = "") -> None:
        meta = pod.get("metadata") or {}
        self.pod = pod
        self.namespace = str(meta.get("namespace") or "")
        self.root = Path(root)
        self._client = client
        self._clock = clock
        self._node_name = node_name
        self.paths: dict[str, VolumePath] = {}
        self._tokens: dict[tuple[str, str], tuple[bytes, float]] = {}  # (volume, path) → token, renew at

    # -- set-up -------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return len(self.paths) == len(self._volumes())

    def _volumes(self) -> list[dict[str, Any]]:
        return list((self.pod.get("spec") or {}).get("volumes") or [])

    def _dir(self, kind: str, name: str) -> Path:
        return self.root / PLUGIN_DIRS[kind] / name

    async def setup(self, pod: dict[str, Any]) -> dict[str, VolumePath]:
        """Every volume of `pod` on the node; raises `VolumeSetupError`."""
        self.pod = pod
        for volume in self._volumes():
            name = str(volume.get("name") or "")
            try:
                if name not in self.paths:
                    self.paths[name] = await self._setup_one(volume)
                elif _kind(volume) in ("configMap", "secret", "downwardAPI", "projected"):
                    await self._project(volume)
            except VolumeError as exc:
                raise VolumeSetupError(name, str(exc)) from exc
        return dict(self.paths)

    async def refresh(self, pod: dict[str, Any]) -> None:
        """Rewrite the projected volumes that changed (module docstring); failures are logged and kept
        for the next round (the files stay as they were)."""
        self.pod = pod
        for volume in self._volumes():
            if volume.get("name") in self.paths and _kind(volume) in (
                "configMap",
                "secret",
                "downwardAPI",
                "projected",
            ):
                try:
                    await self._project(volume)
                except VolumeError as exc:
                    log.info("volume refresh failed", extra={"volume": volume.get("name"), "error": str(exc)})

    async def _setup_one(self, volume: dict[str, Any]) -> VolumePath:
        kind, name = _kind(volume), str(volume.get("name") or "")
        if kind is None:
            raise VolumeError("no volume plugin matched this volume source on this node")
        if kind == "hostPath":
            source = volume["hostPath"]
            path = str(source.get("path") or "")
            await asyncio.to_thread(check_host_path, path, str(source.get("type") or ""))
            return VolumePath(path)
        if kind == "persistentVolumeClaim":
            return await self._claim(volume["persistentVolumeClaim"])
        directory = self._dir(kind, name)
        if kind == "emptyDir":
            await self._empty_dir(directory, volume["emptyDir"])
            return VolumePath(str(directory))
        await self._project(volume)
        return VolumePath(str(directory), readonly=True)

    async def _empty_dir(self, directory: Path, source: dict[str, Any]) -> None:
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(os.chmod, directory, 0o777)
        if source.get("medium") != "Memory" or os.geteuid() != 0 or os.path.ismount(directory):
            return
        size = _bytes(source.get("sizeLimit")) or os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        process = await asyncio.create_subprocess_exec(
            "mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", str(directory),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await process.communicate()
        if process.returncode != 0:
            raise VolumeError(f"mount of tmpfs failed: {err.decode(errors='replace').strip()}")

    async def _claim(self, source: dict[str, Any]) -> VolumePath:
        claim_name = str(source.get("claimName") or "")
        try:
            claim = await self._client.get(PVCS, claim_name, self.namespace)
        except ApiError as exc:
            if exc.code == 404:
                raise VolumeError(f'persistentvolumeclaim "{claim_name}" not found') from exc
            raise VolumeError(str(exc)) from exc
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if (claim.get("status") or {}).get("phase") != "Bound" or not volume_name:
            raise VolumeError(f"PVC {self.namespace}/{claim_name} is not bound")
        try:
            pv = await self._client.get(PVS, str(volume_name))
        except ApiError as exc:
            raise VolumeError(f'persistentvolume "{volume_name}" not found') from exc
        spec = pv.get("spec") or {}
        host_path, local = spec.get("hostPath"), spec.get("local")
        if host_path is None and local is None:
            raise VolumeError(f"persistentvolume {volume_name}: only hostPath and local volumes are supported")
        path = str((host_path or local or {}).get("path") or "")
        provisioner = ((pv.get("metadata") or {}).get("annotations") or {}).get(PROVISIONED_BY)
        path_type = "DirectoryOrCreate" if provisioner == LOCAL_PATH_PROVISIONER else ""
        if host_path is not None and host_path.get("type"):
            path_type = str(host_path["type"])
        if local is not None and not path_type:
            path_type = "Directory" if not os.path.isfile(path) else "File"
        await asyncio.to_thread(check_host_path, path, path_type)
        return VolumePath(path, readonly=bool(source.get("readOnly")))

    # -- projected content --------------------------------------------------------------------------

    async def _project(self, volume: dict[str, Any]) -> None:
        kind, name = _kind(volume), str(volume.get("name") or "")
        assert kind is not None
        payload = await self._payload(kind, volume[kind], name)
        await asyncio.to_thread(AtomicWriter(self._dir(kind, name)).write, payload)

    async def _payload(self, kind: str, source: dict[str, Any], volume: str) -> dict[str, FileProjection]:
        if kind == "configMap":
            return config_map_payload(await self._get(CONFIGMAPS, str(source.get("name") or "")), source)
        if kind == "secret":
            return secret_payload(await self._get(SECRETS, str(source.get("secretName") or "")), source)
        if kind == "downwardAPI":
            return downward_payload(self.pod, source, node_name=self._node_name)
        mode = int(source.get("defaultMode") if source.get("defaultMode") is not None else DEFAULT_MODE)
        payload: dict[str, FileProjection] = {}
        for projection in source.get("sources") or []:
            if projection.get("configMap") is not None:
                part = projection["configMap"]
                obj = await self._get(CONFIGMAPS, str(part.get("name") or ""))
                payload.update(config_map_payload(obj, part, default_mode=mode))
            elif projection.get("secret") is not None:
                part = projection["secret"]
                obj = await self._get(SECRETS, str(part.get("name") or ""))
                payload.update(secret_payload(obj, part, default_mode=mode))
            elif projection.get("downwardAPI") is not None:
                payload.update(
                    downward_payload(self.pod, projection["downwardAPI"], node_name=self._node_name, default_mode=mode)
                )
            elif projection.get("serviceAccountToken") is not None:
                part = projection["serviceAccountToken"]
                token = await self._token(volume, part)
                payload[str(part.get("path") or "token")] = FileProjection(token, mode)
        return payload

    async def _get(self, resource: Any, name: str) -> dict[str, Any] | None:
        try:
            return await self._client.get(resource, name, self.namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise VolumeError(str(exc)) from exc

    async def _token(self, volume: str, source: dict[str, Any]) -> bytes:
        """A bound service account token from the TokenRequest API, renewed at 80 % of its life."""
        key = (volume, str(source.get("path") or "token"))
        cached = self._tokens.get(key)
        if cached is not None and self._clock.now() < cached[1]:
            return cached[0]
        seconds = int(source.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS)
        meta, spec = self.pod.get("metadata") or {}, self.pod.get("spec") or {}
        account = str(spec.get("serviceAccountName") or "default")
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [source["audience"]] if source.get("audience") else [],
                "expirationSeconds": seconds,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta.get("name"), "uid": meta.get("uid")},
            },
        }
        try:
            answer = await self._client.create_subresource(SERVICEACCOUNTS, account, "token", body, self.namespace)
        except ApiError as exc:
            raise VolumeError(f"failed to fetch token: {exc}") from exc
        token = str((answer.get("status") or {}).get("token") or "").encode()
        granted = int((answer.get("spec") or {}).get("expirationSeconds") or seconds)
        self._tokens[key] = (token, self._clock.now() + 0.8 * granted)
        return token

    # -- eviction check -----------------------------------------------------------------------------

    def size_limit_violation(self) -> str | None:
        """The eviction message for the first disk emptyDir over its sizeLimit, else None.  Blocking."""
        for volume in self._volumes():
            source = volume.get("emptyDir")
            if source is None or source.get("medium") == "Memory" or source.get("sizeLimit") is None:
                continue
            limit = _bytes(source.get("sizeLimit"))
            name = str(volume.get("name") or "")
            if limit is not None and name in self.paths and _usage(self._dir("emptyDir", name)) > limit:
                return f'Usage of EmptyDir volume "{name}" exceeds the limit "{source["sizeLimit"]}". '
        return None

    # -- tear-down ----------------------------------------------------------------------------------

    async def teardown(self) -> None:
        """Unmount memory emptyDirs and remove the pod's volume directories (not hostPath/PVC data)."""
        await teardown_dir(self.root)
        self.paths.clear()
        self._tokens.clear()


def _bytes(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return quantity_from_json(value).value()
    except QuantityError:
        return None


def _usage(directory: Path) -> int:
    """Bytes in use under `directory` (allocated blocks, as ``du``), not following symlinks."""
    total = 0
    for top, dirs, files in os.walk(directory):
        for entry in (*dirs, *files):
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(top, entry)).st_blocks * 512
    return total


async def _unmount(path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        "umount", str(path), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    if await process.wait() != 0:
        process = await asyncio.create_subprocess_exec("umount", "-l", str(path), stderr=asyncio.subprocess.DEVNULL)
        await process.wait()


async def teardown_dir(root: Path) -> None:
    """Unmount whatever is mounted under `root` (memory emptyDirs), then remove it."""
    empty_dirs = root / PLUGIN_DIRS["emptyDir"]
    with contextlib.suppress(FileNotFoundError):
        for entry in await asyncio.to_thread(lambda: list(empty_dirs.iterdir())):
            if await asyncio.to_thread(os.path.ismount, entry):
                await _unmount(entry)
    await asyncio.to_thread(shutil.rmtree, root, True)


async def cleanup_orphans(pods_root: Path, known_uids: set[str]) -> list[str]:
    """Tear down ``<pods_root>/<uid>/volumes`` of every uid not in `known_uids` (after a killed agent);
    returns the uids cleaned."""
    cleaned = []
    with contextlib.suppress(FileNotFoundError):
        for entry in await asyncio.to_thread(lambda: list(Path(pods_root).iterdir())):
            volumes = entry / "volumes"
            if entry.name not in known_uids and await asyncio.to_thread(volumes.is_dir):
                await teardown_dir(volumes)
                cleaned.append(entry.name)
    return cleaned
