"""Command line: `kubelite server`, `agent` and `token`.  It only parses flags and wires parts together."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import re
import signal
import socket
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from kubelite.agent.cleanup import IDENTITY_FILE, cleanup_node
from kubelite.agent.join import JoinError, format_join_token, join, parse_join_token
from kubelite.apiserver.app import ApiServer, ApiServerConfig, Identity, serve
from kubelite.apiserver.auth import bootstrap, certs
from kubelite.apiserver.auth.kubeconfig import render_kubeconfig, write_kubeconfig
from kubelite.apiserver.auth.serviceaccounts import ServiceAccountKeys
from kubelite.apiserver.prommetrics import component_registry
from kubelite.client.errors import TransportError
from kubelite.client.http import HttpClient
from kubelite.client.interface import builtin
from kubelite.components import (
    NodeOptions,
    default_node_ip,
    default_node_name,
    kubelet_client_ssl_context,
    run_controller_manager,
    run_embedded_agent,
    run_joined_agent,
    run_scheduler,
)
from kubelite.controllers.manager import ControllerOptions
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import parse_time
from kubelite.machinery.network import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_CLUSTER_DOMAIN,
    DEFAULT_NODE_CIDR_MASK,
    DEFAULT_SERVICE_CIDR,
    ClusterNetwork,
    parse_port_range,
)
from kubelite.storage.interface import Backend
from kubelite.storage.sqlite import SqliteBackend

log = logging.getLogger("kubelite")

DEFAULT_DATA_DIR = "/var/lib/kubelite"
DEFAULT_AGENT_DATA_DIR = "/var/lib/kubelite-agent"


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
    server.add_argument("--disable-scheduler", action="store_true", help="do not run the scheduler")
    server.add_argument(
        "--disable-controllers", action="store_true", help="do not run the controller manager (workload controllers)"
    )
    server.add_argument("--disable-agent", action="store_true", help="do not run a node agent on this machine")
    network = server.add_argument_group("cluster network (published to every node)")
    network.add_argument("--cluster-cidr", default=DEFAULT_CLUSTER_CIDR, help="pod addresses, split per node")
    network.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR, help="ClusterIP addresses")
    network.add_argument("--node-cidr-mask-size", type=int, default=DEFAULT_NODE_CIDR_MASK)
    network.add_argument("--cluster-dns", default="", help="the kube-dns ClusterIP (default: service CIDR + 10)")
    network.add_argument("--cluster-domain", default=DEFAULT_CLUSTER_DOMAIN)
    network.add_argument("--service-node-port-range", default="30000-32767")
    healing = server.add_argument_group("auto-healing and auto-scaling")
    healing.add_argument(
        "--node-monitor-grace-period", type=float, default=40.0, help="seconds without a heartbeat before Unknown"
    )
    healing.add_argument("--default-not-ready-toleration-seconds", type=int, default=300)
    healing.add_argument("--default-unreachable-toleration-seconds", type=int, default=300)
    healing.add_argument("--metrics-resolution", type=float, default=15.0, help="seconds between metrics scrapes")
    server.add_argument(
        "--default-local-storage-path",
        default="/var/lib/kubelite/storage",
        help="where the local-path provisioner keeps claims' data on each node",
    )
    healing.add_argument("--hpa-sync-period", type=float, default=15.0, help="seconds between autoscaler syncs")
    _add_node_arguments(server)

    agent = commands.add_parser("agent", help="run a node agent that joins a server")
    agent.add_argument("--server", required=True, help="the API server, https://HOST:PORT")
    agent.add_argument("--token", default="", help="join token from `kubelite token create` (first start only)")
    agent.add_argument("--data-dir", default=DEFAULT_AGENT_DATA_DIR, help="credentials, pods' state and logs")
    agent.add_argument("--log-level", default="INFO")
    _add_node_arguments(agent)

    cleanup = commands.add_parser(
        "cleanup", help="stop every pod a stopped node agent left running and remove their namespaces and cgroups"
    )
    cleanup.add_argument(
        "--data-dir", default=DEFAULT_AGENT_DATA_DIR, help="the agent's data dir (a server's: its embedded agent's)"
    )
    cleanup.add_argument("--log-level", default="INFO")

    token = commands.add_parser("token", help="manage the join tokens of `kubelite agent --token`")
    token.set_defaults(log_level="WARNING")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="create a join token and print it")
    create.add_argument("--ttl", default="24h", help="lifetime, e.g. 24h, 1h30m, 0 for never expiring")
    create.add_argument("--description", default="", help="a note shown by `kubelite token list`")
    token_commands.add_parser("list", help="list join tokens")
    delete = token_commands.add_parser("delete", help="revoke a join token (joined nodes keep working)")
    delete.add_argument("token_id", help="the token's id (the 6 characters after ::), or the whole token")
    for sub in token_commands.choices.values():
        sub.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="the server's data dir (admin kubeconfig)")
    return parser


def _add_node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node-name", default="", help="default: this machine's hostname")
    parser.add_argument("--node-ip", default="", help="default: the address of the default route's interface")
    parser.add_argument("--node-label", action="append", default=[], help="KEY=VALUE, repeatable")
    parser.add_argument("--kubelet-port", type=int, default=10250, help="the agent's HTTPS port (0 picks a free one)")
    parser.add_argument("--kubelet-bind-address", default="0.0.0.0")
    parser.add_argument("--max-pods", type=int, default=110, help="pods this node accepts (the node's pods capacity)")
    parser.add_argument(
        "--pod-network",
        choices=("auto", "bridge", "host"),
        default="auto",
        help="bridge: a network namespace and address per pod (root); host: pods share the node's network; "
        "auto: bridge when possible",
    )
    parser.add_argument(
        "--proxy-mode",
        choices=("auto", "nftables", "userspace"),
        default="auto",
        help="how Services are routed on this node (auto: nftables when possible)",
    )
    parser.add_argument(
        "--sync-frequency",
        type=float,
        default=60.0,
        help="seconds between refreshes of mounted ConfigMaps, Secrets and downward API files",
    )


def node_options(args: argparse.Namespace, data_dir: Path) -> NodeOptions:
    labels = {}
    for item in args.node_label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"kubelite: --node-label wants KEY=VALUE, got {item!r}")
        labels[key] = value
    return NodeOptions(
        node_name=(args.node_name or default_node_name()).lower(),
        node_ip=args.node_ip or default_node_ip(),
        data_dir=data_dir,
        kubelet_port=args.kubelet_port,
        kubelet_bind_address=args.kubelet_bind_address,
        labels=labels,
        max_pods=args.max_pods,
        pod_network_mode=args.pod_network,
        proxy_mode=args.proxy_mode,
        sync_frequency=args.sync_frequency,
    )


def cluster_network(args: argparse.Namespace) -> ClusterNetwork:
    try:
        low, high = parse_port_range(args.service_node_port_range)
        return ClusterNetwork(
            cluster_cidr=args.cluster_cidr,
            service_cidr=args.service_cidr,
            node_cidr_mask=args.node_cidr_mask_size,
            cluster_domain=args.cluster_domain,
            cluster_dns=args.cluster_dns,
            node_port_min=low,
            node_port_max=high,
        )
    except ValueError as exc:
        raise SystemExit(f"kubelite: {exc}") from exc


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
    # joining agents reach the server at this machine's address: the serving certificate must name it
    sans.append(args.node_ip or default_node_ip())
    names, ips = _split_sans(sans)
    pki = certs.ensure_cluster_pki(data_dir / "tls", hostnames=names, ips=ips)

    backend = open_backend(args.datastore, data_dir)
    await backend.start()
    host_for_clients = args.advertise_address or (
        "127.0.0.1" if args.bind_address in ("0.0.0.0", "::") else args.bind_address
    )

    token_secrets = bootstrap.ServerSecrets()
    network = cluster_network(args)

    def authenticate(request: web.Request) -> Identity | None:
        transport = request.transport
        peercert = transport.get_extra_info("peercert") if transport else None
        identity = certs.client_identity(peercert) if peercert else None
        if identity:
            return Identity(identity[0], tuple(identity[1]))
        found = server.handlers.token_issuer.authenticate(request.headers.get("Authorization"))
        if found is not None:
            return Identity(found[0], tuple(found[1]))
        return bootstrap.authenticate_bootstrap_token(token_secrets, request.headers.get("Authorization"))

    # one registry for the API server and the controller manager in this process: both on its /metrics
    prometheus_registry = component_registry()
    server = ApiServer(
        backend,
        ApiServerConfig(
            prometheus_registry=prometheus_registry,
            authenticate=authenticate,
            kubelet_ssl_context=kubelet_client_ssl_context(pki),
            extra_routes=[bootstrap.join_routes(token_secrets, pki)],
            network=network,
            advertise_address=args.advertise_address or args.node_ip or "",
            metrics_resolution=args.metrics_resolution,
            default_not_ready_toleration_seconds=args.default_not_ready_toleration_seconds,
            default_unreachable_toleration_seconds=args.default_unreachable_toleration_seconds,
            service_account_keys=ServiceAccountKeys.load_or_create(data_dir / "tls" / "service-account.key"),
            default_local_storage_path=args.default_local_storage_path,
        ),
    )
    token_secrets.bind(server)
    await server.start()
    runner, port = await serve(server, args.bind_address, args.port, certs.server_ssl_context(pki))
    url = f"https://{_url_host(host_for_clients)}:{port}"
    server.discovery.server_address = f"{_url_host(host_for_clients)}:{port}"
    kubeconfig_path = Path(args.write_kubeconfig or data_dir / "kubeconfig.yaml")
    write_kubeconfig(kubeconfig_path, render_kubeconfig(url, pki.ca_cert_pem, pki.admin_cert_pem, pki.admin_key_pem))
    print(f"kubelite API server listening on {url}", flush=True)
    print(f"export KUBECONFIG={kubeconfig_path}", flush=True)

    loopback_url = f"https://{_url_host(_loopback(args.bind_address))}:{port}"
    components: list[Coroutine[Any, Any, None]] = []
    if not args.disable_controllers:
        controller_options = ControllerOptions(
            network=network,
            node_monitor_grace_period=args.node_monitor_grace_period,
            hpa_sync_period=args.hpa_sync_period,
            prometheus_registry=prometheus_registry,
        )
        components.append(run_controller_manager(loopback_url, pki, controller_options))
    if not args.disable_scheduler:
        components.append(run_scheduler(loopback_url, pki))
    if not args.disable_agent:
        components.append(run_embedded_agent(loopback_url, pki, node_options(args, data_dir / "agent")))
    healthy = await _run_until_signalled(components)
    log.info("shutting down")
    await runner.cleanup()
    await server.close()
    await backend.close()
    return 0 if healthy else 1


async def _run_until_signalled(components: list[Coroutine[Any, Any, None]]) -> bool:
    """Run `components` until SIGINT/SIGTERM or until one of them fails; then cancel the rest and wait
    for their shutdown (the agent stops its pods).  False if a component failed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(component) for component in components]
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in [waiter, *tasks]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = False
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            log.error("component failed", exc_info=result)
            failed = True
    return not failed


