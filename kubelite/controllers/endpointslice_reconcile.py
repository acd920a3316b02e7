"""The EndpointSlice controller's decision: the slices a Service should have, as creates, updates and
deletes of the slices it has (upstream's staging/src/k8s.io/endpointslice reconciler). Pure.

Contracts:

* Desired endpoints come from the pods the Service selects that have an address and are not finished
  (terminating pods stay, marked `terminating`); each pod's ports are resolved in that pod, and pods
  are grouped by their resolved port set: one group, one family of slices with those `ports`.
* Minimal churn, in upstream's order: (1) every existing slice keeps the endpoints still desired (with
  their desired content), drops the rest; one left empty is deleted, one changed (or whose labels are
  stale) is updated; (2) the updated slices are filled up first, fullest first, to `max_per_slice`;
  (3) what is left goes into the unchanged slice that it fills best, else into new slices. Slices of
  port sets no longer desired, of another address type, or owned by another Service uid are deleted.
* A Service with no endpoints at all keeps one placeholder slice (no ports, no endpoints), re-used
  rather than re-created. Deletes that can be turned into updates of slices otherwise created are
  (the slice keeps its name). A Service being deleted gets no new slices.
* Created and updated slices carry the trigger time annotation when one is given.
* Endpoint order inside a slice is the existing order, then new endpoints sorted by address, so the
  same input always gives the same plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubelite.controllers.podutil import is_ready, is_terminating
from kubelite.controllers.servicepods import (
    HEADLESS_LABEL,
    LAST_CHANGE_TRIGGER_TIME,
    ZONE_LABEL,
    is_service_ip_set,
    pod_ipv4,
    publishes_not_ready,
    resolved_ports,
    should_pod_be_in_endpoints,
    should_set_hostname,
    target_ref,
)
from kubelite.machinery.meta import deep_copy, rfc3339

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
ADDRESS_TYPE = "IPv4"
_RESERVED_LABELS = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)

EndpointKey = tuple[tuple[str, ...], str, str, str]
PortsKey = tuple[tuple[str, int, str, str], ...]


@dataclass
class SlicePlan:
    """What one sync writes: `create` (no name, generateName set), `update` (with resourceVersion)
    and `delete` (existing slices). `missing_nodes`: pods left out because their Node is unknown yet
    (the sync should be retried)."""

    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)
    missing_nodes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


# -- endpoints --------------------------------------------------------------------------------------


def pod_endpoint(
    pod: Mapping[str, Any], service: Mapping[str, Any], node: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The discovery.k8s.io/v1 Endpoint for `pod` (None without an IPv4 address).

    serving = pod Ready; terminating = deletionTimestamp set; ready = serving and not terminating, or
    the Service publishes not-ready addresses."""
    address = pod_ipv4(pod)
    if address is None:
        return None
    serving = is_ready(pod)
    terminating = is_terminating(pod)
    ready = publishes_not_ready(service) or (serving and not terminating)
    endpoint: dict[str, Any] = {
        "addresses": [address],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": target_ref(pod),
    }
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        endpoint["nodeName"] = node_name
    zone = (((node or {}).get("metadata") or {}).get("labels") or {}).get(ZONE_LABEL)
    if zone:
        endpoint["zone"] = zone
    if should_set_hostname(pod, service):
        endpoint["hostname"] = (pod.get("spec") or {})["hostname"]
    return endpoint


def endpoint_key(endpoint: Mapping[str, Any]) -> EndpointKey:
    """An endpoint's identity (upstream's hash): addresses, hostname and the pod it names."""
    ref = endpoint.get("targetRef") or {}
    return (
        tuple(sorted(endpoint.get("addresses") or ())),
        str(endpoint.get("hostname") or ""),
        str(ref.get("namespace") or ""),
        str(ref.get("name") or ""),
    )


