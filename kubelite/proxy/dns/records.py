"""The DNS records one Service contributes to the cluster zone (Kubernetes DNS specification 1.1.0).

Pure functions over read-only API objects; nothing here keeps or changes them.  `service_records(service,
slices, origin=...)` returns every record the Service owns, for the whole zone to index:

* ClusterIP (and NodePort/LoadBalancer) Services: ``<svc>.<ns>.svc.<zone>`` A/AAAA → each ClusterIP; for each
  named port ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` SRV → ``<svc>.<ns>.svc.<zone>``; PTR for each ClusterIP.
* Headless Services (clusterIP ``None``): for every *ready* endpoint address (every address when the Service
  has ``publishNotReadyAddresses``) A/AAAA at the Service name and at ``<hostname>.<svc>.<ns>.svc.<zone>``,
  where the hostname is the endpoint's ``hostname`` or, lacking one, the address with dashes (``10-42-0-5``)
  as CoreDNS names it; SRV per named slice port → that hostname name; PTR → that hostname name.
* ExternalName Services: ``<svc>.<ns>.svc.<zone>`` CNAME → the external name.

An endpoint is ready when its ``conditions.ready`` is true or absent (the EndpointSlice API reads a missing
condition as ready); a serving-but-terminating endpoint is not.  SRV records have priority 0 and share a weight
of ``100 // n`` among the ``n`` records of one name, as CoreDNS.  Every record has the same TTL (30 s, CoreDNS'
default); the zone adds TTLs when it renders answers, so records carry none.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename

__all__ = [
    "DEFAULT_TTL",
    "DNS_SCHEMA_VERSION",
    "SERVICE_NAME_LABEL",
    "Record",
    "dashed",
    "endpoint_is_ready",
    "service_records",
    "undashed",
]

DEFAULT_TTL = 30
DNS_SCHEMA_VERSION = "1.1.0"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

IN = dns.rdataclass.IN
A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
CNAME = dns.rdatatype.CNAME
PTR = dns.rdatatype.PTR
SRV = dns.rdatatype.SRV


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record without TTL; equal records (same owner, type and data) are one record."""

    name: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    rdata: dns.rdata.Rdata


def dashed(address: str) -> str:
    """``10.42.0.5`` → ``10-42-0-5``; ``fd00::1`` → ``fd00--1`` (the label CoreDNS gives an address)."""
    return address.replace(".", "-").replace(":", "-")


