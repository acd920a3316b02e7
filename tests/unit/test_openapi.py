"""OpenAPI v3 documents: shape checks, caching, the CRD seam, and the real kubectl reading them."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from kubelite.apiserver.openapi import SMP, OpenApiV3, SchemaExtension
from kubelite.machinery import validation
from kubelite.machinery.resources import Resource, ResourceRegistry
from kubelite.machinery.schema import GroupVersionKind, load_schemas

KUBECTL = "/usr/bin/kubectl"
DEPLOYMENT_ITEM = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


@pytest.fixture(scope="module")
def openapi() -> OpenApiV3:
    return OpenApiV3(ResourceRegistry(), load_schemas())


@pytest.fixture(scope="module")
def apps(openapi: OpenApiV3) -> dict[str, Any]:
    found = openapi.document("apis/apps/v1")
    assert found is not None
    return orjson.loads(found[0])


def all_documents(openapi: OpenApiV3) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in orjson.loads(openapi.index())["paths"]:
        found = openapi.document(path)
        assert found is not None, path
        yield path, orjson.loads(found[0])


def schema_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every schema inside a schema (not the property-name maps themselves)."""
    yield node
    for sub in node.get("properties", {}).values():
        yield from schema_nodes(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from schema_nodes(node[key])
    for key in ("allOf", "oneOf", "anyOf"):
        for sub in node.get(key, ()):
            yield from schema_nodes(sub)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


# -- index and caching -----------------------------------------------------------------------------


def test_index_lists_every_served_group_version(openapi: OpenApiV3) -> None:
    index = orjson.loads(openapi.index())["paths"]
    expected = {f"apis/{g}/{v}" if g else f"api/{v}" for g, vs in ResourceRegistry().groups() for v in vs}
    assert set(index) == expected
    assert index["apis/apps/v1"]["serverRelativeURL"].startswith("/openapi/v3/apis/apps/v1?hash=")


def test_index_hash_is_uppercase_sha512_of_the_document(openapi: OpenApiV3) -> None:
    url = orjson.loads(openapi.index())["paths"]["api/v1"]["serverRelativeURL"]
    found = openapi.document("api/v1")
    assert found is not None
    body, etag = found
    assert etag == hashlib.sha512(body).hexdigest().upper()
    assert url.endswith("?hash=" + etag)


@pytest.mark.parametrize("path", ["apis/apps/v1", "/apis/apps/v1", "openapi/v3/apis/apps/v1?hash=X"])
def test_document_accepts_path_forms(openapi: OpenApiV3, path: str) -> None:
    assert openapi.document(path) == openapi.document("apis/apps/v1")


@pytest.mark.parametrize("path", ["apis/nope/v1", "api/v2", "apis/apps", "version", ""])
def test_document_unknown_group_version_is_none(openapi: OpenApiV3, path: str) -> None:
    assert openapi.document(path) is None


def test_documents_are_cached_until_registry_changes() -> None:
    registry = ResourceRegistry()
    openapi = OpenApiV3(registry, load_schemas())
    first = openapi.document("apis/batch/v1")
    assert first is not None and openapi.document("apis/batch/v1")[0] is first[0]  # type: ignore[index]
    registry.remove_group_resource("batch", "cronjobs")
    second = openapi.document("apis/batch/v1")
    assert second is not None and second[1] != first[1]
    assert "/apis/batch/v1/namespaces/{namespace}/cronjobs" not in orjson.loads(second[0])["paths"]
    assert second[1] in orjson.loads(openapi.index())["paths"]["apis/batch/v1"]["serverRelativeURL"]


def test_invalidate_rebuilds_identical_bytes(openapi: OpenApiV3) -> None:
    before = openapi.document("api/v1")
    openapi.invalidate()
    assert openapi.document("api/v1") == before


def test_building_every_document_is_fast() -> None:
    openapi = OpenApiV3(ResourceRegistry(), load_schemas())
    started = time.perf_counter()
    openapi.index()
    assert time.perf_counter() - started < 2.0  # about 40 ms measured; generous for slow CI


# -- document contents -----------------------------------------------------------------------------


def test_deployment_schema_carries_its_group_version_kind(apps: dict[str, Any]) -> None:
    schema = apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    assert schema["type"] == "object"
    assert "enum" not in schema["properties"]["apiVersion"]
    assert apps["openapi"] == "3.0.0"
    assert apps["info"] == {"title": "Kubernetes", "version": "v1.32.4+kubelite"}


def test_deployment_patch_operation_is_what_kubectl_looks_for(apps: dict[str, Any]) -> None:
    patch = apps["paths"][DEPLOYMENT_ITEM]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "kind": "Deployment",
        "version": "v1",
    }
    assert patch["x-kubernetes-action"] == "patch"
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    query = {p["name"] for p in patch["parameters"] if p["in"] == "query"}
    assert {"fieldValidation", "fieldManager", "dryRun", "force"} <= query
    content = patch["requestBody"]["content"]
    assert set(content) == {
        "application/json-patch+json",
        "application/merge-patch+json",
        SMP,
        "application/apply-patch+yaml",
    }
    assert {c["schema"]["$ref"] for c in content.values()} == {
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    }


