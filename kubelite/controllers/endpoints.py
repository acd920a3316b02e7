"""The Endpoints controller: core/v1 Endpoints (named as the Service) for every Service with a selector
(upstream's pkg/controller/endpoint).

Contracts:

* Subsets: every selected pod with an address that is not finished (and not being deleted, unless the
  Service publishes not-ready addresses) is listed once per Service port that resolves in it, as a
  ready address when it is Ready (or the Service publishes not-ready addresses), else as a not-ready
  address; a headless Service without ports lists addresses without ports. The result is repacked as
  upstream's RepackSubsets: one subset per distinct set of addresses, carrying every port they share;
  an address ready for one port and not ready for another counts as ready; order is deterministic
  (addresses by IP then pod uid, ports by name/port/protocol, subsets by their first port).
* Over 1000 addresses (ready + not ready) the subsets are truncated as upstream (ready ones kept first,
  per-subset shares rounded up) and annotated `endpoints.kubernetes.io/over-capacity: truncated`.
* Labels are the Service's, plus `service.kubernetes.io/headless: ""` for headless Services. The
  `endpoints.kubernetes.io/last-change-trigger-time` annotation carries the trigger time of the sync
  that wrote (removed when a write has none). Nothing is written when subsets, labels and the capacity
  annotation already match.
* A Service without a selector, or of type ExternalName, is left alone. Endpoints whose Service is
  gone are deleted, except leader-election records (the `control-plane.alpha.kubernetes.io/leader`
  annotation); every cached Endpoints object is looked at once at start-up for that.
* A write the cache has not shown yet makes the sync wait for it (no create-twice, no stale update).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kubelite.client.events import WARNING
from kubelite.client.interface import builtin, key_of
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.podutil import is_ready
from kubelite.controllers.servicehandlers import ServicePodHandlers
from kubelite.controllers.servicepods import (
    CLUSTER_IP_NONE,
    HEADLESS_LABEL,
    LAST_CHANGE_TRIGGER_TIME,
    TriggerTimeTracker,
    endpoint_port,
    find_port,
    is_namespace_terminating,
    is_service_ip_set,
    pod_ipv4,
    pods_selected,
    publishes_not_ready,
    service_selector,
    should_pod_be_in_endpoints,
    should_set_hostname,
    target_ref,
)
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, labels_of, namespace_of, rfc3339

log = logging.getLogger(__name__)

SERVICES = builtin("", "services")
PODS = builtin("", "pods")
ENDPOINTS = builtin("", "endpoints")

MAX_CAPACITY = 1000
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
TRUNCATED = "truncated"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
STALE_RETRY_SECONDS = 1.0

_NO_PORT: tuple[str, int, str, str] = ("", -1, "", "")  # the sentinel for addresses offered without ports


# -- the decision -----------------------------------------------------------------------------------


def pod_address(pod: Mapping[str, Any], service: Mapping[str, Any]) -> dict[str, Any] | None:
    ip = pod_ipv4(pod)
    if ip is None:
        return None
    address: dict[str, Any] = {"ip": ip}
    if should_set_hostname(pod, service):
        address["hostname"] = (pod.get("spec") or {})["hostname"]
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        address["nodeName"] = node_name
    address["targetRef"] = target_ref(pod)
    return address


def _port_key(port: Mapping[str, Any]) -> tuple[str, int, str, str]:
    return (
        str(port.get("name") or ""),
        int(port["port"]),
        str(port.get("protocol") or ""),
        str(port.get("appProtocol") or ""),
    )


def _address_key(address: Mapping[str, Any]) -> tuple[str, str]:
    return (str(address.get("ip") or ""), str((address.get("targetRef") or {}).get("uid") or ""))


def build_subsets(service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The repacked subsets of the module docstring, before truncation."""
    tolerate = publishes_not_ready(service)
    spec = service.get("spec") or {}
    service_ports = list(spec.get("ports") or ())
    # port → address key → (address, ready)
    by_port: dict[tuple[str, int, str, str], dict[tuple[str, str], tuple[dict[str, Any], bool]]] = {}
    ports_by_key: dict[tuple[str, int, str, str], dict[str, Any]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=tolerate):
            continue
        address = pod_address(pod, service)
        if address is None:
            continue
        ready = tolerate or is_ready(pod)
        if not service_ports:
            if spec.get("clusterIP") == CLUSTER_IP_NONE:
                _offer(by_port.setdefault(_NO_PORT, {}), address, ready)
            continue
        for service_port in service_ports:
            number = find_port(pod, service_port)
            if number is None:
                continue
            port = endpoint_port(service_port, number)
            key = _port_key(port)
            ports_by_key[key] = port
            _offer(by_port.setdefault(key, {}), address, ready)
    # group the ports by the exact set of addresses (and readiness) offering them
    groups: dict[frozenset[tuple[tuple[str, str], bool]], list[tuple[str, int, str, str]]] = {}
    members: dict[frozenset[tuple[tuple[str, str], bool]], dict[tuple[str, str], tuple[dict[str, Any], bool]]] = {}
    for port_key, addresses in by_port.items():
        identity = frozenset((k, ready) for k, (_, ready) in addresses.items())
        groups.setdefault(identity, []).append(port_key)
        members[identity] = addresses
    subsets = []
    for identity, port_keys in groups.items():
        addresses = sorted(members[identity].items())
        subset: dict[str, Any] = {}
        ready_list = [deep_copy(a) for _, (a, ready) in addresses if ready]
        not_ready_list = [deep_copy(a) for _, (a, ready) in addresses if not ready]
        if ready_list:
            subset["addresses"] = ready_list
        if not_ready_list:
            subset["notReadyAddresses"] = not_ready_list
        ports = [dict(ports_by_key[k]) for k in sorted(port_keys) if k != _NO_PORT]
        if ports:
            subset["ports"] = ports
        subsets.append(subset)
    return sorted(subsets, key=_subset_order)


