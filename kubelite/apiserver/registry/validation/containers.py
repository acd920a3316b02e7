"""Container validation: `validateContainerCommon`, ports, env, probes, resources and mounts.

Shared by pods and every pod template.  `volumes` is the set of volume names that validated (a
mount of a broken volume is reported as not found, as upstream does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubelite.apiserver.registry.validation import field, names, quantity
from kubelite.machinery.errors import Cause

PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
HTTP_SCHEMES = ("HTTP", "HTTPS")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
ENV_FIELD_PATHS = (
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def validate_container_common(ctr: Mapping[str, Any], volumes: set[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    name = str(ctr.get("name") or "")
    if not name:
        causes.append(field.required(f"{path}.name"))
    else:
        causes += field.each(f"{path}.name", name, names.dns1123_label(name))
    if not ctr.get("image"):
        causes.append(field.required(f"{path}.image"))
    policy = ctr.get("terminationMessagePolicy") or ""
    if not policy:
        causes.append(field.required(f"{path}.terminationMessagePolicy"))
    elif policy not in TERMINATION_MESSAGE_POLICIES:
        causes.append(field.not_supported(f"{path}.terminationMessagePolicy", policy, TERMINATION_MESSAGE_POLICIES))
    causes += _ports(ctr.get("ports") or [], f"{path}.ports")
    causes += _env(ctr.get("env") or [], f"{path}.env")
    causes += _env_from(ctr.get("envFrom") or [], f"{path}.envFrom")
    causes += _volume_mounts(ctr.get("volumeMounts") or [], volumes, f"{path}.volumeMounts")
    pull = ctr.get("imagePullPolicy") or ""
    if not pull:
        causes.append(field.required(f"{path}.imagePullPolicy"))
    elif pull not in PULL_POLICIES:
        causes.append(field.not_supported(f"{path}.imagePullPolicy", pull, PULL_POLICIES))
    causes += _resources(ctr.get("resources") or {}, f"{path}.resources")
    return causes


def validate_probes(ctr: Mapping[str, Any], path: str) -> list[Cause]:
    """Lifecycle and probes of a regular (or restartable init) container."""
    causes: list[Cause] = []
    lifecycle = ctr.get("lifecycle") or {}
    for hook in ("postStart", "preStop"):
        if isinstance(lifecycle.get(hook), Mapping):
            causes += _handler(lifecycle[hook], f"{path}.lifecycle.{hook}", lifecycle_hook=True)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        value = ctr.get(probe)
        if not isinstance(value, Mapping):
            continue
        at = f"{path}.{probe}"
        causes += _probe(value, at)
        if probe != "readinessProbe" and value.get("successThreshold", 1) != 1:
            causes.append(field.invalid(f"{at}.successThreshold", value.get("successThreshold"), "must be 1"))
    return causes


def _probe(probe: Mapping[str, Any], path: str) -> list[Cause]:
    causes = _handler(probe, path, lifecycle_hook=False)
    for name in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        causes += field.nonnegative(f"{path}.{name}", probe.get(name))
    grace = probe.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and grace <= 0:
        causes.append(field.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0"))
    return causes


def _handler(handler: Mapping[str, Any], path: str, *, lifecycle_hook: bool) -> list[Cause]:
    causes: list[Cause] = []
    kinds = HANDLERS if not lifecycle_hook else ("exec", "httpGet", "tcpSocket", "sleep")
    found = 0
    for kind in kinds:
        action = handler.get(kind)
        if not isinstance(action, Mapping):
            continue
        if found:
            causes.append(field.forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        found += 1
        at = f"{path}.{kind}"
        if kind == "exec" and not action.get("command"):
            causes.append(field.required(f"{at}.command"))
        elif kind == "httpGet":
            if not action.get("path"):
                causes.append(field.required(f"{at}.path"))
            causes += port_num_or_name(action.get("port"), f"{at}.port")
            scheme = action.get("scheme") or ""
            if scheme not in HTTP_SCHEMES:
                causes.append(field.not_supported(f"{at}.scheme", scheme, HTTP_SCHEMES))
        elif kind == "tcpSocket":
            causes += port_num_or_name(action.get("port"), f"{at}.port")
        elif kind == "grpc":
            causes += field.each(f"{at}.port", action.get("port"), names.port_num(field.as_int(action.get("port"))))
    if not found:
        causes.append(field.required(path, "must specify a handler type"))
    return causes


def port_num_or_name(port: Any, path: str) -> list[Cause]:
    """`ValidatePortNumOrName` for an IntOrString port."""
    if isinstance(port, int) and not isinstance(port, bool):
        return field.each(path, port, names.port_num(port))
    if isinstance(port, str):
        return field.each(path, port, names.port_name(port))
    return field.each(path, 0, names.port_num(0))


def _ports(ports: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, port in enumerate(ports):
        at = f"{path}[{i}]"
        name = str(port.get("name") or "")
        if name:
            messages = names.port_name(name)
            if messages:
                causes += field.each(f"{at}.name", name, messages)
            elif name in seen:
                causes.append(field.duplicate(f"{at}.name", name))
            else:
                seen.add(name)
        container_port = field.as_int(port.get("containerPort"))
        if container_port == 0:
            causes.append(field.required(f"{at}.containerPort"))
        else:
            causes += field.each(f"{at}.containerPort", container_port, names.port_num(container_port))
        host_port = field.as_int(port.get("hostPort"))
        if host_port:
            causes += field.each(f"{at}.hostPort", host_port, names.port_num(host_port))
        protocol = port.get("protocol") or ""
        if not protocol:
            causes.append(field.required(f"{at}.protocol"))
        elif protocol not in PORT_PROTOCOLS:
            causes.append(field.not_supported(f"{at}.protocol", protocol, PORT_PROTOCOLS))
    return causes


def host_port_conflicts(containers: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for ci, ctr in enumerate(containers):
        for pi, port in enumerate(ctr.get("ports") or ()):
            host_port = field.as_int(port.get("hostPort"))
            if not host_port:
                continue
            key = f"{port.get('hostIP') or ''}/{port.get('protocol') or ''}/{host_port}"
            if key in seen:
                causes.append(field.duplicate(f"{path}[{ci}].ports[{pi}].hostPort", key))
            seen.add(key)
    return causes


def _env(env: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, var in enumerate(env):
        at = f"{path}[{i}]"
        name = str(var.get("name") or "")
        if not name:
            causes.append(field.required(f"{at}.name"))
        causes += field.each(f"{at}.name", name, names.relaxed_env_var_name(name))
        value_from = var.get("valueFrom")
        if isinstance(value_from, Mapping):
            causes += _env_value_from(value_from, bool(var.get("value")), f"{at}.valueFrom")
    return causes


def _env_value_from(source: Mapping[str, Any], has_value: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    count = 0
    field_ref = source.get("fieldRef")
    if isinstance(field_ref, Mapping):
        count += 1
        causes += _object_field_selector(field_ref, f"{path}.fieldRef")
    if isinstance(source.get("resourceFieldRef"), Mapping):
        count += 1
        if not source["resourceFieldRef"].get("resource"):
            causes.append(field.required(f"{path}.resourceFieldRef.resource"))
    for kind in ("configMapKeyRef", "secretKeyRef"):
        ref = source.get(kind)
        if not isinstance(ref, Mapping):
            continue
        count += 1
        at = f"{path}.{kind}"
        name = str(ref.get("name") or "")
        causes += field.each(f"{at}.name", name, names.name_is_dns_subdomain(name, False))
        key = str(ref.get("key") or "")
        if not key:
            causes.append(field.required(f"{at}.key"))
        else:
            causes += field.each(f"{at}.key", key, names.config_map_key(key))
    if count == 0:
        causes.append(
            field.invalid(
                path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"
            )
        )
    elif has_value:
        causes.append(field.invalid(path, "", "may not be specified when `value` is not empty"))
    elif count > 1:
        causes.append(field.invalid(path, "", "may not have more than one field specified at a time"))
    return causes


def _object_field_selector(ref: Mapping[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    api_version = ref.get("apiVersion") or ""
    field_path = str(ref.get("fieldPath") or "")
    if not api_version:
        return [field.required(f"{path}.apiVersion")]
    if not field_path:
        return [field.required(f"{path}.fieldPath")]
    subscripted = field_path.partition("[")[0] if field_path.endswith("']") else None
    if subscripted in ("metadata.labels", "metadata.annotations"):
        return causes
    if field_path not in ENV_FIELD_PATHS:
        causes.append(field.not_supported(f"{path}.fieldPath", field_path, ENV_FIELD_PATHS))
    return causes


def _env_from(sources: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, source in enumerate(sources):
        at = f"{path}[{i}]"
        count = 0
        for kind in ("configMapRef", "secretRef"):
            ref = source.get(kind)
            if not isinstance(ref, Mapping):
                continue
            count += 1
            name = str(ref.get("name") or "")
            if not name:
                causes.append(field.required(f"{at}.{kind}.name"))
            else:
                causes += field.each(f"{at}.{kind}.name", name, names.name_is_dns_subdomain(name, False))
        if count == 0:
            causes.append(field.invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif count > 1:
            causes.append(field.invalid(path, "", "may not have more than one field specified at a time"))
    return causes


def _volume_mounts(mounts: list[Any], volumes: set[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    mount_points: set[str] = set()
    for i, mount in enumerate(mounts):
        at = f"{path}[{i}]"
        name = str(mount.get("name") or "")
        if not name:
            causes.append(field.required(f"{at}.name"))
        if name not in volumes:
            causes.append(field.not_found(f"{at}.name", name))
        mount_path = str(mount.get("mountPath") or "")
        if not mount_path:
            causes.append(field.required(f"{at}.mountPath"))
        if mount_path in mount_points:
            causes.append(field.invalid(f"{at}.mountPath", mount_path, "must be unique"))
        mount_points.add(mount_path)
        sub_path = str(mount.get("subPath") or "")
        if sub_path:
            causes += local_descending_path(sub_path, f"{path}.subPath")
    return causes


def local_descending_path(target: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if target.startswith("/"):
        causes.append(field.invalid(path, target, "must be a relative path"))
    if ".." in target.replace("\\", "/").split("/"):
        causes.append(field.invalid(path, target, "must not contain '..'"))
    return causes


def _resources(resources: Mapping[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    for kind, values in (("limits", limits), ("requests", requests)):
        for name in sorted(values):
            at = f"{path}.{kind}[{name}]"
            if "/" not in name and name not in STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
                causes.append(field.invalid(at, name, "must be a standard resource for containers"))
            amount = quantity.parse(values[name])
            if amount is not None and amount < 0:
                causes.append(field.invalid(at, str(values[name]), field.NEGATIVE))
    for name in sorted(requests):
        request, limit = quantity.parse(requests[name]), quantity.parse(limits.get(name))
        if name in limits and request is not None and limit is not None and request > limit:
            causes.append(
                field.invalid(
                    f"{path}.requests[{name}]",
                    str(requests[name]),
                    f"must be less than or equal to {name} limit of {limits[name]}",
                )
            )
    return causes


def validate_tolerations(tolerations: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, toleration in enumerate(tolerations):
        at = f"{path}[{i}]"
        key = str(toleration.get("key") or "")
        operator = toleration.get("operator") or ""
        effect = toleration.get("effect") or ""
        value = str(toleration.get("value") or "")
        if key:
            causes += field.each(f"{at}.key", key, names.qualified_name(key))
        if not key and operator != "Exists":
            causes.append(
                field.invalid(
                    f"{at}.operator",
                    operator,
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(
                field.invalid(f"{at}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
            )
        if operator in ("Equal", ""):
            messages = names.label_value(value)
            if messages:
                causes.append(field.invalid(f"{at}.operator", value, ";".join(messages)))
        elif operator == "Exists":
            if value:
                causes.append(
                    field.invalid(f"{at}.operator", dict(toleration), "value must be empty when `operator` is 'Exists'")
                )
        else:
            causes.append(field.not_supported(f"{at}.operator", operator, TOLERATION_OPERATORS))
        if effect and effect not in TAINT_EFFECTS:
            causes.append(field.not_supported(f"{at}.effect", effect, TAINT_EFFECTS))
    return causes
