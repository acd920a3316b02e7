"""The `Client` protocol: the Kubernetes verbs every component uses to reach the API.

Objects are plain JSON dicts (as Kubernetes' unstructured objects); a `Resource` from
`kubelite.machinery.resources` says where they live.  Implementations: `HttpClient` (HTTPS from a
kubeconfig) and `kubelite.testing.fake_client.FakeClient` (in memory, for unit tests); an in-process
client can come later behind the same protocol.

Contracts shared by every implementation:

* Failures the API reports raise `kubelite.machinery.errors.ApiError` with the server's `code`,
  `reason` and message (404 NotFound, 409 AlreadyExists / Conflict, 410 Expired, 422 Invalid, ...).
  Failures to reach the API raise `TransportError` (see `kubelite.client.errors`).
* Returned dicts belong to the caller: no implementation keeps or changes them afterwards.
* `namespace=None` for a namespaced resource means "all namespaces" for `list`/`watch`, and the
  object's `metadata.namespace` for `create`/`update`; a namespaced call with no namespace at all
  raises `ValueError`.
* `watch` yields ADDED, MODIFIED, DELETED and BOOKMARK events in resourceVersion order.  An ERROR
  event from the server ends the iteration by raising its `ApiError` (a 410 Expired means: list
  again).  The stream ends normally when the server closes it (`timeout_seconds`).  The iterator
  holds a connection until it is exhausted, closed (`contextlib.aclosing`) or its task is cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

from kubelite.machinery.resources import BUILTIN_RESOURCES, Resource, ResourceRegistry

PatchType = Literal["merge", "strategic", "json"]
PropagationPolicy = Literal["Orphan", "Background", "Foreground"]
EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


class WatchEvent(NamedTuple):
    """One watch event: `type` and the object (for BOOKMARK only `metadata.resourceVersion` counts)."""

    type: str
    object: dict[str, Any]


@dataclass(frozen=True, order=True)
class ObjectKey:
    """Names one object of a resource; `str()` is the cache key form `"ns/name"` (or `"name"`)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectKey:
        meta = obj.get("metadata") or {}
        return cls(str(meta.get("namespace") or ""), str(meta.get("name") or ""))

    @classmethod
    def parse(cls, key: str) -> ObjectKey:
        namespace, _, name = key.rpartition("/")
        return cls(namespace, name)


def key_of(obj: dict[str, Any]) -> str:
    """The cache key of `obj`: `"namespace/name"`, or `"name"` for cluster-scoped objects."""
    return str(ObjectKey.of(obj))


class Client(Protocol):
    """The API verbs on `(resource, namespace, name)`.  See the module docstring for the contracts."""

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        """The object, or ApiError 404."""
        ...

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """The List object; `metadata.resourceVersion` is where a watch continues from and
        `metadata.continue` (with `limit`) the token for the next page."""
        ...

    def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[WatchEvent]:
        """Changes after `resource_version` (None or "0": ADDED for every current object first)."""
        ...

    async def create(
        self, resource: Resource, obj: dict[str, Any], namespace: str | None = None, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """The created object as stored (uid, resourceVersion, defaults)."""
        ...

    async def update(
        self,
        resource: Resource,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Replace (PUT); a `metadata.resourceVersion` in `obj` makes it compare-and-swap (409 Conflict)."""
        ...

    async def patch(
        self,
        resource: Resource,
        name: str,
        body: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Apply a merge patch (dict), strategic merge patch (dict) or JSON patch (list of operations)."""
        ...

    async def delete(
        self,
        resource: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: PropagationPolicy | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The server's answer: the object (still there with deletionTimestamp when finalizers or a
        grace period hold it) or a Status.  `preconditions`: `{"uid": …, "resourceVersion": …}`."""
        ...

    async def create_subresource(
        self, resource: Resource, name: str, subresource: str, body: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """POST to a subresource (`pods/binding`, `pods/eviction`, `serviceaccounts/token`)."""
        ...


# --- resource lookups ----------------------------------------------------------------------------

_BY_KIND = {(r.api_version, r.kind): r for r in BUILTIN_RESOURCES}
_BY_PLURAL: dict[tuple[str, str], Resource] = {}
for _resource in BUILTIN_RESOURCES:
    if _resource.preferred or (_resource.group, _resource.plural) not in _BY_PLURAL:
        _BY_PLURAL[(_resource.group, _resource.plural)] = _resource
_BY_VERSION = {(r.group, r.version, r.plural): r for r in BUILTIN_RESOURCES}
del _resource


def resource_for(api_version: str, kind: str, *, registry: ResourceRegistry | None = None) -> Resource:
    """The resource serving `kind` in `api_version` ("v1", "apps/v1"); LookupError if unknown.

    Without `registry` only built-in resources are known; pass the registry that knows CRDs.
    """
    if registry is not None:
        group, _, version = api_version.rpartition("/")
        found = registry.by_kind(group, version, kind)
    else:
        found = _BY_KIND.get((api_version, kind))
    if found is None:
        raise LookupError(f"no resource serves kind {kind!r} in {api_version!r}")
    return found


def builtin(group: str, plural: str, version: str | None = None) -> Resource:
    """A built-in resource by group ("" for core) and plural, in its preferred version unless given."""
    found = _BY_PLURAL.get((group, plural)) if version is None else _BY_VERSION.get((group, version, plural))
    if found is None:
        where = f"{group}/{version}" if version else group or "core"
        raise LookupError(f"no built-in resource {plural!r} in {where!r}")
    return found


def require_namespace(resource: Resource, namespace: str | None, obj: dict[str, Any] | None = None) -> str | None:
    """The namespace a single-object call addresses: the argument, else the object's; None when
    cluster-scoped.  ValueError for a namespaced resource with neither."""
    if not resource.namespaced:
        return None
    if not namespace and obj is not None:
        namespace = (obj.get("metadata") or {}).get("namespace")
    if not namespace:
        raise ValueError(f"{resource.qualified} is namespaced: a namespace is required")
    return namespace


__all__ = [
    "PATCH_CONTENT_TYPES",
    "Client",
    "EventType",
    "ObjectKey",
    "PatchType",
    "PropagationPolicy",
    "WatchEvent",
    "builtin",
    "key_of",
    "require_namespace",
    "resource_for",
]
