"""The local-path provisioner: config parsing and the PV it builds table-tested; provisioning and
the delete helper pod against FakeClient."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.localpath import (
    ConfigError,
    LocalPathProvisioner,
    build_volume,
    default_config_json,
    helper_pod,
    storage_path_for,
)
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

PVS = builtin("", "persistentvolumes")
PVCS = builtin("", "persistentvolumeclaims")
PODS = builtin("", "pods")
CLASSES = builtin("storage.k8s.io", "storageclasses")
CONFIG = '{"nodePathMap":[{"node":"DEFAULT_PATH_FOR_NON_LISTED_NODES","paths":["/d"]},{"node":"n2","paths":["/n2a","/n2b"]},{"node":"n3","paths":[]}]}'  # noqa: E501


@pytest.mark.parametrize(
    ("config", "node", "expected"), [(CONFIG, "n1", "/d"), (CONFIG, "n2", "/n2a"), (None, "n1", "/fallback")]
)
def test_storage_path_for_node(config: str | None, node: str, expected: str) -> None:
    assert storage_path_for(config, node, default="/fallback") == expected


@pytest.mark.parametrize(
    ("config", "node", "message"),
    [
        (CONFIG, "n3", "no local path available on node n3"),
        (
            '{"nodePathMap":[]}',
            "n1",
            "config doesn't contain node n1, and no DEFAULT_PATH_FOR_NON_LISTED_NODES available",
        ),
    ],
)
def test_storage_path_errors(config: str, node: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        storage_path_for(config, node, default="/x")


def test_default_config_round_trips() -> None:
    assert storage_path_for(default_config_json("/var/s"), "any", default="/x") == "/var/s"


CLAIM = {
    "metadata": {"name": "data", "namespace": "apps", "uid": "abc", "resourceVersion": "7"},
    "spec": {
        "storageClassName": "local-path",
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "2Gi"}},
    },
}
CLASS = {"metadata": {"name": "local-path"}, "provisioner": "kubelite.io/local-path", "reclaimPolicy": "Retain"}


def test_built_volume_matches_k3s_shape() -> None:
    volume = build_volume(CLAIM, CLASS, node="n1", hostname="n1", base="/s")
    assert volume["metadata"]["name"] == "pvc-abc"
    assert volume["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "kubelite.io/local-path"
    spec = volume["spec"]
    assert spec["hostPath"] == {"path": "/s/pvc-abc_apps_data", "type": "DirectoryOrCreate"}
    assert spec["capacity"] == {"storage": "2Gi"}
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["claimRef"]["uid"] == "abc"
    term = spec["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}


def test_helper_pod_removes_the_directory_on_its_node() -> None:
    volume = build_volume(CLAIM, CLASS, node="n1", hostname="n1", base="/s")
    found = helper_pod(volume, "n1")
    assert found["metadata"]["name"] == "helper-pod-delete-pvc-abc"
    assert found["spec"]["nodeName"] == "n1"
    assert found["spec"]["restartPolicy"] == "Never"
    assert found["spec"]["containers"][0]["command"] == ["sh", "-c", "rm -rf '/s/pvc-abc_apps_data'"]
    assert found["spec"]["volumes"][0]["hostPath"]["path"] == "/s"


async def eventually(check: Callable[[], Any], *, timeout: float = 5.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.002)


@contextlib.asynccontextmanager
async def running(client: FakeClient) -> AsyncIterator[None]:
    clock = FakeClock()
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "kubelite.io/local-path", clock=clock)
    controller = LocalPathProvisioner(ControllerContext(client, factory, recorder, clock), default_path="/tmp/lp")
    tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
    try:
        await factory.wait_for_sync()
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_provisions_handed_over_claim_and_deletes_released_volume_via_helper() -> None:
    client = FakeClient()
    await client.create(CLASSES, {**CLASS, "reclaimPolicy": "Delete"})
    claim = {
        "metadata": {
            "name": "data",
            "namespace": "apps",
            "annotations": {
                "volume.kubernetes.io/storage-provisioner": "kubelite.io/local-path",
                "volume.kubernetes.io/selected-node": "n1",
            },
        },
        "spec": CLAIM["spec"],
    }
    created = await client.create(PVCS, claim, "apps")
    name = f"pvc-{created['metadata']['uid']}"
    async with running(client):
        await eventually(lambda: client.objects(PVS))
        volume = client.objects(PVS)[0]
        assert volume["metadata"]["name"] == name
        assert volume["spec"]["hostPath"]["path"] == f"/tmp/lp/{name}_apps_data"
        await client.patch(PVS, name, {"status": {"phase": "Released"}}, subresource="status")
        await eventually(lambda: client.objects(PODS))
        helper = client.objects(PODS)[0]
        assert helper["metadata"]["namespace"] == "kube-system"
        await client.patch(
            PODS, helper["metadata"]["name"], {"status": {"phase": "Succeeded"}}, "kube-system", subresource="status"
        )
        await eventually(lambda: not client.objects(PVS) and not client.objects(PODS))
