"""TokenRequest (`serviceaccounts/token`) against a real server: `kubectl create token`, the JWT's
claims and signature, bound pods, upstream's errors, and ConfigMap/Secret validation through the
real kubectl."""

from __future__ import annotations

import base64
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelite.testing.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        Path(tmp_path_factory.mktemp("kubelite-tokens")), extra_args=["--disable-agent", "--disable-controllers"]
    ).start()
    try:
        process.kubectl("create", "serviceaccount", "robot")
        yield process
    finally:
        process.stop()


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_kubectl_create_token_returns_rs256_jwt_for_the_service_account(server: ServerProcess) -> None:
    token = server.kubectl("create", "token", "robot").stdout.strip()
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "RS256" and header["kid"]
    claims = claims_of(token)
    assert claims["sub"] == "system:serviceaccount:default:robot"
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["kubernetes.io"]["namespace"] == "default"
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "robot"


def test_token_with_audience_and_duration(server: ServerProcess) -> None:
    token = server.kubectl("create", "token", "robot", "--audience=vault", "--duration=2h").stdout.strip()
    claims = claims_of(token)
    assert claims["aud"] == ["vault"]
    assert claims["exp"] - claims["iat"] == 7200


def test_token_shorter_than_ten_minutes_is_invalid(server: ServerProcess) -> None:
    result = server.kubectl("create", "token", "robot", "--duration=1m", check=False)
    assert result.returncode != 0
    assert "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes" in result.stderr


def test_token_for_missing_service_account_is_not_found(server: ServerProcess) -> None:
    result = server.kubectl("create", "token", "nobody", check=False)
    assert 'serviceaccounts "nobody" not found' in result.stderr


def test_token_bound_to_pod_carries_pod_claim(server: ServerProcess) -> None:
    manifest = textwrap.dedent("""
        apiVersion: v1
        kind: Pod
        metadata: {name: holder}
        spec:
          serviceAccountName: robot
          containers: [{name: c, image: busybox}]
    """)
    server.kubectl("apply", "-f", "-", input=manifest)
    uid = server.kubectl("get", "pod", "holder", "-o", "jsonpath={.metadata.uid}").stdout
    token = server.kubectl("create", "token", "robot", "--bound-object-kind=Pod", "--bound-object-name=holder").stdout
    assert claims_of(token.strip())["kubernetes.io"]["pod"] == {"name": "holder", "uid": uid}
    wrong = server.kubectl(
        "create",
        "token",
        "robot",
        "--bound-object-kind=Pod",
        "--bound-object-name=holder",
        "--bound-object-uid=not-the-uid",
        check=False,
    )
    assert "the UID in the bound object reference (not-the-uid) does not match the UID in record" in wrong.stderr


# -- ConfigMap / Secret validation through kubectl --------------------------------------------------


def test_tls_secret_without_key_is_rejected_with_upstream_field_error(server: ServerProcess) -> None:
    result = server.kubectl(
        "create", "secret", "generic", "bad-tls", "--type=kubernetes.io/tls", "--from-literal=tls.crt=x", check=False
    )
    assert result.returncode != 0
    assert 'Secret "bad-tls" is invalid: data[tls.key]: Required value' in result.stderr


def test_dockerconfigjson_secret_must_hold_json(server: ServerProcess) -> None:
    result = server.kubectl(
        "create",
        "secret",
        "generic",
        "bad-docker",
        "--type=kubernetes.io/dockerconfigjson",
        "--from-literal=.dockerconfigjson=not-json",
        check=False,
    )
    assert 'Secret "bad-docker" is invalid: data[.dockerconfigjson]: Invalid value: "<secret contents redacted>"' in (
        result.stderr
    )


def test_immutable_configmap_rejects_data_change(server: ServerProcess) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: frozen}\nimmutable: true\ndata: {a: '1'}\n"
    server.kubectl("apply", "-f", "-", input=manifest)
    result = server.kubectl("apply", "-f", "-", input=manifest.replace("'1'", "'2'"), check=False)
    assert "data: Forbidden: field is immutable when `immutable` is set" in result.stderr


def test_secret_type_is_immutable(server: ServerProcess) -> None:
    server.kubectl("create", "secret", "generic", "typed", "--from-literal=username=u")
    result = server.kubectl(
        "patch", "secret", "typed", "--type=merge", "-p", '{"type":"kubernetes.io/basic-auth"}', check=False
    )
    assert 'type: Invalid value: "kubernetes.io/basic-auth": field is immutable' in result.stderr
