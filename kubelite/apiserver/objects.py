"""The generic object store: upstream's `genericregistry.Store`, HTTP-agnostic.

It turns API verbs into storage writes with Kubernetes semantics: metadata the server owns (uid,
creationTimestamp, generation, resourceVersion), generateName, defaults and validation, the `status`
subresource split, compare-and-swap updates with retries for patches, graceful deletion,
finalizers and deletion preconditions.  Reads come from the watch cache; each write waits until the
cache has seen it, so a client always reads its own writes.

All failures leave as `ApiError`; storage errors are translated here, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson

from kubelite.apiserver.registry import strategy
from kubelite.machinery import errors
from kubelite.machinery.errors import Cause
from kubelite.machinery.meta import deep_copy, generate_name, new_uid, now, rfc3339
from kubelite.machinery.resources import Resource
from kubelite.storage.cache import Entry, WatchCache
from kubelite.storage.interface import Backend, KeyExists, KeyNotFound, RevisionMismatch

log = logging.getLogger(__name__)

MAX_PATCH_RETRIES = 10
OPTIMISTIC_LOCK_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again"


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    warnings: list[str] = field(default_factory=list)


@dataclass
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    precondition_uid: str | None = None
    precondition_resource_version: str | None = None
    dry_run: bool = False


def encode_for_storage(obj: dict[str, Any]) -> bytes:
    """Objects are stored without resourceVersion: the revision is the key's mod_revision."""
    meta = obj.get("metadata") or {}
    if "resourceVersion" in meta:
        meta = {k: v for k, v in meta.items() if k != "resourceVersion"}
        obj = {**obj, "metadata": meta}
    return orjson.dumps(obj)


