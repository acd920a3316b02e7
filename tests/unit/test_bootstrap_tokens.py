"""Join tokens: the kubeadm token format and its Secret, authentication by token (expiry, revocation), the
K10 join token that pins the CA, and signing nodes' certificate requests."""

from __future__ import annotations

import base64
import datetime
import ipaddress
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubelite.agent.join import JoinError, ca_hash, format_join_token, parse_join_token
from kubelite.apiserver.app import Identity
from kubelite.apiserver.auth import certs
from kubelite.apiserver.auth.bootstrap import (
    authenticate_bootstrap_token,
    bootstrap_token_secret,
    generate_token,
    parse_token,
    secret_data,
    token_expired,
)

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
TOKEN_ID, TOKEN_SECRET = "abcdef", "0123456789abcdef"


def store(*secrets: dict[str, Any]) -> Any:
    by_key = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in secrets}
    return lambda namespace, name: by_key.get((namespace, name))


def secret(**overrides: str | None) -> dict[str, Any]:
    obj = bootstrap_token_secret(TOKEN_ID, TOKEN_SECRET, ttl=datetime.timedelta(hours=24), now=NOW)
    for key, value in overrides.items():
        key = key.replace("_", "-")
        if value is None:
            obj["data"].pop(key, None)
        else:
            obj["data"][key] = base64.b64encode(value.encode()).decode()
    return obj


def bearer(token: str = f"{TOKEN_ID}.{TOKEN_SECRET}") -> str:
    return f"Bearer {token}"


def test_generated_tokens_have_the_kubeadm_format() -> None:
    token_id, token_secret = generate_token()
    assert parse_token(f"{token_id}.{token_secret}") == (token_id, token_secret)
    assert generate_token() != (token_id, token_secret)


@pytest.mark.parametrize(
    "text",
    ["abcdef.0123456789abcdef", " abcdef.0123456789abcdef\n"],
)
def test_parse_token_accepts_well_formed_tokens(text: str) -> None:
    assert parse_token(text) == ("abcdef", "0123456789abcdef")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abcdef",
        "ABCDEF.0123456789abcdef",  # upper case
        "abcde.0123456789abcdef",  # id too short
        "abcdef.0123456789abcde",  # secret too short
        "abcdef.0123456789abcdef0",  # secret too long
        "abcdef:0123456789abcdef",
        "abc-ef.0123456789abcdef",
    ],
)
def test_parse_token_refuses_malformed_tokens(text: str) -> None:
    assert parse_token(text) is None


