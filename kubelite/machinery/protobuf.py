"""Kubernetes protobuf request bodies, decoded into the JSON form of the object.

kubectl 1.32 sends `Content-Type: application/vnd.kubernetes.protobuf` for every typed-client create
(`kubectl create deployment|secret|...`, `autoscale`, `auth can-i`, `auth whoami`, `create token`) and
treats a 415 as fatal (KUBECTL-COMPAT.md §0.2).  The API server works on JSON dicts, so it decodes the
body once at the edge with `decode_k8s_protobuf` and carries on as if JSON had been sent.

Wire form (§2.6)::

    b"k8s\\x00" + runtime.Unknown{1: TypeMeta{1: apiVersion, 2: kind}, 2: raw object message,
                                  3: contentEncoding, 4: contentType}

The object message is decoded *schema-driven*: field numbers come from our table
(`protobuf_fields.py`), everything else - JSON names, JSON types, which fields are nested messages,
lists or maps, `format: byte` - from the official 1.32 OpenAPI definitions (`schema.py`).  The result
matches what Go's `encoding/json` prints for the same struct (what `kubectl create --dry-run=client -o
json` shows), except that values Go prints as `null` (a zero `metav1.Time`, a nil list without
`omitempty`) are left out.  Go writes every non-pointer field, zeros included, so a zero scalar is
dropped unless its field is a Go pointer (marked in `protobuf_fields.py`: `replicas: 0` survives) or is
required in the OpenAPI schema (Go prints non-`omitempty` fields even when zero); nested messages are
kept even when empty (`resources: {}`, `emptyDir: {}`), as Go prints structs.  Fields whose number we
do not know are skipped, as the real API server skips unknown protobuf fields.

Error tree::

    ProtobufError (ValueError)   malformed body, a kind we have no table for, or a value whose wire
                                 type contradicts the schema; the message names the field path.

`decode_k8s_protobuf` is pure and thread-safe; the API server translates `ProtobufError` into a 400.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from kubelite.machinery.protobuf_fields import FieldSpec, message_fields
from kubelite.machinery.schema import REF_PREFIX, GroupVersionKind, Schemas, load_schemas

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_TIME = _META + "Time"
_MICRO_TIME = _META + "MicroTime"
_FIELDS_V1 = _META + "FieldsV1"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"
# time.Time{}.Unix(): what a zero Go time looks like if a client writes it instead of omitting it.
_GO_ZERO_UNIX = -62135596800
_MAX_DEPTH = 64


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf object we can turn into JSON."""


def decode_k8s_protobuf(body: bytes, *, schemas: Schemas | None = None) -> dict[str, Any]:
    """Decode a `k8s\\x00`-framed protobuf body into the JSON dict of the object it carries.

    `apiVersion` and `kind` come from the envelope; the kind must be one the table covers.
    """
    api_version, kind, raw = read_envelope(body)
    schemas = schemas or load_schemas()
    definition = schemas.definition_name(GroupVersionKind.from_api_version(api_version, kind))
    if definition is None or definition not in message_fields():
        raise ProtobufError(f"protobuf bodies of kind {kind!r} in {api_version!r} are not supported")
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    obj.update(_Decoder(schemas).message(raw, definition, schemas.definitions[definition], kind, 0))
    return obj


def read_envelope(body: bytes) -> tuple[str, str, bytes]:
    """Split the `runtime.Unknown` envelope into (apiVersion, kind, raw object message)."""
    if not body.startswith(MAGIC):
        raise ProtobufError("protobuf body does not start with the k8s\\x00 magic prefix")
    api_version = kind = encoding = ""
    raw = b""
    for number, wire, value in _fields(body[len(MAGIC) :], "Unknown"):
        if wire != _LEN:
            continue
        assert isinstance(value, bytes)
        if number == 1:
            for inner, inner_wire, text in _fields(value, "Unknown.typeMeta"):
                if inner_wire == _LEN and inner in (1, 2):
                    assert isinstance(text, bytes)
                    if inner == 1:
                        api_version = _text(text, "apiVersion")
                    else:
                        kind = _text(text, "kind")
        elif number == 2:
            raw = value
        elif number == 3:
            encoding = _text(value, "contentEncoding")
    if not api_version or not kind:
        raise ProtobufError("protobuf envelope carries no apiVersion/kind")
    if encoding:
        raise ProtobufError(f"protobuf content encoding {encoding!r} is not supported")
    return api_version, kind, raw


