"""Service-account tokens: the TokenRequest API (`POST .../serviceaccounts/{name}/token`) and the
authenticator that accepts the tokens it issues.

Tokens are RS256 JWTs shaped as upstream's (pkg/serviceaccount/claims.go): header
`{"alg": "RS256", "kid": <key id>}`; claims `aud`, `exp`, `iat`, `iss`, `jti`, `nbf`,
`sub: system:serviceaccount:<ns>:<name>` and the private claim `kubernetes.io` with `namespace`,
`serviceaccount {name, uid}` and, for a bound token, `pod {name, uid}` (plus `node {name, uid}` when
the pod is scheduled) or `secret {name, uid}`.  The key id is upstream's: the unpadded base64url
SHA-256 of the public key's DER (PKIX) form.

Key material: `ServiceAccountKeys.load_or_create(path)` keeps one RSA-2048 key (PEM, mode 0600)
under the server's TLS directory, so tokens survive a restart; `ServiceAccountKeys.generate()`
gives an in-memory key (tests, or a server not told where to keep it).

Errors follow upstream: a missing ServiceAccount or bound object is 404; a bound pod running as
another service account, or an unsupported bound kind, is 400; a bound object whose uid differs is
409; expirationSeconds under 600 or over 2^32 is 422 on `TokenRequest.authentication.k8s.io`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kubelite.machinery import errors
from kubelite.machinery.errors import Cause
from kubelite.machinery.meta import rfc3339

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32
KEY_FILE = "service-account.key"
USER_PREFIX = "system:serviceaccount:"
GROUP_ALL = "system:serviceaccounts"
PRIVATE_CLAIM = "kubernetes.io"

Obj = dict[str, Any]
# (resource plural, namespace, name) → the stored object or None
ObjectLookup = Callable[[str, str | None, str], Mapping[str, Any] | None]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


class ServiceAccountKeys:
    """The signing key (private key stays out of repr and logs)."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = _b64(hashlib.sha256(der).digest())

    def __repr__(self) -> str:
        return f"ServiceAccountKeys(key_id={self.key_id!r})"

    @classmethod
    def generate(cls) -> ServiceAccountKeys:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def load_or_create(cls, path: Path) -> ServiceAccountKeys:
        """The key in `path`, created (0600, atomically) when the file does not exist."""
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError(f"{path}: not an RSA private key")
            return cls(loaded)
        keys = cls.generate()
        pem = keys._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        os.replace(temporary, path)
        return keys

    def sign(self, claims: Mapping[str, Any]) -> str:
        header = _b64(_compact({"alg": "RS256", "kid": self.key_id}))
        payload = _b64(_compact(claims))
        signing_input = f"{header}.{payload}".encode()
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64(signature)}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this key signed, or None (bad form, other key, bad signature)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_unb64(parts[0]))
            if header.get("alg") != "RS256" or header.get("kid") not in (None, self.key_id):
                return None
            self._key.public_key().verify(
                _unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, InvalidSignature, TypeError, AttributeError):
            return None
        return claims if isinstance(claims, dict) else None


def username(namespace: str, name: str) -> str:
    return f"{USER_PREFIX}{namespace}:{name}"


def _ref(obj: Mapping[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    return {"name": str(meta.get("name") or ""), "uid": str(meta.get("uid") or "")}


def token_claims(
    service_account: Mapping[str, Any],
    *,
    audiences: list[str],
    issuer: str,
    now: datetime,
    expiration_seconds: int,
    pod: Mapping[str, Any] | None = None,
    node: Mapping[str, Any] | None = None,
    secret: Mapping[str, Any] | None = None,
    jti: str | None = None,
) -> dict[str, Any]:
    """The JWT claims of a token for `service_account` (pure; `jti` random unless given)."""
    meta = service_account.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    issued = int(now.timestamp())
    private: dict[str, Any] = {"namespace": namespace, "serviceaccount": _ref(service_account)}
    if pod is not None:
        private["pod"] = _ref(pod)
    if node is not None:
        private["node"] = _ref(node)
    if secret is not None:
        private["secret"] = _ref(secret)
    return {
        "aud": list(audiences),
        "exp": issued + expiration_seconds,
        "iat": issued,
        "iss": issuer,
        "jti": jti or str(uuid.uuid4()),
        PRIVATE_CLAIM: private,
        "nbf": issued,
        "sub": username(namespace, str(meta.get("name") or "")),
    }


def validate_token_request(name: str, spec: Mapping[str, Any]) -> None:
    """ValidateTokenRequest: 422 on the expiration bounds."""
    seconds = spec.get("expirationSeconds")
    causes: list[Cause] = []
    if isinstance(seconds, int) and not isinstance(seconds, bool):
        if seconds < MIN_EXPIRATION_SECONDS:
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: {seconds}: may not specify a duration less than 10 minutes",
                    "spec.expirationSeconds",
                )
            )
        if seconds > MAX_EXPIRATION_SECONDS:
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds",
                    "spec.expirationSeconds",
                )
            )
    if causes:
        raise errors.invalid("TokenRequest", "authentication.k8s.io", name, causes)


