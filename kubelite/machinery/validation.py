"""Schema-driven decode checks: unknown fields and wrong JSON types, reported as upstream reports them.

Upstream decodes a request body into Go structs with `sigs.k8s.io/json`; everything here reproduces
what that decoder would say, using the published schemas instead of Go types.

Unknown fields (`fieldValidation`).  The decoder records each unknown key with its path: struct
fields joined by `.`, list indices as `[i]`, map keys as `.key`; in document order, de-duplicated,
at most 100.  The API server then either

* Strict: answers 400 BadRequest, no causes, message
  `Deployment in version "v1" cannot be handled as a Deployment: strict decoding error:
  unknown field "spec.replicass", unknown field "spec.template.spec.containers[0].foo"`
  (`strict_decoding_error`), or
* Warn (the default): succeeds with one `Warning: 299 - "unknown field \\"spec.replicass\\""`
  header per path (`unknown_field_warnings`), or
* Ignore: drops them silently.

Either way the decoded Go struct has nowhere to keep them, so the stored object never holds them:
`prune_unknown_fields` returns the copy to store, without exactly the fields reported.

For patches upstream wraps the same strict text differently (422 `…patch: Invalid value: …`); that
wording belongs to the patch handler.

Wrong types.  A JSON value the Go field cannot hold is a decode error, which wins over unknown
fields: 400 BadRequest, no causes, message `Deployment in version "v1" cannot be handled as a
Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type
int32` (`decode_error`).  Go names the innermost struct and the path of *struct fields only* (no list
indices, no map keys) and reports one error.  Types with their own decoders speak for themselves:
Quantity (`quantities must match the regular expression …`), base64 `[]byte`
(`illegal base64 data at input byte N`); IntOrString and Time report the Go primitive they failed
to decode into.  `type_errors` returns every problem as a `Cause` (reason `FieldValueTypeInvalid`,
`field` the full JSON path with indices) with the one upstream would report first.

Known differences: fields promoted from inline-embedded Go structs (e.g. `Volume.VolumeSource`)
are named without the embedded struct's name; time strings are not parsed; duplicate fields are not
detected (JSON decoders here keep the last one).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubelite.machinery.errors import ApiError, Cause, bad_request
from kubelite.machinery.schema import REF_PREFIX, GroupVersionKind, Schemas, types_of

MAX_STRICT_ERRORS = 100
TYPE_INVALID = "FieldValueTypeInvalid"

# Definitions whose Go types decode themselves and accept any JSON shape (no unknown fields inside).
OPAQUE = frozenset(
    {
        "io.k8s.apimachinery.pkg.runtime.RawExtension",
        "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
    }
)
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
TIMES = frozenset(
    {"io.k8s.apimachinery.pkg.apis.meta.v1.Time", "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"}
)
EMBEDDED_KEYS = ("apiVersion", "kind", "metadata")

QUANTITY_FORMAT = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
QUANTITY_SUFFIX = "unable to parse quantity's suffix"
_QUANTITY_SUFFIXES = frozenset(
    {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"}
)
_EXPONENT = re.compile(r"[eE][-+]?[0-9]+")
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1), "int": (-(2**63), 2**63 - 1)}
_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


# -- public API ------------------------------------------------------------------------------------


def find_unknown_fields(obj: Any, gvk: GroupVersionKind, schemas: Schemas) -> list[str]:
    """Paths (`spec.replicass`, `spec.template.spec.containers[0].foo`) of fields the kind's schema
    does not define, in document order; [] for kinds without a published schema."""
    root = schemas.for_kind(gvk)
    return [] if root is None else unknown_fields(obj, root, schemas)


def unknown_fields(obj: Any, root: dict[str, Any], schemas: Schemas) -> list[str]:
    """`find_unknown_fields` against an explicit schema (CRD structural schemas use this)."""
    out: dict[str, None] = {}
    for path, _, _ in _Walker(schemas).unknown(obj, root, ""):
        out.setdefault(path)
        if len(out) >= MAX_STRICT_ERRORS:
            break
    return list(out)


def prune_unknown_fields(obj: dict[str, Any], gvk: GroupVersionKind, schemas: Schemas) -> dict[str, Any]:
    """A copy of `obj` without the fields `find_unknown_fields` reports (all of them, not only the
    first 100): what upstream stores after a Warn or Ignore decode.  `obj` is not changed; kinds
    without a published schema come back as an unpruned copy."""
    root = schemas.for_kind(gvk)
    return copy.deepcopy(obj) if root is None else prune_with_schema(obj, root, schemas)


def prune_with_schema(obj: dict[str, Any], root: dict[str, Any], schemas: Schemas) -> dict[str, Any]:
    """`prune_unknown_fields` against an explicit schema (CRD structural schemas use this).  The
    root's `apiVersion`, `kind` and `metadata` are kept even when the schema does not list them."""
    out = copy.deepcopy(obj)
    # collect first: the walk iterates the very dicts that lose keys
    found = [(parent, key) for _, parent, key in _Walker(schemas).unknown(out, root, "")]
    for parent, key in found:
        if parent is out and key in EMBEDDED_KEYS:
            continue
        parent.pop(key, None)
    return out


