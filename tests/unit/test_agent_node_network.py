"""The pod network mode on the Node: annotation and Ready message (`kubelite.agent.node.NetworkReport`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubelite.agent.machine import Machine
from kubelite.agent.node import POD_NETWORK_ANNOTATION, NetworkReport, node_annotations, node_status

MACHINE = Machine(
    hostname="n1",
    cpus=2,
    memory_kib=4096,
    ephemeral_storage_kib=1000,
    machine_id="m",
    system_uuid="u",
    boot_id="b",
    kernel_version="6",
    os_image="Debian",
    operating_system="linux",
    architecture="amd64",
)


def ready_message(network: NetworkReport | None) -> str:
    status = node_status(
        MACHINE,
        node_name="n1",
        node_ip="10.0.0.1",
        kubelet_port=10250,
        isolation=None,
        now=datetime(2025, 1, 1, tzinfo=UTC),
        network=network,
    )
    return next(c["message"] for c in status["conditions"] if c["type"] == "Ready")


@pytest.mark.parametrize(
    ("network", "annotation", "shared_note"),
    [
        (NetworkReport("bridge"), "bridge", False),
        (NetworkReport("host", "not running as root"), "host: not running as root", True),
        (NetworkReport("host"), "host", True),
    ],
)
def test_network_mode_is_annotated_and_host_mode_is_stated_in_ready(
    network: NetworkReport, annotation: str, shared_note: bool
) -> None:
    assert node_annotations(None, network)[POD_NETWORK_ANNOTATION] == annotation
    message = ready_message(network)
    assert message.startswith("kubelet is posting ready status")
    assert ("pods share the node's network" in message) == shared_note


def test_before_the_network_is_known_nothing_is_said_about_it() -> None:
    assert POD_NETWORK_ANNOTATION not in node_annotations(None)
    assert ready_message(None) == "kubelet is posting ready status"
