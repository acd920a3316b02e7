"""What every active namespace is given: the `default` ServiceAccount (ServiceAccountController) and
the `kube-root-ca.crt` ConfigMap (RootCACertPublisher) — decisions table-tested, shells against
FakeClient + FakeClock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.rootca import (
    DESCRIPTION,
    RootCACertPublisher,
    repaired_config_map,
    root_ca_config_map,
)
from kubelite.controllers.serviceaccount import (
    ServiceAccountController,
    is_namespace_terminating_error,
    missing_service_accounts,
)
from kubelite.machinery import errors
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

NAMESPACES = builtin("", "namespaces")
SERVICE_ACCOUNTS = builtin("", "serviceaccounts")
CONFIG_MAPS = builtin("", "configmaps")
WAIT = 5.0
CA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
ANNOTATION = "kubernetes.io/description"
WRITES = ("create", "update", "patch", "delete")


def namespace(name: str, phase: str = "Active") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": phase}}


async def eventually(check: Callable[[], Any], *, timeout: float = WAIT) -> Any:
    """Poll `check` (sync or async) until it returns something truthy, within `timeout` real seconds."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.002)


async def idle(controller: Controller) -> None:
    """Until the controller has nothing queued or in hand (after the events it was sent)."""
    for _ in range(5):
        await asyncio.sleep(0)
    await eventually(lambda: len(controller.queue) == 0 and controller.queue.processing() == 0)


async def fetch(client: FakeClient, resource: Any, name: str, ns: str) -> dict[str, Any] | None:
    try:
        return await client.get(resource, name, ns)
    except errors.ApiError as exc:
        if exc.code == 404:
            return None
        raise


@contextlib.asynccontextmanager
async def running(
    client: FakeClient, clock: FakeClock, make: Callable[[ControllerContext], Controller]
) -> AsyncIterator[Controller]:
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "test", clock=clock)
    controller = make(ControllerContext(client, factory, recorder, clock))
    async with asyncio.TaskGroup() as tasks:
        started = [tasks.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
        try:
            await factory.wait_for_sync()
            yield controller
        finally:
            for task in started:
                task.cancel()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


# -- decisions --------------------------------------------------------------------------------------


def test_missing_service_accounts_are_the_wanted_ones_not_there() -> None:
    assert missing_service_accounts("ns", ["default", "builder"], {"builder"}) == [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "ns"}}
    ]
    assert missing_service_accounts("ns", ["default"], {"default"}) == []


@pytest.mark.parametrize(
    ("error", "terminating"),
    [
        (
            errors.forbidden(
                "serviceaccounts", "", "", "unable to create new content in namespace x because it is being terminated"
            ),
            True,
        ),
        (
            errors.ApiError(
                403, "Forbidden", "nope", causes=[errors.Cause("NamespaceTerminating", "x", "metadata.namespace")]
            ),
            True,
        ),
        (errors.forbidden("serviceaccounts", "", "default", "user cannot create"), False),
        (errors.internal("because it is being terminated"), False),
    ],
)
def test_terminating_namespace_refusals_are_recognised(error: errors.ApiError, terminating: bool) -> None:
    assert is_namespace_terminating_error(error) is terminating


def test_root_ca_config_map_carries_the_ca_and_upstream_description() -> None:
    assert root_ca_config_map("ns", CA) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-root-ca.crt", "namespace": "ns", "annotations": {ANNOTATION: DESCRIPTION}},
        "data": {"ca.crt": CA},
    }
    assert DESCRIPTION == (
        "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as "
        "the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of "
        "Kubernetes clusters."
    )


@pytest.mark.parametrize(
    ("data", "annotations", "repair"),
    [
        ({"ca.crt": CA}, {ANNOTATION: DESCRIPTION}, False),
        ({"ca.crt": CA}, {ANNOTATION: "someone's words"}, False),  # any description will do, as upstream
        ({"ca.crt": "tampered"}, {ANNOTATION: DESCRIPTION}, True),
        ({"ca.crt": CA, "extra": "x"}, {ANNOTATION: DESCRIPTION}, True),
        ({"ca.crt": CA}, {"team": "a"}, True),
        (None, None, True),
    ],
)
def test_repaired_config_map_restores_data_and_description_only_when_needed(
    data: dict[str, str] | None, annotations: dict[str, str] | None, repair: bool
) -> None:
    existing: dict[str, Any] = {"metadata": {"name": "kube-root-ca.crt", "namespace": "ns", "labels": {"l": "v"}}}
    if data is not None:
        existing["data"] = data
    if annotations is not None:
        existing["metadata"]["annotations"] = annotations
    repaired = repaired_config_map(existing, CA)
    if not repair:
        assert repaired is None
        return
    assert repaired is not None
    assert repaired["data"] == {"ca.crt": CA}
    assert repaired["metadata"]["annotations"] == {**(annotations or {}), ANNOTATION: DESCRIPTION}
    assert repaired["metadata"]["labels"] == {"l": "v"}
    assert existing.get("data") == data  # the cache's object is not changed


# -- ServiceAccountController -----------------------------------------------------------------------


async def test_active_namespaces_get_a_default_service_account_recreated_when_deleted(
    client: FakeClient, clock: FakeClock
) -> None:
    await client.create(NAMESPACES, namespace("early"))
    async with running(client, clock, ServiceAccountController):
        await eventually(lambda: fetch(client, SERVICE_ACCOUNTS, "default", "early"))
        await client.create(NAMESPACES, namespace("late"))
        created = await eventually(lambda: fetch(client, SERVICE_ACCOUNTS, "default", "late"))
        assert created["metadata"]["name"] == "default" and created["kind"] == "ServiceAccount"

        await client.delete(SERVICE_ACCOUNTS, "default", "late")
        again = await eventually(lambda: fetch(client, SERVICE_ACCOUNTS, "default", "late"))
        assert again["metadata"]["uid"] != created["metadata"]["uid"]


