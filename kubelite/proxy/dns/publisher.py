"""This node's EndpointSlice for the kube-dns Service: how the node's proxy finds the node's DNS server.

The kube-dns Service has no selector and ``internalTrafficPolicy: Local``; every node publishes one slice,
``kube-system/kube-dns-<node>``, with one endpoint (the DNS listen address, `nodeName` = the node), so each
node's proxy sends the cluster DNS IP to its own node's server.  `desired_slice` is the pure decision;
`SlicePublisher` keeps the API equal to it, level-based: it watches that one slice (and the Node, whose uid
it uses as owner so the slice goes away with the Node), and creates it again when someone deletes it, or puts
back the fields it owns (labels it sets, addressType, endpoints, ports, owner) when someone changes them.

Shutdown leaves the slice alone on purpose: the slice describes the node, not this process.  During a restart
the proxy keeps sending queries to the address, where the restarted server answers them again (a resolver
retries after its timeout); marking the endpoint not ready would make every lookup on the node fail at once
for the whole restart instead.  When the node goes away for good, the Node's deletion garbage-collects it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubelite.client.clock import Clock, RealClock
from kubelite.client.errors import TransportError
from kubelite.client.informer import Backoff, SharedInformerFactory
from kubelite.client.interface import Client, builtin
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy
from kubelite.machinery.network import DNS_SERVICE_NAME, DNS_SERVICE_NAMESPACE, DNS_SLICE_MANAGED_BY

__all__ = ["METRICS_PORT", "SlicePublisher", "desired_slice", "slice_name", "slice_update"]

log = logging.getLogger(__name__)

ENDPOINT_SLICES = builtin("discovery.k8s.io", "endpointslices")
NODES = builtin("", "nodes")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
METRICS_PORT = 9153
OWNED_FIELDS = ("addressType", "endpoints", "ports")


def slice_name(node_name: str) -> str:
    return f"{DNS_SERVICE_NAME}-{node_name}"


def desired_slice(
    *, node_name: str, listen_ip: str, port: int, node_uid: str = "", metrics_port: int = METRICS_PORT
) -> dict[str, Any]:
    """The slice this node's DNS server should have; owned by the Node when its uid is known."""
    metadata: dict[str, Any] = {
        "name": slice_name(node_name),
        "namespace": DNS_SERVICE_NAMESPACE,
        "labels": {SERVICE_NAME_LABEL: DNS_SERVICE_NAME, MANAGED_BY_LABEL: DNS_SLICE_MANAGED_BY},
    }
    if node_uid:
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}]
    family = "IPv6" if ":" in listen_ip else "IPv4"
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata,
        "addressType": family,
        "endpoints": [
            {
                "addresses": [listen_ip],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "nodeName": node_name,
            }
        ],
        "ports": [
            {"name": "dns", "port": port, "protocol": "UDP"},
            {"name": "dns-tcp", "port": port, "protocol": "TCP"},
            {"name": "metrics", "port": metrics_port, "protocol": "TCP"},
        ],
    }


def slice_update(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any] | None:
    """`current` with the fields we own put back (a copy, with its resourceVersion), or None when it matches.

    Labels and owner references others added are kept; ours win on conflict.
    """
    meta = current.get("metadata") or {}
    want = desired["metadata"]
    labels = {**(meta.get("labels") or {}), **want["labels"]}
    existing = list(meta.get("ownerReferences") or [])
    owners = existing
    if want.get("ownerReferences"):
        owners = [o for o in existing if o.get("kind") != "Node"] + want["ownerReferences"]
    changed = labels != (meta.get("labels") or {}) or owners != existing
    changed = changed or any(current.get(f) != desired[f] for f in OWNED_FIELDS)
    if not changed:
        return None
    updated = deep_copy(current)
    updated["metadata"]["labels"] = labels
    if owners:
        updated["metadata"]["ownerReferences"] = owners
    fresh = deep_copy(desired)
    for f in OWNED_FIELDS:
        updated[f] = fresh[f]
    return updated


class SlicePublisher:
    """Keeps `desired_slice(...)` in the API until cancelled (module docstring)."""

    def __init__(
        self,
        client: Client,
        factory: SharedInformerFactory,
        *,
        node_name: str,
        listen_ip: str,
        port: int,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.node_name = node_name
        self.listen_ip = listen_ip
        self.port = port
        self._clock = clock or RealClock()
        self._dirty = asyncio.Event()
        self._slices = factory.informer(
            ENDPOINT_SLICES, DNS_SERVICE_NAMESPACE, field_selector=f"metadata.name={slice_name(node_name)}"
        )
        self._nodes = factory.informer(NODES, field_selector=f"metadata.name={node_name}")
        for informer in (self._slices, self._nodes):
            informer.add_handler(
                on_add=lambda _obj: self._dirty.set(),
                on_update=lambda _old, _new: self._dirty.set(),
                on_delete=lambda _obj: self._dirty.set(),
            )
        self._dirty.set()

    def desired(self) -> dict[str, Any]:
        node = self._nodes.get(self.node_name)
        uid = str(((node or {}).get("metadata") or {}).get("uid") or "")
        return desired_slice(node_name=self.node_name, listen_ip=self.listen_ip, port=self.port, node_uid=uid)

    async def run(self) -> None:
        await self._slices.wait_for_sync()
        await self._nodes.wait_for_sync()
        backoff = Backoff(initial=0.5, cap=30.0)
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.sync()
                backoff.reset()
            except (ApiError, TransportError) as exc:
                log.warning("cannot publish the DNS EndpointSlice; retrying", extra={"error": str(exc)})
                self._dirty.set()
                await self._clock.sleep(backoff.next_delay())

    async def sync(self) -> None:
        """One level-based pass: create the slice, or put back what we own; a 409 means look again."""
        desired = self.desired()
        current = self._slices.get(f"{DNS_SERVICE_NAMESPACE}/{slice_name(self.node_name)}")
        try:
            if current is None:
                await self.client.create(ENDPOINT_SLICES, desired, DNS_SERVICE_NAMESPACE)
                log.info("published the DNS EndpointSlice", extra={"slice": slice_name(self.node_name)})
                return
            updated = slice_update(current, desired)
            if updated is not None:
                await self.client.update(ENDPOINT_SLICES, updated, DNS_SERVICE_NAMESPACE)
        except ApiError as exc:
            if exc.code != 409:  # AlreadyExists / Conflict: the cache is behind; its event re-triggers us
                raise
