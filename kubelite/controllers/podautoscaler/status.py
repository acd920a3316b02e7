"""HPA status helpers (pure): conditions with upstream's transition rule, metric statuses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubelite.machinery.meta import rfc3339
from kubelite.machinery.quantity import Quantity

__all__ = ["metric_status", "set_condition"]


def set_condition(status: dict[str, Any], kind: str, value: str, reason: str, message: str, *, now: datetime) -> None:
    """Set one condition in place; lastTransitionTime moves only when its status changes.  New
    conditions go last (so AbleToScale, ScalingActive, ScalingLimited keep the order first set)."""
    conditions = status.setdefault("conditions", [])
    found = next((c for c in conditions if c.get("type") == kind), None)
    if found is None:
        found = {"type": kind}
        conditions.append(found)
    if found.get("status") != value:
        found["lastTransitionTime"] = rfc3339(now)
    found["status"] = value
    found["reason"] = reason
    found["message"] = message


def metric_status(spec: dict[str, Any], utilization: int | None, raw_milli: int) -> dict[str, Any]:
    """The currentMetrics entry for a Resource or ContainerResource metric spec."""
    current: dict[str, Any] = {}
    if utilization is not None:
        current["averageUtilization"] = utilization
    current["averageValue"] = str(Quantity.from_milli(raw_milli))
    if spec.get("type") == "ContainerResource":
        source = spec.get("containerResource") or {}
        return {
            "type": "ContainerResource",
            "containerResource": {"name": source.get("name"), "container": source.get("container"), "current": current},
        }
    source = spec.get("resource") or {}
    return {"type": "Resource", "resource": {"name": source.get("name"), "current": current}}
