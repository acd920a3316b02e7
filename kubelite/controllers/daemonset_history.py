"""The DaemonSet controller's ControllerRevision writes (upstream constructHistory, snapshot,
dedupCurHistories and cleanupHistory); the decisions are the pure functions of `history`.

Contracts:

* `construct` returns (the current revision, the old ones).  It adopts matching orphan revisions
  and releases owned ones whose labels stopped matching (as pods are claimed), labels revisions
  without a `controller-revision-hash` by their name, creates the current revision when none has
  the template's data, deletes duplicates of it (after relabelling their pods), and renumbers it
  above every old revision.  Every write carries the cached resourceVersion or creates by name,
  so a stale cache costs a 409 and a retry, never a lost revision.
* A creation that finds the name taken by a revision with other data is a hash collision:
  `status.collisionCount` is raised (only when the cached count is not stale, else a 409 asks for
  a retry) and the AlreadyExists error is raised, so the next sync hashes with the new count.
* `cleanup` deletes old revisions beyond `revisionHistoryLimit`, lowest numbers first, never one
  whose hash a live pod carries.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kubelite.client.informer import Informer
from kubelite.client.interface import Client, builtin
from kubelite.controllers.history import (
    CONTROLLER_REVISION_HASH_LABEL,
    CONTROLLER_REVISIONS,
    REVISION_OWNER_INDEX,
    choose_current,
    compute_hash,
    history_limit,
    max_revision,
    new_revision,
    orphan_key,
    revision_hash,
    revision_number,
    revisions_to_trim,
    split_current,
    template_patch,
)
from kubelite.controllers.ownership import PODS, claim
from kubelite.machinery import errors
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, name_of, namespace_of
from kubelite.machinery.selectors import LabelSelector

log = logging.getLogger(__name__)

DAEMONSETS = builtin("apps", "daemonsets")
API_VERSION = "apps/v1"
KIND = "DaemonSet"

Pods = Callable[[], Awaitable[list[dict[str, Any]]]]
FreshOwner = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


async def ignore_not_found(call: Awaitable[Any]) -> None:
    """Await `call`; an object already gone is what we wanted."""
    try:
        await call
    except ApiError as exc:
        if exc.code != 404:
            raise


def pod_hashes(pods: Sequence[dict[str, Any]]) -> set[str]:
    """The `controller-revision-hash` values the pods carry."""
    found = set()
    for pod in pods:
        value = ((pod.get("metadata") or {}).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL)
        if value:
            found.add(str(value))
    return found


class DaemonSetHistory:
    """ControllerRevision bookkeeping for one controller; see the module docstring."""

    def __init__(self, client: Client, revisions: Informer, *, fresh_owner: FreshOwner) -> None:
        self.client = client
        self.revisions = revisions
        self._fresh_owner = fresh_owner

    async def construct(
        self, daemonset: dict[str, Any], selector: LabelSelector, *, pods: Pods
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(the current revision, the old ones); `pods` reads the DaemonSet's pods (for relabelling
        the pods of duplicates)."""
        namespace = namespace_of(daemonset)
        uid = str((daemonset.get("metadata") or {}).get("uid") or "")
        candidates = [
            *self.revisions.by_index(REVISION_OWNER_INDEX, uid),
            *self.revisions.by_index(REVISION_OWNER_INDEX, orphan_key(namespace)),
        ]
        owned = await claim(
            self.client,
            CONTROLLER_REVISIONS,
            daemonset,
            selector,
            candidates,
            owner_api_version=API_VERSION,
            owner_kind=KIND,
            fresh_owner=lambda: self._fresh_owner(daemonset),
        )
        labelled = [await self._ensure_hash_label(revision) for revision in owned]
        data = template_patch((daemonset.get("spec") or {}).get("template") or {})
        current, old = split_current(labelled, data)
        next_number = max_revision(old) + 1
        if not current:
            return await self._snapshot(daemonset, data, next_number), old
        keep, duplicates = choose_current(current)
        if duplicates:
            await self._dedupe(namespace, keep, duplicates, pods)
        if revision_number(keep) < next_number:
            body = deep_copy(keep)
            body["revision"] = next_number
            keep = await self.client.update(CONTROLLER_REVISIONS, body, namespace)
        return keep, old

    async def cleanup(self, daemonset: dict[str, Any], old: Sequence[dict[str, Any]], *, pods: Pods) -> None:
        """Trim `old` to revisionHistoryLimit, keeping revisions of live pods (finished included)."""
        limit = history_limit(daemonset)
        if len(old) <= limit:
            return
        live = pod_hashes(await pods())
        for revision in revisions_to_trim(old, limit, live):
            name = name_of(dict(revision))
            await ignore_not_found(self.client.delete(CONTROLLER_REVISIONS, name, namespace_of(daemonset)))

    async def _ensure_hash_label(self, revision: dict[str, Any]) -> dict[str, Any]:
        labels = (revision.get("metadata") or {}).get("labels") or {}
        if CONTROLLER_REVISION_HASH_LABEL in labels:
            return revision
        body = deep_copy(revision)
        body["metadata"]["labels"] = {**labels, CONTROLLER_REVISION_HASH_LABEL: name_of(revision)}
        return await self.client.update(CONTROLLER_REVISIONS, body, namespace_of(revision))

    async def _snapshot(self, daemonset: dict[str, Any], data: dict[str, Any], number: int) -> dict[str, Any]:
        """Create the current revision, handling a name clash (see the module docstring)."""
        namespace = namespace_of(daemonset)
        template = (daemonset.get("spec") or {}).get("template") or {}
        collisions = (daemonset.get("status") or {}).get("collisionCount")
        revision = new_revision(
            daemonset,
            api_version=API_VERSION,
            kind=KIND,
            data=data,
            revision=number,
            hash_value=compute_hash(template, collisions),
            labels=(template.get("metadata") or {}).get("labels"),
        )
        try:
            return await self.client.create(CONTROLLER_REVISIONS, revision, namespace)
        except ApiError as exc:
            if exc.code != 409 or exc.reason != "AlreadyExists":
                raise
            clash = exc
        existing = await self.client.get(CONTROLLER_REVISIONS, name_of(revision), namespace)
        if existing.get("data") == data:
            return existing  # ours, from a sync whose cache had not seen it yet
        fresh = await self.client.get(DAEMONSETS, name_of(daemonset), namespace)
        status = fresh.get("status") or {}
        if status.get("collisionCount") != collisions:
            why = f"found a stale collision count ({collisions}, expected {status.get('collisionCount')})"
            raise errors.conflict(DAEMONSETS.plural, DAEMONSETS.group, name_of(daemonset), why)
        fresh["status"] = {**status, "collisionCount": int(collisions or 0) + 1}
        await self.client.update(DAEMONSETS, fresh, namespace, subresource="status")
        log.info(
            "hash collision; bumping collisionCount",
            extra={"daemonset": f"{namespace}/{name_of(daemonset)}", "collisionCount": int(collisions or 0) + 1},
        )
        raise clash

    async def _dedupe(
        self, namespace: str, keep: dict[str, Any], duplicates: Sequence[dict[str, Any]], pods: Pods
    ) -> None:
        """Relabel the pods of duplicate revisions with the kept one's hash, then delete them.
        (Upstream relabels every pod lacking the kept hash, which would also mark pods of older
        templates as updated; only the duplicates' pods are relabelled here.)"""
        keep_hash = revision_hash(keep)
        doomed = {revision_hash(d) for d in duplicates} - {keep_hash}
        for pod in await pods():
            if ((pod.get("metadata") or {}).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL) in doomed:
                body = {"metadata": {"labels": {CONTROLLER_REVISION_HASH_LABEL: keep_hash}}}
                await ignore_not_found(self.client.patch(PODS, name_of(pod), body, namespace))
        for duplicate in duplicates:
            await ignore_not_found(self.client.delete(CONTROLLER_REVISIONS, name_of(duplicate), namespace))


__all__ = ["API_VERSION", "DAEMONSETS", "KIND", "DaemonSetHistory", "ignore_not_found", "pod_hashes"]
