"""Bootstrap (join) tokens and the join endpoint, server side.

Tokens have the kubeadm form ``<id>.<secret>`` (id ``[a-z0-9]{6}``, secret ``[a-z0-9]{16}``) and live as
Secrets ``kube-system/bootstrap-token-<id>`` of type ``bootstrap.kubernetes.io/token``, so the ordinary
API creates, lists and revokes them (delete the Secret) and tools that know kubeadm's tokens read them.

A token authenticates as ``system:bootstrap:<id>`` in group ``system:bootstrappers`` (plus the Secret's
``auth-extra-groups``) while its Secret exists, is not being deleted, allows authentication and has not
expired.  Lookups read the API server's watch cache synchronously: no storage round trip per request.

Two routes, both public at the HTTP layer (`PUBLIC_PATHS`) because the join route authenticates by
itself and answers a refused token with its own message:

* ``GET /kubelite/v1/ca.crt``: the cluster CA certificate, PEM.  Public by design: a joining machine
  fetches it without trust and checks it against the hash pinned in its join token.
* ``POST /kubelite/v1/join``: with ``Authorization: Bearer <id>.<secret>``, body ``{"nodeName",
  "clientCSR", "servingCSR"}`` → ``{"clientCertificate", "servingCertificate", "caCertificate"}``.  The
  client certificate is ``system:node:<nodeName>`` in ``system:nodes``; the serving certificate covers
  the SANs of the serving CSR.  Re-joining under a name that exists is allowed (a reinstalled machine).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from kubelite.apiserver.app import ApiServer, Identity
from kubelite.apiserver.auth import certs
from kubelite.machinery import errors
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import rfc3339

TOKEN_NAMESPACE = "kube-system"
SECRET_PREFIX = "bootstrap-token-"
SECRET_TYPE = "bootstrap.kubernetes.io/token"
BOOTSTRAP_USER_PREFIX = "system:bootstrap:"
BOOTSTRAPPERS_GROUP = "system:bootstrappers"
NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"

CA_PATH = "/kubelite/v1/ca.crt"
JOIN_PATH = "/kubelite/v1/join"
REFUSED_MESSAGE = "invalid or expired join token"

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
TOKEN_ID_RE = re.compile(r"^[a-z0-9]{6}$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# (namespace, name) → the Secret as stored (data base64-encoded), or None
SecretLookup = Callable[[str, str], dict[str, Any] | None]


# ---------------------------------------------------------------------------------------------------
# tokens and their Secrets


def generate_token() -> tuple[str, str]:
    """A fresh ``(id, secret)`` from the OS's CSPRNG."""
    return _random(6), _random(16)


def parse_token(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed ``<id>.<secret>`` token, else None."""
    match = TOKEN_RE.match(token.strip())
    return (match.group(1), match.group(2)) if match else None


def secret_name(token_id: str) -> str:
    return SECRET_PREFIX + token_id


def bootstrap_token_secret(
    token_id: str,
    token_secret: str,
    *,
    ttl: timedelta | None = None,
    description: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Secret that stores a token; `ttl` None or zero means it never expires."""
    if not TOKEN_ID_RE.match(token_id) or not re.fullmatch(r"[a-z0-9]{16}", token_secret):
        raise ValueError("a bootstrap token is [a-z0-9]{6}.[a-z0-9]{16}")
    data = {"token-id": token_id, "token-secret": token_secret, "usage-bootstrap-authentication": "true"}
    if ttl:
        data["expiration"] = rfc3339((now or datetime.now(UTC)) + ttl)
    if description:
        data["description"] = description
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name(token_id), "namespace": TOKEN_NAMESPACE},
        "type": SECRET_TYPE,
        "data": {key: base64.b64encode(value.encode()).decode("ascii") for key, value in data.items()},
    }


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    """A Secret's ``data`` decoded to text; undecodable entries are left out."""
    out = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            out[key] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            continue
    return out


def token_expired(data: dict[str, str], now: datetime) -> bool:
    """Whether decoded Secret `data` has an ``expiration`` at or before `now`.  No expiration: never;
    one that does not parse counts as expired (as upstream treats it)."""
    text = data.get("expiration")
    if not text:
        return False
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return True
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment <= now


