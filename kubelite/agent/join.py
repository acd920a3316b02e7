"""Joining a cluster: turn a join token into this node's credentials, once.

The token is ``K10<sha256 of the CA certificate, DER, hex>::<id>.<secret>`` (the k3s form): besides the
bootstrap token it pins the cluster CA, so a joining machine needs nothing else to trust the server.

`join` runs, in order:

1. ``GET /kubelite/v1/ca.crt`` without verifying TLS (nothing is trusted yet, and nothing secret is sent);
2. compare the certificate's hash with the token's; a mismatch aborts *before* the secret leaves the
   machine (someone may be impersonating the server);
3. generate the node's keys here (they never leave the machine) and ``POST /kubelite/v1/join`` over TLS
   verified against the pinned CA, with ``Authorization: Bearer <id>.<secret>`` and two CSRs;
4. write ``tls/ca.crt``, ``tls/kubelet.crt``, ``tls/kubelet.key`` (the kubelet endpoint's serving pair)
   and, last, ``kubeconfig.yaml`` (client certificate embedded) into the data directory.

The kubeconfig is written last and atomically, so its presence means "joined": a restarted agent skips
the join (the token may have expired by then) and uses it as is.  Keys are written ``0600``.

Error tree::

    JoinError    the join cannot complete: malformed token, CA hash mismatch, server unreachable,
                 token refused ("the server refused the join token: <message>"), bad answer
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import os
import re
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CA_PATH = "/kubelite/v1/ca.crt"
JOIN_PATH = "/kubelite/v1/join"
MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_TIMEOUT = 30.0
_TOKEN_RE = re.compile(r"^K10([0-9a-f]{64})::([a-z0-9]{6})\.([a-z0-9]{16})$")


class JoinError(Exception):
    """The node could not join; the message says why and is meant for the person running the agent."""


@dataclass(frozen=True)
class JoinToken:
    ca_hash: str
    token_id: str
    secret: str = ""

    @property
    def bearer(self) -> str:
        return f"{self.token_id}.{self.secret}"

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return f"JoinToken(ca_hash={self.ca_hash!r}, token_id={self.token_id!r})"


def ca_hash(ca_pem: bytes) -> str:
    """sha256 (hex) of the DER encoding of the first certificate in `ca_pem`; ValueError if none."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def format_join_token(ca_pem: bytes, token_id: str, token_secret: str) -> str:
    return f"K10{ca_hash(ca_pem)}::{token_id}.{token_secret}"


def parse_join_token(text: str) -> JoinToken:
    match = _TOKEN_RE.match(text.strip())
    if match is None:
        raise JoinError(
            "malformed join token: expected K10<sha256 of the CA>::<id>.<secret> as printed by `kubelite token create`"
        )
    return JoinToken(match.group(1), match.group(2), match.group(3))


