"""A pod's /etc/hosts and /etc/resolv.conf as the kubelet writes them (`kubelite.agent.pods.dnsconfig`)."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.agent.pods.dnsconfig import (
    DNS_CONFIG_FORMING,
    MISSING_CLUSTER_DNS,
    ResolvConf,
    format_resolv_conf,
    parse_resolv_conf,
    pod_hostname,
    pod_hosts_file,
    pod_resolv_conf,
)

BOILERPLATE = (
    "# Kubernetes-managed hosts file.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)
HOST = ResolvConf(("192.168.1.1", "192.168.1.2"), ("corp.example", "example"), ("timeout:2",))


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web-0", "namespace": "shop"}, "spec": {"containers": [], **spec}}


@pytest.mark.parametrize(
    ("spec", "ips", "expected_tail"),
    [
        ({}, ["10.42.0.5"], "10.42.0.5\tweb-0\n"),
        ({"hostname": "db"}, ["10.42.0.5"], "10.42.0.5\tdb\n"),
        (
            {"hostname": "db", "subdomain": "dbs"},
            ["10.42.0.5"],
            "10.42.0.5\tdb.dbs.shop.svc.cluster.local\tdb\n",
        ),
        ({}, ["10.42.0.5", "fd00::5"], "10.42.0.5\tweb-0\nfd00::5\tweb-0\n"),
        (
            {
                "hostAliases": [
                    {"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]},
                    {"ip": "10.1.2.3", "hostnames": ["x"]},
                ]
            },
            ["10.42.0.5"],
            "10.42.0.5\tweb-0\n\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tx\n",
        ),
    ],
)
def test_hosts_file_has_boilerplate_pod_lines_and_aliases(
    spec: dict[str, Any], ips: list[str], expected_tail: str
) -> None:
    assert pod_hosts_file(pod(**spec), ips, cluster_domain="cluster.local") == BOILERPLATE + expected_tail


def test_hostname_is_cut_to_63_characters_without_a_trailing_dash() -> None:
    name = "a" * 62 + "-b"
    assert pod_hostname({"metadata": {"name": name}}) == "a" * 62


def test_parse_resolv_conf_reads_nameservers_last_search_and_options() -> None:
    text = (
        "# generated\nnameserver 10.0.0.1\nnameserver 10.0.0.2 # second\ndomain old.example\n"
        "search a.example b.example. .\noptions ndots:2 timeout:1\noptions ndots:3\n"
    )
    assert parse_resolv_conf(text) == ResolvConf(
        ("10.0.0.1", "10.0.0.2"), ("a.example", "b.example"), ("ndots:3", "timeout:1")
    )


def test_format_resolv_conf_writes_nameserver_search_and_options_lines() -> None:
    text = format_resolv_conf(ResolvConf(("10.43.0.10",), ("a", "b"), ("ndots:5",)))
    assert text == "nameserver 10.43.0.10\nsearch a b\noptions ndots:5\n"
    assert format_resolv_conf(ResolvConf()) == ""


CLUSTER_SEARCH = ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, ResolvConf(("10.43.0.10",), (*CLUSTER_SEARCH, "corp.example", "example"), ("ndots:5",))),
        (
            {"dnsPolicy": "ClusterFirst"},
            ResolvConf(("10.43.0.10",), (*CLUSTER_SEARCH, "corp.example", "example"), ("ndots:5",)),
        ),
        ({"dnsPolicy": "ClusterFirst", "hostNetwork": True}, HOST),
        (
            {"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True},
            ResolvConf(("10.43.0.10",), (*CLUSTER_SEARCH, "corp.example", "example"), ("ndots:5",)),
        ),
        ({"dnsPolicy": "Default"}, HOST),
        (
            {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["x.example"]}},
            ResolvConf(("1.1.1.1",), ("x.example",), ()),
        ),
        (
            {
                "dnsPolicy": "ClusterFirst",
                "dnsConfig": {
                    "nameservers": ["10.43.0.10", "1.1.1.1"],
                    "searches": ["cluster.local", "extra.example"],
                    "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
                },
            },
            ResolvConf(
                ("10.43.0.10", "1.1.1.1"),
                (*CLUSTER_SEARCH, "corp.example", "example", "extra.example"),
                ("ndots:2", "edns0"),
            ),
        ),
    ],
)
def test_resolv_conf_follows_the_dns_policy_and_merges_dns_config(spec: dict[str, Any], expected: ResolvConf) -> None:
    conf, warnings = pod_resolv_conf(pod(**spec), cluster_dns="10.43.0.10", cluster_domain="cluster.local", host=HOST)
    assert conf == expected
    assert warnings == []


def test_cluster_first_without_a_cluster_dns_falls_back_to_default_with_a_warning() -> None:
    conf, warnings = pod_resolv_conf(pod(), cluster_dns=None, cluster_domain="cluster.local", host=HOST)
    assert conf == HOST
    assert [w.reason for w in warnings] == [MISSING_CLUSTER_DNS]


def test_nameservers_beyond_three_are_omitted_with_a_warning() -> None:
    spec = {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]}}
    conf, warnings = pod_resolv_conf(pod(**spec), cluster_dns="10.43.0.10", cluster_domain="cluster.local", host=HOST)
    assert conf.nameservers == ("1.1.1.1", "2.2.2.2", "3.3.3.3")
    assert [(w.reason, w.message) for w in warnings] == [
        (
            DNS_CONFIG_FORMING,
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: "
            "1.1.1.1 2.2.2.2 3.3.3.3",
        )
    ]


def test_search_paths_beyond_32_are_omitted_with_a_warning() -> None:
    searches = [f"s{i}.example" for i in range(40)]
    spec = {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": searches}}
    conf, warnings = pod_resolv_conf(pod(**spec), cluster_dns="10.43.0.10", cluster_domain="cluster.local", host=HOST)
    assert conf.searches == tuple(searches[:32])
    assert [w.reason for w in warnings] == [DNS_CONFIG_FORMING]
    assert warnings[0].message.startswith("Search Line limits were exceeded")
