"""Node IPAM: every Node gets a pod CIDR, a `/node_cidr_mask` block of the cluster CIDR, in
`spec.podCIDR` and `spec.podCIDRs` (upstream's pkg/controller/nodeipam range allocator).

Contracts:

* `CidrSet` is the allocator: blocks are handed out round-robin from just after the last one handed
  out (so a freed block is not reused at once), never twice while taken. Pure, no I/O.
* The taken set is rebuilt from the Node cache before the first sync: every cached Node with a pod CIDR
  occupies its block(s) (informer handlers run before `run()` starts working). A Node's CIDR outside the
  cluster CIDR is left as it is, with a log line.
* A Node without a pod CIDR is patched (spec only) with the next free block; the patch carries the
  cached resourceVersion, so it can never overwrite a CIDR someone else set meanwhile (409 → the block
  is freed and the sync retried). Until the informer shows the new CIDR the Node is not given another.
* Range full: a `CIDRNotAvailable` event on the Node ("Node x status is now: CIDRNotAvailable"), as
  upstream; when a block is freed, Nodes still waiting are looked at again. A failed patch: a
  `CIDRAssignmentFailed` event, the block freed, the sync retried with back-off.
* A deleted Node's blocks are freed.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from kubelite.client.events import NORMAL
from kubelite.client.interface import builtin
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import name_of
from kubelite.machinery.network import ClusterNetwork

log = logging.getLogger(__name__)

NODES = builtin("", "nodes")

CIDR_NOT_AVAILABLE = "CIDRNotAvailable"
CIDR_ASSIGNMENT_FAILED = "CIDRAssignmentFailed"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CidrSet:
    """The `mask`-sized blocks of `cluster_cidr`; see the module docstring."""

    def __init__(self, cluster_cidr: str, mask: int) -> None:
        self.cluster: Network = ipaddress.ip_network(cluster_cidr)
        if not self.cluster.prefixlen <= mask <= self.cluster.max_prefixlen:
            raise ValueError(f"node CIDR mask /{mask} does not fit cluster CIDR {self.cluster}")
        self.mask = mask
        self.size = 1 << (mask - self.cluster.prefixlen)
        self._block = 1 << (self.cluster.max_prefixlen - mask)
        self._used: set[int] = set()
        self._next = 0

    @property
    def used(self) -> int:
        return len(self._used)

    def _cidr(self, index: int) -> str:
        base = int(self.cluster.network_address) + index * self._block
        return str(ipaddress.ip_network((base, self.mask)))

    def _indexes(self, cidr: str) -> range | None:
        """The block indexes `cidr` covers; None when it is not inside the cluster CIDR."""
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if network.version != self.cluster.version or not network.subnet_of(self.cluster):  # type: ignore[arg-type]
            return None
        offset = int(network.network_address) - int(self.cluster.network_address)
        first = offset // self._block
        count = max(1, network.num_addresses // self._block)
        return range(first, first + count)

    def allocate_next(self) -> str | None:
        """The next free block, now taken; None when every block is taken."""
        for step in range(self.size):
            index = (self._next + step) % self.size
            if index not in self._used:
                self._used.add(index)
                self._next = (index + 1) % self.size
                return self._cidr(index)
        return None

    def occupy(self, cidr: str) -> bool:
        """Mark `cidr` taken (idempotent); False when it is not inside the cluster CIDR."""
        indexes = self._indexes(cidr)
        if indexes is None:
            return False
        self._used.update(indexes)
        return True

    def release(self, cidr: str) -> None:
        """Free `cidr` (idempotent; a CIDR outside the range is ignored)."""
        for index in self._indexes(cidr) or ():
            self._used.discard(index)

    def give_back(self, cidr: str) -> None:
        """Undo the last `allocate_next()` that handed out `cidr` (its assignment failed): free it and
        hand it out next again."""
        indexes = self._indexes(cidr)
        if indexes is None:
            return
        self.release(cidr)
        if (indexes[-1] + 1) % self.size == self._next:
            self._next = indexes[0]

    def is_taken(self, cidr: str) -> bool:
        indexes = self._indexes(cidr)
        return indexes is not None and all(i in self._used for i in indexes)


def node_pod_cidrs(node: dict[str, Any]) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = list(spec.get("podCIDRs") or ())
    if not cidrs and spec.get("podCIDR"):
        cidrs = [spec["podCIDR"]]
    return [str(c) for c in cidrs]


def cidr_patch(node: dict[str, Any], cidr: str) -> dict[str, Any]:
    """The merge patch assigning `cidr`: spec only, guarded by the Node's resourceVersion."""
    body: dict[str, Any] = {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}
    version = (node.get("metadata") or {}).get("resourceVersion")
    if version:
        body["metadata"] = {"resourceVersion": version}
    return body


