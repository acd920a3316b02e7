"""Conversion between served versions of one stored resource.

Events are stored as core/v1 and also served as events.k8s.io/v1, field by field.

HorizontalPodAutoscalers are stored as autoscaling/v2 and served as v1 too (kubectl autoscale
creates v1 objects).  v1 knows only a CPU utilization target; what v1 cannot express survives a
v1 round trip in the annotations upstream uses for the purpose.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

V1_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
V1_CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
V1_CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
V1_BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"


def _is_cpu_utilization(metric: dict[str, Any]) -> bool:
    resource = metric.get("resource") or {}
    target = resource.get("target") or {}
    return (
        metric.get("type") == "Resource"
        and resource.get("name") == "cpu"
        and target.get("type") == "Utilization"
    )


def hpa_v2_to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v1"
    spec = out.get("spec") or {}
    status = out.get("status") or {}
    annotations = dict((out.get("metadata") or {}).get("annotations") or {})
    metrics = spec.pop("metrics", None) or []
    other = [m for m in metrics if not _is_cpu_utilization(m)]
    for metric in metrics:
        if _is_cpu_utilization(metric):
            spec["targetCPUUtilizationPercentage"] = metric["resource"]["target"].get("averageUtilization")
    if other:
        annotations[V1_METRICS_ANNOTATION] = orjson.dumps(other).decode()
    behavior = spec.pop("behavior", None)
    if behavior:
        annotations[V1_BEHAVIOR_ANNOTATION] = orjson.dumps(behavior).decode()
    current = status.pop("currentMetrics", None) or []
    for metric in current:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            utilization = (resource.get("current") or {}).get("averageUtilization")
            if utilization is not None:
                status["currentCPUUtilizationPercentage"] = utilization
    conditions = status.pop("conditions", None)
    if conditions:
        annotations[V1_CONDITIONS_ANNOTATION] = orjson.dumps(conditions).decode()
    if annotations:
        out.setdefault("metadata", {})["annotations"] = annotations
    if status or "status" in out:
        out["status"] = status
    return out


def hpa_v1_to_v2(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v2"
    spec = out.setdefault("spec", {})
    meta = out.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    metrics: list[dict[str, Any]] = []
    target = spec.pop("targetCPUUtilizationPercentage", None)
    if target is not None:
        metrics.append(
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
            }
        )
    extra = annotations.pop(V1_METRICS_ANNOTATION, None)
    if extra:
        metrics.extend(orjson.loads(extra))
    if metrics:
        spec["metrics"] = metrics
    behavior = annotations.pop(V1_BEHAVIOR_ANNOTATION, None)
    if behavior:
        spec["behavior"] = orjson.loads(behavior)
    status = out.get("status")
    if isinstance(status, dict):
        current = status.pop("currentCPUUtilizationPercentage", None)
        if current is not None:
            status["currentMetrics"] = [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}
            ]
        conditions = annotations.pop(V1_CONDITIONS_ANNOTATION, None)
        if conditions:
            status["conditions"] = orjson.loads(conditions)
    annotations.pop(V1_CURRENT_METRICS_ANNOTATION, None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return out


# events.k8s.io/v1 field ↔ core/v1 field; the same stored object seen through two APIs
_EVENT_FIELDS = (
    ("regarding", "involvedObject"),
    ("related", "related"),
    ("note", "message"),
    ("reason", "reason"),
    ("type", "type"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("action", "action"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
)


def event_v1_to_core(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Event", "metadata": copy.deepcopy(obj.get("metadata") or {})}
    for new_name, core_name in _EVENT_FIELDS:
        if new_name in obj:
            out[core_name] = copy.deepcopy(obj[new_name])
    if "involvedObject" not in out:
        out["involvedObject"] = {}
    return out


def event_core_to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": copy.deepcopy(obj.get("metadata") or {})
    }
    for new_name, core_name in _EVENT_FIELDS:
        if core_name in obj:
            out[new_name] = copy.deepcopy(obj[core_name])
    return out


_CONVERTERS = {
    ("v1", "events.k8s.io/v1"): event_core_to_v1,
    ("events.k8s.io/v1", "v1"): event_v1_to_core,
    ("autoscaling/v2", "autoscaling/v1"): hpa_v2_to_v1,
    ("autoscaling/v1", "autoscaling/v2"): hpa_v1_to_v2,
}


def convert(obj: dict[str, Any], to_api_version: str) -> dict[str, Any]:
    """`obj` in `to_api_version`; the same object when it already is (no copy)."""
    from_api_version = obj.get("apiVersion")
    if from_api_version == to_api_version:
        return obj
    converter = _CONVERTERS.get((str(from_api_version), to_api_version))
    if converter is None:
        raise ValueError(f"no conversion from {from_api_version} to {to_api_version}")
    return converter(obj)
