"""Where the HPA controller gets its inputs besides informers: the target's scale and the pods'
resource metrics.

* `ClientScales` reads a target through the API and shapes its Scale (``spec.replicas``,
  ``status.replicas``, ``status.selector``) as the ``scale`` subresource does, and writes replicas
  through the ``scale`` subresource (a merge patch).  The `Client` protocol has no subresource GET,
  hence the read of the object itself.
* `resource_metrics` lists ``metrics.k8s.io/v1beta1`` PodMetrics with the scale's selector and turns
  them into per-pod metrics (milli-units), with upstream's errors; `pod_metrics_info` is its pure part.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from kubelite.client.interface import Client, builtin
from kubelite.controllers.podautoscaler.replicas import MetricsError, PodMetric
from kubelite.machinery import selectors
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import parse_time
from kubelite.machinery.quantity import QuantityError, milli_value
from kubelite.machinery.resources import Resource

__all__ = ["POD_METRICS", "ClientScales", "ScaleAccess", "parse_go_duration", "pod_metrics_info", "resource_metrics"]

POD_METRICS = builtin("metrics.k8s.io", "pods")


class ScaleAccess(Protocol):
    async def get_scale(self, resource: Resource, name: str, namespace: str) -> dict[str, Any]: ...

    async def update_scale(self, resource: Resource, name: str, namespace: str, replicas: int) -> dict[str, Any]: ...


def scale_from_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = spec.get("selector")
    if isinstance(selector, dict) and ("matchLabels" in selector or "matchExpressions" in selector):
        text = selectors.format_label_selector(selector)
    elif isinstance(selector, dict):  # ReplicationController: a plain map
        text = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    else:
        text = ""
    scale: dict[str, Any] = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": (obj.get("metadata") or {}).get("name", "")},
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0)},
    }
    if text:
        scale["status"]["selector"] = text
    return scale


class ClientScales:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def get_scale(self, resource: Resource, name: str, namespace: str) -> dict[str, Any]:
        return scale_from_object(await self.client.get(resource, name, namespace))

    async def update_scale(self, resource: Resource, name: str, namespace: str, replicas: int) -> dict[str, Any]:
        return await self.client.patch(
            resource, name, {"spec": {"replicas": replicas}}, namespace, patch_type="merge", subresource="scale"
        )


def parse_go_duration(text: str) -> timedelta:
    """Enough of Go's duration syntax for PodMetrics' ``window`` ("15s", "1m0.5s", "250ms")."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    total, number, i = 0.0, "", 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = text[i : i + 2] if text[i : i + 2] in units else ch
        if unit not in units or not number:
            raise ValueError(f"invalid duration {text!r}")
        total += float(number) * units[unit]
        number, i = "", i + len(unit)
    if number:
        raise ValueError(f"invalid duration {text!r}")
    return timedelta(seconds=total)


def _sample_meta(item: Mapping[str, Any]) -> tuple[datetime, timedelta]:
    try:
        at = parse_time(str(item.get("timestamp")))
        window = parse_go_duration(str(item.get("window") or "0s"))
    except ValueError:
        raise MetricsError("invalid timestamp or window in resource metrics") from None
    return at, window


def _milli(usage: Mapping[str, Any], resource: str) -> int | None:
    raw = usage.get(resource)
    if raw is None:
        return None
    try:
        return milli_value(str(raw))
    except QuantityError:
        return None


def pod_metrics_info(
    items: list[Mapping[str, Any]], resource: str, container: str = ""
) -> tuple[dict[str, PodMetric], datetime]:
    """Per-pod values of `resource` (a pod missing any container's value is left out) or, with
    `container`, that container's value (a pod without that container is an error, as upstream)."""
    if not items:
        raise MetricsError("no metrics returned from resource metrics API")
    out: dict[str, PodMetric] = {}
    for item in items:
        meta = item.get("metadata") or {}
        name = str(meta.get("name", ""))
        at, window = _sample_meta(item)
        containers = item.get("containers") or []
        if container:
            match = next((c for c in containers if c.get("name") == container), None)
            if match is None:
                raise MetricsError(
                    f"failed to get container metrics: container {container} not present in metrics for pod "
                    f"{meta.get('namespace', '')}/{name}"
                )
            value = _milli(match.get("usage") or {}, resource)
            if value is not None:
                out[name] = PodMetric(value, at, window)
            continue
        values = [_milli(c.get("usage") or {}, resource) for c in containers]
        if values and all(v is not None for v in values):
            out[name] = PodMetric(sum(v for v in values if v is not None), at, window)
    return out, _sample_meta(items[0])[0]


async def resource_metrics(
    client: Client, namespace: str, selector: str, resource: str, container: str = ""
) -> tuple[dict[str, PodMetric], datetime]:
    try:
        listed = await client.list(POD_METRICS, namespace, label_selector=selector or None)
    except ApiError as exc:
        raise MetricsError(f"unable to fetch metrics from resource metrics API: {exc}") from None
    return pod_metrics_info(list(listed.get("items") or []), resource, container)
