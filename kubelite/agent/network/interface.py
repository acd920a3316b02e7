"""What the pod workers need from pod networking, whichever way it is done.

`BridgeNetwork` (root) gives each pod its own network namespace on the node bridge; `HostNetwork` (no root,
or forced) runs every pod in the node's network.  Both keep their state under the agent's data directory,
so an agent restart finds each pod's namespace and address again instead of handing them out twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class NetworkError(Exception):
    """Setting up or tearing down a pod's network failed; the message is shown in the pod's events."""


@dataclass(frozen=True, slots=True)
class PodNetworkStatus:
    """`netns_path` is the file to hand to the runtime (``None``: the host network); `ips` are the pod's
    addresses, primary first, as status.podIPs reports them."""

    netns_path: str | None
    ips: tuple[str, ...]


class PodNetwork(Protocol):
    @property
    def mode(self) -> str:
        """``"bridge"`` or ``"host"``."""
        ...

    @property
    def note(self) -> str | None:
        """Why pods cannot get their own network here (shown in node conditions and logs), or None."""
        ...

    @property
    def gateway_ip(self) -> str | None:
        """The node bridge's address (pods' default gateway) once started in bridge mode, else None."""
        ...

    async def start(self, pod_cidr: str | None) -> None:
        """Prepare the node (bridge, forwarding, routes that keep cluster traffic on the node).  Bridge mode
        needs the node's pod CIDR; host mode ignores it."""
        ...

    async def setup_pod(self, uid: str, namespace: str, name: str) -> PodNetworkStatus:
        """Idempotent: a pod that already has a network gets the same status back."""
        ...

    async def teardown_pod(self, uid: str) -> None:
        """Idempotent; releases the pod's address."""
        ...

    async def pod_status(self, uid: str) -> PodNetworkStatus | None: ...

    async def cleanup_orphans(self, known_uids: set[str]) -> list[str]:
        """Tear down every pod network whose uid is not in `known_uids`; returns the uids removed."""
        ...

    async def sync_routes(self, peers: list[NodeRoute]) -> None:
        """Make the routes to other nodes' pod CIDRs exactly `peers` (this node's own entry is ignored)."""
        ...

    async def close(self) -> None:
        """Stop background work; never removes pods' networks (an agent restart keeps them)."""
        ...


@dataclass(frozen=True, slots=True)
class NodeRoute:
    node_name: str
    pod_cidrs: tuple[str, ...]
    node_ip: str
