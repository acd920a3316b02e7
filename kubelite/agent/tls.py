"""TLS for the agent's kubelet endpoint: a serving context that demands a client certificate from the
cluster CA, and the check that only the API server (group ``system:masters``) may use it.

The API server is the only client of the kubelet endpoint (it proxies `kubectl logs/exec/attach/port-forward`),
so the rule is narrow: a verified certificate whose organizations include ``system:masters``.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiohttp import web

from kubelite.client.http import load_cert_chain_pem

KUBELET_CLIENT_GROUP = "system:masters"


def kubelet_server_context(ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """Serving context: TLS 1.2+, ALPN ``http/1.1`` (upgrades need it), client certificates required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    load_cert_chain_pem(context, cert_pem, key_pem)
    return context


def peer_groups(peercert: dict[str, Any] | None) -> tuple[str, list[str]] | None:
    """(common name, organizations) of a verified peer certificate as `ssl` reports it, or None."""
    if not peercert:
        return None
    common_name = ""
    organizations: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                common_name = value
            elif key == "organizationName":
                organizations.append(value)
    return common_name, organizations


def authorize_api_server(request: web.Request) -> bool:
    """Only the API server's kubelet-client certificate (group ``system:masters``) may call the endpoint."""
    transport = request.transport
    identity = peer_groups(transport.get_extra_info("peercert") if transport else None)
    return identity is not None and KUBELET_CLIENT_GROUP in identity[1]
