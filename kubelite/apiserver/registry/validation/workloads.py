"""Workload controllers: Deployments, ReplicaSets, StatefulSets, DaemonSets, ReplicationControllers,
PodTemplates and ControllerRevisions (`pkg/apis/apps/validation`, `pkg/apis/core/validation`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubelite.apiserver.registry.validation import field, meta, names, pods
from kubelite.apiserver.registry.validation.field import Go
from kubelite.machinery.errors import Cause

SELECTOR_MISMATCH = "`selector` does not match template `labels`"

Obj = Mapping[str, Any]


def _spec(obj: Obj) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _template_labels(spec: Mapping[str, Any]) -> Any:
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels")


def _selector_and_template(spec: Mapping[str, Any], kind: str, *, required: bool = True) -> list[Cause]:
    """Selector present, valid, non-empty, and matching the template labels (apps semantics)."""
    causes: list[Cause] = []
    selector = spec.get("selector")
    labels = _template_labels(spec)
    if selector is None:
        if required:
            causes.append(field.required("spec.selector"))
    else:
        causes += meta.validate_label_selector(selector, "spec.selector")
        if meta.selector_is_empty(selector):
            shown = field.go_label_selector(selector)
            causes.append(field.invalid("spec.selector", shown, f"empty selector is invalid for {kind}"))
    parsed = meta.as_selector(selector)
    if parsed is None:
        if kind != "daemonset":
            causes.append(
                field.invalid("spec.selector", field.go_label_selector(selector or {}), "invalid label selector")
            )
    elif not parsed.empty and not parsed.matches(labels):
        causes.append(field.invalid("spec.template.metadata.labels", field.go_string_map(labels), SELECTOR_MISMATCH))
    return causes


def _restart_always(spec: Mapping[str, Any], kind: str, *, forbid_deadline: bool = True) -> list[Cause]:
    template_spec = (spec.get("template") or {}).get("spec") or {}
    causes: list[Cause] = []
    restart = template_spec.get("restartPolicy") or ""
    if restart != "Always":
        causes.append(field.not_supported("spec.template.spec.restartPolicy", restart, ("Always",)))
    if template_spec.get("activeDeadlineSeconds") is not None and forbid_deadline:
        causes.append(
            field.forbidden(
                "spec.template.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not Supported"
            )
        )
    return causes


def int_or_percent(value: Any, path: str) -> list[Cause]:
    """`ValidatePositiveIntOrPercent` + `IsNotMoreThan100Percent`."""
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]+%", value):
            return [
                field.invalid(
                    path,
                    Go(value),
                    names.regex_error(
                        "a valid percent string must be a numeric string followed by an ending '%'",
                        "[0-9]+%",
                        "1%",
                        "93%",
                    ),
                )
            ]
        if int(value[:-1]) > 100:
            return [field.invalid(path, Go(value), "must not be greater than 100%")]
        return []
    return field.nonnegative(path, value)


def _int_or_percent_value(value: Any) -> int:
    if isinstance(value, str):
        return int(value[:-1]) if re.fullmatch(r"[0-9]+%", value) else 0
    return value if isinstance(value, int) else 0


def validate_deployment(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + _deployment_spec(_spec(obj))


def _deployment_spec(spec: Mapping[str, Any]) -> list[Cause]:
    causes = field.nonnegative("spec.replicas", spec.get("replicas"))
    causes += _selector_and_template(spec, "deployment")
    causes += pods.validate_pod_template(spec.get("template"), "spec.template")
    causes += _restart_always(spec, "ReplicaSet")
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            causes.append(
                field.forbidden(
                    "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
                )
            )
    elif kind == "RollingUpdate":
        if not isinstance(rolling, Mapping):
            causes.append(field.required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
        else:
            at = "spec.strategy.rollingUpdate"
            causes += int_or_percent(rolling.get("maxUnavailable"), f"{at}.maxUnavailable")
            causes += int_or_percent(rolling.get("maxSurge"), f"{at}.maxSurge")
            if (
                _int_or_percent_value(rolling.get("maxUnavailable")) == 0
                and _int_or_percent_value(rolling.get("maxSurge")) == 0
            ):
                causes.append(
                    field.invalid(
                        f"{at}.maxUnavailable",
                        field.go_int_or_string(rolling.get("maxUnavailable")),
                        "may not be 0 when `maxSurge` is 0",
                    )
                )
    else:
        pointer = "(nil)" if rolling is None else "(0xc000000000)"
        shown = Go(
            f"apps.DeploymentStrategy{{Type:{field.render(kind or '')}, "
            f"RollingUpdate:(*apps.RollingUpdateDeployment){pointer}}}"
        )
        causes.append(field.not_supported("spec.strategy", shown, ("Recreate", "RollingUpdate")))
    causes += field.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += field.nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int):
        causes += field.nonnegative("spec.progressDeadlineSeconds", deadline)
        if deadline <= (spec.get("minReadySeconds") or 0):
            causes.append(
                field.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
            )
    return causes


def validate_deployment_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old) + _deployment_spec(_spec(new))
    return causes + _selector_immutable(new, old)


def _selector_immutable(new: Obj, old: Obj) -> list[Cause]:
    selector, old_selector = _spec(new).get("selector"), _spec(old).get("selector")
    shown = field.go_label_selector(selector) if isinstance(selector, Mapping) else Go("null")
    return field.immutable("spec.selector", selector, old_selector, shown=shown)


def validate_replica_set(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + _replica_set_spec(_spec(obj))


def _replica_set_spec(spec: Mapping[str, Any]) -> list[Cause]:
    causes = field.nonnegative("spec.replicas", spec.get("replicas"))
    causes += field.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += _selector_and_template(spec, "deployment")  # upstream reuses the Deployment wording
    causes += pods.validate_pod_template(spec.get("template"), "spec.template")
    return causes + _restart_always(spec, "ReplicaSet")


def validate_replica_set_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old) + _replica_set_spec(_spec(new))
    return causes + _selector_immutable(new, old)


def validate_stateful_set(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + _stateful_set_spec(_spec(obj))


def _stateful_set_spec(spec: Mapping[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    policy = spec.get("podManagementPolicy") or ""
    if not policy:
        causes.append(field.required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        causes.append(field.invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = spec.get("updateStrategy") or {}
    kind = strategy.get("type") or ""
    rolling = strategy.get("rollingUpdate")
    if not kind:
        causes.append(field.required("spec.updateStrategy"))
    elif kind == "OnDelete":
        if rolling is not None:
            causes.append(
                field.invalid(
                    "spec.updateStrategy.rollingUpdate", rolling, "only allowed for updateStrategy 'RollingUpdate'"
                )
            )
    elif kind == "RollingUpdate":
        if isinstance(rolling, Mapping):
            causes += field.nonnegative("spec.updateStrategy.rollingUpdate.partition", rolling.get("partition"))
            if rolling.get("maxUnavailable") is not None:
                causes += int_or_percent(rolling["maxUnavailable"], "spec.updateStrategy.rollingUpdate.maxUnavailable")
    else:
        causes.append(field.invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'"))
    retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
    for key in ("whenDeleted", "whenScaled"):
        value = retention.get(key)
        if value is not None and value not in ("Retain", "Delete"):
            causes.append(
                field.not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}", value, ("Retain", "Delete"))
            )
    causes += field.nonnegative("spec.replicas", spec.get("replicas"))
    causes += field.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += _selector_and_template(spec, "statefulset")
    causes += pods.validate_pod_template(_with_claim_volumes(spec), "spec.template")
    return causes + _restart_always(spec, "StatefulSet")


def _with_claim_volumes(spec: Mapping[str, Any]) -> Any:
    """The template as its pods will have it: each volumeClaimTemplate becomes a claim volume, so volumeMounts
    may name them (upstream skips the template's pod spec validation for this reason; we check the union)."""
    template = spec.get("template")
    claims = [c for c in spec.get("volumeClaimTemplates") or () if isinstance(c, Mapping)]
    if not isinstance(template, Mapping) or not claims:
        return template
    template_spec = dict(template.get("spec") or {})
    volumes = list(template_spec.get("volumes") or ())
    taken = {v.get("name") for v in volumes if isinstance(v, Mapping)}
    for claim in claims:
        name = (claim.get("metadata") or {}).get("name")
        if name and name not in taken:
            volumes.append({"name": name, "persistentVolumeClaim": {"claimName": name}})
    template_spec["volumes"] = volumes
    return {**template, "spec": template_spec}


STATEFUL_SET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def validate_stateful_set_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old) + _stateful_set_spec(_spec(new))
    frozen = {k: v for k, v in _spec(new).items() if k not in STATEFUL_SET_MUTABLE}
    old_frozen = {k: v for k, v in _spec(old).items() if k not in STATEFUL_SET_MUTABLE}
    if field.semantic(frozen) != field.semantic(old_frozen):
        causes.append(
            field.forbidden(
                "spec",
                (
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
                    "'minReadySeconds' are forbidden"
                ),
            )
        )
    return causes


