"""PersistentVolumes against a real server (its own controllers and agent off) with the binder,
protection controllers and local-path provisioner running in this process.  The test plays the
scheduler (sets `volume.kubernetes.io/selected-node` by hand) and the kubelet (reports the delete
helper pod Succeeded); kubectl shows the results."""

from __future__ import annotations

import asyncio
import contextlib
import json
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubelite.client import HttpClient, SharedInformerFactory, builtin
from kubelite.client.events import EventRecorder
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.localpath import LocalPathProvisioner
from kubelite.controllers.persistentvolume import (
    PersistentVolumeBinder,
    PVCProtectionController,
    PVProtectionController,
)
from kubelite.machinery.errors import ApiError
from kubelite.testing.cluster import eventually
from kubelite.testing.server import ServerProcess

PVS = builtin("", "persistentvolumes")
PVCS = builtin("", "persistentvolumeclaims")
PODS = builtin("", "pods")
WAIT = 30.0
T = TypeVar("T")


@pytest.fixture(scope="module")
def pv_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--disable-agent", "--disable-controllers"]
    process = ServerProcess(Path(tmp_path_factory.mktemp("kubelite-pv")), extra_args=args).start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.asynccontextmanager
async def controllers(server: ServerProcess) -> AsyncIterator[HttpClient]:
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        factory = SharedInformerFactory(client)
        recorder = EventRecorder(client, "persistentvolume-controller")
        context = ControllerContext(client, factory, recorder)
        made = [
            PersistentVolumeBinder(context),
            PVCProtectionController(context),
            PVProtectionController(context),
            LocalPathProvisioner(context, default_path="/unused"),
        ]
        tasks = [asyncio.create_task(run) for run in (factory.run(), recorder.run(), *(c.run() for c in made))]
        try:
            await asyncio.wait_for(factory.wait_for_sync(), WAIT)
            yield client
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.1)


async def get(client: HttpClient, resource: Any, name: str, ns: str | None = None) -> dict[str, Any] | None:
    try:
        return await client.get(resource, name, ns)
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise


def apply(server: ServerProcess, manifest: str) -> None:
    server.kubectl("apply", "-f", "-", input=textwrap.dedent(manifest))


def storage_dir(server: ServerProcess) -> str:
    text = server.kubectl("get", "cm", "-n", "kube-system", "local-path-config", "-o", "jsonpath={.data.config\\.json}")
    return str(json.loads(text.stdout)["nodePathMap"][0]["paths"][0])


def test_default_storage_class_and_local_path_config_exist(pv_server: ServerProcess) -> None:
    out = pv_server.kubectl("get", "sc").stdout
    assert "local-path (default)" in out and "kubelite.io/local-path" in out and "WaitForFirstConsumer" in out
    config = json.loads(
        pv_server.kubectl(
            "get", "cm", "-n", "kube-system", "local-path-config", "-o", "jsonpath={.data.config\\.json}"
        ).stdout
    )
    assert config["nodePathMap"][0]["node"] == "DEFAULT_PATH_FOR_NON_LISTED_NODES"


