"""The namespace controller: empties a namespace that is being deleted, then lets it go (upstream's
pkg/controller/namespace and its namespaced-resources deleter).

Contracts:

* Only namespaces carrying a deletionTimestamp are worked on.  Each pass reads the namespace from the
  API, not the cache (several writers edit a terminating namespace), sets its phase Terminating
  if it is not yet, and — unless `spec.finalizers` is already empty — deletes every object of every
  deletable namespaced resource (Background propagation; objects already being deleted are left
  to finish), lists again, and records what is left in the five deletion conditions of the
  namespace's status.  Conditions are written through `namespaces/status`, only when they change.
* Objects with finalizers and pods in their grace period are waited for, never forced: finalizers
  belong to other controllers and pods to the node agent.
* When nothing is left, "kubernetes" is removed from `spec.finalizers` through
  `namespaces/finalize`; the API server deletes the namespace once no finalizer of either kind
  remains.
* Pacing, as upstream: a namespace event is acted on `deletion_grace_seconds` (5 s) after it
  arrives, so that writes racing the deletion have landed.  Content that is still going away brings
  the namespace back after `estimate / 2 + 1` seconds, where the estimate is the longest grace
  period of a pod still running (until that long has passed since the namespace's deletion) or
  15 s for objects held by finalizers.  A pass that could not delete or list some resource is
  repeated with a per-namespace back-off from 5 ms to 60 s (upstream's); other failures (the API
  unreachable) with the controller's usual back-off.  Nothing else (no pod or object event)
  starts a pass.
* Idempotent and safe to restart: every pass starts from what the API says now.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubelite.client.errors import TransportError
from kubelite.client.interface import builtin
from kubelite.client.workqueue import ItemExponentialRateLimiter
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, name_of, parse_time, rfc3339
from kubelite.machinery.resources import BUILTIN_RESOURCES, Resource

log = logging.getLogger(__name__)

NAMESPACES = builtin("", "namespaces")

FINALIZER_KUBERNETES = "kubernetes"
NAMESPACE_DELETION_GRACE_SECONDS = 5.0  # upstream's namespaceDeletionGracePeriod
FINALIZER_ESTIMATE_SECONDS = 15  # upstream's guess for finalizers to finish
RETRY_BASE_DELAY = 0.005
RETRY_MAX_DELAY = 60.0  # upstream's namespace controller retries at least every minute
MAX_CONCURRENT_REQUESTS = 16
MAX_CONFLICT_RETRIES = 5
LIST_PAGE_SIZE = 500

# The condition types the deleter owns, in the order upstream first writes them.
DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
GROUP_VERSION_PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
CONDITION_TYPES = (
    DISCOVERY_FAILURE,
    GROUP_VERSION_PARSING_FAILURE,
    CONTENT_FAILURE,
    CONTENT_REMAINING,
    FINALIZERS_REMAINING,
)
# (reason, message) of each condition when nothing is wrong: status "False"
OK_CONDITIONS: dict[str, tuple[str, str]] = {
    DISCOVERY_FAILURE: ("ResourcesDiscovered", "All resources successfully discovered"),
    GROUP_VERSION_PARSING_FAILURE: ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    CONTENT_FAILURE: ("ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    CONTENT_REMAINING: ("ContentRemoved", "All content successfully removed"),
    FINALIZERS_REMAINING: ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


# -- the decisions (pure) ---------------------------------------------------------------------------


def deletable_resources(resources: Iterable[Resource]) -> list[Resource]:
    """What a namespace is emptied of: namespaced, stored resources in their group's preferred
    version that can be listed and deleted.  A resource stored as another group's (events.k8s.io
    Events are core Events) is left out: deleting the objects once is enough."""
    found: list[Resource] = []
    seen: set[tuple[str, str]] = set()
    for resource in resources:
        if not (resource.namespaced and resource.stored and resource.preferred):
            continue
        if "list" not in resource.verbs or "delete" not in resource.verbs:
            continue
        if resource.storage_group is not None and resource.storage_group != resource.group:
            continue
        if (resource.group, resource.plural) in seen:
            continue
        seen.add((resource.group, resource.plural))
        found.append(resource)
    return found


def group_version_resource(resource: Resource) -> str:
    """How upstream prints a GroupVersionResource: "apps/v1, Resource=deployments"."""
    return f"{resource.group}/{resource.version}, Resource={resource.plural}"


def is_namespace_active(namespace: Mapping[str, Any]) -> bool:
    """Whether objects may be created in it: phase Active and not being deleted."""
    if (namespace.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (namespace.get("status") or {}).get("phase") == "Active"


def pod_grace_estimate(pods: Iterable[Mapping[str, Any]], *, deleted_at: datetime, now: datetime) -> int:
    """Seconds the namespace's pods may still need: the longest terminationGracePeriodSeconds of a
    pod that has not finished, or 0 once that long has passed since the namespace was deleted."""
    estimate = 0
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        if grace is not None and int(grace) > estimate:
            estimate = int(grace)
    if (now - deleted_at).total_seconds() >= estimate:
        return 0
    return estimate


@dataclass(frozen=True)
class ResourceOutcome:
    """What one pass left of one resource: how many objects, held by which finalizers, how long to
    wait before looking again, and what went wrong (upstream's gvrDeletionMetadata and error)."""

    resource: Resource
    remaining: int = 0
    finalizers: Mapping[str, int] = field(default_factory=dict)
    estimate: int = 0
    error: str | None = None


def assess_remaining(
    resource: Resource, namespace: str, remaining: Sequence[Mapping[str, Any]], estimate: int
) -> ResourceOutcome:
    """Judge what is left after the deletes: nothing is done; objects with a grace estimate or with
    finalizers are expected to go (wait); anything else should have gone and is an error."""
    if not remaining:
        return ResourceOutcome(resource)
    finalizers: Counter[str] = Counter()
    for item in remaining:
        finalizers.update((item.get("metadata") or {}).get("finalizers") or ())
    if estimate:
        return ResourceOutcome(resource, len(remaining), dict(finalizers), estimate)
    if finalizers:
        return ResourceOutcome(resource, len(remaining), dict(finalizers), FINALIZER_ESTIMATE_SECONDS)
    message = f"unexpected items still remain in namespace: {namespace} for gvr: {group_version_resource(resource)}"
    return ResourceOutcome(resource, len(remaining), error=message)


def failure_conditions(
    outcomes: Iterable[ResourceOutcome],
    *,
    discovery_error: str | None = None,
    group_version_error: str | None = None,
) -> list[dict[str, str]]:
    """The conditions that report a problem (status "True"), with upstream's reasons and messages;
    a type without one here is reported as fine."""
    outcomes = list(outcomes)
    found: list[dict[str, str]] = []
    if discovery_error:
        found.append(_true(DISCOVERY_FAILURE, "DiscoveryFailed", discovery_error))
    if group_version_error:
        found.append(_true(GROUP_VERSION_PARSING_FAILURE, "GroupVersionParsingFailed", group_version_error))
    errors = sorted(o.error for o in outcomes if o.error)
    if errors:
        message = f"Failed to delete all resource types, {len(errors)} remaining: {', '.join(errors)}"
        found.append(_true(CONTENT_FAILURE, "ContentDeletionFailed", message))
    resources = sorted(
        f"{o.resource.plural}.{o.resource.group} has {o.remaining} resource instances" for o in outcomes if o.remaining
    )
    if resources:
        found.append(
            _true(CONTENT_REMAINING, "SomeResourcesRemain", f"Some resources are remaining: {', '.join(resources)}")
        )
    totals: Counter[str] = Counter()
    for outcome in outcomes:
        if outcome.remaining:
            totals.update({k: v for k, v in outcome.finalizers.items() if v})
    if totals:
        held = sorted(f"{finalizer} in {count} resource instances" for finalizer, count in totals.items())
        message = f"Some content in the namespace has finalizers remaining: {', '.join(held)}"
        found.append(_true(FINALIZERS_REMAINING, "SomeFinalizersRemain", message))
    return found


def _true(kind: str, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": "True", "reason": reason, "message": message}


def merge_conditions(
    existing: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, str]], *, now: str
) -> tuple[list[dict[str, Any]], bool]:
    """The namespace's conditions after a pass, and whether they changed.

    Every owned type ends up present: a failure where one was found, else its "False" variant.
    A condition is rewritten only when its status, reason or message differ, and its
    lastTransitionTime moves only when its status does.  Other condition types are kept.
    """
    conditions = [dict(c) for c in existing]
    changed = False
    for kind in CONDITION_TYPES:
        wanted = next((dict(f) for f in failures if f.get("type") == kind), None)
        if wanted is None:
            reason, message = OK_CONDITIONS[kind]
            wanted = {"type": kind, "status": "False", "reason": reason, "message": message}
        old = next((c for c in conditions if c.get("type") == kind), None)
        if old is None:
            conditions.append({**wanted, "lastTransitionTime": now})
            changed = True
        elif any(old.get(k) != wanted[k] for k in ("status", "reason", "message")):
            if old.get("status") != wanted["status"]:
                old["lastTransitionTime"] = now
            old.update(wanted)
            changed = True
    return conditions, changed