async def run_agent(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    options = node_options(args, data_dir)
    if not (data_dir / "kubeconfig.yaml").exists():
        if not args.token:
            raise SystemExit("kubelite agent: --token is needed to join (run `kubelite token create` on the server)")
        try:
            await join(
                args.server, args.token, node_name=options.node_name, node_ips=[options.node_ip], data_dir=data_dir
            )
        except JoinError as exc:
            print(f"kubelite agent: {exc}", file=sys.stderr, flush=True)
            return 1

    def ready() -> None:
        print(f"kubelite agent {options.node_name} ready", flush=True)

    return 0 if await _run_until_signalled([run_joined_agent(options, ready)]) else 1


async def run_cleanup(args: argparse.Namespace) -> int:
    """`kubelite cleanup`: what `kubelite agent`/`server` leave running on purpose when they stop (decision 0008)."""
    data_dir = Path(args.data_dir).resolve()
    if not (data_dir / IDENTITY_FILE).exists() and (data_dir / "agent" / IDENTITY_FILE).exists():
        data_dir = data_dir / "agent"  # a server's data dir: its embedded agent
    report = await cleanup_node(data_dir)
    print(
        f"removed {report.containers} containers in {report.sandboxes} pods and "
        f"{len(report.pod_networks)} pod networks under {data_dir}",
        flush=True,
    )
    return 0


SECRETS = builtin("", "secrets")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


async def run_token(args: argparse.Namespace) -> int:
    """`kubelite token create|list|delete`: bootstrap-token Secrets through the admin kubeconfig."""
    data_dir = Path(args.data_dir)
    kubeconfig = data_dir / "kubeconfig.yaml"
    if not kubeconfig.exists():
        raise SystemExit(f"kubelite token: no admin kubeconfig at {kubeconfig}; run it on the server (--data-dir)")
    async with HttpClient.from_kubeconfig(kubeconfig) as client:
        try:
            if args.token_command == "create":
                ttl = _parse_ttl(args.ttl)
                ca_pem = client.config.certificate_authority_data or (data_dir / "tls" / "ca.crt").read_bytes()
                token_id, token_secret = bootstrap.generate_token()
                secret = bootstrap.bootstrap_token_secret(token_id, token_secret, ttl=ttl, description=args.description)
                await client.create(SECRETS, secret, bootstrap.TOKEN_NAMESPACE)
                print(format_join_token(ca_pem, token_id, token_secret), flush=True)
            elif args.token_command == "list":
                found = await client.list(SECRETS, bootstrap.TOKEN_NAMESPACE)
                _print_tokens([s for s in found.get("items") or () if s.get("type") == bootstrap.SECRET_TYPE])
            else:
                token_id = _token_id(args.token_id)
                await client.delete(SECRETS, bootstrap.secret_name(token_id), bootstrap.TOKEN_NAMESPACE)
                print(f'bootstrap token "{token_id}" deleted', flush=True)
        except (ApiError, TransportError) as exc:
            if isinstance(exc, ApiError) and exc.code == 404 and args.token_command == "delete":
                print(f'kubelite token: bootstrap token "{_token_id(args.token_id)}" not found', file=sys.stderr)
            else:
                print(f"kubelite token: {exc}", file=sys.stderr)
            return 1
    return 0


def _parse_ttl(text: str) -> datetime.timedelta | None:
    match = _DURATION.match(text.strip())
    if text.strip() == "0":
        return None
    if not text.strip() or match is None:
        raise SystemExit(f"kubelite token: --ttl wants a duration such as 24h, 90m or 1h30m (0: never), got {text!r}")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds) or None


