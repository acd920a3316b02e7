"""The metrics scraper: every `resolution` seconds, read ``/metrics/resource`` from every Node's kubelet
endpoint (InternalIP, then ExternalIP, then Hostname; ``status.daemonEndpoints.kubeletEndpoint.Port``)
over the API server's kubelet-client TLS, all nodes concurrently, and hand the round to the
`MetricsStore`.

Contracts:

* A node that does not answer within the timeout (90 % of the resolution, as metrics-server), answers
  with an error, or publishes no address is left out of the round (logged at debug level) — it is
  not an error for the API.
* `run()` loops until cancelled; `scrape_once()` does one round (tests), with its own HTTP session.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from yarl import URL

from kubelite.apiserver.kubeletproxy import kubelet_endpoint
from kubelite.apiserver.metrics.prometheus import parse_text
from kubelite.apiserver.metrics.store import MetricsStore, NodeBatch, decode
from kubelite.machinery.errors import ApiError

__all__ = ["DEFAULT_RESOLUTION_SECONDS", "MetricsScraper"]

log = logging.getLogger(__name__)

DEFAULT_RESOLUTION_SECONDS = 15.0
RESOURCE_METRICS_PATH = "/metrics/resource"
MAX_BODY_BYTES = 32 * 1024 * 1024


class MetricsScraper:
    """`list_nodes` returns the current Node objects (the API server's cache; read-only)."""

    def __init__(
        self,
        metrics: MetricsStore,
        list_nodes: Callable[[], list[dict[str, Any]]],
        *,
        ssl_context: ssl.SSLContext | None,
        resolution: float = DEFAULT_RESOLUTION_SECONDS,
    ) -> None:
        self.metrics = metrics
        self.list_nodes = list_nodes
        self.ssl_context = ssl_context
        self.resolution = resolution

    async def run(self) -> None:
        while True:
            try:
                await self.scrape_once()
            except Exception:  # supervision point: one bad round must not end scraping
                log.exception("metrics scrape round failed")
            await asyncio.sleep(self.resolution)

    async def scrape_once(self) -> None:
        """One round; its HTTP session lives exactly as long as the round (nothing to leak on cancel)."""
        nodes = [n for n in self.list_nodes() if (n.get("metadata") or {}).get("name")]
        connector = aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context is not None else False)
        async with aiohttp.ClientSession(connector=connector) as session:
            results = await asyncio.gather(*(self._scrape(session, node) for node in nodes))
        batches = {str(node["metadata"]["name"]): batch for node, batch in zip(nodes, results, strict=True) if batch}
        self.metrics.store(batches)

    async def _scrape(self, session: aiohttp.ClientSession, node: dict[str, Any]) -> NodeBatch | None:
        name = node["metadata"]["name"]
        try:
            host, port = kubelet_endpoint(node)
        except ApiError:
            log.debug("node publishes no kubelet address; skipped", extra={"node": name})
            return None
        scheme = "https" if self.ssl_context is not None else "http"
        url = URL.build(scheme=scheme, host=host, port=port, path=RESOURCE_METRICS_PATH)
        try:
            async with asyncio.timeout(max(self.resolution * 0.9, 1.0)):
                async with session.get(url) as response:
                    if response.status != 200:
                        log.debug("kubelet refused a metrics scrape", extra={"node": name, "status": response.status})
                        return None
                    body = await response.content.read(MAX_BODY_BYTES)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.debug("kubelet metrics scrape failed", extra={"node": name, "error": repr(exc)})
            return None
        return decode(parse_text(body.decode("utf-8", "replace")), now=datetime.now(UTC))
