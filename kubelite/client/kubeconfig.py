"""Kubeconfig files: which server, how to trust it, and who we are.

`load_kubeconfig` resolves one context of a `v1` Config into a `KubeConfig`: the server URL, the CA,
and client credentials (certificate and key, or a bearer token).  File references
(`certificate-authority`, `client-certificate`, `client-key`, `tokenFile`) are read at load time,
relative to the kubeconfig's directory as kubectl does, so a `KubeConfig` holds everything in memory.
Exec plugins and auth providers are not supported.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]


class KubeConfigError(ValueError):
    """The kubeconfig is missing, malformed, or lacks what a client needs."""


@dataclass(frozen=True)
class KubeConfig:
    server: str
    certificate_authority_data: bytes | None = None  # PEM
    client_certificate_data: bytes | None = None  # PEM
    client_key_data: bytes | None = None  # PEM
    token: str | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    namespace: str = "default"  # the context's namespace: a default for callers, not applied by the client

    def __repr__(self) -> str:  # never print keys or tokens
        auth = "token" if self.token else "client-certificate" if self.client_certificate_data else "none"
        return f"KubeConfig(server={self.server!r}, auth={auth}, namespace={self.namespace!r})"


def load_kubeconfig(path: str | Path, *, context: str | None = None) -> KubeConfig:
    """Read a kubeconfig file (blocking file I/O: call at start-up or via `asyncio.to_thread`)."""
    path = Path(path).expanduser()
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise KubeConfigError(f"cannot read kubeconfig {path}: {exc}") from exc
    return kubeconfig_from_dict(document, context=context, base_dir=path.parent)


def kubeconfig_from_dict(
    document: Any, *, context: str | None = None, base_dir: str | Path | None = None
) -> KubeConfig:
    """Resolve `context` (default: `current-context`, else the only one) of a parsed kubeconfig."""
    if not isinstance(document, dict):
        raise KubeConfigError("kubeconfig must be a mapping")
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    context_name = context or document.get("current-context")
    contexts = _named(document, "contexts")
    if not context_name and len(contexts) == 1:
        context_name = next(iter(contexts))
    if context_name not in contexts:
        raise KubeConfigError(f"context {context_name!r} not found in kubeconfig")
    ctx = contexts[context_name].get("context") or {}
    cluster = (_named(document, "clusters").get(str(ctx.get("cluster"))) or {}).get("cluster")
    if not cluster or not cluster.get("server"):
        raise KubeConfigError(f"context {context_name!r} names no cluster with a server")
    user = (_named(document, "users").get(str(ctx.get("user"))) or {}).get("user") or {}
    if user.get("exec") or user.get("auth-provider"):
        raise KubeConfigError("exec plugins and auth providers are not supported")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _read(base, user["tokenFile"]).decode().strip()
    return KubeConfig(
        server=str(cluster["server"]),
        certificate_authority_data=_data(base, cluster, "certificate-authority"),
        client_certificate_data=_data(base, user, "client-certificate"),
        client_key_data=_data(base, user, "client-key"),
        token=token or None,
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
        namespace=str(ctx.get("namespace") or "default"),
    )


def _named(document: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    return {str(e.get("name")): e for e in document.get(section) or () if isinstance(e, dict)}


def _data(base: Path, section: dict[str, Any], field: str) -> bytes | None:
    """`<field>-data` (base64) wins over `<field>` (a path)."""
    inline = section.get(f"{field}-data")
    if inline:
        try:
            return base64.b64decode(inline, validate=True)
        except ValueError as exc:
            raise KubeConfigError(f"{field}-data is not valid base64") from exc
    if section.get(field):
        return _read(base, section[field])
    return None


def _read(base: Path, name: str) -> bytes:
    path = Path(name).expanduser()
    try:
        return (path if path.is_absolute() else base / path).read_bytes()
    except OSError as exc:
        raise KubeConfigError(f"cannot read {name}: {exc}") from exc


__all__ = ["KubeConfig", "KubeConfigError", "kubeconfig_from_dict", "load_kubeconfig"]
