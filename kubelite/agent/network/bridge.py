"""`BridgeNetwork`: each pod in its own network namespace, a veth pair to the node bridge ``kubelite0``,
an address from the node's pod CIDR (IPAM in files, `ipam.HostLocalIpam`) and a default route through
the bridge.

The node (`start`):

* bridge ``kubelite0`` up, with a fixed MAC (derived from the agent's identity: a bridge otherwise takes
  the lowest MAC of its ports, and pods' ARP entries for the gateway go stale as pods come and go) and the
  gateway address (`gateway_address(pod_cidr)`) with the pod CIDR's mask;
* ``net.ipv4.ip_forward=1`` (``bridge-nf-call-iptables`` is left as it is: 1, so bridged pod-to-pod
  traffic sees the service proxy's rules; ``route_localnet`` is not needed: nothing is DNATed to 127/8);
* an ``unreachable`` route for the whole cluster CIDR: the node's own CIDR (on the bridge) and other
  nodes' CIDRs (`sync_routes`) are more specific; an unused pod address fails on the node;
* the service CIDR routed to the bridge, plus the reject rules of `firewall` for service addresses
  nobody DNATed (see there why not ``unreachable``): either way no cluster or service packet ever takes
  the default route;
* the nft table ``ip kubelite-net`` (masquerade for pod traffic leaving the cluster CIDR).

All of it is idempotent: an agent restart calls `start` again on a node that is set up.  A changed pod
CIDR is refused while any pod holds an address (`NetworkError`), else the bridge moves to the new one.

Names: pod namespaces are ``/run/netns/kl<tag>-<uid[:12]>`` and host-side veths ``kl<tag[:4]><hash>``
(15 bytes), where ``tag`` is a digest of the data directory: several agents on one machine (tests) never
clash, and `cleanup_orphans` touches only this agent's leftovers.  One agent per node namespace owns the
bridge.  Every command targets `host_netns` when given (tests: a namespace per "node"), so nothing is
created in the caller's own namespace.

Concurrency: calls for one uid are serialised; different pods are set up concurrently (IPAM allocation
is safe across them: one ``O_EXCL`` file per address).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from kubelite.agent.network.commands import IP, NETNS_DIR, CommandError, NodeShell, run
from kubelite.agent.network.firewall import render_node_table
from kubelite.agent.network.interface import NetworkError, NodeRoute, PodNetworkStatus
from kubelite.agent.network.ipam import HostLocalIpam
from kubelite.agent.network.routes import desired_routes, plan_routes
from kubelite.machinery.network import ClusterNetwork, gateway_address

log = logging.getLogger(__name__)

__all__ = ["BRIDGE", "ROUTE_PROTOCOL", "BridgeNetwork"]

BRIDGE = "kubelite0"
POD_INTERFACE = "eth0"
# The routing protocol number marking routes to other nodes' pod CIDRs, so sync_routes touches only those.
ROUTE_PROTOCOL = "75"


@dataclass
class _UidLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def agent_tag(data_dir: Path) -> str:
    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:6]


class BridgeNetwork:
    """Pod networks on the node bridge (module docstring).  `data_dir` holds the IPAM state under
    ``network/``; `host_netns` is the node's namespace under /run/netns (None: the caller's own)."""

    def __init__(self, data_dir: Path, node_name: str, cluster: ClusterNetwork, *, host_netns: str | None = None):
        self.data_dir = data_dir
        self.node_name = node_name
        self.cluster = cluster
        self.host_netns = host_netns
        self.ipam = HostLocalIpam(data_dir / "network")
        self._tag = agent_tag(data_dir)
        self._node = NodeShell(host_netns)
        self._pod_cidr: str | None = None
        self._gateway: str | None = None
        self._locks: dict[str, _UidLock] = {}
        self._routes_lock = asyncio.Lock()

    # -- PodNetwork properties ---------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return "bridge"

    @property
    def note(self) -> str | None:
        return None

    @property
    def gateway_ip(self) -> str | None:
        return self._gateway

    # -- names -------------------------------------------------------------------------------------

    def netns_name(self, uid: str) -> str:
        return f"kl{self._tag}-{uid[:12]}"

    def netns_path(self, uid: str) -> str:
        return f"{NETNS_DIR}/{self.netns_name(uid)}"

    def veth_name(self, uid: str) -> str:
        return f"kl{self._tag[:4]}{hashlib.sha256(uid.encode()).hexdigest()[:9]}"

    @property
    def _netns_prefix(self) -> str:
        return f"kl{self._tag}-"

    def _bridge_mac(self) -> str:
        digest = hashlib.sha256(f"{self._tag}/{self.node_name}".encode()).digest()
        return ":".join(f"{byte:02x}" for byte in (0x02, *digest[:5]))  # locally administered, unicast

    # -- the node ----------------------------------------------------------------------------------

    async def start(self, pod_cidr: str | None) -> None:
        if not pod_cidr:
            raise NetworkError("the bridge pod network needs the node's pod CIDR (spec.podCIDR)")
        try:
            network = ipaddress.IPv4Network(pod_cidr)
        except ValueError as exc:
            raise NetworkError(f"bad pod CIDR {pod_cidr!r}: {exc}") from exc
        if not network.subnet_of(ipaddress.IPv4Network(self.cluster.cluster_cidr)):
            raise NetworkError(f"pod CIDR {network} is outside the cluster CIDR {self.cluster.cluster_cidr}")
        await asyncio.to_thread(self.ipam.set_cidr, str(network))
        gateway = gateway_address(str(network))
        await self._ensure_bridge(f"{gateway}/{network.prefixlen}")
        await self._node.sysctl("net.ipv4.ip_forward", "1")
        await self._node.ip_batch(
            [
                f"route replace unreachable {self.cluster.cluster_cidr}",
                f"route replace {self.cluster.service_cidr} dev {BRIDGE} src {gateway}",
            ]
        )
        await self._node.nft(
            render_node_table(
                pod_cidr=str(network), cluster_cidr=self.cluster.cluster_cidr, service_cidr=self.cluster.service_cidr
            )
        )
        self._pod_cidr, self._gateway = str(network), gateway
        log.info("pod network started", extra={"node": self.node_name, "podCIDR": str(network), "gateway": gateway})

    async def _ensure_bridge(self, address: str) -> None:
        if not await self._node.link_exists(BRIDGE):
            try:
                await self._node.ip("link", "add", BRIDGE, "type", "bridge")
            except CommandError:
                if not await self._node.link_exists(BRIDGE):  # not a lost race: a real failure
                    raise
        await self._node.ip_batch([f"link set dev {BRIDGE} address {self._bridge_mac()}", f"link set dev {BRIDGE} up"])
        for link in await self._node.ip_json("-4", "addr", "show", "dev", BRIDGE):
            for info in link.get("addr_info") or ():
                existing = f"{info.get('local')}/{info.get('prefixlen')}"
                if existing != address:  # left from an earlier pod CIDR
                    await self._node.ip("addr", "del", existing, "dev", BRIDGE)
        await self._node.ip("addr", "replace", address, "dev", BRIDGE)

    # -- pods --------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _serialised(self, uid: str) -> AsyncIterator[None]:
        entry = self._locks.setdefault(uid, _UidLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[uid]

    async def setup_pod(self, uid: str, namespace: str, name: str) -> PodNetworkStatus:
        if not uid:
            raise NetworkError("a pod network needs the pod's uid")
        if self._pod_cidr is None or self._gateway is None:
            raise NetworkError("the pod network is not started yet")
        async with self._serialised(uid):
            made_netns = made_address = False
            try:
                address = await asyncio.to_thread(self.ipam.lookup, uid)
                if address is None:
                    address = await asyncio.to_thread(self.ipam.allocate, uid)
                    made_address = True
                if not os.path.exists(self.netns_path(uid)):
                    await run([IP, "netns", "add", self.netns_name(uid)])
                    made_netns = True
                await self._wire_pod(uid, address)
            except BaseException as exc:
                await self._undo(uid, netns=made_netns, address=made_address)
                if isinstance(exc, (NetworkError, OSError)):
                    raise NetworkError(f"setting up the network of pod {namespace}/{name} failed: {exc}") from exc
                raise
        return PodNetworkStatus(self.netns_path(uid), (address,))

    async def _wire_pod(self, uid: str, address: str) -> None:
        """Veth pair (host end on the bridge, hairpin on; pod end ``eth0``), address and default route.
        Every step is a create-if-missing or a replace, so running it on a wired pod changes nothing."""
        assert self._pod_cidr is not None and self._gateway is not None
        pod = NodeShell(self.netns_name(uid))
        host_end = self.veth_name(uid)
        host_exists = await self._node.link_exists(host_end)
        pod_exists = await pod.link_exists(POD_INTERFACE)
        if host_exists != pod_exists:  # half a pair (or a stranger's eth0): start the pair afresh
            if host_exists:
                await self._node.ip("link", "del", "dev", host_end)
            else:
                await pod.ip("link", "del", "dev", POD_INTERFACE)
        if not (host_exists and pod_exists):
            await self._node.ip(
                "link", "add", host_end, "type", "veth", "peer", "name", POD_INTERFACE, "netns", self.netns_name(uid)
            )
        await self._node.ip_batch(
            [
                f"link set dev {host_end} master {BRIDGE}",
                f"link set dev {host_end} type bridge_slave hairpin on",
                f"link set dev {host_end} up",
            ]
        )
        prefix = ipaddress.IPv4Network(self._pod_cidr).prefixlen
        await pod.ip_batch(
            [
                "link set dev lo up",
                f"addr replace {address}/{prefix} dev {POD_INTERFACE}",
                f"link set dev {POD_INTERFACE} up",
                f"route replace default via {self._gateway} dev {POD_INTERFACE}",
            ]
        )

    async def _undo(self, uid: str, *, netns: bool, address: bool) -> None:
        """Remove what a failed `setup_pod` made; best effort (the original error is what matters)."""
        try:
            if netns:
                await self._remove_links_and_netns(uid)
            if address:
                await asyncio.to_thread(self.ipam.release, uid)
        except Exception:  # reported by the caller's error; leftovers go as orphans
            log.warning("cleaning up a failed pod network left something behind", extra={"uid": uid}, exc_info=True)

    async def _remove_links_and_netns(self, uid: str) -> None:
        # the host end first: a namespace kept alive by a process would otherwise keep the pair
        if await self._node.link_exists(self.veth_name(uid)):
            with contextlib.suppress(CommandError):
                await self._node.ip("link", "del", "dev", self.veth_name(uid))
        await self._delete_netns(self.netns_name(uid))

    async def _delete_netns(self, name: str) -> None:
        if os.path.exists(f"{NETNS_DIR}/{name}"):
            try:
                await run([IP, "netns", "delete", name])
            except CommandError:
                if os.path.exists(f"{NETNS_DIR}/{name}"):
                    raise

    async def teardown_pod(self, uid: str) -> None:
        async with self._serialised(uid):
            await self._remove_links_and_netns(uid)
            await asyncio.to_thread(self.ipam.release, uid)

    async def pod_status(self, uid: str) -> PodNetworkStatus | None:
        address = await asyncio.to_thread(self.ipam.lookup, uid)
        if address is None or not os.path.exists(self.netns_path(uid)):
            return None
        return PodNetworkStatus(self.netns_path(uid), (address,))

    async def cleanup_orphans(self, known_uids: set[str]) -> list[str]:
        """Pods in the IPAM state whose uid is unknown lose namespace, veth and address; then namespaces
        and host veths with this agent's prefix that belong to no known uid (a crash between creating them
        and recording the address) go too.  Returns the uids (or, for a bare namespace, the uid prefix in
        its name) removed.  `known_uids` must include every pod being set up meanwhile (the agent calls this
        at start-up, before it sets pods up, or with every pod it knows)."""
        removed: list[str] = []
        for address, holder in (await asyncio.to_thread(self.ipam.allocations)).items():
            if holder in known_uids:
                continue
            if holder:
                await self.teardown_pod(holder)
                removed.append(holder)
            else:
                await asyncio.to_thread(self.ipam.release_address, address)
        known_prefixes = {uid[:12] for uid in known_uids}
        for name in sorted(os.listdir(NETNS_DIR) if os.path.isdir(NETNS_DIR) else ()):
            if name.startswith(self._netns_prefix) and name[len(self._netns_prefix) :] not in known_prefixes:
                await self._delete_netns(name)
                if name[len(self._netns_prefix) :] not in {uid[:12] for uid in removed}:
                    removed.append(name[len(self._netns_prefix) :])
        known_veths = {self.veth_name(uid) for uid in known_uids}
        for link in await self._node.ip_json("link", "show", "type", "veth"):
            ifname = str(link.get("ifname") or "")
            if ifname.startswith(f"kl{self._tag[:4]}") and len(ifname) == 15 and ifname not in known_veths:
                with contextlib.suppress(CommandError):
                    await self._node.ip("link", "del", "dev", ifname)
        if removed:
            log.info("removed orphaned pod networks", extra={"node": self.node_name, "uids": removed})
        return removed

    # -- routes to other nodes ---------------------------------------------------------------------

    async def sync_routes(self, peers: list[NodeRoute]) -> None:
        """Level-based: afterwards the routes marked ``proto 75`` are exactly the peers' CIDRs via their
        node IPs.  Every change is tried; the failures are raised together at the end (the caller retries)."""
        async with self._routes_lock:
            desired = desired_routes(peers, own_node=self.node_name, own_cidr=self._pod_cidr)
            current = {
                str(route.get("dst")): str(route.get("gateway") or "")
                for route in await self._node.ip_json("-4", "route", "show", "proto", ROUTE_PROTOCOL)
            }
            plan = plan_routes(current, desired)
            failures: list[str] = []
            for cidr, gateway in plan.replace:
                try:
                    await self._node.ip("route", "replace", cidr, "via", gateway, "proto", ROUTE_PROTOCOL)
                except CommandError as exc:
                    failures.append(str(exc))
            for cidr in plan.delete:
                try:
                    await self._node.ip("route", "del", cidr, "proto", ROUTE_PROTOCOL)
                except CommandError as exc:
                    failures.append(str(exc))
            if failures:
                raise NetworkError("; ".join(failures))

    async def close(self) -> None:
        """Nothing runs in the background; pods' networks stay (the next agent adopts them)."""