def authenticate_bootstrap_token(
    lookup: SecretLookup, authorization_header: str | None, *, now: datetime | None = None
) -> Identity | None:
    """The identity of a ``Bearer <id>.<secret>`` header, or None when it is not a valid, live token."""
    if not authorization_header:
        return None
    scheme, _, credentials = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    parsed = parse_token(credentials)
    if parsed is None:
        return None
    token_id, token_secret = parsed
    secret = lookup(TOKEN_NAMESPACE, secret_name(token_id))
    if secret is None or secret.get("type") != SECRET_TYPE:
        return None
    if (secret.get("metadata") or {}).get("deletionTimestamp"):
        return None
    data = secret_data(secret)
    if data.get("token-id") != token_id:
        return None
    if not hmac.compare_digest(data.get("token-secret", "").encode(), token_secret.encode()):
        return None
    if data.get("usage-bootstrap-authentication") != "true":
        return None
    if token_expired(data, now or datetime.now(UTC)):
        return None
    groups = [BOOTSTRAPPERS_GROUP]
    for group in data.get("auth-extra-groups", "").split(","):
        group = group.strip()
        if group.startswith(BOOTSTRAPPERS_GROUP + ":") and group not in groups:
            groups.append(group)
    return Identity(BOOTSTRAP_USER_PREFIX + token_id, tuple(groups))


def is_bootstrap_identity(identity: Identity | None) -> bool:
    return identity is not None and identity.user.startswith(BOOTSTRAP_USER_PREFIX)


# ---------------------------------------------------------------------------------------------------
# wiring into the API server


class ServerSecrets:
    """A `SecretLookup` over an `ApiServer`'s watch cache (synchronous; returned objects are read-only).

    It can be created before the server and bound afterwards, because the server builds its routes —
    `join_routes` among them — in its constructor.  Unbound, it finds nothing.
    """

    def __init__(self, server: ApiServer | None = None) -> None:
        self._server = server

    def bind(self, server: ApiServer) -> None:
        self._server = server

    def __call__(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self._server is None:
            return None
        resource = self._server.registry.get("", "v1", "secrets")
        if resource is None:
            return None
        entry = self._server.cache.get(resource.key(namespace, name))
        return entry.obj if entry is not None else None


def join_routes(lookup: SecretLookup, pki: certs.ClusterPki) -> Callable[[web.Application], None]:
    """The `ApiServerConfig.extra_routes` entry that mounts `CA_PATH` and `JOIN_PATH`; `lookup` finds
    token Secrets (a `ServerSecrets`)."""
    ca_pem = pki.ca_cert_pem

    async def ca_certificate(request: web.Request) -> web.Response:
        return web.Response(body=ca_pem, content_type="application/x-pem-file")

    async def join(request: web.Request) -> web.Response:
        identity = authenticate_bootstrap_token(lookup, request.headers.get("Authorization"))
        if identity is None:
            raise ApiError(401, "Unauthorized", REFUSED_MESSAGE)
        node_name, client_csr, serving_csr = _join_request(await request.read())
        subject = {"common_name": NODE_USER_PREFIX + node_name, "organizations": (NODES_GROUP,)}
        try:
            client_cert = certs.sign_csr(pki, client_csr.encode(), **subject)
            serving_cert = certs.sign_csr(pki, serving_csr.encode(), server=True, **subject)
        except ValueError as exc:
            raise errors.bad_request(f"cannot sign the certificate requests: {exc}") from exc
        body = {
            "clientCertificate": client_cert.decode("ascii"),
            "servingCertificate": serving_cert.decode("ascii"),
            "caCertificate": ca_pem.decode("ascii"),
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def mount(app: web.Application) -> None:
        app.router.add_get(CA_PATH, ca_certificate)
        app.router.add_post(JOIN_PATH, join)

    return mount


def _join_request(raw: bytes) -> tuple[str, str, str]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request("the join request is not JSON") from exc
    if not isinstance(body, dict):
        raise errors.bad_request("the join request must be a JSON object")
    values = []
    for field in ("nodeName", "clientCSR", "servingCSR"):
        value = body.get(field)
        if not isinstance(value, str) or not value:
            raise errors.bad_request(f"the join request needs {field!r}")
        values.append(value)
    node_name = values[0]
    if len(node_name) > 253 or not _DNS_SUBDOMAIN.match(node_name):
        raise errors.bad_request(
            f"invalid node name {node_name!r}: a lowercase RFC 1123 subdomain must consist of lower case "
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    return values[0], values[1], values[2]


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


__all__ = [
    "CA_PATH",
    "JOIN_PATH",
    "REFUSED_MESSAGE",
    "SecretLookup",
    "ServerSecrets",
    "authenticate_bootstrap_token",
    "bootstrap_token_secret",
    "generate_token",
    "is_bootstrap_identity",
    "join_routes",
    "parse_token",
    "secret_data",
    "secret_name",
    "token_expired",
]
