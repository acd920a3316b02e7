"""The cluster PKI: one CA, the API server's serving certificate and the admin client certificate.

Generated on first start in ``<data-dir>/tls/`` and reused afterwards, so kubeconfigs and joined nodes
keep trusting the server across restarts.  `ensure_cluster_pki` is idempotent and converges the
directory to a usable state:

* The CA (``ca.crt``/``ca.key``, CN ``kubelite-ca``, 10 years) is created once and never replaced
  behind the user's back: every kubeconfig and node trusts it.  The one exception is a key without a
  certificate, left by a crash during the very first start, which nothing can trust yet.
* Leaf certificates (``server.*``, ``admin.*``, 1 year) are re-issued when missing, unreadable, not
  signed by the CA, not matching their key, expiring within `RENEW_BEFORE`, or — for the serving
  certificate — not covering every requested SAN.  Otherwise their bytes are left untouched.
* Files are replaced atomically (temp file, fsync, rename); keys are written ``0600``, certificates
  ``0644``; a key is written before its certificate, so a crash never leaves a certificate whose key
  is missing.  An advisory lock on ``.lock`` serialises servers sharing the directory.

`sign_csr` signs a joining node's certificate requests (the signer, not the request, decides the
subject), so node keys never leave their machine.

Keys are ECDSA P-256: generation takes microseconds, and Go (kubectl, client-go) and OpenSSL accept
them everywhere.  The module does blocking file I/O: call it before the event loop starts or through
`asyncio.to_thread`.

Error tree::

    PkiError           the directory holds a CA that cannot be used and must not be silently replaced
                       (certificate without key, key not matching, unreadable); a person has to decide
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import logging
import os
import secrets
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

CA_COMMON_NAME = "kubelite-ca"
SERVER_COMMON_NAME = "kube-apiserver"
ADMIN_COMMON_NAME = "kubelite-admin"
ADMIN_ORGANIZATIONS = ("system:masters",)

CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=90)
# notBefore is back-dated so that a node whose clock runs a little behind still accepts a fresh cert.
BACKDATE = datetime.timedelta(hours=1)

# Names every API server answers to: loopback, and the in-cluster names of the `kubernetes` Service.
DEFAULT_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
DEFAULT_IPS = ("127.0.0.1", "::1")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# the key types a CSR may carry that we sign: what Go's crypto/tls and OpenSSL both accept
CertificatePublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class PkiError(Exception):
    """The CA on disk is unusable; replacing it would break every client that trusts it."""


@dataclass(frozen=True)
class ClusterPki:
    """Paths and PEM contents of the cluster PKI.  Key material is kept out of `repr` (and so out of logs)."""

    directory: Path
    ca_cert_pem: bytes
    ca_key_pem: bytes = field(repr=False)
    server_cert_pem: bytes
    server_key_pem: bytes = field(repr=False)
    admin_cert_pem: bytes
    admin_key_pem: bytes = field(repr=False)

    @property
    def ca_cert_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key_path(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert_path(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key_path(self) -> Path:
        return self.directory / "server.key"

    @property
    def admin_cert_path(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key_path(self) -> Path:
        return self.directory / "admin.key"


# ---------------------------------------------------------------------------------------------------
# public API


def ensure_cluster_pki(
    directory: Path,
    *,
    hostnames: Iterable[str] = (),
    ips: Iterable[str] = (),
    now: datetime.datetime | None = None,
) -> ClusterPki:
    """Create or reuse the PKI in `directory` and return it.

    The serving certificate covers `DEFAULT_DNS_NAMES`, this machine's hostname, `DEFAULT_IPS` and the
    extra `hostnames` and `ips` (e.g. the bind address, node IPs, the `kubernetes` Service's cluster
    IP).  An entry of `hostnames` that is an IP literal counts as an IP.  Idempotent: a second call with
    the same arguments rewrites nothing.  `now` is for tests.
    """
    now = now or _utcnow()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    dns_names, ip_addresses = _serving_names(
        [*DEFAULT_DNS_NAMES, socket.gethostname(), *hostnames], [*DEFAULT_IPS, *ips]
    )

    with _locked(directory / ".lock"):
        ca_cert, ca_key = _ensure_ca(directory, now)
        # The bytes on disk, not a re-encoding: a CA key put there in another PEM form stays as is.
        ca_cert_pem = (directory / "ca.crt").read_bytes()
        ca_key_pem = (directory / "ca.key").read_bytes()

        def serving_ok(cert: x509.Certificate) -> str | None:
            return _missing_sans(cert, dns_names, ip_addresses)

        server_cert_pem, server_key_pem = _ensure_leaf(
            directory / "server.crt",
            directory / "server.key",
            ca_cert,
            now=now,
            check=serving_ok,
            issue=lambda: _issue(
                ca_cert,
                ca_key,
                common_name=SERVER_COMMON_NAME,
                organizations=(),
                usage=ExtendedKeyUsageOID.SERVER_AUTH,
                dns_names=dns_names,
                ips=ip_addresses,
                now=now,
            ),
        )

        def admin_ok(cert: x509.Certificate) -> str | None:
            if _subject(cert) != (ADMIN_COMMON_NAME, list(ADMIN_ORGANIZATIONS)):
                return "subject differs"
            return None

        admin_cert_pem, admin_key_pem = _ensure_leaf(
            directory / "admin.crt",
            directory / "admin.key",
            ca_cert,
            now=now,
            check=admin_ok,
            issue=lambda: _issue(
                ca_cert,
                ca_key,
                common_name=ADMIN_COMMON_NAME,
                organizations=ADMIN_ORGANIZATIONS,
                usage=ExtendedKeyUsageOID.CLIENT_AUTH,
                now=now,
            ),
        )

    return ClusterPki(
        directory=directory,
        ca_cert_pem=ca_cert_pem,
        ca_key_pem=ca_key_pem,
        server_cert_pem=server_cert_pem,
        server_key_pem=server_key_pem,
        admin_cert_pem=admin_cert_pem,
        admin_key_pem=admin_key_pem,
    )


def issue_client_certificate(
    pki: ClusterPki,
    common_name: str,
    organizations: Iterable[str] = (),
    *,
    validity: datetime.timedelta = LEAF_VALIDITY,
    now: datetime.datetime | None = None,
) -> tuple[bytes, bytes]:
    """Issue a client certificate (clientAuth) for user `common_name` in groups `organizations`.

    Returns ``(cert_pem, key_pem)``; nothing is written to disk, the caller decides where the key goes.
    """
    ca_cert, ca_key = _load_ca(pki)
    return _issue(
        ca_cert,
        ca_key,
        common_name=common_name,
        organizations=tuple(organizations),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        validity=validity,
        now=now or _utcnow(),
    )


def issue_serving_certificate(
    pki: ClusterPki,
    dns_names: Iterable[str],
    ips: Iterable[str],
    *,
    validity: datetime.timedelta = LEAF_VALIDITY,
    now: datetime.datetime | None = None,
) -> tuple[bytes, bytes]:
    """Issue a serving certificate (serverAuth) for e.g. a node agent's HTTPS endpoint.

    The CN is the first DNS name (or IP); clients check only the SANs.  Returns ``(cert_pem, key_pem)``.
    """
    names, addresses = _serving_names(dns_names, ips)
    if not names and not addresses:
        raise ValueError("a serving certificate needs at least one DNS name or IP")
    ca_cert, ca_key = _load_ca(pki)
    return _issue(
        ca_cert,
        ca_key,
        common_name=names[0] if names else str(addresses[0]),
        organizations=(),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        dns_names=names,
        ips=addresses,
        validity=validity,
        now=now or _utcnow(),
    )


def sign_csr(
    pki: ClusterPki,
    csr_pem: bytes,
    *,
    common_name: str,
    organizations: Iterable[str] = (),
    server: bool = False,
    validity: datetime.timedelta = LEAF_VALIDITY,
    now: datetime.datetime | None = None,
) -> bytes:
    """Sign a PEM certificate signing request with the cluster CA; returns the certificate PEM.

    The signer decides the identity, never the requester: the subject is `common_name` and
    `organizations` whatever the CSR says.  ``server=False`` issues a client certificate (clientAuth,
    no SANs); ``server=True`` a serving certificate (serverAuth) for the CSR's DNS and IP SANs, which
    must name at least one.  The requester keeps its private key; only its public key travels.

    Raises ValueError for a CSR that does not parse, whose self-signature does not verify, whose key
    type is not supported, or (serving) that names no DNS name or IP.
    """
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM certificate signing request: {exc}") from exc
    if not csr.is_signature_valid:
        raise ValueError("the certificate signing request's signature does not verify")
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise ValueError(f"unsupported key type {type(public_key).__name__}")
    dns_names: list[str] = []
    ips: list[IPAddress] = []
    if server:
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            san = x509.SubjectAlternativeName([])
        dns_names, ips = _serving_names(san.get_values_for_type(x509.DNSName), ())
        ips += [ip for ip in san.get_values_for_type(x509.IPAddress) if ip not in ips]
        if not dns_names and not ips:
            raise ValueError("a serving certificate request must name at least one DNS name or IP")
    ca_cert, ca_key = _load_ca(pki)
    return _sign(
        ca_cert,
        ca_key,
        public_key,
        common_name=common_name,
        organizations=tuple(organizations),
        usage=ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH,
        dns_names=dns_names,
        ips=ips,
        validity=validity,
        now=now or _utcnow(),
    )


def server_ssl_context(pki: ClusterPki) -> ssl.SSLContext:
    """TLS context for the API server: TLS 1.2+, ALPN ``http/1.1`` only, optional client certificates.

    Only ``http/1.1`` is offered because kubectl (Go) switches to HTTP/2 whenever the server offers
    ``h2``, and we serve HTTP/1.1 only.  Client certificates are requested but optional, since bearer
    tokens are the other way in; a certificate that is presented must chain to the cluster CA, else
    the handshake fails.  Read the identity with `client_identity`.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.server_cert_path, pki.server_key_path)
    ctx.load_verify_locations(cadata=pki.ca_cert_pem.decode("ascii"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def client_identity(peercert: dict[str, Any] | None) -> tuple[str, list[str]] | None:
    """``(user, groups)`` from a verified client certificate, as Kubernetes reads it: CN and every O.

    Takes `ssl.SSLSocket.getpeercert()` output (``transport.get_extra_info("peercert")`` in aiohttp),
    which is empty or None when the client sent no certificate.  Returns None then, or when there is
    no CN.  ``system:authenticated`` is not added here; that is the authenticator's job.
    """
    if not peercert:
        return None
    user = ""
    groups: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and not user:
                user = value
            elif key == "organizationName":
                groups.append(value)
    if not user:
        return None
    return user, groups


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never a partial one.

    The temp file is created with `mode` from the start, so a key is never readable by others, even
    briefly.  The file and its directory are fsynced so a power cut does not leave an empty file.
    """
    path = Path(path)
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
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# ---------------------------------------------------------------------------------------------------
# the CA


def _ensure_ca(
    directory: Path, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if not cert_path.exists():
        # A key alone is what a crash during the first start leaves: nothing has trusted it yet.
        logger.info("generating cluster CA", extra={"path": str(cert_path)})
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _build_ca(key, now)
        write_atomic(key_path, _key_pem(key), mode=0o600)
        write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
        return cert, key
    if not key_path.exists():
        raise PkiError(f"{cert_path} exists but {key_path} does not; restore the key or remove the CA")
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = _load_key(key_path.read_bytes())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise PkiError(f"cannot read the cluster CA in {directory}: {exc}") from exc
    if not _same_public_key(cert, key):
        raise PkiError(f"{key_path} does not match {cert_path}")
    if cert.not_valid_after_utc <= now:
        logger.warning("cluster CA has expired", extra={"path": str(cert_path)})
    return cert, key


def _build_ca(key: ec.EllipticCurvePrivateKey, now: datetime.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )


def _load_ca(pki: ClusterPki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    return x509.load_pem_x509_certificate(pki.ca_cert_pem), _load_key(pki.ca_key_pem)


# ---------------------------------------------------------------------------------------------------
# leaf certificates


def _ensure_leaf(
    cert_path: Path,
    key_path: Path,
    ca_cert: x509.Certificate,
    *,
    now: datetime.datetime,
    check: Callable[[x509.Certificate], str | None],
    issue: Callable[[], tuple[bytes, bytes]],
) -> tuple[bytes, bytes]:
    """Return the existing leaf if it is still good, else issue and write a new one.

    `check` says why an otherwise valid certificate must be re-issued (or None); `issue` makes a new
    ``(cert_pem, key_pem)``.
    """
    reason = _leaf_problem(cert_path, key_path, ca_cert, now)
    if reason is None:
        cert_pem = cert_path.read_bytes()
        reason = check(x509.load_pem_x509_certificate(cert_pem))
        if reason is None:
            return cert_pem, key_path.read_bytes()
    logger.info("issuing certificate", extra={"path": str(cert_path), "reason": reason})
    cert_pem, key_pem = issue()
    write_atomic(key_path, key_pem, mode=0o600)
    write_atomic(cert_path, cert_pem, mode=0o644)
    return cert_pem, key_pem


def _leaf_problem(
    cert_path: Path, key_path: Path, ca_cert: x509.Certificate, now: datetime.datetime
) -> str | None:
    if not cert_path.exists() or not key_path.exists():
        return "missing"
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = _load_key(key_path.read_bytes())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return "unreadable"
    if not _same_public_key(cert, key):
        return "key does not match certificate"
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "not issued by the cluster CA"
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return "expiring"
    return None


def _issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    common_name: str,
    organizations: Iterable[str],
    usage: x509.ObjectIdentifier,
    dns_names: Iterable[str] = (),
    ips: Iterable[IPAddress] = (),
    validity: datetime.timedelta = LEAF_VALIDITY,
    now: datetime.datetime,
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert_pem = _sign(
        ca_cert,
        ca_key,
        key.public_key(),
        common_name=common_name,
        organizations=organizations,
        usage=usage,
        dns_names=dns_names,
        ips=ips,
        validity=validity,
        now=now,
    )
    return cert_pem, _key_pem(key)


def _sign(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    public_key: CertificatePublicKey,
    *,
    common_name: str,
    organizations: Iterable[str],
    usage: x509.ObjectIdentifier,
    dns_names: Iterable[str] = (),
    ips: Iterable[IPAddress] = (),
    validity: datetime.timedelta = LEAF_VALIDITY,
    now: datetime.datetime,
) -> bytes:
    """A leaf certificate for `public_key`, signed by the CA, as PEM."""
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + validity, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(ca_cert, ca_key), critical=False)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ip) for ip in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


def _missing_sans(cert: x509.Certificate, dns_names: list[str], ips: list[IPAddress]) -> str | None:
    """Why `cert` does not cover every requested name, or None if it does."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "no subjectAltName"
    have_dns = {n.lower() for n in san.get_values_for_type(x509.DNSName)}
    have_ips = set(san.get_values_for_type(x509.IPAddress))
    missing = [n for n in dns_names if n not in have_dns] + [str(ip) for ip in ips if ip not in have_ips]
    if missing:
        return "subjectAltName lacks " + ", ".join(missing)
    return None


def _serving_names(hostnames: Iterable[str], ips: Iterable[str]) -> tuple[list[str], list[IPAddress]]:
    """Normalise SANs: lower-case DNS names without a trailing dot, IP literals parsed; order kept.

    Raises ValueError for an entry of `ips` that is not an IP address.
    """
    dns: dict[str, None] = {}
    addresses: dict[IPAddress, None] = {}
    for name in hostnames:
        name = name.strip().rstrip(".").lower()
        if not name:
            continue
        try:
            addresses[ipaddress.ip_address(name)] = None
        except ValueError:
            dns[name] = None
    for ip in ips:
        if ip.strip():
            addresses[ipaddress.ip_address(ip.strip())] = None
    return list(dns), list(addresses)


# ---------------------------------------------------------------------------------------------------
# small helpers


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _serial() -> int:
    # RFC 5280: positive, at most 20 octets; 159 random bits keeps the top bit clear.
    return secrets.randbits(159) | 1


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # SEC1 "EC PRIVATE KEY", the form client-go's keyutil writes; Go, OpenSSL and Python all read it.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"expected an ECDSA key, got {type(key).__name__}")
    return key


def _same_public_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


def _subject(cert: x509.Certificate) -> tuple[str, list[str]]:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return (str(cns[0].value) if cns else "", [str(o.value) for o in orgs])


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock, so two servers starting on one directory don't both generate."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
