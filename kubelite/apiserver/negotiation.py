"""Content negotiation: decoding request bodies and choosing the response form.

Requests arrive as JSON (also with no Content-Type: the Python client sends none), YAML, or the
Kubernetes protobuf envelope (kubectl's typed commands); responses are always JSON, in one of three
shapes the Accept header selects: the object itself, a `meta.k8s.io` Table, or
PartialObjectMetadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from kubelite.machinery import errors
from kubelite.machinery.protobuf import ProtobufError, decode_k8s_protobuf

MAX_BODY_BYTES = 3 * 1024 * 1024
JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH_YAML = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH_YAML)
BODY_TYPES = (JSON, YAML, PROTOBUF)


def media_type(content_type: str | None) -> str:
    if not content_type:
        return JSON
    return content_type.split(";", 1)[0].strip().lower() or JSON


def decode_body(raw: bytes, content_type: str | None) -> Any:
    """Decode a create/update body; malformed input becomes 400 BadRequest, unknown types 415."""
    kind = media_type(content_type)
    if kind in (JSON, "*/*", "text/plain"):
        return decode_json(raw)
    if kind in (YAML, "application/x-yaml", "text/yaml"):
        return decode_yaml(raw)
    if kind == PROTOBUF:
        try:
            return decode_k8s_protobuf(raw)
        except ProtobufError as exc:
            raise errors.bad_request(f"failed to decode protobuf body: {exc}") from None
    raise errors.unsupported_media_type(kind, [JSON, YAML, PROTOBUF])


def decode_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding request body: invalid JSON: {exc}") from None


def decode_yaml(raw: bytes) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding request body: invalid YAML: {exc}") from None


@dataclass(frozen=True)
class ResponseForm:
    """What the client asked to get back."""

    shape: str = "object"  # object | table | partial
    api_version: str = "meta.k8s.io/v1"


def response_form(accept: str | None) -> ResponseForm:
    """Pick the first acceptable entry of the Accept header (clients list preferences in order)."""
    if not accept:
        return ResponseForm()
    for entry in accept.split(","):
        params = [p.strip() for p in entry.split(";")]
        mime = params[0].lower()
        options = dict(p.split("=", 1) for p in params[1:] if "=" in p)
        if mime not in (JSON, "*/*", "application/*", PROTOBUF, YAML):
            continue
        if mime in (PROTOBUF,) and "as" not in options:
            continue  # we answer JSON; a later entry (json or */*) will match
        target = options.get("as")
        group = options.get("g", "")
        version = options.get("v", "v1")
        if target == "Table" and group == "meta.k8s.io" and version in ("v1", "v1beta1"):
            return ResponseForm("table", f"meta.k8s.io/{version}")
        if target in ("PartialObjectMetadata", "PartialObjectMetadataList") and group == "meta.k8s.io":
            return ResponseForm("partial", f"meta.k8s.io/{version}")
        if target:
            continue
        return ResponseForm()
    raise errors.not_acceptable([JSON, f"{JSON};as=Table;v=v1;g=meta.k8s.io"])


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)