async def test_no_service_account_in_terminating_namespaces_nor_a_second_one(
    client: FakeClient, clock: FakeClock
) -> None:
    await client.create(NAMESPACES, namespace("ending", phase="Terminating"))
    await client.create(NAMESPACES, namespace("has-one"))
    await client.create(SERVICE_ACCOUNTS, {"metadata": {"name": "default"}}, "has-one")
    await client.create(NAMESPACES, namespace("fresh"))
    async with running(client, clock, ServiceAccountController) as controller:
        await eventually(lambda: fetch(client, SERVICE_ACCOUNTS, "default", "fresh"))
        await idle(controller)
    creates = [(a.namespace, a.name) for a in client.actions if a.verb == "create" and a.resource == "serviceaccounts"]
    assert creates == [("has-one", "default"), ("fresh", "default")]
    assert await fetch(client, SERVICE_ACCOUNTS, "default", "ending") is None


async def test_a_namespace_terminating_under_the_create_is_not_an_error(client: FakeClient, clock: FakeClock) -> None:
    await client.create(NAMESPACES, namespace("racing"))
    refused = errors.forbidden(
        "serviceaccounts", "", "", "unable to create new content in namespace racing because it is being terminated"
    )
    client.inject_error("create", refused, resource=SERVICE_ACCOUNTS)
    async with running(client, clock, ServiceAccountController) as controller:
        await eventually(lambda: [a for a in client.actions if a.verb == "create" and a.resource == "serviceaccounts"])
        await idle(controller)
        assert controller.queue.waiting() == 0  # not retried
        assert controller.queue.num_requeues("racing") == 0


# -- RootCACertPublisher ----------------------------------------------------------------------------


def publisher(ca: str | None) -> Callable[[ControllerContext], Controller]:
    return lambda context: RootCACertPublisher(context, ca_pem=ca.encode() if ca is not None else None)


async def test_every_active_namespace_gets_the_root_ca_config_map(client: FakeClient, clock: FakeClock) -> None:
    await client.create(NAMESPACES, namespace("one"))
    await client.create(NAMESPACES, namespace("going", phase="Terminating"))
    async with running(client, clock, publisher(CA)) as controller:
        first = await eventually(lambda: fetch(client, CONFIG_MAPS, "kube-root-ca.crt", "one"))
        await client.create(NAMESPACES, namespace("two"))
        second = await eventually(lambda: fetch(client, CONFIG_MAPS, "kube-root-ca.crt", "two"))
        await idle(controller)
    for cm in (first, second):
        assert cm["data"] == {"ca.crt": CA}
        assert cm["metadata"]["annotations"] == {ANNOTATION: DESCRIPTION}
    assert await fetch(client, CONFIG_MAPS, "kube-root-ca.crt", "going") is None


async def test_root_ca_config_map_is_repaired_when_edited_and_recreated_when_deleted(
    client: FakeClient, clock: FakeClock
) -> None:
    await client.create(NAMESPACES, namespace("ns"))
    async with running(client, clock, publisher(CA)):
        await eventually(lambda: fetch(client, CONFIG_MAPS, "kube-root-ca.crt", "ns"))
        await client.patch(
            CONFIG_MAPS,
            "kube-root-ca.crt",
            {"data": {"ca.crt": "tampered", "more": "x"}, "metadata": {"annotations": {ANNOTATION: None, "a": "b"}}},
            "ns",
        )

        async def repaired() -> dict[str, Any] | None:
            cm = await fetch(client, CONFIG_MAPS, "kube-root-ca.crt", "ns")
            return (
                cm if cm and cm.get("data") == {"ca.crt": CA} and ANNOTATION in cm["metadata"]["annotations"] else None
            )

        cm = await eventually(repaired)
        assert cm["metadata"]["annotations"] == {"a": "b", ANNOTATION: DESCRIPTION}

        await client.delete(CONFIG_MAPS, "kube-root-ca.crt", "ns")
        again = await eventually(lambda: fetch(client, CONFIG_MAPS, "kube-root-ca.crt", "ns"))
        assert again["data"] == {"ca.crt": CA} and again["metadata"]["uid"] != cm["metadata"]["uid"]


async def test_other_config_maps_are_neither_watched_nor_touched(client: FakeClient, clock: FakeClock) -> None:
    await client.create(NAMESPACES, namespace("ns"))
    await client.create(CONFIG_MAPS, {"metadata": {"name": "app"}, "data": {"k": "v"}}, "ns")
    async with running(client, clock, publisher(CA)) as controller:
        await eventually(lambda: fetch(client, CONFIG_MAPS, "kube-root-ca.crt", "ns"))
        await client.delete(CONFIG_MAPS, "app", "ns")
        await idle(controller)
    writes = [(a.verb, a.name) for a in client.actions if a.resource == "configmaps" and a.verb in WRITES]
    assert ("create", "kube-root-ca.crt") in writes
    assert all(name in ("kube-root-ca.crt", "app") for _, name in writes)
    assert [w for w in writes if w[1] == "app"] == [("create", "app"), ("delete", "app")]  # only the test's own


async def test_without_a_ca_the_publisher_does_nothing(client: FakeClient, clock: FakeClock) -> None:
    await client.create(NAMESPACES, namespace("ns"))
    client.clear_actions()
    async with running(client, clock, publisher(None)) as controller:
        await idle(controller)
    assert client.actions == []
