"""Command line: `kubelite server` (and later `agent`, `token`).  It only wires parts together."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

from aiohttp import web

from kubelite.apiserver.app import ApiServer, ApiServerConfig, Identity, serve
from kubelite.apiserver.auth import certs
from kubelite.apiserver.auth.kubeconfig import render_kubeconfig, write_kubeconfig
from kubelite.storage.interface import Backend
from kubelite.storage.sqlite import SqliteBackend

log = logging.getLogger("kubelite")

DEFAULT_DATA_DIR = "/var/lib/kubelite"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubelite", description="A Kubernetes-compatible orchestrator")
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server", help="run the control plane (API server)")
    server.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="state, certificates and kubeconfig")
    server.add_argument("--bind-address", default="127.0.0.1")
    server.add_argument("--port", type=int, default=6443, help="HTTPS port (0 picks a free one)")
    server.add_argument("--datastore", default="", help="sqlite:///<path> (default: sqlite:///<data-dir>/state.db)")
    server.add_argument("--write-kubeconfig", default="", help="default: <data-dir>/kubeconfig.yaml")
    server.add_argument("--advertise-address", default="", help="address written into the kubeconfig")
    server.add_argument("--tls-san", action="append", default=[], help="extra name or IP for the serving cert")
    server.add_argument("--log-level", default="INFO")
    return parser


def open_backend(datastore: str, data_dir: Path) -> Backend:
    if not datastore:
        datastore = f"sqlite:///{data_dir / 'state.db'}"
    parsed = urlparse(datastore)
    if parsed.scheme == "sqlite":
        path = datastore[len("sqlite://") :]
        return SqliteBackend(path)
    raise SystemExit(f"kubelite: unsupported --datastore {datastore!r} (supported: sqlite:///path)")


def _split_sans(values: list[str]) -> tuple[list[str], list[str]]:
    import ipaddress

    names, ips = [], []
    for value in values:
        try:
            ipaddress.ip_address(value)
            ips.append(value)
        except ValueError:
            names.append(value)
    return names, ips


async def run_server(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    sans = [socket.gethostname(), *args.tls_san]
    if args.bind_address not in ("0.0.0.0", "::"):
        sans.append(args.bind_address)
    if args.advertise_address:
        sans.append(args.advertise_address)
    names, ips = _split_sans(sans)
    pki = certs.ensure_cluster_pki(data_dir / "tls", hostnames=names, ips=ips)

    backend = open_backend(args.datastore, data_dir)
    await backend.start()
    host_for_clients = args.advertise_address or (
        "127.0.0.1" if args.bind_address in ("0.0.0.0", "::") else args.bind_address
    )

    def authenticate(request: web.Request) -> Identity | None:
        transport = request.transport
        peercert = transport.get_extra_info("peercert") if transport else None
        identity = certs.client_identity(peercert) if peercert else None
        return Identity(identity[0], tuple(identity[1])) if identity else None

    server = ApiServer(backend, ApiServerConfig(authenticate=authenticate))
    await server.start()
    runner, port = await serve(server, args.bind_address, args.port, certs.server_ssl_context(pki))
    url = f"https://{_url_host(host_for_clients)}:{port}"
    server.discovery.server_address = f"{_url_host(host_for_clients)}:{port}"
    kubeconfig_path = Path(args.write_kubeconfig or data_dir / "kubeconfig.yaml")
    write_kubeconfig(kubeconfig_path, render_kubeconfig(url, pki.ca_cert_pem, pki.admin_cert_pem, pki.admin_key_pem))
    print(f"kubelite API server listening on {url}", flush=True)
    print(f"export KUBECONFIG={kubeconfig_path}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
    await server.close()
    await backend.close()
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if args.command == "server":
        try:
            import uvloop

            run = uvloop.run
        except ImportError:
            run = asyncio.run
        return run(run_server(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
