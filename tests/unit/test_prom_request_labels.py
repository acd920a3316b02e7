"""The API server's request metric labels follow upstream's request-info rules (verb, scope, subresource)."""

from __future__ import annotations

import pytest

from kubelite.apiserver.prommetrics import RequestLabels, request_labels
from kubelite.machinery.resources import ResourceRegistry

REGISTRY = ResourceRegistry()


def known(group: str, version: str, plural: str) -> bool:
    if plural:
        return REGISTRY.get(group, version, plural) is not None
    return any(r.group == group and (not version or r.version == version) for r in REGISTRY.resources)


CASES = [
    # method, path, query, content type → verb, group, version, resource, subresource, scope
    ("GET", "/api/v1/namespaces/default/pods/web", {}, "", ("GET", "", "v1", "pods", "", "resource")),
    ("GET", "/api/v1/namespaces/default/pods", {}, "", ("LIST", "", "v1", "pods", "", "namespace")),
    ("GET", "/api/v1/pods", {}, "", ("LIST", "", "v1", "pods", "", "cluster")),
    ("GET", "/api/v1/pods", {"watch": "true"}, "", ("WATCH", "", "v1", "pods", "", "cluster")),
    ("GET", "/api/v1/pods", {"watch": "1"}, "", ("WATCH", "", "v1", "pods", "", "cluster")),
    ("GET", "/api/v1/pods", {"watch": "false"}, "", ("LIST", "", "v1", "pods", "", "cluster")),
    ("GET", "/api/v1/watch/namespaces/ns/pods", {}, "", ("WATCH", "", "v1", "pods", "", "namespace")),
    ("POST", "/apis/apps/v1/namespaces/ns/deployments", {}, "", ("POST", "apps", "v1", "deployments", "", "resource")),
    ("PUT", "/apis/apps/v1/namespaces/ns/deployments/d", {}, "", ("PUT", "apps", "v1", "deployments", "", "resource")),
    (
        "PUT",
        "/apis/apps/v1/namespaces/ns/deployments/d/status",
        {},
        "",
        ("PUT", "apps", "v1", "deployments", "status", "resource"),
    ),
    (
        "PATCH",
        "/api/v1/namespaces/ns/configmaps/c",
        {},
        "application/merge-patch+json",
        ("PATCH", "", "v1", "configmaps", "", "resource"),
    ),
    (
        "PATCH",
        "/api/v1/namespaces/ns/configmaps/c",
        {},
        "application/apply-patch+yaml; charset=utf-8",
        ("APPLY", "", "v1", "configmaps", "", "resource"),
    ),
    ("DELETE", "/api/v1/namespaces/ns/pods/p", {}, "", ("DELETE", "", "v1", "pods", "", "resource")),
    ("DELETE", "/api/v1/namespaces/ns/pods", {}, "", ("DELETECOLLECTION", "", "v1", "pods", "", "namespace")),
    ("GET", "/api/v1/namespaces/ns/pods/p/log", {}, "", ("GET", "", "v1", "pods", "log", "resource")),
    ("POST", "/api/v1/namespaces/ns/pods/p/exec", {}, "", ("CONNECT", "", "v1", "pods", "exec", "resource")),
    (
        "GET",
        "/api/v1/namespaces/ns/pods/p/portforward",
        {},
        "",
        ("CONNECT", "", "v1", "pods", "portforward", "resource"),
    ),
    ("POST", "/api/v1/namespaces/ns/pods/p/eviction", {}, "", ("POST", "", "v1", "pods", "eviction", "resource")),
    ("GET", "/api/v1/namespaces/default", {}, "", ("GET", "", "v1", "namespaces", "", "resource")),
    ("GET", "/api/v1/namespaces", {}, "", ("LIST", "", "v1", "namespaces", "", "cluster")),
    ("GET", "/api/v1/nodes/n1", {}, "", ("GET", "", "v1", "nodes", "", "resource")),
    # non-resource paths: the path goes into subresource, no scope
    ("GET", "/healthz", {}, "", ("GET", "", "", "", "/healthz", "")),
    ("GET", "/readyz/ping", {}, "", ("GET", "", "", "", "/readyz", "")),
    ("GET", "/version/", {}, "", ("GET", "", "", "", "/version", "")),
    ("GET", "/metrics", {}, "", ("GET", "", "", "", "/metrics", "")),
    ("GET", "/api", {}, "", ("GET", "", "", "", "/api", "")),
    ("GET", "/api/v1", {}, "", ("GET", "", "", "", "/api/v1", "")),
    ("GET", "/apis/apps/v1", {}, "", ("GET", "", "", "", "/apis/apps/v1", "")),
    ("GET", "/openapi/v3/apis/apps/v1", {}, "", ("GET", "", "", "", "/openapi/v3", "")),
    # nothing is served there: no path in the labels (bounded cardinality)
    ("GET", "/wp-login.php", {}, "", ("GET", "", "", "", "", "")),
    ("GET", "/apis/nosuch.example.com/v1", {}, "", ("GET", "", "", "", "", "")),
    ("GET", "/api/v1/namespaces/ns/gizmos", {}, "", ("GET", "", "", "", "", "")),
    ("BREW", "/healthz", {}, "", ("other", "", "", "", "/healthz", "")),
]


@pytest.mark.parametrize(("method", "path", "query", "content_type", "expected"), CASES)
def test_request_labels_follow_upstream_request_info(
    method: str, path: str, query: dict[str, str], content_type: str, expected: tuple[str, ...]
) -> None:
    labels = request_labels(method, path, query, content_type, known=known)
    assert (labels.verb, labels.group, labels.version, labels.resource, labels.subresource, labels.scope) == expected


@pytest.mark.parametrize(
    ("method", "path", "query", "long_running", "watch"),
    [
        ("GET", "/api/v1/pods", {"watch": "true"}, True, True),
        ("GET", "/api/v1/namespaces/ns/pods/p/log", {"follow": "true"}, True, False),
        ("POST", "/api/v1/namespaces/ns/pods/p/exec", {}, True, False),
        ("GET", "/api/v1/namespaces/ns/pods/p/attach", {}, True, False),
        ("GET", "/api/v1/pods", {}, False, False),
        ("POST", "/api/v1/namespaces/ns/pods/p/eviction", {}, False, False),
    ],
)
def test_watches_and_streaming_subresources_are_long_running(
    method: str, path: str, query: dict[str, str], long_running: bool, watch: bool
) -> None:
    labels = request_labels(method, path, query, known=known)
    assert (labels.long_running, labels.watch) == (long_running, watch)


def test_dry_run_label_is_all_only_for_dry_run_all() -> None:
    assert request_labels("POST", "/api/v1/namespaces/ns/pods", {"dryRun": "All"}, known=known).dry_run == "All"
    assert request_labels("POST", "/api/v1/namespaces/ns/pods", {}, known=known).dry_run == ""


def test_label_values_are_in_upstream_order_with_the_component() -> None:
    labels = RequestLabels("LIST", "apps", "v1", "deployments", "", "cluster", dry_run="")
    assert labels.values() == ("LIST", "", "apps", "v1", "deployments", "", "cluster", "apiserver")