def _comparable_endpoint(endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the controller writes, with defaults filled, for 'changed beyond identity' checks."""
    conditions = endpoint.get("conditions") or {}
    ref = endpoint.get("targetRef") or {}
    return {
        "addresses": sorted(endpoint.get("addresses") or ()),
        "conditions": {k: conditions.get(k) for k in ("ready", "serving", "terminating")},
        "targetRef": {k: ref.get(k) for k in ("kind", "namespace", "name", "uid")},
        "nodeName": endpoint.get("nodeName"),
        "zone": endpoint.get("zone"),
        "hostname": endpoint.get("hostname"),
        "hints": endpoint.get("hints"),
    }


def ports_key(ports: Iterable[Mapping[str, Any]]) -> PortsKey:
    """A port set's identity, independent of order (upstream's PortMapKey)."""
    return tuple(
        sorted(
            (
                str(p.get("name") or ""),
                int(p.get("port") or 0),
                str(p.get("protocol") or "TCP"),
                str(p.get("appProtocol") or ""),
            )
            for p in ports
        )
    )


@dataclass
class _Group:
    ports: list[dict[str, Any]]
    endpoints: dict[EndpointKey, dict[str, Any]] = field(default_factory=dict)


def desired_groups(
    service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], nodes: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[PortsKey, _Group], list[str]]:
    """The desired endpoints grouped by resolved port set, and the names of Nodes pods referred to
    that are not known (those pods are left out unless the Service publishes not-ready addresses)."""
    groups: dict[PortsKey, _Group] = {}
    missing: list[str] = []
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        node_name = str((pod.get("spec") or {}).get("nodeName") or "")
        node = nodes.get(node_name)
        if node is None and not publishes_not_ready(service):
            missing.append(node_name)
            continue
        endpoint = pod_endpoint(pod, service, node)
        if endpoint is None:
            continue
        ports = resolved_ports(service, pod)
        group = groups.setdefault(ports_key(ports), _Group(ports))
        group.endpoints[endpoint_key(endpoint)] = endpoint
    return groups, sorted(set(missing))


# -- slices -----------------------------------------------------------------------------------------


def slice_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """The Service's labels (minus the reserved ones), the headless marker, and the two ownership labels."""
    meta = service.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in _RESERVED_LABELS}
    if not is_service_ip_set(service):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = str(meta.get("name") or "")
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def service_owner_reference(service: Mapping[str, Any]) -> dict[str, Any]:
    meta = service.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(slice_: Mapping[str, Any], service: Mapping[str, Any]) -> bool:
    uid = (service.get("metadata") or {}).get("uid")
    return any(
        ref.get("uid") == uid and ref.get("kind") == "Service" and ref.get("apiVersion") == "v1"
        for ref in (slice_.get("metadata") or {}).get("ownerReferences") or ()
    )


def new_slice(service: Mapping[str, Any], ports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    meta = service.get("metadata") or {}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": f"{meta.get('name')}-",
            "namespace": meta.get("namespace"),
            "labels": slice_labels(service),
            "ownerReferences": [service_owner_reference(service)],
        },
        "addressType": ADDRESS_TYPE,
        "ports": [dict(p) for p in ports],
        "endpoints": [],
    }


def _is_placeholder_of(slice_: Mapping[str, Any], service: Mapping[str, Any]) -> bool:
    meta = slice_.get("metadata") or {}
    return (
        meta.get("namespace") == (service.get("metadata") or {}).get("namespace")
        and (meta.get("labels") or {}) == slice_labels(service)
        and slice_.get("addressType") == ADDRESS_TYPE
        and not slice_.get("ports")
        and not slice_.get("endpoints")
    )


def _name(slice_: Mapping[str, Any]) -> str:
    return str((slice_.get("metadata") or {}).get("name") or "")


def _sorted_endpoints(endpoints: dict[EndpointKey, dict[str, Any]]) -> list[tuple[EndpointKey, dict[str, Any]]]:
    return sorted(endpoints.items(), key=lambda item: item[0])


@dataclass
class _GroupPlan:
    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)


