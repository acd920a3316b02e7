"""Joining a node to a real server: `kubelite token create|list|delete` and `kubelite.agent.join.join`.

The server runs as a child process (API only); `join()` runs in the test's loop against it over
loopback, as `kubelite agent` would on another machine.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import NameOID

from kubelite.agent.join import JoinError, format_join_token, join
from kubelite.apiserver.auth import certs
from kubelite.apiserver.auth.bootstrap import bootstrap_token_secret
from kubelite.client.http import HttpClient
from kubelite.client.interface import builtin
from kubelite.client.kubeconfig import load_kubeconfig
from kubelite.testing.server import ServerProcess

NODES = builtin("", "nodes")
SECRETS = builtin("", "secrets")
TOKEN_RE = re.compile(r"^K10[0-9a-f]{64}::([a-z0-9]{6})\.([a-z0-9]{16})$")
REFUSED = "the server refused the join token: invalid or expired join token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        Path(tmp_path_factory.mktemp("kubelite")), extra_args=["--disable-agent", "--disable-scheduler"]
    ).start()
    try:
        yield process
    finally:
        process.stop()


def kubelite_token(server: ServerProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "kubelite.cli", "token", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def create_token(server: ServerProcess, *args: str) -> str:
    token = kubelite_token(server, "create", *args).stdout.strip()
    assert TOKEN_RE.match(token), token
    return token


def subject(cert: x509.Certificate) -> tuple[str, list[str]]:
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return str(cn), [str(o.value) for o in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


async def test_a_created_token_joins_a_node_that_can_use_the_api(server: ServerProcess, tmp_path: Path) -> None:
    token = create_token(server, "--description", "worker-1")
    data_dir = tmp_path / "agent"

    path = await join(server.url, token, node_name="worker-1", node_ips=["10.0.0.7"], data_dir=data_dir)

    assert path == data_dir / "kubeconfig.yaml"
    for private in (path, data_dir / "tls" / "kubelet.key"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    config = load_kubeconfig(path)
    assert config.server == server.url
    assert config.client_certificate_data is not None
    ca = x509.load_pem_x509_certificate((server.data_dir / "tls" / "ca.crt").read_bytes())
    client_cert = x509.load_pem_x509_certificate(config.client_certificate_data)
    assert subject(client_cert) == ("system:node:worker-1", ["system:nodes"])
    client_cert.verify_directly_issued_by(ca)
    serving = x509.load_pem_x509_certificate((data_dir / "tls" / "kubelet.crt").read_bytes())
    serving.verify_directly_issued_by(ca)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["worker-1"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    assert (data_dir / "tls" / "ca.crt").read_bytes() == (server.data_dir / "tls" / "ca.crt").read_bytes()

    async with HttpClient.from_kubeconfig(path) as client:
        nodes = await client.list(NODES)
    assert nodes["kind"] == "NodeList"

    # a restarted agent does not join again: the token is not even looked at
    assert await join(server.url, "not a token", node_name="worker-1", node_ips=[], data_dir=data_dir) == path


async def test_a_wrong_secret_is_refused_and_nothing_is_written(server: ServerProcess, tmp_path: Path) -> None:
    token = create_token(server)
    forged = token[: -len("0123456789abcdef")] + "0123456789abcdef"

    with pytest.raises(JoinError) as refused:
        await join(server.url, forged, node_name="worker-2", node_ips=["10.0.0.8"], data_dir=tmp_path)

    assert str(refused.value) == REFUSED
    assert list(tmp_path.iterdir()) == []


async def test_a_deleted_token_is_revoked(server: ServerProcess, tmp_path: Path) -> None:
    token = create_token(server, "--ttl", "1h", "--description", "short-lived")
    token_id = TOKEN_RE.match(token).group(1)  # type: ignore[union-attr]
    listed = kubelite_token(server, "list").stdout
    assert re.search(rf"^{token_id}\s+(59m|1h)\s+\S+\s+short-lived$", listed, re.MULTILINE), listed

    deleted = kubelite_token(server, "delete", token_id)
    assert deleted.stdout.strip() == f'bootstrap token "{token_id}" deleted'
    assert token_id not in kubelite_token(server, "list").stdout
    again = kubelite_token(server, "delete", token_id, check=False)
    assert again.returncode == 1
    assert "not found" in again.stderr

    with pytest.raises(JoinError, match=re.escape(REFUSED)):
        await join(server.url, token, node_name="worker-3", node_ips=["10.0.0.9"], data_dir=tmp_path)


async def test_an_expired_token_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    secret = bootstrap_token_secret("expird", "0123456789abcdef", ttl=datetime.timedelta(hours=-1))
    async with HttpClient.from_kubeconfig(server.kubeconfig) as admin:
        await admin.create(SECRETS, secret, "kube-system")
    token = format_join_token((server.data_dir / "tls" / "ca.crt").read_bytes(), "expird", "0123456789abcdef")
    assert "<invalid>" in kubelite_token(server, "list").stdout

    with pytest.raises(JoinError, match=re.escape(REFUSED)):
        await join(server.url, token, node_name="worker-4", node_ips=["10.0.0.10"], data_dir=tmp_path)


async def test_a_bootstrap_token_authenticates_api_requests_until_revoked(server: ServerProcess) -> None:
    token = create_token(server)
    token_id, token_secret = TOKEN_RE.match(token).groups()  # type: ignore[union-attr]
    context = ssl.create_default_context(cadata=(server.data_dir / "tls" / "ca.crt").read_text())
    headers = {"Authorization": f"Bearer {token_id}.{token_secret}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/api", headers=headers, ssl=context) as response:
            assert response.status == 200
        kubelite_token(server, "delete", token_id)
        async with session.get(f"{server.url}/api", headers=headers, ssl=context) as response:
            assert response.status == 401


# -- a server that is not the one the token names ----------------------------------------------------


@pytest.fixture
async def impostor(tmp_path: Path) -> AsyncIterator[tuple[str, list[tuple[str, str, str]]]]:
    """An HTTPS server with a CA of its own that serves /kubelite/v1/ca.crt and records every request."""
    pki = certs.ensure_cluster_pki(tmp_path / "impostor-tls")
    seen: list[tuple[str, str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.method, request.path, request.headers.get("Authorization", "")))
        if request.path == "/kubelite/v1/ca.crt":
            return web.Response(body=pki.ca_cert_pem)
        return web.json_response({"clientCertificate": "", "servingCertificate": "", "caCertificate": ""})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certs.server_ssl_context(pki))
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_a_server_with_another_ca_never_sees_the_secret(
    server: ServerProcess, impostor: tuple[str, list[tuple[str, str, str]]], tmp_path: Path
) -> None:
    url, seen = impostor
    token = create_token(server)  # pins the real server's CA

    with pytest.raises(JoinError, match="does not match the join token"):
        await join(url, token, node_name="worker-5", node_ips=["10.0.0.11"], data_dir=tmp_path)

    assert seen == [("GET", "/kubelite/v1/ca.crt", "")]
    assert [p.name for p in tmp_path.iterdir()] == ["impostor-tls"]  # nothing of the node's was written