class ObjectStore:
    """Kubernetes semantics over a `Backend`, reads from a `WatchCache`."""

    def __init__(self, backend: Backend, cache: WatchCache) -> None:
        self.backend = backend
        self.cache = cache

    # -- reads ------------------------------------------------------------------------------------

    def get_entry(self, resource: Resource, namespace: str | None, name: str) -> Entry:
        entry = self.cache.get(resource.key(namespace, name))
        if entry is None:
            raise errors.not_found(resource.plural, resource.group, name)
        return entry

    def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return self.get_entry(resource, namespace, name).obj

    def list_entries(self, resource: Resource, namespace: str | None) -> list[Entry]:
        return self.cache.list(resource.collection_prefix(namespace))

    # -- writes -----------------------------------------------------------------------------------

    async def create(
        self, resource: Resource, namespace: str | None, obj: dict[str, Any], options: WriteOptions
    ) -> dict[str, Any]:
        obj = deep_copy(obj)
        meta = obj.setdefault("metadata", {})
        obj["apiVersion"] = resource.api_version
        obj["kind"] = resource.kind
        if resource.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])
        if not meta.get("name"):
            raise errors.invalid(
                resource.kind,
                resource.group,
                "",
                [
                    Cause(
                        "FieldValueRequired",
                        "Required value: name or generateName is required",
                        "metadata.name",
                    )
                ],
            )
        for server_owned in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "selfLink",
        ):
            meta.pop(server_owned, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = rfc3339(now())
        strategy.prepare_for_create(resource, obj)
        self._check_namespace_accepts(resource, namespace)
        strategy.validate(resource, obj, None)
        if options.dry_run:
            if self.cache.get(resource.key(namespace, meta["name"])) is not None:
                raise errors.already_exists(resource.plural, resource.group, meta["name"])
            return obj
        key = resource.key(namespace, meta["name"])
        try:
            revision = await self.backend.create(key, encode_for_storage(obj))
        except KeyExists:
            raise errors.already_exists(resource.plural, resource.group, meta["name"]) from None
        return await self._read_back(key, revision, obj)

    async def update(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        obj: dict[str, Any],
        options: WriteOptions,
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        """PUT: the body replaces the object; `metadata.resourceVersion`, when set, must match."""
        meta = obj.get("metadata") or {}
        if meta.get("name") not in (None, "", name):
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        current = self.get_entry(resource, namespace, name)
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and str(wanted_rv) != str(current.revision):
            raise errors.conflict(resource.plural, resource.group, name, OPTIMISTIC_LOCK_MESSAGE)
        return await self._write_update(resource, namespace, name, current, obj, options, subresource)

    async def guaranteed_update(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        mutate: Callable[[dict[str, Any]], dict[str, Any]],
        options: WriteOptions,
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        """Read, `mutate` a copy, write with compare-and-swap; retry on conflicts (patches use this).

        A resourceVersion the mutation puts into the object (a patch that carries one) is a
        precondition and is not retried.
        """
        for _attempt in range(MAX_PATCH_RETRIES):
            current = self.get_entry(resource, namespace, name)
            updated = mutate(deep_copy(current.obj))
            wanted_rv = (updated.get("metadata") or {}).get("resourceVersion")
            if wanted_rv and str(wanted_rv) != str(current.revision):
                raise errors.conflict(resource.plural, resource.group, name, OPTIMISTIC_LOCK_MESSAGE)
            try:
                return await self._write_update(resource, namespace, name, current, updated, options, subresource)
            except _Retry:
                continue
        raise errors.conflict(resource.plural, resource.group, name, OPTIMISTIC_LOCK_MESSAGE)

    async def _write_update(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        current: Entry,
        obj: dict[str, Any],
        options: WriteOptions,
        subresource: str,
    ) -> dict[str, Any]:
        old = current.obj
        new = deep_copy(obj)
        new["apiVersion"] = resource.api_version
        new["kind"] = resource.kind
        strategy.prepare_for_update(resource, new, old, subresource=subresource)
        strategy.validate(resource, new, old, subresource)
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not strategy.needs_finalize(resource, new):
            # the last finalizer went away on an object being deleted: it is gone now
            if options.dry_run:
                return new
            return await self._delete_now(resource, namespace, name, current, options.dry_run)
        if _same(new, old):
            return old
        if options.dry_run:
            meta["resourceVersion"] = str(current.revision)
            return new
        key = resource.key(namespace, name)
        try:
            revision = await self.backend.update(key, encode_for_storage(new), expected_revision=current.revision)
        except RevisionMismatch:
            raise _Retry() from None
        except KeyNotFound:
            raise errors.not_found(resource.plural, resource.group, name) from None
        return await self._read_back(key, revision, new)

    async def delete(
        self, resource: Resource, namespace: str | None, name: str, options: DeleteOptions
    ) -> tuple[dict[str, Any], bool]:
        """Returns (object, deleted_now).  When not deleted now, the object carries deletionTimestamp."""
        for _attempt in range(MAX_PATCH_RETRIES):
            current = self.get_entry(resource, namespace, name)
            meta = current.obj.get("metadata") or {}
            if options.precondition_uid and options.precondition_uid != meta.get("uid"):
                raise errors.conflict(
                    resource.plural,
                    resource.group,
                    name,
                    f"Precondition failed: UID in precondition: {options.precondition_uid}, "
                    f"UID in object meta: {meta.get('uid')}",
                )
            if options.precondition_resource_version and options.precondition_resource_version != str(current.revision):
                raise errors.conflict(
                    resource.plural,
                    resource.group,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {options.precondition_resource_version}, "
                    f"ResourceVersion in object meta: {current.revision}",
                )
            grace = strategy.grace_period(resource, current.obj, options.grace_period_seconds)
            finalizers = list(meta.get("finalizers") or [])
            if (
                options.propagation_policy == "Foreground"
                and "foregroundDeletion" not in finalizers
                and strategy.has_dependents_semantics(resource)
            ):
                finalizers.append("foregroundDeletion")
            elif (
                options.propagation_policy == "Orphan"
                and "orphan" not in finalizers
                and strategy.has_dependents_semantics(resource)
            ):
                finalizers.append("orphan")
            if not finalizers and not grace and not strategy.needs_finalize(resource, current.obj):
                try:
                    return await self._delete_now(resource, namespace, name, current, options.dry_run), True
                except _Retry:
                    continue
            # graceful: mark, keep, let finalizers/the kubelet/the namespace controller finish
            updated = deep_copy(current.obj)
            umeta = updated["metadata"]
            umeta["finalizers"] = finalizers or umeta.get("finalizers")
            if not umeta.get("finalizers"):
                umeta.pop("finalizers", None)
            if umeta.get("deletionTimestamp"):
                # already being deleted: only a shorter grace period is taken (as upstream)
                old_grace = umeta.get("deletionGracePeriodSeconds")
                if grace is not None and old_grace is not None and grace < old_grace:
                    umeta["deletionGracePeriodSeconds"] = grace
                    umeta["deletionTimestamp"] = rfc3339(now() + timedelta(seconds=grace))
                    if grace == 0 and not umeta.get("finalizers"):
                        try:
                            return await self._delete_now(resource, namespace, name, current, options.dry_run), True
                        except _Retry:
                            continue
                else:
                    return current.obj, False
            else:
                umeta["deletionTimestamp"] = rfc3339(now() + timedelta(seconds=grace or 0))
                umeta["deletionGracePeriodSeconds"] = grace or 0
                strategy.prepare_for_delete(resource, updated)
            if options.dry_run:
                return updated, False
            key = resource.key(namespace, name)
            try:
                revision = await self.backend.update(
                    key, encode_for_storage(updated), expected_revision=current.revision
                )
            except RevisionMismatch:
                continue
            except KeyNotFound:
                raise errors.not_found(resource.plural, resource.group, name) from None
            return await self._read_back(key, revision, updated), False
        raise errors.conflict(resource.plural, resource.group, name, OPTIMISTIC_LOCK_MESSAGE)

    async def _delete_now(
        self, resource: Resource, namespace: str | None, name: str, current: Entry, dry_run: bool
    ) -> dict[str, Any]:
        if dry_run:
            return current.obj
        key = resource.key(namespace, name)
        try:
            revision, _ = await self.backend.delete(key, expected_revision=current.revision)
        except RevisionMismatch:
            raise _Retry() from None
        except KeyNotFound:
            raise errors.not_found(resource.plural, resource.group, name) from None
        await self.cache.wait_for_revision(revision)
        gone = deep_copy(current.obj)
        gone["metadata"]["resourceVersion"] = str(revision)
        return gone

    async def _read_back(self, key: str, revision: int, fallback: dict[str, Any]) -> dict[str, Any]:
        await self.cache.wait_for_revision(revision)
        entry = self.cache.get(key)
        if entry is not None and entry.revision == revision:
            return entry.obj
        fallback = deep_copy(fallback)
        fallback["metadata"]["resourceVersion"] = str(revision)
        return fallback

    def _check_namespace_accepts(self, resource: Resource, namespace: str | None) -> None:
        if not resource.namespaced:
            return
        entry = self.cache.get(f"/registry/core/namespaces/{namespace}")
        if entry is None:
            raise errors.not_found("namespaces", "", namespace or "")
        if (entry.obj.get("metadata") or {}).get("deletionTimestamp") or (
            (entry.obj.get("status") or {}).get("phase") == "Terminating"
        ):
            refused = errors.forbidden(
                resource.plural,
                resource.group,
                "",
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )
            # upstream's cause, which clients (and the namespace's own controllers) recognise
            refused.causes.append(
                errors.Cause("NamespaceTerminating", f"namespace {namespace} is being terminated", "metadata.namespace")
            )
            raise refused


class _Retry(Exception):
    """A compare-and-swap lost a race; the caller re-reads and tries again."""


def _same(new: dict[str, Any], old: dict[str, Any]) -> bool:
    strip = {"resourceVersion", "managedFields"}
    new_meta = {k: v for k, v in (new.get("metadata") or {}).items() if k not in strip}
    old_meta = {k: v for k, v in (old.get("metadata") or {}).items() if k not in strip}
    if new_meta != old_meta:
        return False
    rest_new = {k: v for k, v in new.items() if k != "metadata"}
    rest_old = {k: v for k, v in old.items() if k != "metadata"}
    return rest_new == rest_old


__all__ = ["DeleteOptions", "ObjectStore", "WriteOptions"]
