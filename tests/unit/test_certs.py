"""The cluster PKI and admin kubeconfig: generation, reuse, renewal, real TLS handshakes (Python, kubectl)."""

from __future__ import annotations

import asyncio
import base64
import datetime
import os
import socket
import ssl
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubelite.apiserver.auth.certs import (
    ClusterPki,
    PkiError,
    client_identity,
    ensure_cluster_pki,
    issue_client_certificate,
    issue_serving_certificate,
    server_ssl_context,
)
from kubelite.apiserver.auth.kubeconfig import render_kubeconfig, write_kubeconfig

KUBECTL = "/usr/bin/kubectl"
PKI_FILES = ("ca.crt", "ca.key", "server.crt", "server.key", "admin.crt", "admin.key")
VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4+kubelite",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in PKI_FILES}


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _sans(pem: bytes) -> tuple[set[str], set[str]]:
    san = _cert(pem).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tls"


# ---------------------------------------------------------------------------------------------------
# generation and reuse


def test_first_call_generates_every_file(tls_dir: Path) -> None:
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])

    assert _snapshot(tls_dir) == {
        "ca.crt": pki.ca_cert_pem,
        "ca.key": pki.ca_key_pem,
        "server.crt": pki.server_cert_pem,
        "server.key": pki.server_key_pem,
        "admin.crt": pki.admin_cert_pem,
        "admin.key": pki.admin_key_pem,
    }
    ca = _cert(pki.ca_cert_pem)
    assert ca.subject.rfc4514_string() == "CN=kubelite-ca"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= datetime.timedelta(days=3650)


def test_second_call_reuses_identical_files(tls_dir: Path) -> None:
    first = ensure_cluster_pki(tls_dir, hostnames=["api.example.com"], ips=["10.0.0.5"])
    before = _snapshot(tls_dir)
    mtimes = {name: (tls_dir / name).stat().st_mtime_ns for name in PKI_FILES}

    second = ensure_cluster_pki(tls_dir, hostnames=["api.example.com"], ips=["10.0.0.5"])

    assert second == first
    assert _snapshot(tls_dir) == before
    assert {name: (tls_dir / name).stat().st_mtime_ns for name in PKI_FILES} == mtimes


def test_serving_cert_covers_default_and_requested_sans(tls_dir: Path) -> None:
    pki = ensure_cluster_pki(
        tls_dir, hostnames=["API.example.com.", "192.168.1.7"], ips=["10.0.0.5", "fd00::1"]
    )

    dns, ips = _sans(pki.server_cert_pem)
    assert dns >= {
        "localhost",
        socket.gethostname().lower(),
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "api.example.com",
    }
    assert ips == {"127.0.0.1", "::1", "10.0.0.5", "fd00::1", "192.168.1.7"}
    eku = _cert(pki.server_cert_pem).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_new_san_regenerates_serving_cert_and_keeps_ca(tls_dir: Path) -> None:
    first = ensure_cluster_pki(tls_dir, hostnames=[], ips=["10.0.0.5"])

    second = ensure_cluster_pki(tls_dir, hostnames=[], ips=["10.0.0.5", "10.0.0.6"])

    assert second.ca_cert_pem == first.ca_cert_pem
    assert second.ca_key_pem == first.ca_key_pem
    assert second.admin_cert_pem == first.admin_cert_pem
    assert second.server_cert_pem != first.server_cert_pem
    assert second.server_key_pem != first.server_key_pem
    assert "10.0.0.6" in _sans(second.server_cert_pem)[1]
    _cert(second.server_cert_pem).verify_directly_issued_by(_cert(first.ca_cert_pem))


def test_subset_of_sans_keeps_serving_cert(tls_dir: Path) -> None:
    first = ensure_cluster_pki(tls_dir, hostnames=["a.example"], ips=["10.0.0.5"])

    second = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])

    assert second.server_cert_pem == first.server_cert_pem


