"""TokenRequest: claims, signing/verification, validation and errors, and the authenticator —
against an in-memory lookup (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kubelite.apiserver.admission.storage import admit_storage, default_storage_class
from kubelite.apiserver.auth.serviceaccounts import ServiceAccountKeys, TokenIssuer, token_claims
from kubelite.machinery.errors import ApiError

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
KEYS = ServiceAccountKeys.generate()
SA = {"metadata": {"name": "robot", "namespace": "ns", "uid": "sa-uid"}}
POD = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "pod-uid"},
    "spec": {"serviceAccountName": "robot", "nodeName": "n1"},
}
NODE = {"metadata": {"name": "n1", "uid": "node-uid"}}
OBJECTS: dict[tuple[str, str | None, str], Any] = {
    ("serviceaccounts", "ns", "robot"): SA,
    ("pods", "ns", "p"): POD,
    ("nodes", None, "n1"): NODE,
}


def issuer() -> TokenIssuer:
    return TokenIssuer(lambda plural, ns, name: OBJECTS.get((plural, ns, name)), KEYS)


def test_claims_have_upstream_shape() -> None:
    claims = token_claims(SA, audiences=["a"], issuer="iss", now=NOW, expiration_seconds=600, pod=POD, jti="j")
    assert claims == {
        "aud": ["a"],
        "exp": int(NOW.timestamp()) + 600,
        "iat": int(NOW.timestamp()),
        "iss": "iss",
        "jti": "j",
        "kubernetes.io": {
            "namespace": "ns",
            "serviceaccount": {"name": "robot", "uid": "sa-uid"},
            "pod": {"name": "p", "uid": "pod-uid"},
        },
        "nbf": int(NOW.timestamp()),
        "sub": "system:serviceaccount:ns:robot",
    }


def test_token_request_answer_and_verification() -> None:
    body = {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}}}
    answer = issuer().create("ns", "robot", body, now=NOW)
    assert answer["kind"] == "TokenRequest" and answer["apiVersion"] == "authentication.k8s.io/v1"
    assert answer["spec"]["expirationSeconds"] == 3600
    assert answer["spec"]["boundObjectRef"]["uid"] == "pod-uid"
    assert answer["status"]["expirationTimestamp"] == "2025-01-02T04:04:05Z"
    claims = KEYS.verify(answer["status"]["token"])
    assert claims is not None and claims["kubernetes.io"]["node"] == {"name": "n1", "uid": "node-uid"}
    assert ServiceAccountKeys.generate().verify(answer["status"]["token"]) is None


@pytest.mark.parametrize(
    ("name", "body", "code", "message"),
    [
        ("ghost", {}, 404, 'serviceaccounts "ghost" not found'),
        ("robot", {"spec": {"expirationSeconds": 10}}, 422, "may not specify a duration less than 10 minutes"),
        (
            "robot",
            {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "x"}}},
            409,
            "the UID in the bound object reference (x) does not match",
        ),
        (
            "robot",
            {"spec": {"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1", "name": "c"}}},
            400,
            "cannot bind token to object of type /v1, Kind=ConfigMap",
        ),
    ],
)
def test_token_request_errors(name: str, body: dict, code: int, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        issuer().create("ns", name, body, now=NOW)
    assert caught.value.code == code
    assert message in caught.value.message or any(message in c.message for c in caught.value.causes)


def test_authenticate_accepts_live_tokens_only() -> None:
    token = issuer().create("ns", "robot", {}, now=datetime.now(UTC))["status"]["token"]
    user, groups = issuer().authenticate(f"Bearer {token}") or ("", ())
    assert user == "system:serviceaccount:ns:robot"
    assert "system:serviceaccounts:ns" in groups
    assert issuer().authenticate(f"Bearer {token}", now=datetime.now(UTC) + timedelta(hours=2)) is None
    gone = TokenIssuer(lambda *_: None, KEYS)
    assert gone.authenticate(f"Bearer {token}") is None
    assert issuer().authenticate("Bearer abc.def") is None


def test_keys_persist_across_loads(tmp_path: Path) -> None:
    first = ServiceAccountKeys.load_or_create(tmp_path / "sa.key")
    second = ServiceAccountKeys.load_or_create(tmp_path / "sa.key")
    assert first.key_id == second.key_id
    assert (tmp_path / "sa.key").stat().st_mode & 0o777 == 0o600


# -- storage admission ------------------------------------------------------------------------------

DEFAULT = {"metadata": {"name": "local-path", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [({}, "local-path"), ({"storageClassName": ""}, ""), ({"storageClassName": "fast"}, "fast")],
)
def test_default_storage_class_admission(spec: dict, expected: str) -> None:
    claim: dict[str, Any] = {"metadata": {"name": "c"}, "spec": dict(spec)}
    admit_storage("persistentvolumeclaims", claim, [DEFAULT])
    assert claim["spec"]["storageClassName"] == expected
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]


def test_volumes_get_pv_protection_and_no_default_means_no_class() -> None:
    volume: dict[str, Any] = {"metadata": {"name": "v"}}
    admit_storage("persistentvolumes", volume, [])
    assert volume["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    assert default_storage_class([{"metadata": {"name": "x"}}]) is None
