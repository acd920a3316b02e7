"""`pods/{name}/eviction`: delete a pod unless that would break its PodDisruptionBudget.

Upstream's EvictionREST (pkg/registry/core/pod/storage/eviction.go) as of 1.32, in two parts: the
pure decisions (`parse_eviction`, `can_ignore_budget`, `budgets_for`, `take_disruption`) and the
shell `evict`, which applies them to the `ObjectStore`.

Contracts:

* The body is a policy/v1 (or v1beta1) Eviction whose `metadata.name` is the pod of the URL; its
  `deleteOptions` (gracePeriodSeconds, preconditions, dryRun, propagationPolicy) are honoured.
* A pod that is Succeeded, Failed, Pending or already being deleted is deleted without looking at
  budgets (it is disrupted already).  Otherwise the pod's budgets are its namespace's PDBs whose
  non-empty selector matches its labels: none → deleted; more than one → 500 Failure; one → its
  status is checked and decremented in one compare-and-swap write (`guaranteed_update` re-reads and
  decides again when another write raced it), then the pod is deleted.
* A not-ready pod does not use the budget when the budget is healthy (currentHealthy >=
  desiredHealthy > 0) or its `unhealthyPodEvictionPolicy` is AlwaysAllow; it is then deleted with a
  resourceVersion precondition, so a pod that turned ready meanwhile answers 429 instead.
* Refusals are 429 TooManyRequests "Cannot evict pod as it would violate the pod's disruption
  budget." with a `DisruptionBudget` cause saying why (retryAfterSeconds 10 while the budget is
  being processed); a negative or overfull budget is 403 Forbidden.
* Before a real (not dry-run) delete the pod gets the condition DisruptionTarget=True
  (reason EvictionByEvictionAPI), as 1.32 does.  Success is a Status with code 201.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubelite.apiserver.objects import DeleteOptions, ObjectStore, WriteOptions
from kubelite.apiserver.podsubresources import set_pod_condition
from kubelite.machinery import errors
from kubelite.machinery.errors import ApiError, Cause
from kubelite.machinery.meta import now, rfc3339
from kubelite.machinery.resources import Resource, ResourceRegistry
from kubelite.machinery.selectors import SelectorError, label_selector_from_dict

log = logging.getLogger(__name__)

MAX_DISRUPTED_POD_SIZE = 2000
MAX_CONFLICT_RETRIES = 20
EVICTION_API_VERSIONS = ("policy/v1", "policy/v1beta1")
VIOLATION_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
PROCESSING = "The disruption budget {name} is still being processed by the server."
MULTIPLE_BUDGETS_MESSAGE = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
)
DISRUPTION_TARGET = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "EvictionByEvictionAPI",
    "message": "Eviction API: evicting",
}
SUCCESS: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


@dataclass
class Eviction:
    """What an Eviction body asks for."""

    name: str
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False

    def delete_options(self, *, resource_version: str | None = None) -> DeleteOptions:
        return DeleteOptions(
            grace_period_seconds=self.grace_period_seconds,
            propagation_policy=self.propagation_policy,
            precondition_uid=self.uid,
            precondition_resource_version=resource_version or self.resource_version,
            dry_run=self.dry_run,
        )


def parse_eviction(body: Any, url_name: str, *, dry_run: bool = False) -> Eviction:
    """Validate a decoded Eviction body; `dry_run` is the request's `dryRun=All`."""
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be an Eviction object")
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if api_version not in (None, "", *EVICTION_API_VERSIONS) or kind not in (None, "", "Eviction"):
        raise errors.bad_request(f"not a Eviction object: {kind or ''} {api_version or ''}".rstrip())
    meta = body.get("metadata") or {}
    if not isinstance(meta, dict) or str(meta.get("name") or "") != url_name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    options = body.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise errors.bad_request("deleteOptions must be an object")
    body_dry_run = options.get("dryRun") or []
    if not isinstance(body_dry_run, list) or any(v != "All" for v in body_dry_run):
        raise errors.bad_request(f"Invalid dry run value: {body_dry_run}")
    if dry_run and body_dry_run and body_dry_run != ["All"]:
        raise errors.bad_request(f"Non-matching dry-run options in request and content: [All] and {body_dry_run}")
    grace = options.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise errors.bad_request("deleteOptions.gracePeriodSeconds must be an integer")
    preconditions = options.get("preconditions") or {}
    return Eviction(
        name=url_name,
        grace_period_seconds=grace,
        propagation_policy=options.get("propagationPolicy"),
        uid=preconditions.get("uid") or None,
        resource_version=preconditions.get("resourceVersion") or None,
        dry_run=dry_run or bool(body_dry_run),
    )