def _reconcile_group(
    service: Mapping[str, Any], existing: Sequence[Mapping[str, Any]], group: _Group, max_per_slice: int
) -> _GroupPlan:
    """Steps 1–3 of the module docstring for one port set."""
    wanted = dict(group.endpoints)
    labels = slice_labels(service)
    plan = _GroupPlan()
    unchanged: list[Mapping[str, Any]] = []
    for current in existing:
        kept: list[dict[str, Any]] = []
        changed = False
        for endpoint in current.get("endpoints") or ():
            desired = wanted.pop(endpoint_key(endpoint), None)
            if desired is None:
                changed = True
                continue
            kept.append(desired)
            changed = changed or _comparable_endpoint(desired) != _comparable_endpoint(endpoint)
        labels_stale = ((current.get("metadata") or {}).get("labels") or {}) != labels
        if changed and not kept:
            plan.delete.append(dict(current))
        elif changed or labels_stale:
            body = deep_copy(dict(current))
            body["endpoints"] = kept
            body.setdefault("metadata", {})["labels"] = dict(labels)
            plan.update.append(body)
        else:
            unchanged.append(current)
    remaining = _sorted_endpoints(wanted)
    for body in sorted(plan.update, key=lambda s: -len(s["endpoints"])):
        room = max_per_slice - len(body["endpoints"])
        if room > 0 and remaining:
            body["endpoints"].extend(ep for _, ep in remaining[:room])
            remaining = remaining[room:]
    while remaining:
        target: dict[str, Any] | None = None
        if len(remaining) < max_per_slice:
            fits = [s for s in unchanged if len(s.get("endpoints") or ()) + len(remaining) <= max_per_slice]
            if fits:
                best = max(fits, key=lambda s: len(s.get("endpoints") or ()))
                unchanged.remove(best)
                target = deep_copy(dict(best))
                target["endpoints"] = list(target.get("endpoints") or ())
                plan.update.append(target)
        if target is None:
            target = new_slice(service, group.ports)
            plan.create.append(target)
        room = max_per_slice - len(target["endpoints"])
        target["endpoints"].extend(ep for _, ep in remaining[:room])
        remaining = remaining[room:]
    return plan


def plan_slices(
    service: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]],
    existing: Iterable[Mapping[str, Any]],
    *,
    nodes: Mapping[str, Mapping[str, Any]],
    trigger_time: datetime | None = None,
    max_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
) -> SlicePlan:
    """The writes that bring `existing` (the slices labelled as this Service's and managed by this
    controller) to the desired state; see the module docstring."""
    existing = list(existing)
    groups, missing = desired_groups(service, pods, nodes)
    plan = SlicePlan(missing_nodes=missing)
    by_ports: dict[PortsKey, list[Mapping[str, Any]]] = {}
    for current in existing:
        if current.get("addressType") != ADDRESS_TYPE or not owned_by(current, service):
            plan.delete.append(dict(current))
            continue
        by_ports.setdefault(ports_key(current.get("ports") or ()), []).append(current)
    for key in sorted(groups):
        group_plan = _reconcile_group(service, by_ports.get(key, []), groups[key], max_per_slice)
        plan.create += group_plan.create
        plan.update += group_plan.update
        plan.delete += group_plan.delete
    for key in sorted(set(by_ports) - set(groups)):
        plan.delete += [dict(s) for s in by_ports[key]]
    if len(existing) == len(plan.delete) and not plan.create:
        if len(plan.delete) == 1 and _is_placeholder_of(plan.delete[0], service):
            plan.delete = []
        else:
            plan.create.append(new_slice(service, []))
    _reuse_deleted(plan, service)
    if (service.get("metadata") or {}).get("deletionTimestamp"):
        plan.create = []
    if trigger_time is not None:
        for body in (*plan.create, *plan.update):
            body["metadata"].setdefault("annotations", {})[LAST_CHANGE_TRIGGER_TIME] = rfc3339(trigger_time)
    return plan


def _reuse_deleted(plan: SlicePlan, service: Mapping[str, Any]) -> None:
    """Turn (create, delete) pairs into updates of the slice that would be deleted (it keeps its name
    and uid; the body is the new slice, generateName included), as upstream's finalize does."""
    kept: list[dict[str, Any]] = []
    for doomed in plan.delete:
        if plan.create and doomed.get("addressType") == ADDRESS_TYPE and owned_by(doomed, service):
            body = plan.create.pop()
            meta = body["metadata"]
            old_meta = doomed.get("metadata") or {}
            meta["name"] = old_meta.get("name")
            meta["resourceVersion"] = old_meta.get("resourceVersion")
            if old_meta.get("annotations"):
                meta["annotations"] = {**old_meta["annotations"], **(meta.get("annotations") or {})}
            plan.update.append(body)
        else:
            kept.append(doomed)
    plan.delete = kept


__all__ = [
    "ADDRESS_TYPE",
    "CONTROLLER_NAME",
    "MANAGED_BY_LABEL",
    "MAX_ENDPOINTS_PER_SLICE",
    "SERVICE_NAME_LABEL",
    "SlicePlan",
    "desired_groups",
    "endpoint_key",
    "new_slice",
    "owned_by",
    "plan_slices",
    "pod_endpoint",
    "ports_key",
    "service_owner_reference",
    "slice_labels",
]
