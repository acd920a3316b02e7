"""The Service store hooks and bootstrap objects, in process over the memory backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubelite.apiserver.app import ApiServer, ApiServerConfig
from kubelite.apiserver.objects import DeleteOptions, WriteOptions
from kubelite.machinery.errors import ApiError
from kubelite.machinery.network import ClusterNetwork
from kubelite.machinery.resources import Resource
from kubelite.storage.memory import MemoryBackend

CONFIG = {"metrics_resolution": 0}


@pytest.fixture
async def backend() -> AsyncIterator[MemoryBackend]:
    store = MemoryBackend()
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def started(backend: MemoryBackend, **config: Any) -> ApiServer:
    server = ApiServer(backend, ApiServerConfig(**{**CONFIG, **config}))
    await server.start()
    return server


def services(server: ApiServer) -> Resource:
    resource = server.registry.get("", "v1", "services")
    assert resource is not None
    return resource


def svc(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"port": 80}])
    return {"metadata": {"name": name}, "spec": spec}


async def test_concurrent_creates_for_one_ip_exactly_one_wins(backend: MemoryBackend) -> None:
    server = await started(backend)
    try:
        results = await asyncio.gather(
            *(
                server.store.create(services(server), "default", svc(f"s{i}", clusterIP="10.43.7.7"), WriteOptions())
                for i in range(5)
            ),
            return_exceptions=True,
        )
        assert sum(isinstance(r, dict) for r in results) == 1
        assert all(isinstance(r, ApiError) and r.code == 422 for r in results if not isinstance(r, dict))
    finally:
        await server.close()


async def test_failed_write_releases_its_reservation(backend: MemoryBackend) -> None:
    server = await started(backend)
    try:
        await server.store.create(services(server), "default", svc("dup", type="NodePort"), WriteOptions())
        used = (server.store.ledger.ips.used, server.store.ledger.ports.used)
        with pytest.raises(ApiError) as caught:
            await server.store.create(services(server), "default", svc("dup", type="NodePort"), WriteOptions())
        assert caught.value.code == 409
        with pytest.raises(ApiError) as caught:  # validation fails after allocation
            await server.store.create(services(server), "default", svc("bad", sessionAffinity="Sticky"), WriteOptions())
        assert caught.value.code == 422
        assert (server.store.ledger.ips.used, server.store.ledger.ports.used) == used
    finally:
        await server.close()


async def test_release_waits_for_finalizers(backend: MemoryBackend) -> None:
    server = await started(backend)
    resource = services(server)
    try:
        obj = svc("held", clusterIP="10.43.9.9")
        obj["metadata"]["finalizers"] = ["example.com/hold"]
        await server.store.create(resource, "default", obj, WriteOptions())
        await server.store.delete(resource, "default", "held", DeleteOptions())
        assert server.store.ledger.ips.has("10.43.9.9")

        def drop_finalizers(current: dict[str, Any]) -> dict[str, Any]:
            current["metadata"]["finalizers"] = []
            return current

        await server.store.guaranteed_update(resource, "default", "held", drop_finalizers, WriteOptions())
        assert not server.store.ledger.ips.has("10.43.9.9")
    finally:
        await server.close()


async def test_restart_rebuilds_allocations_from_storage(backend: MemoryBackend) -> None:
    first = await started(backend)
    created = await first.store.create(services(first), "default", svc("a", type="NodePort"), WriteOptions())
    await first.close()
    second = await started(backend)
    try:
        ip, port = created["spec"]["clusterIP"], created["spec"]["ports"][0]["nodePort"]
        assert second.store.ledger.ips.has(ip) and second.store.ledger.ports.has(port)
        with pytest.raises(ApiError):
            await second.store.create(services(second), "default", svc("b", clusterIP=ip), WriteOptions())
    finally:
        await second.close()


async def test_custom_network_is_used_for_allocation_and_bootstrap(backend: MemoryBackend) -> None:
    network = ClusterNetwork(
        cluster_cidr="10.100.0.0/16", service_cidr="10.200.0.0/24", node_port_min=31000, node_port_max=31099
    )
    server = await started(backend, network=network, advertise_address="192.0.2.10", advertise_port=6443)
    try:
        await server.publish_endpoint("0.0.0.0", 12345)
        made = await server.store.create(services(server), "default", svc("x", type="NodePort"), WriteOptions())
        assert made["spec"]["clusterIP"].startswith("10.200.0.")
        assert 31000 <= made["spec"]["ports"][0]["nodePort"] <= 31099
        kubernetes = server.store.get(services(server), "default", "kubernetes")
        assert kubernetes["spec"]["clusterIP"] == "10.200.0.1"
        assert kubernetes["spec"]["ports"][0]["targetPort"] == 6443
        dns = server.store.get(services(server), "kube-system", "kube-dns")
        assert dns["spec"]["clusterIP"] == "10.200.0.10"
        configmaps = server.registry.get("", "v1", "configmaps")
        assert configmaps is not None
        data = server.store.get(configmaps, "kube-system", "kubelite-cluster-network")["data"]
        assert data["serviceCIDR"] == "10.200.0.0/24" and data["serviceNodePortRange"] == "31000-31099"
        endpoints = server.registry.get("", "v1", "endpoints")
        assert endpoints is not None
        subsets = server.store.get(endpoints, "default", "kubernetes")["subsets"]
        assert subsets == [
            {"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}
        ]
    finally:
        await server.close()


async def test_changed_flags_update_the_configmap_and_endpoints(backend: MemoryBackend) -> None:
    first = await started(backend)
    await first.publish_endpoint("127.0.0.1", 1111)
    await first.close()
    network = ClusterNetwork(node_port_min=30000, node_port_max=30999)
    second = await started(backend, network=network)
    try:
        await second.publish_endpoint("127.0.0.2", 2222)
        configmaps = second.registry.get("", "v1", "configmaps")
        slices = second.registry.get("discovery.k8s.io", "v1", "endpointslices")
        assert configmaps is not None and slices is not None
        data = second.store.get(configmaps, "kube-system", "kubelite-cluster-network")["data"]
        assert data["serviceNodePortRange"] == "30000-30999"
        endpoint_slice = second.store.get(slices, "default", "kubernetes")
        assert endpoint_slice["endpoints"][0]["addresses"] == ["127.0.0.2"]
        assert endpoint_slice["ports"][0]["port"] == 2222
        kubernetes = second.store.get(services(second), "default", "kubernetes")
        assert kubernetes["spec"]["ports"][0]["targetPort"] == 2222
    finally:
        await second.close()
