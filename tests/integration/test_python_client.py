"""The official `kubernetes` Python client: CRUD on common kinds and Watch semantics."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


def test_crud_namespace_configmap_secret_service_deployment(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="pyns")))
    assert core.read_namespace("pyns").status.phase == "Active"

    cm = core.create_namespaced_config_map(
        "pyns",
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg", labels={"a": "b"}), data={"k": "v"}),
    )
    assert cm.metadata.uid and cm.metadata.creation_timestamp
    cm.data["k"] = "v2"
    replaced = core.replace_namespaced_config_map("cfg", "pyns", cm)
    assert int(replaced.metadata.resource_version) > int(cm.metadata.resource_version)
    patched = core.patch_namespaced_config_map("cfg", "pyns", {"data": {"extra": "1"}})
    assert patched.data == {"k": "v2", "extra": "1"}
    assert [c.metadata.name for c in core.list_namespaced_config_map("pyns", label_selector="a=b").items] == [
        "cfg"
    ]

    core.create_namespaced_secret(
        "pyns", client.V1Secret(metadata=client.V1ObjectMeta(name="sec"), string_data={"password": "pw"})
    )
    secret = core.read_namespaced_secret("sec", "pyns")
    assert secret.data == {"password": "cHc="}
    assert secret.type == "Opaque"

    svc = core.create_namespaced_service(
        "pyns",
        client.V1Service(
            metadata=client.V1ObjectMeta(name="svc"),
            spec=client.V1ServiceSpec(selector={"app": "x"}, ports=[client.V1ServicePort(port=80)]),
        ),
    )
    assert svc.spec.ports[0].target_port == 80
    assert svc.spec.type == "ClusterIP"

    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="dep"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"app": "x"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "x"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
            ),
        ),
    )
    apps.create_namespaced_deployment("pyns", deployment)
    scaled = apps.patch_namespaced_deployment_scale("dep", "pyns", {"spec": {"replicas": 3}})
    assert scaled.spec.replicas == 3
    assert apps.read_namespaced_deployment("dep", "pyns").spec.replicas == 3

    apps.delete_namespaced_deployment("dep", "pyns")
    core.delete_namespaced_service("svc", "pyns")
    core.delete_namespaced_secret("sec", "pyns")
    core.delete_namespaced_config_map("cfg", "pyns")
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("cfg", "pyns")
    assert missing.value.status == 404


def test_watch_sees_changes_in_order_and_ends_at_timeout(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    start_rv = core.list_namespaced_config_map("default").metadata.resource_version

    def churn() -> None:
        time.sleep(0.5)
        core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w-1"), data={"n": "1"})
        )
        core.patch_namespaced_config_map("w-1", "default", {"data": {"n": "2"}})
        core.delete_namespaced_config_map("w-1", "default")

    thread = threading.Thread(target=churn)
    thread.start()
    seen = []
    started = time.monotonic()
    for event in watch.Watch().stream(
        core.list_namespaced_config_map, "default", resource_version=start_rv, timeout_seconds=4
    ):
        if event["object"].metadata.name == "w-1":
            seen.append((event["type"], event["object"].data.get("n") if event["object"].data else None))
    elapsed = time.monotonic() - started
    thread.join()
    assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]
    assert elapsed < 20  # the stream ended because the server honoured timeout_seconds

    # resuming from the list's resourceVersion replays exactly what happened after it
    replay = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=start_rv, timeout_seconds=1
        )
    ]
    assert replay == [("ADDED", "w-1"), ("MODIFIED", "w-1"), ("DELETED", "w-1")]
