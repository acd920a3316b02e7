"""The node's kube-dns EndpointSlice (pure decision + publisher) and `run_dns` end to end over a FakeClient."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from kubelite.client.interface import builtin
from kubelite.machinery.meta import deep_copy
from kubelite.proxy.dns import DnsConfig, run_dns
from kubelite.proxy.dns.publisher import desired_slice, slice_update
from kubelite.testing.cluster import eventually
from kubelite.testing.fake_client import FakeClient

SLICES = builtin("discovery.k8s.io", "endpointslices")
SERVICES = builtin("", "services")
NODES = builtin("", "nodes")


def test_desired_slice_describes_the_node_dns_server() -> None:
    wanted = desired_slice(node_name="node1", listen_ip="10.42.0.1", port=53, node_uid="u-1")
    assert wanted["metadata"] == {
        "name": "kube-dns-node1",
        "namespace": "kube-system",
        "labels": {
            "kubernetes.io/service-name": "kube-dns",
            "endpointslice.kubernetes.io/managed-by": "kubelite-dns",
        },
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node1", "uid": "u-1"}],
    }
    assert wanted["addressType"] == "IPv4"
    assert wanted["endpoints"] == [
        {
            "addresses": ["10.42.0.1"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": "node1",
        }
    ]
    assert wanted["ports"] == [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "metrics", "port": 9153, "protocol": "TCP"},
    ]
    assert "ownerReferences" not in desired_slice(node_name="n", listen_ip="10.42.0.1", port=53)["metadata"]


def test_slice_update_is_none_when_nothing_we_own_changed() -> None:
    wanted = desired_slice(node_name="node1", listen_ip="10.42.0.1", port=53)
    current = deep_copy(wanted)
    current["metadata"]["resourceVersion"] = "7"
    current["metadata"]["labels"]["team"] = "dns"  # someone else's label is left alone
    assert slice_update(current, wanted) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["endpoints"][0]["conditions"].update(ready=False),
        lambda s: s["ports"].pop(),
        lambda s: s["metadata"]["labels"].pop("endpointslice.kubernetes.io/managed-by"),
        lambda s: s.update(addressType="IPv6"),
    ],
)
def test_slice_update_puts_back_what_we_own(change: Any) -> None:
    wanted = desired_slice(node_name="node1", listen_ip="10.42.0.1", port=53, node_uid="u-1")
    current = deep_copy(wanted)
    current["metadata"]["resourceVersion"] = "7"
    current["metadata"]["labels"]["team"] = "dns"
    change(current)
    updated = slice_update(current, wanted)
    assert updated is not None
    assert updated["metadata"]["resourceVersion"] == "7"
    assert updated["metadata"]["labels"]["team"] == "dns"
    for field in ("addressType", "endpoints", "ports"):
        assert updated[field] == wanted[field]
    assert current["metadata"]["labels"] != updated["metadata"]["labels"] or current != updated


@contextlib.asynccontextmanager
async def dns_running(client: FakeClient) -> AsyncIterator[int]:
    config = DnsConfig(node_name="node1", listen_ip="127.0.0.1", port=0, resolv_conf="/nonexistent")
    listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_dns(client, config, on_listening=listening.set_result))
    try:
        yield await asyncio.wait_for(asyncio.shield(listening), 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def query(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    return await dns.asyncquery.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=5)


def the_slice(client: FakeClient) -> dict[str, Any] | None:
    return next((s for s in client.objects(SLICES) if s["metadata"]["name"] == "kube-dns-node1"), None)


async def test_run_dns_publishes_its_slice_with_the_real_port_and_recreates_it() -> None:
    client = FakeClient()
    async with dns_running(client) as port:
        published = await eventually(lambda: the_slice(client), timeout=10)
        assert {p["name"]: p["port"] for p in published["ports"]} == {"dns": port, "dns-tcp": port, "metrics": 9153}
        await client.delete(SLICES, "kube-dns-node1", "kube-system")
        recreated = await eventually(lambda: the_slice(client), timeout=10)
        assert recreated["metadata"]["uid"] != published["metadata"]["uid"]
        node = await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node1"}})
        owned = await eventually(
            lambda: (s := the_slice(client)) and s["metadata"].get("ownerReferences") and s, timeout=10
        )
        assert owned["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]


async def test_run_dns_answers_from_the_caches_as_services_come_and_go() -> None:
    client = FakeClient()
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
    }
    await client.create(SERVICES, svc)
    async with dns_running(client) as port:

        async def rcode(name: str) -> int:
            return (await query(port, name)).rcode()

        async def resolves() -> bool:
            return await rcode("web.default.svc.cluster.local.") == dns.rcode.NOERROR

        await eventually(resolves, timeout=10)
        headless = deep_copy(svc)
        headless["metadata"]["name"] = "db"
        headless["spec"] = {"clusterIP": "None"}
        await client.create(SERVICES, headless)
        await client.create(
            SLICES,
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": "db-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "db"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.42.0.5"], "hostname": "db-0"}],
                "ports": [],
            },
        )

        async def db_resolves() -> bool:
            reply = await query(port, "db-0.db.default.svc.cluster.local.")
            return bool(reply.answer) and str(reply.answer[0][0]) == "10.42.0.5"

        await eventually(db_resolves, timeout=10)
        await client.delete(SERVICES, "web", "default")

        async def gone() -> bool:
            return await rcode("web.default.svc.cluster.local.") == dns.rcode.NXDOMAIN

        await eventually(gone, timeout=10)
