"""`Zone`: the cluster domain (and the reverse names of the cluster's networks) as one answerable index.

The shell feeds it one Service at a time (`set_service(key, records)` / `remove_service(key)`), so a change
costs what that Service owns, never a rebuild of the whole zone; `lookup(qname, qtype)` is pure over the
index and answers the way CoreDNS' kubernetes plugin does (``pods insecure``, its default):

* Authority: names under ``<cluster domain>``, and reverse names (``in-addr.arpa``/``ip6.arpa``) of addresses
  inside the service or cluster CIDR.  A PTR record the index holds for any other address is answered too.
  Everything else is not ours: `lookup` returns None and the caller forwards the query upstream.
* An existing name without records of the asked type is NOERROR with no data (NODATA): that includes names
  that only have other records (AAAA for an IPv4-only Service) and the names between the zone and a record
  (``svc.<zone>``, ``<ns>.svc.<zone>``: empty non-terminals).  A name that does not exist is NXDOMAIN.  Both
  carry the zone's SOA in the authority section, so resolvers cache the negative answer for its TTL.
* A CNAME (ExternalName Service) answers every type except itself through the alias: the CNAME, then what
  the target holds when the target is in the zone; an out-of-zone target is left for the caller (`Answer.chase`).
* SRV answers carry the targets' A/AAAA records in the additional section.
* Fixed names: the apex SOA and NS (``ns.dns.<zone>``, whose A record is the cluster DNS Service IP),
  ``dns-version.<zone>`` TXT ``"1.1.0"``, and ``<a-b-c-d>.<ns>.pod.<zone>`` A → a.b.c.d for any namespace.

Comparisons are case-insensitive (dnspython names compare so); answers keep the question's spelling.
The SOA is CoreDNS': ``ns.dns.<zone> hostmaster.<zone> <serial> 7200 1800 86400 <ttl>`` with TTL
``min(ttl, 300)``; `serial` is set by the owner (unix time of the last change, as CoreDNS).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from kubelite.machinery.network import ClusterNetwork
from kubelite.proxy.dns.records import DEFAULT_TTL, DNS_SCHEMA_VERSION, Record, undashed

__all__ = ["Answer", "Zone"]

IN = dns.rdataclass.IN
RdataType = dns.rdatatype.RdataType
ADDRESS_TYPES = (RdataType.A, RdataType.AAAA)
MAX_CNAME_CHAIN = 8
REVERSE_ROOTS = (dns.name.from_text("in-addr.arpa."), dns.name.from_text("ip6.arpa."))


@dataclass
class Answer:
    """What to put in a response.  `chase`: an out-of-zone CNAME target the caller may resolve upstream."""

    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    chase: dns.name.Name | None = None


class Zone:
    """The index (module docstring).  Not thread-safe; owned by the event loop that serves queries."""

    def __init__(self, cluster: ClusterNetwork, *, ttl: int = DEFAULT_TTL) -> None:
        self.cluster = cluster
        self.ttl = ttl
        self.serial = 1
        self.origin = dns.name.from_text(cluster.cluster_domain.strip(".") + ".")
        self._networks = [ipaddress.ip_network(cluster.service_cidr), ipaddress.ip_network(cluster.cluster_cidr)]
        self._reverse_zones = [(net, _reverse_zone(net)) for net in self._networks]
        self._by_service: dict[str, list[Record]] = {}
        # name → type → records, with how many services contributed each record
        self._records: dict[dns.name.Name, dict[RdataType, Counter[dns.rdata.Rdata]]] = {}
        self._below: Counter[dns.name.Name] = Counter()  # ancestors of record names: empty non-terminals
        self._pod_suffix = dns.name.Name(["pod"]).concatenate(self.origin)
        self._version_name = dns.name.Name(["dns-version"]).concatenate(self.origin)
        self._ns_name = dns.name.Name(["ns", "dns"]).concatenate(self.origin)
        self._fixed_ancestors = {dns.name.Name(["dns"]).concatenate(self.origin), self._pod_suffix}

    # -- feeding ----------------------------------------------------------------------------------

    def set_service(self, key: str, records: Iterable[Record]) -> None:
        """Replace what Service `key` ("ns/name") contributes; idempotent."""
        self.remove_service(key)
        new = list(records)
        if not new:
            return
        self._by_service[key] = new
        for record in new:
            by_type = self._records.setdefault(record.name, {})
            by_type.setdefault(record.rdtype, Counter())[record.rdata] += 1
            for ancestor in self._ancestors(record.name):
                self._below[ancestor] += 1

    def remove_service(self, key: str) -> None:
        for record in self._by_service.pop(key, ()):
            by_type = self._records[record.name]
            counts = by_type[record.rdtype]
            counts[record.rdata] -= 1
            if counts[record.rdata] <= 0:
                del counts[record.rdata]
                if not counts:
                    del by_type[record.rdtype]
                    if not by_type:
                        del self._records[record.name]
            for ancestor in self._ancestors(record.name):
                self._below[ancestor] -= 1
                if self._below[ancestor] <= 0:
                    del self._below[ancestor]

    def services(self) -> list[str]:
        return sorted(self._by_service)

    # -- answering --------------------------------------------------------------------------------

    def authority_for(self, qname: dns.name.Name) -> dns.name.Name | None:
        """The zone apex `qname` is answered under, or None when it is not ours (forward it)."""
        if qname.is_subdomain(self.origin):
            return self.origin
        if not any(qname.is_subdomain(root) for root in REVERSE_ROOTS):
            return None
        address = _reverse_address(qname)
        if address is not None:
            for network, apex in self._reverse_zones:
                if address.version == network.version and address in network:
                    return apex
        if qname in self._records:
            return qname.parent()  # a PTR we hold for an address outside our networks
        for _network, apex in self._reverse_zones:
            if qname.is_subdomain(apex) and (qname in self._below or qname == apex):
                return apex
        return None

    def lookup(self, qname: dns.name.Name, qtype: RdataType) -> Answer | None:
        """The answer for one question, or None when the name is not ours (module docstring)."""
        apex = self.authority_for(qname)
        if apex is None:
            return None
        answer = Answer()
        name, seen = qname, 0
        while True:
            found = self._rrsets(name, qtype, apex)
            if found is None:
                answer.rcode = dns.rcode.NXDOMAIN  # RFC 6604: the rcode speaks of the last name of a chain
                answer.authority.append(self._soa(apex))
                return answer
            if found:
                answer.answer.extend(found)
                if found[0].rdtype == RdataType.CNAME and qtype != RdataType.CNAME:
                    target: dns.name.Name = found[0][0].target
                    seen += 1
                    if not target.is_subdomain(self.origin):
                        answer.chase = target
                        return answer
                    if seen < MAX_CNAME_CHAIN:
                        name = target
                        continue
                break
            answer.authority.append(self._soa(apex))  # NODATA
            return answer
        answer.additional.extend(self._additional(answer.answer))
        return answer

    def _rrsets(self, name: dns.name.Name, qtype: RdataType, apex: dns.name.Name) -> list[dns.rrset.RRset] | None:
        """The RRsets at `name` for `qtype` ([] for NODATA, None for NXDOMAIN); a CNAME stands for any type."""
        if name == apex:
            at_apex = {RdataType.SOA: self._soa(apex)}
            if apex == self.origin:
                at_apex[RdataType.NS] = self._ns()
            if qtype == RdataType.ANY:
                return list(at_apex.values())
            return [at_apex[qtype]] if qtype in at_apex else []
        if name == self._version_name:
            rdata = dns.rdata.from_text(IN, RdataType.TXT, f'"{DNS_SCHEMA_VERSION}"')
            return [self._rrset(name, RdataType.TXT, [rdata])] if qtype in (RdataType.TXT, RdataType.ANY) else []
        if name == self._ns_name:
            rdata = dns.rdata.from_text(IN, RdataType.A, self.cluster.cluster_dns)
            return [self._rrset(name, RdataType.A, [rdata])] if qtype in (RdataType.A, RdataType.ANY) else []
        if name.is_subdomain(self._pod_suffix) and name != self._pod_suffix:
            return self._pod(name, qtype)
        by_type = self._records.get(name)
        if by_type is None:
            if name in self._below or name in self._fixed_ancestors:
                return []
            return None
        if qtype == RdataType.ANY:
            return [self._rrset(name, rdtype, list(counts)) for rdtype, counts in sorted(by_type.items())]
        if qtype in by_type:
            return [self._rrset(name, qtype, list(by_type[qtype]))]
        if RdataType.CNAME in by_type:
            return [self._rrset(name, RdataType.CNAME, list(by_type[RdataType.CNAME]))]
        return []

    def _pod(self, name: dns.name.Name, qtype: RdataType) -> list[dns.rrset.RRset] | None:
        relative = name.relativize(self._pod_suffix).labels
        if len(relative) == 1:
            return []  # <ns>.pod.<zone>: every namespace exists in "pods insecure" mode
        if len(relative) != 2:
            return None
        address = undashed(relative[0].decode("ascii", "replace"))
        if address is None:
            return None
        rdtype = RdataType.A if address.version == 4 else RdataType.AAAA
        if qtype not in (rdtype, RdataType.ANY):
            return []
        return [self._rrset(name, rdtype, [dns.rdata.from_text(IN, rdtype, str(address))])]

    def _additional(self, answer: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
        extra: list[dns.rrset.RRset] = []
        targets: dict[dns.name.Name, None] = {}
        for rrset in answer:
            if rrset.rdtype == RdataType.SRV:
                for rdata in rrset:
                    targets[rdata.target] = None
        for target in targets:
            for rdtype, counts in sorted((self._records.get(target) or {}).items()):
                if rdtype in ADDRESS_TYPES:
                    extra.append(self._rrset(target, rdtype, list(counts)))
        return extra

    def _rrset(self, name: dns.name.Name, rdtype: RdataType, rdatas: list[dns.rdata.Rdata]) -> dns.rrset.RRset:
        return dns.rrset.from_rdata_list(name, self.ttl, sorted(rdatas, key=lambda r: r.to_digestable()))

    def _soa(self, apex: dns.name.Name) -> dns.rrset.RRset:
        text = (
            f"{self._ns_name.to_text()} {dns.name.Name(['hostmaster']).concatenate(self.origin).to_text()} "
            f"{self.serial} 7200 1800 86400 {self.ttl}"
        )
        return dns.rrset.from_rdata_list(apex, min(self.ttl, 300), [dns.rdata.from_text(IN, RdataType.SOA, text)])

    def _ns(self) -> dns.rrset.RRset:
        return self._rrset(self.origin, RdataType.NS, [dns.rdata.from_text(IN, RdataType.NS, self._ns_name.to_text())])

    def _ancestors(self, name: dns.name.Name) -> list[dns.name.Name]:
        """The proper ancestors of `name` down to (not including) its zone apex or the reverse root."""
        stop = self.origin if name.is_subdomain(self.origin) else None
        if stop is None:
            stop = next((apex for _, apex in self._reverse_zones if name.is_subdomain(apex)), None)
        if stop is None:
            stop = next((root for root in REVERSE_ROOTS if name.is_subdomain(root)), dns.name.root)
        found: list[dns.name.Name] = []
        parent = name.parent() if name != dns.name.root else name
        while parent != stop and parent.is_subdomain(stop):
            found.append(parent)
            parent = parent.parent()
        return found


def _reverse_zone(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> dns.name.Name:
    """The reverse zone holding `network`, floored to whole labels (octets for IPv4, nibbles for IPv6)."""
    full = dns.reversename.from_address(str(network.network_address))
    step = 8 if network.version == 4 else 4
    keep = network.prefixlen // step
    root_labels = 2  # in-addr.arpa. / ip6.arpa. plus the empty root label
    total = len(full.labels) - root_labels - 1
    return dns.name.Name(full.labels[total - keep :])


def _reverse_address(qname: dns.name.Name) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(dns.reversename.to_address(qname))
    except (dns.exception.DNSException, ValueError, UnicodeError):
        return None
