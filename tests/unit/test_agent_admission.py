"""Host-port admission as the kubelet does it (`kubelite.agent.pods.admission`)."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.agent.pods.admission import NODE_PORTS_REASON, HostPort, admit, host_ports


def pod(*ports: dict[str, Any], host_network: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "ports": list(ports)}]}
    if host_network:
        spec["hostNetwork"] = True
    return {"metadata": {"name": "p"}, "spec": spec}


@pytest.mark.parametrize(
    ("candidate", "running", "node_network", "rejected"),
    [
        # own network namespaces: container ports never collide, host ports do
        (pod({"containerPort": 80}), [pod({"containerPort": 80})], False, False),
        (pod({"containerPort": 80, "hostPort": 8080}), [pod({"containerPort": 81, "hostPort": 8080})], False, True),
        # hostNetwork pods hold their container ports on the node
        (pod({"containerPort": 80}, host_network=True), [pod({"containerPort": 80}, host_network=True)], False, True),
        (pod({"containerPort": 80}, host_network=True), [pod({"containerPort": 80})], False, False),
        # host-network mode (no root): every container port is a node port
        (pod({"containerPort": 80}), [pod({"containerPort": 80})], True, True),
        (pod({"containerPort": 80}), [pod({"containerPort": 81})], True, False),
        # protocols and host IPs
        (pod({"containerPort": 53, "protocol": "UDP"}), [pod({"containerPort": 53})], True, False),
        (
            pod({"containerPort": 80, "hostIP": "10.0.0.1"}),
            [pod({"containerPort": 80, "hostIP": "10.0.0.2"})],
            True,
            False,
        ),
        (pod({"containerPort": 80, "hostIP": "10.0.0.1"}), [pod({"containerPort": 80})], True, True),
        (pod(), [pod({"containerPort": 80})], True, False),
    ],
)
def test_a_pod_is_rejected_only_when_a_node_port_it_needs_is_held(
    candidate: dict[str, Any], running: list[dict[str, Any]], node_network: bool, rejected: bool
) -> None:
    result = admit(candidate, running, node_network=node_network)
    assert (result is not None) == rejected
    if result is not None:
        assert result.reason == NODE_PORTS_REASON
        assert result.status_message == (
            "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
        )


def test_host_ports_include_init_containers_and_default_to_tcp_on_every_address() -> None:
    spec = {
        "initContainers": [{"name": "i", "ports": [{"containerPort": 9000, "hostPort": 9000}]}],
        "containers": [{"name": "a", "ports": [{"containerPort": 80}]}],
    }
    assert host_ports({"spec": spec}, node_network=False) == [HostPort("0.0.0.0", "TCP", 9000)]
