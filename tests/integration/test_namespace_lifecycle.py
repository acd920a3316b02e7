"""The namespace lifecycle controllers in this process against a real `kubelite server` (its own
controllers and agent off), driven by the real kubectl: a new namespace gets its `default`
ServiceAccount and `kube-root-ca.crt`; `kubectl delete namespace` empties it and then it goes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.client import HttpClient, builtin
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.kubeconfig import load_kubeconfig
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.namespace import NamespaceController
from kubelite.controllers.rootca import DESCRIPTION, RootCACertPublisher
from kubelite.controllers.serviceaccount import ServiceAccountController
from kubelite.machinery.errors import ApiError
from kubelite.testing.cluster import eventually, kubectl_async
from kubelite.testing.server import ServerProcess

NAMESPACES = builtin("", "namespaces")
SERVICE_ACCOUNTS = builtin("", "serviceaccounts")
CONFIG_MAPS = builtin("", "configmaps")
SECRETS = builtin("", "secrets")
SERVICES = builtin("", "services")
DEPLOYMENTS = builtin("apps", "deployments")
PODS = builtin("", "pods")

CONTENT = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: test}
---
apiVersion: v1
kind: Secret
metadata: {name: token}
stringData: {key: value}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: loose, labels: {app: web}}
spec:
  containers: [{name: c, image: busybox}]
"""


@pytest.fixture(scope="module")
def lifecycle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--disable-agent", "--disable-controllers"]
    process = ServerProcess(Path(tmp_path_factory.mktemp("kubelite-ns")), extra_args=args).start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.asynccontextmanager
async def controllers(server: ServerProcess) -> AsyncIterator[HttpClient]:
    """The three controllers on one informer factory, as the controller manager runs them."""
    ca = load_kubeconfig(server.kubeconfig).certificate_authority_data
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        factory = SharedInformerFactory(client)
        recorders = [EventRecorder(client, name) for name in ("namespace", "serviceaccount", "root-ca")]
        built = [
            NamespaceController(ControllerContext(client, factory, recorders[0]), deletion_grace_seconds=0.5),
            ServiceAccountController(ControllerContext(client, factory, recorders[1])),
            RootCACertPublisher(ControllerContext(client, factory, recorders[2]), ca_pem=ca),
        ]
        async with asyncio.TaskGroup() as tasks:
            started = [tasks.create_task(factory.run())]
            started += [tasks.create_task(r.run()) for r in recorders]
            started += [tasks.create_task(c.run()) for c in built]
            try:
                await factory.wait_for_sync()
                yield client
            finally:
                for task in started:
                    task.cancel()


async def fetch(client: HttpClient, resource: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    try:
        return await client.get(resource, name, namespace)
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise


async def namespace_gone(server: ServerProcess, name: str) -> bool:
    result = await kubectl_async(server, "get", "namespace", name, "-o", "name", check=False)
    return result.returncode != 0 and "NotFound" in result.stderr


async def test_new_namespace_gets_default_service_account_and_root_ca(lifecycle_server: ServerProcess) -> None:
    async with controllers(lifecycle_server) as client:
        await kubectl_async(lifecycle_server, "create", "namespace", "fresh")
        account = await eventually(lambda: fetch(client, SERVICE_ACCOUNTS, "default", "fresh"))
        assert account["metadata"]["namespace"] == "fresh"
        cm = await eventually(lambda: fetch(client, CONFIG_MAPS, "kube-root-ca.crt", "fresh"))
        ca = load_kubeconfig(lifecycle_server.kubeconfig).certificate_authority_data
        assert ca is not None and cm["data"] == {"ca.crt": ca.decode()}
        assert cm["metadata"]["annotations"]["kubernetes.io/description"] == DESCRIPTION

        await kubectl_async(lifecycle_server, "delete", "serviceaccount", "default", "-n", "fresh")
        await kubectl_async(lifecycle_server, "delete", "configmap", "kube-root-ca.crt", "-n", "fresh")

        async def replaced(resource: Any, name: str, old: dict[str, Any]) -> bool:
            found = await fetch(client, resource, name, "fresh")
            return bool(found and found["metadata"]["uid"] != old["metadata"]["uid"])

        await eventually(lambda: replaced(SERVICE_ACCOUNTS, "default", account))
        await eventually(lambda: replaced(CONFIG_MAPS, "kube-root-ca.crt", cm))


async def test_kubectl_delete_namespace_removes_its_objects_then_the_namespace(
    lifecycle_server: ServerProcess,
) -> None:
    async with controllers(lifecycle_server) as client:
        await kubectl_async(lifecycle_server, "create", "namespace", "doomed")
        await kubectl_async(lifecycle_server, "create", "namespace", "bystander")
        for ns in ("doomed", "bystander"):
            await kubectl_async(lifecycle_server, "apply", "-n", ns, "-f", "-", input=CONTENT)
        await eventually(lambda: fetch(client, SERVICE_ACCOUNTS, "default", "doomed"))

        out = await kubectl_async(lifecycle_server, "delete", "namespace", "doomed", "--wait=false")
        assert 'namespace "doomed" deleted' in out.stdout
        await eventually(lambda: namespace_gone(lifecycle_server, "doomed"), every=0.25)

        for resource in (CONFIG_MAPS, SECRETS, SERVICES, DEPLOYMENTS, PODS, SERVICE_ACCOUNTS):
            assert (await client.list(resource, "doomed"))["items"] == [], resource.plural
        assert await fetch(client, CONFIG_MAPS, "settings", "bystander") is not None
        assert await fetch(client, PODS, "loose", "bystander") is not None
        # a namespace of the same name starts empty
        await kubectl_async(lifecycle_server, "create", "namespace", "doomed")
        assert await fetch(client, CONFIG_MAPS, "settings", "doomed") is None


async def test_foreign_finalizers_hold_the_namespace_with_upstream_conditions(
    lifecycle_server: ServerProcess,
) -> None:
    async with controllers(lifecycle_server) as client:
        await kubectl_async(lifecycle_server, "create", "namespace", "held")
        held = {"metadata": {"name": "held-cm", "finalizers": ["example.com/hold"]}, "data": {"a": "b"}}
        await client.create(CONFIG_MAPS, held, "held")
        await kubectl_async(lifecycle_server, "delete", "namespace", "held", "--wait=false")

        async def conditions() -> dict[str, dict[str, Any]] | None:
            out = await kubectl_async(lifecycle_server, "get", "namespace", "held", "-o", "json")
            status = json.loads(out.stdout)["status"]
            found = {c["type"]: c for c in status.get("conditions") or ()}
            remaining = found.get("NamespaceFinalizersRemaining")
            return found if remaining and remaining["status"] == "True" else None

        found = await eventually(conditions, every=0.25)
        assert found["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
        assert found["NamespaceContentRemaining"]["message"] == (
            "Some resources are remaining: configmaps. has 1 resource instances"
        )
        assert found["NamespaceFinalizersRemaining"]["message"] == (
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        )
        assert found["NamespaceDeletionContentFailure"]["status"] == "False"
        table = (await kubectl_async(lifecycle_server, "get", "namespace", "held")).stdout
        assert "Terminating" in table

        await kubectl_async(
            lifecycle_server, "patch", "configmap", "held-cm", "-n", "held", "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}',
        )  # fmt: skip
        # the controller looks again at most 15/2+1 s after it found the finalizer
        await eventually(lambda: namespace_gone(lifecycle_server, "held"), every=0.25)
