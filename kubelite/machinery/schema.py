"""The published Kubernetes 1.32 object schemas, as shipped by the `kubernetes-validate` package.

We never hand-type a schema that upstream publishes.  `kubernetes-validate` carries the official
definitions as JSON Schema (`$defs`, `$ref: "#/$defs/<name>"`, nullable types as `["string","null"]`,
IntOrString and Quantity as `oneOf`) with the `x-kubernetes-*` extensions kept: patch strategies and
merge keys, list types and map keys, group-version-kind.  This module loads them once and answers
questions about them; the OpenAPI documents, validation and strategic merge patch are built on it.

`Schemas` is immutable after loading and safe to share.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

KUBERNETES_SCHEMA_VERSION = "v1.32.0"
REF_PREFIX = "#/$defs/"


@dataclass(frozen=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @classmethod
    def from_api_version(cls, api_version: str, kind: str) -> GroupVersionKind:
        group, _, version = api_version.rpartition("/")
        return cls(group, version, kind)


class Schemas:
    """All definitions, indexed by name and by group-version-kind."""

    def __init__(self, definitions: dict[str, dict[str, Any]]) -> None:
        self.definitions = definitions
        self._by_gvk: dict[GroupVersionKind, str] = {}
        for name, definition in definitions.items():
            for gvk in definition.get("x-kubernetes-group-version-kind", ()):
                key = GroupVersionKind(gvk["group"], gvk["version"], gvk["kind"])
                # meta/v1 kinds such as DeleteOptions list many GVKs; the first definition wins.
                self._by_gvk.setdefault(key, name)

    def definition_name(self, gvk: GroupVersionKind) -> str | None:
        return self._by_gvk.get(gvk)

    def for_kind(self, gvk: GroupVersionKind) -> dict[str, Any] | None:
        name = self._by_gvk.get(gvk)
        return self.definitions[name] if name else None

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow `$ref` (and a single-entry `allOf` wrapping one) to the schema it names."""
        seen = 0
        while True:
            ref = node.get("$ref")
            if ref is None and len(node.get("allOf", ())) == 1:
                ref = node["allOf"][0].get("$ref")
            if ref is None or not ref.startswith(REF_PREFIX):
                return node
            node = self.definitions[ref[len(REF_PREFIX) :]]
            seen += 1
            if seen > 50:  # pragma: no cover - the published schemas have no ref cycles of this kind
                raise ValueError(f"reference loop at {ref}")

    def property(self, node: dict[str, Any], name: str) -> dict[str, Any] | None:
        """The schema of field `name` of object schema `node` (unresolved, so its x-extensions stay)."""
        return self.resolve(node).get("properties", {}).get(name)

    def items(self, node: dict[str, Any]) -> dict[str, Any] | None:
        """The element schema of an array, or the value schema of a map (additionalProperties)."""
        node = self.resolve(node)
        items = node.get("items")
        if isinstance(items, dict):
            return items
        extra = node.get("additionalProperties")
        return extra if isinstance(extra, dict) else None

    def gvks(self) -> list[GroupVersionKind]:
        return list(self._by_gvk)


def types_of(node: dict[str, Any]) -> set[str]:
    """The JSON types a schema node allows, ignoring `null` (every field is optional in JSON)."""
    declared = node.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if t != "null"}
    out: set[str] = set()
    for alternative in [*node.get("oneOf", ()), *node.get("anyOf", ())]:
        out |= types_of(alternative)
    return out


@functools.cache
def load_schemas(version: str = KUBERNETES_SCHEMA_VERSION) -> Schemas:
    """Load the definitions of `version` once per process (about 1.3 MB of JSON)."""
    package = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
    raw = package.joinpath(f"{version}-local", "_definitions.json").read_bytes()
    return Schemas(orjson.loads(raw)["$defs"])
