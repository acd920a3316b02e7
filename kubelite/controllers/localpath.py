"""The local-path provisioner (after rancher/k3s local-path-provisioner): node-local hostPath
volumes for claims of a StorageClass whose provisioner is `kubelite.io/local-path`.

Contracts:

* Provisioning waits for the consumer: a claim is provisioned once the binder has handed it to us
  (`volume.kubernetes.io/storage-provisioner: kubelite.io/local-path`) and the scheduler has chosen
  its node (`volume.kubernetes.io/selected-node`).  The volume is `pvc-<claim uid>`: hostPath
  `<dir>/pvc-<uid>_<namespace>_<name>` (type DirectoryOrCreate: the node agent creates the directory
  at the first mount), required node affinity on `kubernetes.io/hostname` of that node, the claim's
  request and access modes, the class's reclaim policy (Delete when unset), a claimRef to the claim
  and `pv.kubernetes.io/provisioned-by: kubelite.io/local-path`.  The binder then binds the two.
* `<dir>` comes from the ConfigMap `kube-system/local-path-config`, key `config.json`, in k3s'
  format: `{"nodePathMap": [{"node": "<name>|DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [...]}]}`;
  the first path listed for the node is used.  Without the ConfigMap the constructor's default
  path applies.
* Deleting (reclaim Delete, phase Released): a helper pod `helper-pod-delete-<pv>` in kube-system,
  pinned to the volume's node, runs `rm -rf <dir>` with the parent directory mounted by hostPath;
  when it has Succeeded the pod and the volume are deleted.  A failed helper pod is deleted and
  the deletion retried with back-off (Warning `VolumeFailedDelete` on the volume).
* Creating a volume that exists already (a retry) counts as success; every step is idempotent.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Mapping
from typing import Any

from kubelite.client.interface import builtin, key_of
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.persistentvolume.util import (
    ANN_DYNAMICALLY_PROVISIONED,
    ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
    HOSTNAME_LABEL,
    claim_class,
    claim_ref,
)
from kubelite.machinery.errors import ApiError

log = logging.getLogger(__name__)

PROVISIONER_NAME = "kubelite.io/local-path"
CONFIG_NAMESPACE = "kube-system"
CONFIG_NAME = "local-path-config"
CONFIG_KEY = "config.json"
DEFAULT_NODE_KEY = "DEFAULT_PATH_FOR_NON_LISTED_NODES"
DEFAULT_STORAGE_PATH = "/var/lib/kubelite/storage"
HELPER_NAMESPACE = "kube-system"
HELPER_PREFIX = "helper-pod-delete-"
HELPER_LABEL = "kubelite.io/local-path-helper"
HELPER_IMAGE = "busybox"
ANN_SELECTED_NODE_LOCAL = "local.path.provisioner/selected-node"

PVS = builtin("", "persistentvolumes")
PVCS = builtin("", "persistentvolumeclaims")
PODS = builtin("", "pods")
CONFIGMAPS = builtin("", "configmaps")
STORAGE_CLASSES = builtin("storage.k8s.io", "storageclasses")
NODES = builtin("", "nodes")

Obj = dict[str, Any]


class ConfigError(ValueError):
    """The configuration names no directory for a node (the message is k3s')."""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def default_config_json(path: str) -> str:
    """The `config.json` the server bootstraps: one default path for every node."""
    return json.dumps({"nodePathMap": [{"node": DEFAULT_NODE_KEY, "paths": [path]}]}, indent=2)


def storage_path_for(config_text: str | None, node: str, *, default: str) -> str:
    """The base directory for volumes on `node`; ConfigError when the config has none."""
    if not config_text:
        return default
    try:
        config = json.loads(config_text)
    except ValueError as exc:
        raise ConfigError(f"failed to load the config file: {exc}") from exc
    entries = {str(e.get("node") or ""): list(e.get("paths") or []) for e in config.get("nodePathMap") or []}
    paths = entries.get(node)
    if paths is None:
        paths = entries.get(DEFAULT_NODE_KEY)
        if paths is None:
            raise ConfigError(f"config doesn't contain node {node}, and no {DEFAULT_NODE_KEY} available")
    if not paths:
        raise ConfigError(f"no local path available on node {node}")
    return str(paths[0])


def volume_name(claim: Mapping[str, Any]) -> str:
    return f"pvc-{_meta(claim).get('uid')}"


def volume_dir(base: str, claim: Mapping[str, Any]) -> str:
    meta = _meta(claim)
    return posixpath.join(base, f"{volume_name(claim)}_{meta.get('namespace')}_{meta.get('name')}")


def wants_provisioning(claim: Mapping[str, Any], storage_class: Mapping[str, Any] | None) -> bool:
    """Ours, handed to us by the binder, not bound, not being deleted."""
    meta = _meta(claim)
    if meta.get("deletionTimestamp") or (claim.get("spec") or {}).get("volumeName"):
        return False
    if storage_class is None or storage_class.get("provisioner") != PROVISIONER_NAME:
        return False
    return (meta.get("annotations") or {}).get(ANN_STORAGE_PROVISIONER) == PROVISIONER_NAME


def build_volume(
    claim: Mapping[str, Any], storage_class: Mapping[str, Any], *, node: str, hostname: str, base: str
) -> Obj:
    """The PersistentVolume for `claim` on `node` (pure)."""
    spec = claim.get("spec") or {}
    request = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name(claim),
            "annotations": {ANN_DYNAMICALLY_PROVISIONED: PROVISIONER_NAME, ANN_SELECTED_NODE_LOCAL: node},
        },
        "spec": {
            "capacity": {"storage": request},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "storageClassName": claim_class(claim),
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "claimRef": claim_ref(claim),
            "hostPath": {"path": volume_dir(base, claim), "type": "DirectoryOrCreate"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}]}
                    ]
                }
            },
        },
    }


