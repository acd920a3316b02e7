"""Services on a single-node cluster with real pods: replicas on one port behind a ClusterIP, cluster DNS,
readiness-driven endpoints, NodePort and LoadBalancer from the node's network, rules going with the Service.

Every pod has its own network namespace and address (the node itself runs in a namespace the test made), so
three replicas listening on the same port run side by side.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from kubelite.testing.cluster import FETCH_MANY, HOSTNAME_SERVER, get_json, kubectl_popen, wait_for
from kubelite.testing.netns import netns_exec_prefix
from kubelite.testing.server import ServerProcess


def _apply(cluster: ServerProcess, manifest: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=textwrap.dedent(manifest))


def _web_deployment(cluster: ServerProcess, name: str, replicas: int, *, readiness: str = "") -> None:
    server = json.dumps(HOSTNAME_SERVER)
    probe = readiness or "httpGet: {port: 8080, path: /}"
    _apply(
        cluster,
        f"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: {name}}}}}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: web
                image: python:3.11
                command: ["python3", "-c", {server}]
                ports: [{{name: http, containerPort: 8080}}]
                readinessProbe:
                  {probe}
                  periodSeconds: 1
        """,
    )
    cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=90s", timeout=100)


def _client_pod(cluster: ServerProcess) -> str:
    name = "client"
    if cluster.kubectl("get", "pod", name, check=False).returncode != 0:
        cluster.kubectl("run", name, "--image=python:3.11", "--restart=Never", "--", "sleep", "3600")
        cluster.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=60s", timeout=70)
    return name


def _fetch_from_pod(cluster: ServerProcess, url: str, count: int) -> list[str]:
    pod = _client_pod(cluster)
    result = cluster.kubectl("exec", pod, "--", "python3", "-c", FETCH_MANY, url, str(count), timeout=120)
    return result.stdout.splitlines()


