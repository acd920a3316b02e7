"""Pods, pod specs and pod templates: `ValidatePodSpec`, `ValidatePodTemplateSpec`, `ValidatePodUpdate`.

Pod specs are validated after defaulting, so a missing restartPolicy or dnsPolicy means the
defaults did not run and is reported as upstream would (`Required value`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import orjson

from kubelite.apiserver.registry.validation import containers, field, meta, names, quantity
from kubelite.machinery.errors import Cause

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket")
MAX_INT32 = 2**31 - 1
FILE_MODE_MESSAGE = "must be a number between 0 and 0777 (octal), both inclusive"
VOLUME_SOURCES = (
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
)
UPDATABLE_POD_FIELDS = (
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
    "was previously negative)"
)


def validate_pod(obj: Mapping[str, Any]) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    spec = obj.get("spec") or {}
    causes += validate_pod_spec(spec, "spec", is_pod=True)
    for i, ctr in enumerate(spec.get("containers") or ()):
        image = str(ctr.get("image") or "")
        if image != image.strip():
            causes.append(
                field.invalid(f"spec.containers[{i}].image", image, "must not have leading or trailing whitespace")
            )
    if spec.get("ephemeralContainers"):
        causes.append(field.forbidden("spec.ephemeralContainers", "cannot be set on create"))
    return causes


def validate_pod_template(template: Any, path: str) -> list[Cause]:
    """`ValidatePodTemplateSpec`: note upstream reports template labels at `<path>.labels`."""
    template = template if isinstance(template, Mapping) else {}
    template_meta = template.get("metadata") or {}
    causes = meta.validate_labels(template_meta.get("labels"), f"{path}.labels")
    causes += meta.validate_annotations(template_meta.get("annotations"), f"{path}.annotations")
    spec = template.get("spec") or {}
    causes += validate_pod_spec(spec, f"{path}.spec", is_pod=False)
    if spec.get("ephemeralContainers"):
        causes.append(
            field.forbidden(f"{path}.spec.ephemeralContainers", "ephemeral containers not allowed in pod template")
        )
    return causes


def validate_pod_spec(spec: Mapping[str, Any], path: str, *, is_pod: bool) -> list[Cause]:
    volumes, causes = _volumes(spec.get("volumes") or [], f"{path}.volumes")
    causes += _containers(spec, volumes, path)
    causes += _host_network(spec, path, is_pod=is_pod)
    restart = spec.get("restartPolicy") or ""
    if not restart:
        causes.append(field.required(f"{path}.restartPolicy"))
    elif restart not in RESTART_POLICIES:
        causes.append(field.not_supported(f"{path}.restartPolicy", restart, RESTART_POLICIES))
    dns = spec.get("dnsPolicy") or ""
    if not dns:
        causes.append(field.required(f"{path}.dnsPolicy"))
    elif dns not in DNS_POLICIES:
        causes.append(field.not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES))
    causes += meta.validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    causes += _dns_config(spec, path)
    for key, check in (("serviceAccountName", names.name_is_dns_subdomain), ("nodeName", names.name_is_dns_subdomain)):
        value = str(spec.get(key) or "")
        if value:
            causes += field.each(f"{path}.{key}", value, check(value, False))
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not 1 <= deadline <= MAX_INT32:
        causes.append(
            field.invalid(f"{path}.activeDeadlineSeconds", deadline, names.inclusive_range_error(1, MAX_INT32))
        )
    for key in ("hostname", "subdomain"):
        value = str(spec.get(key) or "")
        if value:
            causes += field.each(f"{path}.{key}", value, names.dns1123_label(value))
    causes += containers.validate_tolerations(spec.get("tolerations") or [], f"{path}.tolerations")
    priority_class = str(spec.get("priorityClassName") or "")
    if priority_class:
        causes += field.each(
            f"{path}.priorityClassName", priority_class, names.name_is_dns_subdomain(priority_class, False)
        )
    preemption = spec.get("preemptionPolicy")
    if preemption is not None and preemption not in PREEMPTION_POLICIES:
        causes.append(field.not_supported(f"{path}.preemptionPolicy", preemption, PREEMPTION_POLICIES))
    return causes


def _containers(spec: Mapping[str, Any], volumes: set[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    regular = spec.get("containers") or []
    if not regular:
        causes.append(field.required(f"{path}.containers"))
    seen: set[str] = set()
    for i, ctr in enumerate(regular):
        at = f"{path}.containers[{i}]"
        causes += containers.validate_container_common(ctr, volumes, at)
        name = str(ctr.get("name") or "")
        if name in seen:
            causes.append(field.duplicate(f"{at}.name", name))
        seen.add(name)
        causes += containers.validate_probes(ctr, at)
        if ctr.get("restartPolicy") is not None:
            causes.append(field.forbidden(f"{at}.restartPolicy", "may not be set for non-init containers"))
    causes += containers.host_port_conflicts(regular, f"{path}.containers")
    init = spec.get("initContainers") or []
    for i, ctr in enumerate(init):
        at = f"{path}.initContainers[{i}]"
        causes += containers.validate_container_common(ctr, volumes, at)
        name = str(ctr.get("name") or "")
        if name in seen:
            causes.append(field.duplicate(f"{at}.name", name))
        seen.add(name)
        restart = ctr.get("restartPolicy")
        if restart is not None and restart != "Always":
            causes.append(field.not_supported(f"{at}.restartPolicy", restart, ("Always",)))
        if restart == "Always":
            causes += containers.validate_probes(ctr, at)
            continue
        for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
            if ctr.get(key) is not None:
                causes.append(
                    field.forbidden(f"{at}.{key}", "may not be set for init containers without restartPolicy=Always")
                )
    causes += containers.host_port_conflicts(init, f"{path}.initContainers")
    for i, ctr in enumerate(spec.get("ephemeralContainers") or ()):
        at = f"{path}.ephemeralContainers[{i}]"
        causes += containers.validate_container_common(ctr, volumes, at)
        name = str(ctr.get("name") or "")
        if name in seen:
            causes.append(field.duplicate(f"{at}.name", name))
        seen.add(name)
    return causes


def _host_network(spec: Mapping[str, Any], path: str, *, is_pod: bool) -> list[Cause]:
    causes: list[Cause] = []
    if not spec.get("hostNetwork"):
        return causes
    for key in ("containers", "initContainers"):
        for i, ctr in enumerate(spec.get(key) or ()):
            for j, port in enumerate(ctr.get("ports") or ()):
                host, container = port.get("hostPort") or 0, port.get("containerPort") or 0
                if host != container and (is_pod or host != 0):
                    causes.append(
                        field.invalid(
                            f"{path}.{key}[{i}].ports[{j}].containerPort",
                            container,
                            "must match `hostPort` when `hostNetwork` is true",
                        )
                    )
    return causes


def _dns_config(spec: Mapping[str, Any], path: str) -> list[Cause]:
    config = spec.get("dnsConfig")
    if spec.get("dnsPolicy") != "None":
        return []
    if not isinstance(config, Mapping):
        return [field.required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")]
    if not config.get("nameservers"):
        return [
            field.required(
                f"{path}.dnsConfig.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None"
            )
        ]
    return []


def _volumes(volumes: list[Any], path: str) -> tuple[set[str], list[Cause]]:
    """`ValidateVolumes`: the names of the volumes that validated, and the causes."""
    valid: set[str] = set()
    seen: set[str] = set()
    causes: list[Cause] = []
    for i, volume in enumerate(volumes):
        at = f"{path}[{i}]"
        found = _volume_source(volume, at)
        name = str(volume.get("name") or "")
        if not name:
            found.append(field.required(f"{at}.name"))
        else:
            found += field.each(f"{at}.name", name, names.dns1123_label(name))
        if name in seen:
            found.append(field.duplicate(f"{at}.name", name))
        seen.add(name)
        if found:
            causes += found
        else:
            valid.add(name)
    return valid, causes


def _volume_source(volume: Mapping[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    sources = [key for key in VOLUME_SOURCES if volume.get(key) is not None]
    if not sources:
        return [field.required(path, "must specify a volume type")]
    for extra in sources[1:]:
        causes.append(field.forbidden(f"{path}.{extra}", "may not specify more than 1 volume type"))
    kind = sources[0]
    source = volume[kind] if isinstance(volume[kind], Mapping) else {}
    at = f"{path}.{kind}"
    required = {
        "configMap": "name",
        "secret": "secretName",
        "hostPath": "path",
        "persistentVolumeClaim": "claimName",
        "nfs": "server",
        "csi": "driver",
    }.get(kind)
    if required and not source.get(required):
        causes.append(field.required(f"{at}.{required}"))
    if kind == "hostPath" and source.get("type") not in HOST_PATH_TYPES and source.get("type") is not None:
        causes.append(field.not_supported(f"{at}.type", source.get("type"), HOST_PATH_TYPES))
    mode = source.get("defaultMode")
    if isinstance(mode, int) and not 0 <= mode <= 0o777:
        causes.append(field.invalid(f"{at}.defaultMode", mode, FILE_MODE_MESSAGE))
    items = (source.get("items") or []) if kind in ("configMap", "secret") else []
    for j, item in enumerate(items):
        item_at = f"{at}.items[{j}]"
        if not item.get("key"):
            causes.append(field.required(f"{item_at}.key"))
        if not item.get("path"):
            causes.append(field.required(f"{item_at}.path"))
        causes += containers.local_descending_path(str(item.get("path") or ""), f"{item_at}.path")
    size_limit = quantity.parse(source.get("sizeLimit")) if kind == "emptyDir" else None
    if size_limit is not None and size_limit < 0:
        causes.append(field.forbidden(f"{at}.sizeLimit", "SizeLimit field must be a valid resource quantity"))
    return causes


# -- updates ---------------------------------------------------------------------------------------


def validate_pod_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old)
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    causes += validate_pod_spec(spec, "spec", is_pod=True)
    for key in ("containers", "initContainers"):
        if len(spec.get(key) or ()) != len(old_spec.get(key) or ()):
            return [*causes, field.forbidden(f"spec.{key}", "pod updates may not add or remove containers")]
    deadline, old_deadline = spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if deadline is not None:
        if not 0 <= deadline <= MAX_INT32:
            return [
                *causes,
                field.invalid("spec.activeDeadlineSeconds", deadline, names.inclusive_range_error(0, MAX_INT32)),
            ]
        if old_deadline is not None and old_deadline < deadline:
            return [
                *causes,
                field.invalid("spec.activeDeadlineSeconds", deadline, "must be less than or equal to previous value"),
            ]
    elif old_deadline is not None:
        causes.append(
            field.invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value")
        )
    causes += _only_added_tolerations(spec.get("tolerations") or [], old_spec.get("tolerations") or [])
    old_gates = {g.get("name") for g in old_spec.get("schedulingGates") or ()}
    for i, gate in enumerate(spec.get("schedulingGates") or ()):
        if gate.get("name") not in old_gates:
            causes.append(
                field.forbidden(
                    f"spec.schedulingGates[{i}].name",
                    f"only deletion is allowed, but found new scheduling gate '{gate.get('name')}'",
                )
            )
    munged = _munge_pod_spec(spec, old_spec)
    if field.semantic(munged) != field.semantic(old_spec):
        causes.append(
            field.forbidden(
                "spec",
                f"pod updates may not change fields other than {UPDATABLE_POD_FIELDS}\n{_diff(old_spec, munged)}",
            )
        )
    return causes


def _munge_pod_spec(spec: Mapping[str, Any], old_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The new spec with every field a pod update may change copied from the old one."""
    munged = copy.deepcopy(dict(spec))
    for key in ("containers", "initContainers"):
        for ctr, old_ctr in zip(munged.get(key) or (), old_spec.get(key) or (), strict=False):
            ctr["image"] = old_ctr.get("image")
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations", "ephemeralContainers"):
        munged.pop(key, None)
        if key in old_spec:
            munged[key] = copy.deepcopy(old_spec[key])
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    return munged


def _only_added_tolerations(new: list[Any], old: list[Any]) -> list[Cause]:
    for toleration in old:
        wanted = {k: v for k, v in toleration.items() if k != "tolerationSeconds"}
        if not any({k: v for k, v in t.items() if k != "tolerationSeconds"} == wanted for t in new):
            return [
                field.forbidden(
                    "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"
                )
            ]
    return []


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """A compact stand-in for upstream's `cmp.Diff` of the two specs: one -/+ pair per changed field."""
    lines = []
    for key in sorted(set(old) | set(new)):
        before, after = field.semantic(old.get(key)), field.semantic(new.get(key))
        if before != after:
            lines.append(f"- {key}: {orjson.dumps(before).decode()}")
            lines.append(f"+ {key}: {orjson.dumps(after).decode()}")
    return "\n".join(lines)