class NodeIpamController(Controller):
    """See the module docstring."""

    name = "node-ipam-controller"

    def __init__(self, context: ControllerContext, *, network: ClusterNetwork) -> None:
        super().__init__(context)
        self.network = network
        self.cidrs = CidrSet(network.cluster_cidr, network.node_cidr_mask)
        self._owners: dict[str, str] = {}  # cidr → node name (as seen in the cache)
        self._pending: dict[str, str] = {}  # node name → cidr patched, not yet in the cache
        self.nodes = self.informer(NODES)
        self.nodes.add_handler(self._on_node, lambda _old, new: self._on_node(new), self._on_node_delete)

    # -- handlers: bookkeeping of taken blocks, then enqueue ----------------------------------------

    def _on_node(self, node: dict[str, Any]) -> None:
        name = name_of(node)
        cidrs = node_pod_cidrs(node)
        if not cidrs:
            self.enqueue(node)
            return
        for cidr in cidrs:
            owner = self._owners.get(cidr)
            if owner is not None and owner != name:
                log.warning("pod CIDR used by two nodes", extra={"cidr": cidr, "node": name, "other": owner})
            if not self.cidrs.occupy(cidr):
                if owner is None:
                    log.warning("node pod CIDR is outside the cluster CIDR", extra={"node": name, "cidr": cidr})
                continue
            self._owners[cidr] = name
        pending = self._pending.pop(name, None)
        if pending is not None and pending not in cidrs:
            self._free(pending)

    def _on_node_delete(self, node: dict[str, Any]) -> None:
        name = name_of(node)
        freed = False
        for cidr in node_pod_cidrs(node):
            if self._owners.get(cidr) == name:
                self._free(cidr)
                freed = True
        pending = self._pending.pop(name, None)
        if pending is not None:
            self._free(pending)
            freed = True
        if freed:
            for waiting in self.nodes.list():
                if not node_pod_cidrs(waiting):
                    self.enqueue(waiting)

    def _free(self, cidr: str) -> None:
        self._owners.pop(cidr, None)
        self.cidrs.release(cidr)

    def _give_back(self, cidr: str) -> None:
        self._owners.pop(cidr, None)
        self.cidrs.give_back(cidr)

    # -- the sync -----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None or node_pod_cidrs(node) or key in self._pending:
            return
        if (node.get("metadata") or {}).get("deletionTimestamp"):
            return
        cidr = self.cidrs.allocate_next()
        if cidr is None:
            log.warning("no pod CIDR left for node", extra={"node": key, "clusterCIDR": self.network.cluster_cidr})
            self._status_event(node, CIDR_NOT_AVAILABLE)
            return
        self._pending[key] = cidr
        self._owners[cidr] = key
        try:
            await self.client.patch(NODES, key, cidr_patch(node, cidr))
        except ApiError as exc:
            self._pending.pop(key, None)
            self._give_back(cidr)
            if exc.code == 404:
                return
            if exc.code != 409:
                self._status_event(node, CIDR_ASSIGNMENT_FAILED)
            raise
        except BaseException:
            self._pending.pop(key, None)
            self._give_back(cidr)
            raise
        log.info("pod CIDR assigned", extra={"node": key, "cidr": cidr})

    def _status_event(self, node: dict[str, Any], status: str) -> None:
        """Upstream's RecordNodeStatusChange: a Normal event named after the new status."""
        reference = {"kind": "Node", "apiVersion": "v1", "metadata": dict(node.get("metadata") or {})}
        self.recorder.event(reference, NORMAL, status, f"Node {name_of(node)} status is now: {status}")


__all__ = [
    "CIDR_ASSIGNMENT_FAILED",
    "CIDR_NOT_AVAILABLE",
    "CidrSet",
    "NodeIpamController",
    "cidr_patch",
    "node_pod_cidrs",
]
