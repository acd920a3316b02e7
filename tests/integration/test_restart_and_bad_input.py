"""Durability across a restart, and bad input that must leave storage untouched."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubelite.testing.server import ServerProcess


class RawClient:
    """Plain HTTPS requests with the admin certificate, to send what kubectl never would."""

    def __init__(self, server: ServerProcess, tmp: Path) -> None:
        import base64

        config = yaml.safe_load(server.kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        for name, field in (
            ("ca.crt", cluster["certificate-authority-data"]),
            ("client.crt", user["client-certificate-data"]),
            ("client.key", user["client-key-data"]),
        ):
            (tmp / name).write_bytes(base64.b64decode(field))
        self.context = ssl.create_default_context(cafile=str(tmp / "ca.crt"))
        self.context.load_cert_chain(str(tmp / "client.crt"), str(tmp / "client.key"))
        self.base = cluster["server"]

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[int, Any, dict[str, str]]:
        req = urllib.request.Request(
            self.base + path,
            data=body,
            method=method,
            headers={"Content-Type": content_type} if body is not None else {},
        )
        try:
            with urllib.request.urlopen(req, context=self.context) as response:
                return response.status, json.loads(response.read() or b"null"), dict(response.headers)
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read()
                return exc.code, json.loads(raw) if raw else None, dict(exc.headers)


@pytest.fixture(scope="module")
def raw(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawClient]:
    yield RawClient(server, tmp_path_factory.mktemp("raw"))


CM_PATH = "/api/v1/namespaces/default/configmaps"


def _snapshot(raw: RawClient) -> list[tuple[str, str]]:
    _, body, _ = raw.request("GET", CM_PATH)
    return sorted((i["metadata"]["name"], i["metadata"]["resourceVersion"]) for i in body["items"])


@pytest.mark.parametrize(
    ("body", "content_type", "path", "code", "reason"),
    [
        (b'{"metadata": {"name": "bad"', "application/json", CM_PATH, 400, "BadRequest"),
        (b"metadata: [unclosed", "application/yaml", CM_PATH, 400, "BadRequest"),
        (b"k8s\x00\xff\xff", "application/vnd.kubernetes.protobuf", CM_PATH, 400, "BadRequest"),
        (
            b'{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}',
            "application/json",
            CM_PATH,
            400,
            "BadRequest",
        ),
        (
            b'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}',
            "application/json",
            CM_PATH,
            400,
            "BadRequest",
        ),
        (b'{"metadata":{"name":"Not_A_Name"}}', "application/json", CM_PATH, 422, "Invalid"),
        (b'{"metadata":{}}', "application/json", CM_PATH, 422, "Invalid"),
        (
            b'{"metadata":{"name":"x"},"data":{"k":"v"},"bogus":1}',
            "application/json",
            CM_PATH + "?fieldValidation=Strict",
            400,
            "BadRequest",
        ),
        (b'{"metadata":{"name":"x"}}', "text/html", CM_PATH, 415, "UnsupportedMediaType"),
        (
            b'{"metadata":{"name":"big"},"data":{"k":"' + b"x" * (3 * 1024 * 1024 + 10) + b'"}}',
            "application/json",
            CM_PATH,
            413,
            "RequestEntityTooLarge",
        ),
        (
            b'{"metadata":{"name":"x"}}',
            "application/json",
            "/api/v1/namespaces/nowhere/configmaps",
            404,
            "NotFound",
        ),
    ],
)
def test_bad_create_is_rejected_and_nothing_is_stored(
    raw: RawClient, body: bytes, content_type: str, path: str, code: int, reason: str
) -> None:
    before = _snapshot(raw)
    status, answer, _ = raw.request("POST", path, body, content_type)
    assert status == code
    assert answer["kind"] == "Status" and answer["status"] == "Failure"
    assert answer["reason"] == reason
    assert answer["code"] == code
    assert _snapshot(raw) == before


def test_invalid_update_names_the_field_and_keeps_the_object(raw: RawClient) -> None:
    dep_path = "/apis/apps/v1/namespaces/default/deployments"
    manifest = {
        "metadata": {"name": "immut"},
        "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "template": {
                "metadata": {"labels": {"app": "a"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
    status, created, _ = raw.request("POST", dep_path, json.dumps(manifest).encode())
    assert status == 201
    created["spec"]["selector"] = {"matchLabels": {"app": "b"}}
    created["spec"]["template"]["metadata"]["labels"] = {"app": "b"}
    status, answer, _ = raw.request("PUT", dep_path + "/immut", json.dumps(created).encode())
    assert status == 422
    assert answer["reason"] == "Invalid"
    assert any(c["field"] == "spec.selector" for c in answer["details"]["causes"])
    status, current, _ = raw.request("GET", dep_path + "/immut")
    assert current["spec"]["selector"] == {"matchLabels": {"app": "a"}}
    assert current["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    status, answer, _ = raw.request(
        "PATCH", dep_path + "/immut", b'{"spec":{"replicas":-1}}', "application/merge-patch+json"
    )
    assert status == 422
    assert answer["details"]["causes"][0]["field"] == "spec.replicas"


def test_unknown_field_warns_by_default(raw: RawClient) -> None:
    body = b'{"metadata":{"name":"warned"},"data":{"k":"v"},"bogus":1}'
    status, answer, headers = raw.request("POST", CM_PATH, body)
    assert status == 201
    assert 'unknown field \\"bogus\\"' in headers.get(
        "Warning", ""
    ) or 'unknown field "bogus"' in headers.get("Warning", "")
    assert "bogus" not in answer


def test_dry_run_stores_nothing(raw: RawClient) -> None:
    status, answer, _ = raw.request("POST", CM_PATH + "?dryRun=All", b'{"metadata":{"name":"dry"}}')
    assert status == 201
    assert answer["metadata"]["name"] == "dry"
    status, _, _ = raw.request("GET", CM_PATH + "/dry")
    assert status == 404


def test_unauthenticated_requests_are_refused(server: ServerProcess) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(server.url + CM_PATH, context=context)
    assert refused.value.code == 401
    refused.value.close()
    with urllib.request.urlopen(server.url + "/healthz", context=context) as health:
        assert health.read() == b"ok"


def test_restart_keeps_objects_and_watch_history(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=["--disable-agent", "--disable-controllers"]).start()
    try:
        server.kubectl("create", "configmap", "keep", "--from-literal=a=1")
        before = json.loads(server.kubectl("get", "cm", "keep", "-o", "json").stdout)
        server.kubectl("create", "configmap", "later", "--from-literal=b=1")
        server.kubectl("delete", "configmap", "later")
    finally:
        server.stop()
    server.start()
    try:
        after = json.loads(server.kubectl("get", "cm", "keep", "-o", "json").stdout)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        raw = RawClient(server, tmp_path)
        path = (
            f"{CM_PATH}?watch=true&resourceVersion={before['metadata']['resourceVersion']}&timeoutSeconds=1"
        )
        req = urllib.request.Request(raw.base + path)
        with urllib.request.urlopen(req, context=raw.context) as stream:
            events = [json.loads(line) for line in stream.read().splitlines() if line]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("ADDED", "later"),
            ("DELETED", "later"),
        ]
        server.kubectl("create", "configmap", "newer", "--from-literal=c=1")
        newer = json.loads(server.kubectl("get", "cm", "newer", "-o", "json").stdout)
        assert int(newer["metadata"]["resourceVersion"]) > int(
            events[-1]["object"]["metadata"]["resourceVersion"]
        )
    finally:
        server.stop()


def test_generate_name_paging_and_finalizers(raw: RawClient) -> None:
    names = []
    for _ in range(5):
        status, made, _ = raw.request("POST", CM_PATH, b'{"metadata":{"generateName":"page-","labels":{"pg":"1"}}}')
        assert status == 201
        assert made["metadata"]["name"].startswith("page-") and len(made["metadata"]["name"]) == 10
        names.append(made["metadata"]["name"])
    seen, token = [], ""
    while True:
        query = "?labelSelector=pg%3D1&limit=2" + (f"&continue={token}" if token else "")
        status, page, _ = raw.request("GET", CM_PATH + query)
        assert status == 200 and len(page["items"]) <= 2
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert seen == sorted(names)

    status, _, _ = raw.request("POST", CM_PATH, b'{"metadata":{"name":"held","finalizers":["example.com/hold"]}}')
    assert status == 201
    status, held, _ = raw.request("DELETE", CM_PATH + "/held")
    assert status in (200, 202)
    assert held["metadata"]["deletionTimestamp"]
    status, still, _ = raw.request("GET", CM_PATH + "/held")
    assert status == 200 and still["metadata"]["finalizers"] == ["example.com/hold"]
    status, _, _ = raw.request("PATCH", CM_PATH + "/held", b'{"metadata":{"finalizers":null}}',
                               "application/merge-patch+json")
    assert status == 200
    status, _, _ = raw.request("GET", CM_PATH + "/held")
    assert status == 404
