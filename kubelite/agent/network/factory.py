"""Choosing the pod network for a node: `create_pod_network`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kubelite.agent.network.bridge import BridgeNetwork
from kubelite.agent.network.commands import IP, NFT, NSENTER, SYSCTL
from kubelite.agent.network.host import HostNetwork
from kubelite.agent.network.interface import PodNetwork
from kubelite.machinery.network import ClusterNetwork

__all__ = ["MODES", "bridge_unavailable_reason", "create_pod_network"]

MODES = ("auto", "bridge", "host")


def bridge_unavailable_reason(*, host_netns: str | None = None) -> str | None:
    """Why this process cannot build bridge pod networks, or None when it can."""
    if os.geteuid() != 0:
        return "pod networking needs root; pods share the node's network"
    tools = [IP, NFT, SYSCTL, *([NSENTER] if host_netns else [])]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"pod networking needs {', '.join(missing)} on PATH; pods share the node's network"
    return None


def create_pod_network(
    data_dir: Path,
    node_name: str,
    node_ip: str,
    cluster: ClusterNetwork,
    *,
    mode: str = "auto",
    host_netns: str | None = None,
) -> PodNetwork:
    """``"auto"``: a `BridgeNetwork` when running as root with iproute2, nftables and sysctl present,
    else a `HostNetwork` whose `note` says why; ``"bridge"`` / ``"host"``: that one, no questions asked
    (a forced bridge without root fails in `start`).  Creating either changes nothing on the machine."""
    if mode not in MODES:
        raise ValueError(f"pod network mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "host":
        return HostNetwork(node_ip, None)
    if mode == "auto":
        reason = bridge_unavailable_reason(host_netns=host_netns)
        if reason:
            return HostNetwork(node_ip, reason)
    return BridgeNetwork(data_dir, node_name, cluster, host_netns=host_netns)
