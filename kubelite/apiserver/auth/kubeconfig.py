"""Kubeconfig files for the cluster's users: one cluster, one user, one context, credentials embedded.

Credentials are embedded (``*-data``, base64 PEM) rather than referenced by path, so the file can be
copied to another machine or user as is, as ``kubeadm`` and k3s do for their admin kubeconfig.  The
file therefore holds a private key: `write_kubeconfig` writes it ``0600``.
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from kubelite.apiserver.auth.certs import write_atomic


def render_kubeconfig(
    server_url: str,
    ca_pem: bytes,
    client_cert_pem: bytes,
    client_key_pem: bytes,
    *,
    cluster_name: str = "kubelite",
    user: str = "kubelite-admin",
    context: str = "kubelite",
) -> str:
    """A complete ``v1`` Config, its current-context set, that kubectl and client libraries load as is."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": server_url, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client_cert_pem),
                    "client-key-data": _b64(client_key_pem),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def write_kubeconfig(path: Path, text: str) -> None:
    """Write `text` to `path` atomically with mode 0600, creating missing parent directories (0700).

    Blocking file I/O: call it before the event loop runs or through `asyncio.to_thread`.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, text.encode("utf-8"), mode=0o600)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