def undashed(label: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a pod-name label spells (``10-42-0-5`` or ``fd00--1``), or None if it spells none."""
    if label.count("-") == 3:
        try:
            return ipaddress.IPv4Address(label.replace("-", "."))
        except ValueError:
            return None
    try:
        return ipaddress.IPv6Address(label.replace("-", ":"))
    except ValueError:
        return None


def endpoint_is_ready(endpoint: dict[str, Any]) -> bool:
    ready = (endpoint.get("conditions") or {}).get("ready")
    return ready is None or bool(ready)


def service_records(
    service: dict[str, Any], slices: Iterable[dict[str, Any]], *, origin: dns.name.Name
) -> list[Record]:
    """Every record of `service` (module docstring), without duplicates, in a stable order.

    `slices` are the EndpointSlices labelled with this Service's name in its namespace (used only when the
    Service is headless).  A Service whose names do not fit DNS (a label over 63 octets) contributes nothing.
    """
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    try:
        svc_name = _name([str(meta.get("name") or ""), str(meta.get("namespace") or ""), "svc"], origin)
        if spec.get("type") == "ExternalName":
            return _external_name(svc_name, str(spec.get("externalName") or ""))
        cluster_ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip]
        if not cluster_ips:
            return []  # not allocated yet
        if cluster_ips[0] == "None":
            return _dedupe(_headless(svc_name, slices, publish_not_ready=bool(spec.get("publishNotReadyAddresses"))))
        return _dedupe(_cluster_ip(svc_name, cluster_ips, spec.get("ports") or ()))
    except dns.exception.DNSException:
        return []


def _name(labels: list[str], origin: dns.name.Name) -> dns.name.Name:
    return dns.name.Name([label.lower() for label in labels]).concatenate(origin)


def _external_name(svc_name: dns.name.Name, external: str) -> list[Record]:
    external = external.strip().rstrip(".")
    if not external:
        return []
    target = dns.name.from_text(external.lower() + ".")
    return [Record(svc_name, CNAME, dns.rdata.from_text(IN, CNAME, target.to_text()))]


def _address_record(owner: dns.name.Name, address: str) -> Record | None:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    rdtype = A if parsed.version == 4 else AAAA
    return Record(owner, rdtype, dns.rdata.from_text(IN, rdtype, str(parsed)))


def _ptr_record(address: str, target: dns.name.Name) -> Record:
    return Record(dns.reversename.from_address(address), PTR, dns.rdata.from_text(IN, PTR, target.to_text()))


def _srv_owner(port_name: str, protocol: str, svc_name: dns.name.Name) -> dns.name.Name:
    return dns.name.Name([f"_{port_name.lower()}", f"_{protocol.lower()}"]).concatenate(svc_name)


def _cluster_ip(svc_name: dns.name.Name, cluster_ips: list[str], ports: Iterable[dict[str, Any]]) -> list[Record]:
    records: list[Record] = []
    for ip in cluster_ips:
        record = _address_record(svc_name, ip)
        if record is not None:
            records.append(record)
            records.append(_ptr_record(ip, svc_name))
    srv_targets: dict[dns.name.Name, list[tuple[int, dns.name.Name]]] = {}
    for port in ports:
        if port.get("name") and port.get("port"):
            owner = _srv_owner(str(port["name"]), str(port.get("protocol") or "TCP"), svc_name)
            srv_targets.setdefault(owner, []).append((int(port["port"]), svc_name))
    return records + _srv_records(srv_targets)


def _headless(svc_name: dns.name.Name, slices: Iterable[dict[str, Any]], *, publish_not_ready: bool) -> list[Record]:
    records: list[Record] = []
    srv_targets: dict[dns.name.Name, list[tuple[int, dns.name.Name]]] = {}
    for endpoint_slice in sorted(slices, key=lambda s: str((s.get("metadata") or {}).get("name") or "")):
        if endpoint_slice.get("addressType") not in ("IPv4", "IPv6"):
            continue  # FQDN slices have no addresses to publish
        named_ports = [p for p in endpoint_slice.get("ports") or () if p.get("name") and p.get("port") is not None]
        for endpoint in endpoint_slice.get("endpoints") or ():
            if not (publish_not_ready or endpoint_is_ready(endpoint)):
                continue
            for address in endpoint.get("addresses") or ():
                by_service = _address_record(svc_name, address)
                if by_service is None:
                    continue
                host_name = _name([str(endpoint.get("hostname") or dashed(str(address)))], svc_name)
                records.append(by_service)
                records.append(Record(host_name, by_service.rdtype, by_service.rdata))
                records.append(_ptr_record(address, host_name))
                for port in named_ports:
                    owner = _srv_owner(str(port["name"]), str(port.get("protocol") or "TCP"), svc_name)
                    srv_targets.setdefault(owner, []).append((int(port["port"]), host_name))
    return records + _srv_records(srv_targets)


def _srv_records(targets: dict[dns.name.Name, list[tuple[int, dns.name.Name]]]) -> list[Record]:
    records: list[Record] = []
    for owner, entries in targets.items():
        unique = list(dict.fromkeys(entries))
        weight = 100 // len(unique)
        for port, target in unique:
            rdata = dns.rdata.from_text(IN, SRV, f"0 {weight} {port} {target.to_text()}")
            records.append(Record(owner, SRV, rdata))
    return records


def _dedupe(records: list[Record]) -> list[Record]:
    return list(dict.fromkeys(records))
