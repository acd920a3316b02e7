"""The API server's own ``/metrics`` in the Prometheus text format, under kube-apiserver's metric names so
that its dashboards and alerts work unchanged.

What is measured, and how (upstream: ``k8s.io/apiserver/pkg/endpoints/metrics``, ``pkg/storage``):

* ``apiserver_request_total{verb,dry_run,group,version,resource,subresource,scope,component,code}`` and
  ``apiserver_request_duration_seconds`` (same labels minus ``code``, upstream's buckets) for every request
  that got an answer, by an aiohttp middleware outside the error middleware (so a `metav1.Status` error
  counts with its code).  Long-running requests count when they end.  A request whose handler is
  cancelled (the server stops) is not counted.
* ``apiserver_longrunning_requests`` (WATCH and the streaming subresources, while open) and
  ``apiserver_registered_watchers{group,version,kind}`` (open watches).
* ``apiserver_storage_objects{resource}``: objects per stored resource, read from the watch cache when
  scraped.
* ``process_*`` when the registry was made by `component_registry`.

Labels follow upstream's request-info rules (`request_labels`, a pure function): the verb is the
HTTP verb refined to LIST / WATCH / DELETECOLLECTION / APPLY / CONNECT; the scope is ``resource``
(a named object, or a create), ``namespace``, ``cluster``, or empty for non-resource paths, whose path
goes into ``subresource``.  Paths that address nothing known count without their path, so a scanner
probing random URLs cannot grow the label space.

Each `ApiServer` has its own `CollectorRegistry` (tests run several servers in one process); whoever
builds the server may pass one in to share it with components in the same process (the controller
manager's work queues).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from kubelite.apiserver.requestinfo import parse_api_path
from kubelite.machinery.resources import ResourceRegistry
from kubelite.storage.cache import WatchCache

__all__ = [
    "REQUEST_DURATION_BUCKETS",
    "ApiServerMetrics",
    "RequestLabels",
    "component_registry",
    "request_labels",
]

# the classic text format, as kube-apiserver and the kubelet serve it (every scraper reads it)
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

COMPONENT = "apiserver"
# kube-apiserver's apiserver_request_duration_seconds buckets
REQUEST_DURATION_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0,
    30.0, 45.0, 60.0,
)  # fmt: skip
# upstream's BasicLongRunningRequestCheck: watches, proxies and these subresources
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})
CONNECT_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "portforward"})
APPLY_PATCH = "application/apply-patch+yaml"
# non-resource paths recorded under their own name (others as "" to bound the label space)
NON_RESOURCE_PATHS = ("/version", "/healthz", "/livez", "/readyz", "/metrics", "/api", "/apis", "/openapi/v3")
KNOWN_VERBS = frozenset(
    {"GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION", "CONNECT", "HEAD"}
)

REQUEST_LABELS = ("verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component")


@dataclass(frozen=True, slots=True)
class RequestLabels:
    """How one request is labelled (see the module docstring); `watch` and `long_running` steer gauges."""

    verb: str
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    scope: str = ""
    dry_run: str = ""
    watch: bool = False
    long_running: bool = False

    def values(self) -> tuple[str, ...]:
        return (
            self.verb,
            self.dry_run,
            self.group,
            self.version,
            self.resource,
            self.subresource,
            self.scope,
            COMPONENT,
        )


def _is_true(value: str | None) -> bool:
    # upstream's Convert_Slice_string_To_bool: anything but "", "0" and "false" is true
    return value is not None and value.lower() not in ("", "0", "false")


def request_labels(
    method: str,
    path: str,
    query: Mapping[str, str],
    content_type: str = "",
    *,
    known: Callable[[str, str, str], bool] = lambda group, version, plural: True,
) -> RequestLabels:
    """The metric labels of a request; `known(group, version, plural)` says whether the resource is served
    (an unknown one is labelled like an unknown path)."""
    method = method.upper()
    dry_run = "All" if query.get("dryRun") == "All" else ""
    info = parse_api_path(path.rstrip("/")) if path.startswith(("/api/", "/apis/")) else None
    if info is None or not known(info.group, info.version, info.plural):
        verb = method if method in KNOWN_VERBS else "other"
        return RequestLabels(verb=verb, subresource=_non_resource_path(path, known), dry_run=dry_run)
    watch = info.legacy_watch or (method == "GET" and _is_true(query.get("watch")))
    subresource = info.subresource
    if watch:
        verb = "WATCH"
    elif subresource in CONNECT_SUBRESOURCES:
        verb = "CONNECT"
    elif method == "GET":
        verb = "GET" if info.name is not None else "LIST"
    elif method == "DELETE" and info.name is None:
        verb = "DELETECOLLECTION"
    elif method == "PATCH" and content_type.split(";")[0].strip() == APPLY_PATCH:
        verb = "APPLY"
    else:
        verb = method if method in KNOWN_VERBS else "other"
    if info.name is not None or (method == "POST" and not subresource):
        scope = "resource"
    elif info.namespace is not None:
        scope = "namespace"
    else:
        scope = "cluster"
    return RequestLabels(
        verb=verb,
        group=info.group,
        version=info.version,
        resource=info.plural,
        subresource=subresource,
        scope=scope,
        dry_run=dry_run,
        watch=watch,
        long_running=watch or subresource in LONG_RUNNING_SUBRESOURCES,
    )


def _non_resource_path(path: str, known: Callable[[str, str, str], bool]) -> str:
    """The path as upstream labels non-resource requests, or "" for paths nothing serves."""
    trimmed = path.rstrip("/") or "/"
    for fixed in NON_RESOURCE_PATHS:
        if trimmed == fixed:
            return fixed
    for prefix in ("/healthz/", "/livez/", "/readyz/"):
        if trimmed.startswith(prefix):
            return prefix.rstrip("/")
    if trimmed.startswith("/openapi/v3/"):
        return "/openapi/v3"
    parts = trimmed.split("/")
    # discovery documents: /api/v1, /apis/<group>, /apis/<group>/<version> (only real ones)
    if len(parts) == 3 and parts[1] == "api" and known("", parts[2], ""):
        return trimmed
    if parts[1:2] == ["apis"] and len(parts) in (3, 4):
        version = parts[3] if len(parts) == 4 else ""
        if known(parts[2], version, ""):
            return trimmed
    return ""


def component_registry() -> CollectorRegistry:
    """A fresh registry with the ``process_*`` collector: one per process-level component that serves
    ``/metrics`` (the API server, a node agent)."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    return registry


