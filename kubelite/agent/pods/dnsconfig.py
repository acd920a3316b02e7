"""A pod's /etc/hosts and /etc/resolv.conf, as the kubelet writes them.  Pure functions, no I/O.

hosts (`pod_hosts_file`): the kubelet's managed file — a header, the IPv4/IPv6 localhost lines, one
line per pod IP naming the pod's hostname (``<ip>\\t<hostname>.<subdomain>.<ns>.svc.<domain>\\t<hostname>``
when ``spec.subdomain`` is set), then ``spec.hostAliases`` under a comment.  hostNetwork pods keep the
node's own file (the caller mounts nothing).

resolv.conf (`pod_resolv_conf`), by ``spec.dnsPolicy`` (default ``ClusterFirst``):

* ``ClusterFirst``: the cluster DNS as the only nameserver; search ``<ns>.svc.<domain> svc.<domain>
  <domain>`` then the node's own search domains (duplicates dropped); ``options ndots:5``.  A hostNetwork
  pod falls back to ``Default``, as upstream; so does any pod when no cluster DNS is known (with a
  ``MissingClusterDNS`` warning).
* ``ClusterFirstWithHostNet``: ``ClusterFirst`` for every pod, hostNetwork ones included.
* ``Default``: the node's resolv.conf (nameservers, search, options).
* ``None``: nothing but ``spec.dnsConfig``.

``spec.dnsConfig`` is merged over the policy's result: nameservers and search domains are appended
(duplicates dropped), options override those of the same name.  The result is cut to the resolver's
limits (3 nameservers; 32 search domains and 2048 characters of search line), each cut reported as a
``DNSConfigForming`` warning with the upstream wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubelite.machinery.network import dns_search_path

__all__ = [
    "DNS_CONFIG_FORMING",
    "MAX_DNS_NAMESERVERS",
    "MAX_DNS_SEARCH_CHARS",
    "MAX_DNS_SEARCH_PATHS",
    "MISSING_CLUSTER_DNS",
    "DnsWarning",
    "ResolvConf",
    "format_resolv_conf",
    "parse_resolv_conf",
    "pod_hostname",
    "pod_hosts_file",
    "pod_resolv_conf",
]

MAX_DNS_NAMESERVERS = 3  # glibc's MAXNS
MAX_DNS_SEARCH_PATHS = 32  # the kubelet's limit since ExpandedDNSConfig
MAX_DNS_SEARCH_CHARS = 2048
HOSTNAME_MAX = 63
DEFAULT_NDOTS = "ndots:5"

DNS_CONFIG_FORMING = "DNSConfigForming"
MISSING_CLUSTER_DNS = "MissingClusterDNS"

HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
HOSTS_BOILERPLATE = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)
HOST_ALIASES_COMMENT = "# Entries added by HostAliases.\n"


@dataclass(frozen=True, slots=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DnsWarning:
    """A Warning event the kubelet records on the pod while forming its DNS config."""

    reason: str
    message: str


@dataclass(slots=True)
class _Forming:
    conf: ResolvConf
    warnings: list[DnsWarning] = field(default_factory=list)


# -- hosts -----------------------------------------------------------------------------------------


def pod_hostname(pod: dict[str, Any]) -> str:
    """``spec.hostname`` or the pod's name, cut to 63 characters (and no trailing ``-``/``.``), as the
    kubelet does."""
    spec = pod.get("spec") or {}
    name = str(spec.get("hostname") or (pod.get("metadata") or {}).get("name") or "")
    return name[:HOSTNAME_MAX].rstrip("-.") if len(name) > HOSTNAME_MAX else name


def pod_hosts_file(pod: dict[str, Any], pod_ips: Sequence[str], *, cluster_domain: str) -> str:
    """The managed /etc/hosts of a pod with its own network (module docstring)."""
    spec = pod.get("spec") or {}
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    hostname = pod_hostname(pod)
    subdomain = str(spec.get("subdomain") or "")
    parts = [HOSTS_HEADER, HOSTS_BOILERPLATE]
    for ip in pod_ips:
        if subdomain:
            parts.append(f"{ip}\t{hostname}.{subdomain}.{namespace}.svc.{cluster_domain}\t{hostname}\n")
        else:
            parts.append(f"{ip}\t{hostname}\n")
    aliases = [a for a in spec.get("hostAliases") or () if isinstance(a, dict)]
    if aliases:
        parts.append("\n" + HOST_ALIASES_COMMENT)
        for alias in aliases:
            names = "\t".join(str(h) for h in alias.get("hostnames") or ())
            parts.append(f"{alias.get('ip', '')}\t{names}\n")
    return "".join(parts)


# -- resolv.conf -----------------------------------------------------------------------------------


def parse_resolv_conf(text: str) -> ResolvConf:
    """The parts of a resolv.conf the kubelet reads: ``nameserver`` lines, the last ``search`` (or
    ``domain``) line without a lone ``.``, and every ``options`` line."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0]
        fields = line.split()
        if len(fields) < 2:
            continue
        keyword, values = fields[0], fields[1:]
        if keyword == "nameserver":
            nameservers.append(values[0])
        elif keyword in ("search", "domain"):
            searches = [v.rstrip(".") for v in values if v != "."]
        elif keyword == "options":
            options = _merge_options(options, values)
    return ResolvConf(tuple(nameservers), tuple(searches), tuple(options))


