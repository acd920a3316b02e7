"""URL parsing, content negotiation and discovery documents."""

from __future__ import annotations

import orjson
import pytest

from kubelite.apiserver.discovery import Discovery, wants_aggregated
from kubelite.apiserver.negotiation import decode_body, response_form
from kubelite.apiserver.requestinfo import RequestInfo, parse_api_path
from kubelite.machinery.errors import ApiError
from kubelite.machinery.resources import ResourceRegistry


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/pods", RequestInfo("", "v1", "pods")),
        ("/api/v1/namespaces/default/pods", RequestInfo("", "v1", "pods", "default")),
        ("/api/v1/namespaces/default/pods/web/log", RequestInfo("", "v1", "pods", "default", "web", "log")),
        ("/api/v1/namespaces/default", RequestInfo("", "v1", "namespaces", None, "default")),
        ("/api/v1/namespaces/default/status", RequestInfo("", "v1", "namespaces", None, "default", "status")),
        ("/api/v1/namespaces", RequestInfo("", "v1", "namespaces")),
        ("/apis/apps/v1/deployments", RequestInfo("apps", "v1", "deployments")),
        ("/apis/apps/v1/namespaces/x/deployments/d/scale", RequestInfo("apps", "v1", "deployments", "x", "d", "scale")),
        ("/api/v1/watch/namespaces/x/pods", RequestInfo("", "v1", "pods", "x", None, "", True)),
        ("/api/v1", None),
        ("/apis/apps", None),
        ("/healthz", None),
    ],
)
def test_parse_api_path(path: str, expected: RequestInfo | None) -> None:
    assert parse_api_path(path) == expected


@pytest.mark.parametrize(
    ("accept", "shape", "version"),
    [
        (None, "object", "meta.k8s.io/v1"),
        ("application/json", "object", "meta.k8s.io/v1"),
        ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
         "application/json", "table", "meta.k8s.io/v1"),
        ("application/json;as=Table;v=v1beta1;g=meta.k8s.io", "table", "meta.k8s.io/v1beta1"),
        ("application/vnd.kubernetes.protobuf,application/json", "object", "meta.k8s.io/v1"),
        ("application/vnd.kubernetes.protobuf, */*", "object", "meta.k8s.io/v1"),
        ("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1", "partial", "meta.k8s.io/v1"),
    ],
)
def test_response_form(accept: str | None, shape: str, version: str) -> None:
    form = response_form(accept)
    assert (form.shape, form.api_version) == (shape, version)


def test_protobuf_only_accept_is_not_acceptable() -> None:
    with pytest.raises(ApiError) as refused:
        response_form("application/vnd.kubernetes.protobuf")
    assert refused.value.code == 406


@pytest.mark.parametrize(
    ("raw", "content_type", "code"),
    [
        (b"{", "application/json", 400),
        (b"{", None, 400),
        (b"a: [", "application/yaml", 400),
        (b"{}", "application/xml", 415),
        (b"k8s\x00\x01", "application/vnd.kubernetes.protobuf", 400),
    ],
)
def test_bad_bodies(raw: bytes, content_type: str | None, code: int) -> None:
    with pytest.raises(ApiError) as failed:
        decode_body(raw, content_type)
    assert failed.value.code == code


def test_missing_content_type_is_json() -> None:
    assert decode_body(b'{"a": 1}', None) == {"a": 1}


def test_aggregated_discovery_is_detected_from_accept() -> None:
    kubectl = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
               "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
    assert wants_aggregated(kubectl) == "v2"
    assert wants_aggregated("application/json, */*") is None
    assert wants_aggregated(None) is None


def test_discovery_documents_describe_registry() -> None:
    discovery = Discovery(ResourceRegistry(), "127.0.0.1:6443")
    core = orjson.loads(discovery.aggregated(core=True))
    assert [item["metadata"]["name"] for item in core["items"]] == [""]
    pods = next(r for r in core["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    assert {s["subresource"] for s in pods["subresources"]} >= {"status", "log", "exec", "eviction", "binding"}
    groups = orjson.loads(discovery.aggregated(core=False))
    autoscaling = next(i for i in groups["items"] if i["metadata"]["name"] == "autoscaling")
    assert [v["version"] for v in autoscaling["versions"]] == ["v2", "v1"]
    legacy = orjson.loads(discovery.resource_list("apps", "v1") or b"{}")
    scale = next(r for r in legacy["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert discovery.resource_list("apps", "v9") is None
