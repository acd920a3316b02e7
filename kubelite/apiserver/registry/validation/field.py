"""Field errors as upstream's `field.Error` renders them, and the Go value syntax inside them.

A `Cause` carries `ErrorBody()`: the error type's text, the bad value, then the detail
(`Invalid value: "Foo_Bar": a lowercase RFC 1123 subdomain ...`).  Upstream prints the bad value
with Go's formatting of the *internal* Go type: strings quoted (`%q`), numbers and booleans bare,
`fmt.Stringer`s (IntOrString, Time) through `String()`, everything else as `%#v`
(`map[string]string{"app":"web"}`, `v1.LabelSelector{...}`).  Python values map onto that here;
a value already in Go syntax is passed as `Go("...")`.  Required, Forbidden and TooLong errors never
show the value.

Field paths are plain strings built by the callers (`spec.containers[0].name`, `data[tls.crt]`),
exactly as `field.Path.String()` prints them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any

from kubelite.machinery.errors import Cause
from kubelite.machinery.meta import parse_time
from kubelite.machinery.selectors import go_quote

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
NOT_FOUND = "FieldValueNotFound"

IMMUTABLE = "field is immutable"
NEGATIVE = "must be greater than or equal to 0"


class Go(str):
    """A value already rendered in Go syntax (`%#v` or `String()`): printed as is."""


def render(value: Any) -> str:
    """The bad value as `ErrorBody` prints it."""
    if isinstance(value, Go):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return go_string_map(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return go_string_slice(value)
    return _json_like(value)


def _with_detail(text: str, detail: str) -> str:
    return f"{text}: {detail}" if detail else text


def required(path: str, detail: str = "") -> Cause:
    return Cause(REQUIRED, _with_detail("Required value", detail), path)


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(INVALID, _with_detail(f"Invalid value: {render(value)}", detail), path)


def not_supported(path: str, value: Any, supported: Iterable[str]) -> Cause:
    values = ", ".join(go_quote(s) for s in supported)
    detail = f"supported values: {values}" if values else ""
    return Cause(NOT_SUPPORTED, _with_detail(f"Unsupported value: {render(value)}", detail), path)


def duplicate(path: str, value: Any) -> Cause:
    return Cause(DUPLICATE, f"Duplicate value: {render(value)}", path)


def forbidden(path: str, detail: str) -> Cause:
    return Cause(FORBIDDEN, _with_detail("Forbidden", detail), path)


def too_long(path: str, max_bytes: int) -> Cause:
    return Cause(TOO_LONG, f"Too long: must have at most {max_bytes} bytes", path)


def too_long_max_length(path: str, max_length: int) -> Cause:
    return Cause(TOO_LONG, f"Too long: may not be longer than {max_length}", path)


def too_many(path: str, actual: int, max_items: int) -> Cause:
    return Cause(TOO_MANY, f"Too many: {actual}: must have at most {max_items} items", path)


def not_found(path: str, value: Any) -> Cause:
    return Cause(NOT_FOUND, f"Not found: {render(value)}", path)


def each(path: str, value: Any, messages: Iterable[str]) -> list[Cause]:
    """One Invalid cause per message, as upstream's `for _, msg := range check(v)` loops make."""
    return [invalid(path, value, message) for message in messages]


def as_int(value: Any) -> int:
    """A JSON integer as Go would hold it: 0 for anything that is not one."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def nonnegative(path: str, value: Any) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, NEGATIVE)]
    return []


def immutable(path: str, new: Any, old: Any, *, shown: Any = None) -> list[Cause]:
    """`ValidateImmutableField`: semantic inequality is an Invalid `field is immutable`."""
    if semantic(new) == semantic(old):
        return []
    return [invalid(path, new if shown is None else shown, IMMUTABLE)]


# -- Go value syntax -------------------------------------------------------------------------------


def go_string_map(value: Mapping[str, str] | None, type_name: str = "map[string]string") -> Go:
    """`%#v` of a Go map: keys sorted, `map[string]string(nil)` for a missing map."""
    if value is None:
        return Go(f"{type_name}(nil)")
    entries = ", ".join(f"{go_quote(k)}:{go_quote(str(value[k]))}" for k in sorted(value))
    return Go(f"{type_name}{{{entries}}}")


def go_string_slice(value: list[str] | None, type_name: str = "[]string") -> Go:
    if value is None:
        return Go(f"{type_name}(nil)")
    return Go(f"{type_name}{{{', '.join(go_quote(str(v)) for v in value)}}}")


def go_label_selector(selector: Mapping[str, Any]) -> Go:
    """`%#v` of a dereferenced `*metav1.LabelSelector`."""
    labels = go_string_map(selector.get("matchLabels") if "matchLabels" in selector else None)
    expressions = selector.get("matchExpressions")
    if expressions is None:
        shown = "[]v1.LabelSelectorRequirement(nil)"
    else:
        items = []
        for expr in expressions:
            values = go_string_slice(expr.get("values"))
            items.append(
                f"v1.LabelSelectorRequirement{{Key:{go_quote(str(expr.get('key', '')))}, "
                f"Operator:{go_quote(str(expr.get('operator', '')))}, Values:{values}}}"
            )
        shown = f"[]v1.LabelSelectorRequirement{{{', '.join(items)}}}"
    return Go(f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{shown}}}")


def go_int_or_string(value: Any) -> Go:
    """`IntOrString.String()`: the number or the text, unquoted."""
    return Go("null" if value is None else str(value))


def go_time(text: Any) -> Go:
    """`metav1.Time.String()` (Go's `time.Time.String()` in UTC) of an RFC 3339 timestamp."""
    if not text:
        return Go("0001-01-01 00:00:00 +0000 UTC")
    try:
        moment = parse_time(str(text)).astimezone(UTC)
    except ValueError:
        return Go(str(text))
    return Go(moment.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"))


def _json_like(value: Any) -> str:
    """Fallback for Go structs we do not model: a compact, stable JSON-ish rendering."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}:{_json_like(value[k])}" for k in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_json_like(v) for v in value) + "]"
    return render(value)


# -- semantic equality -----------------------------------------------------------------------------


def semantic(value: Any) -> Any:
    """`apiequality.Semantic.DeepEqual` on JSON: Go zero values (absent, null, false, 0, "", empty
    list or map) compare equal, because the Go structs they decode into cannot tell them apart."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            normalized = semantic(item)
            if not _is_zero(normalized):
                out[key] = normalized
        return out
    if isinstance(value, list):
        return [semantic(item) for item in value]
    return None if _is_zero(value) else value


def _is_zero(value: Any) -> bool:
    if value is None or value is False:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value == 0
    return isinstance(value, str | list | dict) and len(value) == 0