def finalizers_after_release(finalizers: Iterable[str]) -> list[str]:
    """`spec.finalizers` without "kubernetes" (sorted, without duplicates, as upstream writes it)."""
    return sorted({f for f in finalizers if f != FINALIZER_KUBERNETES})


def requeue_seconds(estimate: int) -> int:
    """When to look again at content expected to go within `estimate` seconds (upstream's)."""
    return estimate // 2 + 1


# -- the controller ---------------------------------------------------------------------------------


class NamespaceController(Controller):
    """Deletes the content of namespaces being deleted and releases them; see the module docstring.

    `resources`: what namespaces are emptied of (default: every deletable built-in resource; pass
    more to include custom resources).
    """

    name = "namespace-controller"

    def __init__(
        self,
        context: ControllerContext,
        *,
        resources: Sequence[Resource] | None = None,
        deletion_grace_seconds: float = NAMESPACE_DELETION_GRACE_SECONDS,
        max_concurrent_requests: int = MAX_CONCURRENT_REQUESTS,
    ) -> None:
        super().__init__(context)
        self.resources = deletable_resources(BUILTIN_RESOURCES if resources is None else resources)
        self.deletion_grace_seconds = deletion_grace_seconds
        self.max_concurrent_requests = max(1, max_concurrent_requests)
        self._failures = ItemExponentialRateLimiter(RETRY_BASE_DELAY, RETRY_MAX_DELAY)
        self.namespaces = self.informer(NAMESPACES)
        self.namespaces.add_handler(self._observed, lambda _old, new: self._observed(new))

    def _observed(self, namespace: dict[str, Any]) -> None:
        if (namespace.get("metadata") or {}).get("deletionTimestamp"):
            self.queue.add_after(name_of(namespace), self.deletion_grace_seconds)

    async def reconcile(self, key: str) -> None:
        cached = self.namespaces.get(key)
        if cached is None or not (cached.get("metadata") or {}).get("deletionTimestamp"):
            return
        namespace = await self._fresh(key)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return
        namespace = await self._ensure_terminating(namespace)
        if namespace is None or not (namespace.get("spec") or {}).get("finalizers"):
            return  # released already: the API server deletes it when its metadata.finalizers are done
        namespace, outcomes = await self._delete_all_content(namespace)
        errors = sorted(o.error for o in outcomes if o.error)
        if errors:
            delay = self._failures.when(key)
            log.warning(
                "namespace content deletion failed; retrying",
                extra={"controller": self.name, "namespace": key, "errors": errors, "retry_seconds": delay},
            )
            self.queue.add_after(key, delay)
            return
        self._failures.forget(key)
        estimate = max((o.estimate for o in outcomes), default=0)
        if estimate > 0:
            log.debug(
                "content remaining in namespace",
                extra={"controller": self.name, "namespace": key, "estimate_seconds": estimate},
            )
            self.queue.add_after(key, requeue_seconds(estimate))
            return
        await self._release(namespace)

    # -- namespace writes ---------------------------------------------------------------------------

    async def _fresh(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.client.get(NAMESPACES, name)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def _retry_on_conflict(
        self, namespace: dict[str, Any], write: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any] | None:
        """`write(namespace)`, re-reading the namespace after each conflict (the same one: same uid).
        None when the namespace is gone or was replaced."""
        latest = namespace
        for attempt in range(MAX_CONFLICT_RETRIES):
            try:
                return await write(latest)
            except ApiError as exc:
                if exc.code == 404:
                    return None
                if exc.code != 409 or attempt == MAX_CONFLICT_RETRIES - 1:
                    raise
            fresh = await self._fresh(name_of(namespace))
            if fresh is None or fresh["metadata"].get("uid") != namespace["metadata"].get("uid"):
                return None
            latest = fresh
        return None  # not reached: the last attempt returns or raises

    async def _ensure_terminating(self, namespace: dict[str, Any]) -> dict[str, Any] | None:
        if (namespace.get("status") or {}).get("phase") == "Terminating":
            return namespace

        async def write(latest: dict[str, Any]) -> dict[str, Any]:
            if (latest.get("status") or {}).get("phase") == "Terminating":
                return latest
            updated = deep_copy(latest)
            updated.setdefault("status", {})["phase"] = "Terminating"
            return await self.client.update(NAMESPACES, updated, subresource="status")

        return await self._retry_on_conflict(namespace, write)

    async def _release(self, namespace: dict[str, Any]) -> None:
        async def write(latest: dict[str, Any]) -> dict[str, Any]:
            released = deep_copy(latest)
            spec = released.setdefault("spec", {})
            spec["finalizers"] = finalizers_after_release(spec.get("finalizers") or ())
            return await self.client.update(NAMESPACES, released, subresource="finalize")

        if await self._retry_on_conflict(namespace, write) is not None:
            log.info(
                "namespace content removed; finalized", extra={"controller": self.name, "namespace": name_of(namespace)}
            )

    async def _write_conditions(self, namespace: dict[str, Any], outcomes: Sequence[ResourceOutcome]) -> dict[str, Any]:
        """Record the pass in the status conditions; a failed write is logged, not fatal (the next
        pass writes them again), as upstream."""
        conditions, changed = merge_conditions(
            (namespace.get("status") or {}).get("conditions") or (),
            failure_conditions(outcomes),
            now=rfc3339(self.clock.utcnow()),
        )
        if not changed:
            return namespace
        updated = deep_copy(namespace)
        updated.setdefault("status", {})["conditions"] = conditions
        try:
            return await self.client.update(NAMESPACES, updated, subresource="status")
        except ApiError as exc:
            log.warning(
                "namespace status conditions not written",
                extra={"controller": self.name, "namespace": name_of(namespace), "error": str(exc)},
            )
            return namespace

    # -- emptying the namespace ---------------------------------------------------------------------

    async def _delete_all_content(self, namespace: dict[str, Any]) -> tuple[dict[str, Any], list[ResourceOutcome]]:
        """One pass over every resource, concurrently but with at most `max_concurrent_requests`
        requests in flight; returns the namespace as written with the new conditions."""
        name = name_of(namespace)
        deleted_at = parse_time(namespace["metadata"]["deletionTimestamp"])
        limit = asyncio.Semaphore(self.max_concurrent_requests)
        async with asyncio.TaskGroup() as tasks:
            pending = [tasks.create_task(self._empty(r, name, deleted_at, limit)) for r in self.resources]
        outcomes = [task.result() for task in pending]
        return await self._write_conditions(namespace, outcomes), outcomes

    async def _empty(
        self, resource: Resource, namespace: str, deleted_at: datetime, limit: asyncio.Semaphore
    ) -> ResourceOutcome:
        """Delete every object of `resource` in `namespace`, then judge what is left."""
        try:
            items = await self._list(resource, namespace, limit)
        except (ApiError, TransportError) as exc:
            if isinstance(exc, ApiError) and exc.code in (404, 405):
                return ResourceOutcome(resource)  # not served here: nothing to delete
            return ResourceOutcome(resource, error=str(exc) or repr(exc))
        if not items:
            return ResourceOutcome(resource)
        estimate = 0
        if (resource.group, resource.plural) == ("", "pods"):
            estimate = pod_grace_estimate(items, deleted_at=deleted_at, now=self.clock.utcnow())
        error = await self._delete_each(resource, namespace, items, limit)
        if error is not None:
            return ResourceOutcome(resource, estimate=estimate, error=error)
        try:
            remaining = await self._list(resource, namespace, limit)
        except (ApiError, TransportError) as exc:
            return ResourceOutcome(resource, estimate=estimate, error=str(exc) or repr(exc))
        return assess_remaining(resource, namespace, remaining, estimate)

    async def _list(self, resource: Resource, namespace: str, limit: asyncio.Semaphore) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            async with limit:
                page = await self.client.list(resource, namespace, limit=LIST_PAGE_SIZE, continue_token=token)
            items.extend(page.get("items") or ())
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    async def _delete_each(
        self, resource: Resource, namespace: str, items: Sequence[dict[str, Any]], limit: asyncio.Semaphore
    ) -> str | None:
        """Delete the objects not already being deleted; the first failure's message, or None."""
        failures: list[str] = []

        async def delete(name: str) -> None:
            try:
                await self.client.delete(resource, name, namespace, propagation_policy="Background")
            except ApiError as exc:
                if exc.code not in (404, 405):
                    failures.append(str(exc))
            except TransportError as exc:
                failures.append(str(exc) or repr(exc))
            finally:
                limit.release()

        async with asyncio.TaskGroup() as tasks:
            for item in items:
                if (item.get("metadata") or {}).get("deletionTimestamp"):
                    continue
                await limit.acquire()  # bounds the tasks alive at once, not only the requests
                tasks.create_task(delete(name_of(item)))
        return failures[0] if failures else None


__all__ = [
    "CONDITION_TYPES",
    "FINALIZER_KUBERNETES",
    "NAMESPACES",
    "NamespaceController",
    "ResourceOutcome",
    "assess_remaining",
    "deletable_resources",
    "failure_conditions",
    "finalizers_after_release",
    "is_namespace_active",
    "merge_conditions",
    "pod_grace_estimate",
    "requeue_seconds",
]
