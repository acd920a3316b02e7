"""The node agent's side of pod networking: learning the cluster's network plan, waiting for this node's
pod CIDR, and keeping the routes to other nodes' pods in sync.

* `read_cluster_network`: the ConfigMap ``kube-system/kubelite-cluster-network`` the API server
  publishes; waited for (retried with back-off) until it exists, so an agent may start first.
* `wait_for_pod_cidr`: ``spec.podCIDR`` of this node's Node, which the nodeipam controller assigns after
  registration; polled with back-off.  Only a bridge network needs it.
* `RouteSync`: a Node informer; every change (a node joins, leaves, gets its CIDR or a new address)
  recomputes the whole route set and hands it to `PodNetwork.sync_routes`, which is level-based (makes
  the routes exactly that).  Bursts of changes collapse into one sync; a failed sync is retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from kubelite.agent.network.interface import NetworkError, NodeRoute, PodNetwork
from kubelite.client.clock import Clock
from kubelite.client.errors import TransportError
from kubelite.client.informer import Informer
from kubelite.client.interface import Client, builtin
from kubelite.machinery.errors import ApiError
from kubelite.machinery.network import CONFIGMAP_NAME, CONFIGMAP_NAMESPACE, ClusterNetwork

log = logging.getLogger(__name__)

__all__ = ["RouteSync", "read_cluster_network", "wait_for_pod_cidr"]

CONFIGMAPS = builtin("", "configmaps")
NODES = builtin("", "nodes")
RETRY_INITIAL = 0.2
RETRY_MAX = 5.0


async def read_cluster_network(client: Client, clock: Clock) -> ClusterNetwork:
    """The cluster's network plan from its ConfigMap; waits until the ConfigMap exists."""
    delay = RETRY_INITIAL
    while True:
        try:
            configmap = await client.get(CONFIGMAPS, CONFIGMAP_NAME, CONFIGMAP_NAMESPACE)
            return ClusterNetwork.from_configmap_data(configmap.get("data") or {})
        except ApiError as exc:
            if exc.code != 404:
                log.warning("reading the cluster network failed", extra={"error": str(exc)})
            else:
                log.info("waiting for the cluster network ConfigMap", extra={"name": CONFIGMAP_NAME})
        except TransportError as exc:
            log.warning("reading the cluster network failed", extra={"error": str(exc)})
        await clock.sleep(delay)
        delay = min(delay * 2, RETRY_MAX)


def pod_cidr_of(node: dict[str, Any]) -> str | None:
    spec = node.get("spec") or {}
    cidrs = spec.get("podCIDRs") or ()
    return str(spec.get("podCIDR") or (cidrs[0] if cidrs else "")) or None


async def wait_for_pod_cidr(client: Client, node_name: str, clock: Clock) -> str:
    """This node's pod CIDR, once assigned."""
    delay = RETRY_INITIAL
    logged = False
    while True:
        try:
            cidr = pod_cidr_of(await client.get(NODES, node_name))
            if cidr:
                return cidr
            if not logged:
                log.info("waiting for the node's pod CIDR", extra={"node": node_name})
                logged = True
        except (ApiError, TransportError) as exc:
            log.warning("reading the node failed", extra={"node": node_name, "error": str(exc)})
        await clock.sleep(delay)
        delay = min(delay * 2, RETRY_MAX)


class RouteSync:
    """Keeps `network`'s routes to other nodes equal to `routes_for(<every Node>)` (module docstring).
    `run` until cancelled."""

    def __init__(
        self,
        client: Client,
        network: PodNetwork,
        *,
        routes_for: Callable[[list[dict[str, Any]]], list[NodeRoute]],
        clock: Clock,
    ) -> None:
        self.network = network
        self.routes_for = routes_for
        self.clock = clock
        self.nodes = Informer(client, NODES, clock=clock)
        self._dirty = asyncio.Event()
        self.synced: list[NodeRoute] | None = None  # the last set handed over (tests, logs)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.nodes.run(), name="nodes-informer")
            await self.nodes.wait_for_sync()
            self.nodes.add_handler(self._changed, lambda _old, _new: self._dirty.set(), self._changed)
            self._dirty.set()
            delay = RETRY_INITIAL
            while True:
                await self._dirty.wait()
                self._dirty.clear()
                routes = self.routes_for(self.nodes.list())
                try:
                    await self.network.sync_routes(routes)
                except NetworkError as exc:
                    log.warning("syncing routes to other nodes failed", extra={"error": str(exc)})
                    await self.clock.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
                    self._dirty.set()
                    continue
                delay = RETRY_INITIAL
                self.synced = routes

    def _changed(self, _node: dict[str, Any]) -> None:
        self._dirty.set()