def test_key_files_are_0600_and_certs_0644(tls_dir: Path) -> None:
    ensure_cluster_pki(tls_dir, hostnames=[], ips=[])

    modes = {name: stat.S_IMODE((tls_dir / name).stat().st_mode) for name in PKI_FILES}
    assert modes == {
        "ca.crt": 0o644,
        "ca.key": 0o600,
        "server.crt": 0o644,
        "server.key": 0o600,
        "admin.crt": 0o644,
        "admin.key": 0o600,
    }
    assert not [p for p in tls_dir.iterdir() if p.name.endswith(".tmp")]


def test_admin_cert_verifies_against_ca_with_masters_subject_and_client_auth(tls_dir: Path) -> None:
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    admin = _cert(pki.admin_cert_pem)

    admin.verify_directly_issued_by(_cert(pki.ca_cert_pem))
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubelite-admin"
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters"
    ]
    eku = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not admin.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_leaf_expiring_soon_is_renewed_and_ca_kept(tls_dir: Path) -> None:
    first = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=300)

    second = ensure_cluster_pki(tls_dir, hostnames=[], ips=[], now=later)

    assert second.ca_cert_pem == first.ca_cert_pem
    assert second.admin_cert_pem != first.admin_cert_pem
    assert second.server_cert_pem != first.server_cert_pem
    assert _cert(second.admin_cert_pem).not_valid_after_utc > later + datetime.timedelta(days=300)


@pytest.mark.parametrize("damage", ["delete", "garbage", "foreign key"])
def test_damaged_leaf_is_reissued(tls_dir: Path, damage: str) -> None:
    first = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    key = tls_dir / "server.key"
    if damage == "delete":
        key.unlink()
    elif damage == "garbage":
        key.write_bytes(b"not a key")
    else:
        key.write_bytes(first.admin_key_pem)

    second = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])

    assert second.ca_cert_pem == first.ca_cert_pem
    assert second.server_cert_pem != first.server_cert_pem
    server_ssl_context(second)  # the pair on disk loads, i.e. matches


def test_ca_key_without_cert_is_replaced(tls_dir: Path) -> None:
    first = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    (tls_dir / "ca.crt").unlink()  # as if the first start died between writing ca.key and ca.crt

    second = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])

    assert second.ca_cert_pem != first.ca_cert_pem
    _cert(second.server_cert_pem).verify_directly_issued_by(_cert(second.ca_cert_pem))
    _cert(second.admin_cert_pem).verify_directly_issued_by(_cert(second.ca_cert_pem))


@pytest.mark.parametrize("damage", ["missing key", "garbage key", "other key"])
def test_unusable_ca_raises_instead_of_replacing_trust(tls_dir: Path, damage: str) -> None:
    first = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    key = tls_dir / "ca.key"
    if damage == "missing key":
        key.unlink()
    elif damage == "garbage key":
        key.write_bytes(b"garbage")
    else:
        key.write_bytes(first.server_key_pem)

    with pytest.raises(PkiError):
        ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    assert (tls_dir / "ca.crt").read_bytes() == first.ca_cert_pem


def test_pki_repr_hides_private_keys(tls_dir: Path) -> None:
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])

    assert b"PRIVATE KEY" not in repr(pki).encode()
    assert b"PRIVATE KEY" in pki.ca_key_pem


def test_issue_client_certificate_for_node(tls_dir: Path) -> None:
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])

    cert_pem, key_pem = issue_client_certificate(pki, "system:node:worker-1", ["system:nodes"])

    cert = _cert(cert_pem)
    cert.verify_directly_issued_by(_cert(pki.ca_cert_pem))
    assert cert.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    assert b"PRIVATE KEY" in key_pem


def test_issue_serving_certificate_for_node(tls_dir: Path) -> None:
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])

    cert_pem, _ = issue_serving_certificate(pki, ["worker-1"], ["10.0.0.21"])

    _cert(cert_pem).verify_directly_issued_by(_cert(pki.ca_cert_pem))
    assert _sans(cert_pem) == ({"worker-1"}, {"10.0.0.21"})
    with pytest.raises(ValueError):
        issue_serving_certificate(pki, [], [])


