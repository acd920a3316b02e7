"""The API server: routes, middleware (errors → Status, authentication), start-up and shutdown.

Request path: TLS (client certificate) → authentication → route → handler → object store →
backend; reads come from the watch cache.  Every failure leaves as a `metav1.Status` in the
compact Go form clients compare byte for byte.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry

from kubelite.apiserver import discovery as discovery_module
from kubelite.apiserver.admission.tolerations import DEFAULT_TOLERATION_SECONDS, DefaultTolerationSeconds
from kubelite.apiserver.auth.serviceaccounts import ServiceAccountKeys
from kubelite.apiserver.handlers import ResourceHandlers
from kubelite.apiserver.kubeletproxy import KubeletProxy
from kubelite.apiserver.metrics.api import MetricsApi
from kubelite.apiserver.metrics.scraper import DEFAULT_RESOLUTION_SECONDS, MetricsScraper
from kubelite.apiserver.metrics.store import MetricsStore
from kubelite.apiserver.objects import WriteOptions
from kubelite.apiserver.openapi import OpenApiV3
from kubelite.apiserver.prommetrics import ApiServerMetrics, component_registry
from kubelite.apiserver.registry.services import ClusterObjects, ServiceStore, advertise_address
from kubelite.apiserver.registry.storagebootstrap import DEFAULT_STORAGE_PATH, ensure_storage_objects
from kubelite.apiserver.requestinfo import parse_api_path
from kubelite.machinery import errors
from kubelite.machinery.errors import ApiError
from kubelite.machinery.network import ClusterNetwork
from kubelite.machinery.resources import ResourceRegistry
from kubelite.machinery.schema import load_schemas
from kubelite.storage.cache import WatchCache
from kubelite.storage.interface import Backend

log = logging.getLogger(__name__)

KUBERNETES_VERSION = "v1.32.4"
VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": f"{KUBERNETES_VERSION}+kubelite",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-11-28T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# the join endpoints authenticate by themselves (kubelite.apiserver.auth.bootstrap)
PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz", "/kubelite/v1/ca.crt", "/kubelite/v1/join")
UNAUTHORIZED = ApiError(401, "Unauthorized", "Unauthorized")


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...] = ()


IDENTITY_KEY = web.RequestKey("identity", Identity)


@dataclass
class ApiServerConfig:
    server_address: str = ""
    # returns the identity of a request (client certificate, token) or None for anonymous
    authenticate: Callable[[web.Request], Identity | None] | None = None
    allow_anonymous: bool = False
    extra_routes: list[Callable[[web.Application], None]] = field(default_factory=list)
    # client TLS for kubelet endpoints (pods/log, exec, attach, portforward); None: plain HTTP (tests)
    kubelet_ssl_context: ssl.SSLContext | None = None
    # the cluster's network plan: service CIDR for ClusterIPs, node-port range, cluster DNS (published as a ConfigMap)
    network: ClusterNetwork = field(default_factory=ClusterNetwork)
    # where `default/kubernetes` sends clients: empty/0 = the bind address (a wildcard bind: the default-route
    # interface's address) and the bound port
    advertise_address: str = ""
    advertise_port: int = 0
    # metrics.k8s.io: how often every node's /metrics/resource is scraped (0: never)
    metrics_resolution: float = DEFAULT_RESOLUTION_SECONDS
    # DefaultTolerationSeconds admission: how long new pods tolerate a not-ready / unreachable node
    default_not_ready_toleration_seconds: int = DEFAULT_TOLERATION_SECONDS
    default_unreachable_toleration_seconds: int = DEFAULT_TOLERATION_SECONDS
    # /metrics: None = a registry of its own (with process_* metrics); pass one to share it with in-process components
    prometheus_registry: CollectorRegistry | None = None
    # serviceaccounts/token signing key (None: an in-memory key); the local-path provisioner's default directory
    service_account_keys: ServiceAccountKeys | None = None
    default_local_storage_path: str = DEFAULT_STORAGE_PATH


class ApiServer:
    """Owns the watch cache and object store over a started `Backend`."""

    def __init__(self, backend: Backend, config: ApiServerConfig | None = None) -> None:
        self.backend = backend
        self.config = config or ApiServerConfig()
        self.registry = ResourceRegistry()
        self.schemas = load_schemas()
        self.cache = WatchCache(backend)
        self.store = ServiceStore(backend, self.cache, self.config.network)
        self.cluster_objects = ClusterObjects(self.store, self.registry, self.config.network)
        self.discovery = discovery_module.Discovery(self.registry, self.config.server_address)
        self.openapi = OpenApiV3(self.registry, self.schemas)
        self.kubelet = KubeletProxy(self.store, self.registry, self.config.kubelet_ssl_context)
        self.handlers = ResourceHandlers(self.store, self.registry, self.schemas, self.kubelet)
        self.metrics = MetricsStore()
        self.handlers.metrics = MetricsApi(self.store, self.registry, self.metrics)
        self.handlers.default_tolerations = DefaultTolerationSeconds(
            self.config.default_not_ready_toleration_seconds, self.config.default_unreachable_toleration_seconds
        )
        self.scraper = MetricsScraper(
            self.metrics,
            self._nodes,
            ssl_context=self.config.kubelet_ssl_context,
            resolution=self.config.metrics_resolution,
        )
        self.handlers.token_issuer.keys = self.config.service_account_keys
        self._scraping: asyncio.Task[None] | None = None
        registry = self.config.prometheus_registry
        self.prometheus = ApiServerMetrics(
            registry if registry is not None else component_registry(), self.registry, self.cache
        )
        self.app = self._build_app()

    async def start(self) -> None:
        await self.cache.start()
        self.store.start_allocations()
        await self._ensure_default_namespaces()
        await self.cluster_objects.ensure_network_objects()
        await ensure_storage_objects(self.store, self.registry, storage_path=self.config.default_local_storage_path)
        if self.config.metrics_resolution > 0:
            self._scraping = asyncio.create_task(self.scraper.run(), name="metrics-scraper")

    async def close(self) -> None:
        if self._scraping is not None:
            self._scraping.cancel()
            await asyncio.gather(self._scraping, return_exceptions=True)
            self._scraping = None
        await self.kubelet.close()
        await self.cache.close()

    def _nodes(self) -> list[dict]:
        nodes = self.registry.get("", "v1", "nodes")
        assert nodes is not None
        return [entry.obj for entry in self.store.list_entries(nodes, None)]

    async def publish_endpoint(self, bind_host: str, bound_port: int) -> None:
        """Point `default/kubernetes` at this server once it listens (`serve` calls it); idempotent."""
        address = advertise_address(bind_host, self.config.advertise_address)
        await self.cluster_objects.ensure_kubernetes_service(address, self.config.advertise_port or bound_port)

    async def _ensure_default_namespaces(self) -> None:
        namespaces = self.registry.get("", "v1", "namespaces")
        assert namespaces is not None
        for name in DEFAULT_NAMESPACES:
            if self.cache.get(namespaces.key(None, name)) is None:
                try:
                    await self.store.create(namespaces, None, {"metadata": {"name": name}}, WriteOptions())
                except ApiError as exc:
                    if exc.code != 409:
                        raise

    # -- HTTP -------------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self.prometheus.middleware, self._middleware], client_max_size=8 * 1024 * 1024
        )
        r = app.router
        r.add_get("/version", self._version)
        r.add_get("/version/", self._version)
        for path in ("/healthz", "/livez", "/readyz"):
            r.add_get(path, self._health)
            r.add_get(path + "/{check:.*}", self._health)
        r.add_get("/api", self._api)
        r.add_get("/api/", self._api)
        r.add_get("/apis", self._apis)
        r.add_get("/apis/", self._apis)
        r.add_get("/openapi/v3", self._openapi_index)
        r.add_get("/openapi/v3/{path:.*}", self._openapi_document)
        r.add_get("/openapi/v2", self._not_found)
        r.add_get("/metrics", self.prometheus.handle)
        for extra in self.config.extra_routes:
            extra(app)
        r.add_route("*", "/api/{tail:.*}", self._resource)
        r.add_route("*", "/apis/{tail:.*}", self._resource)
        r.add_route("*", "/{tail:.*}", self._not_found)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            if not self._authenticated(request):
                raise UNAUTHORIZED
            return await handler(request)
        except ApiError as exc:
            return _status_response(exc)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # supervision point: one broken request must not take the server down
            log.exception("request failed", extra={"method": request.method, "path": request.path})
            return _status_response(errors.internal(str(exc)))

    def _authenticated(self, request: web.Request) -> bool:
        if request.path in PUBLIC_PATHS or request.path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return True
        if self.config.authenticate is None:
            return True
        identity = self.config.authenticate(request)
        if identity is not None:
            request[IDENTITY_KEY] = identity
            return True
        return self.config.allow_anonymous

    async def _version(self, request: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps(VERSION_INFO, option=orjson.OPT_INDENT_2), content_type="application/json"
        )

    async def _health(self, request: web.Request) -> web.Response:
        if not self.cache.ready.is_set():
            return web.Response(status=500, text="[-]cache not ready\nhealthz check failed")
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        version = discovery_module.wants_aggregated(request.headers.get("Accept"))
        if version:
            return _aggregated(self.discovery.aggregated(core=True, version=version), version)
        return _raw(self.discovery.api_versions())

    async def _apis(self, request: web.Request) -> web.Response:
        version = discovery_module.wants_aggregated(request.headers.get("Accept"))
        if version:
            return _aggregated(self.discovery.aggregated(core=False, version=version), version)
        return _raw(self.discovery.api_group_list())

    async def _openapi_index(self, request: web.Request) -> web.Response:
        return _raw(self.openapi.index())

    async def _openapi_document(self, request: web.Request) -> web.Response:
        found = self.openapi.document(request.match_info["path"])
        if found is None:
            raise errors.path_not_found()
        body, etag = found
        response = _raw(body)
        response.headers["ETag"] = f'"{etag}"'
        return response

    async def _not_found(self, request: web.Request) -> web.Response:
        raise errors.path_not_found()

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        parts = [p for p in path.split("/") if p]
        if request.method == "GET":
            if parts[0] == "api" and len(parts) == 2:
                body = self.discovery.resource_list("", parts[1])
                if body is None:
                    raise errors.path_not_found()
                return _raw(body)
            if parts[0] == "apis" and len(parts) == 2:
                body = self.discovery.api_group(parts[1])
                if body is None:
                    raise errors.path_not_found()
                return _raw(body)
            if parts[0] == "apis" and len(parts) == 3:
                body = self.discovery.resource_list(parts[1], parts[2])
                if body is None:
                    raise errors.path_not_found()
                return _raw(body)
        info = parse_api_path(path)
        if info is None:
            raise errors.path_not_found()
        return await self.handlers.handle(request, info)


def _raw(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def _aggregated(body: bytes, version: str) -> web.Response:
    response = web.Response(body=body)
    response.headers["Content-Type"] = (
        discovery_module.AGGREGATED_CONTENT_TYPE
        if version == "v2"
        else discovery_module.AGGREGATED_V2BETA1_CONTENT_TYPE
    )
    return response


def _status_response(exc: ApiError) -> web.Response:
    response = web.Response(body=exc.body(), status=exc.code, content_type="application/json")
    if exc.retry_after_seconds:
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
    for key, value in exc.headers.items():
        response.headers[key] = value
    return response


async def serve(
    server: ApiServer, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> tuple[web.AppRunner, int]:
    """Start listening; returns the runner and the bound port (useful with port 0)."""
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    await server.publish_endpoint(host, bound)
    return runner, bound


__all__ = ["ApiServer", "ApiServerConfig", "Identity", "serve"]