def type_errors(obj: Any, gvk: GroupVersionKind, schemas: Schemas) -> list[Cause]:
    """Values the Go decoder would reject, the one upstream reports first; [] when none or no schema."""
    root = schemas.for_kind(gvk)
    if root is None:
        return []
    return value_type_errors(obj, root, schemas, struct=gvk.kind)


def value_type_errors(obj: Any, root: dict[str, Any], schemas: Schemas, *, struct: str = "") -> list[Cause]:
    """`type_errors` against an explicit schema; `struct` names the root Go type for messages."""
    found = list(_Walker(schemas).types(obj, root, _Context(struct, (), "")))
    causes = [cause for _, cause in found]
    # Go keeps the first *saved* error but aborts on one returned by a custom decoder, which then wins
    fatal = next((cause for is_fatal, cause in found if is_fatal), None)
    if fatal is not None:
        causes.remove(fatal)
        causes.insert(0, fatal)
    return causes


def strict_decoding_error(gvk: GroupVersionKind, paths: list[str]) -> ApiError:
    """The 400 a Strict create/update gets for unknown fields."""
    listed = ", ".join(unknown_field_warnings(paths))
    return cannot_be_handled(gvk, f"strict decoding error: {listed}")


def decode_error(gvk: GroupVersionKind, causes: list[Cause]) -> ApiError:
    """The 400 for `type_errors`: upstream reports only the first."""
    return cannot_be_handled(gvk, causes[0].message)


def cannot_be_handled(gvk: GroupVersionKind, message: str) -> ApiError:
    return bad_request(f'{gvk.kind} in version "{gvk.version}" cannot be handled as a {gvk.kind}: {message}')


def unknown_field_warnings(paths: list[str]) -> list[str]:
    """Warning texts for fieldValidation=Warn, one per path (`unknown field "spec.replicass"`)."""
    return [f"unknown field {go_quote(path)}" for path in paths]


def go_quote(text: str) -> str:
    """Go's `%q` for the strings met here (printable text; control characters as `\\xNN`)."""
    quoted = json.dumps(text, ensure_ascii=False)
    return re.sub(r"\\u00([01][0-9a-f]|7f)", lambda m: "\\x" + m.group(1), quoted)