@pytest.mark.parametrize(
    ("peercert", "expected"),
    [
        (None, None),
        ({}, None),
        (
            {"subject": ((("organizationName", "system:masters"),), (("commonName", "kubelite-admin"),))},
            ("kubelite-admin", ["system:masters"]),
        ),
        (
            {
                "subject": (
                    (("organizationName", "system:nodes"),),
                    (("organizationName", "team-a"),),
                    (("commonName", "system:node:w1"),),
                )
            },
            ("system:node:w1", ["system:nodes", "team-a"]),
        ),
        ({"subject": ((("commonName", "alice"),),)}, ("alice", [])),
        ({"subject": ((("organizationName", "no-cn"),),)}, None),
    ],
)
def test_client_identity(peercert: dict[str, Any] | None, expected: tuple[str, list[str]] | None) -> None:
    assert client_identity(peercert) == expected


# ---------------------------------------------------------------------------------------------------
# kubeconfig


def test_kubeconfig_embeds_credentials_and_sets_context(tls_dir: Path) -> None:
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])

    config = yaml.safe_load(
        render_kubeconfig("https://127.0.0.1:6443", pki.ca_cert_pem, pki.admin_cert_pem, pki.admin_key_pem)
    )

    assert config["current-context"] == "kubelite"
    assert config["contexts"] == [
        {"name": "kubelite", "context": {"cluster": "kubelite", "user": "kubelite-admin"}}
    ]
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == pki.ca_cert_pem
    user = config["users"][0]
    assert user["name"] == "kubelite-admin"
    assert base64.b64decode(user["user"]["client-certificate-data"]) == pki.admin_cert_pem
    assert base64.b64decode(user["user"]["client-key-data"]) == pki.admin_key_pem


def test_write_kubeconfig_creates_parents_and_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".kube" / "config"

    write_kubeconfig(path, "first\n")
    write_kubeconfig(path, "second\n")

    assert path.read_text() == "second\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["config"]


# ---------------------------------------------------------------------------------------------------
# real TLS


async def _whoami(request: web.Request) -> web.Response:
    identity = client_identity(request.transport.get_extra_info("peercert") if request.transport else None)
    user, groups = identity if identity else ("system:anonymous", ["system:unauthenticated"])
    return web.json_response({"user": user, "groups": groups})


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _version(request: web.Request) -> web.Response:
    return web.json_response(VERSION)


@asynccontextmanager
async def _tls_server(pki: ClusterPki) -> AsyncIterator[tuple[int, list[tuple[str, Any]]]]:
    """An HTTPS server on an ephemeral 127.0.0.1 port, serving what the tests (and kubectl) ask for.

    Yields the port and a list of ``(path, client identity)`` for every request it served.
    """
    seen: list[tuple[str, Any]] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        peercert = request.transport.get_extra_info("peercert") if request.transport else None
        seen.append((request.path, client_identity(peercert)))
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.router.add_get("/whoami", _whoami)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/version", _version)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        await web.SockSite(runner, sock, ssl_context=server_ssl_context(pki)).start()
        yield sock.getsockname()[1], seen
    finally:
        await runner.cleanup()
        sock.close()


def _client_context_from_kubeconfig(kubeconfig: str, tmp_path: Path) -> ssl.SSLContext:
    """What a client does with a kubeconfig: trust its CA, present its certificate."""
    config = yaml.safe_load(kubeconfig)
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    cert_file, key_file = tmp_path / "client.crt", tmp_path / "client.key"
    cert_file.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key_file.write_bytes(base64.b64decode(user["client-key-data"]))
    ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


async def _get_json(url: str, ctx: ssl.SSLContext) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session,
        session.get(url) as response,
    ):
        response.raise_for_status()
        return await response.json()


async def test_tls_handshake_with_kubeconfig_identifies_admin(tls_dir: Path, tmp_path: Path) -> None:
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    async with _tls_server(pki) as (port, _):
        url = f"https://127.0.0.1:{port}"
        kubeconfig = render_kubeconfig(url, pki.ca_cert_pem, pki.admin_cert_pem, pki.admin_key_pem)
        ctx = _client_context_from_kubeconfig(kubeconfig, tmp_path)

        body = await _get_json(f"{url}/whoami", ctx)

    assert body == {"user": "kubelite-admin", "groups": ["system:masters"]}


