"""Cell formatting shared by the printers: ages, label sets, selectors, and column definitions.

Every function here mirrors an upstream helper by name in its docstring, because kubectl shows the
strings verbatim: an age of "2d3h" or a selector of "app in (a,b),tier=web" must come out exactly as
the real API server renders it.  All functions are pure; "now" is always passed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kubelite.apiserver.tables import descriptions as doc

Obj = Mapping[str, Any]

_NS_PER_SECOND = 1_000_000_000
_NS_PER_MINUTE = 60 * _NS_PER_SECOND
_NS_PER_HOUR = 60 * _NS_PER_MINUTE
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:?\d{2})?$"
)


def column(
    name: str, type_: str = "string", description: str = "", *, fmt: str = "", priority: int = 0
) -> dict:
    """A `metav1.TableColumnDefinition`, keys in Go field order (none of them is omitempty)."""
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


NAME = column("Name", "string", doc.NAME, fmt="name")
AGE = column("Age", "string", doc.CREATION_TIMESTAMP)
CONTAINERS = column("Containers", priority=1, description="Names of each container in the template.")
IMAGES = column("Images", priority=1, description="Images referenced by each container in the template.")


def get(obj: Any, *path: str | int) -> Any:
    """Walk dicts and lists; None as soon as a step is missing (JSON objects are sparse)."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(obj, list) or not -len(obj) <= step < len(obj):
                return None
            obj = obj[step]
        elif isinstance(obj, Mapping):
            obj = obj.get(step)
        else:
            return None
    return obj


def as_int(value: Any, default: int = 0) -> int:
    """Go's zero value for a missing integer field; bools are not numbers."""
    if isinstance(value, bool) or value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def parse_timestamp(value: Any) -> datetime | None:
    """metav1.Time / MicroTime from the wire; None for absent or unparseable (Go's zero time)."""
    if not isinstance(value, str) or not value:
        return None
    match = _TIMESTAMP.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, UTC)
    except ValueError:
        return None
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment


def _nanoseconds(delta: timedelta) -> int:
    return ((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000


def _trunc_div(a: int, b: int) -> int:
    """Go integer division: truncates toward zero."""
    q = abs(a) // b
    return q if a >= 0 else -q


def human_duration(delta: timedelta) -> str:
    """apimachinery `duration.HumanDuration`: two or three significant figures, as kubectl's AGE."""
    ns = _nanoseconds(delta)
    seconds = _trunc_div(ns, _NS_PER_SECOND)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = ns // _NS_PER_MINUTE
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = ns // _NS_PER_HOUR
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(timestamp: Any, now: datetime) -> str:
    """`translateTimestampSince`: "<unknown>" for a zero (absent) time."""
    moment = parse_timestamp(timestamp)
    if moment is None:
        return "<unknown>"
    return human_duration(now - moment)


def age(obj: Obj, now: datetime) -> str:
    return since(get(obj, "metadata", "creationTimestamp"), now)


def name(obj: Obj) -> str:
    return str(get(obj, "metadata", "name") or "")


def format_labels(labels: Any) -> str:
    """`labels.FormatLabels`: sorted `k=v` pairs joined by commas, "<none>" when empty."""
    if not isinstance(labels, Mapping) or not labels:
        return "<none>"
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def _requirement(key: str, operator: str, values: list[str]) -> str:
    """`labels.Requirement.String()` for the operators a LabelSelector can express."""
    if operator == "DoesNotExist":
        return "!" + key
    if operator == "Exists":
        return key
    joined = ",".join(sorted(values)) if len(values) > 1 else "".join(values)
    if operator == "In":
        return f"{key} in ({joined})"
    if operator == "NotIn":
        return f"{key} notin ({joined})"
    return f"{key}={joined}"


def selector_string(selector: Any) -> str | None:
    """`metav1.LabelSelectorAsSelector(s).String()`; None where upstream fails to convert the selector.

    Requirements are sorted by key, values of set operators sorted; a nil or empty selector is "".
    """
    if not isinstance(selector, Mapping):
        return ""
    requirements: list[tuple[str, str]] = []
    for key, value in as_dict(selector.get("matchLabels")).items():
        requirements.append((key, _requirement(key, "Equals", [str(value)])))
    for expr in as_list(selector.get("matchExpressions")):
        key, operator = str(get(expr, "key") or ""), get(expr, "operator")
        values = [str(v) for v in as_list(get(expr, "values"))]
        if operator in ("In", "NotIn") and not values:
            return None
        if operator in ("Exists", "DoesNotExist") and values:
            return None
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return None
        requirements.append((key, _requirement(key, str(operator), values)))
    requirements.sort(key=lambda item: item[0])
    return ",".join(text for _, text in requirements)


def format_label_selector(selector: Any) -> str:
    """`metav1.FormatLabelSelector`: "<none>" for an empty selector, "<error>" for an invalid one."""
    text = selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def layout_containers(containers: Any) -> tuple[str, str]:
    """`layoutContainerCells`: container names and images, each comma-joined."""
    items = [c for c in as_list(containers) if isinstance(c, Mapping)]
    return (
        ",".join(str(c.get("name") or "") for c in items),
        ",".join(str(c.get("image") or "") for c in items),
    )


def bool_ptr(value: Any) -> str:
    """`printBoolPtr`: "True"/"False", "<unset>" for nil."""
    if value is None:
        return "<unset>"
    return "True" if value else "False"


def int_or_string(value: Any) -> str:
    """`intstr.IntOrString.String()`."""
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def quantity(value: Any) -> str:
    """`resource.Quantity.String()` for a stored quantity: "0" for a zero value, "<nil>" for a nil pointer.

    Stored quantities are expected in canonical form already (the API server canonicalizes on write),
    so the stored text is returned unchanged.
    """
    if value is None:
        return "0"
    return str(value)


def quantity_ptr(value: Any) -> str:
    return "<nil>" if value is None else str(value)


def list_with_more(items: Iterable[str], limit: int, *, empty: str = "") -> str:
    """The "a,b,c + 2 more..." form `formatEndpoints` and friends use; `empty` when there is nothing."""
    items = list(items)
    shown = ",".join(items[:limit])
    if len(items) > limit:
        return f"{shown} + {len(items) - limit} more..."
    return shown or empty
