"""The scheduler's I/O around the VolumeBinding plugin: a `VolumeLister` over shared informers
(claims, volumes, storage classes), the queue moves their changes cause, and PreBind — writing
`volume.kubernetes.io/selected-node` on the pod's unbound WaitForFirstConsumer claims before the
pod is bound (a merge patch guarded by the claim's uid).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kubelite.client.informer import Informer, SharedInformerFactory
from kubelite.client.interface import Client, builtin
from kubelite.machinery.errors import ApiError
from kubelite.scheduler.events import ClusterEvent
from kubelite.scheduler.nodeinfo import PodInfo
from kubelite.scheduler.plugins.volumebinding import (
    ANN_SELECTED_NODE,
    EVENT_PV_CHANGE,
    EVENT_PVC_CHANGE,
    EVENT_STORAGE_CLASS_CHANGE,
    VolumeBinding,
)

PVCS = builtin("", "persistentvolumeclaims")
PVS = builtin("", "persistentvolumes")
STORAGE_CLASSES = builtin("storage.k8s.io", "storageclasses")


class InformerVolumeLister:
    """`VolumeLister` over informer caches (objects are read-only)."""

    def __init__(self, informers: SharedInformerFactory) -> None:
        self.claims: Informer = informers.informer(PVCS)
        self.pvs: Informer = informers.informer(PVS)
        self.classes: Informer = informers.informer(STORAGE_CLASSES)

    def claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.claims.get(f"{namespace}/{name}")

    def volume(self, name: str) -> dict[str, Any] | None:
        return self.pvs.get(name)

    def volumes(self) -> Sequence[dict[str, Any]]:
        return self.pvs.list()

    def storage_class(self, name: str) -> dict[str, Any] | None:
        return self.classes.get(name) if name else None

    def on_change(self, move: Callable[[ClusterEvent], None]) -> None:
        """Call `move(event)` when a claim, volume or class is added or changes."""
        for informer, event in (
            (self.claims, EVENT_PVC_CHANGE),
            (self.pvs, EVENT_PV_CHANGE),
            (self.classes, EVENT_STORAGE_CLASS_CHANGE),
        ):
            informer.add_handler(
                lambda _obj, event=event: move(event), lambda _old, _new, event=event: move(event), None
            )

    async def wait_for_sync(self) -> None:
        for informer in (self.claims, self.pvs, self.classes):
            await informer.wait_for_sync()


async def pre_bind(client: Client, plugin: VolumeBinding, pod: PodInfo, node: str) -> None:
    """Annotate the claims the pod's binding commits to `node`; ApiError on failure (not bound)."""
    for namespace, name in plugin.claims_to_select(pod, node):
        claim = plugin.lister.claim(namespace, name)
        uid = ((claim or {}).get("metadata") or {}).get("uid")
        patch = {"metadata": {"uid": uid, "annotations": {ANN_SELECTED_NODE: node}}}
        try:
            await client.patch(PVCS, name, patch, namespace)
        except ApiError as exc:
            if exc.code != 404:
                raise
            raise ApiError(exc.code, exc.reason, f'persistentvolumeclaim "{name}" not found') from exc


__all__ = ["InformerVolumeLister", "pre_bind"]