def _fetch_from_node(cluster: ServerProcess, url: str) -> str:
    """One GET from the node's own network namespace (where NodePort/LoadBalancer traffic arrives)."""
    result = subprocess.run(
        [*netns_exec_prefix(cluster.netns), sys.executable, "-c", FETCH_MANY, url, "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout.strip()


def _service(cluster: ServerProcess, name: str) -> dict[str, Any]:
    return get_json(cluster, "service", name)


def _node_ip(cluster: ServerProcess) -> str:
    node = get_json(cluster, "nodes")["items"][0]
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


def _ready_addresses(cluster: ServerProcess, service: str) -> set[str]:
    slices = get_json(cluster, "endpointslices", "-l", f"kubernetes.io/service-name={service}")["items"]
    return {
        address
        for s in slices
        for endpoint in s.get("endpoints") or ()
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint["addresses"]
    }


def test_three_replicas_on_one_port_are_all_reached_by_name_and_by_cluster_ip(cluster: ServerProcess) -> None:
    _web_deployment(cluster, "web", 3)
    cluster.kubectl("expose", "deployment", "web", "--port=80", "--target-port=http")
    pods = get_json(cluster, "pods", "-l", "app=web")["items"]
    names = {p["metadata"]["name"] for p in pods}
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 3, "every replica has its own address"
    wait_for(lambda: _ready_addresses(cluster, "web") == ips, timeout=30, what="three ready endpoints")

    answers = _fetch_from_pod(cluster, "http://web.default.svc.cluster.local/", 100)
    assert len(answers) == 100 and set(answers) == names, answers[:5]

    cluster_ip = _service(cluster, "web")["spec"]["clusterIP"]
    assert cluster_ip.startswith("10.43.")
    by_ip = _fetch_from_pod(cluster, f"http://{cluster_ip}/", 30)
    assert set(by_ip) <= names and not any(a.startswith("ERROR") for a in by_ip)

    # the short name works through the search path, and `kubectl get endpointslices` shows the slice
    assert set(_fetch_from_pod(cluster, "http://web/", 5)) <= names
    table = cluster.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web").stdout
    assert "IPv4" in table and "8080" in table

    # kubectl port-forward svc/web picks one of the Service's pods and forwards to its target port
    forward = kubectl_popen(cluster, "port-forward", "svc/web", ":80", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:<port> -> 8080"
        assert "-> 8080" in line, line
        local = line.split("127.0.0.1:")[1].split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as response:
            assert response.read().decode() in names
    finally:
        forward.send_signal(signal.SIGINT)
        forward.communicate(timeout=10)


def test_a_pod_failing_readiness_leaves_the_endpoints_and_comes_back(cluster: ServerProcess) -> None:
    marker = Path("/tmp") / f"kubelite-ready-{uuid.uuid4().hex[:8]}"
    marker.write_text("ok")
    try:
        _web_deployment(cluster, "flaky", 1, readiness=f'exec: {{command: ["test", "-f", "{marker}"]}}')
        cluster.kubectl("expose", "deployment", "flaky", "--port=80", "--target-port=8080")
        pod_ip = get_json(cluster, "pods", "-l", "app=flaky")["items"][0]["status"]["podIP"]
        wait_for(lambda: _ready_addresses(cluster, "flaky") == {pod_ip}, timeout=30, what="the ready endpoint")

        marker.unlink()
        wait_for(lambda: not _ready_addresses(cluster, "flaky"), timeout=30, what="the endpoint to go")
        assert _fetch_from_pod(cluster, "http://flaky/", 1)[0].startswith("ERROR")

        marker.write_text("ok")
        wait_for(lambda: _ready_addresses(cluster, "flaky") == {pod_ip}, timeout=30, what="the endpoint to return")
        wait_for(
            lambda: not _fetch_from_pod(cluster, "http://flaky/", 1)[0].startswith("ERROR"),
            timeout=30,
            what="traffic to return",
        )
    finally:
        marker.unlink(missing_ok=True)


def test_node_port_and_load_balancer_reach_the_pods_from_the_node_network(cluster: ServerProcess) -> None:
    _web_deployment(cluster, "edge", 2)
    cluster.kubectl(
        "expose", "deployment", "edge", "--name=edge-np", "--type=NodePort", "--port=80", "--target-port=8080"
    )
    cluster.kubectl(
        "expose", "deployment", "edge", "--name=edge-lb", "--type=LoadBalancer", "--port=8081", "--target-port=8080"
    )
    names = {p["metadata"]["name"] for p in get_json(cluster, "pods", "-l", "app=edge")["items"]}
    node_ip = _node_ip(cluster)

    node_port = _service(cluster, "edge-np")["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    assert wait_for(
        lambda: _fetch_from_node(cluster, f"http://{node_ip}:{node_port}/") in names, timeout=30, what="NodePort"
    )

    def ingress() -> list[str]:
        status = _service(cluster, "edge-lb").get("status", {}).get("loadBalancer", {})
        return [i["ip"] for i in status.get("ingress") or ()]

    assert wait_for(ingress, timeout=30, what="a LoadBalancer ingress address") == [node_ip]
    table = cluster.kubectl("get", "service", "edge-lb").stdout
    assert node_ip in table
    assert wait_for(lambda: _fetch_from_node(cluster, f"http://{node_ip}:8081/") in names, timeout=30, what="LB")


def test_deleting_a_service_removes_its_rules(cluster: ServerProcess) -> None:
    _web_deployment(cluster, "gone", 1)
    cluster.kubectl("expose", "deployment", "gone", "--port=80", "--target-port=8080")
    cluster_ip = _service(cluster, "gone")["spec"]["clusterIP"]
    wait_for(lambda: _ready_addresses(cluster, "gone"), timeout=30, what="the endpoint")
    assert not _fetch_from_pod(cluster, f"http://{cluster_ip}/", 1)[0].startswith("ERROR")
    assert cluster_ip in _nft_rules(cluster)

    cluster.kubectl("delete", "service", "gone")
    wait_for(lambda: cluster_ip not in _nft_rules(cluster), timeout=30, what="the rules to go")
    assert _fetch_from_pod(cluster, f"http://{cluster_ip}/", 1)[0].startswith("ERROR")


def _nft_rules(cluster: ServerProcess) -> str:
    result = subprocess.run(
        [*netns_exec_prefix(cluster.netns), "nft", "list", "table", "ip", "kubelite"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return result.stdout


@pytest.mark.parametrize("name", ["kubernetes.default.svc.cluster.local", "kube-dns.kube-system"])
def test_cluster_dns_resolves_the_built_in_services(cluster: ServerProcess, name: str) -> None:
    pod = _client_pod(cluster)
    script = "import socket, sys; print(socket.gethostbyname(sys.argv[1]))"
    address = cluster.kubectl("exec", pod, "--", "python3", "-c", script, name).stdout.strip()
    expected = get_json(cluster, "service", "-A", "--field-selector", f"metadata.name={name.split('.')[0]}")
    assert address == expected["items"][0]["spec"]["clusterIP"]
