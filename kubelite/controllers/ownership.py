"""Owning objects: controller ownerReferences, adopting and releasing by selector, and creating and
deleting pods with the events kubectl users read (upstream's controller_ref_manager and PodControl).

Contracts:

* An object has at most one controller reference.  `claim()` keeps the objects the owner controls
  whose labels still match, releases (removes the reference from) those that no longer match, and
  adopts orphans that match — but only while the owner is not being deleted, and after one fresh
  read of the owner proves it still exists with the same uid (a stale cache must not adopt into a
  deleted owner).  Objects being deleted are never adopted.  Adoption and release are strategic
  merge patches of `metadata.ownerReferences` keyed by uid, carrying the object's uid, so they
  cannot land on a re-created namesake.
* `PodControl` records `SuccessfulCreate`/`FailedCreate` and `SuccessfulDelete`/`FailedDelete`
  events on the owner with upstream's wording ("Created pod: x", "Error creating: …").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from kubelite.client.events import NORMAL, WARNING, EventRecorder
from kubelite.client.interface import Client, builtin
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, name_of, namespace_of
from kubelite.machinery.resources import Resource
from kubelite.machinery.selectors import LabelSelector

log = logging.getLogger(__name__)

PODS = builtin("", "pods")


def owner_reference(owner: dict[str, Any], *, api_version: str, kind: str) -> dict[str, Any]:
    """A controller reference to `owner` that blocks its foreground deletion (as every workload
    controller sets it)."""
    meta = owner.get("metadata") or {}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def is_controlled_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    ref = controller_ref(obj)
    return bool(ref and ref.get("uid") == (owner.get("metadata") or {}).get("uid"))


def pod_from_template(
    template: dict[str, Any], owner: dict[str, Any], *, api_version: str, kind: str, generate_name: str | None = None
) -> dict[str, Any]:
    """A new pod from a pod template: its labels, annotations, finalizers and spec, controlled by
    `owner`, named `<owner name>-<random>` unless `generate_name` says otherwise."""
    template_meta = template.get("metadata") or {}
    meta: dict[str, Any] = {
        "generateName": generate_name if generate_name is not None else f"{name_of(owner)}-",
        "namespace": namespace_of(owner),
        "ownerReferences": [owner_reference(owner, api_version=api_version, kind=kind)],
    }
    for field in ("labels", "annotations", "finalizers"):
        if template_meta.get(field):
            meta[field] = deep_copy({"v": template_meta[field]})["v"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": deep_copy(template.get("spec") or {})}


async def claim(
    client: Client,
    resource: Resource,
    owner: dict[str, Any],
    selector: LabelSelector,
    candidates: Iterable[dict[str, Any]],
    *,
    owner_api_version: str,
    owner_kind: str,
    fresh_owner: Callable[[], Awaitable[dict[str, Any] | None]],
    finalizers: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The objects `owner` controls after adopting and releasing (see the module docstring).

    `fresh_owner` reads the owner from the API (not the cache); it is called at most once, before
    the first adoption.  `finalizers` are added in the same patch as the adoption (the Job
    controller's tracking finalizer), so no adopted object is ever without them.  Failed
    adoptions/releases are logged and skipped; NotFound is ignored.
    """
    owner_meta = owner.get("metadata") or {}
    owner_uid = owner_meta.get("uid")
    owner_deleting = bool(owner_meta.get("deletionTimestamp"))
    owned: list[dict[str, Any]] = []
    adoption_checked: bool | None = None
    for obj in candidates:
        ref = controller_ref(obj)
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if selector.matches(labels):
                owned.append(obj)
            elif not owner_deleting:
                await _release(client, resource, obj, owner_uid)
            continue
        if owner_deleting or (obj.get("metadata") or {}).get("deletionTimestamp") or not selector.matches(labels):
            continue
        if adoption_checked is None:
            fresh = await fresh_owner()
            adoption_checked = bool(
                fresh is not None
                and (fresh.get("metadata") or {}).get("uid") == owner_uid
                and not (fresh.get("metadata") or {}).get("deletionTimestamp")
            )
        if not adoption_checked:
            continue
        adopted = await _adopt(client, resource, obj, owner, owner_api_version, owner_kind, finalizers)
        if adopted is not None:
            owned.append(adopted)
    return owned


