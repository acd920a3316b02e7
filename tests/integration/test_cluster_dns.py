"""Cluster DNS in this process against a real `kubelite server` (agent and controllers off): Services and
EndpointSlices created through the API are answered on 127.0.0.1 (ephemeral port), deleted ones turn into
NXDOMAIN, and the node's kube-dns EndpointSlice shows up in `kubectl get endpointslices`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype

from kubelite.client import HttpClient, builtin
from kubelite.proxy.dns import DnsConfig, run_dns
from kubelite.testing.cluster import eventually, kubectl_async
from kubelite.testing.server import ServerProcess

SERVICES = builtin("", "services")
SLICES = builtin("discovery.k8s.io", "endpointslices")
NODE = "dns-node-1"


@contextlib.asynccontextmanager
async def cluster_dns(server: ServerProcess) -> AsyncIterator[tuple[HttpClient, int]]:
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        config = DnsConfig(node_name=NODE, listen_ip="127.0.0.1", port=0, resolv_conf="/nonexistent")
        listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(run_dns(client, config, on_listening=listening.set_result))
        try:
            yield client, await asyncio.wait_for(asyncio.shield(listening), 30)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def ask(port: int, name: str, rdtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(query, "127.0.0.1", port=port, timeout=5)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=5)


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(str(r) for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for r in rrset)


async def test_services_resolve_and_deleted_ones_become_nxdomain(server: ServerProcess) -> None:
    async with cluster_dns(server) as (client, port):
        web = await client.create(
            SERVICES,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "dns-web", "namespace": "default"},
                "spec": {"ports": [{"name": "http", "port": 80}], "selector": {"app": "dns-web"}},
            },
        )
        cluster_ip = web["spec"]["clusterIP"]

        async def web_resolves() -> bool:
            return addresses(await ask(port, "dns-web.default.svc.cluster.local.")) == [cluster_ip]

        await eventually(web_resolves, timeout=30)
        srv = await ask(port, "_http._tcp.dns-web.default.svc.cluster.local.", "SRV", tcp=True)
        assert [str(r) for r in srv.answer[0]] == ["0 100 80 dns-web.default.svc.cluster.local."]
        ptr = await ask(port, _reverse(cluster_ip), "PTR")
        assert [str(r) for r in ptr.answer[0]] == ["dns-web.default.svc.cluster.local."]
        assert (await ask(port, "dns-web.default.svc.cluster.local.", "AAAA")).rcode() == dns.rcode.NOERROR

        await client.create(
            SERVICES,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "dns-db", "namespace": "default"},
                "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]},
            },
        )
        await client.create(
            SLICES,
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "dns-db-1",
                    "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "dns-db"},
                },
                "addressType": "IPv4",
                "endpoints": [
                    {"addresses": ["10.42.0.5"], "hostname": "dns-db-0", "conditions": {"ready": True}},
                    {"addresses": ["10.42.0.6"], "conditions": {"ready": False}},
                ],
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            },
        )

        async def db_resolves() -> bool:
            return addresses(await ask(port, "dns-db.default.svc.cluster.local.")) == ["10.42.0.5"]

        await eventually(db_resolves, timeout=30)
        pet = await ask(port, "dns-db-0.dns-db.default.svc.cluster.local.")
        assert addresses(pet) == ["10.42.0.5"]

        await client.delete(SERVICES, "dns-web", "default")

        async def web_gone() -> bool:
            return (await ask(port, "dns-web.default.svc.cluster.local.")).rcode() == dns.rcode.NXDOMAIN

        await eventually(web_gone, timeout=30)


async def test_the_node_publishes_its_kube_dns_endpointslice(server: ServerProcess) -> None:
    async with cluster_dns(server) as (client, port):

        async def published() -> dict | None:
            result = await kubectl_async(server, "get", "endpointslices", "-n", "kube-system", "-o", "json")
            items = json.loads(result.stdout)["items"]
            return next((s for s in items if s["metadata"]["name"] == f"kube-dns-{NODE}"), None)

        found = await eventually(published, timeout=30)
        assert found["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
        assert found["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "kubelite-dns"
        assert found["endpoints"][0]["addresses"] == ["127.0.0.1"]
        assert found["endpoints"][0]["nodeName"] == NODE
        assert {p["name"]: p["port"] for p in found["ports"]} == {"dns": port, "dns-tcp": port, "metrics": 9153}
        # the publisher is satisfied with what the server stored: no update loop
        version = found["metadata"]["resourceVersion"]
        assert (await ask(port, "dns-version.cluster.local.", "TXT")).rcode() == dns.rcode.NOERROR
        stored = await client.get(SLICES, f"kube-dns-{NODE}", "kube-system")
        assert stored["metadata"]["resourceVersion"] == version


def _reverse(address: str) -> str:
    return ".".join(reversed(address.split("."))) + ".in-addr.arpa."
