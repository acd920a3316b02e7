"""The three PATCH bodies the API server applies itself: JSON patch, JSON merge patch, strategic merge patch.

Server-Side Apply is elsewhere; so is computing patches (kubectl does that client-side).

* `apply_json_patch` — RFC 6902 as the 1.32 apiserver runs it (evanphx/json-patch v4): JSON pointers with
  `~0`/`~1`, `-` appends, negative array indices count from the end, and v4's quirks kept on purpose:
  `replace` of a missing *object* key adds it, `copy` from a missing object key copies `null`, a path not
  starting with `/` is read from its first `/`.
* `apply_merge_patch` — RFC 7386 (v4 `MergePatch`): objects merge, `null` deletes, anything else replaces;
  values placed where nothing was merged have their `null`s pruned (null list elements too).
* `apply_strategic_merge_patch` — apimachinery `strategicpatch` as the server runs it
  (`StrategicMergeMapPatch`: parallel lists merged, unmatched nulls ignored), with patch metadata taken from
  the published 1.32 schemas (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`).

All three are pure: they never change their arguments and return a new document.

Error tree::

    PatchError                      .code, .reason; str() is the upstream low-level message
     ├── MalformedPatchError        400 BadRequest: the body is not a patch of its type (not a list of
     │                                operations, merge patch null/scalar, bad $retainKeys /
     │                                $setElementOrder / $deleteFromPrimitiveList format)
     ├── PatchTooLargeError         413 RequestEntityTooLarge: more than 10000 JSON-patch operations
     ├── InvalidPatchError          422 Invalid: well formed but not applicable to this object — JSON patch
     │   │                            bad path / index / op; strategic lists of lists
     │   └── PatchTestFailedError   422: a JSON-patch `test` operation did not match (kopf's precondition)
     └── PatchFailedError           500, empty reason: strategicpatch's untyped errors (missing merge key,
                                      unknown `$patch`, `$setElementOrder` not matching the list, mixed
                                      element types); upstream does not classify them either

`PatchError.to_api_error()` gives the `ApiError` upstream answers with.  Note that for 422 the apiserver
replaces the detailed message with "the server rejected our request due to an error in our request"
(`NewGenericServerResponse`), so the detail only lives in `str(error)` (for logs).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

import orjson

from kubelite.machinery.errors import ApiError
from kubelite.machinery.schema import GroupVersionKind, Schemas

__all__ = [
    "MAX_JSON_PATCH_OPERATIONS",
    "InvalidPatchError",
    "MalformedPatchError",
    "PatchError",
    "PatchFailedError",
    "PatchTestFailedError",
    "PatchTooLargeError",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "patch_schema_for",
]

MAX_JSON_PATCH_OPERATIONS = 10000

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"
PATCH_STRATEGY = "x-kubernetes-patch-strategy"
PATCH_MERGE_KEY = "x-kubernetes-patch-merge-key"

GO_MAP = "map[string]interface {}"
GO_SLICE = "[]interface {}"


# ---------------------------------------------------------------------------------------------- errors


class PatchError(Exception):
    """A patch that could not be applied; `code` and `reason` say how upstream answers."""

    code = 500
    reason = ""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_api_error(self) -> ApiError:
        """The error as the 1.32 apiserver returns it (message, code and reason)."""
        return ApiError(self.code, self.reason, self.message)


class MalformedPatchError(PatchError):
    code = 400
    reason = "BadRequest"


class PatchTooLargeError(PatchError):
    code = 413
    reason = "RequestEntityTooLarge"

    def to_api_error(self) -> ApiError:
        return ApiError(self.code, self.reason, f"Request entity too large: {self.message}")


class InvalidPatchError(PatchError):
    code = 422
    reason = "Invalid"

    def to_api_error(self) -> ApiError:
        return ApiError(self.code, self.reason, "the server rejected our request due to an error in our request")


class PatchTestFailedError(InvalidPatchError):
    pass


class PatchFailedError(PatchError):
    code = 500
    reason = ""


# ---------------------------------------------------------------------------------- Go-style formatting


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _kind(value: Any) -> str:
    """The Go dynamic type class of a decoded JSON value (ints and floats differ, as int64/float64 do)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map"
    return "slice"


