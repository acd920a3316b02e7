"""`HostNetwork`: every pod shares the node's network (no root, or forced).  Nothing is created or removed;
each pod's address is the node's.  Two pods that listen on one port collide on the node: the pod workers
report that (this module only says, through `note`, why pods have no network of their own)."""

from __future__ import annotations

from kubelite.agent.network.interface import NodeRoute, PodNetworkStatus

__all__ = ["HostNetwork"]


class HostNetwork:
    """Stateless: `setup_pod`, `pod_status` → (no namespace, the node's IP); the rest are no-ops."""

    def __init__(self, node_ip: str, note: str | None = None) -> None:
        self.node_ip = node_ip
        self._note = note

    @property
    def mode(self) -> str:
        return "host"

    @property
    def note(self) -> str | None:
        return self._note

    @property
    def gateway_ip(self) -> str | None:
        return None

    async def start(self, pod_cidr: str | None) -> None:
        """Nothing to prepare: pods use the node's network as it is."""

    async def setup_pod(self, uid: str, namespace: str, name: str) -> PodNetworkStatus:
        return PodNetworkStatus(None, (self.node_ip,))

    async def teardown_pod(self, uid: str) -> None:
        """Nothing to release."""

    async def pod_status(self, uid: str) -> PodNetworkStatus | None:
        return PodNetworkStatus(None, (self.node_ip,))

    async def cleanup_orphans(self, known_uids: set[str]) -> list[str]:
        return []

    async def sync_routes(self, peers: list[NodeRoute]) -> None:
        """Pods on the host network are reached at their nodes' addresses: no routes needed."""

    async def close(self) -> None:
        """Nothing runs in the background."""
