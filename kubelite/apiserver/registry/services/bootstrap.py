"""Objects the API server keeps in place itself: the cluster network ConfigMap, the `kube-dns`
Service, and the `default/kubernetes` Service with its Endpoints and EndpointSlice.

Like upstream's control-plane controllers (`kubernetesservice`, the endpoint reconciler) these run at
start-up and are idempotent: a missing object is created; an existing one is corrected only where
the server owns it (the ConfigMap's data when the flags changed; the `kubernetes` Service's ports and
its endpoints when the server's address or port changed).  `kube-dns` is created once and then left
to the user.  Failures are logged, never fatal: a server with a conflicting object still serves.

Shapes follow upstream: the `kubernetes` Service has port `https` 443/TCP → the server's port and
labels `component=apiserver, provider=kubernetes`; its Endpoints carry
`endpointslice.kubernetes.io/skip-mirror: "true"` and its EndpointSlice only
`kubernetes.io/service-name: kubernetes` (the API server, not the EndpointSlice controller, manages
both).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any

from kubelite.apiserver.objects import ObjectStore, WriteOptions
from kubelite.machinery.errors import ApiError
from kubelite.machinery.network import (
    CONFIGMAP_NAME,
    CONFIGMAP_NAMESPACE,
    DNS_PORT,
    DNS_SERVICE_LABELS,
    DNS_SERVICE_NAME,
    DNS_SERVICE_NAMESPACE,
    ClusterNetwork,
)
from kubelite.machinery.resources import ResourceRegistry

log = logging.getLogger(__name__)

KUBERNETES_SERVICE_NAMESPACE = "default"
KUBERNETES_SERVICE_NAME = "kubernetes"
KUBERNETES_SERVICE_LABELS = {"component": "apiserver", "provider": "kubernetes"}
KUBERNETES_SERVICE_PORT = 443
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DNS_METRICS_PORT = 9153

Obj = dict[str, Any]


def configmap_object(network: ClusterNetwork) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP_NAME, "namespace": CONFIGMAP_NAMESPACE},
        "data": network.to_configmap_data(),
    }


def dns_service_object(network: ClusterNetwork) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": DNS_SERVICE_NAME, "namespace": DNS_SERVICE_NAMESPACE, "labels": dict(DNS_SERVICE_LABELS)},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": network.cluster_dns,
            "clusterIPs": [network.cluster_dns],
            "internalTrafficPolicy": "Local",
            "ports": [
                {"name": "dns", "port": DNS_PORT, "protocol": "UDP", "targetPort": DNS_PORT},
                {"name": "dns-tcp", "port": DNS_PORT, "protocol": "TCP", "targetPort": DNS_PORT},
                {"name": "metrics", "port": DNS_METRICS_PORT, "protocol": "TCP", "targetPort": DNS_METRICS_PORT},
            ],
        },
    }


def kubernetes_service_ports(port: int) -> list[Obj]:
    return [{"name": "https", "port": KUBERNETES_SERVICE_PORT, "protocol": "TCP", "targetPort": port}]


def kubernetes_service_object(network: ClusterNetwork, port: int) -> Obj:
    ip = network.kubernetes_service_ip
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": KUBERNETES_SERVICE_NAME,
            "namespace": KUBERNETES_SERVICE_NAMESPACE,
            "labels": dict(KUBERNETES_SERVICE_LABELS),
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "clusterIPs": [ip],
            "sessionAffinity": "None",
            "ports": kubernetes_service_ports(port),
        },
    }


def endpoint_ports(port: int) -> list[Obj]:
    return [{"name": "https", "port": port, "protocol": "TCP"}]


def kubernetes_endpoints_object(address: str, port: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": KUBERNETES_SERVICE_NAME,
            "namespace": KUBERNETES_SERVICE_NAMESPACE,
            "labels": {SKIP_MIRROR_LABEL: "true"},
        },
        "subsets": [{"addresses": [{"ip": address}], "ports": endpoint_ports(port)}],
    }


def kubernetes_endpointslice_object(address: str, port: int) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": KUBERNETES_SERVICE_NAME,
            "namespace": KUBERNETES_SERVICE_NAMESPACE,
            "labels": {SERVICE_NAME_LABEL: KUBERNETES_SERVICE_NAME},
        },
        "addressType": "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": endpoint_ports(port),
    }


def advertise_address(bind_host: str, configured: str = "") -> str:
    """The address the `kubernetes` endpoints point at: the configured one; else the bind address;
    for a wildcard bind, the address of the interface holding the default route (no packet is
    sent); 127.0.0.1 when there is none."""
    if configured:
        return configured
    try:
        bound = ipaddress.ip_address(bind_host)
    except ValueError:
        bound = None
    if bound is not None and not bound.is_unspecified:
        return str(bound)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1; connect() on UDP only picks a route
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"


class ClusterObjects:
    """Writes the bootstrap objects through the store (so Services get the normal allocation path)."""

    def __init__(self, store: ObjectStore, registry: ResourceRegistry, network: ClusterNetwork) -> None:
        self.store = store
        self.registry = registry
        self.network = network

    async def ensure_network_objects(self) -> None:
        """The ConfigMap (data follows the flags) and the kube-dns Service (created once)."""
        await self._ensure(
            "configmaps",
            configmap_object(self.network),
            lambda cur: cur.get("data") == self.network.to_configmap_data(),
            lambda cur: {**cur, "data": self.network.to_configmap_data()},
        )
        await self._ensure("services", dns_service_object(self.network), lambda cur: True, None)

    async def ensure_kubernetes_service(self, address: str, port: int) -> None:
        """`default/kubernetes` → `address:port`, with its Endpoints and EndpointSlice."""
        wanted_ports = kubernetes_service_ports(port)

        def service_ok(cur: Obj) -> bool:
            spec = cur.get("spec") or {}
            return spec.get("type") == "ClusterIP" and [_port_key(p) for p in spec.get("ports") or ()] == [
                _port_key(p) for p in wanted_ports
            ]

        def fix_service(cur: Obj) -> Obj:
            cur.setdefault("spec", {}).update({"type": "ClusterIP", "ports": wanted_ports})
            return cur

        await self._ensure("services", kubernetes_service_object(self.network, port), service_ok, fix_service)
        endpoints = kubernetes_endpoints_object(address, port)
        await self._ensure(
            "endpoints",
            endpoints,
            lambda cur: cur.get("subsets") == endpoints["subsets"] and _labels(cur) == _labels(endpoints),
            lambda cur: {**cur, "subsets": endpoints["subsets"], "metadata": _with_labels(cur, endpoints)},
        )
        slice_ = kubernetes_endpointslice_object(address, port)
        owned = ("addressType", "endpoints", "ports")
        await self._ensure(
            "endpointslices",
            slice_,
            lambda cur: all(cur.get(k) == slice_[k] for k in owned) and _labels(cur) == _labels(slice_),
            lambda cur: {**cur, **{k: slice_[k] for k in owned}, "metadata": _with_labels(cur, slice_)},
        )

    async def _ensure(
        self,
        plural: str,
        desired: Obj,
        is_current: Callable[[Obj], bool],
        fix: Callable[[Obj], Obj] | None,
    ) -> None:
        group, _, version = desired["apiVersion"].rpartition("/")
        resource = self.registry.get(group, version, plural)
        assert resource is not None
        meta = desired["metadata"]
        namespace, name = meta.get("namespace"), meta["name"]
        try:
            entry = self.store.cache.get(resource.key(namespace, name))
            if entry is None:
                await self.store.create(resource, namespace, desired, WriteOptions())
                log.info("created cluster object", extra={"resource": plural, "namespace": namespace, "object": name})
            elif fix is not None and not is_current(entry.obj):
                await self.store.guaranteed_update(resource, namespace, name, fix, WriteOptions())
                log.info("updated cluster object", extra={"resource": plural, "namespace": namespace, "object": name})
        except ApiError as exc:
            if exc.code != 409:
                log.error(
                    "cannot ensure cluster object",
                    extra={"resource": plural, "namespace": namespace, "object": name, "error": exc.message},
                )


def _port_key(port: Obj) -> tuple[Any, ...]:
    return (port.get("name"), port.get("port"), port.get("protocol") or "TCP", port.get("targetPort"))


def _labels(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _with_labels(cur: Obj, desired: Obj) -> Obj:
    return {**(cur.get("metadata") or {}), "labels": _labels(desired)}


__all__ = [
    "ClusterObjects",
    "advertise_address",
    "configmap_object",
    "dns_service_object",
    "kubernetes_endpoints_object",
    "kubernetes_endpointslice_object",
    "kubernetes_service_object",
]
