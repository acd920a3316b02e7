"""Node IPAM: per-node pod CIDRs from the cluster CIDR, never handed out twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.nodeipam import NODES, CidrSet, NodeIpamController, cidr_patch, node_pod_cidrs
from kubelite.machinery.network import ClusterNetwork
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

EVENTS = builtin("", "events")
T = TypeVar("T")


@pytest.mark.parametrize(
    ("cluster", "mask", "expected"),
    [
        ("10.42.0.0/16", 24, ["10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"]),
        ("10.42.0.0/22", 24, ["10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"]),
        ("10.0.0.0/8", 20, ["10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"]),
        ("fd00::/104", 112, ["fd00::/112", "fd00::1:0/112", "fd00::2:0/112"]),
    ],
)
def test_blocks_are_handed_out_in_order(cluster: str, mask: int, expected: list[str]) -> None:
    cidrs = CidrSet(cluster, mask)
    assert [cidrs.allocate_next() for _ in expected] == expected


def test_a_full_range_hands_out_nothing_and_a_freed_block_comes_back_after_the_others() -> None:
    cidrs = CidrSet("10.42.0.0/23", 24)
    assert [cidrs.allocate_next(), cidrs.allocate_next(), cidrs.allocate_next()] == [
        "10.42.0.0/24",
        "10.42.1.0/24",
        None,
    ]
    cidrs.release("10.42.0.0/24")
    assert cidrs.allocate_next() == "10.42.0.0/24"


def test_occupied_blocks_are_skipped_and_foreign_cidrs_refused() -> None:
    cidrs = CidrSet("10.42.0.0/16", 24)
    assert cidrs.occupy("10.42.0.0/24") and cidrs.occupy("10.42.1.0/24")
    assert not cidrs.occupy("10.99.0.0/24") and not cidrs.occupy("garbage")
    assert cidrs.allocate_next() == "10.42.2.0/24"
    assert cidrs.occupy("10.42.4.0/23") and cidrs.is_taken("10.42.5.0/24")
    assert cidrs.used == 5


def test_round_robin_never_returns_a_taken_block() -> None:
    cidrs = CidrSet("10.42.0.0/28", 30)  # 4 blocks
    handed = {cidrs.allocate_next() for _ in range(4)}
    assert len(handed) == 4 and cidrs.allocate_next() is None
    cidrs.release("10.42.0.8/30")
    assert cidrs.allocate_next() == "10.42.0.8/30"


def test_a_block_given_back_after_a_failed_assignment_is_handed_out_next() -> None:
    cidrs = CidrSet("10.42.0.0/16", 24)
    first = cidrs.allocate_next()
    assert first == "10.42.0.0/24"
    cidrs.give_back(first)
    assert cidrs.allocate_next() == "10.42.0.0/24" and cidrs.allocate_next() == "10.42.1.0/24"


def test_patch_touches_spec_only_and_is_guarded_by_resource_version() -> None:
    node = {"metadata": {"name": "n", "resourceVersion": "7"}}
    assert cidr_patch(node, "10.42.3.0/24") == {
        "spec": {"podCIDR": "10.42.3.0/24", "podCIDRs": ["10.42.3.0/24"]},
        "metadata": {"resourceVersion": "7"},
    }
    assert node_pod_cidrs({"spec": {"podCIDR": "10.42.3.0/24"}}) == ["10.42.3.0/24"]


# -- the controller ---------------------------------------------------------------------------------


def node(name: str, cidr: str | None = None) -> dict[str, Any]:
    spec = {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec}


@contextlib.asynccontextmanager
async def running(client: FakeClient, network: ClusterNetwork) -> AsyncIterator[NodeIpamController]:
    clock = FakeClock()
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "node-ipam-controller", clock=clock)
    controller = NodeIpamController(ControllerContext(client, factory, recorder, clock), network=network)
    tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
    try:
        await asyncio.wait_for(factory.wait_for_sync(), 5)
        yield controller
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def eventually(check: Callable[[], T | None], *, timeout: float = 5.0) -> T:
    async with asyncio.timeout(timeout):
        while True:
            if result := check():
                return result
            await asyncio.sleep(0.001)


def cidrs_by_node(client: FakeClient) -> dict[str, list[str]]:
    return {n["metadata"]["name"]: node_pod_cidrs(n) for n in client.objects(NODES)}


def all_assigned(found: dict[str, list[str]], count: int) -> dict[str, list[str]] | None:
    return found if len(found) == count and all(found.values()) else None


async def test_nodes_get_distinct_cidrs_after_the_ones_already_taken() -> None:
    client = FakeClient()
    await client.create(NODES, node("old", "10.42.0.0/24"))
    await client.create(NODES, node("a"))
    async with running(client, ClusterNetwork()):
        await client.create(NODES, node("b"))
        found = await eventually(lambda: all_assigned(cidrs_by_node(client), 3))
    assert found["old"] == ["10.42.0.0/24"]
    assert sorted([found["a"][0], found["b"][0]]) == ["10.42.1.0/24", "10.42.2.0/24"]
    patches = [a for a in client.actions if a.verb == "patch"]
    assert all(set(a.body) == {"spec", "metadata"} and set(a.body["metadata"]) == {"resourceVersion"} for a in patches)


async def test_a_deleted_nodes_block_is_freed_and_a_full_range_records_an_event() -> None:
    client = FakeClient()
    network = ClusterNetwork(cluster_cidr="10.42.0.0/23", node_cidr_mask=24)
    await client.create(NODES, node("a", "10.42.0.0/24"))
    await client.create(NODES, node("b", "10.42.1.0/24"))
    async with running(client, network) as controller:
        await client.create(NODES, node("c"))
        event = await eventually(lambda: next(iter(client.objects(EVENTS)), None))
        assert (event["reason"], event["type"], event["message"]) == (
            "CIDRNotAvailable",
            "Normal",
            "Node c status is now: CIDRNotAvailable",
        )
        assert event["involvedObject"]["kind"] == "Node" and event["involvedObject"]["name"] == "c"
        assert cidrs_by_node(client)["c"] == []
        await client.delete(NODES, "a")
        assert await eventually(lambda: cidrs_by_node(client)["c"] == ["10.42.0.0/24"])
        assert controller.cidrs.used == 2
