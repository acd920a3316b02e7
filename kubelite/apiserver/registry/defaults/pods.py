"""Pod and pod-template defaults: `SetDefaults_Pod`, `SetDefaults_PodSpec`, containers, volumes.

Also the small helpers every defaulter uses.  All functions mutate the dict they are given and
only fill in what is missing (they are idempotent).
"""

from __future__ import annotations

import re
from typing import Any

from kubelite.apiserver.registry.validation.pods import VOLUME_SOURCES

Obj = dict[str, Any]

DEFAULT_TERMINATION_GRACE_PERIOD = 30
DEFAULT_FILE_MODE = 0o644  # 420: secret, configMap, downwardAPI and projected volumes
PRIORITY_DEFAULT_POLICY = "PreemptLowerPriority"

# Go reference grammar (distribution/reference), enough to find an image's tag.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = (
    r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
)
_REFERENCE = re.compile(
    rf"(?:(?:{_DOMAIN}|\[[a-fA-F0-9:]+\])(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)


def child(parent: Obj, key: str) -> Obj:
    """`parent[key]` as a dict, created (or replacing a null) when missing."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def items_of(parent: Obj, key: str) -> list[Obj]:
    value = parent.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def template_meta(template: Obj) -> None:
    """Go serializes a template's zero `metav1.Time` as `creationTimestamp: null`."""
    child(template, "metadata").setdefault("creationTimestamp", None)


def status_zero(obj: Obj, **zeros: Any) -> None:
    status = child(obj, "status")
    for key, value in zeros.items():
        status.setdefault(key, value)


def image_tag(image: str) -> str:
    """The tag `parsers.ParseImageName` finds: `latest` when neither tag nor digest is given, ""
    for a digest-only or unparseable reference."""
    match = _REFERENCE.fullmatch(image)
    if match is None:
        return ""
    if match.group("tag"):
        return match.group("tag")
    return "" if match.group("digest") else "latest"


def pod(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    for key in ("containers", "initContainers"):
        for ctr in items_of(spec, key):
            resources = ctr.get("resources")
            limits = resources.get("limits") if isinstance(resources, dict) else None
            if isinstance(limits, dict) and limits:
                requests = child(resources, "requests")  # type: ignore[arg-type]
                for name, value in limits.items():
                    requests.setdefault(name, value)
    spec.setdefault("enableServiceLinks", True)
    if spec.get("hostNetwork"):
        for key in ("containers", "initContainers"):
            for ctr in items_of(spec, key):
                for port in items_of(ctr, "ports"):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    _pod_spec(spec)
    if not spec.get("priorityClassName"):
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", PRIORITY_DEFAULT_POLICY)


def _pod_spec(spec: Obj) -> None:
    """`SetDefaults_PodSpec` plus everything nested in a pod spec."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for volume in items_of(spec, "volumes"):
        _volume(volume)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for ctr in items_of(spec, key):
            _container(ctr)


def pod_template(template: Obj) -> None:
    template_meta(template)
    _pod_spec(child(template, "spec"))


def _container(ctr: Obj) -> None:
    if not ctr.get("imagePullPolicy"):
        ctr["imagePullPolicy"] = "Always" if image_tag(str(ctr.get("image") or "")) == "latest" else "IfNotPresent"
    if not ctr.get("terminationMessagePath"):
        ctr["terminationMessagePath"] = "/dev/termination-log"
    if not ctr.get("terminationMessagePolicy"):
        ctr["terminationMessagePolicy"] = "File"
    for port in items_of(ctr, "ports"):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    for env in items_of(ctr, "env"):
        value_from = env.get("valueFrom")
        if isinstance(value_from, dict) and isinstance(value_from.get("fieldRef"), dict):
            _field_ref(value_from["fieldRef"])
    if ctr.get("resources") is None:
        ctr["resources"] = {}
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = ctr.get(name)
        if isinstance(probe, dict):
            for key, value in (
                ("timeoutSeconds", 1),
                ("periodSeconds", 10),
                ("successThreshold", 1),
                ("failureThreshold", 3),
            ):
                if not probe.get(key):
                    probe[key] = value
            _http_get(probe)
    lifecycle = ctr.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _http_get(lifecycle[hook])


def _http_get(handler: Obj) -> None:
    action = handler.get("httpGet")
    if isinstance(action, dict):
        if not action.get("path"):
            action["path"] = "/"
        if not action.get("scheme"):
            action["scheme"] = "HTTP"


def _field_ref(ref: Obj) -> None:
    if not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def _volume(volume: Obj) -> None:
    if not any(volume.get(key) is not None for key in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    volume_source(volume)
    for key in ("secret", "configMap"):
        if isinstance(volume.get(key), dict) and volume[key].get("defaultMode") is None:
            volume[key]["defaultMode"] = DEFAULT_FILE_MODE
    downward = volume.get("downwardAPI")
    if isinstance(downward, dict):
        if downward.get("defaultMode") is None:
            downward["defaultMode"] = DEFAULT_FILE_MODE
        for item in items_of(downward, "items"):
            if isinstance(item.get("fieldRef"), dict):
                _field_ref(item["fieldRef"])
    projected = volume.get("projected")
    if isinstance(projected, dict):
        if projected.get("defaultMode") is None:
            projected["defaultMode"] = DEFAULT_FILE_MODE
        for source in items_of(projected, "sources"):
            if isinstance(source.get("downwardAPI"), dict):
                for item in items_of(source["downwardAPI"], "items"):
                    if isinstance(item.get("fieldRef"), dict):
                        _field_ref(item["fieldRef"])
            token = source.get("serviceAccountToken")
            if isinstance(token, dict) and token.get("expirationSeconds") is None:
                token["expirationSeconds"] = 3600
    ephemeral = volume.get("ephemeral")
    if isinstance(ephemeral, dict) and isinstance(ephemeral.get("volumeClaimTemplate"), dict):
        claim_spec(child(ephemeral["volumeClaimTemplate"], "spec"))
    image = volume.get("image")
    if isinstance(image, dict) and not image.get("pullPolicy"):
        image["pullPolicy"] = "Always" if image_tag(str(image.get("reference") or "")) == "latest" else "IfNotPresent"


def volume_source(source: Obj) -> None:
    """Defaults of the sources shared by pod volumes and PersistentVolumes."""
    host_path = source.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""
    iscsi = source.get("iscsi")
    if isinstance(iscsi, dict) and not iscsi.get("iscsiInterface"):
        iscsi["iscsiInterface"] = "default"
    rbd = source.get("rbd")
    if isinstance(rbd, dict):
        for key, value in (("pool", "rbd"), ("user", "admin"), ("keyring", "/etc/ceph/keyring")):
            if not rbd.get(key):
                rbd[key] = value
    azure = source.get("azureDisk")
    if isinstance(azure, dict):
        azure_defaults: tuple[tuple[str, Any], ...] = (
            ("cachingMode", "ReadWrite"),
            ("fsType", "ext4"),
            ("readOnly", False),
            ("kind", "Shared"),
        )
        for key, value in azure_defaults:
            if azure.get(key) is None:
                azure[key] = value
    scale_io = source.get("scaleIO")
    if isinstance(scale_io, dict):
        for key, value in (("storageMode", "ThinProvisioned"), ("fsType", "xfs")):
            if not scale_io.get(key):
                scale_io[key] = value


def pod_template_object(obj: Obj, version: str) -> None:
    pod_template(child(obj, "template"))


def claim_spec(spec: Obj) -> None:
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    if spec.get("resources") is None:
        spec["resources"] = {}
