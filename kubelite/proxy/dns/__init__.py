"""Cluster DNS: an authoritative server for the cluster domain on every node, forwarding other names.

    await run_dns(client, DnsConfig(node_name="node1", listen_ip="10.42.0.1", cluster=network))

Modules, from the pure core out: `records` (the records one Service owns), `zone` (the indexed zone and how it
answers: NXDOMAIN vs NODATA, CNAME chains, SOA), `upstream` (which resolvers to forward to without loops, and
forwarding), `server` (UDP/TCP, truncation, bounded in-flight forwarding), `publisher` (this node's kube-dns
EndpointSlice), `runner` (`DnsConfig`, `run_dns`: informers → zone → server → slice).
"""

from kubelite.proxy.dns.runner import DnsConfig, ZoneCache, run_dns

__all__ = ["DnsConfig", "ZoneCache", "run_dns"]