def test_token_secret_has_the_bootstrap_shape() -> None:
    obj = bootstrap_token_secret(TOKEN_ID, TOKEN_SECRET, ttl=datetime.timedelta(hours=24), description="ci", now=NOW)
    assert obj["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    assert obj["type"] == "bootstrap.kubernetes.io/token"
    assert secret_data(obj) == {
        "token-id": "abcdef",
        "token-secret": "0123456789abcdef",
        "usage-bootstrap-authentication": "true",
        "expiration": "2026-03-02T12:00:00Z",
        "description": "ci",
    }
    assert "expiration" not in secret_data(bootstrap_token_secret(TOKEN_ID, TOKEN_SECRET, ttl=None))


def test_a_valid_token_authenticates_as_a_bootstrapper() -> None:
    identity = authenticate_bootstrap_token(store(secret()), bearer(), now=NOW)
    assert identity == Identity("system:bootstrap:abcdef", ("system:bootstrappers",))


def test_extra_groups_must_be_bootstrapper_groups() -> None:
    extra = secret(auth_extra_groups="system:bootstrappers:workers,system:masters")
    identity = authenticate_bootstrap_token(store(extra), bearer(), now=NOW)
    assert identity is not None
    assert identity.groups == ("system:bootstrappers", "system:bootstrappers:workers")


@pytest.mark.parametrize(
    ("case", "lookup", "header"),
    [
        ("no header", store(secret()), None),
        ("not bearer", store(secret()), f"Basic {TOKEN_ID}.{TOKEN_SECRET}"),
        ("malformed", store(secret()), "Bearer abcdef"),
        ("wrong secret", store(secret()), bearer(f"{TOKEN_ID}.ffffffffffffffff")),
        ("revoked (no secret)", store(), bearer()),
        ("not for authentication", store(secret(usage_bootstrap_authentication="false")), bearer()),
        ("usage missing", store(secret(usage_bootstrap_authentication=None)), bearer()),
        ("id mismatch", store(secret(token_id="zzzzzz")), bearer()),
        ("expired", store(secret(expiration="2026-03-01T11:59:59Z")), bearer()),
        ("expiry unparseable", store(secret(expiration="tomorrow")), bearer()),
    ],
)
def test_refused_tokens_do_not_authenticate(case: str, lookup: Any, header: str | None) -> None:
    assert authenticate_bootstrap_token(lookup, header, now=NOW) is None, case


def test_a_secret_of_another_type_or_being_deleted_does_not_authenticate() -> None:
    opaque = secret()
    opaque["type"] = "Opaque"
    assert authenticate_bootstrap_token(store(opaque), bearer(), now=NOW) is None
    deleting = secret()
    deleting["metadata"]["deletionTimestamp"] = "2026-03-01T11:00:00Z"
    assert authenticate_bootstrap_token(store(deleting), bearer(), now=NOW) is None


@pytest.mark.parametrize(
    ("expiration", "expired"),
    [
        (None, False),
        ("2026-03-01T12:00:01Z", False),
        ("2026-03-01T12:00:00Z", True),
        ("2020-01-01T00:00:00Z", True),
        ("2026-03-01T13:00:00+02:00", True),  # 11:00 UTC
        ("soon", True),
    ],
)
def test_token_expiry(expiration: str | None, expired: bool) -> None:
    data = {} if expiration is None else {"expiration": expiration}
    assert token_expired(data, NOW) is expired


# -- the K10 join token ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> certs.ClusterPki:
    return certs.ensure_cluster_pki(Path(tmp_path_factory.mktemp("pki")))


def test_join_token_pins_the_ca_certificate(pki: certs.ClusterPki) -> None:
    text = format_join_token(pki.ca_cert_pem, TOKEN_ID, TOKEN_SECRET)
    assert text.startswith("K10") and text.endswith(f"::{TOKEN_ID}.{TOKEN_SECRET}")
    parsed = parse_join_token(text)
    assert parsed.ca_hash == ca_hash(pki.ca_cert_pem)
    assert parsed.bearer == f"{TOKEN_ID}.{TOKEN_SECRET}"
    assert TOKEN_SECRET not in repr(parsed)


@pytest.mark.parametrize(
    "text", ["abcdef.0123456789abcdef", "K10abc::abcdef.0123456789abcdef", "K10" + "a" * 64 + "::abcdef", ""]
)
def test_malformed_join_tokens_are_refused(text: str) -> None:
    with pytest.raises(JoinError, match="malformed join token"):
        parse_join_token(text)


# -- signing nodes' requests -----------------------------------------------------------------------


def csr(
    *, sans: list[x509.GeneralName] | None = None, cn: str = "whatever"
) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), key


def test_client_certificate_subject_is_chosen_by_the_signer(pki: certs.ClusterPki) -> None:
    request, key = csr(cn="system:masters-wannabe")
    pem = certs.sign_csr(pki, request, common_name="system:node:w1", organizations=["system:nodes"])
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:w1"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:nodes"]
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.ca_cert_pem))


def test_serving_certificate_covers_the_requested_names(pki: certs.ClusterPki) -> None:
    request, _ = csr(sans=[x509.DNSName("worker-1"), x509.IPAddress(ipaddress.ip_address("10.0.0.7"))])
    cert = x509.load_pem_x509_certificate(certs.sign_csr(pki, request, common_name="system:node:worker-1", server=True))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["worker-1"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]


def test_bad_requests_are_not_signed(pki: certs.ClusterPki) -> None:
    with pytest.raises(ValueError, match="not a PEM certificate signing request"):
        certs.sign_csr(pki, b"garbage", common_name="x")
    request, _ = csr()
    with pytest.raises(ValueError, match="at least one DNS name or IP"):
        certs.sign_csr(pki, request, common_name="x", server=True)
