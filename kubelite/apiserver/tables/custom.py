"""Custom resources: tables from a CRD version's `additionalPrinterColumns` (apiextensions' table convertor).

A version without printer columns gets one "Age" column of type date.  Each column's JSONPath is
evaluated with missing keys allowed and only its first result is shown: "string" columns print it
as Go's `fmt.Print` would, other types convert it ("integer", "number", "boolean"; "date" becomes an
age) or give null, which kubectl prints as "<none>".

The JSONPath subset covers what CRDs use: `.a.b`, `['a.b']`, `[0]`, `[*]`, `.*` and filters such as
`[?(@.type=="Ready")]` with `==`, `!=` or bare existence.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from kubelite.apiserver.tables import descriptions as doc
from kubelite.apiserver.tables.format import NAME, Obj, column, human_duration, name, parse_timestamp

DEFAULT_PRINTER_COLUMNS = [
    {
        "name": "Age",
        "type": "date",
        "description": doc.CREATION_TIMESTAMP,
        "jsonPath": ".metadata.creationTimestamp",
    }
]

_STEP = re.compile(
    r"""\.\.?(?P<field>[^.\[\]]+|\*)"""  # .field or .*
    r"""|\[(?P<index>-?\d+)\]"""
    r"""|\[(?P<star>\*)\]"""
    r"""|\[(?P<quote>['"])(?P<key>.*?)(?P=quote)\]"""
    r"""|\[\?\(@(?P<path>[^=!<>)]*?)\s*(?:(?P<op>==|!=)\s*(?P<value>'[^']*'|"[^"]*"|[^)\s]+))?\s*\)\]"""
)


def printer_columns_or_default(printer_columns: list[dict] | None) -> list[dict]:
    return printer_columns or DEFAULT_PRINTER_COLUMNS


def custom_resource_columns(printer_columns: list[dict] | None) -> list[dict]:
    columns = [dict(NAME)]
    for spec in printer_columns_or_default(printer_columns):
        path = str(spec.get("jsonPath") or "")
        description = (
            spec.get("description") or f"Custom resource definition column (in JSONPath format): {path}"
        )
        columns.append(
            column(
                str(spec.get("name") or ""),
                str(spec.get("type") or "string"),
                str(description),
                fmt=str(spec.get("format") or ""),
                priority=int(spec.get("priority") or 0),
            )
        )
    return columns


def custom_resource_cells(printer_columns: list[dict] | None, obj: Obj, now: datetime) -> list:
    cells: list[Any] = [name(obj)]
    for spec in printer_columns_or_default(printer_columns):
        results = evaluate(str(spec.get("jsonPath") or ""), obj)
        if not results or results[0] is None:  # a JSON null prints as nothing, in every column type
            cells.append(None)
        elif (spec.get("type") or "string") == "string":
            cells.append(go_print(results[0]))
        else:
            cells.append(typed_cell(str(spec.get("type")), results[0], now))
    return cells


def typed_cell(kind: str, value: Any, now: datetime) -> Any:
    """`cellForJSONValue`: the value as the column's type, or None when it does not fit."""
    if value is None:
        return None
    if kind == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        if not value:
            return "<unknown>"
        moment = parse_timestamp(value)
        return "<invalid>" if moment is None else human_duration(now - moment)
    return None


def go_print(value: Any) -> str:
    """`fmt.Print` of an unstructured JSON value, as the jsonpath printer writes it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, list):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def go_float(value: float) -> str:
    """Go's `%v` for a float64: shortest digits, exponent form below 1e-4 or from 1e+06 on."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exponent = int(exponent) + len(digit_tuple) - len(digits)  # value = digits * 10**exponent
    decimal_exponent = len(digits) + exponent - 1
    prefix = "-" if sign else ""
    if decimal_exponent < -4 or decimal_exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if decimal_exponent < 0 else '+'}{abs(decimal_exponent):02d}"
    if exponent >= 0:
        return prefix + digits + "0" * exponent
    point = len(digits) + exponent
    if point > 0:
        return f"{prefix}{digits[:point]}.{digits[point:]}"
    return f"{prefix}0.{'0' * -point}{digits}"


def _parse(path: str) -> list[re.Match[str]]:
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    steps, position = [], 0
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            return []
        steps.append(match)
        position = match.end()
    return steps


def _literal(text: str | None) -> Any:
    if text is None:
        return None
    if text[:1] in "'\"":
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return {"true": True, "false": False}.get(text, text)


def evaluate(path: str, obj: Any) -> list[Any]:
    """All values the path selects, in document order; missing keys select nothing."""
    current = [obj]
    for step in _parse(path):
        found: list[Any] = []
        for value in current:
            if step["field"] is not None or step["key"] is not None:
                key = step["field"] if step["field"] is not None else step["key"]
                if key == "*" and step["field"] is not None:
                    found.extend(
                        value.values()
                        if isinstance(value, dict)
                        else value
                        if isinstance(value, list)
                        else []
                    )
                elif isinstance(value, dict) and key in value:
                    found.append(value[key])
            elif step["index"] is not None:
                index = int(step["index"])
                if isinstance(value, list) and -len(value) <= index < len(value):
                    found.append(value[index])
            elif step["star"] is not None:
                found.extend(
                    value if isinstance(value, list) else value.values() if isinstance(value, dict) else []
                )
            elif isinstance(value, list):
                found.extend(item for item in value if _matches(step, item))
        current = found
    return current


def _matches(step: re.Match[str], item: Any) -> bool:
    selected = evaluate(step["path"] or "", item) if step["path"] else [item]
    if step["op"] is None:
        return bool(selected)
    expected = _literal(step["value"])
    equal = bool(selected) and selected[0] == expected
    return equal if step["op"] == "==" else bool(selected) and not equal
