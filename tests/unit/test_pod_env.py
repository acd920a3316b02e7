"""Container environments and command lines as the kubelet builds them (kubelite.agent.pods.env)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kubelite.agent.pods.env import (
    DEFAULT_PATH,
    EnvError,
    container_env,
    expand,
    expand_command,
    mapping_for,
    service_env,
)
from kubelite.client.interface import builtin
from kubelite.testing.fake_client import FakeClient

CONFIGMAPS = builtin("", "configmaps")
SECRETS = builtin("", "secrets")
ALLOCATABLE = {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi"}


def make_pod(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web-0",
            "namespace": "shop",
            "uid": "u-123",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"note": 'say "hi"'},
        },
        "spec": {"nodeName": "node-a", "serviceAccountName": "builder", "containers": [container], **spec},
    }


def service(name: str, namespace: str, ip: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"clusterIP": ip, "ports": ports}}


KUBERNETES = service("kubernetes", "default", "10.96.0.1", [{"name": "https", "port": 443, "protocol": "TCP"}])


async def env_of(
    container: dict[str, Any],
    client: FakeClient | None = None,
    services: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, str]:
    return await container_env(
        client or FakeClient(),
        make_pod(container, **spec),
        container,
        node_name="node-a",
        node_ip="192.168.1.5",
        pod_ip="10.244.0.7",
        services=services or [],
        node_allocatable=ALLOCATABLE,
    )


@pytest.fixture
async def client() -> FakeClient:
    fake = FakeClient()
    await fake.create(CONFIGMAPS, {"metadata": {"name": "cfg", "namespace": "shop"}, "data": {"A": "1", "B": "2"}})
    secret = {"user": base64.b64encode(b"admin").decode(), "pass": base64.b64encode(b"s3cr=t").decode()}
    await fake.create(SECRETS, {"metadata": {"name": "creds", "namespace": "shop"}, "data": secret})
    return fake


# -- expansion --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(VAR)", "value"),
        ("pre-$(VAR)-post", "pre-value-post"),
        ("$(VAR)$(VAR)", "valuevalue"),
        ("$$(VAR)", "$(VAR)"),
        ("$$$(VAR)", "$value"),
        ("$$$$(VAR)", "$$(VAR)"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("$(EMPTY)x", "x"),
        ("$(VAR", "$(VAR"),
        ("$VAR", "$VAR"),
        ("$", "$"),
        ("x$", "x$"),
        ("$()", "$()"),
        ("(VAR)", "(VAR)"),
        ("$(VAR)$", "value$"),
        ("a $ b", "a $ b"),
    ],
)
def test_expand_follows_upstream_rules(text: str, expected: str) -> None:
    assert expand(text, mapping_for({"VAR": "value", "EMPTY": ""})) == expected


def test_mapping_prefers_the_first_context() -> None:
    lookup = mapping_for({"A": "declared"}, {"A": "service", "B": "service"})
    assert (lookup("A"), lookup("B"), lookup("C")) == ("declared", "service", "$(C)")


# -- service links ----------------------------------------------------------------------------------


def test_service_env_names_and_values_for_named_and_unnamed_ports() -> None:
    ports = [{"port": 80, "protocol": "TCP"}, {"name": "metrics-http", "port": 9090, "protocol": "UDP"}]
    env = service_env("shop", [service("my-db", "shop", "10.0.0.11", ports)], enable_service_links=True)
    assert env == {
        "MY_DB_SERVICE_HOST": "10.0.0.11",
        "MY_DB_SERVICE_PORT": "80",
        "MY_DB_SERVICE_PORT_METRICS_HTTP": "9090",
        "MY_DB_PORT": "tcp://10.0.0.11:80",
        "MY_DB_PORT_80_TCP": "tcp://10.0.0.11:80",
        "MY_DB_PORT_80_TCP_PROTO": "tcp",
        "MY_DB_PORT_80_TCP_PORT": "80",
        "MY_DB_PORT_80_TCP_ADDR": "10.0.0.11",
        "MY_DB_PORT_9090_UDP": "udp://10.0.0.11:9090",
        "MY_DB_PORT_9090_UDP_PROTO": "udp",
        "MY_DB_PORT_9090_UDP_PORT": "9090",
        "MY_DB_PORT_9090_UDP_ADDR": "10.0.0.11",
    }


def test_service_env_brackets_ipv6_and_defaults_protocol_to_tcp() -> None:
    env = service_env("shop", [service("v6", "shop", "fd00::1", [{"port": 53}])], enable_service_links=True)
    assert env["V6_PORT"] == "tcp://[fd00::1]:53"
    assert env["V6_PORT_53_TCP_ADDR"] == "fd00::1"


def test_service_env_skips_headless_other_namespaces_and_keeps_kubernetes_without_links() -> None:
    services = [
        KUBERNETES,
        service("headless", "shop", "None", [{"port": 80}]),
        service("external", "shop", "", [{"port": 80}]),
        service("elsewhere", "other", "10.0.0.9", [{"port": 80}]),
        service("cart", "shop", "10.0.0.12", [{"port": 8080}]),
    ]
    linked = service_env("shop", services, enable_service_links=True)
    assert {k.split("_")[0] for k in linked} == {"KUBERNETES", "CART"}
    unlinked = service_env("shop", services, enable_service_links=False)
    assert unlinked["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert unlinked["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert not any(k.startswith("CART") for k in unlinked)


def test_a_namespace_service_named_kubernetes_wins_over_default() -> None:
    own = service("kubernetes", "shop", "10.0.0.99", [{"port": 1}])
    for order in ([KUBERNETES, own], [own, KUBERNETES]):
        assert service_env("shop", order, enable_service_links=True)["KUBERNETES_SERVICE_HOST"] == "10.0.0.99"


async def test_container_env_has_service_links_unless_disabled() -> None:
    services = [KUBERNETES, service("cart", "shop", "10.0.0.12", [{"port": 8080}])]
    env = await env_of({"name": "c"}, services=services)
    assert env["CART_SERVICE_HOST"] == "10.0.0.12"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    env = await env_of({"name": "c"}, services=services, enableServiceLinks=False)
    assert "CART_SERVICE_HOST" not in env
    assert env["KUBERNETES_SERVICE_PORT"] == "443"


# -- defaults, envFrom, env -------------------------------------------------------------------------


async def test_default_path_and_hostname() -> None:
    env = await env_of({"name": "c"})
    assert env == {"PATH": DEFAULT_PATH, "HOSTNAME": "web-0"}
    env = await env_of({"name": "c", "env": [{"name": "PATH", "value": "/opt/bin"}]}, hostname="custom")
    assert env["PATH"] == "/opt/bin"
    assert env["HOSTNAME"] == "custom"


async def test_long_pod_names_are_cut_to_a_valid_hostname() -> None:
    container = {"name": "c"}
    pod = make_pod(container)
    pod["metadata"]["name"] = "a" * 62 + "-b"
    env = await container_env(
        FakeClient(), pod, container, node_name="n", node_ip="1.1.1.1", pod_ip="2.2.2.2", services=[]
    )
    assert env["HOSTNAME"] == "a" * 62


async def test_env_from_configmap_and_secret_with_prefix(client: FakeClient) -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "creds"}}],
    }
    env = await env_of(container, client)
    assert env["CFG_A"] == "1"
    assert env["CFG_B"] == "2"
    assert env["user"] == "admin"
    assert env["pass"] == "s3cr=t"


async def test_env_overrides_env_from_and_service_links(client: FakeClient) -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}}],
        "env": [{"name": "A", "value": "mine"}, {"name": "CART_SERVICE_HOST", "value": "override"}],
    }
    env = await env_of(container, client, services=[service("cart", "shop", "10.0.0.12", [{"port": 80}])])
    assert env["A"] == "mine"
    assert env["B"] == "2"
    assert env["CART_SERVICE_HOST"] == "override"
    assert env["CART_SERVICE_PORT"] == "80"


async def test_env_values_expand_against_earlier_vars_env_from_and_services(client: FakeClient) -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}}],
        "env": [
            {"name": "LATER_REF", "value": "$(FIRST)"},
            {"name": "FIRST", "value": "one"},
            {"name": "SECOND", "value": "$(FIRST)-$(A)-$(CART_SERVICE_HOST)"},
            {"name": "ESCAPED", "value": "$$(FIRST)"},
            {"name": "UNKNOWN", "value": "$(NOPE)"},
            {"name": "EMPTY"},
        ],
    }
    env = await env_of(container, client, services=[service("cart", "shop", "10.0.0.12", [{"port": 80}])])
    assert env["LATER_REF"] == "$(FIRST)"
    assert env["SECOND"] == "one-1-10.0.0.12"
    assert env["ESCAPED"] == "$(FIRST)"
    assert env["UNKNOWN"] == "$(NOPE)"
    assert env["EMPTY"] == ""


async def test_key_refs_read_configmaps_and_decode_secrets(client: FakeClient) -> None:
    container = {
        "name": "c",
        "env": [
            {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "B"}}},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
        ],
    }
    env = await env_of(container, client)
    assert (env["FROM_CM"], env["FROM_SECRET"]) == ("2", "admin")
    gets = [a for a in client.actions if a.verb == "get"]
    assert [(a.resource, a.namespace, a.name) for a in gets] == [
        ("configmaps", "shop", "cfg"),
        ("secrets", "shop", "creds"),
    ]


@pytest.mark.parametrize(
    ("container", "message"),
    [
        ({"envFrom": [{"configMapRef": {"name": "missing"}}]}, 'configmap "missing" not found'),
        ({"envFrom": [{"secretRef": {"name": "missing"}}]}, 'secret "missing" not found'),
        (
            {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k"}}}]},
            'configmap "missing" not found',
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]},
            "couldn't find key k in ConfigMap shop/cfg",
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}]},
            "couldn't find key k in Secret shop/creds",
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]},
            'secret "nope" not found',
        ),
    ],
)
async def test_missing_sources_fail_with_the_kubelets_message(
    client: FakeClient, container: dict[str, Any], message: str
) -> None:
    with pytest.raises(EnvError) as caught:
        await env_of({"name": "c", **container}, client)
    assert caught.value.reason == "CreateContainerConfigError"
    assert caught.value.message == message


async def test_optional_sources_that_are_missing_are_left_out(client: FakeClient) -> None:
    container = {
        "name": "c",
        "envFrom": [
            {"configMapRef": {"name": "missing", "optional": True}},
            {"secretRef": {"name": "x", "optional": True}},
        ],
        "env": [
            {"name": "NO_CM", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k", "optional": True}}},
            {"name": "NO_KEY", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k", "optional": True}}},
            {"name": "NO_SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k", "optional": True}}},
            {"name": "KEPT", "value": "yes"},
        ],
    }
    env = await env_of(container, client)
    assert env["KEPT"] == "yes"
    assert not {"NO_CM", "NO_KEY", "NO_SECRET_KEY"} & set(env)


async def test_env_from_keys_that_are_not_c_identifiers_are_kept(client: FakeClient) -> None:
    await client.create(CONFIGMAPS, {"metadata": {"name": "files", "namespace": "shop"}, "data": {"app.conf": "x"}})
    env = await env_of({"name": "c", "envFrom": [{"configMapRef": {"name": "files"}}]}, client)
    assert env["app.conf"] == "x"


# -- downward API -----------------------------------------------------------------------------------


def field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


async def test_field_refs() -> None:
    paths = {
        "metadata.name": "web-0",
        "metadata.namespace": "shop",
        "metadata.uid": "u-123",
        "metadata.labels['app']": "web",
        "metadata.labels['missing']": "",
        "metadata.annotations['note']": 'say "hi"',
        "metadata.labels": 'app="web"\ntier="front"',
        "spec.nodeName": "node-a",
        "spec.serviceAccountName": "builder",
        "status.hostIP": "192.168.1.5",
        "status.hostIPs": "192.168.1.5",
        "status.podIP": "10.244.0.7",
        "status.podIPs": "10.244.0.7",
    }
    container = {"name": "c", "env": [field(f"V{i}", path) for i, path in enumerate(paths)]}
    env = await env_of(container)
    assert [env[f"V{i}"] for i in range(len(paths))] == list(paths.values())


async def test_unsupported_field_ref_fails() -> None:
    with pytest.raises(EnvError) as caught:
        await env_of({"name": "c", "env": [field("X", "spec.bogus")]})
    assert caught.value.message == "unsupported fieldPath: spec.bogus"


def resource(name: str, res: str, divisor: str | None = None, container: str | None = None) -> dict[str, Any]:
    selector: dict[str, Any] = {"resource": res}
    if divisor is not None:
        selector["divisor"] = divisor
    if container is not None:
        selector["containerName"] = container
    return {"name": name, "valueFrom": {"resourceFieldRef": selector}}


async def test_resource_field_refs_round_up_with_divisors() -> None:
    container = {
        "name": "c",
        "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}, "requests": {"cpu": "100m", "memory": "1000"}},
        "env": [
            resource("CPU_LIMIT", "limits.cpu"),
            resource("CPU_LIMIT_M", "limits.cpu", "1m"),
            resource("CPU_REQUEST_M", "requests.cpu", "1m"),
            resource("MEM_LIMIT", "limits.memory"),
            resource("MEM_LIMIT_MI", "limits.memory", "1Mi"),
            resource("MEM_REQUEST_K", "requests.memory", "1k"),
            resource("MEM_REQUEST_KI", "requests.memory", "1Ki"),
            resource("DISK_REQUEST", "requests.ephemeral-storage"),
        ],
    }
    env = await env_of(container)
    assert env["CPU_LIMIT"] == "1"  # 250m rounded up
    assert env["CPU_LIMIT_M"] == "250"
    assert env["CPU_REQUEST_M"] == "100"
    assert env["MEM_LIMIT"] == str(64 * 1024 * 1024)
    assert env["MEM_LIMIT_MI"] == "64"
    assert env["MEM_REQUEST_K"] == "1"
    assert env["MEM_REQUEST_KI"] == "1"  # 1000 / 1024 rounded up
    assert env["DISK_REQUEST"] == "0"


async def test_missing_limits_default_to_node_allocatable() -> None:
    container = {
        "name": "c",
        "env": [
            resource("CPU", "limits.cpu"),
            resource("MEM", "limits.memory", "1Gi"),
            resource("DISK", "limits.ephemeral-storage", "1Gi"),
        ],
    }
    env = await env_of(container)
    assert (env["CPU"], env["MEM"], env["DISK"]) == ("4", "8", "100")


async def test_resource_ref_to_another_container() -> None:
    sidecar = {"name": "side", "resources": {"limits": {"memory": "2Mi"}}}
    container = {"name": "c", "env": [resource("SIDE_MEM", "limits.memory", "1Mi", container="side")]}
    pod = make_pod(container)
    pod["spec"]["containers"].append(sidecar)
    env = await container_env(
        FakeClient(), pod, container, node_name="n", node_ip="1", pod_ip="2", services=[], node_allocatable=ALLOCATABLE
    )
    assert env["SIDE_MEM"] == "2"


async def test_resource_ref_without_allocatable_uses_this_machine() -> None:
    container = {"name": "c", "env": [resource("CPU", "limits.cpu")]}
    env = await container_env(
        FakeClient(), make_pod(container), container, node_name="n", node_ip="1", pod_ip="2", services=[]
    )
    assert int(env["CPU"]) >= 1


# -- command lines ----------------------------------------------------------------------------------


ENV = {"GREETING": "hello", "EMPTY": ""}


@pytest.mark.parametrize(
    ("container", "argv"),
    [
        (
            {"command": ["echo", "$(GREETING)"], "args": ["$$(GREETING)", "$(NOPE)"]},
            ["echo", "hello", "$(GREETING)", "$(NOPE)"],
        ),
        ({"image": "busybox", "command": ["sleep"], "args": ["5"]}, ["sleep", "5"]),
        ({"image": "busybox"}, ["sh"]),
        ({"image": "docker.io/library/busybox:1.36"}, ["sh"]),
        ({"image": "busybox@sha256:abcd"}, ["sh"]),
        ({"image": "busybox", "args": ["sh", "-c", "echo $(GREETING)"]}, ["sh", "-c", "echo hello"]),
        ({"image": "registry.k8s.io/pause:3.10"}, ["sleep", "infinity"]),
        ({"image": "k8s.gcr.io/pause"}, ["sleep", "infinity"]),
        ({"image": "localhost:5000/alpine:3"}, ["/bin/sh"]),
        ({"image": "example.com/team/app:v1", "args": ["./run", "--fast"]}, ["./run", "--fast"]),
    ],
)
def test_expand_command(container: dict[str, Any], argv: list[str]) -> None:
    assert expand_command(container, ENV) == argv


def test_caller_entrypoints_come_first_and_take_args() -> None:
    table = {"example.com/team/app": ["/usr/bin/app"]}
    container = {"image": "example.com/team/app:v1", "args": ["--port", "80"]}
    assert expand_command(container, ENV, image_entrypoints=table) == ["/usr/bin/app", "--port", "80"]
    assert expand_command({"image": "example.com/team/app"}, ENV, image_entrypoints=table) == ["/usr/bin/app"]


def test_unknown_image_without_command_or_args_fails() -> None:
    with pytest.raises(EnvError) as caught:
        expand_command({"image": "nginx:1.27"}, ENV)
    assert caught.value.reason == "CreateContainerError"
    assert caught.value.message == 'process runtime: image "nginx:1.27" has no known entrypoint; set command or args'
