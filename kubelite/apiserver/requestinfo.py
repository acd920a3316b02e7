"""Parse a Kubernetes API path into what it addresses, as upstream's RequestInfoFactory does.

/api/v1/namespaces/default/pods/web/log   → core v1, ns default, pods, web, subresource log
/apis/apps/v1/deployments                 → apps v1, all namespaces, deployments
/api/v1/namespaces/default                → the namespace object "default"
/api/v1/watch/namespaces/default/pods     → legacy watch form
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class RequestInfo:
    group: str
    version: str
    plural: str
    namespace: str | None = None
    name: str | None = None
    subresource: str = ""
    legacy_watch: bool = False


def parse_api_path(path: str) -> RequestInfo | None:
    """None when the path is not a resource path (discovery paths are handled elsewhere)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None
    if parts[0] == "api":
        if len(parts) < 3:
            return None
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis":
        if len(parts) < 4:
            return None
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = False
    if rest and rest[0] == "watch":
        legacy_watch = True
        rest = rest[1:]
        if not rest:
            return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) == 3 and rest[2] in NAMESPACE_SUBRESOURCES:
        return RequestInfo(group, version, "namespaces", None, rest[1], rest[2], legacy_watch)
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) == 2:
        # /namespaces/{name}: the namespace object itself
        return RequestInfo(group, version, "namespaces", None, rest[1], "", legacy_watch)
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3 and subresource not in ("proxy",):
        return None
    if namespace is not None and plural == "namespaces":
        return None
    return RequestInfo(group, version, plural, namespace, name, subresource, legacy_watch)
