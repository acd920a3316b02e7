"""`pods/binding` and the legacy `bindings` collection: assigning a pod to a node.

Upstream's BindingREST (registry/core/pod/storage): a Binding names a pod and a target Node; the pod
gets `spec.nodeName`, the binding's annotations and the condition PodScheduled=True, in one
compare-and-swap write straight to storage (as upstream's `GuaranteedUpdate`, without the pod update
strategy, which forbids `spec` changes).  The answer is a bare `Status` Success with code 201.

Contracts:

* Atomic: of two concurrent bindings of one pod exactly one wins; the other gets 409 Conflict
  `pod <name> is already assigned to node "<node>"` (the loser re-reads after losing a race).
* A binding carrying `metadata.uid` / `metadata.resourceVersion` only applies to that pod
  incarnation / revision (the scheduler sends the uid), else 409.
* A pod being deleted, or one with scheduling gates, is refused with 409 as upstream.
* `dryRun=All` checks everything and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubelite.apiserver.objects import ObjectStore, encode_for_storage
from kubelite.machinery import errors
from kubelite.machinery.errors import ApiError, Cause
from kubelite.machinery.meta import deep_copy, now, rfc3339
from kubelite.machinery.resources import Resource
from kubelite.storage.interface import KeyNotFound, RevisionMismatch

MAX_BIND_RETRIES = 10
BINDING_SUCCESS: dict[str, Any] = {
    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201
}
BINDING_SUCCESS_BODY = orjson.dumps(BINDING_SUCCESS)


@dataclass(frozen=True)
class Binding:
    """What a Binding body asks for (upstream's api.Binding, the fields the registry reads)."""

    name: str
    node: str
    uid: str = ""
    resource_version: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)


class BindingRefused(Exception):
    """The pod cannot take this binding; the message is upstream's, wrapped into a 409 by the caller."""


def parse_binding(body: Any, url_name: str | None, *, namespace: str | None = None) -> Binding:
    """Validate a decoded Binding body.  `url_name` is the pod name of `pods/{name}/binding` (None for
    the `bindings` collection, where the body names the pod); `namespace` is the request's."""
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be a Binding object")
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if api_version not in (None, "", "v1") or kind not in (None, "", "Binding"):
        raise errors.bad_request(f"not a Binding object: {kind or ''} {api_version or ''}".rstrip())
    meta = body.get("metadata") or {}
    target = body.get("target") or {}
    if not isinstance(meta, dict) or not isinstance(target, dict):
        raise errors.bad_request("metadata and target must be objects")
    if namespace is not None and meta.get("namespace") not in (None, "", namespace):
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    name = str(meta.get("name") or "")
    if url_name is not None and name != url_name:
        raise errors.bad_request("name in URL does not match name in Binding object")
    causes = []
    target_kind = str(target.get("kind") or "")
    if target_kind not in ("", "Node"):
        causes.append(
            Cause("FieldValueNotSupported", f'Unsupported value: "{target_kind}": supported values: "Node", "<empty>"',
                  "target.kind")
        )
    node = str(target.get("name") or "")
    if not node:
        causes.append(Cause("FieldValueRequired", "Required value", "target.name"))
    if causes:
        raise errors.invalid("Binding", "", name, causes)
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise errors.bad_request("metadata.annotations must be an object")
    return Binding(
        name=name,
        node=node,
        uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        annotations={str(k): str(v) for k, v in annotations.items()},
    )


def assign(pod: dict[str, Any], binding: Binding, *, timestamp: str) -> dict[str, Any]:
    """The bound pod (mutates and returns `pod`, the caller's copy); `BindingRefused` when it cannot be."""
    meta = pod.setdefault("metadata", {})
    spec = pod.setdefault("spec", {})
    name = meta.get("name", "")
    if meta.get("deletionTimestamp"):
        raise BindingRefused(f"pod {name} is being deleted, cannot be assigned to a host")
    if spec.get("nodeName"):
        raise BindingRefused(f'pod {name} is already assigned to node "{spec["nodeName"]}"')
    if spec.get("schedulingGates"):
        raise BindingRefused(f"pod {name} has non-empty .spec.schedulingGates")
    spec["nodeName"] = binding.node
    if binding.annotations:
        meta["annotations"] = {**(meta.get("annotations") or {}), **binding.annotations}
    set_pod_condition(pod, {"type": "PodScheduled", "status": "True"}, timestamp=timestamp)
    return pod


def set_pod_condition(pod: dict[str, Any], condition: dict[str, Any], *, timestamp: str) -> None:
    """Upstream's UpdatePodCondition: replace the condition of that type; lastTransitionTime moves only
    when the status changes."""
    status = pod.setdefault("status", {})
    conditions = status.setdefault("conditions", [])
    new = {"type": condition["type"], "status": condition["status"], "lastProbeTime": None,
           "lastTransitionTime": timestamp}
    for key in ("reason", "message"):
        if condition.get(key):
            new[key] = condition[key]
    for index, old in enumerate(conditions):
        if old.get("type") == new["type"]:
            if old.get("status") == new["status"] and old.get("lastTransitionTime"):
                new["lastTransitionTime"] = old["lastTransitionTime"]
            conditions[index] = new
            return
    conditions.append(new)


async def bind_pod(
    store: ObjectStore, pods: Resource, namespace: str, binding: Binding, *, dry_run: bool = False
) -> dict[str, Any]:
    """Assign the pod with one compare-and-swap write (retried when another write raced it).

    Returns the bound pod.  Raises 404 for a missing pod, 409 for every refusal."""
    for _attempt in range(MAX_BIND_RETRIES):
        current = store.get_entry(pods, namespace, binding.name)
        meta = current.obj.get("metadata") or {}
        if binding.uid and binding.uid != meta.get("uid"):
            raise _conflict(
                binding.name,
                f"Precondition failed: UID in precondition: {binding.uid}, UID in object meta: {meta.get('uid')}",
                resource="pods",
            )
        if binding.resource_version and binding.resource_version != str(current.revision):
            raise _conflict(
                binding.name,
                f"Precondition failed: ResourceVersion in precondition: {binding.resource_version}, "
                f"ResourceVersion in object meta: {current.revision}",
                resource="pods",
            )
        try:
            bound = assign(deep_copy(current.obj), binding, timestamp=rfc3339(now()))
        except BindingRefused as exc:
            raise _conflict(binding.name, str(exc)) from None
        if dry_run:
            return bound
        key = pods.key(namespace, binding.name)
        try:
            revision = await store.backend.update(key, encode_for_storage(bound), expected_revision=current.revision)
        except RevisionMismatch:
            continue
        except KeyNotFound:
            raise errors.not_found("pods", "", binding.name) from None
        await store.cache.wait_for_revision(revision)
        entry = store.cache.get(key)
        return entry.obj if entry is not None else bound
    raise _conflict(binding.name, "the object has been modified; please apply your changes to the latest version "
                    "and try again", resource="pods")


def _conflict(name: str, why: str, *, resource: str = "pods/binding") -> ApiError:
    return errors.conflict(resource, "", name, why)


__all__ = [
    "BINDING_SUCCESS",
    "BINDING_SUCCESS_BODY",
    "Binding",
    "BindingRefused",
    "assign",
    "bind_pod",
    "parse_binding",
    "set_pod_condition",
]
