"""Per-resource create/update/delete strategy: what the server owns, resets and checks.

This is upstream's `rest.RESTCreateStrategy`/`RESTUpdateStrategy` folded into plain functions keyed
by resource: which kinds track `metadata.generation`, which reset `status` on create, how the
`status` subresource splits a write, how long a pod's graceful deletion lasts.  Field defaults and
field validation live in `defaults.py` and `validation`; this module decides when they run.
"""

from __future__ import annotations

from typing import Any

from kubelite.apiserver.registry.defaults import apply_create_defaults, apply_defaults
from kubelite.apiserver.registry.validation import validate_object
from kubelite.machinery import errors
from kubelite.machinery.resources import Resource

# Kinds whose spec changes bump metadata.generation (upstream strategies that set it).
GENERATION_TRACKED = {
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("", "replicationcontrollers"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"),
    ("networking.k8s.io", "ingresses"),
    ("networking.k8s.io", "networkpolicies"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
}
# Kinds whose create keeps the client's status (nodes register with theirs; events have none).
STATUS_KEPT_ON_CREATE = {("", "nodes"), ("", "events"), ("apiregistration.k8s.io", "apiservices")}
SERVER_OWNED_METADATA = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)
DEFAULT_POD_GRACE_SECONDS = 30


def _key(resource: Resource) -> tuple[str, str]:
    return (resource.storage_group if resource.storage_group is not None else resource.group, resource.plural)


def tracks_generation(resource: Resource) -> bool:
    return _key(resource) in GENERATION_TRACKED or resource.group not in _BUILTIN_GROUPS


def has_status_subresource(resource: Resource) -> bool:
    return resource.subresource("status") is not None


def prepare_for_create(resource: Resource, obj: dict[str, Any]) -> None:
    """Server-owned fields on create; mutates `obj` (the caller's own copy)."""
    meta = obj["metadata"]
    if tracks_generation(resource):
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    if has_status_subresource(resource) and _key(resource) not in STATUS_KEPT_ON_CREATE:
        obj.pop("status", None)
    apply_create_defaults(resource.group, resource.version, resource.kind, obj)
    apply_defaults(resource.group, resource.version, resource.kind, obj)
    if _key(resource) == ("batch", "jobs"):
        generate_job_selector(obj)
    if _key(resource) == ("", "pods"):
        status = obj.setdefault("status", {})
        status["phase"] = "Pending"
        status["qosClass"] = pod_qos_class(obj.get("spec") or {})
    elif _key(resource) == ("", "namespaces"):
        obj["status"] = {"phase": "Active"}


def prepare_for_update(
    resource: Resource, new: dict[str, Any], old: dict[str, Any], *, subresource: str
) -> None:
    """Carry over what a client cannot change; mutates `new` (the caller's own copy)."""
    new_meta = new.setdefault("metadata", {})
    old_meta = old.get("metadata") or {}
    for name in (*SERVER_OWNED_METADATA, "name", "namespace"):
        if name in old_meta:
            new_meta[name] = old_meta[name]
        else:
            new_meta.pop(name, None)
    if subresource == "status":
        status = new.get("status")
        keep_meta = dict(old_meta)
        new.clear()
        new.update({k: v for k, v in old.items() if k not in ("status", "metadata")})
        new["metadata"] = keep_meta
        if status is not None:
            new["status"] = status
    elif subresource == "finalize":
        finalizers = (new.get("spec") or {}).get("finalizers")
        keep_meta = dict(old_meta)
        new.clear()
        new.update({k: v for k, v in old.items() if k != "metadata"})
        new["metadata"] = keep_meta
        new["spec"] = {**(old.get("spec") or {}), "finalizers": finalizers or []}
        if not finalizers:
            new["spec"].pop("finalizers")
    elif has_status_subresource(resource):
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if old_meta.get("deletionTimestamp"):
        added = set(new_meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
        if added:
            raise errors.invalid(
                resource.kind,
                resource.group,
                new_meta.get("name", ""),
                [
                    errors.Cause(
                        "FieldValueForbidden",
                        "Forbidden: no new finalizers can be added if the object is being deleted",
                        "metadata.finalizers",
                    )
                ],
            )
    apply_defaults(resource.group, resource.version, resource.kind, new)
    if tracks_generation(resource) and subresource != "status" and _spec_changed(new, old):
        new_meta["generation"] = int(old_meta.get("generation") or 0) + 1


def _spec_changed(new: dict[str, Any], old: dict[str, Any]) -> bool:
    ignored = ("metadata", "status", "apiVersion", "kind")
    return {k: v for k, v in new.items() if k not in ignored} != {
        k: v for k, v in old.items() if k not in ignored
    }


def generate_job_selector(job: dict[str, Any]) -> None:
    """Jobs without `manualSelector` select their pods by the Job's uid, labels set on the template."""
    spec = job.get("spec")
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    uid = job["metadata"]["uid"]
    name = job["metadata"]["name"]
    template_meta = (spec.setdefault("template", {}) or {}).setdefault("metadata", {})
    labels = template_meta.get("labels") or {}
    labels.update({
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    })
    template_meta["labels"] = labels
    if spec.get("selector") is None:
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}


def validate(resource: Resource, obj: dict[str, Any], old: dict[str, Any] | None, subresource: str = "") -> None:
    causes = validate_object(resource.group, resource.kind, obj, old=old, subresource=subresource)
    if causes:
        raise errors.invalid(
            resource.kind, resource.group, (obj.get("metadata") or {}).get("name", ""), causes
        )


def grace_period(resource: Resource, obj: dict[str, Any], requested: int | None) -> int | None:
    """Seconds of graceful deletion, or None for immediate deletion (everything but bound pods)."""
    if _key(resource) != ("", "pods"):
        return None
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return None  # nothing runs it: upstream deletes unscheduled and finished pods at once
    if requested is not None:
        return max(requested, 0)
    grace = spec.get("terminationGracePeriodSeconds")
    return DEFAULT_POD_GRACE_SECONDS if grace is None else int(grace)


def needs_finalize(resource: Resource, obj: dict[str, Any]) -> bool:
    """Namespaces are deleted only after the namespace controller empties `spec.finalizers`."""
    if _key(resource) == ("", "namespaces"):
        return bool((obj.get("spec") or {}).get("finalizers"))
    return False


def has_dependents_semantics(resource: Resource) -> bool:
    """Whether Foreground/Orphan propagation adds a finalizer (everything but namespaces' own flow)."""
    return _key(resource) != ("", "namespaces")


def prepare_for_delete(resource: Resource, obj: dict[str, Any]) -> None:
    if _key(resource) == ("", "namespaces"):
        obj.setdefault("status", {})["phase"] = "Terminating"


def pod_qos_class(spec: dict[str, Any]) -> str:
    """Guaranteed when every container limits and requests cpu and memory equally, BestEffort with none."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits.get(name)) != limits.get(name):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


_BUILTIN_GROUPS = {
    "",
    "apps",
    "batch",
    "autoscaling",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "certificates.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "admissionregistration.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "metrics.k8s.io",
}
