"""Core kinds other than pods and workloads: Services, ConfigMaps, Secrets, Namespaces, Nodes,
PersistentVolumes and claims, Endpoints (`pkg/apis/core/validation`)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from kubelite.apiserver.registry.validation import containers, field, meta, names, quantity
from kubelite.apiserver.registry.validation.field import Go
from kubelite.machinery.errors import Cause

MAX_SECRET_SIZE = 1024 * 1024
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
PORT_PROTOCOLS = containers.PORT_PROTOCOLS
KUBELET_PORT = 10250
ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
VOLUME_MODES = ("Block", "Filesystem")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"
SERVICE_ACCOUNT_NAME_KEY = "kubernetes.io/service-account.name"
IP_MESSAGE = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"

Obj = Mapping[str, Any]


def _spec(obj: Obj) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _cluster_ips(spec: Mapping[str, Any]) -> list[str]:
    ips = [str(ip) for ip in spec.get("clusterIPs") or ()]
    if not ips and spec.get("clusterIP"):
        ips = [str(spec["clusterIP"])]
    return ips


def _is_headless(spec: Mapping[str, Any]) -> bool:
    ips = _cluster_ips(spec)
    return spec.get("type") in (None, "ClusterIP") and len(ips) == 1 and ips[0] == "None"


def validate_service(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns1035_label)
    return causes + _service_spec(_spec(obj))


def _service_spec(spec: Mapping[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    kind = spec.get("type") or ""
    ports = spec.get("ports") or []
    headless = _is_headless(spec)
    ips = _cluster_ips(spec)
    if not ports and not headless and kind != "ExternalName":
        causes.append(field.required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort"):
        if ips and ips[0] == "None":
            causes.append(field.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
        for i, port in enumerate(ports if kind == "LoadBalancer" else ()):
            if port.get("port") == KUBELET_PORT:
                causes.append(
                    field.invalid(
                        f"spec.ports[{i}]",
                        KUBELET_PORT,
                        f"may not expose port {KUBELET_PORT} externally since it is used by kubelet",
                    )
                )
    elif kind == "ExternalName":
        if ips:
            causes.append(field.forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            causes.append(field.forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            causes.append(field.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            causes += field.each("spec.externalName", cname, names.dns1123_subdomain(cname))
        else:
            causes.append(field.required("spec.externalName"))
    seen_names: set[str] = set()
    for i, port in enumerate(ports):
        causes += _service_port(port, len(ports) > 1, seen_names, f"spec.ports[{i}]")
    causes += meta.validate_labels(spec.get("selector"), "spec.selector")
    affinity = spec.get("sessionAffinity") or ""
    if not affinity:
        causes.append(field.required("spec.sessionAffinity"))
    elif affinity not in SESSION_AFFINITIES:
        causes.append(field.not_supported("spec.sessionAffinity", affinity, SESSION_AFFINITIES))
    plural_ips = [str(ip) for ip in spec.get("clusterIPs") or ()]
    if kind != "ExternalName" and spec.get("clusterIP") and plural_ips and plural_ips[0] != spec["clusterIP"]:
        causes.append(field.invalid("spec.clusterIPs", plural_ips, "first value must match `clusterIP`"))
    elif kind != "ExternalName" and not spec.get("clusterIP") and plural_ips:
        causes.append(field.invalid("spec.clusterIPs", plural_ips, "must be empty when `clusterIP` is not specified"))
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                causes.append(field.invalid("spec.clusterIPs", ips, "'None' must be the first and only value"))
            continue
        if ip and not _is_ip(ip):
            causes.append(field.invalid(f"spec.clusterIPs[{i}]", ip, IP_MESSAGE))
    if not kind:
        causes.append(field.required("spec.type"))
    elif kind not in SERVICE_TYPES:
        causes.append(field.not_supported("spec.type", kind, SERVICE_TYPES))
    if kind == "ClusterIP":
        for i, port in enumerate(ports):
            if port.get("nodePort"):
                causes.append(
                    field.forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
                )
    node_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        if not port.get("nodePort"):
            continue
        key = (port.get("protocol"), port.get("nodePort"))
        if key in node_ports:
            causes.append(field.duplicate(f"spec.ports[{i}].nodePort", port.get("nodePort")))
        node_ports.add(key)
    seen_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        key = (port.get("protocol") or "", port.get("port") or 0)
        if key in seen_ports:
            causes.append(
                field.duplicate(
                    f"spec.ports[{i}]",
                    Go(
                        f'core.ServicePort{{Name:"", Protocol:{field.render(key[0])}, AppProtocol:(*string)(nil), '
                        f"Port:{key[1]}, "
                        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
                    ),
                )
            )
        seen_ports.add(key)
    for policy, allowed in (
        ("externalTrafficPolicy", ("Cluster", "Local")),
        ("internalTrafficPolicy", ("Cluster", "Local")),
    ):
        value = spec.get(policy)
        if value and value not in allowed:
            causes.append(field.not_supported(f"spec.{policy}", value, allowed))
    family_policy = spec.get("ipFamilyPolicy")
    if family_policy is not None and family_policy not in ("PreferDualStack", "RequireDualStack", "SingleStack"):
        causes.append(
            field.not_supported(
                "spec.ipFamilyPolicy", family_policy, ("PreferDualStack", "RequireDualStack", "SingleStack")
            )
        )
    for i, family in enumerate(spec.get("ipFamilies") or ()):
        if family not in ("IPv4", "IPv6"):
            causes.append(field.not_supported(f"spec.ipFamilies[{i}]", family, ("IPv4", "IPv6")))
    return causes


def _service_port(port: Mapping[str, Any], require_name: bool, seen: set[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    name = str(port.get("name") or "")
    if require_name and not name:
        causes.append(field.required(f"{path}.name"))
    elif name:
        causes += field.each(f"{path}.name", name, names.dns1123_label(name))
        if name in seen:
            causes.append(field.duplicate(f"{path}.name", name))
        seen.add(name)
    number = field.as_int(port.get("port"))
    causes += field.each(f"{path}.port", number, names.port_num(number))
    protocol = port.get("protocol") or ""
    if not protocol:
        causes.append(field.required(f"{path}.protocol"))
    elif protocol not in PORT_PROTOCOLS:
        causes.append(field.not_supported(f"{path}.protocol", protocol, PORT_PROTOCOLS))
    causes += containers.port_num_or_name(port.get("targetPort"), f"{path}.targetPort")
    if port.get("appProtocol") is not None:
        app = str(port["appProtocol"])
        causes += field.each(f"{path}.appProtocol", app, names.qualified_name(app))
    return causes


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def validate_service_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old)
    spec, old_spec = _spec(new), _spec(old)
    if "ExternalName" not in (spec.get("type"), old_spec.get("type")):
        ips, old_ips = _cluster_ips(spec), _cluster_ips(old_spec)
        if ips and old_ips and ips[0] != old_ips[0]:
            causes.append(field.invalid("spec.clusterIPs[0]", ips, "may not change once set"))
    return causes + _service_spec(spec)


# -- ConfigMaps and Secrets ------------------------------------------------------------------------


def validate_config_map(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    total = 0
    for key in sorted(data):
        causes += field.each(f"data[{key}]", key, names.config_map_key(key))
        if key in binary:
            causes.append(field.invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += len(str(data[key] or "").encode())
    for key in sorted(binary):
        causes += field.each(f"binaryData[{key}]", key, names.config_map_key(key))
        total += _decoded_size(binary[key])
    if total > MAX_SECRET_SIZE:
        causes.append(field.too_long("", MAX_SECRET_SIZE))
    return causes


def validate_config_map_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old)
    if old.get("immutable"):
        if not new.get("immutable"):
            causes.append(field.forbidden("immutable", IMMUTABLE_WHEN_SET))
        for key in ("data", "binaryData"):
            if (new.get(key) or {}) != (old.get(key) or {}):
                causes.append(field.forbidden(key, IMMUTABLE_WHEN_SET))
    return causes + validate_config_map(new)


def _decoded_size(value: Any) -> int:
    text = str(value or "")
    try:
        return len(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return len(text) * 3 // 4


def _decoded(value: Any) -> bytes | None:
    try:
        return base64.b64decode(str(value or ""), validate=True)
    except (binascii.Error, ValueError):
        return None


def validate_secret(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    data = obj.get("data") or {}
    total = 0
    for key in sorted(data):
        causes += field.each(f"data[{key}]", key, names.config_map_key(key))
        total += _decoded_size(data[key])
    if total > MAX_SECRET_SIZE:
        causes.append(field.too_long("data", MAX_SECRET_SIZE))
    kind = obj.get("type") or ""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if kind == "kubernetes.io/service-account-token":
        if not annotations.get(SERVICE_ACCOUNT_NAME_KEY):
            causes.append(field.required(f"metadata.annotations[{SERVICE_ACCOUNT_NAME_KEY}]"))
    elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if kind == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            causes.append(field.required(f"data[{key}]"))
        else:
            try:
                parsed = json.loads(_decoded(data[key]) or b"")
            except ValueError as exc:
                causes.append(field.invalid(f"data[{key}]", "<secret contents redacted>", str(exc)))
            else:
                if not isinstance(parsed, dict):
                    causes.append(
                        field.invalid(
                            f"data[{key}]",
                            "<secret contents redacted>",
                            f"json: cannot unmarshal {_json_type(parsed)} into Go value of type "
                            "map[string]interface {}",
                        )
                    )
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            causes.append(field.required("data[username]"))
            causes.append(field.required("data[password]"))
    elif kind == "kubernetes.io/ssh-auth":
        if not _decoded(data.get("ssh-privatekey")):
            causes.append(field.required("data[ssh-privatekey]"))
    elif kind == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                causes.append(field.required(f"data[{key}]"))
    return causes


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else "value"


def validate_secret_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old)
    causes += field.immutable("type", new.get("type") or "", old.get("type") or "")
    if old.get("immutable"):
        if not new.get("immutable"):
            causes.append(field.forbidden("immutable", IMMUTABLE_WHEN_SET))
        if (new.get("data") or {}) != (old.get("data") or {}):
            causes.append(field.forbidden("data", IMMUTABLE_WHEN_SET))
    return causes + validate_secret(new)


# -- cluster-scoped core kinds ---------------------------------------------------------------------


def validate_namespace(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=False, name_fn=names.name_is_dns_label)
    return causes + namespace_finalizers(obj)


def namespace_finalizers(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    for finalizer in _spec(obj).get("finalizers") or ():
        text = str(finalizer)
        causes += field.each("spec.finalizers", text, names.qualified_name(text))
        if "/" not in text and text not in STANDARD_FINALIZERS:
            causes.append(
                field.invalid(
                    "spec.finalizers", text, "name is neither a standard finalizer name nor is it fully qualified"
                )
            )
    return causes


def validate_namespace_update(new: Obj, old: Obj) -> list[Cause]:
    return meta.validate_object_meta_update(new, old) + namespace_finalizers(new)


def validate_node(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=False, name_fn=names.name_is_dns_subdomain)
    return causes + _node_taints(_spec(obj).get("taints") or [])


def _node_taints(taints: list[Any]) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(taints):
        at = f"spec.taints[{i}]"
        key, value, effect = str(taint.get("key") or ""), str(taint.get("value") or ""), taint.get("effect") or ""
        causes += field.each(f"{at}.key", key, names.qualified_name(key))
        messages = names.label_value(value)
        if messages:
            causes.append(field.invalid(f"{at}.value", value, ";".join(messages)))
        if not effect:
            causes.append(field.required(f"{at}.effect"))
        elif effect not in containers.TAINT_EFFECTS:
            causes.append(field.not_supported(f"{at}.effect", effect, containers.TAINT_EFFECTS))
        if (key, effect) in seen:
            cause = field.duplicate(at, dict(taint))
            causes.append(Cause(cause.reason, cause.message + ": taints must be unique by key and effect pair", at))
        seen.add((key, effect))
    return causes


def validate_node_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old) + _node_taints(_spec(new).get("taints") or [])
    spec, old_spec = _spec(new), _spec(old)
    old_cidrs = old_spec.get("podCIDRs") or []
    if old_cidrs and list(spec.get("podCIDRs") or []) != list(old_cidrs):
        causes.append(field.forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))
    if old_spec.get("providerID") and spec.get("providerID") != old_spec.get("providerID"):
        causes.append(
            field.forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid')
        )
    return causes


def validate_service_account(obj: Obj) -> list[Cause]:
    return meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)


# -- storage ---------------------------------------------------------------------------------------


def validate_persistent_volume(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=False, name_fn=names.name_is_dns_subdomain)
    spec = _spec(obj)
    modes = spec.get("accessModes") or []
    if not modes:
        causes.append(field.required("spec.accessModes"))
    for mode in modes:
        if mode not in ACCESS_MODES:
            causes.append(field.not_supported("spec.accessModes", mode, ACCESS_MODES))
    if not spec.get("capacity"):
        causes.append(field.required("spec.capacity"))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy and policy not in RECLAIM_POLICIES:
        causes.append(field.not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
    if spec.get("volumeMode") is not None and spec["volumeMode"] not in VOLUME_MODES:
        causes.append(field.not_supported("spec.volumeMode", spec["volumeMode"], VOLUME_MODES))
    return causes


def validate_persistent_volume_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old) + validate_persistent_volume(new)
    return causes + field.immutable("spec.volumeMode", _spec(new).get("volumeMode"), _spec(old).get("volumeMode"))


def validate_persistent_volume_claim(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + _claim_spec(_spec(obj), "spec")


def _claim_spec(spec: Mapping[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    modes = spec.get("accessModes") or []
    if not modes:
        causes.append(field.required(f"{path}.accessModes", "at least 1 access mode is required"))
    causes += meta.validate_label_selector(spec.get("selector"), f"{path}.selector")
    for mode in modes:
        if mode not in ACCESS_MODES:
            causes.append(field.not_supported(f"{path}.accessModes", mode, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        causes.append(field.forbidden(f"{path}.accessModes", "may not use ReadWriteOncePod with other access modes"))
    requests = (spec.get("resources") or {}).get("requests") or {}
    at = f"{path}.resources[storage]"
    if "storage" not in requests:
        causes.append(field.required(at))
    else:
        amount = quantity.parse(requests["storage"])
        if amount is not None and amount <= 0:
            causes.append(field.invalid(at, str(requests["storage"]), "must be greater than zero"))
    class_name = str(spec.get("storageClassName") or "")
    if class_name:
        causes += field.each(f"{path}.storageClassName", class_name, names.name_is_dns_subdomain(class_name, False))
    if spec.get("volumeMode") is not None and spec["volumeMode"] not in VOLUME_MODES:
        causes.append(field.not_supported(f"{path}.volumeMode", spec["volumeMode"], VOLUME_MODES))
    return causes


def validate_persistent_volume_claim_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old) + validate_persistent_volume_claim(new)
    spec, old_spec = dict(_spec(new)), dict(_spec(old))
    if not old_spec.get("volumeName"):
        old_spec["volumeName"] = spec.get("volumeName")
    if old_spec.get("storageClassName") is None:
        old_spec["storageClassName"] = spec.get("storageClassName")
    bound = (new.get("status") or {}).get("phase") == "Bound"
    if bound:
        requests = dict((spec.get("resources") or {}).get("requests") or {})
        requests["storage"] = ((old_spec.get("resources") or {}).get("requests") or {}).get("storage")
        spec["resources"] = {**(spec.get("resources") or {}), "requests": requests}
    if field.semantic(spec) != field.semantic(old_spec):
        causes.append(
            field.forbidden("spec", "spec is immutable after creation except resources.requests for bound claims")
        )
    size = quantity.parse(((_spec(new).get("resources") or {}).get("requests") or {}).get("storage"))
    old_size = quantity.parse(((_spec(old).get("resources") or {}).get("requests") or {}).get("storage"))
    if size is not None and old_size is not None and size < old_size:
        causes.append(field.forbidden("spec.resources.requests.storage", "field can not be less than previous value"))
    return causes


def validate_endpoints(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + _endpoints_subsets(obj)


def validate_endpoints_update(new: Obj, old: Obj) -> list[Cause]:
    return meta.validate_object_meta_update(new, old) + _endpoints_subsets(new)


def _endpoints_subsets(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    for i, subset in enumerate(obj.get("subsets") or ()):
        at = f"subsets[{i}]"
        if not subset.get("addresses") and not subset.get("notReadyAddresses"):
            causes.append(field.required(at, "must specify `addresses` or `notReadyAddresses`"))
        for key in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(subset.get(key) or ()):
                ip = str(address.get("ip") or "")
                if not _is_ip(ip):
                    causes.append(field.invalid(f"{at}.{key}[{j}].ip", ip, IP_MESSAGE))
        for j, port in enumerate(subset.get("ports") or ()):
            port_at = f"{at}.ports[{j}]"
            if len(subset.get("ports") or ()) > 1 and not port.get("name"):
                causes.append(field.required(f"{port_at}.name"))
            number = field.as_int(port.get("port"))
            causes += field.each(f"{port_at}.port", number, names.port_num(number))
            protocol = port.get("protocol") or ""
            if not protocol:
                causes.append(field.required(f"{port_at}.protocol"))
            elif protocol not in PORT_PROTOCOLS:
                causes.append(field.not_supported(f"{port_at}.protocol", protocol, PORT_PROTOCOLS))
    return causes


def validate_event(obj: Obj) -> list[Cause]:
    """core/v1 Events: the event's namespace must agree with its involved object's."""
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    namespace = str((obj.get("metadata") or {}).get("namespace") or "")
    involved = str((obj.get("involvedObject") or {}).get("namespace") or "")
    if (not involved and namespace not in ("", "default")) or (involved and involved != namespace):
        causes.append(field.invalid("involvedObject.namespace", involved, "does not match event.namespace"))
    return causes
