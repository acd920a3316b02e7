"""Where names outside the cluster go: the node's resolvers, chosen so that a query can never loop back.

`select_upstreams` is pure: from the nameservers of the node's resolv.conf it drops those that would send a
query back to a cluster DNS server, with the reason, so the caller can log them:

* the cluster DNS Service IP and every address in the service CIDR (the proxy sends them to a cluster DNS);
* every address in the cluster CIDR (pods and the node bridges, where each node's DNS server listens: two
  nodes could forward a name to each other for ever);
* our own listen address (with our port);
* loopback (and the unspecified address, which resolvers treat as loopback) when it is not reachable from
  here: the process runs in another network namespace than the one the resolv.conf was written for (a node
  inside a test namespace reading the host's ``127.0.0.53``), or it would be ourselves (we listen on loopback
  or every address, on port 53).

`Forwarder.forward(query, tcp=...)` asks the upstreams in order, each with a timeout, and returns the first
answer (None when every one failed: the caller answers SERVFAIL).  The resolv.conf is read again when its
modification time changes, checked at most every `RECHECK_SECONDS`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.message

from kubelite.client.clock import Clock, RealClock
from kubelite.machinery.network import ClusterNetwork

__all__ = [
    "Forwarder",
    "Upstream",
    "loopback_reachable",
    "parse_nameservers",
    "parse_upstream",
    "select_upstreams",
]

log = logging.getLogger(__name__)

DNS_PORT = 53
MAX_NAMESERVERS = 3  # glibc's MAXNS: a resolver only ever uses the first three
RECHECK_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Upstream:
    host: str
    port: int = DNS_PORT

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_upstream(text: str) -> Upstream:
    """``1.1.1.1``, ``1.1.1.1:5353``, ``fd00::1`` or ``[fd00::1]:5353`` → Upstream; ValueError otherwise."""
    text = text.strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    ipaddress.ip_address(host)
    return Upstream(host, int(port) if port else DNS_PORT)


def parse_nameservers(text: str) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf, in order (scoped IPv6 addresses are dropped)."""
    found: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver" and "%" not in fields[1]:
            try:
                found.append(str(ipaddress.ip_address(fields[1])))
            except ValueError:
                continue
    return found


def select_upstreams(
    nameservers: Iterable[str],
    *,
    cluster: ClusterNetwork,
    listen_ip: str,
    port: int,
    loopback_ok: bool,
) -> tuple[list[Upstream], list[tuple[str, str]]]:
    """(usable upstreams on port 53, [(skipped address, why)]) — see the module docstring."""
    service = ipaddress.ip_network(cluster.service_cidr)
    pods = ipaddress.ip_network(cluster.cluster_cidr)
    listen = ipaddress.ip_address(listen_ip)
    listens_locally = listen.is_loopback or listen.is_unspecified
    chosen: list[Upstream] = []
    skipped: list[tuple[str, str]] = []
    for text in list(nameservers)[:MAX_NAMESERVERS]:
        address = ipaddress.ip_address(text)
        local = address.is_loopback or address.is_unspecified
        if text == cluster.cluster_dns or (address.version == service.version and address in service):
            skipped.append((text, "in the service CIDR: would reach a cluster DNS server"))
        elif address.version == pods.version and address in pods:
            skipped.append((text, "in the cluster CIDR: would reach a cluster DNS server"))
        elif address == listen and port == DNS_PORT:
            skipped.append((text, "our own listen address"))
        elif local and not loopback_ok:
            skipped.append((text, "loopback of another network namespace"))
        elif local and listens_locally and port == DNS_PORT:
            skipped.append((text, "loopback: would reach this server"))
        else:
            chosen.append(Upstream(text))
    return chosen, skipped


def loopback_reachable() -> bool:
    """Whether this process shares init's network namespace (so the node's resolv.conf loopback is ours).

    Unknown (no permission to look at PID 1) counts as shared.
    """
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return True


class Forwarder:
    """Sends queries to the upstreams (module docstring).  `explicit` upstreams replace the resolv.conf."""

    def __init__(
        self,
        *,
        cluster: ClusterNetwork,
        listen_ip: str,
        port: int,
        resolv_conf: str,
        explicit: Sequence[Upstream] = (),
        timeout: float = 2.0,
        clock: Clock | None = None,
    ) -> None:
        self.cluster = cluster
        self.listen_ip = listen_ip
        self.port = port
        self.resolv_conf = resolv_conf
        self.explicit = [u for u in explicit if not (u.host == listen_ip and u.port == port)]
        self.timeout = timeout
        self._clock = clock or RealClock()
        self._upstreams: list[Upstream] = []
        self._mtime: float | None = None
        self._checked_at: float | None = None
        self._loopback_ok = loopback_reachable()

    @property
    def upstreams(self) -> list[Upstream]:
        self._refresh()
        return list(self._upstreams)

    def _refresh(self) -> None:
        if self.explicit:
            self._upstreams = self.explicit
            return
        now = self._clock.now()
        if self._checked_at is not None and now - self._checked_at < RECHECK_SECONDS:
            return
        self._checked_at = now
        try:
            mtime = os.stat(self.resolv_conf).st_mtime
            if mtime == self._mtime:
                return
            with open(self.resolv_conf, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError as exc:
            if self._mtime is not None or not self._upstreams:
                log.warning("cannot read resolv.conf", extra={"path": self.resolv_conf, "error": str(exc)})
            self._mtime, self._upstreams = None, []
            return
        self._mtime = mtime
        chosen, skipped = select_upstreams(
            parse_nameservers(text),
            cluster=self.cluster,
            listen_ip=self.listen_ip,
            port=self.port,
            loopback_ok=self._loopback_ok,
        )
        for address, why in skipped:
            log.info("upstream nameserver skipped", extra={"nameserver": address, "reason": why})
        if not chosen:
            log.warning("no usable upstream nameserver: outside names fail", extra={"path": self.resolv_conf})
        self._upstreams = chosen

    async def forward(self, query: dns.message.Message, *, tcp: bool) -> dns.message.Message | None:
        """The first upstream answer to `query` (same id), or None when every upstream failed."""
        for upstream in self.upstreams:
            try:
                if tcp:
                    return await dns.asyncquery.tcp(query, upstream.host, timeout=self.timeout, port=upstream.port)
                return await dns.asyncquery.udp(
                    query, upstream.host, timeout=self.timeout, port=upstream.port, ignore_unexpected=True
                )
            except (dns.exception.DNSException, OSError, EOFError) as exc:
                log.debug("upstream failed", extra={"upstream": str(upstream), "error": repr(exc)})
        return None
