"""The EndpointSlice, Endpoints, node IPAM and ServiceLB controllers in this process against a real
`kubelite server` (its own controllers and agent off), checked through the real kubectl. Nothing runs
pods here: the test reports pods Running and Ready with a podIP through the `status` subresource, as a
kubelet would."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.client import HttpClient, builtin
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.endpoints import EndpointsController
from kubelite.controllers.endpointslice import EndpointSliceController
from kubelite.controllers.nodeipam import NodeIpamController
from kubelite.controllers.servicelb import ServiceLBController
from kubelite.machinery.meta import now, rfc3339
from kubelite.machinery.network import ClusterNetwork
from kubelite.testing.cluster import eventually, kubectl_async
from kubelite.testing.server import ServerProcess

PODS = builtin("", "pods")
NODES = builtin("", "nodes")
SERVICES = builtin("", "services")

APP = """
apiVersion: v1
kind: Service
metadata: {name: web, labels: {tier: front}}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
"""


def web_pod(name: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "web", "image": "nginx", "ports": [{"name": "http", "containerPort": port}]}],
        },
    }


@pytest.fixture(scope="module")
def net_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--disable-agent", "--disable-controllers"]
    process = ServerProcess(Path(tmp_path_factory.mktemp("kubelite-net")), extra_args=args).start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.asynccontextmanager
async def controllers(server: ServerProcess) -> AsyncIterator[HttpClient]:
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        factory = SharedInformerFactory(client)

        def context(name: str) -> ControllerContext:
            return ControllerContext(client, factory, EventRecorder(client, name))

        built: list[Controller] = [
            EndpointSliceController(context(EndpointSliceController.name)),
            EndpointsController(context(EndpointsController.name)),
            NodeIpamController(context(NodeIpamController.name), network=ClusterNetwork()),
            ServiceLBController(context(ServiceLBController.name)),
        ]
        async with asyncio.TaskGroup() as tasks:
            started = [tasks.create_task(factory.run())]
            started += [tasks.create_task(c.recorder.run()) for c in built]
            started += [tasks.create_task(c.run()) for c in built]
            try:
                await factory.wait_for_sync()
                yield client
            finally:
                for task in started:
                    task.cancel()


async def report_ready(client: HttpClient, name: str, namespace: str, ip: str) -> None:
    condition = {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(now())}
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [condition]}
    await client.patch(PODS, name, {"status": status}, namespace, subresource="status")


async def report_node_ready(client: HttpClient, name: str, ip: str) -> None:
    status = {
        "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": rfc3339(now())}],
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
    }
    await client.patch(NODES, name, {"status": status}, subresource="status")


async def kubectl_json(server: ServerProcess, *args: str) -> dict[str, Any]:
    return json.loads((await kubectl_async(server, *args, "-o", "json")).stdout)


async def slices_show(server: ServerProcess, namespace: str, expected: str) -> bool:
    table = (await kubectl_async(server, "get", "endpointslices", "-n", namespace)).stdout
    return expected in table


async def test_services_get_slices_endpoints_node_cidrs_and_lb_status(net_server: ServerProcess) -> None:
    ns = "net-basic"
    async with controllers(net_server) as client:
        await kubectl_async(net_server, "create", "namespace", ns)
        await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}})
        await report_node_ready(client, "node-1", "192.0.2.11")
        node = await eventually(lambda: _node_with_cidr(client, "node-1"))
        assert node["spec"]["podCIDR"] == "10.42.0.0/24" and node["spec"]["podCIDRs"] == ["10.42.0.0/24"]

        await kubectl_async(net_server, "apply", "-n", ns, "-f", "-", input=APP)
        for name, ip, port in (("web-a", "10.42.0.5", 8080), ("web-b", "10.42.0.6", 9090)):
            await client.create(PODS, web_pod(name, port), ns)
            await report_ready(client, name, ns, ip)

        # the named targetPort resolves per pod: two port sets, two slices for `web`
        await eventually(lambda: slices_show(net_server, ns, "10.42.0.6"), timeout=30)
        found = await kubectl_json(
            net_server, "get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=web"
        )
        by_port = {s["ports"][0]["port"]: s for s in found["items"]}
        assert set(by_port) == {8080, 9090}
        first = by_port[8080]
        assert first["metadata"]["generateName"] == "web-"
        assert first["metadata"]["labels"] == {
            "tier": "front",
            "kubernetes.io/service-name": "web",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        }
        owner = first["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["controller"], owner["blockOwnerDeletion"]) == (
            "Service",
            "web",
            True,
            True,
        )
        assert "endpoints.kubernetes.io/last-change-trigger-time" in first["metadata"]["annotations"]
        assert first["endpoints"][0]["addresses"] == ["10.42.0.5"]
        assert first["endpoints"][0]["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert first["endpoints"][0]["nodeName"] == "node-1"
        assert first["endpoints"][0]["targetRef"]["name"] == "web-a"

        async def endpoints_listed() -> str | None:
            table = (await kubectl_async(net_server, "get", "endpoints", "web", "-n", ns, check=False)).stdout
            return table if "10.42.0.5:8080" in table and "10.42.0.6:9090" in table else None

        table = await eventually(endpoints_listed, timeout=30)
        assert table.splitlines()[0].split() == ["NAME", "ENDPOINTS", "AGE"]

        lb = await eventually(lambda: _lb_ingress(client, ns, "lb"), timeout=30)
        assert lb == [{"ip": "192.0.2.11", "ipMode": "VIP"}]

        # a service deleted takes its Endpoints with it (its slices go with the garbage collector or us)
        await kubectl_async(net_server, "delete", "service", "web", "-n", ns)
        await eventually(
            lambda: _gone(kubectl_async(net_server, "get", "endpoints", "web", "-n", ns, check=False)), timeout=30
        )
        await eventually(lambda: _no_slices(net_server, ns, "web"), timeout=30)


async def _node_with_cidr(client: HttpClient, name: str) -> dict[str, Any] | None:
    node = await client.get(NODES, name)
    return node if (node.get("spec") or {}).get("podCIDR") else None


async def _lb_ingress(client: HttpClient, namespace: str, name: str) -> list[dict[str, Any]] | None:
    service = await client.get(SERVICES, name, namespace)
    return ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or None


async def _gone(result: Any) -> bool:
    return (await result).returncode != 0


async def _no_slices(server: ServerProcess, namespace: str, service: str) -> bool:
    found = await kubectl_json(
        server, "get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}"
    )
    return not found["items"]
