"""Server-side tables as kubectl prints them, typed generators for more kinds, events in both APIs."""

from __future__ import annotations

import json
import textwrap

from kubernetes import client

from kubelite.testing.server import ServerProcess


def _header(out: str) -> list[str]:
    return out.splitlines()[0].split()


def test_default_columns_match_upstream(server: ServerProcess) -> None:
    server.kubectl("create", "namespace", "tables")
    server.kubectl("run", "p1", "--image=busybox", "-n", "tables", "--", "sleep", "100")
    server.kubectl("create", "deployment", "d1", "--image=nginx", "-n", "tables")
    server.kubectl("create", "service", "clusterip", "s1", "--tcp=80:8080", "-n", "tables")
    server.kubectl("create", "configmap", "c1", "--from-literal=a=b", "-n", "tables")
    pods = server.kubectl("get", "pods", "-n", "tables").stdout
    assert _header(pods) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods.splitlines()[1].split()[:4] == ["p1", "0/1", "Pending", "0"]
    wide = server.kubectl("get", "pods", "-n", "tables", "-o", "wide").stdout
    assert _header(wide) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                             "READINESS", "GATES"]
    deploys = server.kubectl("get", "deployments", "-n", "tables").stdout
    assert _header(deploys) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert deploys.splitlines()[1].split()[:4] == ["d1", "0/1", "0", "0"]
    services = server.kubectl("get", "services", "-n", "tables").stdout
    assert _header(services) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert "80/TCP" in services
    configmaps = server.kubectl("get", "configmaps", "c1", "-n", "tables").stdout
    assert _header(configmaps) == ["NAME", "DATA", "AGE"]
    assert configmaps.splitlines()[1].split()[:2] == ["c1", "1"]
    sorted_names = server.kubectl("get", "configmaps", "-n", "tables", "--sort-by=.metadata.name", "-o", "name").stdout
    assert "configmap/c1" in sorted_names
    everything = server.kubectl("get", "all", "-n", "tables").stdout
    assert "pod/p1" in everything and "deployment.apps/d1" in everything and "service/s1" in everything


def test_nodes_table(server: ServerProcess, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_node(client.V1Node(
        metadata=client.V1ObjectMeta(name="n1", labels={"node-role.kubernetes.io/control-plane": ""}),
        status=client.V1NodeStatus(
            conditions=[client.V1NodeCondition(type="Ready", status="True")],
            node_info=client.V1NodeSystemInfo(
                kubelet_version="v1.32.4+kubelite", architecture="amd64", boot_id="", container_runtime_version="",
                kernel_version="6.1", kube_proxy_version="", machine_id="", operating_system="linux",
                os_image="Debian", system_uuid=""))))
    out = server.kubectl("get", "nodes").stdout
    assert _header(out) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert out.splitlines()[1].split()[:3] == ["n1", "Ready", "control-plane"]
    server.kubectl("cordon", "n1")
    assert "Ready,SchedulingDisabled" in server.kubectl("get", "nodes").stdout
    server.kubectl("uncordon", "n1")
    server.kubectl("delete", "node", "n1")


def test_typed_generators_for_more_kinds(server: ServerProcess) -> None:
    server.kubectl("create", "namespace", "kinds")
    for args in (
        ("cronjob", "cj", "--image=busybox", "--schedule=*/1 * * * *", "--", "echo", "hi"),
        ("role", "r1", "--verb=get", "--resource=pods"),
        ("rolebinding", "rb1", "--role=r1", "--user=bob"),
        ("quota", "q1", "--hard=pods=10"),
        ("pdb", "pdb1", "--min-available=1", "--selector=app=x"),
        ("ingress", "i1", "--rule=foo.com/bar=svc1:80"),
        ("serviceaccount", "sa1"),
    ):
        server.kubectl("create", "-n", "kinds", *args)
    cronjob = json.loads(server.kubectl("get", "cronjob", "cj", "-n", "kinds", "-o", "json").stdout)
    assert cronjob["spec"]["schedule"] == "*/1 * * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Allow"  # server default
    quota = json.loads(server.kubectl("get", "quota", "q1", "-n", "kinds", "-o", "json").stdout)
    assert quota["spec"]["hard"] == {"pods": "10"}
    pdb = json.loads(server.kubectl("get", "pdb", "pdb1", "-n", "kinds", "-o", "json").stdout)
    assert pdb["spec"]["minAvailable"] == 1
    server.kubectl("create", "deployment", "web", "--image=nginx", "-n", "kinds")
    server.kubectl("autoscale", "deployment", "web", "--max=3", "--cpu-percent=50", "-n", "kinds")
    hpa_v2 = json.loads(server.kubectl("get", "hpa.v2.autoscaling", "web", "-n", "kinds", "-o", "json").stdout)
    assert hpa_v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 50
    hpa_v1 = json.loads(server.kubectl(
        "get", "--raw", "/apis/autoscaling/v1/namespaces/kinds/horizontalpodautoscalers/web").stdout)
    assert hpa_v1["spec"]["targetCPUUtilizationPercentage"] == 50


def test_server_side_apply_fails_clearly(server: ServerProcess) -> None:
    manifest = textwrap.dedent("""
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: ssa}
        data: {a: b}
    """)
    result = server.kubectl("apply", "--server-side", "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert "Server-side apply not available" in result.stderr or "server-side apply" in result.stderr


def test_events_are_one_store_seen_through_two_apis(server: ServerProcess, api: client.ApiClient) -> None:
    events = client.EventsV1Api(api)
    events.create_namespaced_event("default", client.EventsV1Event(
        metadata=client.V1ObjectMeta(name="ev1"), event_time="2026-11-28T10:00:00.000000Z",
        reason="Tested", note="hello from events.k8s.io", type="Normal", action="Test",
        reporting_controller="kubelite.test/ctl", reporting_instance="i1",
        regarding=client.V1ObjectReference(kind="Pod", name="p", namespace="default")))
    core_event = client.CoreV1Api(api).read_namespaced_event("ev1", "default")
    assert core_event.message == "hello from events.k8s.io"
    assert core_event.involved_object.name == "p"
    out = server.kubectl("get", "events", "-n", "default").stdout
    assert "Tested" in out and "hello from events.k8s.io" in out
    described = client.CoreV1Api(api).list_namespaced_event(
        "default", field_selector="involvedObject.name=p,involvedObject.namespace=default")
    assert [e.metadata.name for e in described.items] == ["ev1"]