def can_ignore_budget(pod: Mapping[str, Any]) -> bool:
    """A pod that cannot be disrupted further: terminal, Pending, or being deleted already."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def budgets_for(pod: Mapping[str, Any], budgets: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The PDBs of the pod's namespace whose selector is valid, non-empty and matches its labels."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    found = []
    for pdb in budgets:
        if (pdb.get("metadata") or {}).get("namespace") != meta.get("namespace"):
            continue
        raw = (pdb.get("spec") or {}).get("selector")
        if not raw or not (raw.get("matchLabels") or raw.get("matchExpressions")):
            continue  # an empty selector matches nothing here
        try:
            selector = label_selector_from_dict(raw)
        except SelectorError:
            continue
        if selector.matches(labels):
            found.append(pdb)
    return found


def unhealthy_pod_can_skip_budget(pdb: Mapping[str, Any]) -> bool:
    """Whether a not-ready pod may be deleted without using the budget."""
    if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    status = pdb.get("status") or {}
    desired = int(status.get("desiredHealthy") or 0)
    return int(status.get("currentHealthy") or 0) >= desired > 0


def too_many_requests(pdb_name: str, why: str, *, retry_after: int = 0) -> ApiError:
    error = errors.too_many_requests(VIOLATION_MESSAGE, retry_after)
    error.causes.append(Cause(DISRUPTION_BUDGET_CAUSE, why.format(name=pdb_name)))
    return error


def take_disruption(pdb: dict[str, Any], pod_name: str, *, timestamp: str, dry_run: bool) -> dict[str, Any]:
    """Upstream's checkAndDecrement on `pdb` (the caller's copy, mutated and returned): one disruption
    fewer and the pod listed in `status.disruptedPods`; raises the refusal otherwise."""
    meta = pdb.get("metadata") or {}
    name = str(meta.get("name") or "")
    status = pdb.setdefault("status", {})
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        raise too_many_requests(name, PROCESSING, retry_after=10)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise errors.forbidden("poddisruptionbudget", "policy", name, "pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_POD_SIZE:
        raise errors.forbidden(
            "poddisruptionbudget",
            "policy",
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        )
    if allowed == 0:
        desired, current = int(status.get("desiredHealthy") or 0), int(status.get("currentHealthy") or 0)
        why = f"The disruption budget {{name}} needs {desired} healthy pods and has {current} currently"
        raise too_many_requests(name, why)
    status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        set_disruption_allowed_condition(pdb, timestamp=timestamp)
    if not dry_run:
        status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod_name: timestamp}
    return pdb


def set_disruption_allowed_condition(pdb: dict[str, Any], *, timestamp: str, reason: str | None = None) -> None:
    """Upstream's UpdateDisruptionAllowedCondition (SetStatusCondition semantics): True/SufficientPods
    when disruptions are allowed, else False/InsufficientPods (or the given `reason`, e.g. SyncFailed)."""
    status = pdb.setdefault("status", {})
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    if reason is None:
        reason = "SufficientPods" if allowed else "InsufficientPods"
    value = "True" if allowed and reason == "SufficientPods" else "False"
    conditions = [c for c in status.get("conditions") or () if c.get("type") != "DisruptionAllowed"]
    old = next((c for c in status.get("conditions") or () if c.get("type") == "DisruptionAllowed"), None)
    transition = old.get("lastTransitionTime") if old and old.get("status") == value else timestamp
    conditions.append(
        {
            "type": "DisruptionAllowed",
            "status": value,
            "observedGeneration": int(status.get("observedGeneration") or 0),
            "lastTransitionTime": transition or timestamp,
            "reason": reason,
            "message": "",
        }
    )
    status["conditions"] = conditions


# -- the shell ---------------------------------------------------------------------------------------


async def evict(
    store: ObjectStore, registry: ResourceRegistry, namespace: str, name: str, body: Any, *, dry_run: bool = False
) -> dict[str, Any]:
    """Evict pod `namespace/name` as the module docstring says; returns the Success Status."""
    pods = registry.get("", "v1", "pods")
    budgets = registry.get("policy", "v1", "poddisruptionbudgets")
    assert pods is not None and budgets is not None
    eviction = parse_eviction(body, name, dry_run=dry_run)
    pod = store.get(pods, namespace, name)
    if can_ignore_budget(pod):
        await _delete(store, pods, namespace, eviction, eviction.resource_version)
        return dict(SUCCESS)
    matching = budgets_for(pod, (e.obj for e in store.list_entries(budgets, namespace)))
    if len(matching) > 1:
        raise ApiError(500, "", MULTIPLE_BUDGETS_MESSAGE)
    pinned: str | None = eviction.resource_version
    if matching:
        pdb = matching[0]
        pdb_name = str(pdb["metadata"]["name"])
        if not is_pod_ready(pod) and unhealthy_pod_can_skip_budget(pdb):
            pinned = pinned or str(pod["metadata"]["resourceVersion"])
        else:
            stamp = rfc3339(now())

            def decrement(current: dict[str, Any]) -> dict[str, Any]:
                return take_disruption(current, name, timestamp=stamp, dry_run=eviction.dry_run)

            await store.guaranteed_update(
                budgets, namespace, pdb_name, decrement, WriteOptions(dry_run=eviction.dry_run), subresource="status"
            )
        try:
            await _delete(store, pods, namespace, eviction, pinned)
        except ApiError as exc:
            if exc.code == 409 and pinned and not eviction.resource_version:
                # the pod changed (became ready?) since we decided: let the client retry
                raise too_many_requests(pdb_name, PROCESSING, retry_after=10) from None
            raise
        return dict(SUCCESS)
    await _delete(store, pods, namespace, eviction, pinned)
    return dict(SUCCESS)


async def _delete(
    store: ObjectStore, pods: Resource, namespace: str, eviction: Eviction, resource_version: str | None
) -> None:
    """Mark the pod DisruptionTarget (not on dry runs), then delete it with the eviction's options.

    The condition write checks the preconditions itself; when a resourceVersion is pinned it moves
    to the version the condition write produced, since that write is ours."""
    if not eviction.dry_run:
        stamp = rfc3339(now())

        def mark(current: dict[str, Any]) -> dict[str, Any]:
            meta = current.get("metadata") or {}
            if eviction.uid and eviction.uid != meta.get("uid"):
                raise errors.conflict(
                    "pods",
                    "",
                    eviction.name,
                    f"Precondition failed: UID in precondition: {eviction.uid}, UID in object meta: {meta.get('uid')}",
                )
            if resource_version and resource_version != str(meta.get("resourceVersion")):
                raise errors.conflict(
                    "pods",
                    "",
                    eviction.name,
                    f"Precondition failed: ResourceVersion in precondition: {resource_version}, "
                    f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
                )
            set_pod_condition(current, DISRUPTION_TARGET, timestamp=stamp)
            return current

        marked = await store.guaranteed_update(
            pods, namespace, eviction.name, mark, WriteOptions(), subresource="status"
        )
        if resource_version:
            resource_version = str(marked["metadata"]["resourceVersion"])
    await store.delete(pods, namespace, eviction.name, eviction.delete_options(resource_version=resource_version))
