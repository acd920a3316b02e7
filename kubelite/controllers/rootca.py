"""The root CA publisher: every active namespace has the ConfigMap `kube-root-ca.crt` holding the
cluster CA, so that pods can verify the API server (upstream's rootcacertpublisher).

Contracts:

* The queue holds namespace names.  A namespace added, a namespace updated while Active, and the
  ConfigMap added, updated or deleted queue the namespace (upstream does not react to an added
  ConfigMap; here it covers a create that lost a race with someone else's, whose content may need
  repair).  A pass creates the ConfigMap when the cache lacks it, and otherwise rewrites `data`
  and the description annotation when they differ from what they must be (other labels and
  annotations are left as they are).
* Only namespaces in phase Active and not being deleted get the ConfigMap; one that is gone or
  terminating by the time the create lands is not an error.
* Only ConfigMaps named `kube-root-ca.crt` are watched (a field selector), so the cache holds one
  object per namespace.
* Without a CA (`ca_pem=None`) the publisher watches nothing and does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubelite.client.interface import builtin
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.namespace import NAMESPACES, is_namespace_active
from kubelite.controllers.serviceaccount import is_namespace_terminating_error
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, name_of, namespace_of

log = logging.getLogger(__name__)

CONFIG_MAPS = builtin("", "configmaps")
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
CA_KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as "
    "the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of "
    "Kubernetes clusters."
)


def root_ca_config_map(namespace: str, ca: str) -> dict[str, Any]:
    """The ConfigMap to create in `namespace`."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": ROOT_CA_CONFIG_MAP,
            "namespace": namespace,
            "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
        },
        "data": {CA_KEY: ca},
    }


def repaired_config_map(existing: Mapping[str, Any], ca: str) -> dict[str, Any] | None:
    """A copy of `existing` with `data` exactly {"ca.crt": ca} and the description annotation set,
    or None when it is right already (any non-empty description counts, as upstream)."""
    annotations = (existing.get("metadata") or {}).get("annotations") or {}
    if existing.get("data") == {CA_KEY: ca} and annotations.get(DESCRIPTION_ANNOTATION):
        return None
    repaired = deep_copy(dict(existing))
    repaired["data"] = {CA_KEY: ca}
    meta = repaired.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}), DESCRIPTION_ANNOTATION: DESCRIPTION}
    return repaired


class RootCACertPublisher(Controller):
    """Publishes `ca_pem` as `kube-root-ca.crt` in every active namespace."""

    name = "root-ca-cert-publisher"

    def __init__(self, context: ControllerContext, *, ca_pem: bytes | None) -> None:
        super().__init__(context)
        self.ca = ca_pem.decode() if ca_pem is not None else None
        if self.ca is None:
            return
        self.namespaces = self.informer(NAMESPACES)
        self.config_maps = self.informer(CONFIG_MAPS, field_selector=f"metadata.name={ROOT_CA_CONFIG_MAP}")
        self.namespaces.add_handler(self._namespace_added, self._namespace_updated)
        self.config_maps.add_handler(self._config_map_seen, self._config_map_changed, self._config_map_seen)

    def _namespace_added(self, namespace: dict[str, Any]) -> None:
        self.enqueue_key(name_of(namespace))

    def _namespace_updated(self, _old: dict[str, Any], namespace: dict[str, Any]) -> None:
        if is_namespace_active(namespace):
            self.enqueue_key(name_of(namespace))

    def _config_map_changed(self, _old: dict[str, Any], config_map: dict[str, Any]) -> None:
        self._config_map_seen(config_map)

    def _config_map_seen(self, config_map: dict[str, Any]) -> None:
        if name_of(config_map) == ROOT_CA_CONFIG_MAP:
            self.enqueue_key(namespace_of(config_map))

    async def reconcile(self, key: str) -> None:
        if self.ca is None:
            return
        namespace = self.namespaces.get(key)
        if namespace is None or not is_namespace_active(namespace):
            return
        existing = self.config_maps.get(f"{key}/{ROOT_CA_CONFIG_MAP}")
        if existing is None:
            try:
                await self.client.create(CONFIG_MAPS, root_ca_config_map(key, self.ca), key)
            except ApiError as exc:
                # gone or terminating: nothing to publish; AlreadyExists: the cache will show it
                if exc.code == 404 or exc.reason == "AlreadyExists" or is_namespace_terminating_error(exc):
                    return
                raise
            return
        repaired = repaired_config_map(existing, self.ca)
        if repaired is not None:
            await self.client.update(CONFIG_MAPS, repaired, key)
            log.info("root CA config map repaired", extra={"controller": self.name, "namespace": key})


__all__ = [
    "CA_KEY",
    "CONFIG_MAPS",
    "DESCRIPTION",
    "DESCRIPTION_ANNOTATION",
    "ROOT_CA_CONFIG_MAP",
    "RootCACertPublisher",
    "repaired_config_map",
    "root_ca_config_map",
]
