"""Flushing stale UDP conntrack entries after endpoints go away, as upstream kube-proxy does.

Why: a UDP "connection" has no end, so a client that keeps sending to a ClusterIP keeps hitting the conntrack
entry that DNATs it to a backend that no longer exists; deleting the entry makes its next packet go through
the rules again.  TCP needs nothing (the peer resets), so only UDP is flushed.

Uses the `conntrack` tool (conntrack-tools) when it is on PATH; when it is missing the flush is skipped
silently (stale UDP flows then last until conntrack's own UDP timeout, 30-120 s).  Failures are logged and
never stop a sync.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from kubelite.proxy.commands import CommandError, Shell
from kubelite.proxy.model import ServicePortName, ServicePortPlan

log = logging.getLogger(__name__)

__all__ = ["flush_commands", "flush_stale_udp"]

CONNTRACK = "conntrack"


def flush_commands(
    old: Mapping[ServicePortName, ServicePortPlan], new: Mapping[ServicePortName, ServicePortPlan]
) -> list[list[str]]:
    """The `conntrack -D` argument lists for UDP endpoints present in `old` and gone from `new` (per service
    address and per node port), and for UDP service ports that had no endpoints and now have some (their
    clients' entries still hold the earlier reject).  Pure."""
    commands: list[list[str]] = []
    for name, before in sorted(old.items()):
        if before.protocol != "UDP":
            continue
        after = new.get(name)
        kept = set(after.all_endpoints) if after else set()
        gone = sorted({e.ip for e in before.all_endpoints if e not in kept})
        for ip in gone:
            for address in (*before.cluster_ips, *before.external_destinations):
                commands.append(["-D", "-p", "udp", "--orig-dst", address, "--dst-nat", ip])
            if before.node_port:
                commands.append(["-D", "-p", "udp", "--orig-port-dst", str(before.node_port), "--dst-nat", ip])
    for name, after in sorted(new.items()):
        before = old.get(name)
        if after.protocol == "UDP" and before is not None and not before.has_endpoints and after.has_endpoints:
            for address in after.cluster_ips:
                commands.append(["-D", "-p", "udp", "--orig-dst", address, "--orig-port-dst", str(after.port)])
    return commands


async def flush_stale_udp(
    shell: Shell, old: Mapping[ServicePortName, ServicePortPlan], new: Mapping[ServicePortName, ServicePortPlan]
) -> None:
    """Run `flush_commands` (module docstring: skipped without the tool; "no entries" is not an error)."""
    commands = flush_commands(old, new)
    if not commands or not Shell.has(CONNTRACK):
        return
    for args in commands:
        try:
            await shell.run([CONNTRACK, *args])
        except CommandError as exc:
            if "0 flow entries" not in exc.stderr:
                log.warning("conntrack flush failed", extra={"args": args, "error": str(exc)})