# -- the walk --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """Where the Go decoder is: innermost struct, struct-field stack, and our full JSON path."""

    struct: str
    fields: tuple[str, ...]
    path: str

    def field(self, name: str, struct: str) -> _Context:
        return _Context(struct, (*self.fields, name), _join(self.path, name))

    def element(self, suffix: str) -> _Context:
        return _Context(self.struct, self.fields, self.path + suffix)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Walker:
    def __init__(self, schemas: Schemas) -> None:
        self.schemas = schemas

    def resolve(self, node: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """Follow `$ref`/single `allOf`, keeping the definition name (it decides Go behaviour)."""
        name = ""
        for _ in range(50):
            ref = node.get("$ref")
            if ref is None and len(node.get("allOf", ())) == 1:
                ref = node["allOf"][0].get("$ref")
            if not isinstance(ref, str) or not ref.startswith(REF_PREFIX):
                break
            name = ref[len(REF_PREFIX) :]
            node = self.schemas.definitions[name]
        return node, name

    # unknown fields: yields (path, the dict holding the field, its key), so callers can report or drop it

    def unknown(self, value: Any, node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any], str]]:
        outer = node
        node, name = self.resolve(node)
        if name in OPAQUE:
            return
        if isinstance(value, dict):
            preserve = bool(
                node.get("x-kubernetes-preserve-unknown-fields")
                or outer.get("x-kubernetes-preserve-unknown-fields")
            )
            embedded = bool(
                node.get("x-kubernetes-embedded-resource") or outer.get("x-kubernetes-embedded-resource")
            )
            properties = node.get("properties")
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                for key, item in value.items():
                    yield from self.unknown(item, extra, _join(path, key))
            elif properties is not None or (_is_struct(node) and extra is None and not preserve):
                properties = properties or {}
                for key, item in value.items():
                    sub = properties.get(key)
                    if sub is not None:
                        yield from self.unknown(item, sub, _join(path, key))
                    elif not preserve and not (embedded and key in EMBEDDED_KEYS):
                        yield _join(path, key), value, key
        elif isinstance(value, list):
            items = node.get("items")
            if isinstance(items, dict):
                for index, item in enumerate(value):
                    yield from self.unknown(item, items, f"{path}[{index}]")

    # types: yields (fatal, cause); fatal errors come from types that decode themselves

    def types(self, value: Any, node: dict[str, Any], ctx: _Context) -> Iterator[tuple[bool, Cause]]:
        if value is None:
            return  # Go leaves the field unset
        outer = node
        node, name = self.resolve(node)
        if name in OPAQUE or (outer.get("x-kubernetes-preserve-unknown-fields") and not node.get("type")):
            return
        if name == INT_OR_STRING or outer.get("x-kubernetes-int-or-string"):
            if not isinstance(value, str) and not _fits_int(value, "int32"):
                yield True, self._mismatch(value, "int32", ctx, literal=True)
            return
        if name == QUANTITY:
            problem = quantity_error(value)
            if problem:
                yield True, Cause(TYPE_INVALID, problem, ctx.path)
            return
        if name in TIMES:
            if not isinstance(value, str):
                yield True, self._mismatch(value, "string", ctx)
            return
        kinds = types_of(node)
        if ("object" in kinds or "properties" in node) and isinstance(value, dict):
            yield from self._object(value, node, name, ctx)
        elif "array" in kinds and isinstance(value, list):
            items = node.get("items")
            if isinstance(items, dict):
                for index, item in enumerate(value):
                    yield from self.types(item, items, ctx.element(f"[{index}]"))
        elif "string" in kinds and isinstance(value, str):
            if node.get("format") == "byte":
                position = base64_error(value)
                if position is not None:
                    yield (
                        False,
                        Cause(TYPE_INVALID, f"illegal base64 data at input byte {position}", ctx.path),
                    )
        elif (
            ("integer" in kinds and _fits_int(value, node.get("format") or "int"))
            or ("number" in kinds and isinstance(value, (int, float)) and not isinstance(value, bool))
            or ("boolean" in kinds and isinstance(value, bool))
        ):
            return
        elif kinds:
            yield False, self._mismatch(value, self.go_type(outer), ctx, literal="integer" in kinds)

    def _object(
        self, value: dict[str, Any], node: dict[str, Any], name: str, ctx: _Context
    ) -> Iterator[tuple[bool, Cause]]:
        extra = node.get("additionalProperties")
        properties = node.get("properties")
        if isinstance(extra, dict) and not properties:
            for key, item in value.items():
                yield from self.types(item, extra, ctx.element(f".{key}"))
            return
        struct = _short_name(name) if name else ctx.struct
        for key, item in value.items():
            sub = (properties or {}).get(key)
            if sub is not None:
                yield from self.types(item, sub, ctx.field(key, struct))

    def _mismatch(self, value: Any, go_type: str, ctx: _Context, *, literal: bool = False) -> Cause:
        """Go's UnmarshalTypeError text; numbers decoded into integers carry their literal."""
        where = f"Go struct field {ctx.struct}.{'.'.join(ctx.fields)}" if ctx.fields else "Go value"
        text = f"json: cannot unmarshal {_json_kind(value, literal)} into {where} of type {go_type}"
        return Cause(TYPE_INVALID, text, ctx.path)

    def go_type(self, node: dict[str, Any]) -> str:
        """The Go type name reflection would print for a field with this schema."""
        node, name = self.resolve(node)
        if name:
            return _qualified(name)
        kinds = types_of(node)
        if "array" in kinds:
            items = node.get("items")
            return "[]" + (self.go_type(items) if isinstance(items, dict) else "interface {}")
        if "object" in kinds:
            extra = node.get("additionalProperties")
            return "map[string]" + (self.go_type(extra) if isinstance(extra, dict) else "interface {}")
        if "string" in kinds:
            return "[]uint8" if node.get("format") == "byte" else "string"
        if "integer" in kinds:
            return node.get("format") or "int"
        if "number" in kinds:
            return "float64"
        if "boolean" in kinds:
            return "bool"
        return "interface {}"


