"""The cluster zone: which records Services and EndpointSlices give, and how questions are answered."""

from __future__ import annotations

from typing import Any

import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from kubelite.machinery.network import ClusterNetwork
from kubelite.proxy.dns.records import dashed, service_records, undashed
from kubelite.proxy.dns.zone import Answer, Zone

NOERROR, NXDOMAIN = dns.rcode.NOERROR, dns.rcode.NXDOMAIN


def service(name: str, ns: str = "default", **spec: Any) -> dict[str, Any]:
    spec.setdefault("clusterIP", "10.43.0.20")
    spec.setdefault("ports", [{"name": "http", "port": 80, "protocol": "TCP"}])
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def endpoint_slice(svc: str, endpoints: list[dict[str, Any]], *, ns: str = "default", name: str = "") -> dict[str, Any]:
    return {
        "metadata": {"name": name or f"{svc}-abc", "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "", "port": 9000, "protocol": "TCP"}],
    }


def ep(address: str, *, ready: bool | None = True, hostname: str = "") -> dict[str, Any]:
    endpoint: dict[str, Any] = {"addresses": [address]}
    if ready is not None:
        endpoint["conditions"] = {"ready": ready}
    if hostname:
        endpoint["hostname"] = hostname
    return endpoint


HEADLESS_SLICE = endpoint_slice(
    "db",
    [ep("10.42.0.5", hostname="db-0"), ep("10.42.1.6"), ep("10.42.2.7", ready=False), ep("10.42.3.8", ready=None)],
)


@pytest.fixture
def zone() -> Zone:
    z = Zone(ClusterNetwork())
    origin = z.origin
    z.set_service("default/web", service_records(service("web"), [], origin=origin))
    z.set_service("default/db", service_records(service("db", clusterIP="None"), [HEADLESS_SLICE], origin=origin))
    z.set_service(
        "default/ext",
        service_records(
            service("ext", type="ExternalName", externalName="example.org", clusterIP=""), [], origin=origin
        ),
    )
    z.set_service(
        "default/alias",
        service_records(
            service("alias", type="ExternalName", externalName="web.default.svc.cluster.local."), [], origin=origin
        ),
    )
    z.set_service("default/empty", service_records(service("empty", clusterIP="None"), [], origin=origin))
    return z


def ask(zone: Zone, name: str, rdtype: str = "A") -> Answer:
    answer = zone.lookup(dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
    assert answer is not None, f"{name} should be in the zone"
    return answer


def texts(answer: Answer, section: str = "answer") -> list[str]:
    return sorted(
        f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} {rdata}"
        for rrset in getattr(answer, section)
        for rdata in rrset
    )


@pytest.mark.parametrize(
    ("name", "rdtype", "rcode", "expected"),
    [
        ("web.default.svc.cluster.local.", "A", NOERROR, ["web.default.svc.cluster.local. A 10.43.0.20"]),
        ("WEB.Default.SVC.cluster.LOCAL.", "A", NOERROR, ["WEB.Default.SVC.cluster.LOCAL. A 10.43.0.20"]),
        ("web.default.svc.cluster.local", "A", NOERROR, ["web.default.svc.cluster.local. A 10.43.0.20"]),
        ("web.default.svc.cluster.local.", "AAAA", NOERROR, []),
        ("web.default.svc.cluster.local.", "TXT", NOERROR, []),
        ("nope.default.svc.cluster.local.", "A", NXDOMAIN, []),
        ("web.other.svc.cluster.local.", "A", NXDOMAIN, []),
        ("default.svc.cluster.local.", "A", NOERROR, []),
        ("svc.cluster.local.", "A", NOERROR, []),
        ("x.web.default.svc.cluster.local.", "A", NXDOMAIN, []),
        (
            "_http._tcp.web.default.svc.cluster.local.",
            "SRV",
            NOERROR,
            ["_http._tcp.web.default.svc.cluster.local. SRV 0 100 80 web.default.svc.cluster.local."],
        ),
        ("_http._udp.web.default.svc.cluster.local.", "SRV", NXDOMAIN, []),
        ("_tcp.web.default.svc.cluster.local.", "SRV", NOERROR, []),
        (
            "db.default.svc.cluster.local.",
            "A",
            NOERROR,
            [
                "db.default.svc.cluster.local. A 10.42.0.5",
                "db.default.svc.cluster.local. A 10.42.1.6",
                "db.default.svc.cluster.local. A 10.42.3.8",
            ],
        ),
        ("db-0.db.default.svc.cluster.local.", "A", NOERROR, ["db-0.db.default.svc.cluster.local. A 10.42.0.5"]),
        (
            "10-42-1-6.db.default.svc.cluster.local.",
            "A",
            NOERROR,
            ["10-42-1-6.db.default.svc.cluster.local. A 10.42.1.6"],
        ),
        ("10-42-2-7.db.default.svc.cluster.local.", "A", NXDOMAIN, []),
        ("empty.default.svc.cluster.local.", "A", NXDOMAIN, []),
        ("ext.default.svc.cluster.local.", "A", NOERROR, ["ext.default.svc.cluster.local. CNAME example.org."]),
        ("ext.default.svc.cluster.local.", "CNAME", NOERROR, ["ext.default.svc.cluster.local. CNAME example.org."]),
        (
            "alias.default.svc.cluster.local.",
            "A",
            NOERROR,
            [
                "alias.default.svc.cluster.local. CNAME web.default.svc.cluster.local.",
                "web.default.svc.cluster.local. A 10.43.0.20",
            ],
        ),
        (
            "10-42-0-9.kube-system.pod.cluster.local.",
            "A",
            NOERROR,
            ["10-42-0-9.kube-system.pod.cluster.local. A 10.42.0.9"],
        ),
        ("10-42-0-9.kube-system.pod.cluster.local.", "AAAA", NOERROR, []),
        ("fd00--1.default.pod.cluster.local.", "AAAA", NOERROR, ["fd00--1.default.pod.cluster.local. AAAA fd00::1"]),
        ("10-42-0-999.default.pod.cluster.local.", "A", NXDOMAIN, []),
        ("default.pod.cluster.local.", "A", NOERROR, []),
        ("dns-version.cluster.local.", "TXT", NOERROR, ['dns-version.cluster.local. TXT "1.1.0"']),
        ("dns-version.cluster.local.", "A", NOERROR, []),
        ("ns.dns.cluster.local.", "A", NOERROR, ["ns.dns.cluster.local. A 10.43.0.10"]),
        ("cluster.local.", "NS", NOERROR, ["cluster.local. NS ns.dns.cluster.local."]),
        ("cluster.local.", "A", NOERROR, []),
        ("20.0.43.10.in-addr.arpa.", "PTR", NOERROR, ["20.0.43.10.in-addr.arpa. PTR web.default.svc.cluster.local."]),
        ("5.0.42.10.in-addr.arpa.", "PTR", NOERROR, ["5.0.42.10.in-addr.arpa. PTR db-0.db.default.svc.cluster.local."]),
        (
            "6.1.42.10.in-addr.arpa.",
            "PTR",
            NOERROR,
            ["6.1.42.10.in-addr.arpa. PTR 10-42-1-6.db.default.svc.cluster.local."],
        ),
        ("99.0.43.10.in-addr.arpa.", "PTR", NXDOMAIN, []),
        ("0.43.10.in-addr.arpa.", "PTR", NOERROR, []),
    ],
)
def test_zone_answers(zone: Zone, name: str, rdtype: str, rcode: dns.rcode.Rcode, expected: list[str]) -> None:
    answer = ask(zone, name, rdtype)
    assert answer.rcode == rcode
    assert texts(answer) == sorted(expected)


@pytest.mark.parametrize(
    ("name", "rdtype"),
    [
        ("web.default.svc.cluster.local.", "AAAA"),
        ("nope.default.svc.cluster.local.", "A"),
        ("99.0.43.10.in-addr.arpa.", "PTR"),
    ],
)
def test_negative_answers_carry_the_soa_as_coredns_writes_it(zone: Zone, name: str, rdtype: str) -> None:
    zone.serial = 1700000000
    answer = ask(zone, name, rdtype)
    assert not answer.answer
    [soa] = answer.authority
    assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == 30
    assert str(soa[0]) == "ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30"
    expected_apex = "43.10.in-addr.arpa." if name.endswith("arpa.") else "cluster.local."
    assert str(soa.name) == expected_apex


def test_srv_answers_have_the_targets_addresses_in_additional(zone: Zone) -> None:
    answer = ask(zone, "_http._tcp.db.default.svc.cluster.local.", "SRV")
    assert texts(answer) == [
        "_http._tcp.db.default.svc.cluster.local. SRV 0 33 8080 10-42-1-6.db.default.svc.cluster.local.",
        "_http._tcp.db.default.svc.cluster.local. SRV 0 33 8080 10-42-3-8.db.default.svc.cluster.local.",
        "_http._tcp.db.default.svc.cluster.local. SRV 0 33 8080 db-0.db.default.svc.cluster.local.",
    ]
    assert texts(answer, "additional") == [
        "10-42-1-6.db.default.svc.cluster.local. A 10.42.1.6",
        "10-42-3-8.db.default.svc.cluster.local. A 10.42.3.8",
        "db-0.db.default.svc.cluster.local. A 10.42.0.5",
    ]
    web = ask(zone, "_http._tcp.web.default.svc.cluster.local.", "SRV")
    assert texts(web, "additional") == ["web.default.svc.cluster.local. A 10.43.0.20"]


def test_every_answer_has_the_coredns_default_ttl(zone: Zone) -> None:
    for name in ("web.default.svc.cluster.local.", "db.default.svc.cluster.local.", "20.0.43.10.in-addr.arpa."):
        for rrset in ask(zone, name, "ANY").answer:
            assert rrset.ttl == 30


def test_an_out_of_zone_cname_target_is_left_for_the_server_to_chase(zone: Zone) -> None:
    assert ask(zone, "ext.default.svc.cluster.local.", "A").chase == dns.name.from_text("example.org.")
    assert ask(zone, "alias.default.svc.cluster.local.", "A").chase is None


@pytest.mark.parametrize(
    "name",
    ["example.org.", "kubernetes.io.", "1.1.1.1.in-addr.arpa.", "5.0.0.192.in-addr.arpa.", "local.", "."],
)
def test_names_outside_the_zone_are_not_ours(zone: Zone, name: str) -> None:
    assert zone.lookup(dns.name.from_text(name), dns.rdatatype.A) is None


def test_publish_not_ready_addresses_publishes_every_endpoint() -> None:
    z = Zone(ClusterNetwork())
    svc = service("db", clusterIP="None", publishNotReadyAddresses=True)
    z.set_service("default/db", service_records(svc, [HEADLESS_SLICE], origin=z.origin))
    assert len(ask(z, "db.default.svc.cluster.local.").answer[0]) == 4
    assert ask(z, "10-42-2-7.db.default.svc.cluster.local.").rcode == NOERROR


def test_removing_a_service_removes_its_names_and_empty_parents() -> None:
    z = Zone(ClusterNetwork())
    z.set_service("team/web", service_records(service("web", "team"), [], origin=z.origin))
    assert ask(z, "team.svc.cluster.local.").rcode == NOERROR
    z.remove_service("team/web")
    assert ask(z, "web.team.svc.cluster.local.").rcode == NXDOMAIN
    assert ask(z, "team.svc.cluster.local.").rcode == NXDOMAIN
    assert ask(z, "20.0.43.10.in-addr.arpa.", "PTR").rcode == NXDOMAIN
    assert z.services() == []


def test_two_services_sharing_a_record_keep_it_until_both_are_gone() -> None:
    z = Zone(ClusterNetwork())
    shared = endpoint_slice("a", [ep("10.42.0.5")])
    z.set_service("default/a", service_records(service("a", clusterIP="None"), [shared], origin=z.origin))
    other = endpoint_slice("b", [ep("10.42.0.5")])
    z.set_service("default/b", service_records(service("b", clusterIP="None"), [other], origin=z.origin))
    ptr = "5.0.42.10.in-addr.arpa."
    assert len(ask(z, ptr, "PTR").answer[0]) == 2
    z.remove_service("default/a")
    assert texts(ask(z, ptr, "PTR")) == [f"{ptr} PTR 10-42-0-5.b.default.svc.cluster.local."]


def test_duplicate_addresses_across_slices_give_one_record() -> None:
    z = Zone(ClusterNetwork())
    slices = [endpoint_slice("db", [ep("10.42.0.5")], name="s1"), endpoint_slice("db", [ep("10.42.0.5")], name="s2")]
    z.set_service("default/db", service_records(service("db", clusterIP="None"), slices, origin=z.origin))
    assert texts(ask(z, "db.default.svc.cluster.local.")) == ["db.default.svc.cluster.local. A 10.42.0.5"]


def test_another_cluster_domain_and_dual_stack_cluster_ips() -> None:
    z = Zone(ClusterNetwork(cluster_domain="example.internal"))
    svc = service("web", clusterIP="10.43.0.20", clusterIPs=["10.43.0.20", "fd00::20"])
    z.set_service("default/web", service_records(svc, [], origin=z.origin))
    assert texts(ask(z, "web.default.svc.example.internal.", "AAAA")) == [
        "web.default.svc.example.internal. AAAA fd00::20"
    ]
    assert z.lookup(dns.name.from_text("web.default.svc.cluster.local."), dns.rdatatype.A) is None


@pytest.mark.parametrize(
    "svc",
    [
        service("pending", clusterIP=""),
        service("ext", type="ExternalName", externalName=""),
        service("x" * 64),
    ],
)
def test_services_without_valid_names_or_addresses_have_no_records(svc: dict[str, Any]) -> None:
    assert service_records(svc, [], origin=dns.name.from_text("cluster.local.")) == []


@pytest.mark.parametrize(
    ("address", "label"), [("10.42.0.5", "10-42-0-5"), ("fd00::1", "fd00--1"), ("2001:db8::a:1", "2001-db8--a-1")]
)
def test_dashed_addresses_round_trip(address: str, label: str) -> None:
    assert dashed(address) == label
    assert str(undashed(label)) == address


@pytest.mark.parametrize("label", ["10-42-0", "a-b-c-d", "1-2-3-4-5", "web", "010-42-0-5"])
def test_labels_that_spell_no_address(label: str) -> None:
    assert undashed(label) is None