# --- wire format ------------------------------------------------------------------------------------


def _varint(data: bytes, pos: int, path: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError(f"{path}: truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError(f"{path}: varint longer than 10 bytes")


def _fields(data: bytes, path: str) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value): an int for varints, the raw bytes otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos, path)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(f"{path}: field number 0")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(data, pos, path)
        elif wire in (_FIXED64, _FIXED32, _LEN):
            if wire == _LEN:
                size, pos = _varint(data, pos, path)
            else:
                size = 8 if wire == _FIXED64 else 4
            if pos + size > len(data):
                raise ProtobufError(f"{path}: field {number} runs past the end of its message")
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ProtobufError(f"{path}: unsupported wire type {wire} in field {number}")
        yield number, wire, value


def _signed(value: int) -> int:
    """Go writes int32/int64 as 64-bit two's complement varints (no zigzag)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: bytes, path: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufError(f"{path}: string is not valid UTF-8") from exc


# --- schema-driven decoding ---------------------------------------------------------------------------


def _ref_name(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    if ref is None and len(node.get("allOf", ())) == 1:
        ref = node["allOf"][0].get("$ref")
    return ref[len(REF_PREFIX) :] if isinstance(ref, str) and ref.startswith(REF_PREFIX) else None


def _types(node: dict[str, Any]) -> set[str]:
    """The JSON types a schema node allows, ignoring null; `oneOf`/`anyOf` alternatives included."""
    declared = node.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if t != "null"}
    out: set[str] = set()
    for alternative in [*node.get("oneOf", ()), *node.get("anyOf", ())]:
        out |= _types(alternative)
    return out


def _is_zero(value: Any) -> bool:
    return value is None or (not isinstance(value, dict | list) and value in ("", 0))


class _Decoder:
    """Decodes object messages against one set of schemas; holds no state between calls."""

    def __init__(self, schemas: Schemas) -> None:
        self.schemas = schemas
        self.tables = message_fields()

    def message(self, data: bytes, table: str, node: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
        """Decode message `data` numbered by `table` into an object shaped by schema `node`."""
        if depth > _MAX_DEPTH:
            raise ProtobufError(f"{path}: messages nested too deeply")
        fields = self.tables.get(table)
        if fields is None:
            raise ProtobufError(f"{path}: no field table for {table}")
        resolved = self.schemas.resolve(node)
        properties: dict[str, Any] = resolved.get("properties", {})
        required = set(resolved.get("required", ()))
        out: dict[str, Any] = {}
        for number, wire, value in _fields(data, path):
            spec = fields.get(number)
            if spec is None:
                continue
            if spec.inline is not None:
                if wire != _LEN:
                    raise ProtobufError(f"{path}: inline field {number} is not a message")
                assert isinstance(value, bytes)
                out.update(self.message(value, spec.inline, node, path, depth + 1))
                continue
            prop = properties.get(spec.name)
            if prop is None:  # a field this schema version does not have
                continue
            self._field(out, spec, prop, wire, value, f"{path}.{spec.name}", depth, spec.name in required)
        return out

    def _field(
        self,
        out: dict[str, Any],
        spec: FieldSpec,
        prop: dict[str, Any],
        wire: int,
        value: int | bytes,
        path: str,
        depth: int,
        required: bool,
    ) -> None:
        ref = _ref_name(prop)
        resolved = self.schemas.resolve(prop)
        types = _types(resolved)
        if ref is None and "array" in types:
            item = self.schemas.items(prop) or {}
            items = out.setdefault(spec.name, [])
            items.extend(self._elements(item, wire, value, path, depth))
            return
        if ref is None and "object" in types and "additionalProperties" in resolved:
            key, entry = self._map_entry(self.schemas.items(prop) or {}, wire, value, path, depth)
            if entry is not None:
                out.setdefault(spec.name, {})[key] = entry
            return
        decoded = self._value(prop, wire, value, path, depth, duration=spec.duration)
        if isinstance(decoded, dict) and ref not in (_RAW_EXTENSION, _FIELDS_V1):
            out[spec.name] = decoded  # nested messages are kept even when empty, as Go's JSON does
        elif decoded is None or (_is_zero(decoded) and not (spec.keep_zero or required)):
            out.pop(spec.name, None)
        else:
            out[spec.name] = decoded

    def _elements(
        self, item: dict[str, Any], wire: int, value: int | bytes, path: str, depth: int
    ) -> list[Any]:
        """One occurrence of a repeated field: a single element, or several if scalars are packed."""
        kind = set() if _ref_name(item) else _types(self.schemas.resolve(item))
        if wire == _LEN and kind & {"integer", "boolean"}:  # packed varints
            assert isinstance(value, bytes)
            packed: list[Any] = []
            pos = 0
            while pos < len(value):
                raw, pos = _varint(value, pos, path)
                packed.append(bool(raw) if "boolean" in kind else _signed(raw))
            return packed
        return [self._value(item, wire, value, path, depth)]

    def _map_entry(
        self, item: dict[str, Any], wire: int, value: int | bytes, path: str, depth: int
    ) -> tuple[str, Any]:
        """Decode one `map<string, V>` entry message {1: key, 2: value}."""
        if wire != _LEN:
            raise ProtobufError(f"{path}: map entry is not a message")
        assert isinstance(value, bytes)
        key = ""
        raw: tuple[int, int | bytes] | None = None
        for number, entry_wire, entry_value in _fields(value, path):
            if number == 1:
                if entry_wire != _LEN:
                    raise ProtobufError(f"{path}: map key is not a string")
                assert isinstance(entry_value, bytes)
                key = _text(entry_value, path)
            elif number == 2:
                raw = (entry_wire, entry_value)
        entry_path = f"{path}[{key}]"
        if raw is None:  # Go omits nothing here, but an absent value means the zero value
            raw = (_LEN, b"") if self._length_delimited(item) else (_VARINT, 0)
        if _ref_name(item) is None and "array" in _types(self.schemas.resolve(item)):
            # map<string, []string> travels as a wrapper message (ExtraValue) with repeated field 1
            if raw[0] != _LEN:
                raise ProtobufError(f"{entry_path}: list value is not a message")
            assert isinstance(raw[1], bytes)
            element = self.schemas.items(item) or {}
            return key, [
                element_value
                for number, element_wire, element_raw in _fields(raw[1], entry_path)
                if number == 1
                for element_value in self._elements(element, element_wire, element_raw, entry_path, depth)
            ]
        return key, self._value(item, raw[0], raw[1], entry_path, depth)

    def _length_delimited(self, node: dict[str, Any]) -> bool:
        if _ref_name(node) is not None:
            return True
        return bool(_types(self.schemas.resolve(node)) & {"string", "object", "array"})

    def _value(
        self,
        node: dict[str, Any],
        wire: int,
        value: int | bytes,
        path: str,
        depth: int,
        *,
        duration: bool = False,
    ) -> Any:
        """Decode a single (non-repeated) value of schema `node`."""
        ref = _ref_name(node)
        if ref in _SPECIAL or duration:
            if wire != _LEN:
                raise ProtobufError(f"{path}: expected a message, got wire type {wire}")
            assert isinstance(value, bytes)
            converter = _duration if duration else _SPECIAL[ref or ""]
            return converter({n: v for n, _, v in _fields(value, path)}, path)
        resolved = self.schemas.resolve(node)
        types = _types(resolved)
        if ref is not None and "object" in types:
            if wire != _LEN:
                raise ProtobufError(f"{path}: expected a message, got wire type {wire}")
            assert isinstance(value, bytes)
            return self.message(value, ref, node, path, depth + 1)
        if "string" in types:
            if wire != _LEN:
                raise ProtobufError(f"{path}: expected a string, got wire type {wire}")
            assert isinstance(value, bytes)
            if resolved.get("format") == "byte":
                return base64.b64encode(value).decode("ascii")
            return _text(value, path)
        if "boolean" in types and wire == _VARINT:
            return bool(value)
        if types & {"integer", "number"}:
            if wire == _VARINT:
                assert isinstance(value, int)
                return _signed(value)
            assert isinstance(value, bytes)
            if wire == _FIXED64:
                fmt = "<d" if "number" in types else "<q"
                return struct.unpack(fmt, value)[0]
            if wire == _FIXED32:
                fmt = "<f" if "number" in types else "<i"
                return struct.unpack(fmt, value)[0]
        raise ProtobufError(f"{path}: cannot decode wire type {wire} as {sorted(types) or 'untyped'} value")


# --- types whose JSON form differs from their message ------------------------------------------------


def _int_field(fields: dict[int, int | bytes], number: int, path: str) -> int:
    value = fields.get(number, 0)
    if not isinstance(value, int):
        raise ProtobufError(f"{path}: field {number} is not a varint")
    return _signed(value)


def _bytes_field(fields: dict[int, int | bytes], number: int, path: str) -> bytes:
    value = fields.get(number, b"")
    if not isinstance(value, bytes):
        raise ProtobufError(f"{path}: field {number} is not length-delimited")
    return value


def _time(fields: dict[int, int | bytes], path: str, *, micro: bool = False) -> str | None:
    """metav1.Time{1 seconds, 2 nanos} -> RFC 3339 in UTC; a zero time means the field is unset."""
    seconds, nanos = _int_field(fields, 1, path), _int_field(fields, 2, path)
    if (seconds == 0 and nanos == 0) or seconds == _GO_ZERO_UNIX:
        return None
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ProtobufError(f"{path}: time out of range") from exc
    if micro:  # Go's MicroTime JSON layout: 2006-01-02T15:04:05.000000Z07:00
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # metav1.Time JSON keeps whole seconds


def _micro_time(fields: dict[int, int | bytes], path: str) -> str | None:
    return _time(fields, path, micro=True)


def _int_or_string(fields: dict[int, int | bytes], path: str) -> int | str:
    """intstr.IntOrString{1 type (0 int, 1 string), 2 intVal, 3 strVal}."""
    if _int_field(fields, 1, path) == 1:
        return _text(_bytes_field(fields, 3, path), path)
    return _int_field(fields, 2, path)


def _quantity(fields: dict[int, int | bytes], path: str) -> str | None:
    """resource.Quantity{1 string}: the canonical string form, exactly as JSON carries it."""
    text = _text(_bytes_field(fields, 1, path), path)
    return text or None


def _raw_json(fields: dict[int, int | bytes], path: str) -> Any:
    """runtime.RawExtension / metav1.FieldsV1 {1 raw}: embedded JSON bytes."""
    raw = _bytes_field(fields, 1, path)
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtobufError(f"{path}: embedded raw value is not JSON") from exc


def _duration(fields: dict[int, int | bytes], path: str) -> str:
    """metav1.Duration{1 nanoseconds} -> Go's time.Duration.String() form, e.g. 1h2m3.5s."""
    return go_duration(_int_field(fields, 1, path))


def go_duration(nanoseconds: int) -> str:
    """Format a duration like Go's `time.Duration.String`, which is what metav1.Duration's JSON uses."""
    sign, value = ("-", -nanoseconds) if nanoseconds < 0 else ("", nanoseconds)
    if value == 0:
        return "0s"
    if value < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if value >= size:
                return sign + _fraction(value, size) + unit
    hours, rest = divmod(value, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _fraction(rest, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _fraction(value: int, size: int) -> str:
    whole, part = divmod(value, size)
    if not part:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}." + f"{part:0{digits}d}".rstrip("0")


_SPECIAL = {
    _TIME: _time,
    _MICRO_TIME: _micro_time,
    _INT_OR_STRING: _int_or_string,
    _QUANTITY: _quantity,
    _RAW_EXTENSION: _raw_json,
    _FIELDS_V1: _raw_json,
}