def test_every_patch_operation_offers_field_validation(openapi: OpenApiV3) -> None:
    # kubectl's verifier stops at the first PATCH operation of the kind, whichever path it is on
    for doc_path, doc in all_documents(openapi):
        for path, item in doc["paths"].items():
            patch = item.get("patch")
            if patch and patch["x-kubernetes-action"] == "patch":
                names = {p["name"] for p in patch["parameters"]}
                assert "fieldValidation" in names, (doc_path, path)


@pytest.mark.parametrize(
    ("path", "method", "action", "op_id"),
    [
        ("/apis/apps/v1/namespaces/{namespace}/deployments", "get", "list", "listAppsV1NamespacedDeployment"),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments",
            "post",
            "post",
            "createAppsV1NamespacedDeployment",
        ),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments",
            "delete",
            "deletecollection",
            "deleteAppsV1CollectionNamespacedDeployment",
        ),
        (DEPLOYMENT_ITEM, "get", "get", "readAppsV1NamespacedDeployment"),
        (DEPLOYMENT_ITEM, "put", "put", "replaceAppsV1NamespacedDeployment"),
        (DEPLOYMENT_ITEM, "delete", "delete", "deleteAppsV1NamespacedDeployment"),
        (DEPLOYMENT_ITEM + "/status", "patch", "patch", "patchAppsV1NamespacedDeploymentStatus"),
        (DEPLOYMENT_ITEM + "/scale", "put", "put", "replaceAppsV1NamespacedDeploymentScale"),
        ("/apis/apps/v1/deployments", "get", "list", "listAppsV1DeploymentForAllNamespaces"),
        (
            "/apis/apps/v1/watch/namespaces/{namespace}/deployments",
            "get",
            "watchlist",
            "watchAppsV1NamespacedDeploymentList",
        ),
        (
            "/apis/apps/v1/watch/namespaces/{namespace}/deployments/{name}",
            "get",
            "watch",
            "watchAppsV1NamespacedDeployment",
        ),
    ],
)
def test_deployment_operations(apps: dict[str, Any], path: str, method: str, action: str, op_id: str) -> None:
    op = apps["paths"][path][method]
    assert op["x-kubernetes-action"] == action
    assert op["operationId"] == op_id
    assert op["tags"] == ["apps_v1"]


def test_scale_subresource_speaks_autoscaling_scale(apps: dict[str, Any]) -> None:
    patch = apps["paths"][DEPLOYMENT_ITEM + "/scale"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "kind": "Scale",
        "version": "v1",
    }
    assert patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "io.k8s.api.autoscaling.v1.Scale"
    )


