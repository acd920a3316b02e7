"""Capture the protobuf request bodies the real kubectl 1.32 sends, as test fixtures.

Why: `kubelite.machinery.protobuf` must decode exactly what kubectl puts on the wire, so its tests
run against bodies recorded from kubectl itself, not against bodies we encoded ourselves.

How: a throwaway aiohttp server on 127.0.0.1 (ephemeral port) that answers just enough for kubectl:
`/version` says 1.32 (so the gcloud dispatcher picks kubectl 1.32.4), legacy discovery (`/api`, `/apis`,
`/api/v1`, `/apis/<group>/<version>`), a Deployment for `kubectl autoscale` to read, and every
create POST, whose body it stores and which it answers with a small JSON object.  For each command the
expected JSON comes from the same command with `--dry-run=client -o json`; the three commands without a
dry-run mode (`create token`, `auth can-i`, `auth whoami`) get the expected object written out below.

Usage (from the repository root)::

    .venv/bin/python scripts/capture_protobuf.py [--kubectl /usr/bin/kubectl] [--out DIR]

It rewrites `tests/unit/fixtures/protobuf/<name>.pb` (request body) and `<name>.json` (expected).
Commands that turn out to send JSON rather than protobuf are reported and get no fixture.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

PROTOBUF = "application/vnd.kubernetes.protobuf"
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]

# group/version -> [(resource, kind, namespaced)]; subresources carry their own group/version.
RESOURCES: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [
        ("namespaces", "Namespace", False),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("resourcequotas", "ResourceQuota", True),
        ("pods", "Pod", True),
        ("nodes", "Node", False),
    ],
    "apps/v1": [("deployments", "Deployment", True)],
    "batch/v1": [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    "rbac.authorization.k8s.io/v1": [
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
    ],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "networking.k8s.io/v1": [("ingresses", "Ingress", True)],
    "scheduling.k8s.io/v1": [("priorityclasses", "PriorityClass", False)],
    "autoscaling/v1": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    "authorization.k8s.io/v1": [("selfsubjectaccessreviews", "SelfSubjectAccessReview", False)],
    "authentication.k8s.io/v1": [("selfsubjectreviews", "SelfSubjectReview", False)],
}
SUBRESOURCES = {
    "v1": [
        ("serviceaccounts/token", "TokenRequest", "authentication.k8s.io", "v1"),
        ("pods/eviction", "Eviction", "policy", "v1"),
    ],
    "apps/v1": [("deployments/scale", "Scale", "autoscaling", "v1")],
}
SHORT_NAMES = {
    "deployments": ["deploy"],
    "horizontalpodautoscalers": ["hpa"],
    "poddisruptionbudgets": ["pdb"],
}


@dataclass
class Command:
    """One kubectl invocation; `dry_run` False means the expected JSON is given in `expected`.

    `protobuf` False marks a command kept only to confirm that kubectl sends it as JSON.
    """

    name: str
    args: list[str]
    dry_run: bool = True
    expected: dict[str, Any] | None = None
    protobuf: bool = True


COMMANDS = [
    Command(
        "deployment", ["create", "deployment", "web", "--image=nginx:1.27", "--replicas=0", "--port=8080"]
    ),
    Command("namespace", ["create", "namespace", "team-a"]),
    Command(
        "configmap",
        ["create", "configmap", "settings", "--from-literal=mode=fast", "--from-literal=empty="],
    ),
    Command(
        "secret",
        [
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=user=admin",
            "--from-literal=password=s3cr3t",
        ],
    ),
    Command("service", ["create", "service", "clusterip", "web", "--tcp=80:8080"]),
    Command("serviceaccount", ["create", "serviceaccount", "builder"]),
    Command("job", ["create", "job", "once", "--image=busybox", "--", "echo", "hello"]),
    Command(
        "cronjob",
        ["create", "cronjob", "nightly", "--image=busybox", "--schedule=0 3 * * *", "--", "date"],
    ),
    Command("role", ["create", "role", "reader", "--verb=get,list", "--resource=pods,deployments.apps"]),
    Command(
        "rolebinding",
        [
            "create",
            "rolebinding",
            "reader",
            "--role=reader",
            "--user=alice",
            "--serviceaccount=default:builder",
        ],
    ),
    Command("clusterrole", ["create", "clusterrole", "viewer", "--verb=get,list", "--resource=nodes"]),
    Command(
        "clusterrolebinding",
        ["create", "clusterrolebinding", "viewer", "--clusterrole=viewer", "--group=ops"],
    ),
    Command("quota", ["create", "quota", "small", "--hard=cpu=1,memory=1Gi,pods=2"]),
    Command("pdb", ["create", "pdb", "web", "--selector=app=web", "--min-available=0"]),
    Command("pdb-percent", ["create", "pdb", "web-pct", "--selector=app=web", "--max-unavailable=50%"]),
    Command(
        "ingress",
        [
            "create",
            "ingress",
            "web",
            "--class=nginx",
            "--rule=example.com/api*=web:80",
            "--rule=secure.example.com/=web:http,tls=web-tls",
            "--annotation=team=a",
        ],
    ),
    Command(
        "priorityclass",
        [
            "create",
            "priorityclass",
            "low",
            "--value=0",
            "--description=low priority",
            "--preemption-policy=Never",
        ],
    ),
    Command("hpa", ["autoscale", "deployment", "web", "--min=2", "--max=5", "--cpu-percent=80"]),
    Command("eviction", ["drain", "node-1", "--grace-period=30", "--timeout=5s"], protobuf=False),
    Command("pod-run", ["run", "probe", "--image=nginx", "--restart=Never", "--port=80"], protobuf=False),
    Command(
        "token",
        ["create", "token", "builder", "--audience=api", "--duration=10m"],
        dry_run=False,
        expected={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {},  # the name and namespace travel in the URL only
            "spec": {"audiences": ["api"], "expirationSeconds": 600},
            "status": {"token": ""},  # json:"token" has no omitempty
        },
    ),
    Command(
        "can-i",
        ["auth", "can-i", "list", "pods", "--namespace=default"],
        dry_run=False,
        expected={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}},
            "status": {"allowed": False},
        },
    ),
    Command(
        "whoami",
        ["auth", "whoami"],
        dry_run=False,
        expected={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview",
            "metadata": {},
            "status": {"userInfo": {}},
        },
    ),
]


@dataclass
class Recorder:
    """What the fake API server saw, per request."""

    bodies: list[tuple[str, str, bytes]] = field(default_factory=list)  # (path, content type, body)


def _group_versions() -> list[str]:
    return [gv for gv in RESOURCES if gv != "v1"]


def _resource_list(group_version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for name, kind, namespaced in RESOURCES.get(group_version, []):
        resources.append(
            {
                "name": name,
                "singularName": kind.lower(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": VERBS,
                "shortNames": SHORT_NAMES.get(name, []),
            }
        )
    for name, kind, group, version in SUBRESOURCES.get(group_version, []):
        resources.append(
            {
                "name": name,
                "singularName": "",
                "namespaced": True,
                "group": group,
                "version": version,
                "kind": kind,
                "verbs": ["create", "get", "update"],
            }
        )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _reply_object(path: str) -> dict[str, Any]:
    """A plausible JSON answer to a create, enough for kubectl to print its one-line summary."""
    if path.endswith("/selfsubjectaccessreviews"):
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "status": {"allowed": True},
        }
    if path.endswith("/selfsubjectreviews"):
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview",
            "status": {"userInfo": {"username": "capture", "groups": ["system:authenticated"]}},
        }
    if path.endswith("/token"):
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "status": {"token": "captured-token", "expirationTimestamp": "2030-01-01T00:00:00Z"},
        }
    parts = path.strip("/").split("/")
    resource = parts[-1]
    group_version = "v1" if parts[0] == "api" else f"{parts[1]}/{parts[2]}"
    namespace = parts[parts.index("namespaces") + 1] if "namespaces" in parts[:-1] else ""
    kind = next(k for r, k, _ in RESOURCES[group_version] if r == resource)
    metadata = {"name": "created", "uid": "00000000-0000-0000-0000-000000000001", "resourceVersion": "1"}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": group_version, "kind": kind, "metadata": metadata}


def _deployment(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "uid": "1", "resourceVersion": "1"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "nginx"}]},
            },
        },
    }


def _node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "uid": "n", "resourceVersion": "1"},
    }


def _pods_on_node() -> dict[str, Any]:
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "r", "controller": True}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1-abc", "namespace": "default", "uid": "p", "ownerReferences": [owner]},
        "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx"}]},
        "status": {"phase": "Running"},
    }
    return {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": [pod]}


def make_app(recorder: Recorder, port_holder: list[int]) -> web.Application:
    async def version(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "major": "1",
                "minor": "32",
                "gitVersion": "v1.32.4+kubelite",
                "gitCommit": "capture",
                "gitTreeState": "clean",
                "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.23.6",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        )

    async def api(_: web.Request) -> web.Response:
        address = f"127.0.0.1:{port_holder[0]}"
        return web.json_response(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
            }
        )

    async def apis(_: web.Request) -> web.Response:
        groups = []
        for group_version in _group_versions():
            group, version = group_version.split("/")
            entry = {"groupVersion": group_version, "version": version}
            groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    async def anything(request: web.Request) -> web.Response:
        path = request.path
        if request.method == "GET":
            if path == "/api/v1":
                return web.json_response(_resource_list("v1"))
            parts = path.strip("/").split("/")
            if parts[0] == "apis" and len(parts) == 3 and f"{parts[1]}/{parts[2]}" in RESOURCES:
                return web.json_response(_resource_list(f"{parts[1]}/{parts[2]}"))
            if "deployments" in parts and len(parts) == 7:
                return web.json_response(_deployment(parts[4], parts[6]))
            if parts[:3] == ["api", "v1", "nodes"] and len(parts) == 4:
                return web.json_response(_node(parts[3]))
            if parts == ["api", "v1", "pods"]:  # kubectl drain lists the pods on the node
                return web.json_response(_pods_on_node())
            return web.json_response(
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}, status=404
            )
        body = await request.read()
        recorder.bodies.append((path, request.headers.get("Content-Type", ""), body))
        if request.method == "PATCH":  # kubectl drain cordons the node first
            return web.json_response(_node(path.rsplit("/", 1)[-1]))
        if path.endswith("/eviction"):
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"}, status=201)
        return web.json_response(_reply_object(path), status=201)

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_get("/api", api)
    app.router.add_get("/apis", apis)
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


async def run_kubectl(kubectl: str, kubeconfig: Path, args: list[str]) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        kubectl,
        f"--kubeconfig={kubeconfig}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    return process.returncode or 0, stdout, stderr


def _with_flags(args: list[str], *flags: str) -> list[str]:
    """Insert flags before a `--` (which starts the container command) so kubectl reads them as flags."""
    if args[0] == "create" and args[1] != "token":  # skip the OpenAPI-backed field validation
        flags = ("--validate=false", *flags)
    cut = args.index("--") if "--" in args else len(args)
    return [*args[:cut], *flags, *args[cut:]]


def _kubeconfig(port: int) -> str:
    context = {"cluster": "c", "user": "u", "namespace": "default"}
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "u", "user": {}}],
            "contexts": [{"name": "x", "context": context}],
            "current-context": "x",
        }
    )


async def capture(kubectl: str, workdir: Path) -> tuple[dict[str, tuple[bytes, Any]], int]:
    """Run every command; return {fixture name: (body, expected object)} and the number of failures."""
    recorder = Recorder()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    runner = web.AppRunner(make_app(recorder, [port]))
    await runner.setup()
    await web.SockSite(runner, sock).start()
    kubeconfig = workdir / "config"
    await asyncio.to_thread(kubeconfig.write_text, _kubeconfig(port))
    captured: dict[str, tuple[bytes, Any]] = {}
    failures = 0
    try:
        for command in COMMANDS:
            recorder.bodies.clear()
            code, _, stderr = await run_kubectl(kubectl, kubeconfig, _with_flags(command.args))
            sent = [b for b in recorder.bodies if b[1].startswith(PROTOBUF)]
            if code == 0 and not command.protobuf:
                print(f"{command.name}: sends {sorted({b[1] for b in recorder.bodies})}, no fixture")
                continue
            if code != 0 or not sent:
                kinds = sorted({content_type for _, content_type, _ in recorder.bodies})
                detail = stderr.decode()[-300:]
                print(f"{command.name}: no protobuf body (exit {code}, bodies {kinds}): {detail}")
                failures += code != 0
                continue
            expected = command.expected
            if command.dry_run:
                dry_run = _with_flags(command.args, "--dry-run=client", "-o", "json")
                code, stdout, stderr = await run_kubectl(kubectl, kubeconfig, dry_run)
                try:
                    expected = json.loads(stdout) if code == 0 else None
                except json.JSONDecodeError:
                    expected = None
                if expected is None:
                    print(f"{command.name}: dry-run gave no JSON: {(stdout + stderr).decode()[-300:]}")
                    failures += 1
                    continue
            captured[command.name] = (sent[-1][2], expected)
            print(f"{command.name}: {len(sent[-1][2])} bytes to {sent[-1][0]}")
    finally:
        await runner.cleanup()
    return captured, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubectl", default="/usr/bin/kubectl")
    parser.add_argument("--out", type=Path, default=Path("tests/unit/fixtures/protobuf"))
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        captured, failures = asyncio.run(capture(options.kubectl, Path(tmp)))
    options.out.mkdir(parents=True, exist_ok=True)
    for name, (data, expected) in captured.items():
        (options.out / f"{name}.pb").write_bytes(data)
        (options.out / f"{name}.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
