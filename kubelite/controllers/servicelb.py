"""ServiceLB: the LoadBalancer status of `type: LoadBalancer` Services, in the spirit of k3s' ServiceLB.

Every node's proxy already serves LoadBalancer traffic on the node's own addresses, so the load balancer
is "every Ready node": `status.loadBalancer.ingress` lists the ExternalIPs of every Ready node (its
InternalIPs when it has no ExternalIP), of the Service's IP families, sorted, each with `ipMode: VIP`.
(k3s runs a DaemonSet of forwarding pods for this; kubelite derives the same answer from the Node list.)

Contracts:

* Only Services without `spec.loadBalancerClass`, or with `LOAD_BALANCER_CLASS`, are ours. Nodes with
  the `node.kubernetes.io/exclude-from-external-load-balancers` label are left out, as upstream's
  service controller does.
* The status is written through the `status` subresource only when it differs. Node changes that can
  change the answer (Ready, addresses, the exclusion label, add, delete) re-sync every LoadBalancer
  Service. When a Service stops being of type LoadBalancer its ingress is cleared (other classes'
  Services are never touched).
* Events on the Service as upstream's service controller writes them: `EnsuredLoadBalancer` when the
  ingress is set or changed, `DeletedLoadBalancer` when it is cleared.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from kubelite.client.events import NORMAL
from kubelite.client.interface import builtin
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.podutil import condition
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import labels_of, name_of, namespace_of

log = logging.getLogger(__name__)

SERVICES = builtin("", "services")
NODES = builtin("", "nodes")

LOAD_BALANCER_CLASS = "kubelite.io/servicelb"
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"


def is_ours(service: Mapping[str, Any]) -> bool:
    """A LoadBalancer Service this controller serves."""
    spec = service.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and spec.get("loadBalancerClass") in (None, "", LOAD_BALANCER_CLASS)


def node_is_ready(node: Mapping[str, Any]) -> bool:
    ready = condition(node, "Ready")
    return bool(ready and ready.get("status") == "True")


def node_lb_addresses(node: Mapping[str, Any]) -> list[str]:
    """The node's ExternalIPs, or its InternalIPs when it has none."""
    addresses = (node.get("status") or {}).get("addresses") or ()
    external = [a.get("address") for a in addresses if a.get("type") == "ExternalIP" and a.get("address")]
    if external:
        return [str(a) for a in external]
    return [str(a.get("address")) for a in addresses if a.get("type") == "InternalIP" and a.get("address")]


def _family(address: str) -> str | None:
    try:
        return "IPv4" if ipaddress.ip_address(address).version == 4 else "IPv6"
    except ValueError:
        return None


def desired_ingress(service: Mapping[str, Any], nodes: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """`status.loadBalancer.ingress` for one of our Services: see the module docstring."""
    families = set((service.get("spec") or {}).get("ipFamilies") or ["IPv4"])
    found: set[str] = set()
    for node in nodes:
        if not node_is_ready(node) or EXCLUDE_LABEL in labels_of(dict(node)):
            continue
        found.update(a for a in node_lb_addresses(node) if _family(a) in families)
    ordered = sorted(found, key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))
    return [{"ip": address, "ipMode": "VIP"} for address in ordered]


def current_ingress(service: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ())


def status_patch(service: Mapping[str, Any], nodes: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The merge patch for the `status` subresource, or None when the status is right already."""
    if is_ours(service):
        wanted = desired_ingress(service, nodes)
    elif (service.get("spec") or {}).get("type") != "LoadBalancer":
        wanted = []
    else:
        return None  # another load balancer's Service
    if current_ingress(service) == wanted:
        return None
    return {"status": {"loadBalancer": {"ingress": wanted or None}}}


def _node_view(node: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a Node can change the ingress."""
    return (node_is_ready(node), tuple(node_lb_addresses(node)), EXCLUDE_LABEL in labels_of(dict(node)))


class ServiceLBController(Controller):
    """See the module docstring."""

    name = "service-lb-controller"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.services = self.informer(SERVICES)
        self.nodes = self.informer(NODES)
        self.services.add_handler(self._on_service, lambda _old, new: self._on_service(new))
        self.nodes.add_handler(self._on_node, self._on_node_update, self._on_node)

    def _on_service(self, service: dict[str, Any]) -> None:
        if is_ours(service) or current_ingress(service):
            self.enqueue(service)

    def _on_node(self, _node: dict[str, Any]) -> None:
        for service in self.services.list():
            if is_ours(service):
                self.enqueue(service)

    def _on_node_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if _node_view(old) != _node_view(new):
            self._on_node(new)

    async def reconcile(self, key: str) -> None:
        service = self.services.get(key)
        if service is None:
            return
        patch = status_patch(service, self.nodes.list())
        if patch is None:
            return
        try:
            await self.client.patch(SERVICES, name_of(service), patch, namespace_of(service), subresource="status")
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        ingress = patch["status"]["loadBalancer"]["ingress"]
        if ingress:
            log.info("load balancer ingress set", extra={"service": key, "ingress": [i["ip"] for i in ingress]})
            self.recorder.event(service, NORMAL, "EnsuredLoadBalancer", "Ensured load balancer")
        else:
            self.recorder.event(service, NORMAL, "DeletedLoadBalancer", "Deleted load balancer")


__all__ = [
    "EXCLUDE_LABEL",
    "LOAD_BALANCER_CLASS",
    "ServiceLBController",
    "current_ingress",
    "desired_ingress",
    "is_ours",
    "node_lb_addresses",
    "status_patch",
]