async def test_static_volume_binds_and_retain_releases(pv_server: ServerProcess) -> None:
    apply(
        pv_server,
        """
        apiVersion: v1
        kind: PersistentVolume
        metadata: {name: static-1}
        spec:
          capacity: {storage: 1Gi}
          accessModes: [ReadWriteOnce]
          persistentVolumeReclaimPolicy: Retain
          storageClassName: manual
          hostPath: {path: /tmp/static-1}
        ---
        apiVersion: v1
        kind: PersistentVolumeClaim
        metadata: {name: static-claim}
        spec:
          storageClassName: manual
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 500Mi}}
    """,
    )
    async with controllers(pv_server) as client:

        async def bound() -> dict | None:
            found = await get(client, PVCS, "static-claim", "default")
            return found if found and (found.get("status") or {}).get("phase") == "Bound" else None

        claim = await eventually(bound, "the claim to bind")
        assert claim["spec"]["volumeName"] == "static-1"
        assert claim["status"]["capacity"] == {"storage": "1Gi"}
        assert "kubernetes.io/pvc-protection" in claim["metadata"]["finalizers"]
        row = pv_server.kubectl("get", "pvc", "static-claim", "--no-headers").stdout.split()
        assert row[:5] == ["static-claim", "Bound", "static-1", "1Gi", "RWO"]
        pv_row = pv_server.kubectl("get", "pv", "static-1", "--no-headers").stdout.split()
        assert pv_row[4:6] == ["Bound", "default/static-claim"]
        await client.delete(PVCS, "static-claim", "default")

        async def released() -> bool:
            found = await get(client, PVS, "static-1")
            return bool(found and found["status"].get("phase") == "Released")

        await eventually(released, "the volume to be Released")
        assert await get(client, PVCS, "static-claim", "default") is None


async def test_wffc_claim_is_provisioned_on_selected_node_and_deleted_with_helper(pv_server: ServerProcess) -> None:
    apply(
        pv_server,
        """
        apiVersion: v1
        kind: PersistentVolumeClaim
        metadata: {name: dynamic}
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 2Gi}}
    """,
    )
    async with controllers(pv_server) as client:
        claim = await client.get(PVCS, "dynamic", "default")
        assert claim["spec"]["storageClassName"] == "local-path"  # DefaultStorageClass admission

        async def waiting() -> bool:
            events = pv_server.kubectl("get", "events", "--field-selector=involvedObject.name=dynamic").stdout
            return "WaitForFirstConsumer" in events

        await eventually(waiting, "the WaitForFirstConsumer event")
        # playing the scheduler's PreBind
        await client.patch(
            PVCS, "dynamic", {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "node-a"}}}, "default"
        )
        name = f"pvc-{claim['metadata']['uid']}"

        async def bound() -> dict | None:
            found = await get(client, PVCS, "dynamic", "default")
            return found if found and (found.get("status") or {}).get("phase") == "Bound" else None

        claim = await eventually(bound, "provisioning and binding")
        assert claim["spec"]["volumeName"] == name
        volume = await client.get(PVS, name)
        base = storage_dir(pv_server)  # from kube-system/local-path-config, not the provisioner's fallback
        assert volume["spec"]["hostPath"] == {"path": f"{base}/{name}_default_dynamic", "type": "DirectoryOrCreate"}
        assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        assert "kubernetes.io/pv-protection" in volume["metadata"]["finalizers"]
        # a pod using the claim keeps it while the claim is deleted
        apply(
            pv_server,
            """
            apiVersion: v1
            kind: Pod
            metadata: {name: user}
            spec:
              nodeName: node-a
              containers: [{name: c, image: busybox}]
              volumes: [{name: d, persistentVolumeClaim: {claimName: dynamic}}]
        """,
        )
        await client.delete(PVCS, "dynamic", "default")
        await asyncio.sleep(0.5)
        assert (await client.get(PVCS, "dynamic", "default"))["metadata"]["deletionTimestamp"]
        await client.delete(PODS, "user", "default", grace_period_seconds=0)

        async def helper() -> dict | None:
            return await get(client, PODS, f"helper-pod-delete-{name}", "kube-system")

        found = await eventually(helper, "the delete helper pod")
        assert found["spec"]["nodeName"] == "node-a"
        assert found["spec"]["containers"][0]["command"][-1] == f"rm -rf '{base}/{name}_default_dynamic'"
        # playing the kubelet
        await client.patch(
            PODS, found["metadata"]["name"], {"status": {"phase": "Succeeded"}}, "kube-system", subresource="status"
        )

        async def gone() -> bool:
            return await get(client, PVS, name) is None and await get(client, PVCS, "dynamic", "default") is None

        await eventually(gone, "the volume and claim to go")