async def join(
    server_url: str,
    token: str,
    *,
    node_name: str,
    node_ips: list[str],
    data_dir: Path,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Join the cluster at `server_url` and return the path of the node's kubeconfig.

    Does nothing (and contacts no one) when ``<data_dir>/kubeconfig.yaml`` already exists.
    """
    data_dir = Path(data_dir)
    kubeconfig_path = data_dir / "kubeconfig.yaml"
    if kubeconfig_path.exists():
        return kubeconfig_path
    parsed = parse_join_token(token)
    base = server_url.rstrip("/")
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        ca_pem = await _fetch_ca(session, base)
        try:
            actual = ca_hash(ca_pem)
        except ValueError as exc:
            raise JoinError(f"{base}{CA_PATH} did not return a PEM certificate") from exc
        if actual != parsed.ca_hash:
            raise JoinError(
                f"the server's CA certificate (sha256 {actual}) does not match the join token's "
                f"(sha256 {parsed.ca_hash}); not sending the token. Is {base} the right server?"
            )
        keys = await asyncio.to_thread(_keys_and_requests, node_name, node_ips)
        answer = await _post_join(session, base, ca_pem, parsed, node_name, keys)
    await asyncio.to_thread(_write_credentials, data_dir, base, node_name, answer, keys)
    return kubeconfig_path


# ---------------------------------------------------------------------------------------------------
# the two requests


async def _fetch_ca(session: aiohttp.ClientSession, base: str) -> bytes:
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    status, body = await _request(session, "GET", base + CA_PATH, ssl_context=unverified)
    if status != 200:
        raise JoinError(f"{base}{CA_PATH} answered HTTP {status}: {_message(body)}")
    return body


async def _post_join(
    session: aiohttp.ClientSession, base: str, ca_pem: bytes, token: JoinToken, node_name: str, keys: _Keys
) -> dict[str, str]:
    verified = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    payload = {"nodeName": node_name, "clientCSR": keys.client_csr, "servingCSR": keys.serving_csr}
    status, body = await _request(
        session,
        "POST",
        base + JOIN_PATH,
        ssl_context=verified,
        data=orjson.dumps(payload),
        headers={"Authorization": f"Bearer {token.bearer}", "Content-Type": "application/json"},
    )
    if status == 401:
        raise JoinError(f"the server refused the join token: {_message(body)}")
    if status != 200:
        raise JoinError(f"the server refused to join node {node_name!r}: HTTP {status}: {_message(body)}")
    try:
        answer = orjson.loads(body)
        result = {k: str(answer[k]) for k in ("clientCertificate", "servingCertificate", "caCertificate")}
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise JoinError("the server's join answer is not the expected JSON object") from exc
    if ca_hash(result["caCertificate"].encode()) != token.ca_hash:
        raise JoinError("the server's join answer names a different CA than the join token")
    return result


async def _request(
    session: aiohttp.ClientSession, method: str, url: str, *, ssl_context: ssl.SSLContext, **kwargs: Any
) -> tuple[int, bytes]:
    try:
        async with session.request(method, url, ssl=ssl_context, **kwargs) as response:
            body = await response.content.read(MAX_RESPONSE_BYTES + 1)
            if len(body) > MAX_RESPONSE_BYTES:
                raise JoinError(f"{url}: the answer is larger than {MAX_RESPONSE_BYTES} bytes")
            return response.status, body
    except aiohttp.ClientConnectorCertificateError as exc:
        raise JoinError(
            f"{url}: the server's certificate is not valid for this address ({exc.certificate_error}); "
            "use an address the server certificate names (kubelite server --tls-san)"
        ) from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise JoinError(f"cannot reach {url}: {exc or type(exc).__name__}") from exc


def _message(body: bytes) -> str:
    """A Status body's message, else the body's beginning."""
    try:
        decoded = orjson.loads(body)
        if isinstance(decoded, dict) and decoded.get("message"):
            return str(decoded["message"])
    except orjson.JSONDecodeError:
        pass
    return body[:300].decode("utf-8", errors="replace").strip() or "(no message)"


# ---------------------------------------------------------------------------------------------------
# keys and files (blocking: run in a thread)


@dataclass(frozen=True)
class _Keys:
    client_key: bytes
    client_csr: str
    serving_key: bytes
    serving_csr: str

    def __repr__(self) -> str:
        return "_Keys(...)"


def _keys_and_requests(node_name: str, node_ips: list[str]) -> _Keys:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}"),
        ]
    )
    sans: list[x509.GeneralName] = []
    for name in [node_name, *node_ips]:
        try:
            address = x509.IPAddress(ipaddress.ip_address(name))
            if address not in sans:
                sans.append(address)
        except ValueError:
            if x509.DNSName(name) not in sans:
                sans.append(x509.DNSName(name))
    client_key = ec.generate_private_key(ec.SECP256R1())
    serving_key = ec.generate_private_key(ec.SECP256R1())
    client_csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(client_key, hashes.SHA256())
    serving_csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(serving_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return _Keys(
        _key_pem(client_key),
        client_csr.public_bytes(pem).decode(),
        _key_pem(serving_key),
        serving_csr.public_bytes(pem).decode(),
    )


def _write_credentials(data_dir: Path, server: str, node_name: str, answer: dict[str, str], keys: _Keys) -> None:
    tls = data_dir / "tls"
    tls.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_pem = answer["caCertificate"].encode()
    _write_atomic(tls / "ca.crt", ca_pem, 0o644)
    _write_atomic(tls / "kubelet.key", keys.serving_key, 0o600)
    _write_atomic(tls / "kubelet.crt", answer["servingCertificate"].encode(), 0o644)
    user = f"system:node:{node_name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubelite", "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(answer["clientCertificate"].encode()),
                    "client-key-data": _b64(keys.client_key),
                },
            }
        ],
        "contexts": [{"name": "kubelite", "context": {"cluster": "kubelite", "user": user}}],
        "current-context": "kubelite",
        "preferences": {},
    }
    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    _write_atomic(data_dir / "kubeconfig.yaml", text.encode(), 0o600)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Readers see the old file or the new one; the temp file has `mode` from its creation."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


__all__ = ["JoinError", "JoinToken", "ca_hash", "format_join_token", "join", "parse_join_token"]