def _offer(addresses: dict[tuple[str, str], tuple[dict[str, Any], bool]], address: dict[str, Any], ready: bool) -> None:
    key = _address_key(address)
    known = addresses.get(key)
    if known is None or (ready and not known[1]):
        addresses[key] = (address, ready)


def _subset_order(subset: Mapping[str, Any]) -> tuple[Any, ...]:
    ports = [_port_key(p) for p in subset.get("ports") or ()]
    first = (subset.get("addresses") or subset.get("notReadyAddresses") or [{}])[0]
    return (ports, _address_key(first))


def count_addresses(subsets: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(ready, not ready) addresses over all subsets."""
    ready = not_ready = 0
    for subset in subsets:
        ready += len(subset.get("addresses") or ())
        not_ready += len(subset.get("notReadyAddresses") or ())
    return ready, not_ready


def truncate_subsets(subsets: list[dict[str, Any]], *, capacity: int = MAX_CAPACITY) -> bool:
    """Cut `subsets` (in place) to `capacity` addresses; True when it had to. Ready addresses are kept
    before not-ready ones; each subset keeps its share of the kind being cut, rounded up, until the
    capacity is used."""
    ready, not_ready = count_addresses(subsets)
    if ready + not_ready <= capacity:
        return False
    cut_ready = ready > capacity
    budget = capacity if cut_ready else capacity - ready
    total = ready if cut_ready else not_ready
    left = budget
    field = "addresses" if cut_ready else "notReadyAddresses"
    for subset in subsets:
        mine = subset.get(field) or []
        share = min(math.ceil(len(mine) / total * budget) if total else 0, left)
        kept = mine[:share]
        if kept:
            subset[field] = kept
        else:
            subset.pop(field, None)
        if cut_ready:
            subset.pop("notReadyAddresses", None)
        left -= len(kept)
    return True


def endpoints_labels(service: Mapping[str, Any]) -> dict[str, str]:
    labels = dict((service.get("metadata") or {}).get("labels") or {})
    if is_service_ip_set(service):
        labels.pop(HEADLESS_LABEL, None)
    else:
        labels[HEADLESS_LABEL] = ""
    return labels


def desired_endpoints(
    service: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]],
    current: Mapping[str, Any] | None,
    *,
    trigger_time: datetime | None,
) -> dict[str, Any] | None:
    """The Endpoints object to write (create when it has no resourceVersion), or None when `current`
    already says the same."""
    subsets = build_subsets(service, pods)
    truncated = truncate_subsets(subsets)
    labels = endpoints_labels(service)
    if current is not None:
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        capacity_ok = (annotations.get(OVER_CAPACITY) == TRUNCATED) == truncated
        if (current.get("subsets") or []) == subsets and labels_of(dict(current)) == labels and capacity_ok:
            return None
        body = deep_copy(dict(current))
    else:
        meta = service.get("metadata") or {}
        body = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        }
    meta = body["metadata"]
    meta["labels"] = labels
    annotations = dict(meta.get("annotations") or {})
    if trigger_time is not None:
        annotations[LAST_CHANGE_TRIGGER_TIME] = rfc3339(trigger_time)
    else:
        annotations.pop(LAST_CHANGE_TRIGGER_TIME, None)
    if truncated:
        annotations[OVER_CAPACITY] = TRUNCATED
    else:
        annotations.pop(OVER_CAPACITY, None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    if subsets:
        body["subsets"] = subsets
    else:
        body.pop("subsets", None)
    return body


# -- the controller ---------------------------------------------------------------------------------


class EndpointsController(ServicePodHandlers, Controller):
    """See the module docstring."""

    name = "endpoints-controller"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.trigger_times = TriggerTimeTracker()
        # key → resourceVersion the cache must move past ("" = must show the object we created)
        self._written: dict[str, str] = {}
        self.services = self.informer(SERVICES)
        self.pods = self.informer(PODS)
        self.endpoints = self.informer(ENDPOINTS)
        self.services.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), self.enqueue)
        self.pods.add_handler(self._on_pod, self._on_pod_update, self._on_pod)
        self.endpoints.add_handler(self._on_endpoints_add, None, self._on_endpoints_delete)

    def _on_endpoints_add(self, endpoints: dict[str, Any]) -> None:
        if self.services.get(key_of(endpoints)) is None and not _is_leader_record(endpoints):
            self.enqueue(endpoints)  # left over from a deleted Service

    def _on_endpoints_delete(self, endpoints: dict[str, Any]) -> None:
        self._written.pop(key_of(endpoints), None)
        self.enqueue(endpoints)

    def _stale(self, key: str, cached: dict[str, Any] | None) -> bool:
        if key not in self._written:
            return False
        replaced = self._written[key]
        if (cached is None and replaced == "") or (
            cached is not None and (cached.get("metadata") or {}).get("resourceVersion") == replaced
        ):
            return True
        del self._written[key]
        return False

    async def reconcile(self, key: str) -> None:
        cached = self.endpoints.get(key)
        if self._stale(key, cached):
            self.queue.add_after(key, STALE_RETRY_SECONDS)
            return
        namespace, _, name = key.partition("/")
        service = self.services.get(key)
        if service is None:
            self.trigger_times.forget(key)
            if cached is not None and not _is_leader_record(cached):
                try:
                    await self.client.delete(ENDPOINTS, name, namespace)
                except ApiError as exc:
                    if exc.code != 404:
                        raise
            return
        selector = service_selector(service)
        if selector is None:
            return
        pods = pods_selected(selector, self.pods.by_index("namespace", namespace))
        trigger = self.trigger_times.compute(key, service, pods)
        body = desired_endpoints(service, pods, cached, trigger_time=trigger)
        if body is None:
            return
        await self._write(key, body, cached)

    async def _write(self, key: str, body: dict[str, Any], cached: dict[str, Any] | None) -> None:
        namespace = namespace_of(body)
        try:
            if cached is None:
                await self.client.create(ENDPOINTS, body, namespace)
                self._written[key] = ""
            else:
                written = await self.client.update(ENDPOINTS, body, namespace)
                previous = str((cached.get("metadata") or {}).get("resourceVersion") or "")
                if (written.get("metadata") or {}).get("resourceVersion") != previous:
                    self._written[key] = previous
        except ApiError as exc:
            if cached is None and is_namespace_terminating(exc):
                return
            if exc.code != 409:
                if cached is None:
                    message = f"Failed to create endpoint for service {key}: {exc}"
                    self.recorder.event(body, WARNING, "FailedToCreateEndpoint", message)
                else:
                    self.recorder.event(
                        body, WARNING, "FailedToUpdateEndpoint", f"Failed to update endpoint {key}: {exc}"
                    )
            raise


def _is_leader_record(endpoints: Mapping[str, Any]) -> bool:
    return LEADER_ANNOTATION in ((endpoints.get("metadata") or {}).get("annotations") or {})


__all__ = [
    "ENDPOINTS",
    "LEADER_ANNOTATION",
    "MAX_CAPACITY",
    "OVER_CAPACITY",
    "EndpointsController",
    "build_subsets",
    "count_addresses",
    "desired_endpoints",
    "endpoints_labels",
    "truncate_subsets",
]
