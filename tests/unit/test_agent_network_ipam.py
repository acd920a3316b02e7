"""Host-local IPAM: files per address, O_EXCL, allocation order after the last one, state across restarts."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from kubelite.agent.network.interface import NetworkError
from kubelite.agent.network.ipam import HostLocalIpam, IpamExhausted, candidate_order, usable_addresses


@pytest.mark.parametrize(
    ("cidr", "first", "last", "count"),
    [
        ("10.42.1.0/24", "10.42.1.2", "10.42.1.254", 253),
        ("10.42.0.0/30", "10.42.0.2", "10.42.0.2", 1),
        ("10.42.0.0/29", "10.42.0.2", "10.42.0.6", 5),
    ],
)
def test_usable_addresses_exclude_network_gateway_and_broadcast(cidr: str, first: str, last: str, count: int) -> None:
    addresses = usable_addresses(cidr)
    assert (addresses[0], addresses[-1], len(addresses)) == (first, last, count)


def test_usable_addresses_refuse_a_cidr_without_room_for_a_pod() -> None:
    with pytest.raises(NetworkError):
        usable_addresses("10.42.0.0/31")


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (None, ["a", "b", "c"]),
        ("a", ["b", "c", "a"]),
        ("c", ["a", "b", "c"]),
        ("gone", ["a", "b", "c"]),
    ],
)
def test_candidate_order_starts_after_the_last_address_and_wraps(last: str | None, expected: list[str]) -> None:
    assert candidate_order(["a", "b", "c"], last) == expected


def make(tmp_path: Path, cidr: str = "10.42.1.0/24") -> HostLocalIpam:
    ipam = HostLocalIpam(tmp_path / "network")
    ipam.set_cidr(cidr)
    return ipam


def test_allocate_hands_out_addresses_in_order_and_records_the_uid(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    assert [ipam.allocate(uid) for uid in ("u1", "u2")] == ["10.42.1.2", "10.42.1.3"]
    assert (tmp_path / "network" / "10.42.1.3").read_text().strip() == "u2"
    assert ipam.allocations() == {"10.42.1.2": "u1", "10.42.1.3": "u2"}


def test_allocate_is_idempotent_per_uid(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    assert ipam.allocate("u1") == ipam.allocate("u1") == ipam.lookup("u1")
    assert len(ipam.allocations()) == 1


def test_release_frees_the_address_and_is_idempotent(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    address = ipam.allocate("u1")
    assert ipam.release("u1") == [address]
    assert ipam.release("u1") == []
    assert ipam.lookup("u1") is None


def test_a_released_address_is_not_handed_out_again_at_once(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    first = ipam.allocate("u1")
    ipam.release("u1")
    assert ipam.allocate("u2") != first


def test_allocation_wraps_around_to_freed_addresses(tmp_path: Path) -> None:
    ipam = make(tmp_path, "10.42.0.0/29")  # .2 … .6
    for index in range(5):
        ipam.allocate(f"u{index}")
    ipam.release("u1")  # frees .3
    assert ipam.allocate("new") == "10.42.0.3"


def test_exhaustion_raises_a_network_error(tmp_path: Path) -> None:
    ipam = make(tmp_path, "10.42.0.0/30")
    ipam.allocate("u1")
    with pytest.raises(IpamExhausted, match="no free address"):
        ipam.allocate("u2")
    assert isinstance(IpamExhausted("x"), NetworkError)


def test_state_survives_a_restart(tmp_path: Path) -> None:
    before = make(tmp_path)
    addresses = {uid: before.allocate(uid) for uid in ("u1", "u2", "u3")}
    before.release("u3")
    after = HostLocalIpam(tmp_path / "network")
    assert after.cidr() == "10.42.1.0/24"
    assert after.allocate("u1") == addresses["u1"]
    assert after.allocate("u4") == "10.42.1.5"  # after the last one handed out, not the freed .4


def test_an_address_file_made_by_someone_else_is_skipped(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    (tmp_path / "network" / "10.42.1.2").write_text("other\n")
    assert ipam.allocate("u1") == "10.42.1.3"


def test_an_empty_address_file_is_reported_with_no_uid_and_can_be_freed(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    (tmp_path / "network" / "10.42.1.9").write_text("")
    assert ipam.allocations() == {"10.42.1.9": ""}
    ipam.release_address("10.42.1.9")
    assert ipam.allocations() == {}


def test_concurrent_allocations_never_share_an_address(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    results: dict[str, str] = {}

    def worker(index: int) -> None:
        for round_ in range(10):
            uid = f"w{index}-{round_}"
            results[uid] = HostLocalIpam(tmp_path / "network").allocate(uid)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results.values())) == len(results) == 80
    assert ipam.allocations() == {address: uid for uid, address in results.items()}


def test_changing_the_cidr_is_refused_while_addresses_are_held(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    ipam.allocate("u1")
    with pytest.raises(NetworkError, match=re.escape("changed from 10.42.1.0/24 to 10.42.7.0/24")):
        ipam.set_cidr("10.42.7.0/24")
    assert ipam.cidr() == "10.42.1.0/24"


def test_changing_the_cidr_with_no_address_held_starts_afresh(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    ipam.allocate("u1")
    ipam.release("u1")
    ipam.set_cidr("10.42.7.0/24")
    assert ipam.allocate("u2") == "10.42.7.2"


def test_allocate_before_a_cidr_is_set_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="no pod CIDR"):
        HostLocalIpam(tmp_path / "network").allocate("u1")
