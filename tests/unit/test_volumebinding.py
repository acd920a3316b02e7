"""VolumeBinding plugin: PreFilter/Filter outcomes table-tested over a fake lister; PreBind writes
selected-node on WaitForFirstConsumer claims (FakeClient)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from kubelite.client.interface import builtin
from kubelite.scheduler.framework import Code, NodeInfo, PodInfo, Snapshot
from kubelite.scheduler.plugins.volumebinding import (
    ERR_REASON_BIND_CONFLICT,
    ERR_REASON_NODE_CONFLICT,
    ERR_REASON_UNBOUND_IMMEDIATE,
    VolumeBinding,
)
from kubelite.scheduler.volumebinder import pre_bind
from kubelite.testing.fake_client import FakeClient

PVCS = builtin("", "persistentvolumeclaims")


class Lister:
    def __init__(self, claims: list[dict], volumes: list[dict], classes: list[dict]) -> None:
        self._claims = {(c["metadata"]["namespace"], c["metadata"]["name"]): c for c in claims}
        self._volumes = {v["metadata"]["name"]: v for v in volumes}
        self._classes = {c["metadata"]["name"]: c for c in classes}

    def claim(self, namespace: str, name: str) -> dict | None:
        return self._claims.get((namespace, name))

    def volume(self, name: str) -> dict | None:
        return self._volumes.get(name)

    def volumes(self) -> Sequence[dict]:
        return list(self._volumes.values())

    def storage_class(self, name: str) -> dict | None:
        return self._classes.get(name)


def claim(name: str, *, sc: str = "", volume: str = "", annotations: dict | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    spec["storageClassName"] = sc
    status = {}
    if volume:
        spec["volumeName"] = volume
        status = {"phase": "Bound"}
    meta = {"name": name, "namespace": "default", "uid": f"u-{name}", "annotations": annotations or {}}
    return {"metadata": meta, "spec": spec, "status": status}


def pv(name: str, *, node: str | None = None, sc: str = "", bound: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": sc}
    if node:
        term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [term]}}
    if bound:
        spec["claimRef"] = {"name": "x", "namespace": "default"}
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": "Bound" if bound else "Available"}}


def sc(name: str, *, mode: str = "WaitForFirstConsumer", provisioner: str = "kubelite.io/local-path") -> dict:
    return {"metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": mode}


def pod(*claims: str) -> PodInfo:
    volumes = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    return PodInfo(
        {
            "metadata": {"name": "p", "namespace": "default", "uid": "pod-uid"},
            "spec": {"containers": [{"name": "c", "image": "i"}], "volumes": volumes},
        }
    )


def node(name: str) -> NodeInfo:
    return NodeInfo({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})


SNAPSHOT = Snapshot([node("n1"), node("n2")])


def test_pod_without_claims_skips_the_plugin() -> None:
    assert VolumeBinding(Lister([], [], [])).pre_filter(pod(), SNAPSHOT).status.is_skip


@pytest.mark.parametrize(
    ("claims", "classes", "message"),
    [
        ([], [], 'persistentvolumeclaim "data" not found'),
        ([claim("data")], [], ERR_REASON_UNBOUND_IMMEDIATE),
        ([claim("data", sc="fast")], [sc("fast", mode="Immediate")], ERR_REASON_UNBOUND_IMMEDIATE),
    ],
)
def test_pre_filter_rejections(claims: list[dict], classes: list[dict], message: str) -> None:
    result = VolumeBinding(Lister(claims, [], classes)).pre_filter(pod("data"), SNAPSHOT)
    assert result.status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert result.status.reasons == (message,)


def test_bound_volume_pins_pod_to_its_node() -> None:
    plugin = VolumeBinding(Lister([claim("data", volume="v")], [pv("v", node="n1", bound=True)], []))
    info = pod("data")
    assert plugin.pre_filter(info, SNAPSHOT).status.is_success
    assert plugin.filter(info, node("n1")).is_success
    rejected = plugin.filter(info, node("n2"))
    assert rejected.reasons == (ERR_REASON_NODE_CONFLICT,)


def test_wffc_claim_with_provisioner_fits_every_node() -> None:
    plugin = VolumeBinding(Lister([claim("data", sc="local-path")], [], [sc("local-path")]))
    info = pod("data")
    assert plugin.pre_filter(info, SNAPSHOT).status.is_success
    assert plugin.filter(info, node("n2")).is_success
    assert plugin.claims_to_select(info, "n2") == [("default", "data")]


def test_wffc_claim_without_provisioner_needs_a_static_volume_on_the_node() -> None:
    lister = Lister(
        [claim("data", sc="local")],
        [pv("v1", node="n1", sc="local")],
        [sc("local", provisioner="kubernetes.io/no-provisioner")],
    )
    plugin = VolumeBinding(lister)
    info = pod("data")
    assert plugin.pre_filter(info, SNAPSHOT).status.is_success
    assert plugin.filter(info, node("n1")).is_success
    assert plugin.filter(info, node("n2")).reasons == (ERR_REASON_BIND_CONFLICT,)


async def test_pre_bind_writes_selected_node_on_delayed_claims() -> None:
    client = FakeClient()
    created = await client.create(PVCS, claim("data", sc="local-path"), "default")
    plugin = VolumeBinding(Lister([created], [], [sc("local-path")]))
    info = pod("data")
    plugin.pre_filter(info, SNAPSHOT)
    await pre_bind(client, plugin, info, "n1")
    found = await client.get(PVCS, "data", "default")
    assert found["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == "n1"
