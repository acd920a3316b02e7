"""API discovery in both forms clients use.

* Aggregated (apidiscovery.k8s.io/v2): kubectl 1.32 asks for it first and recognises it only by the
  response Content-Type, so the handler must set `AGGREGATED_CONTENT_TYPE` exactly.
* Legacy (APIVersions / APIGroupList / APIResourceList): kopf, the Python DynamicClient and kubectl
  drain read it, and kubectl falls back to it.

Documents are built from the registry and cached until the registry changes (`invalidate`).
"""

from __future__ import annotations

from typing import Any

import orjson

from kubelite.machinery.resources import Resource, ResourceRegistry

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str | None) -> str | None:
    """The aggregated version the client prefers, if it asked for aggregated discovery first."""
    if not accept:
        return None
    for entry in accept.split(","):
        entry = entry.replace(" ", "")
        if "as=APIGroupDiscoveryList" in entry and "g=apidiscovery.k8s.io" in entry:
            if "v=v2beta1" in entry:
                return "v2beta1"
            if "v=v2" in entry:
                return "v2"
        elif entry.startswith(("application/json", "*/*")):
            return None
    return None


class Discovery:
    def __init__(self, registry: ResourceRegistry, server_address: str = "") -> None:
        self.registry = registry
        self.server_address = server_address
        self._cache: dict[str, bytes] = {}

    def invalidate(self) -> None:
        self._cache.clear()

    def _cached(self, key: str, build: Any) -> bytes:
        data = self._cache.get(key)
        if data is None:
            data = self._cache[key] = orjson.dumps(build())
        return data

    # -- legacy -----------------------------------------------------------------------------------

    def api_versions(self) -> bytes:
        return self._cached(
            "api",
            lambda: {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}
                ],
            },
        )

    def api_group_list(self) -> bytes:
        return self._cached(
            "apis",
            lambda: {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    self._group(group, versions) for group, versions in self.registry.groups() if group
                ],
            },
        )

    def api_group(self, group: str) -> bytes | None:
        for name, versions in self.registry.groups():
            if name == group and group:
                return self._cached(
                    f"group/{group}",
                    lambda name=name, versions=versions: {  # type: ignore[misc]
                        "kind": "APIGroup",
                        "apiVersion": "v1",
                        **self._group(name, versions),
                    },
                )
        return None

    @staticmethod
    def _group(group: str, versions: list[str]) -> dict[str, Any]:
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": listed, "preferredVersion": listed[0]}

    def resource_list(self, group: str, version: str) -> bytes | None:
        resources = self.registry.in_group_version(group, version)
        if not resources:
            return None
        gv = f"{group}/{version}" if group else version

        def build() -> dict[str, Any]:
            out: list[dict[str, Any]] = []
            for r in sorted(resources, key=lambda r: r.plural):
                out.append(_legacy_entry(r))
                for sub in r.subresources:
                    entry: dict[str, Any] = {
                        "name": f"{r.plural}/{sub.name}",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": sub.kind or r.kind,
                        "verbs": list(sub.verbs),
                    }
                    if sub.group is not None:
                        entry["group"] = sub.group
                        entry["version"] = sub.version
                    out.append(entry)
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}

        return self._cached(f"resources/{gv}", build)

    # -- aggregated ---------------------------------------------------------------------------------

    def aggregated(self, core: bool, version: str = "v2") -> bytes:
        def build() -> dict[str, Any]:
            items = []
            for group, versions in self.registry.groups():
                if bool(group) == core:
                    continue
                items.append(
                    {
                        "metadata": {"name": group, "creationTimestamp": None},
                        "versions": [
                            {
                                "version": v,
                                "resources": [
                                    _aggregated_entry(r)
                                    for r in sorted(
                                        self.registry.in_group_version(group, v), key=lambda r: r.plural
                                    )
                                ],
                                "freshness": "Current",
                            }
                            for v in versions
                        ],
                    }
                )
            return {
                "kind": "APIGroupDiscoveryList",
                "apiVersion": f"apidiscovery.k8s.io/{version}",
                "metadata": {},
                "items": items,
            }

        return self._cached(f"aggregated/{core}/{version}", build)


def _legacy_entry(r: Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    return entry


def _aggregated_entry(r: Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    if r.subresources:
        entry["subresources"] = [
            {
                "subresource": s.name,
                "responseKind": {
                    "group": s.group if s.group is not None else r.group,
                    "version": s.version if s.version is not None else r.version,
                    "kind": s.kind or r.kind,
                },
                "verbs": list(s.verbs),
            }
            for s in r.subresources
        ]
    return entry
