"""The object store with Service address allocation: upstream's service REST storage hooks
(`beginCreate`/`beginUpdate` and their transactions) around kubelite's generic `ObjectStore`.

Every write of a Service (core/v1, not its `status` subresource) goes through the `ServiceLedger`:

* create: ClusterIP, node ports and health-check port are allocated *before* the write (so the
  stored object carries them and validation sees them); the reservation is settled after the write,
  so a write that fails (validation, 409, storage error) hands its values back;
* update (PUT and every patch type; each compare-and-swap attempt separately): allocated values the
  client left out are carried over, a type change clears what no longer applies, new values are
  allocated; values the update drops are released when the update is stored;
* delete: nothing to do here — the ledger follows the watch cache, so values are released when the
  Service is really gone (after its finalizers), whichever request removed it.

All other resources pass straight through.  The override points are `create` and
`_write_update`, the one method both `update` and `guaranteed_update` write through.
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.apiserver.objects import ObjectStore, WriteOptions
from kubelite.apiserver.registry.services.ledger import ServiceLedger
from kubelite.machinery.meta import deep_copy
from kubelite.machinery.network import ClusterNetwork
from kubelite.machinery.resources import Resource
from kubelite.storage.cache import CacheEvent, Entry, WatchCache
from kubelite.storage.interface import Backend

log = logging.getLogger(__name__)

SERVICES_PREFIX = "/registry/core/services/"  # Resource("", "v1", "services").collection_prefix(None)


def is_service(resource: Resource) -> bool:
    group = resource.storage_group if resource.storage_group is not None else resource.group
    return group == "" and resource.plural == "services"


class ServiceStore(ObjectStore):
    """An `ObjectStore` that allocates Service ClusterIPs and node ports (see module docstring).

    The ledger is rebuilt from the watch cache on first use after the cache is ready (or by
    `start_allocations()`), then kept current by a cache listener, so it always reflects storage.
    """

    def __init__(self, backend: Backend, cache: WatchCache, network: ClusterNetwork | None = None) -> None:
        super().__init__(backend, cache)
        self.network = network or ClusterNetwork()
        self.ledger = ServiceLedger(self.network)
        self._prefix = SERVICES_PREFIX
        self._ready = False
        cache.listeners.append(self._on_cache_event)

    def start_allocations(self, services_prefix: str | None = None) -> None:
        """Rebuild the ledger from every stored Service (the repair pass).  Call once the cache has
        loaded, before the server takes requests; idempotent."""
        if services_prefix:
            self._prefix = services_prefix
        self.ledger.rebuild((entry.key, entry.obj) for entry in self.cache.list(self._prefix))
        self._ready = True
        log.info(
            "service allocations rebuilt",
            extra={"cluster_ips": self.ledger.ips.used, "node_ports": self.ledger.ports.used},
        )

    def _on_cache_event(self, event: CacheEvent) -> None:
        if not self._ready or not event.key.startswith(self._prefix):
            return
        self.ledger.observe(event.key, None if event.type == "DELETED" else event.entry.obj)

    def _ensure_ready(self, resource: Resource) -> None:
        if not self._ready:
            self.start_allocations(resource.collection_prefix(None))

    async def create(
        self, resource: Resource, namespace: str | None, obj: dict[str, Any], options: WriteOptions
    ) -> dict[str, Any]:
        if not is_service(resource):
            return await super().create(resource, namespace, obj, options)
        self._ensure_ready(resource)
        obj = deep_copy(obj)
        allocation = self.ledger.allocate_create(obj, dry_run=options.dry_run)
        try:
            return await super().create(resource, namespace, obj, options)
        finally:
            allocation.finish()

    async def _write_update(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        current: Entry,
        obj: dict[str, Any],
        options: WriteOptions,
        subresource: str,
    ) -> dict[str, Any]:
        if not is_service(resource) or subresource:
            return await super()._write_update(resource, namespace, name, current, obj, options, subresource)
        self._ensure_ready(resource)
        new = deep_copy(obj)
        allocation = self.ledger.allocate_update(new, current.obj, dry_run=options.dry_run)
        try:
            return await super()._write_update(resource, namespace, name, current, new, options, subresource)
        finally:
            allocation.finish()


__all__ = ["ServiceStore", "is_service"]