def _token_id(text: str) -> str:
    """The id in a bare id, an `<id>.<secret>` token or a whole K10 join token."""
    text = text.strip()
    if text.startswith("K10"):
        try:
            return parse_join_token(text).token_id
        except JoinError as exc:
            raise SystemExit(f"kubelite token: {exc}") from exc
    token_id = text.partition(".")[0]
    if not bootstrap.TOKEN_ID_RE.match(token_id):
        raise SystemExit(f"kubelite token: {text!r} is not a token id ([a-z0-9]{{6}})")
    return token_id


def _print_tokens(secrets: list[dict[str, Any]]) -> None:
    now = datetime.datetime.now(datetime.UTC)
    rows = [("ID", "TTL", "EXPIRES", "DESCRIPTION")]
    for secret in secrets:
        data = bootstrap.secret_data(secret)
        expires, ttl = data.get("expiration", ""), "<forever>"
        if expires:
            try:
                left = parse_time(expires) - now
                ttl = "<invalid>" if left.total_seconds() <= 0 else _format_ttl(left)
            except ValueError:
                ttl = "<invalid>"
        rows.append((data.get("token-id", "?"), ttl, expires or "<never>", data.get("description", "")))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "   " + row[3])


def _format_ttl(left: datetime.timedelta) -> str:
    seconds = int(left.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    if seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _loopback(bind_address: str) -> str:
    if bind_address in ("0.0.0.0", ""):
        return "127.0.0.1"
    if bind_address == "::":
        return "::1"
    return bind_address


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    if args.command == "server":
        return run(run_server(args))
    if args.command == "agent":
        return run(run_agent(args))
    if args.command == "token":
        return run(run_token(args))
    if args.command == "cleanup":
        return run(run_cleanup(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
