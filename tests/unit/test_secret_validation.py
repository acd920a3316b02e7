"""ConfigMap and Secret validation (upstream's ValidateConfigMap/ValidateSecret and their updates):
field paths and messages table-tested through `validate_object`."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kubelite.apiserver.registry.validation import validate_object


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(kind: str = "Opaque", data: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "s", "namespace": "ns", **extra.pop("meta", {})},
        "type": kind,
        "data": data or {},
        **extra,
    }


def causes(obj: dict[str, Any], kind: str = "Secret", old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in validate_object("", kind, obj, old=old)]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (secret("kubernetes.io/tls", {"tls.crt": b64("c")}), [("data[tls.key]", "Required value")]),
        (
            secret("kubernetes.io/tls"),
            [("data[tls.crt]", "Required value"), ("data[tls.key]", "Required value")],
        ),
        (secret("kubernetes.io/tls", {"tls.crt": "", "tls.key": ""}), []),
        (secret("kubernetes.io/dockerconfigjson"), [("data[.dockerconfigjson]", "Required value")]),
        (secret("kubernetes.io/dockercfg"), [("data[.dockercfg]", "Required value")]),
        (secret("kubernetes.io/dockerconfigjson", {".dockerconfigjson": b64('{"auths":{}}')}), []),
        (
            secret("kubernetes.io/basic-auth"),
            [("data[username]", "Required value"), ("data[password]", "Required value")],
        ),
        (secret("kubernetes.io/basic-auth", {"password": ""}), []),
        (secret("kubernetes.io/ssh-auth", {"ssh-privatekey": ""}), [("data[ssh-privatekey]", "Required value")]),
        (
            secret("kubernetes.io/service-account-token"),
            [("metadata.annotations[kubernetes.io/service-account.name]", "Required value")],
        ),
        (secret("bootstrap.kubernetes.io/token", {"token-id": b64("abcdef")}), []),
        (
            secret(data={"bad key": b64("x")}),
            [
                (
                    "data[bad key]",
                    "Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",  # noqa: E501
                )
            ],
        ),
    ],
)
def test_secret_rules(obj: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert causes(obj) == expected


def test_dockerconfigjson_must_be_json_object() -> None:
    found = causes(secret("kubernetes.io/dockerconfigjson", {".dockerconfigjson": b64("nope")}))
    assert found and found[0][0] == "data[.dockerconfigjson]"
    assert found[0][1].startswith('Invalid value: "<secret contents redacted>": ')


def test_secret_total_size_is_limited_to_one_mebibyte() -> None:
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    assert [f for f, _ in causes(secret(data={"big": big}))] == ["data"]


def test_immutable_secret_and_type_changes_are_forbidden() -> None:
    old = {**secret(data={"a": b64("1")}), "immutable": True}
    changed = {**secret(data={"a": b64("2")}), "immutable": True}
    assert ("data", "Forbidden: field is immutable when `immutable` is set") in causes(changed, old=old)
    retyped = secret("kubernetes.io/basic-auth", {"username": b64("u")})
    assert any(
        f == "type" and "field is immutable" in m for f, m in causes(retyped, old=secret(data={"username": b64("u")}))
    )


def test_configmap_rules() -> None:
    cm = {"metadata": {"name": "c", "namespace": "ns"}, "data": {"k": "v"}, "binaryData": {"k": b64("v")}}
    assert causes(cm, "ConfigMap") == [("data[k]", 'Invalid value: "k": duplicate of key present in binaryData')]
    old = {"metadata": {"name": "c", "namespace": "ns"}, "data": {"k": "v"}, "immutable": True}
    new = {"metadata": {"name": "c", "namespace": "ns"}, "data": {"k": "w"}}
    assert causes(new, "ConfigMap", old=old) == [
        ("immutable", "Forbidden: field is immutable when `immutable` is set"),
        ("data", "Forbidden: field is immutable when `immutable` is set"),
    ]