def _token(value: Any) -> Any:
    """A hashable identity with Go `==` semantics on interfaces: same type and same value."""
    kind = _kind(value)
    if kind in ("map", "slice"):
        return (kind, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    return (kind, value)


def _go_float(value: float) -> str:
    """`fmt` `%v` of a float64: shortest digits, exponent form below 1e-4 and from 1e6."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    point = len(digit_tuple) + int(exponent)  # position of the decimal point within `digits`
    prefix = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{point - 1:+03d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def _go_v(value: Any) -> str:
    """`fmt` `%v` of a decoded JSON value (maps print with sorted keys)."""
    kind = _kind(value)
    if kind == "nil":
        return "<nil>"
    if kind == "bool":
        return "true" if value else "false"
    if kind == "float":
        return _go_float(value)
    if kind == "map":
        return "map[" + " ".join(f"{k}:{_go_v(value[k])}" for k in sorted(value)) + "]"
    if kind == "slice":
        return "[" + " ".join(_go_v(v) for v in value) + "]"
    return str(value)


def _go_s(value: Any) -> str:
    """`fmt` `%s` of an interface value: strings as they are, other scalars as `%!s(type=v)`."""
    kind = _kind(value)
    if kind in ("string", "map", "slice"):
        return _go_v(value)
    if kind == "nil":
        return "%!s(<nil>)"
    return f"%!s({_go_type(value)}={_go_v(value)})"


def _go_type(value: Any) -> str:
    return {
        "nil": "%!s(<nil>)",
        "bool": "bool",
        "int": "int64",
        "float": "float64",
        "string": "string",
        "map": GO_MAP,
        "slice": GO_SLICE,
    }[_kind(value)]


def _json_kind(value: Any) -> str:
    """The JSON type name encoding/json uses in `cannot unmarshal X into Go value` errors."""
    return {"bool": "bool", "int": "number", "float": "number", "string": "string", "map": "object"}.get(
        _kind(value), "array"
    )


def _go_quote(text: str) -> str:
    return orjson.dumps(text).decode()


# ------------------------------------------------------------------------------------------ JSON patch


class _OpError(Exception):
    """A container operation failed; the message is upstream's wrapped error chain."""


_DECIMAL = re.compile(r"[+-]?[0-9]+\Z")


def _atoi(text: str) -> int:
    if not _DECIMAL.match(text):
        raise _OpError(f"strconv.Atoi: parsing {_go_quote(text)}: invalid syntax")
    number = int(text)
    if not -(2**63) <= number < 2**63:
        raise _OpError(f"strconv.Atoi: parsing {_go_quote(text)}: value out of range")
    return number


def _invalid_index(index: int) -> _OpError:
    return _OpError(f"Unable to access invalid index: {index}: invalid index referenced")


def _get(container: dict | list, key: str) -> Any:
    """The value at `key`; None for a missing object key or a JSON null (v4 does not tell them apart)."""
    if isinstance(container, dict):
        return container.get(key)
    index = _atoi(key)
    if index < 0:
        if index < -len(container):
            raise _invalid_index(index)
        index += len(container)
    if index >= len(container):
        raise _invalid_index(index)
    return container[index]


def _set(container: dict | list, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
        return
    index = _atoi(key)
    if index < 0:
        if index < -len(container):
            raise _invalid_index(index)
        index += len(container)
    container[index] = value


def _add(container: dict | list, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
        return
    if key == "-":
        container.append(value)
        return
    try:
        index = _atoi(key)
    except _OpError as exc:
        raise _OpError(f"value was not a proper array index: '{key}': {exc}") from None
    size = len(container) + 1
    if index >= size:
        raise _invalid_index(index)
    if index < 0:
        if index < -size:
            raise _invalid_index(index)
        index += size
    container.insert(index, value)


def _remove(container: dict | list, key: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise _OpError(f"Unable to remove nonexistent key: {key}: missing value")
        del container[key]
        return
    index = _atoi(key)
    if index >= len(container):
        raise _invalid_index(index)
    if index < 0:
        if index < -len(container):
            raise _invalid_index(index)
        index += len(container)
    del container[index]


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _find(root: Any, path: str) -> tuple[dict | list, str] | None:
    """The container holding the last token of `path`, and that token; None if the path leads nowhere."""
    tokens = path.split("/")
    if len(tokens) < 2 or not isinstance(root, dict | list):
        return None
    node: dict | list = root
    for token in tokens[1:-1]:
        try:
            child = _get(node, _unescape(token))
        except _OpError:
            return None
        if not isinstance(child, dict | list):
            return None
        node = child
    return node, _unescape(tokens[-1])


def _operand(operation: dict, field: str) -> str:
    value = operation.get(field)
    if value is None:
        missing = "operation missing path field" if field == "path" else "operation, missing from field"
        raise _OpError(f"{missing}: missing value")
    if not isinstance(value, str):
        raise _OpError(f"json: cannot unmarshal {_json_kind(value)} into Go value of type string")
    return value


def _json_equal(left: Any, right: Any) -> bool:
    """Structural equality with JSON types kept apart (1 != 1.0 != true), as v4's `equal` compares bytes."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_json_equal(a, b) for a, b in zip(left, right, strict=True))
    return _kind(left) == _kind(right) and left == right


def _apply_operation(holder: list, operation: dict) -> None:
    """Apply one operation to `holder[0]` (a one-element list, so a root `replace` can swap the document)."""
    kind = operation.get("op")
    kind = kind if isinstance(kind, str) else "unknown"
    value = _copy(operation.get("value"))
    try:
        if kind == "add":
            _op_add(holder[0], operation, value)
        elif kind == "remove":
            _op_remove(holder[0], operation)
        elif kind == "replace":
            _op_replace(holder, operation, value)
        elif kind == "move":
            _op_move(holder[0], operation)
        elif kind == "copy":
            _op_copy(holder[0], operation)
        elif kind == "test":
            _op_test(holder[0], operation)
        else:
            raise InvalidPatchError(f"Unexpected kind: {kind}")
    except _OpError as exc:  # pragma: no cover - every _OpError is wrapped by the op functions
        raise InvalidPatchError(str(exc)) from None


def _op_add(root: Any, operation: dict, value: Any) -> None:
    try:
        path = _operand(operation, "path")
    except _OpError:
        raise InvalidPatchError("add operation failed to decode path: missing value") from None
    found = _find(root, path)
    if found is None:
        raise InvalidPatchError(f'add operation does not apply: doc is missing path: "{path}": missing value')
    try:
        _add(*found, value)
    except _OpError as exc:
        raise InvalidPatchError(f"error in add for path: '{path}': {exc}") from None


def _op_remove(root: Any, operation: dict) -> None:
    try:
        path = _operand(operation, "path")
    except _OpError:
        raise InvalidPatchError("remove operation failed to decode path: missing value") from None
    found = _find(root, path)
    if found is None:
        raise InvalidPatchError(f'remove operation does not apply: doc is missing path: "{path}": missing value')
    try:
        _remove(*found)
    except _OpError as exc:
        raise InvalidPatchError(f"error in remove for path: '{path}': {exc}") from None


def _op_replace(holder: list, operation: dict, value: Any) -> None:
    try:
        path = _operand(operation, "path")
    except _OpError as exc:
        raise InvalidPatchError(f"replace operation failed to decode path: {exc}") from None
    if path == "":
        if isinstance(value, dict | list):  # v4 silently ignores a scalar root value
            holder[0] = value
        return
    found = _find(holder[0], path)
    if found is None:
        raise InvalidPatchError(f"replace operation does not apply: doc is missing path: {path}: missing value")
    container, key = found
    try:
        _get(container, key)
    except _OpError:
        raise InvalidPatchError(
            f"replace operation does not apply: doc is missing key: {path}: missing value"
        ) from None
    _set(container, key, value)


def _op_move(root: Any, operation: dict) -> None:
    try:
        source = _operand(operation, "from")
    except _OpError as exc:
        raise InvalidPatchError(f"move operation failed to decode from: {exc}") from None
    found = _find(root, source)
    if found is None:
        raise InvalidPatchError(f"move operation does not apply: doc is missing from path: {source}: missing value")
    container, key = found
    try:
        value = _get(container, key)
        _remove(container, key)
    except _OpError as exc:
        raise InvalidPatchError(f"error in move for path: '{key}': {exc}") from None
    try:
        path = _operand(operation, "path")
    except _OpError as exc:
        raise InvalidPatchError(f"move operation failed to decode path: {exc}") from None
    found = _find(root, path)
    if found is None:
        raise InvalidPatchError(
            f"move operation does not apply: doc is missing destination path: {path}: missing value"
        )
    try:
        _add(*found, value)
    except _OpError as exc:
        raise InvalidPatchError(f"error in move for path: '{path}': {exc}") from None


def _op_copy(root: Any, operation: dict) -> None:
    try:
        source = _operand(operation, "from")
    except _OpError as exc:
        raise InvalidPatchError(f"copy operation failed to decode from: {exc}") from None
    found = _find(root, source)
    if found is None:
        raise InvalidPatchError(f"copy operation does not apply: doc is missing from path: {source}: missing value")
    try:
        value = _copy(_get(*found))
    except _OpError as exc:
        raise InvalidPatchError(f"error in copy for from: '{source}': {exc}") from None
    try:
        path = _operand(operation, "path")
    except _OpError:
        raise InvalidPatchError("copy operation failed to decode path: missing value") from None
    found = _find(root, path)
    if found is None:
        raise InvalidPatchError(
            f"copy operation does not apply: doc is missing destination path: {path}: missing value"
        )
    try:
        _add(*found, value)
    except _OpError as exc:
        raise InvalidPatchError(f"error while adding value during copy: {exc}") from None


def _op_test(root: Any, operation: dict) -> None:
    try:
        path = _operand(operation, "path")
    except _OpError as exc:
        raise InvalidPatchError(f"test operation failed to decode path: {exc}") from None
    failed = PatchTestFailedError(f"testing value {path} failed: test failed")
    has_value, expected = "value" in operation, operation.get("value")
    if path == "":
        if not (has_value and _json_equal(root, expected)):
            raise failed
        return
    found = _find(root, path)
    if found is None:
        raise InvalidPatchError(f"test operation does not apply: is missing path: {path}: missing value")
    try:
        actual = _get(*found)
    except _OpError as exc:
        raise InvalidPatchError(f"error in test for path: '{path}': {exc}") from None
    if actual is None:
        if not (has_value and expected is None):
            raise failed
    elif not (has_value and _json_equal(actual, expected)):
        raise failed


def apply_json_patch(document: dict, operations: list) -> dict:
    """Apply an RFC 6902 patch; operations run in order and the first failure aborts the whole patch.

    `operations` is the decoded request body (`None`, the JSON `null`, is no operation at all).
    Raises `MalformedPatchError` (400) when the body is not a list of objects, `PatchTooLargeError` (413)
    past 10000 operations, `PatchTestFailedError` (422) when a `test` fails and `InvalidPatchError` (422)
    for any other operation that does not apply, with evanphx/json-patch v4's messages.
    """
    if operations is None:
        return _copy(document)
    if not isinstance(operations, list):
        raise MalformedPatchError(
            f"json: cannot unmarshal {_json_kind(operations)} into Go value of type jsonpatch.Patch"
        )
    for operation in operations:
        if operation is not None and not isinstance(operation, dict):
            raise MalformedPatchError(
                f"json: cannot unmarshal {_json_kind(operation)} into Go value of type jsonpatch.Operation"
            )
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchTooLargeError(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}"
        )
    holder = [_copy(document)]
    for operation in operations:
        _apply_operation(holder, operation or {})
    if not isinstance(holder[0], dict):
        raise InvalidPatchError(f"json: cannot unmarshal {_json_kind(holder[0])} into Go value of type {GO_MAP}")
    return holder[0]


# ------------------------------------------------------------------------------------ JSON merge patch


def _prune_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value if v is not None]
    return value


def _merge_docs(document: dict, patch: dict) -> None:
    for key, value in patch.items():
        if value is None:
            document.pop(key, None)
            continue
        current = document.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge_docs(current, value)
        elif isinstance(current, dict):
            document[key] = _copy(value)  # v4 returns a non-object patch value as it is
        else:
            document[key] = _prune_nulls(value)


def apply_merge_patch(document: dict, patch: dict) -> dict:
    """Apply an RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, lists are replaced.

    Raises `MalformedPatchError` (400, "Invalid JSON Patch") for a `null` or scalar patch and
    `InvalidPatchError` (422) for a list, which upstream would apply and then fail to decode.
    """
    if isinstance(patch, list):
        raise InvalidPatchError(f"json: cannot unmarshal array into Go value of type {GO_MAP}")
    if not isinstance(patch, dict):
        raise MalformedPatchError("Invalid JSON Patch")
    result = _copy(document)
    _merge_docs(result, patch)
    return result


# ------------------------------------------------------------------------------ strategic merge patch


def _no_merge_key(item: Any, merge_key: str) -> PatchFailedError:
    return PatchFailedError(f"map: {_go_v(item)} does not contain declared merge key: {merge_key}")


def _bad_arg_type(expected: str, actual: Any) -> PatchFailedError:
    return PatchFailedError(f"expected a {expected}, but received a {_go_type(actual)}")


def _directive_target(key: str, prefix: str) -> str:
    """The field a `$deleteFromPrimitiveList/<field>` or `$setElementOrder/<field>` key is about."""
    head, slash, field = key.partition("/")
    if not slash or head != prefix:
        kind = "primitive list" if prefix == DELETE_FROM_PRIMITIVE_LIST else "setElementOrder list"
        raise MalformedPatchError(f"invalid patch format of {kind}")
    return field


def _verbatim(value: Any) -> tuple[Any, bool]:
    """Patch content taken as is, without `null` values and directives; False if it is itself a directive.

    Upstream drops maps carrying `$patch` and null values here and lets the typed decode drop the other
    directive keys; kubelite has no typed decode, so it drops those keys too.
    """
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        out = {}
        for key, item in value.items():
            if item is None or key == RETAIN_KEYS or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
                continue
            kept, keep = _verbatim(item)
            if keep:
                out[key] = kept
        return out, True
    if isinstance(value, list):
        return [kept for kept, keep in map(_verbatim, value) if keep], True
    return value, True


def _element_kind(*lists: list) -> str:
    """The one element kind of all `lists` ("map", "string", ...), as upstream's `sliceElementType`."""
    found = None
    for items in lists:
        for item in items:
            kind = _kind(item)
            if found is None:
                if kind == "slice":
                    raise InvalidPatchError("lists of lists are not supported")
                found = kind
            elif kind != found:
                raise PatchFailedError(f"list element types are not identical: {_go_v(list(lists))}")
    if found is None:
        raise PatchFailedError("no elements in any of the given slices")
    return found


def _find_by_key(items: list, merge_key: str, value: Any) -> int | None:
    """Index of the first map in `items` whose `merge_key` equals `value`."""
    wanted = _token(value)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise PatchFailedError(f"value for key {index} is not a map")
        if merge_key in item and _token(item[merge_key]) == wanted:
            return index
    return None


def _partition(merged: list, by: list, merge_key: str) -> tuple[list, list]:
    """Split `merged` into the items present in `by` and the others (server-only), keeping their order."""
    present: list = []
    others: list = []
    if not merge_key:
        wanted = {_token(v) for v in by}
        for item in merged:
            (present if _token(item) in wanted else others).append(item)
        return present, others
    for item in merged:
        if not isinstance(item, dict):
            raise _bad_arg_type(GO_MAP, item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        (present if _find_by_key(by, merge_key, item[merge_key]) is not None else others).append(item)
    return present, others


def _position(items: list, value: Any, merge_key: str, kind: str) -> int:
    def identity(item: Any) -> Any:
        if kind != "map":
            return _token(item)
        return _token(item.get(merge_key) if isinstance(item, dict) else None)

    wanted = identity(value)
    return next((i for i, item in enumerate(items) if identity(item) == wanted), -1)


def _sort_by(items: list, order: list, merge_key: str, kind: str) -> list:
    """`items` in their relative order in `order`, `$patch: delete` maps last (normalizeSliceOrder)."""
    deletions = []
    if kind == "map":
        for item in (*items, *order):
            if not isinstance(item, dict):
                raise _bad_arg_type(GO_MAP, item)
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
        deletions = [item for item in items if item.get(DIRECTIVE) == "delete"]
        items = [item for item in items if item.get(DIRECTIVE) != "delete"]
    positions = [_position(order, item, merge_key, kind) for item in items]
    if min(positions, default=0) >= 0:
        ranked = sorted(range(len(items)), key=positions.__getitem__)
        return [items[i] for i in ranked] + deletions
    # Items missing from `order`: Go's less() answers true for them; its insertion sort is what runs.
    pairs = list(zip(positions, items, strict=True))
    for i in range(1, len(pairs)):
        j = i
        while j > 0 and (pairs[j][0] < 0 or pairs[j - 1][0] < 0 or pairs[j][0] < pairs[j - 1][0]):
            pairs[j], pairs[j - 1] = pairs[j - 1], pairs[j]
            j -= 1
    return [item for _, item in pairs] + deletions


def _interleave(server_only: list, patch_items: list, server_order: list, merge_key: str, kind: str) -> list:
    """Merge two sorted lists (mergeSortedSlice): a server-only item goes first only if it came first live."""
    out = []
    i = j = 0
    while i < len(server_only) or j < len(patch_items):
        if j >= len(patch_items):
            out.append(server_only[i])
            i += 1
            continue
        if i < len(server_only):
            left = _position(server_order, server_only[i], merge_key, kind)
            right = _position(server_order, patch_items[j], merge_key, kind)
            if left >= 0 and right >= 0 and left < right:
                out.append(server_only[i])
                i += 1
                continue
        out.append(patch_items[j])
        j += 1
    return out


def _normalize_order(
    patch_items: list, server_only: list, patch_order: list, server_order: list, merge_key: str, kind: str
) -> list:
    """Patch items in patch order, server-only items in live order, interleaved by live order."""
    patch_items = _sort_by(patch_items, patch_order, merge_key, kind)
    server_only = _sort_by(server_only, server_order, merge_key, kind)
    return _interleave(server_only, patch_items, server_order, merge_key, kind)


def _key_value_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _token(left) == _token(right)
    for item in (left, right):
        if not isinstance(item, dict):
            raise _bad_arg_type(GO_MAP, item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
    return _token(left[merge_key]) == _token(right[merge_key])


def _validate_order(patch_list: list, order: list, merge_key: str) -> None:
    """Patch items (deletions aside) must appear in `$setElementOrder`, in the same relative order."""
    if not order or not patch_list:
        return
    items = patch_list
    if merge_key:
        for item in patch_list:
            if not isinstance(item, dict):
                raise _bad_arg_type(GO_MAP, item)
        items = [item for item in patch_list if item.get(DIRECTIVE) != "delete"]
    i = j = 0
    while i < len(items) and j < len(order):
        if isinstance(items[i], dict) and DIRECTIVE in items[i]:
            i += 1
            continue
        if _key_value_equal(items[i], order[j], merge_key):
            i += 1
        j += 1
    if i < len(items) and j >= len(order):
        raise PatchFailedError(
            f"the order in patch list:\n{_go_v(patch_list)}\n doesn't match {SET_ELEMENT_ORDER} list:\n{_go_v(order)}"
        )


class _StrategicMerge:
    """One strategic merge, walking the patch and the schema side by side.  Works on private copies."""

    def __init__(self, schemas: Schemas) -> None:
        self.schemas = schemas

    def field(self, node: dict | None, key: str) -> tuple[dict | None, str, str]:
        """(schema, strategy without retainKeys, merge key) of field `key`; unknown fields merge plainly."""
        if node is None:
            return None, "", ""
        child = self.schemas.property(node, key)
        if child is None:
            extra = self.schemas.resolve(node).get("additionalProperties")
            child = extra if isinstance(extra, dict) else None
        if child is None:
            return None, "", ""
        strategies = [s for s in str(child.get(PATCH_STRATEGY, "")).split(",") if s and s != "retainKeys"]
        return child, (strategies[0] if strategies else ""), str(child.get(PATCH_MERGE_KEY, ""))

    def items(self, node: dict | None) -> dict | None:
        return self.schemas.items(node) if node is not None else None

    def merge_map(self, original: dict, patch: dict, node: dict | None) -> dict:
        if DIRECTIVE in patch:
            directive = patch.pop(DIRECTIVE)
            if directive == "replace":
                return _verbatim(patch)[0]
            if directive == "delete":
                return {}
            patch[DIRECTIVE] = directive
            raise PatchFailedError(f"unknown patch type: {_go_s(directive)} in map: {_go_v(patch)}")
        _retain_keys(original, patch)
        self.apply_element_orders(original, patch, node)
        for key, value in patch.items():
            delete_list = key.startswith(DELETE_FROM_PRIMITIVE_LIST)
            if delete_list:
                key = _directive_target(key, DELETE_FROM_PRIMITIVE_LIST)
            if value is None:
                original.pop(key, None)
                continue
            if key not in original or _kind(original[key]) != _kind(value):
                if not delete_list:
                    self.put_verbatim(original, key, value)
                continue
            current = original[key]
            if isinstance(current, dict):
                child, strategy, _ = self.field(node, key)
                if strategy == "replace":
                    self.put_verbatim(original, key, value)
                else:
                    original[key] = self.merge_map(current, value, child)
            elif isinstance(current, list):
                child, strategy, merge_key = self.field(node, key)
                original[key] = self.merge_list(current, value, child, strategy, merge_key, delete_list)
            else:
                original[key] = value
        return original

    @staticmethod
    def put_verbatim(original: dict, key: str, value: Any) -> None:
        kept, keep = _verbatim(value)
        if keep:
            original[key] = kept
        else:
            original.pop(key, None)

    def merge_list(
        self, original: list, patch: list, node: dict | None, strategy: str, merge_key: str, delete_list: bool
    ) -> list:
        """mergeSliceHandler: merge lists with strategy merge (and any deletion list); replace the others."""
        if strategy != "merge" and not delete_list:
            return _verbatim(patch)[0]
        if not original and not patch:
            return original
        kind = _element_kind(original, patch)
        if kind != "map":
            if delete_list:
                doomed = {_token(v) for v in patch}
                return [item for item in original if _token(item) not in doomed]
            merged = list({_token(v): v for v in reversed(original + patch)}.values())  # set union
        else:
            if not merge_key:
                raise PatchFailedError("cannot merge lists without merge key for type map")
            original, patch = _list_directives(original, patch, merge_key)
            merged = list(original)
            element = self.items(node)
            for item in patch:
                if merge_key not in item:
                    raise _no_merge_key(item, merge_key)
                index = _find_by_key(merged, merge_key, item[merge_key])
                if index is None:
                    merged.append(_verbatim(item)[0])
                else:
                    merged[index] = self.merge_map(merged[index], item, element)
        patch_items, server_only = _partition(merged, patch, merge_key)
        return _normalize_order(patch_items, server_only, patch, original, merge_key, kind)

    def apply_element_orders(self, original: dict, patch: dict, node: dict | None) -> None:
        """Merge each list with a `$setElementOrder/<field>` and order it so (mergePatchIntoOriginal).

        The order list wins, then the patch's order, then the live order; items only on the server keep
        their place relative to their live neighbours.  The list and its directive leave `patch`.
        """
        for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
            order = patch.pop(key)
            if not isinstance(order, list):
                raise _bad_arg_type(GO_SLICE, order)
            target = _directive_target(key, SET_ELEMENT_ORDER)
            found_original, found_patch = target in original, target in patch
            current, value = original.get(target, []), patch.get(target, [])
            for found, items in ((found_original, current), (found_patch, value)):
                if found and not isinstance(items, list):
                    raise _bad_arg_type(GO_SLICE, items)
            child, strategy, merge_key = self.field(node, target)
            unkeyed_maps = not merge_key and any(isinstance(i, dict) for i in (*order, *current, *value))
            if not unkeyed_maps:
                _validate_order(value, order, merge_key)
            if found_original and found_patch:
                merged = self.merge_list(current, value, child, strategy, merge_key, False)
            elif found_original:
                merged = current
            elif found_patch:
                merged = _verbatim(value)[0]
            else:
                continue
            patch.pop(target, None)
            if unkeyed_maps:  # a field the schema does not know: no way to order its maps
                original[target] = merged
                continue
            patch_items, server_only = _partition(merged, order, merge_key)
            kind = _element_kind(current, value)
            original[target] = _normalize_order(patch_items, server_only, order, current, merge_key, kind)


def _retain_keys(original: dict, patch: dict) -> None:
    """`$retainKeys`: drop every key of `original` not listed; every non-null patch key must be listed."""
    if RETAIN_KEYS not in patch:
        return
    listed = patch.pop(RETAIN_KEYS)
    if not isinstance(listed, list):
        raise MalformedPatchError("invalid patch format of retainKeys")
    retained = {_token(v) for v in listed}
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if _token(key) not in retained:
            raise MalformedPatchError("invalid patch format of retainKeys")
    for key in [k for k in original if _token(k) not in retained]:
        del original[key]


def _list_directives(original: list, patch: list, merge_key: str) -> tuple[list, list]:
    """Apply `{"$patch": "delete", key: v}` elements and `{"$patch": "replace"}`; return (original, rest)."""
    rest = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            rest.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            doomed = _token(item[merge_key])
            original = [e for e in original if not (merge_key in e and _token(e[merge_key]) == doomed)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchFailedError("merging lists cannot yet be specified in the patch")
        else:
            raise PatchFailedError(f"unknown patch type: {_go_s(directive)} in map: {_go_v(item)}")
    if replace:
        return [_verbatim(item)[0] for item in rest], []
    return original, rest


def apply_strategic_merge_patch(document: dict, patch: dict, schema: dict | None, schemas: Schemas) -> dict:
    """Apply a Kubernetes strategic merge patch as the apiserver does for built-in kinds.

    `schema` is the schema node of the object's kind (`Schemas.for_kind`), or None for an unknown type,
    where maps merge and lists are replaced (upstream answers 415 for those; that is the caller's call).
    Lists whose field has `x-kubernetes-patch-strategy: merge` merge element-wise by
    `x-kubernetes-patch-merge-key` (primitive lists by value, as a union); other lists are replaced; `null`
    deletes.  Directives: `$patch: replace|delete` on maps and as list elements, `$retainKeys`,
    `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>`.  Order of a merged list follows upstream:
    `$setElementOrder`, then patch order, then live order; without `$setElementOrder` new items come before
    the server's.  `$patch: merge` on a map is rejected as upstream does (500 "unknown patch type").
    """
    if patch is None:  # a JSON null body decodes to a nil map upstream: nothing to do
        return _copy(document)
    if not isinstance(patch, dict):
        raise MalformedPatchError(f"json: cannot unmarshal {_json_kind(patch)} into Go value of type {GO_MAP}")
    return _StrategicMerge(schemas).merge_map(_copy(document), _copy(patch), schema)


def patch_schema_for(schemas: Schemas, api_version: str, kind: str) -> dict | None:
    """The root schema node strategic merge patch needs for `kind`, or None if the type is not built in."""
    return schemas.for_kind(GroupVersionKind.from_api_version(api_version, kind))
