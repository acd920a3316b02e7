"""``metrics.k8s.io/v1beta1`` NodeMetrics and PodMetrics, answered from the `MetricsStore`.

Shapes as metrics-server serves them: ``metadata`` (name, namespace, the object's labels,
creationTimestamp = now), ``timestamp`` (end of the window), ``window`` (a Go duration, "15.012s"),
``usage.cpu`` in nanocores as a canonical quantity ("12345678n", "5m"), ``usage.memory`` the working
set in bytes as a binary quantity ("10240Ki").  PodMetrics lists ``containers[{name, usage}]``.

Contracts:

* Only get and list (``labelSelector`` and ``fieldSelector`` match the Node/Pod the metrics are of);
  anything else is 405.  Lists cover the Nodes/Pods in the API's cache that have metrics: a node or
  pod without (yet) is left out, never an error; a get of one is 404 NotFound.
* Pure with respect to the store: nothing here writes anything.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from kubelite.apiserver import negotiation, tables
from kubelite.apiserver.metrics.store import MetricsStore, Usage
from kubelite.apiserver.objects import ObjectStore
from kubelite.apiserver.requestinfo import RequestInfo
from kubelite.machinery import errors, selectors
from kubelite.machinery.meta import rfc3339
from kubelite.machinery.quantity import Format, Quantity
from kubelite.machinery.resources import Resource, ResourceRegistry

__all__ = ["METRICS_GROUP", "MetricsApi", "go_duration", "node_metrics", "pod_metrics", "usage_quantities"]

METRICS_GROUP = "metrics.k8s.io"
API_VERSION = "metrics.k8s.io/v1beta1"


def go_duration(delta: timedelta) -> str:
    """Go's time.Duration.String() for non-negative durations: "15s", "1m0.5s", "250ms"."""
    ns = round(delta.total_seconds() * 1e9)
    if ns == 0:
        return "0s"
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return f"{_trim(Decimal(ns) / size)}{unit}"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _trim(Decimal(rest) / 1_000_000_000)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def _trim(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def usage_quantities(cpu_nano_cores: int, memory_bytes: int) -> dict[str, str]:
    return {
        "cpu": str(Quantity(Decimal(cpu_nano_cores).scaleb(-9), Format.DECIMAL_SI)),
        "memory": str(Quantity.from_int(memory_bytes, Format.BINARY_SI)),
    }


def _meta(obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    source = obj.get("metadata") or {}
    meta: dict[str, Any] = {"name": source.get("name", "")}
    if source.get("namespace"):
        meta["namespace"] = source["namespace"]
    meta["creationTimestamp"] = rfc3339(now)
    if source.get("labels"):
        meta["labels"] = dict(source["labels"])
    return meta


def node_metrics(node: dict[str, Any], usage: Usage, *, now: datetime) -> dict[str, Any]:
    return {
        "kind": "NodeMetrics",
        "apiVersion": API_VERSION,
        "metadata": _meta(node, now),
        "timestamp": rfc3339(usage.timestamp),
        "window": go_duration(usage.window),
        "usage": usage_quantities(usage.cpu_nano_cores, usage.memory_bytes),
    }


def pod_metrics(pod: dict[str, Any], containers: list[tuple[str, Usage]], *, now: datetime) -> dict[str, Any]:
    latest = max((u for _, u in containers), key=lambda u: u.timestamp)
    return {
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": _meta(pod, now),
        "timestamp": rfc3339(latest.timestamp),
        "window": go_duration(latest.window),
        "containers": [
            {"name": name, "usage": usage_quantities(u.cpu_nano_cores, u.memory_bytes)} for name, u in containers
        ],
    }


class MetricsApi:
    def __init__(self, store: ObjectStore, registry: ResourceRegistry, metrics: MetricsStore) -> None:
        self.store = store
        self.metrics = metrics
        pods, nodes = registry.get("", "v1", "pods"), registry.get("", "v1", "nodes")
        assert pods is not None and nodes is not None
        self.pods, self.nodes = pods, nodes

    async def handle(self, request: web.Request, resource: Resource, info: RequestInfo) -> web.Response:
        if request.method != "GET" or info.subresource or request.query.get("watch") in ("true", "1"):
            verb = "watch" if request.method == "GET" and not info.subresource else request.method.lower()
            raise errors.method_not_supported(resource.plural, resource.group, verb)
        if info.legacy_watch:
            raise errors.method_not_supported(resource.plural, resource.group, "watch")
        source = self.nodes if resource.plural == "nodes" else self.pods
        namespace = info.namespace if resource.namespaced else None
        now = datetime.now(UTC)
        if info.name is not None:
            found = self._metrics_of(source, obj, now) if (obj := self._object(source, namespace, info.name)) else None
            if found is None:
                raise errors.not_found(resource.plural, resource.group, info.name)
            return self._respond(request, resource, [found], single=True)
        matches = _matcher(source, request.query)
        items = []
        for entry in self.store.list_entries(source, namespace):
            if matches(entry.obj):
                found = self._metrics_of(source, entry.obj, now)
                if found is not None:
                    items.append(found)
        return self._respond(request, resource, items, single=False)

    def _object(self, source: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.store.get(source, namespace, name)
        except errors.ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def _metrics_of(self, source: Resource, obj: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        meta = obj.get("metadata") or {}
        if source is self.nodes:
            usage = self.metrics.node(str(meta.get("name", "")))
            return node_metrics(obj, usage, now=now) if usage is not None else None
        containers = self.metrics.pod(str(meta.get("namespace", "")), str(meta.get("name", "")))
        return pod_metrics(obj, containers, now=now) if containers else None

    def _respond(
        self, request: web.Request, resource: Resource, items: list[dict[str, Any]], *, single: bool
    ) -> web.Response:
        form = negotiation.response_form(request.headers.get("Accept"))
        if form.shape == "table":
            body: Any = tables.build_table(
                resource.group,
                resource.plural,
                items,
                include_object=request.query.get("includeObject", "Metadata"),
                resource_version="",
                continue_token=None,
                now=datetime.now(UTC),
                api_version=form.api_version,
            )
        elif single:
            body = items[0]
        else:
            body = {"kind": resource.list_kind, "apiVersion": API_VERSION, "metadata": {}, "items": items}
        return web.Response(body=orjson.dumps(body), content_type="application/json")


def _matcher(source: Resource, query: Any) -> Any:
    try:
        labels = selectors.parse_label_selector(query["labelSelector"]) if query.get("labelSelector") else None
        fields = (
            selectors.convert_field_selector(source.plural, selectors.parse_field_selector(query["fieldSelector"]))
            if query.get("fieldSelector")
            else None
        )
    except selectors.SelectorError as exc:
        raise errors.bad_request(str(exc)) from None

    def matches(obj: dict[str, Any]) -> bool:
        if labels is not None and not labels.matches((obj.get("metadata") or {}).get("labels") or {}):
            return False
        return fields is None or fields.matches(selectors.field_set(source.plural, obj))

    return matches
