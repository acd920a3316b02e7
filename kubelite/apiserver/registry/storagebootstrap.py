"""Storage objects the API server creates at start-up: the default StorageClass `local-path`
(provisioner `kubelite.io/local-path`, WaitForFirstConsumer, reclaim Delete, marked default) and
the provisioner's ConfigMap `kube-system/local-path-config` (k3s' `config.json` format with one
`DEFAULT_PATH_FOR_NON_LISTED_NODES` entry).

Both are created only when missing and then left to the user, as k3s' packaged manifests are:
deleting the class or editing the ConfigMap sticks until the objects are deleted again and the
server restarts.  Failures are logged, never fatal (like the other bootstrap objects).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from kubelite.apiserver.objects import ObjectStore, WriteOptions
from kubelite.machinery.errors import ApiError
from kubelite.machinery.resources import ResourceRegistry

log = logging.getLogger(__name__)

STORAGE_CLASS_NAME = "local-path"
PROVISIONER_NAME = "kubelite.io/local-path"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
CONFIG_NAMESPACE = "kube-system"
CONFIG_NAME = "local-path-config"
CONFIG_KEY = "config.json"
DEFAULT_NODE_KEY = "DEFAULT_PATH_FOR_NON_LISTED_NODES"
DEFAULT_STORAGE_PATH = "/var/lib/kubelite/storage"


def storage_class_object() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS_NAME, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": PROVISIONER_NAME,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def config_map_object(path: str) -> dict[str, Any]:
    config = {"nodePathMap": [{"node": DEFAULT_NODE_KEY, "paths": [path]}]}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_NAME, "namespace": CONFIG_NAMESPACE},
        "data": {CONFIG_KEY: json.dumps(config, indent=2)},
    }


async def ensure_storage_objects(
    store: ObjectStore, registry: ResourceRegistry, *, storage_path: str = DEFAULT_STORAGE_PATH
) -> None:
    """Create the default StorageClass and the local-path ConfigMap when missing (idempotent)."""
    for group, version, plural, obj in (
        ("storage.k8s.io", "v1", "storageclasses", storage_class_object()),
        ("", "v1", "configmaps", config_map_object(storage_path)),
    ):
        resource = registry.get(group, version, plural)
        assert resource is not None
        namespace = obj["metadata"].get("namespace") if resource.namespaced else None
        name = obj["metadata"]["name"]
        if store.cache.get(resource.key(namespace, name)) is not None:
            continue
        try:
            await store.create(resource, namespace, obj, WriteOptions())
            log.info("created storage object", extra={"resource": plural, "object": name})
        except ApiError as exc:
            if exc.code != 409:
                log.error("cannot create storage object", extra={"resource": plural, "error": exc.message})


__all__ = ["DEFAULT_STORAGE_PATH", "STORAGE_CLASS_NAME", "config_map_object", "ensure_storage_objects"]
