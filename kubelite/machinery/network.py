"""The cluster's network plan: pod CIDR, service CIDR, cluster DNS, and how every part learns it.

The API server is started with the plan (flags) and publishes it as the ConfigMap
``kube-system/kubelite-cluster-network``; node agents and proxies, including those on machines that joined
later, read that ConfigMap instead of repeating flags, so a whole cluster always agrees on one plan.
Pure data and arithmetic, no I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
DEFAULT_NODE_CIDR_MASK = 24
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_NODE_PORT_RANGE = (30000, 32767)

CONFIGMAP_NAMESPACE = "kube-system"
CONFIGMAP_NAME = "kubelite-cluster-network"

# The cluster DNS Service (name and labels as kubeadm/CoreDNS clusters have them, so tools that look for it find it).
DNS_SERVICE_NAMESPACE = "kube-system"
DNS_SERVICE_NAME = "kube-dns"
DNS_SERVICE_LABELS = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS", "kubernetes.io/cluster-service": "true"}
DNS_PORT = 53
# Label on the EndpointSlices a node publishes for its own DNS server (one slice per node).
DNS_SLICE_MANAGED_BY = "kubelite-dns"


@dataclass(frozen=True, slots=True)
class ClusterNetwork:
    """`cluster_dns` is the kube-dns Service's ClusterIP: the tenth address of the service CIDR unless set."""

    cluster_cidr: str = DEFAULT_CLUSTER_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    node_cidr_mask: int = DEFAULT_NODE_CIDR_MASK
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    cluster_dns: str = ""
    node_port_min: int = DEFAULT_NODE_PORT_RANGE[0]
    node_port_max: int = DEFAULT_NODE_PORT_RANGE[1]

    def __post_init__(self) -> None:
        cluster = ipaddress.ip_network(self.cluster_cidr)
        service = ipaddress.ip_network(self.service_cidr)
        if cluster.overlaps(service):
            raise ValueError(f"cluster CIDR {cluster} overlaps service CIDR {service}")
        if not cluster.prefixlen <= self.node_cidr_mask <= cluster.max_prefixlen - 2:
            raise ValueError(f"node CIDR mask /{self.node_cidr_mask} does not fit cluster CIDR {cluster}")
        if not 0 < self.node_port_min <= self.node_port_max <= 65535:
            raise ValueError(f"bad node port range {self.node_port_min}-{self.node_port_max}")
        if not self.cluster_dns:
            object.__setattr__(self, "cluster_dns", str(service.network_address + 10))
        elif ipaddress.ip_address(self.cluster_dns) not in service:
            raise ValueError(f"cluster DNS {self.cluster_dns} is outside the service CIDR {service}")

    @property
    def kubernetes_service_ip(self) -> str:
        """The ClusterIP of `default/kubernetes`: the first address of the service CIDR, as upstream."""
        return str(ipaddress.ip_network(self.service_cidr).network_address + 1)

    def to_configmap_data(self) -> dict[str, str]:
        return {
            "clusterCIDR": self.cluster_cidr,
            "serviceCIDR": self.service_cidr,
            "nodeCIDRMaskSize": str(self.node_cidr_mask),
            "clusterDomain": self.cluster_domain,
            "clusterDNS": self.cluster_dns,
            "serviceNodePortRange": f"{self.node_port_min}-{self.node_port_max}",
        }

    @classmethod
    def from_configmap_data(cls, data: dict[str, Any]) -> ClusterNetwork:
        low, _, high = str(data.get("serviceNodePortRange") or "").partition("-")
        return cls(
            cluster_cidr=data.get("clusterCIDR") or DEFAULT_CLUSTER_CIDR,
            service_cidr=data.get("serviceCIDR") or DEFAULT_SERVICE_CIDR,
            node_cidr_mask=int(data.get("nodeCIDRMaskSize") or DEFAULT_NODE_CIDR_MASK),
            cluster_domain=data.get("clusterDomain") or DEFAULT_CLUSTER_DOMAIN,
            cluster_dns=data.get("clusterDNS") or "",
            node_port_min=int(low) if low else DEFAULT_NODE_PORT_RANGE[0],
            node_port_max=int(high) if high else DEFAULT_NODE_PORT_RANGE[1],
        )


def parse_port_range(text: str) -> tuple[int, int]:
    """``30000-32767`` → (30000, 32767); the form of kube-apiserver's --service-node-port-range."""
    low, sep, high = text.partition("-")
    if not sep:
        raise ValueError(f"port range {text!r} is not of the form LOW-HIGH")
    return int(low), int(high)


def gateway_address(pod_cidr: str) -> str:
    """The node bridge's address in its pod CIDR (the first host address); pods route through it, and the
    node's DNS server listens on it."""
    return str(ipaddress.ip_network(pod_cidr).network_address + 1)


def dns_search_path(namespace: str, domain: str) -> list[str]:
    """The search list of a ClusterFirst pod's resolv.conf, as the kubelet writes it."""
    return [f"{namespace}.svc.{domain}", f"svc.{domain}", domain]