async def _adopt(
    client: Client,
    resource: Resource,
    obj: dict[str, Any],
    owner: dict[str, Any],
    api_version: str,
    kind: str,
    finalizers: Sequence[str],
) -> dict[str, Any] | None:
    meta = obj.get("metadata") or {}
    body: dict[str, Any] = {
        "metadata": {
            "ownerReferences": [owner_reference(owner, api_version=api_version, kind=kind)],
            "uid": meta.get("uid"),
        }
    }
    if finalizers:
        body["metadata"]["finalizers"] = list(finalizers)  # a merge list: added to the object's own
    try:
        return await client.patch(resource, name_of(obj), body, namespace_of(obj) or None, patch_type="strategic")
    except ApiError as exc:
        if exc.code != 404:
            log.warning("adoption failed", extra={"object": name_of(obj), "error": str(exc)})
        return None


async def _release(client: Client, resource: Resource, obj: dict[str, Any], owner_uid: str | None) -> None:
    meta = obj.get("metadata") or {}
    body = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": meta.get("uid")}}
    try:
        await client.patch(resource, name_of(obj), body, namespace_of(obj) or None, patch_type="strategic")
    except ApiError as exc:
        if exc.code not in (404, 422):
            log.warning("release failed", extra={"object": name_of(obj), "error": str(exc)})


class PodControl:
    """Creates and deletes a controller's pods, recording the upstream events on the owner."""

    def __init__(self, client: Client, recorder: EventRecorder) -> None:
        self.client = client
        self.recorder = recorder

    async def create(self, pod: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
        """POST `pod`; raises the ApiError after recording FailedCreate."""
        try:
            created = await self.client.create(PODS, pod, namespace_of(pod) or namespace_of(owner))
        except ApiError as exc:
            self.recorder.event(owner, WARNING, "FailedCreate", f"Error creating: {exc.message}")
            raise
        self.recorder.event(owner, NORMAL, "SuccessfulCreate", f"Created pod: {name_of(created)}")
        return created

    async def delete(self, pod: dict[str, Any], owner: dict[str, Any]) -> None:
        """DELETE `pod` (uid precondition); a pod already gone counts as deleted."""
        uid = (pod.get("metadata") or {}).get("uid")
        try:
            await self.client.delete(PODS, name_of(pod), namespace_of(pod), preconditions={"uid": uid} if uid else None)
        except ApiError as exc:
            if exc.code == 404:
                return
            self.recorder.event(owner, WARNING, "FailedDelete", f"Error deleting: {exc.message}")
            raise
        self.recorder.event(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {name_of(pod)}")


async def slow_start_batch(count: int, initial_batch_size: int, create_one: Callable[[], Awaitable[None]]) -> int:
    """Run `create_one` `count` times in batches of 1, 2, 4 … (from `initial_batch_size`), each batch
    concurrently; stop after the first batch with a failure.  Returns how many succeeded (upstream's
    slowStartBatch: a quota or admission error costs one call, not `count`)."""
    done = 0
    batch = min(count, max(1, initial_batch_size))
    while done < count and batch > 0:
        results = await asyncio.gather(*(create_one() for _ in range(batch)), return_exceptions=True)
        for result in results:
            if isinstance(result, asyncio.CancelledError):
                raise result
        ok = sum(1 for result in results if not isinstance(result, BaseException))
        done += ok
        if ok < batch:
            break
        batch = min(2 * batch, count - done)
    return done


__all__ = [
    "PODS",
    "PodControl",
    "claim",
    "controller_ref",
    "is_controlled_by",
    "owner_reference",
    "pod_from_template",
    "slow_start_batch",
]
