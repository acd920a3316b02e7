"""Kinds outside core and workloads: Leases, RBAC, autoscaling, PodDisruptionBudgets, Ingresses,
EndpointSlices, PriorityClasses, StorageClasses and CustomResourceDefinitions (their names)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from kubelite.apiserver.registry.validation import containers, field, meta, names, workloads
from kubelite.apiserver.registry.validation.field import Go
from kubelite.machinery.errors import Cause

RBAC_GROUP = "rbac.authorization.k8s.io"
PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
HIGHEST_USER_PRIORITY = 1000000000
SYSTEM_PRIORITY_CLASSES = ("system-node-critical", "system-cluster-critical")

Obj = Mapping[str, Any]


def _spec(obj: Obj) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def validate_lease(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + _lease_spec(_spec(obj))


def validate_lease_update(new: Obj, old: Obj) -> list[Cause]:
    return meta.validate_object_meta_update(new, old) + _lease_spec(_spec(new))


def _lease_spec(spec: Mapping[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        causes.append(field.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        causes.append(field.invalid("spec.leaseTransitions", transitions, field.NEGATIVE))
    if spec.get("preferredHolder") and not spec.get("strategy"):
        causes.append(field.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))
    return causes


# -- RBAC ------------------------------------------------------------------------------------------


def validate_role(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_path_segment)
    return causes + _rules(obj.get("rules") or [], namespaced=True)


def validate_cluster_role(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=False, name_fn=names.name_is_path_segment)
    causes += _rules(obj.get("rules") or [], namespaced=False)
    aggregation = obj.get("aggregationRule")
    if isinstance(aggregation, Mapping):
        selectors = aggregation.get("clusterRoleSelectors") or []
        if not selectors:
            causes.append(
                field.required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                )
            )
        for i, selector in enumerate(selectors):
            causes += meta.validate_label_selector(selector, f"aggregationRule.clusterRoleSelectors[{i}]")
    return causes


def _rules(rules: list[Any], *, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate(rules):
        at = f"rules[{i}]"
        if not rule.get("verbs"):
            causes.append(field.required(f"{at}.verbs", "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs") or []
        if urls:
            if namespaced:
                causes.append(
                    field.invalid(f"{at}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs")
                )
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                causes.append(
                    field.invalid(
                        f"{at}.nonResourceURLs",
                        urls,
                        "rules cannot apply to both regular resources and non-resource URLs",
                    )
                )
            continue
        if not rule.get("apiGroups"):
            causes.append(field.required(f"{at}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            causes.append(field.required(f"{at}.resources", "resource rules must supply at least one resource"))
    return causes


def validate_role_binding(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_path_segment)
    return causes + _binding(obj, namespaced=True)


def validate_cluster_role_binding(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=False, name_fn=names.name_is_path_segment)
    return causes + _binding(obj, namespaced=False)


def _binding(obj: Obj, *, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    ref = obj.get("roleRef") or {}
    if ref.get("apiGroup") != RBAC_GROUP:
        causes.append(field.not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", (RBAC_GROUP,)))
    allowed_kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if ref.get("kind") not in allowed_kinds:
        causes.append(field.not_supported("roleRef.kind", ref.get("kind") or "", allowed_kinds))
    name = str(ref.get("name") or "")
    if not name:
        causes.append(field.required("roleRef.name"))
    else:
        causes += field.each("roleRef.name", name, names.path_segment_name(name))
    for i, subject in enumerate(obj.get("subjects") or ()):
        causes += _subject(subject, namespaced, f"subjects[{i}]")
    return causes


def _subject(subject: Mapping[str, Any], namespaced: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    name = str(subject.get("name") or "")
    if not name:
        causes.append(field.required(f"{path}.name"))
    kind, group = subject.get("kind") or "", subject.get("apiGroup") or ""
    if kind == "ServiceAccount":
        if name:
            causes += field.each(f"{path}.name", name, names.name_is_dns_subdomain(name, False))
        if group:
            causes.append(field.not_supported(f"{path}.apiGroup", group, ("",)))
        if not namespaced and not subject.get("namespace"):
            causes.append(field.required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != RBAC_GROUP:
            causes.append(field.not_supported(f"{path}.apiGroup", group, (RBAC_GROUP,)))
    else:
        causes.append(field.not_supported(f"{path}.kind", kind, ("ServiceAccount", "User", "Group")))
    return causes


def validate_binding_update(new: Obj, old: Obj) -> list[Cause]:
    namespaced = bool((new.get("metadata") or {}).get("namespace"))
    causes = _binding(new, namespaced=namespaced) + meta.validate_object_meta_update(new, old)
    ref, old_ref = new.get("roleRef") or {}, old.get("roleRef") or {}
    if ref != old_ref:
        shown = Go(
            f"rbac.RoleRef{{APIGroup:{field.render(ref.get('apiGroup') or '')}, "
            f"Kind:{field.render(ref.get('kind') or '')}, Name:{field.render(ref.get('name') or '')}}}"
        )
        causes.append(field.invalid("roleRef", shown, "cannot change roleRef"))
    return causes


def validate_role_update(new: Obj, old: Obj) -> list[Cause]:
    namespaced = bool((new.get("metadata") or {}).get("namespace"))
    return _rules(new.get("rules") or [], namespaced=namespaced) + meta.validate_object_meta_update(new, old)


# -- autoscaling and policy ------------------------------------------------------------------------


def validate_hpa(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + _hpa_spec(_spec(obj))


def validate_hpa_update(new: Obj, old: Obj) -> list[Cause]:
    return meta.validate_object_meta_update(new, old) + _hpa_spec(_spec(new))


def _hpa_spec(spec: Mapping[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    minimum = spec.get("minReplicas")
    maximum = field.as_int(spec.get("maxReplicas"))
    if isinstance(minimum, int) and minimum < 1:
        causes.append(field.invalid("spec.minReplicas", minimum, "must be greater than or equal to 1"))
    if maximum < 1:
        causes.append(field.invalid("spec.maxReplicas", maximum, "must be greater than 0"))
    if isinstance(minimum, int) and maximum < minimum:
        causes.append(field.invalid("spec.maxReplicas", maximum, "must be greater than or equal to `minReplicas`"))
    ref = spec.get("scaleTargetRef") or {}
    for key in ("kind", "name"):
        value = str(ref.get(key) or "")
        if not value:
            causes.append(field.required(f"spec.scaleTargetRef.{key}"))
        else:
            causes += field.each(f"spec.scaleTargetRef.{key}", value, names.path_segment_name(value))
    target = spec.get("targetCPUUtilizationPercentage")
    if isinstance(target, int) and target < 1:
        causes.append(field.invalid("spec.targetCPUUtilizationPercentage", target, "must be greater than 0"))
    return causes


def validate_pdb(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + _pdb_spec(_spec(obj))


def validate_pdb_update(new: Obj, old: Obj) -> list[Cause]:
    return meta.validate_object_meta_update(new, old) + _pdb_spec(_spec(new))


def _pdb_spec(spec: Mapping[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append(field.invalid("spec", dict(spec), "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        if spec.get(key) is not None:
            causes += workloads.int_or_percent(spec[key], f"spec.{key}")
    causes += meta.validate_label_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("AlwaysAllow", "IfHealthyBudget"):
        causes.append(
            field.not_supported("spec.unhealthyPodEvictionPolicy", policy, ("AlwaysAllow", "IfHealthyBudget"))
        )
    return causes


# -- networking ------------------------------------------------------------------------------------


def validate_ingress(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + _ingress_spec(_spec(obj))


def validate_ingress_update(new: Obj, old: Obj) -> list[Cause]:
    return meta.validate_object_meta_update(new, old) + _ingress_spec(_spec(new))


def _ingress_spec(spec: Mapping[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    rules = spec.get("rules") or []
    if spec.get("defaultBackend") is not None:
        causes += _ingress_backend(spec["defaultBackend"], "spec.defaultBackend")
    elif not rules:
        causes.append(
            field.invalid(
                "spec", Go("[]networking.IngressRule(nil)"), "either `defaultBackend` or `rules` must be specified"
            )
        )
    for i, rule in enumerate(rules):
        at = f"spec.rules[{i}]"
        host = str(rule.get("host") or "")
        if host:
            if _is_ip(host):
                causes.append(field.invalid(f"{at}.host", host, "must be a DNS name, not an IP address"))
            else:
                check = names.wildcard_dns1123_subdomain if host.startswith("*") else names.dns1123_subdomain
                causes += field.each(f"{at}.host", host, check(host))
        http = rule.get("http")
        if not isinstance(http, Mapping):
            continue
        paths = http.get("paths") or []
        if not paths:
            causes.append(field.required(f"{at}.http.paths"))
        for j, entry in enumerate(paths):
            causes += _ingress_path(entry, f"{at}.http.paths[{j}]")
    return causes


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ingress_path(entry: Mapping[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    path_type = entry.get("pathType")
    value = str(entry.get("path") or "")
    if path_type is None:
        causes.append(field.required(f"{path}.pathType", "pathType must be specified"))
    elif path_type not in PATH_TYPES:
        causes.append(field.not_supported(f"{path}.pathType", path_type, PATH_TYPES))
    elif path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            causes.append(field.invalid(f"{path}.path", value, "must be an absolute path"))
    elif value and not value.startswith("/"):
        causes.append(field.invalid(f"{path}.path", value, "must be an absolute path"))
    return causes + _ingress_backend(entry.get("backend") or {}, f"{path}.backend")


def _ingress_backend(backend: Mapping[str, Any], path: str) -> list[Cause]:
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        return [field.invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        return []
    if not isinstance(service, Mapping):
        return [field.invalid(path, "", "resource or service backend is required")]
    causes: list[Cause] = []
    name = str(service.get("name") or "")
    if not name:
        causes.append(field.required(f"{path}.service.name"))
    else:
        causes += field.each(f"{path}.service.name", name, names.name_is_dns1035_label(name, False))
    port = service.get("port") or {}
    if port.get("name") and port.get("number"):
        causes.append(field.invalid(f"{path}.service.port", dict(port), "cannot set both port name & port number"))
    elif port.get("name"):
        causes += field.each(f"{path}.service.port.name", port["name"], names.port_name(str(port["name"])))
    elif port.get("number"):
        causes += field.each(f"{path}.service.port.number", port["number"], names.port_num(int(port["number"])))
    else:
        causes.append(field.required(f"{path}.service.port", "port name or number is required"))
    return causes


def validate_endpoint_slice(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + _endpoint_slice_body(obj)


def _endpoint_slice_body(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    address_type = obj.get("addressType") or ""
    if not address_type:
        causes.append(field.required("addressType"))
    elif address_type not in ADDRESS_TYPES:
        causes.append(field.not_supported("addressType", address_type, ADDRESS_TYPES))
    for i, endpoint in enumerate(obj.get("endpoints") or ()):
        addresses = endpoint.get("addresses") or []
        if not addresses:
            causes.append(field.required(f"endpoints[{i}].addresses", "must contain at least 1 address"))
        elif len(addresses) > 100:
            causes.append(field.too_many(f"endpoints[{i}].addresses", len(addresses), 100))
    seen: set[str] = set()
    for i, port in enumerate(obj.get("ports") or ()):
        at = f"ports[{i}]"
        name = str(port.get("name") or "")
        if name:
            causes += field.each(f"{at}.name", name, names.dns1123_label(name))
        if name in seen:
            causes.append(field.duplicate(f"{at}.name", name))
        seen.add(name)
        protocol = port.get("protocol")
        if protocol is None:
            causes.append(field.required(f"{at}.protocol"))
        elif protocol not in containers.PORT_PROTOCOLS:
            causes.append(field.not_supported(f"{at}.protocol", protocol, containers.PORT_PROTOCOLS))
    return causes


def validate_endpoint_slice_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old)
    causes += field.immutable("addressType", new.get("addressType") or "", old.get("addressType") or "")
    return causes + _endpoint_slice_body(new)


# -- scheduling, storage and extension kinds -------------------------------------------------------


def validate_priority_class(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=False, name_fn=names.name_is_dns_subdomain)
    name = str((obj.get("metadata") or {}).get("name") or "")
    if name not in SYSTEM_PRIORITY_CLASSES:
        if name.startswith("system-"):
            causes.append(field.forbidden("metadata.name", "priority class names with 'system-' prefix are reserved"))
        value = obj.get("value")
        if isinstance(value, int) and value > HIGHEST_USER_PRIORITY:
            causes.append(
                field.forbidden("value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}")
            )
    policy = obj.get("preemptionPolicy")
    if policy is not None and policy not in ("Never", "PreemptLowerPriority"):
        causes.append(field.not_supported("preemptionPolicy", policy, ("Never", "PreemptLowerPriority")))
    return causes


def validate_priority_class_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old)
    if new.get("value") != old.get("value"):
        causes.append(field.forbidden("value", "may not be changed in an update."))
    return causes + field.immutable("preemptionPolicy", new.get("preemptionPolicy"), old.get("preemptionPolicy"))


def validate_storage_class(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=False, name_fn=names.name_is_dns_subdomain)
    provisioner = str(obj.get("provisioner") or "")
    if not provisioner:
        causes.append(field.required("provisioner"))
    else:
        causes += field.each("provisioner", provisioner, names.qualified_name(provisioner.lower()))
    policy = obj.get("reclaimPolicy")
    if policy is not None and policy not in ("Delete", "Retain"):
        causes.append(field.not_supported("reclaimPolicy", policy, ("Delete", "Retain")))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        causes.append(field.required("volumeBindingMode"))
    elif mode not in ("Immediate", "WaitForFirstConsumer"):
        causes.append(field.not_supported("volumeBindingMode", mode, ("Immediate", "WaitForFirstConsumer")))
    return causes


def validate_storage_class_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old)
    for key in ("parameters", "provisioner", "reclaimPolicy"):
        if field.semantic(new.get(key)) != field.semantic(old.get(key)):
            causes.append(field.forbidden(key, f"updates to {key} are forbidden."))
    return causes + field.immutable("volumeBindingMode", new.get("volumeBindingMode"), old.get("volumeBindingMode"))


def validate_crd(obj: Obj) -> list[Cause]:
    """Only what makes a CRD unusable: its name must be `<plural>.<group>`, scope and names set."""
    causes = meta.validate_object_meta(obj, namespaced=False, name_fn=names.name_is_dns_subdomain)
    return causes + _crd_spec(obj)


def validate_crd_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old) + _crd_spec(new)
    return causes + field.immutable("spec.scope", _spec(new).get("scope"), _spec(old).get("scope"))


def _crd_spec(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    spec = _spec(obj)
    crd_names = spec.get("names") or {}
    group, plural = str(spec.get("group") or ""), str(crd_names.get("plural") or "")
    name = str((obj.get("metadata") or {}).get("name") or "")
    if name != f"{plural}.{group}":
        causes.append(field.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        causes.append(field.required("spec.group"))
    elif len(group.split(".")) < 2:
        causes.append(field.invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = spec.get("scope") or ""
    if not scope:
        causes.append(field.required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        causes.append(field.not_supported("spec.scope", scope, ("Cluster", "Namespaced")))
    if not plural:
        causes.append(field.required("spec.names.plural"))
    if not crd_names.get("kind"):
        causes.append(field.required("spec.names.kind"))
    if not spec.get("versions"):
        causes.append(
            field.invalid(
                "spec.versions",
                Go("[]apiextensions.CustomResourceDefinitionVersion(nil)"),
                "must have exactly one version marked as storage version",
            )
        )
    return causes
