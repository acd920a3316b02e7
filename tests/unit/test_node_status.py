"""The node agent's Node object: registration shape, merging into an existing Node, the Lease heartbeat
and the status report cadence — against FakeClient and FakeClock, no real time passes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.machine import Machine, architecture, os_image, read_machine
from kubelite.agent.node import LEASES, NODES, NodeStatusManager, node_status, status_changed
from kubelite.client.errors import TransportError
from kubelite.machinery.meta import parse_time
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

MACHINE = Machine(
    hostname="worker-1",
    cpus=4,
    memory_kib=8_000_000,
    ephemeral_storage_kib=50_000_000,
    machine_id="3d1219c7c4c5404aaa1f6d2a48adfda4",
    system_uuid="3d1219c7-c4c5-404a-aa1f-6d2a48adfda4",
    boot_id="5b9e5a4c-0d8e-4d33-9d0c-0b0b2f1b6a11",
    kernel_version="6.1.0-18-amd64",
    os_image="Debian GNU/Linux 12 (bookworm)",
    architecture="amd64",
)


def manager(
    client: FakeClient, clock: FakeClock, *, isolation: str | None = None, labels: dict[str, str] | None = None
) -> NodeStatusManager:
    return NodeStatusManager(
        client,
        node_name="worker-1",
        node_ip="10.0.0.7",
        kubelet_port=10250,
        labels=labels or {},
        isolation=isolation,
        data_dir=Path("/nonexistent"),
        clock=clock,
        machine=MACHINE,
    )


@contextlib.asynccontextmanager
async def running(node: NodeStatusManager) -> AsyncIterator[None]:
    task = asyncio.create_task(node.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def conditions(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in node["status"]["conditions"]}


def status_updates(client: FakeClient) -> int:
    return sum(1 for a in client.actions if a.verb == "update" and a.resource == "nodes" and a.subresource == "status")


async def test_register_creates_the_node_as_the_kubelet_does() -> None:
    client, clock = FakeClient(), FakeClock()
    await manager(client, clock, labels={"node-role.kubernetes.io/control-plane": ""}).register()

    (node,) = client.objects(NODES)
    meta = node["metadata"]
    assert meta["labels"] == {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": "worker-1",
        "kubernetes.io/os": "linux",
        "node-role.kubernetes.io/control-plane": "",
    }
    assert meta["annotations"]["node.alpha.kubernetes.io/ttl"] == "0"
    assert meta["annotations"]["kubelite.io/container-isolation"] == "isolated"
    status = node["status"]
    assert status["capacity"] == {
        "cpu": "4",
        "ephemeral-storage": "50000000Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": "8000000Ki",
        "pods": "110",
    }
    assert status["allocatable"] == status["capacity"]
    assert [c["type"] for c in status["conditions"]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    found = {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}
    assert found == {
        "MemoryPressure": ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
    }
    ready = conditions(node)["Ready"]
    assert ready["lastHeartbeatTime"] == ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert status["addresses"] == [
        {"type": "InternalIP", "address": "10.0.0.7"},
        {"type": "Hostname", "address": "worker-1"},
    ]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    info = status["nodeInfo"]
    assert info["machineID"] == MACHINE.machine_id
    assert info["bootID"] == MACHINE.boot_id
    assert info["osImage"] == "Debian GNU/Linux 12 (bookworm)"
    assert info["kubeletVersion"] == info["kubeProxyVersion"] == "v1.32.4+kubelite"
    assert info["containerRuntimeVersion"].startswith("process://")
    assert (info["operatingSystem"], info["architecture"]) == ("linux", "amd64")


async def test_an_unisolated_node_says_so_on_the_node() -> None:
    client, clock = FakeClient(), FakeClock()
    await manager(client, clock, isolation="not running as root").register()

    (node,) = client.objects(NODES)
    assert node["metadata"]["annotations"]["kubelite.io/container-isolation"] == "none: not running as root"
    ready = conditions(node)["Ready"]
    assert ready["status"] == "True"
    assert ready["message"].startswith("kubelet is posting ready status")
    assert "not running as root" in ready["message"]


async def test_registering_over_an_existing_node_keeps_what_users_set() -> None:
    client, clock = FakeClient(), FakeClock()
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    await client.create(
        NODES,
        {
            "metadata": {"name": "worker-1", "labels": {"team": "ml", "kubernetes.io/hostname": "old"}},
            "spec": {"unschedulable": True, "taints": [taint]},
        },
    )

    await manager(client, clock, labels={"zone": "a"}).register()

    (node,) = client.objects(NODES)
    assert node["spec"] == {"unschedulable": True, "taints": [taint]}
    labels = node["metadata"]["labels"]
    assert labels["team"] == "ml"
    assert labels["zone"] == "a"
    assert labels["kubernetes.io/hostname"] == "worker-1"
    assert node["metadata"]["annotations"]["node.alpha.kubernetes.io/ttl"] == "0"
    assert conditions(node)["Ready"]["status"] == "True"
    assert node["status"]["addresses"][0] == {"type": "InternalIP", "address": "10.0.0.7"}


async def test_registration_is_retried_until_the_api_answers() -> None:
    client, clock = FakeClient(), FakeClock()
    client.inject_error("create", TransportError("connection refused"), resource=NODES, times=2)
    task = asyncio.create_task(manager(client, clock).register())
    for _ in range(2):
        await clock.wait_for_sleepers(1)
        await clock.step(10)
    node = await asyncio.wait_for(task, 5)
    assert node["metadata"]["name"] == "worker-1"
    assert len(client.objects(NODES)) == 1


async def test_lease_is_renewed_every_ten_seconds_and_owned_by_the_node() -> None:
    client, clock = FakeClient(), FakeClock()
    node = manager(client, clock)
    registered = await node.register()

    async with running(node):
        await clock.wait_for_sleepers(2)  # the lease and the status loops
        (lease,) = client.objects(LEASES)
        assert lease["metadata"]["namespace"] == "kube-node-lease"
        assert lease["metadata"]["name"] == "worker-1"
        assert lease["metadata"]["ownerReferences"] == [
            {"apiVersion": "v1", "kind": "Node", "name": "worker-1", "uid": registered["metadata"]["uid"]}
        ]
        assert lease["spec"]["holderIdentity"] == "worker-1"
        assert lease["spec"]["leaseDurationSeconds"] == 40
        renewals = [parse_time(lease["spec"]["renewTime"])]
        assert lease["spec"]["renewTime"] == "2026-01-01T00:00:00.000000Z"  # MicroTime

        for _ in range(3):
            await clock.step(10)
            await clock.wait_for_sleepers(2)
            (lease,) = client.objects(LEASES)
            renewals.append(parse_time(lease["spec"]["renewTime"]))

    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(renewals)]
    assert gaps == [10.0, 10.0, 10.0]
    assert len(client.objects(LEASES)) == 1


async def test_a_failed_lease_renewal_is_retried_soon() -> None:
    client, clock = FakeClient(), FakeClock()
    node = manager(client, clock)
    await node.register()
    client.inject_error("get", TransportError("connection reset"), resource=LEASES)

    async with running(node):
        await clock.wait_for_sleepers(2)
        assert client.objects(LEASES) == []
        await clock.step(0.2)  # the first retry comes after 200 ms, not after a full interval
        await clock.wait_for_sleepers(2)
        assert len(client.objects(LEASES)) == 1


async def test_unchanged_status_is_reported_every_sixty_seconds() -> None:
    client, clock = FakeClient(), FakeClock()
    node = manager(client, clock)
    await node.register()
    client.clear_actions()

    async with running(node):
        await clock.wait_for_sleepers(2)
        posted_at = []
        for second in range(10, 130, 10):
            await clock.step(10)
            await clock.wait_for_sleepers(2)
            if status_updates(client) > len(posted_at):
                posted_at.append(second)

    assert posted_at == [60, 120]
    (stored,) = client.objects(NODES)
    ready = conditions(stored)["Ready"]
    assert ready["lastHeartbeatTime"] == "2026-01-01T00:02:00Z"
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # no transition, only heartbeats


async def test_a_status_changed_by_someone_else_is_corrected_at_the_next_check() -> None:
    client, clock = FakeClient(), FakeClock()
    node = manager(client, clock)
    await node.register()
    # the node lifecycle controller saw no heartbeat and marked the node unknown
    stored = client.objects(NODES)[0]
    for condition in stored["status"]["conditions"]:
        condition.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.")
    await client.update(NODES, stored, subresource="status")
    client.clear_actions()

    async with running(node):
        await clock.wait_for_sleepers(2)
        await clock.step(10)
        await clock.wait_for_sleepers(2)
        assert status_updates(client) == 1

    ready = conditions(client.objects(NODES)[0])["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:10Z"


def test_status_changed_ignores_only_heartbeats() -> None:
    base = node_status(
        MACHINE,
        node_name="n",
        node_ip="10.0.0.1",
        kubelet_port=10250,
        isolation=None,
        now=parse_time("2026-01-01T00:00:00Z"),
    )
    later = node_status(
        MACHINE,
        node_name="n",
        node_ip="10.0.0.1",
        kubelet_port=10250,
        isolation=None,
        now=parse_time("2026-01-01T00:05:00Z"),
        previous=base,
    )
    assert not status_changed(base, later)
    moved = node_status(
        MACHINE,
        node_name="n",
        node_ip="10.0.0.2",
        kubelet_port=10250,
        isolation=None,
        now=parse_time("2026-01-01T00:05:00Z"),
        previous=base,
    )
    assert status_changed(base, moved)
    assert status_changed(None, base)


def test_node_status_keeps_fields_and_conditions_it_does_not_own() -> None:
    previous = {"images": [{"names": ["busybox"]}], "conditions": [{"type": "NetworkUnavailable", "status": "False"}]}
    status = node_status(
        MACHINE,
        node_name="n",
        node_ip="10.0.0.1",
        kubelet_port=1,
        isolation=None,
        now=parse_time("2026-01-01T00:00:00Z"),
        previous=previous,
    )
    assert status["images"] == previous["images"]
    assert [c["type"] for c in status["conditions"]][-1] == "NetworkUnavailable"


@pytest.mark.parametrize(
    ("machine", "arch"), [("x86_64", "amd64"), ("aarch64", "arm64"), ("arm64", "arm64"), ("s390x", "s390x")]
)
def test_architecture_uses_go_names(machine: str, arch: str) -> None:
    assert architecture(machine) == arch


def test_os_image_reads_pretty_name(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    assert os_image(release) == "Debian GNU/Linux 12 (bookworm)"
    assert os_image(tmp_path / "missing") == "Linux"


def test_read_machine_reports_this_machine(tmp_path: Path) -> None:
    facts = read_machine(tmp_path)
    assert facts.cpus >= 1
    assert facts.memory_kib > 0
    assert facts.ephemeral_storage_kib > 0
    assert facts.kernel_version
