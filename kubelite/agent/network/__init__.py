"""Pod networking of the node agent: a network namespace, a veth on the node bridge and an address from the
node's pod CIDR per pod (as root), or the host network (without root)."""

from kubelite.agent.network.factory import create_pod_network
from kubelite.agent.network.routes import node_routes

__all__ = ["create_pod_network", "node_routes"]
