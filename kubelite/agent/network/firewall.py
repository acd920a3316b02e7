"""The node's own nftables table, ``ip kubelite-net``: masquerade for pods' traffic that leaves the cluster,
and a fast failure for service addresses that no service proxy rule took.

Pure: `render_node_table` returns the nft script; the bridge network applies it with ``nft -f -``.  The
script deletes and re-creates the table in one transaction, so applying it again (agent restart) is
idempotent and there is never a moment without rules.  It never names the table ``ip kubelite``: that one
belongs to the service proxy, and the two are written independently.

Why the reject rules: the service CIDR is routed to the node bridge (not `unreachable`, because a route
lookup that fails stops a node's own connection to a ClusterIP before the proxy's DNAT in the output hook
can rewrite it).  A packet to a service address that the proxy did not rewrite (no such Service, or a
port it does not serve) still has its service address at the filter hooks, which run after DNAT
(priority 0 > -100), and is rejected there with "host unreachable": it fails on the node at once instead
of waiting for an ARP reply on the bridge, and never leaves through the default route.
"""

from __future__ import annotations

import ipaddress

__all__ = ["TABLE", "render_node_table"]

TABLE = "kubelite-net"


def render_node_table(*, pod_cidr: str, cluster_cidr: str, service_cidr: str) -> str:
    """The whole ``ip kubelite-net`` table for a node whose pods use `pod_cidr`."""
    pods = ipaddress.IPv4Network(pod_cidr)
    cluster = ipaddress.IPv4Network(cluster_cidr)
    services = ipaddress.IPv4Network(service_cidr)
    reject = f"ip daddr {services} fib daddr type != local counter reject with icmp type host-unreachable"
    return "\n".join(
        [
            f"table ip {TABLE}",
            f"delete table ip {TABLE}",
            f"table ip {TABLE} {{",
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority 100; policy accept;",
            f"\t\tip saddr {pods} ip daddr != {cluster} counter masquerade",
            "\t}",
            "\tchain forward {",
            "\t\ttype filter hook forward priority 0; policy accept;",
            f"\t\t{reject}",
            "\t}",
            "\tchain output {",
            "\t\ttype filter hook output priority 0; policy accept;",
            f"\t\t{reject}",
            "\t}",
            "}",
            "",
        ]
    )