def test_create_takes_the_object_and_answers_201(apps: dict[str, Any]) -> None:
    post = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"]
    ref = "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    assert post["requestBody"]["content"]["*/*"]["schema"]["$ref"] == ref
    assert {"200", "201", "202", "401"} == set(post["responses"])
    assert post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"] == ref


def test_path_parameters_are_required(apps: dict[str, Any]) -> None:
    params = {p["name"]: p for p in apps["paths"][DEPLOYMENT_ITEM]["parameters"]}
    assert params["name"]["in"] == "path" and params["name"]["required"] is True
    assert params["namespace"]["in"] == "path" and params["namespace"]["required"] is True
    assert params["pretty"]["in"] == "query"


def test_cluster_scoped_paths_have_no_namespace(openapi: OpenApiV3) -> None:
    found = openapi.document("api/v1")
    assert found is not None
    paths = orjson.loads(found[0])["paths"]
    assert "/api/v1/nodes/{name}" in paths
    assert paths["/api/v1/nodes/{name}"]["patch"]["operationId"] == "patchCoreV1Node"
    assert "/api/v1/namespaces/{namespace}/nodes" not in paths
    exec_op = paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["get"]
    assert exec_op["x-kubernetes-action"] == "connect"
    assert {p["name"] for p in exec_op["parameters"]} >= {"command", "container", "stdin", "tty"}
    assert paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"][
        "x-kubernetes-group-version-kind"
    ] == {"group": "policy", "kind": "Eviction", "version": "v1"}


def test_every_reference_resolves_within_its_document(openapi: OpenApiV3) -> None:
    for doc_path, doc in all_documents(openapi):
        schemas = doc["components"]["schemas"]
        for node in walk(doc):
            ref = node.get("$ref")
            if isinstance(ref, str):
                assert ref.startswith("#/components/schemas/"), (doc_path, ref)
                assert ref.removeprefix("#/components/schemas/") in schemas, (doc_path, ref)


def test_no_json_schema_leftovers(openapi: OpenApiV3) -> None:
    for doc_path, doc in all_documents(openapi):
        for schema in doc["components"]["schemas"].values():
            for node in schema_nodes(schema):
                kind = node.get("type")
                assert kind is None or (isinstance(kind, str) and kind != "null"), (doc_path, node)
        assert b"#/$defs/" not in orjson.dumps(doc)


def test_refs_with_siblings_are_wrapped_in_all_of(apps: dict[str, Any]) -> None:
    strategy = apps["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}]
    assert strategy["description"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"


def test_int_or_string_and_quantity_match_upstream(apps: dict[str, Any]) -> None:
    schemas = apps["components"]["schemas"]
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
    }
    assert schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"] == {
        "oneOf": [{"type": "string"}, {"type": "number"}]
    }


def test_required_and_extensions_are_kept(apps: dict[str, Any]) -> None:
    schemas = apps["components"]["schemas"]
    container = schemas["io.k8s.api.core.v1.Container"]
    assert "name" in container["required"]
    ports = container["properties"]["ports"]
    assert ports["x-kubernetes-list-type"] == "map"
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert ports["x-kubernetes-patch-merge-key"] == "containerPort"
    assert (
        schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["x-kubernetes-patch-strategy"]
        == "merge"
    )


def test_meta_types_every_document_needs(openapi: OpenApiV3) -> None:
    for doc_path, doc in all_documents(openapi):
        schemas = doc["components"]["schemas"]
        assert "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList" in schemas, doc_path
        if any("patch" in item for item in doc["paths"].values()):
            assert "io.k8s.apimachinery.pkg.apis.meta.v1.Patch" in schemas, doc_path
            assert "io.k8s.apimachinery.pkg.apis.meta.v1.Status" in schemas, doc_path
            assert "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions" in schemas, doc_path
            assert "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent" in schemas, doc_path


# -- the CRD seam ----------------------------------------------------------------------------------


def test_extension_group_version_is_served_without_strategic_merge_patch() -> None:
    registry = ResourceRegistry()
    openapi = OpenApiV3(registry, load_schemas())
    before = openapi.index()
    registry.add(Resource("stable.example.com", "v1", "CronTab", "crontabs", True))
    meta = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1."
    openapi.register_extension(
        "stable.example.com",
        "v1",
        SchemaExtension(
            definitions={
                "com.example.stable.v1.CronTab": {
                    "type": "object",
                    "properties": {
                        "metadata": {"allOf": [{"$ref": meta + "ObjectMeta"}]},
                        "spec": {"type": "object", "properties": {"cronSpec": {"type": "string"}}},
                    },
                    "x-kubernetes-group-version-kind": [
                        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
                    ],
                },
                "com.example.stable.v1.CronTabList": {
                    "type": "object",
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/com.example.stable.v1.CronTab"},
                        },
                        "metadata": {"allOf": [{"$ref": meta + "ListMeta"}]},
                    },
                },
            },
            kinds={
                "CronTab": "com.example.stable.v1.CronTab",
                "CronTabList": "com.example.stable.v1.CronTabList",
            },
        ),
    )
    assert openapi.index() != before
    found = openapi.document("apis/stable.example.com/v1")
    assert found is not None
    doc = orjson.loads(found[0])
    patch = doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["patch"]
    assert SMP not in patch["requestBody"]["content"]
    assert "application/merge-patch+json" in patch["requestBody"]["content"]
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in doc["components"]["schemas"]
    openapi.remove_extension("stable.example.com", "v1")
    registry.remove_group_resource("stable.example.com", "crontabs")
    assert openapi.document("apis/stable.example.com/v1") is None


# -- end to end with the real kubectl --------------------------------------------------------------

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4+kubelite",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def resource_list(registry: ResourceRegistry, group: str, version: str) -> dict[str, Any]:
    """A legacy APIResourceList from the registry (enough discovery for kubectl)."""
    out: list[dict[str, Any]] = []
    for r in registry.in_group_version(group, version):
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
        out.append(entry)
        for sub in r.subresources:
            sub_entry: dict[str, Any] = {
                "name": f"{r.plural}/{sub.name}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": sub.kind or r.kind,
                "verbs": list(sub.verbs),
            }
            if sub.group is not None:
                sub_entry.update(group=sub.group, version=sub.version)
            out.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


@dataclass
class FakeServer:
    """Version, legacy discovery, OpenAPI v3 from `OpenApiV3`, and a create/get/patch that records."""

    openapi: OpenApiV3
    registry: ResourceRegistry
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path_qs, content type)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.record])
        app.router.add_get("/version", self.version)
        app.router.add_get("/api", self.api)
        app.router.add_get("/apis", self.apis)
        app.router.add_get("/openapi/v3", self.openapi_index)
        app.router.add_get("/openapi/v3/{path:.*}", self.openapi_document)
        app.router.add_route("*", "/{tail:.*}", self.resources)
        return app

    @web.middleware
    async def record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs, request.headers.get("Content-Type", "")))
        return await handler(request)

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response(VERSION)

    async def openapi_index(self, request: web.Request) -> web.Response:
        return web.Response(body=self.openapi.index(), content_type="application/json")

    async def api(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}],
            }
        )

    async def apis(self, request: web.Request) -> web.Response:
        groups = []
        for group, versions in self.registry.groups():
            if group:
                listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
                groups.append({"name": group, "versions": listed, "preferredVersion": listed[0]})
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    async def openapi_document(self, request: web.Request) -> web.Response:
        found = self.openapi.document(request.match_info["path"])
        if found is None:
            return not_found()
        return web.Response(body=found[0], content_type="application/json", headers={"ETag": f'"{found[1]}"'})

    async def resources(self, request: web.Request) -> web.Response:
        parts = [p for p in request.path.split("/") if p]
        if request.method == "GET" and len(parts) == 2 and parts[0] == "api":
            return web.json_response(resource_list(self.registry, "", parts[1]))
        if request.method == "GET" and len(parts) == 3 and parts[0] == "apis":
            return web.json_response(resource_list(self.registry, parts[1], parts[2]))
        if parts[:4] != ["apis", "apps", "v1", "namespaces"] or parts[5:6] != ["deployments"]:
            return not_found()
        gvk = GroupVersionKind("apps", "v1", "Deployment")
        if request.method == "POST":
            obj = await request.json()
            unknown = validation.find_unknown_fields(obj, gvk, self.openapi.schemas)
            if unknown and request.query.get("fieldValidation") == "Strict":
                error = validation.strict_decoding_error(gvk, unknown)
                return web.Response(status=error.code, body=error.body(), content_type="application/json")
            obj["metadata"].setdefault("namespace", parts[4])
            self.objects[obj["metadata"]["name"]] = obj
            return web.json_response(obj, status=201)
        name = parts[6] if len(parts) > 6 else ""
        if name not in self.objects:
            return not_found(name)
        if request.method == "PATCH":
            await request.read()
        return web.json_response(self.objects[name])


def not_found(name: str = "") -> web.Response:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'deployments.apps "{name}" not found',
        "reason": "NotFound",
        "code": 404,
    }
    return web.json_response(status, status=404)


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[tuple[FakeServer, Path]]:
    if not os.access(KUBECTL, os.X_OK) or shutil.which("kubectl") is None:
        pytest.skip("the real kubectl is not installed")
    registry = ResourceRegistry()
    server = FakeServer(OpenApiV3(registry, load_schemas()), registry)
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters: [{{name: t, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: t, user: {}}]\n"
        "contexts: [{name: t, context: {cluster: t, user: t, namespace: default}}]\n"
    )
    try:
        yield server, kubeconfig
    finally:
        await runner.cleanup()


async def kubectl(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "HOME": str(kubeconfig.parent), "KUBECONFIG": str(kubeconfig)}
    process = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        str(kubeconfig),
        "--cache-dir",
        str(kubeconfig.parent / "cache"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
"""


async def test_kubectl_explain_deployment_strategy(fake: tuple[FakeServer, Path]) -> None:
    server, kubeconfig = fake
    code, out, err = await kubectl(kubeconfig, "explain", "deployment.spec.strategy")
    assert code == 0, err
    assert "DeploymentStrategy" in out
    assert "rollingUpdate" in out and "type" in out
    assert any(path.startswith("/openapi/v3/apis/apps/v1?hash=") for _, path, _ in server.requests)


async def test_kubectl_explain_pod_containers(fake: tuple[FakeServer, Path]) -> None:
    _, kubeconfig = fake
    code, out, err = await kubectl(kubeconfig, "explain", "pods.spec.containers")
    assert code == 0, err
    assert "Container" in out
    assert "image" in out and "livenessProbe" in out
    assert "-required-" in out  # name is required


async def test_kubectl_explain_int_or_string_field(fake: tuple[FakeServer, Path]) -> None:
    _, kubeconfig = fake
    code, out, err = await kubectl(kubeconfig, "explain", "deployment.spec.strategy.rollingUpdate.maxSurge")
    assert code == 0, err
    assert "maxSurge" in out and "IntOrString" in out


async def test_kubectl_create_sends_strict_field_validation(
    fake: tuple[FakeServer, Path], tmp_path: Path
) -> None:
    server, kubeconfig = fake
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(DEPLOYMENT)
    code, out, err = await kubectl(kubeconfig, "create", "-f", str(manifest), "-o", "name")
    assert code == 0, err
    assert out.strip() == "deployment.apps/web"
    posts = [path for method, path, _ in server.requests if method == "POST"]
    assert len(posts) == 1
    assert "fieldValidation=Strict" in posts[0] and "fieldManager=kubectl-create" in posts[0]


async def test_kubectl_create_reports_the_servers_strict_error(
    fake: tuple[FakeServer, Path], tmp_path: Path
) -> None:
    _, kubeconfig = fake
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(
        DEPLOYMENT.replace("  replicas: 2", "  replicass: 2").replace(
            "image: nginx:1.27", "image: nginx:1.27\n        foo: bar"
        )
    )
    code, _, err = await kubectl(kubeconfig, "create", "-f", str(manifest))
    assert code != 0
    assert (
        'Error from server (BadRequest): error when creating "' in err
        and 'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replicass", unknown field "spec.template.spec.containers[0].foo"'
        in err
    ), err


async def test_kubectl_apply_computes_strategic_merge_patch_from_openapi_v3(
    fake: tuple[FakeServer, Path], tmp_path: Path
) -> None:
    server, kubeconfig = fake
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(DEPLOYMENT)
    code, _, err = await kubectl(kubeconfig, "apply", "-f", str(manifest))
    assert code == 0, err
    manifest.write_text(DEPLOYMENT.replace("replicas: 2", "replicas: 3"))
    code, _, err = await kubectl(kubeconfig, "apply", "-f", str(manifest))
    assert code == 0, err
    patches = [(path, ctype) for method, path, ctype in server.requests if method == "PATCH"]
    assert len(patches) == 1
    assert patches[0][1].startswith(SMP)
    assert "fieldValidation=Strict" in patches[0][0]
    # had OpenAPI v3 not offered SMP for the kind, kubectl would have fallen back to /openapi/v2
    assert not any(path.startswith("/openapi/v2") for _, path, _ in server.requests)