async def test_tls_without_client_cert_is_anonymous(tls_dir: Path) -> None:
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    async with _tls_server(pki) as (port, _):
        ctx = ssl.create_default_context(cadata=pki.ca_cert_pem.decode())
        body = await _get_json(f"https://localhost:{port}/whoami", ctx)

    assert body == {"user": "system:anonymous", "groups": ["system:unauthenticated"]}


async def test_tls_rejects_client_cert_from_another_ca(tls_dir: Path, tmp_path: Path) -> None:
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    stranger = ensure_cluster_pki(tmp_path / "other", hostnames=[], ips=[])
    async with _tls_server(pki) as (port, _):
        kubeconfig = render_kubeconfig("x", pki.ca_cert_pem, stranger.admin_cert_pem, stranger.admin_key_pem)
        ctx = _client_context_from_kubeconfig(kubeconfig, tmp_path)

        with pytest.raises(aiohttp.ClientError):
            await _get_json(f"https://127.0.0.1:{port}/whoami", ctx)


async def test_tls_rejects_serving_cert_used_as_client_cert(tls_dir: Path) -> None:
    """The EKU matters: a node's serving key must not authenticate as its CN."""
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    async with _tls_server(pki) as (port, seen):
        ctx = ssl.create_default_context(cadata=pki.ca_cert_pem.decode())
        ctx.load_cert_chain(pki.server_cert_path, pki.server_key_path)

        with pytest.raises(aiohttp.ClientError):
            await _get_json(f"https://127.0.0.1:{port}/whoami", ctx)
    assert seen == []


async def test_server_negotiates_http11_even_when_client_offers_h2(tls_dir: Path) -> None:
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    async with _tls_server(pki) as (port, _):
        ctx = ssl.create_default_context(cadata=pki.ca_cert_pem.decode())
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            assert ssl_object.selected_alpn_protocol() == "http/1.1"
            assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
        finally:
            writer.close()
            await writer.wait_closed()


def test_server_context_requires_tls12_and_optional_client_certs(tls_dir: Path) -> None:
    ctx = server_ssl_context(ensure_cluster_pki(tls_dir, hostnames=[], ips=[]))

    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_OPTIONAL


async def _kubectl_get_raw(kubeconfig: Path, path: str, home: Path) -> tuple[int, str, str]:
    """Run the real kubectl (a dispatcher that first GETs /version to pick its 1.32 binary)."""
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        str(kubeconfig),
        "get",
        "--raw",
        path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), stderr.decode()


needs_kubectl = pytest.mark.skipif(not os.access(KUBECTL, os.X_OK), reason=f"{KUBECTL} not installed")


@needs_kubectl
async def test_kubectl_accepts_our_certificates(tls_dir: Path, tmp_path: Path) -> None:
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    async with _tls_server(pki) as (port, seen):
        kubeconfig = tmp_path / "kube" / "config"
        url = f"https://127.0.0.1:{port}"
        write_kubeconfig(
            kubeconfig, render_kubeconfig(url, pki.ca_cert_pem, pki.admin_cert_pem, pki.admin_key_pem)
        )

        code, stdout, stderr = await _kubectl_get_raw(kubeconfig, "/healthz", tmp_path)

    assert code == 0, stderr
    assert stdout.strip() == "ok"
    assert ("/healthz", ("kubelite-admin", ["system:masters"])) in seen


@needs_kubectl
async def test_kubectl_refuses_server_not_signed_by_kubeconfig_ca(tls_dir: Path, tmp_path: Path) -> None:
    pki = ensure_cluster_pki(tls_dir, hostnames=[], ips=[])
    stranger = ensure_cluster_pki(tmp_path / "other", hostnames=[], ips=[])
    async with _tls_server(pki) as (port, seen):
        kubeconfig = tmp_path / "kube" / "config"
        url = f"https://127.0.0.1:{port}"
        write_kubeconfig(
            kubeconfig, render_kubeconfig(url, stranger.ca_cert_pem, pki.admin_cert_pem, pki.admin_key_pem)
        )

        code, _, stderr = await _kubectl_get_raw(kubeconfig, "/healthz", tmp_path)

    assert code != 0
    assert "certificate signed by unknown authority" in stderr
    assert ("/healthz", ("kubelite-admin", ["system:masters"])) not in seen