def format_resolv_conf(conf: ResolvConf) -> str:
    lines = [f"nameserver {server}" for server in conf.nameservers]
    if conf.searches:
        lines.append("search " + " ".join(conf.searches))
    if conf.options:
        lines.append("options " + " ".join(conf.options))
    return "".join(f"{line}\n" for line in lines)


def pod_resolv_conf(
    pod: dict[str, Any], *, cluster_dns: str | None, cluster_domain: str, host: ResolvConf
) -> tuple[ResolvConf, list[DnsWarning]]:
    """The pod's resolver config and the warnings to record on it (module docstring)."""
    spec = pod.get("spec") or {}
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    policy = str(spec.get("dnsPolicy") or "ClusterFirst")
    host_network = bool(spec.get("hostNetwork"))
    forming = _Forming(ResolvConf())
    cluster = policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_network)
    if cluster and not cluster_dns:
        forming.warnings.append(
            DnsWarning(
                MISSING_CLUSTER_DNS,
                f'kubelet does not have ClusterDNS IP configured and cannot create Pod using "{policy}" policy. '
                'Falling back to "Default" policy.',
            )
        )
        cluster = False
    if cluster:
        searches = _unique([*dns_search_path(namespace, cluster_domain), *host.searches])
        forming.conf = ResolvConf((str(cluster_dns),), tuple(searches), (DEFAULT_NDOTS,))
    elif policy != "None":
        forming.conf = host
    dns_config = spec.get("dnsConfig") or {}
    if dns_config:
        conf = forming.conf
        extra_options = [_option_text(o) for o in dns_config.get("options") or () if isinstance(o, dict)]
        forming.conf = ResolvConf(
            tuple(_unique([*conf.nameservers, *map(str, dns_config.get("nameservers") or ())])),
            tuple(_unique([*conf.searches, *map(str, dns_config.get("searches") or ())])),
            tuple(_merge_options(list(conf.options), [o for o in extra_options if o])),
        )
    _apply_limits(forming)
    return forming.conf, forming.warnings


def _apply_limits(forming: _Forming) -> None:
    conf = forming.conf
    nameservers, searches = list(conf.nameservers), list(conf.searches)
    if len(nameservers) > MAX_DNS_NAMESERVERS:
        nameservers = nameservers[:MAX_DNS_NAMESERVERS]
        forming.warnings.append(
            DnsWarning(
                DNS_CONFIG_FORMING,
                "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver "
                f"line is: {' '.join(nameservers)}",
            )
        )
    trimmed = False
    if len(searches) > MAX_DNS_SEARCH_PATHS:
        searches, trimmed = searches[:MAX_DNS_SEARCH_PATHS], True
    while searches and len(" ".join(searches)) > MAX_DNS_SEARCH_CHARS:
        searches, trimmed = searches[:-1], True
    if trimmed:
        forming.warnings.append(
            DnsWarning(
                DNS_CONFIG_FORMING,
                "Search Line limits were exceeded, some search paths have been omitted, the applied search line "
                f"is: {' '.join(searches)}",
            )
        )
    forming.conf = ResolvConf(tuple(nameservers), tuple(searches), conf.options)


def _unique(values: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return [v for v in values if v and not (v in seen or seen.add(v))]  # type: ignore[func-returns-value]


def _option_text(option: dict[str, Any]) -> str:
    name = str(option.get("name") or "")
    value = option.get("value")
    return f"{name}:{value}" if name and value not in (None, "") else name


def _merge_options(base: list[str], extra: Sequence[str]) -> list[str]:
    """Options by name: a later one replaces an earlier one of the same name in place, a new one is appended."""
    merged = list(base)
    for option in extra:
        name = option.split(":", 1)[0]
        for index, existing in enumerate(merged):
            if existing.split(":", 1)[0] == name:
                merged[index] = option
                break
        else:
            merged.append(option)
    return merged