def validate_daemon_set(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + _daemon_set_spec(_spec(obj))


def _daemon_set_spec(spec: Mapping[str, Any]) -> list[Cause]:
    causes = _selector_and_template(spec, "daemonset", required=False)
    causes += pods.validate_pod_template(spec.get("template"), "spec.template")
    template_spec = (spec.get("template") or {}).get("spec") or {}
    if (template_spec.get("restartPolicy") or "") != "Always":
        causes.append(
            field.not_supported(
                "spec.template.spec.restartPolicy", template_spec.get("restartPolicy") or "", ("Always",)
            )
        )
    if template_spec.get("activeDeadlineSeconds") is not None:
        causes.append(
            field.invalid(
                "spec.template.spec.activeDeadlineSeconds",
                template_spec["activeDeadlineSeconds"],
                "activeDeadlineSeconds in DaemonSet is not Supported",
            )
        )
    causes += field.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    strategy = spec.get("updateStrategy") or {}
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if kind == "RollingUpdate":
        if not isinstance(rolling, Mapping):
            causes.append(field.required("spec.updateStrategy.rollingUpdate"))
        else:
            at = "spec.updateStrategy.rollingUpdate"
            causes += int_or_percent(rolling.get("maxUnavailable"), f"{at}.maxUnavailable")
            causes += int_or_percent(rolling.get("maxSurge"), f"{at}.maxSurge")
            unavailable = _int_or_percent_value(rolling.get("maxUnavailable")) != 0
            surge = _int_or_percent_value(rolling.get("maxSurge")) != 0
            if unavailable and surge:
                causes.append(
                    field.invalid(
                        f"{at}.maxSurge",
                        field.go_int_or_string(rolling.get("maxSurge")),
                        "may not be set when maxUnavailable is non-zero",
                    )
                )
            elif not unavailable and not surge:
                causes.append(field.required(f"{at}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    elif kind != "OnDelete":
        causes.append(field.not_supported("spec.updateStrategy", strategy, ("RollingUpdate", "OnDelete")))
    return causes + field.nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))


def validate_daemon_set_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old) + _daemon_set_spec(_spec(new))
    return causes + _selector_immutable(new, old)


