"""One pod's network as its worker sees it: the `PodNetwork` attachment, the pod's IPs, and the
/etc/hosts and /etc/resolv.conf files mounted into its containers.

Contracts:

* `attach` (before the sandbox) asks the node's `PodNetwork` for the pod's namespace and addresses,
  unless the pod uses the host network (``spec.hostNetwork``; then no namespace and pod IP = node IP).
  `setup_pod` is idempotent, so attaching again after an agent restart gives the same namespace and
  address: running containers keep their network.  Until the node's network is started (it waits for
  the node's pod CIDR) `attach` returns False and the worker waits on `NodeNetworking.ready`.
* `write_files` writes the pod's hosts and resolv.conf under ``<files root>/<uid>/`` and returns the
  mounts every container gets (hostNetwork pods keep the node's /etc/hosts; see `dnsconfig`).
* `detach` (after the sandbox is removed, or the pod finished) tears the network down and removes the
  files; idempotent.  The IPs stay known, so a finished pod keeps reporting the address it had.
* Without a `NodeNetworking` (tests, or a node that never learnt the cluster's network plan) every pod
  is on the host network and gets no files: what the agent did before pods had networks.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelite.agent.network.interface import PodNetwork
from kubelite.agent.pods.dnsconfig import (
    DnsWarning,
    format_resolv_conf,
    parse_resolv_conf,
    pod_hosts_file,
    pod_resolv_conf,
)
from kubelite.agent.runtime.interface import Mount
from kubelite.machinery.network import ClusterNetwork

log = logging.getLogger(__name__)

__all__ = ["NodeNetworking", "PodNetworkAttachment"]

HOSTS_FILE = "etc-hosts"
RESOLV_FILE = "resolv.conf"


@dataclass
class NodeNetworking:
    """What every pod worker of one node shares.  `ready` is set once `network.start` is done."""

    network: PodNetwork
    cluster: ClusterNetwork
    files_root: Path
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    host_resolv_conf: Path = Path("/etc/resolv.conf")

    @property
    def pods_share_node_network(self) -> bool:
        """Every pod runs in the node's network (host mode): their ports collide on the node."""
        return self.network.mode == "host"


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class PodNetworkAttachment:
    """One pod's network (module docstring).  Not thread-safe; used by one worker."""

    def __init__(self, node: NodeNetworking | None, pod: dict[str, Any], *, node_ip: str) -> None:
        meta = pod.get("metadata") or {}
        self._node = node
        self.uid = str(meta.get("uid") or "")
        self._namespace = str(meta.get("namespace") or "")
        self._name = str(meta.get("name") or "")
        self._node_ip = node_ip
        self.host_network = node is None or bool((pod.get("spec") or {}).get("hostNetwork"))
        self.ips: tuple[str, ...] = (node_ip,) if self.host_network else ()
        self.netns_path: str | None = None
        self.attached = self.host_network
        self.mounts: tuple[Mount, ...] = ()

    @property
    def pod_ip(self) -> str:
        """The primary pod IP, or "" before the network is set up."""
        return self.ips[0] if self.ips else ""

    @property
    def ready(self) -> bool:
        """Whether `attach` can work now."""
        return self.host_network or (self._node is not None and self._node.ready.is_set())

    async def wait_ready(self) -> None:
        if self._node is not None:
            await self._node.ready.wait()

    def remember(self, status: dict[str, Any]) -> None:
        """Take the IPs from the API's status (a finished pod whose network is gone)."""
        if self.ips:
            return
        ips = [str(e.get("ip")) for e in status.get("podIPs") or () if isinstance(e, dict) and e.get("ip")]
        if not ips and status.get("podIP"):
            ips = [str(status["podIP"])]
        self.ips = tuple(ips)

    async def attach(self) -> bool:
        """Set up (or find again) the pod's network; False while the node's network is not started.
        Raises `NetworkError`."""
        if self.host_network:
            return True
        if not self.ready:
            return False
        assert self._node is not None
        status = await self._node.network.setup_pod(self.uid, self._namespace, self._name)
        self.netns_path, self.ips, self.attached = status.netns_path, tuple(status.ips), True
        return True

    async def detach(self) -> None:
        """Tear down the pod's network and remove its files; idempotent.  Raises `NetworkError`."""
        if self._node is None:
            return
        if not self.host_network and self.attached:
            await self._node.network.teardown_pod(self.uid)
            self.attached = False
            self.netns_path = None
        await asyncio.to_thread(_remove_dir, self._files_dir())

    def _files_dir(self) -> Path:
        assert self._node is not None
        return self._node.files_root / self.uid

    async def write_files(self, pod: dict[str, Any]) -> list[DnsWarning]:
        """Write hosts and resolv.conf for `pod` and set `mounts`; returns the DNS warnings to record.
        Raises `OSError`."""
        if self._node is None:
            return []
        node = self._node
        host_text = await asyncio.to_thread(_read_text, node.host_resolv_conf)
        conf, warnings = pod_resolv_conf(
            pod,
            cluster_dns=node.cluster.cluster_dns,
            cluster_domain=node.cluster.cluster_domain,
            host=parse_resolv_conf(host_text),
        )
        hosts = None
        if not bool((pod.get("spec") or {}).get("hostNetwork")):
            hosts = pod_hosts_file(pod, self.ips, cluster_domain=node.cluster.cluster_domain)
        directory = self._files_dir()
        await asyncio.to_thread(_write_files, directory, hosts, format_resolv_conf(conf))
        mounts = [Mount(str(directory / RESOLV_FILE), "/etc/resolv.conf")]
        if hosts is not None:
            mounts.insert(0, Mount(str(directory / HOSTS_FILE), "/etc/hosts"))
        self.mounts = tuple(mounts)
        return warnings


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""  # no resolv.conf on the node: the resolver's defaults apply


def _write_files(directory: Path, hosts: str | None, resolv: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if hosts is not None:
        _write_atomic(directory / HOSTS_FILE, hosts)
    _write_atomic(directory / RESOLV_FILE, resolv)


def _write_atomic(path: Path, text: str) -> None:
    """Replace `path`'s contents in place when it exists (a bind mount follows the inode, so a running
    container sees the new text), else create it."""
    if path.exists():
        with open(path, "r+") as handle:
            handle.write(text)
            handle.truncate()
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