@dataclass
class TokenIssuer:
    """Answers TokenRequests from objects found through `lookup` (the server's watch cache)."""

    lookup: ObjectLookup
    keys: ServiceAccountKeys | None = None  # None: an in-memory key, generated at first use
    issuer: str = DEFAULT_ISSUER
    audiences: tuple[str, ...] = ()

    def signing_keys(self) -> ServiceAccountKeys:
        if self.keys is None:
            self.keys = ServiceAccountKeys.generate()
        return self.keys

    @property
    def api_audiences(self) -> list[str]:
        return list(self.audiences) or [self.issuer]

    def _find(self, plural: str, namespace: str | None, name: str) -> Mapping[str, Any]:
        found = self.lookup(plural, namespace, name)
        if found is None:
            raise errors.not_found(plural, "", name)
        return found

    def create(
        self, namespace: str, name: str, body: Mapping[str, Any], *, now: datetime | None = None
    ) -> dict[str, Any]:
        """The answered TokenRequest (status.token, status.expirationTimestamp)."""
        if not isinstance(body, Mapping):
            raise errors.bad_request("the body of the request was in an unknown format")
        service_account = self._find("serviceaccounts", namespace, name)
        spec = dict(body.get("spec") or {})
        validate_token_request(name, spec)
        spec["audiences"] = list(spec.get("audiences") or self.api_audiences)
        if not spec.get("expirationSeconds"):
            spec["expirationSeconds"] = DEFAULT_EXPIRATION_SECONDS
        pod = node = secret = None
        ref = spec.get("boundObjectRef")
        if ref:
            kind, api_version = str(ref.get("kind") or ""), str(ref.get("apiVersion") or "")
            group = api_version.rpartition("/")[0] if "/" in api_version else ""
            ref_name = str(ref.get("name") or "")
            if group == "" and kind == "Pod":
                pod = self._find("pods", namespace, ref_name)
                bound = pod
                if (pod.get("spec") or {}).get("serviceAccountName", "default") != name:
                    raise errors.bad_request(
                        f'cannot bind token for serviceaccount "{name}" to pod running with different '
                        "serviceaccount name."
                    )
                node_name = (pod.get("spec") or {}).get("nodeName")
                if node_name:
                    node = self.lookup("nodes", None, str(node_name))
            elif group == "" and kind == "Secret":
                secret = bound = self._find("secrets", namespace, ref_name)
            elif group == "" and kind == "Node":
                node = bound = self._find("nodes", None, ref_name)
            else:
                version = api_version.rpartition("/")[2] if api_version else ""
                shown = f"{group}/{version}, Kind={kind}" if group else f"/{version}, Kind={kind}"
                raise errors.bad_request(f"cannot bind token to object of type {shown}")
            uid = str((bound.get("metadata") or {}).get("uid") or "")
            if ref.get("uid") and ref.get("uid") != uid:
                raise errors.conflict(
                    kind,
                    group,
                    ref_name,
                    f"the UID in the bound object reference ({ref.get('uid')}) does not match the UID in record. "
                    "The object might have been deleted and then recreated",
                )
            spec["boundObjectRef"] = {**ref, "uid": uid}
        moment = now or datetime.now(UTC)
        claims = token_claims(
            service_account,
            audiences=spec["audiences"],
            issuer=self.issuer,
            now=moment,
            expiration_seconds=int(spec["expirationSeconds"]),
            pod=pod,
            node=node,
            secret=secret,
        )
        expires = moment.replace(microsecond=0) + timedelta(seconds=int(spec["expirationSeconds"]))
        metadata = dict(body.get("metadata") or {})
        metadata.setdefault("name", name)
        metadata.setdefault("namespace", namespace)
        metadata["creationTimestamp"] = None
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": metadata,
            "spec": spec,
            "status": {"token": self.signing_keys().sign(claims), "expirationTimestamp": rfc3339(expires)},
        }

    def authenticate(
        self, authorization_header: str | None, *, now: datetime | None = None
    ) -> tuple[str, tuple[str, ...]] | None:
        """(user, groups) of a live `Bearer <jwt>` this server issued for our audiences, else None.

        Like upstream's validator, the ServiceAccount (and a bound pod or secret) must still exist
        with the uid in the token.
        """
        if not authorization_header:
            return None
        scheme, _, token = authorization_header.strip().partition(" ")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            return None
        claims = self.signing_keys().verify(token.strip())
        if claims is None or claims.get("iss") != self.issuer:
            return None
        moment = int((now or datetime.now(UTC)).timestamp())
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= moment or int(claims.get("nbf") or 0) > moment:
            return None
        audiences = claims.get("aud") or []
        if isinstance(audiences, str):
            audiences = [audiences]
        if not set(audiences) & set(self.api_audiences):
            return None
        private = claims.get(PRIVATE_CLAIM) or {}
        namespace = str(private.get("namespace") or "")
        account = private.get("serviceaccount") or {}
        if not self._live("serviceaccounts", namespace, account):
            return None
        for plural, key in (("pods", "pod"), ("secrets", "secret")):
            if key in private and not self._live(plural, namespace, private[key]):
                return None
        name = str(account.get("name") or "")
        return username(namespace, name), (GROUP_ALL, f"{GROUP_ALL}:{namespace}", "system:authenticated")

    def _live(self, plural: str, namespace: str, ref: Mapping[str, Any]) -> bool:
        found = self.lookup(plural, namespace, str(ref.get("name") or ""))
        if found is None or (found.get("metadata") or {}).get("deletionTimestamp"):
            return False
        return (found.get("metadata") or {}).get("uid") == ref.get("uid")


__all__ = [
    "DEFAULT_EXPIRATION_SECONDS",
    "DEFAULT_ISSUER",
    "KEY_FILE",
    "ServiceAccountKeys",
    "TokenIssuer",
    "token_claims",
    "username",
    "validate_token_request",
]


def store_lookup(store: Any, registry: Any) -> ObjectLookup:
    """An `ObjectLookup` over an `ObjectStore`'s watch cache (core/v1 resources; read-only objects)."""

    def lookup(plural: str, namespace: str | None, name: str) -> Mapping[str, Any] | None:
        resource = registry.get("", "v1", plural)
        if resource is None:
            return None
        entry = store.cache.get(resource.key(namespace if resource.namespaced else None, name))
        return None if entry is None else entry.obj

    return lookup
