"""The real /usr/bin/kubectl against a real kubelite server: discovery, OpenAPI, create/get/describe."""

from __future__ import annotations

import json
import textwrap

from kubelite.testing.server import ServerProcess

DEPLOYMENT = textwrap.dedent("""
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels: {app: web}
    spec:
      replicas: 2
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: nginx
            image: nginx:1.27
          - name: sidecar
            image: busybox
            command: ["sleep", "infinity"]
""")


def test_version_reports_server_1_32(server: ServerProcess) -> None:
    out = server.kubectl("version", "-o", "json").stdout
    info = json.loads(out)
    assert info["serverVersion"]["minor"] == "32"
    assert info["serverVersion"]["gitVersion"].endswith("+kubelite")
    assert info["clientVersion"]["minor"].startswith("32")  # the dispatcher ran kubectl 1.32


def test_api_resources_lists_core_and_apps(server: ServerProcess) -> None:
    out = server.kubectl("api-resources").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    names = {line.split()[0] for line in lines[1:]}
    assert {"pods", "deployments", "namespaces", "leases", "cronjobs", "horizontalpodautoscalers"} <= names
    versions = server.kubectl("api-versions").stdout.split()
    assert {"v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2", "coordination.k8s.io/v1"} <= set(
        versions
    )


def test_explain_uses_openapi_v3(server: ServerProcess) -> None:
    out = server.kubectl("explain", "deployment.spec.strategy").stdout
    assert "rollingUpdate" in out
    assert "type" in out


def test_default_namespaces_exist(server: ServerProcess) -> None:
    out = server.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert {
        "namespace/default",
        "namespace/kube-system",
        "namespace/kube-public",
        "namespace/kube-node-lease",
    } <= set(out)
    table = server.kubectl("get", "namespaces").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "AGE"]


def test_apply_then_reapply_removes_container(server: ServerProcess) -> None:
    server.kubectl("apply", "-f", "-", input=DEPLOYMENT)
    first = json.loads(server.kubectl("get", "deployment", "web", "-o", "json").stdout)
    assert [c["name"] for c in first["spec"]["template"]["spec"]["containers"]] == ["nginx", "sidecar"]
    assert first["metadata"]["generation"] == 1
    assert first["spec"]["strategy"]["type"] == "RollingUpdate"  # server-side default
    changed = DEPLOYMENT.replace("replicas: 2", "replicas: 3").split("  - name: sidecar")[0]
    assert "sidecar" not in changed
    out = server.kubectl("apply", "-f", "-", input=changed).stdout
    assert "deployment.apps/web configured" in out
    second = json.loads(server.kubectl("get", "deployment", "web", "-o", "json").stdout)
    assert [c["name"] for c in second["spec"]["template"]["spec"]["containers"]] == ["nginx"]
    assert second["spec"]["replicas"] == 3
    assert second["metadata"]["generation"] == 2
    unchanged = server.kubectl("apply", "-f", "-", input=changed).stdout
    assert "deployment.apps/web unchanged" in unchanged
    server.kubectl("delete", "deployment", "web")


def test_create_generators_send_protobuf_and_succeed(server: ServerProcess) -> None:
    server.kubectl("create", "namespace", "gen")
    server.kubectl("create", "deployment", "d1", "--image=nginx", "--replicas=0", "-n", "gen")
    server.kubectl("create", "configmap", "c1", "--from-literal=a=b", "-n", "gen")
    server.kubectl("create", "secret", "generic", "s1", "--from-literal=password=hunter2", "-n", "gen")
    server.kubectl("create", "service", "clusterip", "svc1", "--tcp=80:8080", "-n", "gen")
    server.kubectl("create", "job", "j1", "--image=busybox", "-n", "gen", "--", "echo", "hi")
    deploy = json.loads(server.kubectl("get", "deploy", "d1", "-n", "gen", "-o", "json").stdout)
    assert deploy["spec"]["replicas"] == 0
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
    secret = json.loads(server.kubectl("get", "secret", "s1", "-n", "gen", "-o", "json").stdout)
    assert secret["data"]["password"] == "aHVudGVyMg=="
    cm = json.loads(server.kubectl("get", "cm", "c1", "-n", "gen", "-o", "json").stdout)
    assert cm["data"] == {"a": "b"}
    job = json.loads(server.kubectl("get", "job", "j1", "-n", "gen", "-o", "json").stdout)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]


def test_get_output_formats(server: ServerProcess) -> None:
    server.kubectl("create", "configmap", "fmt", "--from-literal=k=v")
    server.kubectl("label", "configmap", "fmt", "tier=db")
    assert server.kubectl("get", "cm", "fmt", "-o", "name").stdout.strip() == "configmap/fmt"
    assert server.kubectl("get", "cm", "fmt", "-o", "jsonpath={.data.k}").stdout == "v"
    custom = server.kubectl(
        "get", "cm", "fmt", "-o", "custom-columns=N:.metadata.name,K:.data.k"
    ).stdout.split()
    assert custom == ["N", "K", "fmt", "v"]
    labels = server.kubectl("get", "cm", "fmt", "--show-labels").stdout.splitlines()
    assert labels[0].split() == ["NAME", "DATA", "AGE", "LABELS"]
    assert "tier=db" in labels[1]
    assert "fmt" in server.kubectl("get", "cm", "-l", "tier=db", "-o", "name").stdout
    assert server.kubectl("get", "cm", "-l", "tier!=db", "-o", "name").stdout.count("configmap/fmt") == 0
    everywhere = server.kubectl("get", "cm", "-A").stdout.splitlines()
    assert everywhere[0].split()[:2] == ["NAMESPACE", "NAME"]
    by_field = server.kubectl(
        "get", "cm", "--field-selector", "metadata.name=fmt", "-o", "name"
    ).stdout.split()
    assert by_field == ["configmap/fmt"]
    as_yaml = server.kubectl("get", "cm", "fmt", "-o", "yaml").stdout
    assert "tier: db" in as_yaml
    server.kubectl("delete", "cm", "fmt")


def test_get_missing_object_is_not_found(server: ServerProcess) -> None:
    result = server.kubectl("get", "deployment", "nope", check=False)
    assert result.returncode == 1
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in result.stderr