class _StorageObjects:
    """``apiserver_storage_objects``: counted from the watch cache at scrape time."""

    def __init__(self, resources: ResourceRegistry, cache: WatchCache) -> None:
        self.resources = resources
        self.cache = cache

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily("apiserver_storage_objects", _STORAGE_HELP, labels=["resource"])]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("apiserver_storage_objects", _STORAGE_HELP, labels=["resource"])
        seen: set[str] = set()
        for resource in self.resources.resources:
            if not resource.stored or resource.storage_version is not None or resource.storage_group is not None:
                continue
            prefix = resource.storage_key_prefix
            if prefix in seen:
                continue
            seen.add(prefix)
            family.add_metric([resource.qualified], float(len(self.cache.list(prefix))))
        yield family


_STORAGE_HELP = "Number of stored objects at the time of last check split by kind."


class ApiServerMetrics:
    """The API server's metrics in `registry`; `middleware` measures requests, `handle` serves them."""

    def __init__(self, registry: CollectorRegistry, resources: ResourceRegistry, cache: WatchCache) -> None:
        self.registry = registry
        self.resources = resources
        self.requests = Counter(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, "
            "scope, component, and HTTP response code.",
            [*REQUEST_LABELS, "code"],
            registry=registry,
        )
        self.durations = Histogram(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, "
            "subresource, scope and component.",
            REQUEST_LABELS,
            buckets=REQUEST_DURATION_BUCKETS,
            registry=registry,
        )
        self.long_running = Gauge(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, "
            "scope and component. Not all requests are tracked this way.",
            ["verb", "group", "version", "resource", "subresource", "scope", "component"],
            registry=registry,
        )
        self.watchers = Gauge(
            "apiserver_registered_watchers",
            "Number of currently registered watchers for a given resources",
            ["group", "version", "kind"],
            registry=registry,
        )
        registry.register(_StorageObjects(resources, cache))

    def _known(self, group: str, version: str, plural: str) -> bool:
        if plural:
            return self.resources.get(group, version, plural) is not None
        return any(r.group == group and (not version or r.version == version) for r in self.resources.resources)

    def _kind(self, labels: RequestLabels) -> str:
        found = self.resources.get(labels.group, labels.version, labels.resource)
        return found.kind if found is not None else ""

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Outermost: counts every answered request (errors included) and tracks open long-running ones."""
        labels = request_labels(
            request.method, request.path, request.query, request.headers.get("Content-Type", ""), known=self._known
        )
        started = time.perf_counter()
        tracked: list[Gauge] = []
        if labels.long_running:
            tracked.append(
                self.long_running.labels(
                    labels.verb,
                    labels.group,
                    labels.version,
                    labels.resource,
                    labels.subresource,
                    labels.scope,
                    COMPONENT,
                )
            )
        if labels.watch:
            tracked.append(self.watchers.labels(labels.group, labels.version, self._kind(labels)))
        for gauge in tracked:
            gauge.inc()
        code: int | None = None
        try:
            response = await handler(request)
            code = response.status
            return response
        except web.HTTPException as exc:
            code = exc.status
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:  # the inner middleware answers these with 500; count the same way if one escapes
            code = 500
            raise
        finally:
            for gauge in tracked:
                gauge.dec()
            if code is not None:
                values = labels.values()
                self.requests.labels(*values, str(code)).inc()
                self.durations.labels(*values).observe(time.perf_counter() - started)

    async def handle(self, request: web.Request) -> web.Response:
        """``GET /metrics``: the registry in the text format (authenticated like every non-public path)."""
        body = generate_latest(self.registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = TEXT_CONTENT_TYPE
        return response