def volume_node(volume: Mapping[str, Any]) -> str:
    """The node a provisioned volume lives on (our annotation, else its hostname affinity)."""
    found = (_meta(volume).get("annotations") or {}).get(ANN_SELECTED_NODE_LOCAL)
    if found:
        return str(found)
    required = ((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") == HOSTNAME_LABEL and expression.get("values"):
                return str(expression["values"][0])
    return ""


def needs_deletion(volume: Mapping[str, Any]) -> bool:
    meta = _meta(volume)
    return (
        (meta.get("annotations") or {}).get(ANN_DYNAMICALLY_PROVISIONED) == PROVISIONER_NAME
        and (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete"
        and (volume.get("status") or {}).get("phase") == "Released"
        and not meta.get("deletionTimestamp")
    )


def helper_pod(volume: Mapping[str, Any], node: str) -> Obj:
    """k3s' delete helper: `rm -rf` of the volume directory, run on its node."""
    path = str(((volume.get("spec") or {}).get("hostPath") or {}).get("path") or "")
    parent = posixpath.dirname(path.rstrip("/")) or "/"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": HELPER_PREFIX + str(_meta(volume).get("name")),
            "namespace": HELPER_NAMESPACE,
            "labels": {HELPER_LABEL: "delete"},
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": "helper-pod",
                    "image": HELPER_IMAGE,
                    "command": ["sh", "-c", f"rm -rf {_shell_quote(path)}"],
                    "volumeMounts": [{"name": "data", "mountPath": parent}],
                }
            ],
            "volumes": [{"name": "data", "hostPath": {"path": parent, "type": "DirectoryOrCreate"}}],
        },
    }


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


