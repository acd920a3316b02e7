"""Choosing upstream resolvers from the node's resolv.conf without forwarding loops."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubelite.machinery.network import ClusterNetwork
from kubelite.proxy.dns.upstream import Forwarder, Upstream, parse_nameservers, parse_upstream, select_upstreams
from kubelite.testing.fake_clock import FakeClock

RESOLV = """\
# generated
search example.internal
nameserver 192.168.1.1   # the router
nameserver fe80::1%eth0
nameserver not-an-address
options ndots:1
nameserver 8.8.8.8
"""


def test_parse_nameservers_keeps_order_and_drops_what_is_not_an_address() -> None:
    assert parse_nameservers(RESOLV) == ["192.168.1.1", "8.8.8.8"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.1.1.1", Upstream("1.1.1.1", 53)),
        ("127.0.0.1:5353", Upstream("127.0.0.1", 5353)),
        ("fd00::1", Upstream("fd00::1", 53)),
        ("[fd00::1]:5353", Upstream("fd00::1", 5353)),
    ],
)
def test_parse_upstream(text: str, expected: Upstream) -> None:
    assert parse_upstream(text) == expected


@pytest.mark.parametrize("text", ["example.org", "1.1.1.1:x", ""])
def test_parse_upstream_rejects_names_and_bad_ports(text: str) -> None:
    with pytest.raises(ValueError):
        parse_upstream(text)


@pytest.mark.parametrize(
    ("nameserver", "listen_ip", "loopback_ok", "kept"),
    [
        ("192.168.1.1", "10.42.0.1", True, True),
        ("10.43.0.10", "10.42.0.1", True, False),  # the cluster DNS Service
        ("10.43.7.7", "10.42.0.1", True, False),  # anything in the service CIDR
        ("10.42.3.1", "10.42.0.1", True, False),  # another node's DNS (cluster CIDR)
        ("10.42.0.1", "10.42.0.1", True, False),  # ourselves
        ("127.0.0.53", "10.42.0.1", True, True),  # the node's own stub resolver
        ("127.0.0.53", "10.42.0.1", False, False),  # ... of another network namespace
        ("127.0.0.1", "0.0.0.0", True, False),  # we listen on every address, port 53: it is us
        ("127.0.0.1", "127.0.0.1", True, False),
        ("0.0.0.0", "10.42.0.1", False, False),
    ],
)
def test_select_upstreams_skips_every_way_back_to_cluster_dns(
    nameserver: str, listen_ip: str, loopback_ok: bool, kept: bool
) -> None:
    chosen, skipped = select_upstreams(
        [nameserver], cluster=ClusterNetwork(), listen_ip=listen_ip, port=53, loopback_ok=loopback_ok
    )
    assert (chosen == [Upstream(nameserver)]) is kept
    assert len(skipped) == (0 if kept else 1)


def test_loopback_upstream_is_fine_when_we_listen_on_another_port() -> None:
    chosen, _ = select_upstreams(
        ["127.0.0.1"], cluster=ClusterNetwork(), listen_ip="127.0.0.1", port=5353, loopback_ok=True
    )
    assert chosen == [Upstream("127.0.0.1")]


def test_only_the_first_three_nameservers_count() -> None:
    chosen, _ = select_upstreams(
        ["1.0.0.1", "1.0.0.2", "1.0.0.3", "1.0.0.4"],
        cluster=ClusterNetwork(),
        listen_ip="10.42.0.1",
        port=53,
        loopback_ok=True,
    )
    assert [u.host for u in chosen] == ["1.0.0.1", "1.0.0.2", "1.0.0.3"]


def test_forwarder_rereads_resolv_conf_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 192.0.2.1\n")
    clock = FakeClock()
    forwarder = Forwarder(cluster=ClusterNetwork(), listen_ip="10.42.0.1", port=53, resolv_conf=str(path), clock=clock)
    assert forwarder.upstreams == [Upstream("192.0.2.1")]
    path.write_text("nameserver 192.0.2.2\nnameserver 10.43.0.10\n")
    os.utime(path, (1, 1))  # a different modification time, whatever the file system's resolution
    assert forwarder.upstreams == [Upstream("192.0.2.1")]  # not looked at again yet
    clock.advance(10)
    assert forwarder.upstreams == [Upstream("192.0.2.2")]


def test_forwarder_without_a_resolv_conf_has_no_upstreams(tmp_path: Path) -> None:
    forwarder = Forwarder(
        cluster=ClusterNetwork(), listen_ip="10.42.0.1", port=53, resolv_conf=str(tmp_path / "missing")
    )
    assert forwarder.upstreams == []


def test_explicit_upstreams_replace_resolv_conf_but_never_point_at_ourselves() -> None:
    forwarder = Forwarder(
        cluster=ClusterNetwork(),
        listen_ip="127.0.0.1",
        port=5300,
        resolv_conf="/nonexistent",
        explicit=[Upstream("127.0.0.1", 5300), Upstream("127.0.0.1", 5301)],
    )
    assert forwarder.upstreams == [Upstream("127.0.0.1", 5301)]
