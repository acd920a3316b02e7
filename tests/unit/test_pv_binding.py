"""PersistentVolume binding: matching and the binder's decisions table-tested; the binder, the
protection controllers and their writes against FakeClient."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.persistentvolume import (
    PersistentVolumeBinder,
    PVCProtectionController,
    PVProtectionController,
)
from kubelite.controllers.persistentvolume.decisions import (
    CLAIM_LOST_VOLUME,
    CLAIM_MISBOUND,
    EXTERNAL_PROVISIONING_MESSAGE,
    NO_CLASS_MESSAGE,
    RECYCLE_UNSUPPORTED,
    WAIT_FOR_FIRST_CONSUMER_MESSAGE,
    Action,
    decide_claim,
    decide_volume,
)
from kubelite.controllers.persistentvolume.protection import claim_in_use, pod_uses_claim
from kubelite.controllers.persistentvolume.util import (
    ANN_BIND_COMPLETED,
    ANN_BOUND_BY_CONTROLLER,
    ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
    PV_PROTECTION_FINALIZER,
    PVC_PROTECTION_FINALIZER,
    default_class,
    find_matching_volume,
    volume_fits_node,
)
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

PVS = builtin("", "persistentvolumes")
PVCS = builtin("", "persistentvolumeclaims")
PODS = builtin("", "pods")
CLASSES = builtin("storage.k8s.io", "storageclasses")
EVENTS = builtin("", "events")
WAIT = 5.0


def pv(
    name: str,
    size: str = "1Gi",
    *,
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    sc: str = "",
    phase: str = "Available",
    claim: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    node: str | None = None,
    policy: str = "Retain",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "capacity": {"storage": size},
        "accessModes": list(modes),
        "persistentVolumeReclaimPolicy": policy,
        "hostPath": {"path": f"/tmp/{name}"},
        "volumeMode": "Filesystem",
    }
    if sc:
        spec["storageClassName"] = sc
    if claim is not None:
        spec["claimRef"] = claim
    if node is not None:
        term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [term]}}
    meta: dict[str, Any] = {"name": name, "labels": labels or {}, "annotations": annotations or {}}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta, "spec": spec, "status": {"phase": phase}}


def pvc(
    name: str,
    size: str = "1Gi",
    *,
    ns: str = "default",
    uid: str | None = None,
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    sc: str | None = "",
    volume: str = "",
    annotations: dict[str, str] | None = None,
    selector: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if sc is not None:
        spec["storageClassName"] = sc
    if volume:
        spec["volumeName"] = volume
    if selector is not None:
        spec["selector"] = selector
    meta = {"name": name, "namespace": ns, "uid": uid or f"uid-{name}", "annotations": annotations or {}}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def ref(claim: dict[str, Any], *, uid: bool = True) -> dict[str, Any]:
    meta = claim["metadata"]
    found = {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"], "name": meta["name"]}
    if uid:
        found["uid"] = meta["uid"]
    return found


def storage_class(name: str, provisioner: str = "kubelite.io/local-path", mode: str = "Immediate") -> dict[str, Any]:
    return {"metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": mode}


def names(found: dict[str, Any] | None) -> str | None:
    return None if found is None else found["metadata"]["name"]


# -- matching ---------------------------------------------------------------------------------------

CLAIM = pvc("data", "1Gi")


@pytest.mark.parametrize(
    ("volumes", "expected"),
    [
        ([pv("small", "500Mi"), pv("big", "5Gi"), pv("fit", "2Gi")], "fit"),
        ([pv("rox", modes=("ReadOnlyMany",))], None),
        ([pv("both", modes=("ReadOnlyMany", "ReadWriteOnce"))], "both"),
        ([pv("classed", sc="fast")], None),
        ([pv("bound", claim=ref(pvc("other")))], None),
        ([pv("released", phase="Released")], None),
        ([pv("prebound", "5Gi", claim=ref(CLAIM, uid=False)), pv("smaller", "1Gi")], "prebound"),
        ([pv("prebound-small", "100Mi", claim=ref(CLAIM))], None),
    ],
)
def test_find_matching_volume_takes_smallest_fit_or_prebound(volumes: list[Any], expected: str | None) -> None:
    assert names(find_matching_volume(CLAIM, volumes)) == expected


def test_find_matching_volume_honours_selector_and_volume_mode() -> None:
    claim = pvc("sel", selector={"matchLabels": {"tier": "db"}})
    volumes = [pv("web", labels={"tier": "web"}), pv("db", "5Gi", labels={"tier": "db"})]
    assert names(find_matching_volume(claim, volumes)) == "db"
    block = pv("block")
    block["spec"]["volumeMode"] = "Block"
    assert find_matching_volume(CLAIM, [block]) is None


def test_delayed_binding_without_node_only_takes_prebound_volumes() -> None:
    assert find_matching_volume(CLAIM, [pv("free")], delay_binding=True) is None
    node = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}}
    volumes = [pv("elsewhere", node="n2"), pv("here", "3Gi", node="n1")]
    assert names(find_matching_volume(CLAIM, volumes, node=node, delay_binding=True)) == "here"


@pytest.mark.parametrize(
    ("labels", "node_name", "fits"),
    [
        ({"kubernetes.io/hostname": "n1"}, "n1", True),
        ({"kubernetes.io/hostname": "n2"}, "n2", False),
        ({}, "n1", False),
    ],
)
def test_volume_node_affinity(labels: dict[str, str], node_name: str, fits: bool) -> None:
    assert volume_fits_node(pv("v", node="n1"), labels, node_name) is fits
    assert volume_fits_node(pv("anywhere"), labels, node_name) is True


def test_default_class_is_the_newest_annotated_one() -> None:
    old = {"metadata": {"name": "a", "creationTimestamp": "2024-01-01T00:00:00Z", "annotations": {}}}
    new = {"metadata": {"name": "b", "creationTimestamp": "2025-01-01T00:00:00Z", "annotations": {}}}
    for c in (old, new):
        c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] = "true"
    assert names(default_class([old, new])) == "b"
    assert default_class([{"metadata": {"name": "plain"}}]) is None


# -- binder decisions -------------------------------------------------------------------------------


def test_unbound_claim_binds_to_matching_volume() -> None:
    decision = decide_claim(CLAIM, [pv("v")], {})
    assert decision.action is Action.BIND and names(decision.volume) == "v"


@pytest.mark.parametrize(
    ("claim", "classes", "action", "reason", "message"),
    [
        (pvc("c"), {}, Action.CLAIM_PENDING, "FailedBinding", NO_CLASS_MESSAGE),
        (
            pvc("c", sc="missing"),
            {},
            Action.CLAIM_PENDING,
            "ProvisioningFailed",
            'storageclass.storage.k8s.io "missing" not found',
        ),
        (
            pvc("c", sc="lp"),
            {"lp": storage_class("lp", mode="WaitForFirstConsumer")},
            Action.CLAIM_PENDING,
            "WaitForFirstConsumer",
            WAIT_FOR_FIRST_CONSUMER_MESSAGE,
        ),
        (
            pvc("c", sc="lp", annotations={ANN_SELECTED_NODE: "n1"}),
            {"lp": storage_class("lp", mode="WaitForFirstConsumer")},
            Action.PROVISION,
            "ExternalProvisioning",
            EXTERNAL_PROVISIONING_MESSAGE.format("kubelite.io/local-path"),
        ),
        (
            pvc("c", sc="local"),
            {"local": storage_class("local", provisioner="kubernetes.io/no-provisioner")},
            Action.CLAIM_PENDING,
            "ProvisioningFailed",
            "no volume plugin matched name: kubernetes.io/no-provisioner",
        ),
    ],
)
def test_unmatched_claim_decisions(
    claim: dict[str, Any], classes: dict[str, Any], action: Action, reason: str, message: str
) -> None:
    decision = decide_claim(claim, [], classes)
    assert decision.action is action
    assert [(e.reason, e.message) for e in decision.events] == [(reason, message)]


def test_bound_claim_whose_volume_vanished_is_lost() -> None:
    claim = pvc("c", volume="gone", annotations={ANN_BIND_COMPLETED: "yes"})
    decision = decide_claim(claim, [], {})
    assert decision.action is Action.CLAIM_LOST and decision.events[0].message == CLAIM_LOST_VOLUME


def test_bound_claim_whose_volume_is_bound_elsewhere_is_misbound() -> None:
    claim = pvc("c", volume="v", annotations={ANN_BIND_COMPLETED: "yes"})
    decision = decide_claim(claim, [pv("v", claim=ref(pvc("other")))], {})
    assert decision.action is Action.CLAIM_LOST and decision.events[0].message == CLAIM_MISBOUND


def test_claim_naming_a_volume_bound_to_another_claim_waits_with_event() -> None:
    decision = decide_claim(pvc("c", volume="v"), [pv("v", claim=ref(pvc("other")))], {})
    assert decision.action is Action.CLAIM_PENDING
    assert decision.events[0].message == 'volume "v" already bound to a different claim.'


@pytest.mark.parametrize(
    ("volume", "claim", "action", "phase"),
    [
        (pv("v", phase=""), None, Action.VOLUME_PHASE, "Available"),
        (pv("v", phase="Bound", claim=ref(CLAIM)), None, Action.VOLUME_PHASE, "Released"),
        (pv("v", phase="Released", claim=ref(CLAIM)), None, Action.NOTHING, ""),
        (pv("v", phase="Released", claim=ref(CLAIM), policy="Recycle"), None, Action.VOLUME_PHASE, "Failed"),
        (pv("v", phase="Released", claim=ref(CLAIM), policy="Delete"), None, Action.VOLUME_PHASE, "Failed"),
        (
            pv(
                "v",
                phase="Released",
                claim=ref(CLAIM),
                policy="Delete",
                annotations={"pv.kubernetes.io/provisioned-by": "x"},
            ),
            None,
            Action.DELETE_VOLUME,
            "",
        ),
        (pv("v", phase="Available", claim=ref(CLAIM)), pvc("data", volume="v"), Action.VOLUME_PHASE, "Bound"),
        (pv("v", phase="Bound", claim=ref(CLAIM)), pvc("data", uid="new-uid"), Action.VOLUME_PHASE, "Released"),
        (pv("v", phase="Bound", claim=ref(CLAIM)), pvc("data"), Action.ENQUEUE_CLAIM, ""),
        (
            pv("v", phase="Bound", claim=ref(CLAIM), annotations={ANN_BOUND_BY_CONTROLLER: "yes"}),
            pvc("data", volume="other"),
            Action.UNBIND_VOLUME,
            "",
        ),
    ],
)
def test_volume_decisions(volume: dict[str, Any], claim: dict[str, Any] | None, action: Action, phase: str) -> None:
    decision = decide_volume(volume, claim)
    assert decision.action is action
    assert decision.phase == phase


def test_recycle_is_not_supported() -> None:
    decision = decide_volume(pv("v", phase="Released", claim=ref(CLAIM), policy="Recycle"), None)
    assert decision.message == RECYCLE_UNSUPPORTED
    assert [e.reason for e in decision.events] == ["VolumeFailedRecycle"]


# -- protection decisions ---------------------------------------------------------------------------


def pod(name: str, claim: str, *, node: str = "n1", phase: str = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}],
        },
        "status": {"phase": phase},
    }


@pytest.mark.parametrize(
    ("the_pod", "uses"),
    [
        (pod("p", "data"), True),
        (pod("p", "other"), False),
        (pod("p", "data", node=""), False),
        (pod("p", "data", phase="Succeeded"), False),
    ],
)
def test_pod_uses_claim(the_pod: dict[str, Any], uses: bool) -> None:
    assert pod_uses_claim(the_pod, "data") is uses
    assert claim_in_use(CLAIM, [the_pod]) is uses


# -- shells -----------------------------------------------------------------------------------------


async def eventually(check: Callable[[], Any], *, timeout: float = WAIT) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.002)


@contextlib.asynccontextmanager
async def running(client: FakeClient, *makers: Callable[[ControllerContext], Controller]) -> AsyncIterator[None]:
    clock = FakeClock()
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "persistentvolume-controller", clock=clock)
    context = ControllerContext(client, factory, recorder, clock)
    controllers = [make(context) for make in makers]
    tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), *(c.run() for c in controllers))]
    try:
        await factory.wait_for_sync()
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def get(client: FakeClient, resource: Any, name: str, ns: str | None = None) -> dict[str, Any]:
    return await client.get(resource, name, ns)


async def test_binder_binds_static_volume_and_claim_with_upstream_annotations() -> None:
    client = FakeClient()
    await client.create(PVS, pv("small", "1Gi"))
    await client.create(PVS, pv("large", "10Gi"))
    await client.create(PVCS, pvc("data", "1Gi"), "default")
    async with running(client, PersistentVolumeBinder):

        async def bound() -> bool:
            claim = await get(client, PVCS, "data", "default")
            return (claim.get("status") or {}).get("phase") == "Bound"

        await eventually(bound)
    claim = await get(client, PVCS, "data", "default")
    volume = await get(client, PVS, "small")
    assert claim["spec"]["volumeName"] == "small"
    assert claim["metadata"]["annotations"][ANN_BIND_COMPLETED] == "yes"
    assert claim["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER] == "yes"
    assert claim["status"] == {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}
    assert volume["spec"]["claimRef"]["name"] == "data"
    assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert volume["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER] == "yes"
    assert volume["status"]["phase"] == "Bound"
    assert (await get(client, PVS, "large"))["status"]["phase"] == "Available"


async def test_binder_releases_retained_volume_when_claim_goes() -> None:
    client = FakeClient()
    await client.create(PVS, pv("v"))
    await client.create(PVCS, pvc("data"), "default")
    async with running(client, PersistentVolumeBinder):

        async def phase(want: str) -> bool:
            return (await get(client, PVS, "v"))["status"].get("phase") == want

        await eventually(lambda: phase("Bound"))
        await client.delete(PVCS, "data", "default")
        await eventually(lambda: phase("Released"))
    volume = await get(client, PVS, "v")
    assert volume["spec"]["claimRef"]["name"] == "data"  # Retain keeps the reference


async def test_binder_hands_wffc_claim_to_provisioner_once_node_is_selected() -> None:
    client = FakeClient()
    await client.create(CLASSES, storage_class("lp", mode="WaitForFirstConsumer"))
    await client.create(PVCS, pvc("data", sc="lp"), "default")
    async with running(client, PersistentVolumeBinder):

        async def has_event(reason: str) -> bool:
            return any(e.get("reason") == reason for e in client.objects(EVENTS))

        await eventually(lambda: has_event("WaitForFirstConsumer"))
        claim = await get(client, PVCS, "data", "default")
        assert ANN_STORAGE_PROVISIONER not in claim["metadata"]["annotations"]
        await client.patch(PVCS, "data", {"metadata": {"annotations": {ANN_SELECTED_NODE: "n1"}}}, "default")

        async def handed_over() -> bool:
            found = await get(client, PVCS, "data", "default")
            return found["metadata"]["annotations"].get(ANN_STORAGE_PROVISIONER) == "kubelite.io/local-path"

        await eventually(handed_over)
        await eventually(lambda: has_event("ExternalProvisioning"))
    claim = await get(client, PVCS, "data", "default")
    assert claim["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-provisioner"] == "kubelite.io/local-path"


async def test_pvc_protection_keeps_claim_while_a_pod_uses_it() -> None:
    client = FakeClient()
    await client.create(PVCS, pvc("data"), "default")
    await client.create(PODS, pod("user", "data"), "default")
    async with running(client, PVCProtectionController):

        async def protected() -> bool:
            found = await get(client, PVCS, "data", "default")
            return PVC_PROTECTION_FINALIZER in (found["metadata"].get("finalizers") or [])

        await eventually(protected)
        await client.delete(PVCS, "data", "default")
        claim = await get(client, PVCS, "data", "default")
        assert claim["metadata"]["deletionTimestamp"]
        await client.delete(PODS, "user", "default", grace_period_seconds=0)

        async def gone() -> bool:
            return not any(c["metadata"]["name"] == "data" for c in client.objects(PVCS))

        await eventually(gone)


async def test_pv_protection_releases_only_unbound_volume() -> None:
    client = FakeClient()
    await client.create(PVS, pv("v", phase="Bound"))
    async with running(client, PVProtectionController):

        async def protected() -> bool:
            found = await get(client, PVS, "v")
            return PV_PROTECTION_FINALIZER in (found["metadata"].get("finalizers") or [])

        await eventually(protected)
        await client.delete(PVS, "v")
        assert (await get(client, PVS, "v"))["metadata"]["deletionTimestamp"]
        await client.patch(PVS, "v", {"status": {"phase": "Released"}}, subresource="status")

        async def gone() -> bool:
            return not client.objects(PVS)

        await eventually(gone)
