"""Service address allocation and the bootstrap objects through a real server, kubectl and the python client."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubelite.testing.server import ServerProcess

SERVICE_CIDR = ipaddress.ip_network("10.43.0.0/16")


def _ns(api: client.ApiClient, name: str) -> client.CoreV1Api:
    core = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    return core


def _svc(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"port": 80, "targetPort": 8080}])
    spec.setdefault("selector", {"app": name})
    return {"metadata": {"name": name}, "spec": spec}


def _invalid(exc: ApiException) -> dict[str, Any]:
    assert exc.status == 422, exc.body
    return dict(json.loads(exc.body))


def test_create_gets_a_cluster_ip_from_the_service_cidr(api: client.ApiClient) -> None:
    core = _ns(api, "svc-alloc")
    made = core.create_namespaced_service("svc-alloc", _svc("web"))
    assert ipaddress.ip_address(made.spec.cluster_ip) in SERVICE_CIDR
    assert made.spec.cluster_ips == [made.spec.cluster_ip]
    assert made.spec.ip_families == ["IPv4"] and made.spec.ip_family_policy == "SingleStack"


def test_requesting_a_taken_ip_is_refused_and_nothing_is_stored(api: client.ApiClient) -> None:
    core = _ns(api, "svc-taken")
    taken = core.create_namespaced_service("svc-taken", _svc("first")).spec.cluster_ip
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service("svc-taken", _svc("second", clusterIP=taken))
    status = _invalid(caught.value)
    assert status["message"] == (
        f'Service "second" is invalid: spec.clusterIPs: Invalid value: []string{{"{taken}"}}: '
        f"failed to allocate IP {taken}: provided IP is already allocated"
    )
    assert status["details"]["causes"][0]["field"] == "spec.clusterIPs"
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_service("second", "svc-taken")
    assert missing.value.status == 404


def test_node_port_is_allocated_in_range_and_conflicts_are_rejected(api: client.ApiClient) -> None:
    core = _ns(api, "svc-np")
    made = core.create_namespaced_service("svc-np", _svc("np", type="NodePort"))
    port = made.spec.ports[0].node_port
    assert 30000 <= port <= 32767
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service("svc-np", _svc("np2", type="NodePort", ports=[{"port": 80, "nodePort": port}]))
    assert _invalid(caught.value)["message"] == (
        f'Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated'
    )
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service("svc-np", _svc("np3", type="NodePort", ports=[{"port": 80, "nodePort": 80}]))
    assert "provided port is not in the valid range. The range of valid ports is 30000-32767" in caught.value.body


def test_node_port_to_cluster_ip_frees_the_port_for_another_service(api: client.ApiClient) -> None:
    core = _ns(api, "svc-type")
    port = core.create_namespaced_service("svc-type", _svc("np", type="NodePort")).spec.ports[0].node_port
    changed = core.patch_namespaced_service("np", "svc-type", {"spec": {"type": "ClusterIP"}})
    assert changed.spec.type == "ClusterIP" and changed.spec.ports[0].node_port is None
    other = core.create_namespaced_service(
        "svc-type", _svc("other", type="NodePort", ports=[{"port": 1, "nodePort": port}])
    )
    assert other.spec.ports[0].node_port == port


def test_headless_gets_none_and_external_name_gets_nothing(api: client.ApiClient) -> None:
    core = _ns(api, "svc-kinds")
    headless = core.create_namespaced_service("svc-kinds", _svc("headless", clusterIP="None"))
    assert headless.spec.cluster_ip == "None" and headless.spec.cluster_ips == ["None"]
    external = core.create_namespaced_service(
        "svc-kinds", {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "example.com"}}
    )
    assert external.spec.cluster_ip is None and external.spec.ip_families is None


def test_delete_frees_the_address(api: client.ApiClient) -> None:
    core = _ns(api, "svc-del")
    ip = core.create_namespaced_service("svc-del", _svc("gone")).spec.cluster_ip
    core.delete_namespaced_service("gone", "svc-del")
    again = core.create_namespaced_service("svc-del", _svc("back", clusterIP=ip))
    assert again.spec.cluster_ip == ip


def test_bootstrap_objects_exist_with_expected_fields(api: client.ApiClient, server: ServerProcess) -> None:
    core = client.CoreV1Api(api)
    kubernetes = core.read_namespaced_service("kubernetes", "default")
    assert kubernetes.spec.cluster_ip == "10.43.0.1" and kubernetes.spec.selector is None
    assert kubernetes.metadata.labels == {"component": "apiserver", "provider": "kubernetes"}
    (port,) = kubernetes.spec.ports
    assert (port.name, port.port, port.protocol, port.target_port) == ("https", 443, "TCP", server.port)
    endpoints = core.read_namespaced_endpoints("kubernetes", "default")
    assert endpoints.subsets[0].addresses[0].ip == "127.0.0.1"
    assert endpoints.subsets[0].ports[0].port == server.port
    endpoint_slice = client.DiscoveryV1Api(api).read_namespaced_endpoint_slice("kubernetes", "default")
    assert endpoint_slice.metadata.labels == {"kubernetes.io/service-name": "kubernetes"}
    assert endpoint_slice.endpoints[0].addresses == ["127.0.0.1"] and endpoint_slice.endpoints[0].conditions.ready
    dns = core.read_namespaced_service("kube-dns", "kube-system")
    assert dns.spec.cluster_ip == "10.43.0.10" and dns.spec.internal_traffic_policy == "Local"
    assert [(p.name, p.port, p.protocol) for p in dns.spec.ports] == [
        ("dns", 53, "UDP"),
        ("dns-tcp", 53, "TCP"),
        ("metrics", 9153, "TCP"),
    ]
    assert dns.metadata.labels["k8s-app"] == "kube-dns" and dns.spec.selector is None
    data = core.read_namespaced_config_map("kubelite-cluster-network", "kube-system").data
    assert data["serviceCIDR"] == "10.43.0.0/16" and data["clusterDNS"] == "10.43.0.10"


def test_kubectl_expose_create_nodeport_and_describe(server: ServerProcess) -> None:
    server.kubectl("create", "namespace", "svc-kubectl")
    server.kubectl("create", "deployment", "x", "--image=nginx", "-n", "svc-kubectl")
    server.kubectl("expose", "deployment", "x", "--port=80", "--target-port=8080", "-n", "svc-kubectl")
    exposed = json.loads(server.kubectl("get", "svc", "x", "-n", "svc-kubectl", "-o", "json").stdout)
    assert ipaddress.ip_address(exposed["spec"]["clusterIP"]) in SERVICE_CIDR
    assert exposed["spec"]["ports"][0]["targetPort"] == 8080
    server.kubectl("create", "service", "nodeport", "np", "--tcp=80:8080", "-n", "svc-kubectl")
    table = server.kubectl("get", "svc", "np", "-n", "svc-kubectl").stdout
    assert "NodePort" in table and "80:3" in table
    described = server.kubectl("describe", "svc", "np", "-n", "svc-kubectl").stdout
    assert re.search(r"^NodePort: +80-8080  3\d{4}/TCP$", described, re.M)
    assert re.search(r"^IP Families: +IPv4$", described, re.M)
    server.kubectl("delete", "svc", "np", "-n", "svc-kubectl")


def test_restart_keeps_allocations(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=["--disable-agent", "--disable-controllers"]).start()
    try:
        server.kubectl("create", "service", "nodeport", "keep", "--tcp=80:8080")
        kept = json.loads(server.kubectl("get", "svc", "keep", "-o", "json").stdout)["spec"]
        server.stop()
        server.start()
        ip, port = kept["clusterIP"], kept["ports"][0]["nodePort"]
        clash = server.kubectl(
            "create", "service", "clusterip", "clash", "--tcp=80:8080", f"--clusterip={ip}", check=False
        )
        assert clash.returncode != 0 and "provided IP is already allocated" in clash.stderr
        clash_service = _svc("clash2", type="NodePort", ports=[{"port": 80, "nodePort": port}])
        manifest = json.dumps({"apiVersion": "v1", "kind": "Service", **clash_service})
        clash2 = server.kubectl("create", "-f", "-", input=manifest, check=False)
        assert clash2.returncode != 0 and "provided port is already allocated" in clash2.stderr
        for i in range(5):
            server.kubectl("create", "service", "nodeport", f"fresh{i}", "--tcp=80:8080")
            fresh = json.loads(server.kubectl("get", "svc", f"fresh{i}", "-o", "json").stdout)["spec"]
            assert fresh["clusterIP"] != ip and fresh["ports"][0]["nodePort"] != port
    finally:
        server.stop()