def validate_replication_controller(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + _replication_controller_spec(_spec(obj))


def _replication_controller_spec(spec: Mapping[str, Any]) -> list[Cause]:
    causes = field.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    selector = spec.get("selector") or {}
    if not selector:
        causes.append(field.required("spec.selector"))
    causes += field.nonnegative("spec.replicas", spec.get("replicas"))
    template = spec.get("template")
    if not isinstance(template, Mapping):
        return [*causes, field.required("spec.template")]
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector and any(labels.get(k) != v for k, v in selector.items()):
        causes.append(field.invalid("spec.template.metadata.labels", field.go_string_map(labels), SELECTOR_MISMATCH))
    causes += pods.validate_pod_template(template, "spec.template")
    return causes + _restart_always(spec, "ReplicationController")


def validate_replication_controller_update(new: Obj, old: Obj) -> list[Cause]:
    return meta.validate_object_meta_update(new, old) + _replication_controller_spec(_spec(new))


def validate_pod_template_object(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    return causes + pods.validate_pod_template(obj.get("template"), "template")


def validate_pod_template_object_update(new: Obj, old: Obj) -> list[Cause]:
    return meta.validate_object_meta_update(new, old) + pods.validate_pod_template(new.get("template"), "template")


def validate_controller_revision(obj: Obj) -> list[Cause]:
    causes = meta.validate_object_meta(obj, namespaced=True, name_fn=names.name_is_dns_subdomain)
    if obj.get("data") is None:
        causes.append(field.required("data", "data is mandatory"))
    return causes + field.nonnegative("revision", obj.get("revision"))


def validate_controller_revision_update(new: Obj, old: Obj) -> list[Cause]:
    causes = meta.validate_object_meta_update(new, old) + validate_controller_revision(new)
    return causes + field.immutable("data", new.get("data"), old.get("data"))