class LocalPathProvisioner(Controller):
    """See the module docstring.  `default_path` applies when `kube-system/local-path-config` is missing."""

    name = "local-path-provisioner"

    def __init__(self, context: ControllerContext, *, default_path: str = DEFAULT_STORAGE_PATH) -> None:
        super().__init__(context)
        self.default_path = default_path
        self.claims = self.informer(PVCS)
        self.volumes = self.informer(PVS)
        self.classes = self.informer(STORAGE_CLASSES)
        self.nodes = self.informer(NODES)
        self.configs = self.informer(CONFIGMAPS, namespace=CONFIG_NAMESPACE)
        self.helpers = self.informer(PODS, namespace=HELPER_NAMESPACE, label_selector=HELPER_LABEL)
        self.claims.add_handler(self._claim_changed, lambda _o, new: self._claim_changed(new), None)
        self.volumes.add_handler(self._volume_changed, lambda _o, new: self._volume_changed(new), None)
        self.helpers.add_handler(self._helper_changed, lambda _o, new: self._helper_changed(new), None)

    def _claim_changed(self, claim: Obj) -> None:
        self.enqueue_key("claim:" + key_of(claim))

    def _volume_changed(self, volume: Obj) -> None:
        self.enqueue_key("volume:" + str(_meta(volume).get("name") or ""))

    def _helper_changed(self, pod: Obj) -> None:
        name = str(_meta(pod).get("name") or "")
        if name.startswith(HELPER_PREFIX):
            self.enqueue_key("volume:" + name[len(HELPER_PREFIX) :])

    async def reconcile(self, key: str) -> None:
        kind, _, rest = key.partition(":")
        if kind == "claim":
            await self._provision(rest)
        elif kind == "volume":
            await self._delete(rest)

    # -- provisioning -------------------------------------------------------------------------------

    def _config_text(self) -> str | None:
        config = self.configs.get(f"{CONFIG_NAMESPACE}/{CONFIG_NAME}")
        return None if config is None else (config.get("data") or {}).get(CONFIG_KEY)

    async def _provision(self, key: str) -> None:
        claim = self.claims.get(key)
        if claim is None:
            return
        storage_class = self.classes.get(claim_class(claim))
        if not wants_provisioning(claim, storage_class) or self.volumes.get(volume_name(claim)) is not None:
            return
        assert storage_class is not None
        event_obj = {**claim, "kind": "PersistentVolumeClaim", "apiVersion": "v1"}
        node = str((_meta(claim).get("annotations") or {}).get(ANN_SELECTED_NODE) or "")
        if not node:
            self.recorder.event(
                event_obj, "Warning", "ProvisioningFailed", "configuration error, no node was specified"
            )
            return
        self.recorder.event(
            event_obj, "Normal", "Provisioning", f'External provisioner is provisioning volume for claim "{key}"'
        )
        try:
            base = storage_path_for(self._config_text(), node, default=self.default_path)
        except ConfigError as exc:
            self.recorder.event(event_obj, "Warning", "ProvisioningFailed", f"failed to provision volume: {exc}")
            return
        node_obj = self.nodes.get(node)
        hostname = str(((node_obj or {}).get("metadata") or {}).get("labels", {}).get(HOSTNAME_LABEL) or node)
        volume = build_volume(claim, storage_class, node=node, hostname=hostname, base=base)
        try:
            await self.client.create(PVS, volume)
        except ApiError as exc:
            if exc.code != 409:
                raise
        log.info("provisioned volume", extra={"claim": key, "volume": volume["metadata"]["name"]})
        self.recorder.event(
            event_obj, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {volume_name(claim)}"
        )

    # -- deleting -----------------------------------------------------------------------------------

    async def _delete(self, name: str) -> None:
        volume = self.volumes.get(name)
        helper = self.helpers.get(f"{HELPER_NAMESPACE}/{HELPER_PREFIX}{name}")
        if volume is None or not needs_deletion(volume):
            if helper is not None and (volume is None or _meta(volume).get("deletionTimestamp")):
                await self._delete_helper(helper)
            return
        if helper is None:
            node = volume_node(volume)
            try:
                await self.client.create(PODS, helper_pod(volume, node), HELPER_NAMESPACE)
            except ApiError as exc:
                if exc.code != 409:
                    raise
            return
        phase = (helper.get("status") or {}).get("phase")
        if phase == "Succeeded":
            try:
                await self.client.delete(PVS, name, preconditions={"uid": str(_meta(volume).get("uid") or "")})
            except ApiError as exc:
                if exc.code != 404:
                    raise
            log.info("deleted volume", extra={"volume": name})
            await self._delete_helper(helper)
        elif phase == "Failed":
            event_obj = {**volume, "kind": "PersistentVolume", "apiVersion": "v1"}
            message = f"failed to delete volume {name}: helper pod {HELPER_PREFIX}{name} failed"
            self.recorder.event(event_obj, "Warning", "VolumeFailedDelete", message)
            await self._delete_helper(helper)
            raise RuntimeError(message)  # retried with the queue's back-off

    async def _delete_helper(self, helper: Mapping[str, Any]) -> None:
        try:
            await self.client.delete(PODS, str(_meta(helper).get("name")), HELPER_NAMESPACE, grace_period_seconds=0)
        except ApiError as exc:
            if exc.code != 404:
                raise


__all__ = [
    "CONFIG_KEY",
    "CONFIG_NAME",
    "CONFIG_NAMESPACE",
    "DEFAULT_NODE_KEY",
    "DEFAULT_STORAGE_PATH",
    "PROVISIONER_NAME",
    "ConfigError",
    "LocalPathProvisioner",
    "build_volume",
    "default_config_json",
    "helper_pod",
    "needs_deletion",
    "storage_path_for",
    "volume_dir",
    "volume_name",
    "volume_node",
    "wants_provisioning",
]