def _is_struct(node: dict[str, Any]) -> bool:
    return "properties" in node or (types_of(node) == {"object"} and "additionalProperties" not in node)


def _short_name(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _qualified(name: str) -> str:
    """`io.k8s.api.apps.v1.DeploymentSpec` → `v1.DeploymentSpec` (Go package name + type)."""
    parts = name.rsplit(".", 2)
    return ".".join(parts[-2:])


def _json_kind(value: Any, literal: bool) -> str:
    """How Go's UnmarshalTypeError names the offending JSON value (`number 3.5` only for integer targets)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return f"number {value!r}" if literal else "number"


def _fits_int(value: Any, go_format: str) -> bool:
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    low, high = _INT_RANGE.get(go_format, _INT_RANGE["int64"])
    return low <= value <= high


# -- self-decoding types ---------------------------------------------------------------------------


def quantity_error(value: Any) -> str | None:
    """Why `resource.ParseQuantity` would reject a JSON value, or None."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return None
    if not isinstance(value, str):
        return QUANTITY_FORMAT  # Go parses the raw JSON text (`true`, `{…}`) as a quantity
    text = value.strip()
    if not text:
        return QUANTITY_FORMAT
    match = re.fullmatch(r"([+-]?)([0-9]*)(\.[0-9]*)?(.*)", text, re.DOTALL)
    assert match is not None  # every string matches: the last group takes the rest
    rest = match.group(4)
    suffix = re.match(r"[eEinumkKMGTP]*", rest)
    assert suffix is not None
    tail = rest[suffix.end() :]
    if not re.fullmatch(r"[-+]?[0-9]*", tail):
        return QUANTITY_FORMAT
    if rest not in _QUANTITY_SUFFIXES and not _EXPONENT.fullmatch(rest):
        return QUANTITY_SUFFIX
    return None


def base64_error(text: str) -> int | None:
    """The offset Go's `base64.StdEncoding.Decode` reports as corrupt, or None when `text` decodes."""
    src = text.encode()
    si = 0
    while si < len(src):
        si, error = _quantum(src, si)
        if error is not None:
            return error
    return None


def _quantum(src: bytes, si: int) -> tuple[int, int | None]:
    """One 4-character group of Go's decodeQuantum: (next index, corrupt offset or None)."""
    j = 0
    while j < 4:
        if si == len(src):
            if j == 0:
                return si, None
            return si, si - j  # with padding required, a short final group is corrupt
        char = src[si]
        si += 1
        if char in _B64:
            j += 1
            continue
        if char in b"\r\n":
            continue
        if char != ord("=") or j < 2:
            return si, si - 1
        if j == 2:  # "==" expected; the first "=" is consumed
            while si < len(src) and src[si] in b"\r\n":
                si += 1
            if si == len(src):
                return si, len(src)
            if src[si] != ord("="):
                return si, si - 1
            si += 1
        while si < len(src) and src[si] in b"\r\n":
            si += 1
        return si, (si if si < len(src) else None)
    return si, None
