"""HttpClient, Informer and LeaderElector against a real `kubelite server` process."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml

from kubelite.client import ApiError, HttpClient, Informer, KubeConfig, LeaderElector, TransportError, builtin
from kubelite.client.errors import api_error_from_response
from kubelite.client.leader import LEASES
from kubelite.testing.server import ServerProcess

NAMESPACES = builtin("", "namespaces")
CONFIGMAPS = builtin("", "configmaps")
DEPLOYMENTS = builtin("apps", "deployments")
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@contextlib.asynccontextmanager
async def connect(server: ServerProcess) -> AsyncIterator[HttpClient]:
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        yield client


async def ensure_namespace(client: HttpClient, name: str) -> None:
    with contextlib.suppress(ApiError):
        await client.create(NAMESPACES, {"metadata": {"name": name}})


def configmap(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


async def test_crud_round_trip_and_errors_carry_the_status(server: ServerProcess) -> None:
    async with connect(server) as client:
        await ensure_namespace(client, "crud")
        created = await client.create(CONFIGMAPS, configmap("a", app="x"), "crud")
        assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
        assert (await client.get(CONFIGMAPS, "a", "crud"))["data"] == {"k": "v"}

        listed = await client.list(CONFIGMAPS, "crud", label_selector="app=x")
        assert [o["metadata"]["name"] for o in listed["items"]] == ["a"]
        assert int(listed["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])
        assert (await client.list(CONFIGMAPS, "crud", label_selector="app=y"))["items"] == []

        with pytest.raises(ApiError) as exists:
            await client.create(CONFIGMAPS, configmap("a"), "crud")
        assert (exists.value.code, exists.value.reason, exists.value.name) == (409, "AlreadyExists", "a")

        updated = await client.update(CONFIGMAPS, {**created, "data": {"k": "v2"}})
        assert updated["data"] == {"k": "v2"}
        with pytest.raises(ApiError) as conflict:
            await client.update(CONFIGMAPS, {**created, "data": {"k": "stale"}})
        assert (conflict.value.code, conflict.value.reason) == (409, "Conflict")

        merged = await client.patch(CONFIGMAPS, "a", {"data": {"m": "1"}}, "crud")
        assert merged["data"] == {"k": "v2", "m": "1"}
        json_patched = await client.patch(
            CONFIGMAPS, "a", [{"op": "remove", "path": "/data/m"}], "crud", patch_type="json"
        )
        assert json_patched["data"] == {"k": "v2"}

        with pytest.raises(ApiError) as invalid:
            await client.create(CONFIGMAPS, configmap("Not_Valid"), "crud")
        assert (invalid.value.code, invalid.value.reason) == (422, "Invalid")
        assert [c.field for c in invalid.value.causes] == ["metadata.name"]

        dry = await client.create(CONFIGMAPS, configmap("dry"), "crud", dry_run=True)
        assert dry["metadata"]["name"] == "dry"
        with pytest.raises(ApiError) as missing:
            await client.get(CONFIGMAPS, "dry", "crud")
        assert (missing.value.code, missing.value.reason) == (404, "NotFound")
        assert str(missing.value) == 'configmaps "dry" not found'

        with pytest.raises(ApiError) as precondition:
            await client.delete(CONFIGMAPS, "a", "crud", preconditions={"uid": "not-the-uid"})
        assert precondition.value.code == 409
        status = await client.delete(CONFIGMAPS, "a", "crud", propagation_policy="Background")
        assert status["status"] == "Success"
        with pytest.raises(ApiError) as gone:
            await client.delete(CONFIGMAPS, "a", "crud")
        assert gone.value.code == 404


async def test_strategic_merge_patch_merges_containers_by_name(server: ServerProcess) -> None:
    deployment = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]},
            },
        },
    }
    async with connect(server) as client:
        await ensure_namespace(client, "smp")
        await client.create(DEPLOYMENTS, deployment, "smp")
        body = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}}
        patched = await client.patch(DEPLOYMENTS, "web", body, "smp", patch_type="strategic")
        images = [c["image"] for c in patched["spec"]["template"]["spec"]["containers"]]
        assert images == ["a:1", "b:2"]
        scale = await client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 3}}, "smp", subresource="scale")
        assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3


async def test_version_and_cluster_scoped_reads(server: ServerProcess) -> None:
    async with connect(server) as client:
        assert b"+kubelite" in await client.get_raw("/version")
        default = await client.get(NAMESPACES, "default")
        assert default["status"]["phase"] == "Active"


async def test_requests_without_credentials_get_401(server: ServerProcess) -> None:
    ca = HttpClient.from_kubeconfig(server.kubeconfig).config.certificate_authority_data
    anonymous = KubeConfig(server=server.url, certificate_authority_data=ca)
    async with HttpClient(anonymous) as client:
        with pytest.raises(ApiError) as refused:
            await client.list(CONFIGMAPS)
        assert (refused.value.code, refused.value.reason) == (401, "Unauthorized")


async def test_an_unreachable_server_raises_transport_error() -> None:
    config = KubeConfig(server="https://127.0.0.1:1", insecure_skip_tls_verify=True)
    async with HttpClient(config, request_timeout=5) as client:
        with pytest.raises(TransportError):
            await client.get(NAMESPACES, "default")
        with pytest.raises(TransportError):
            async for _ in client.watch(CONFIGMAPS):
                pass


def test_a_failure_without_a_status_body_becomes_api_error_with_the_http_code() -> None:
    error = api_error_from_response(503, None, "upstream connect error")
    assert (error.code, error.reason, str(error)) == (503, "ServiceUnavailable", "upstream connect error")
    assert api_error_from_response(418, None).reason == "Unknown"


def test_kubeconfig_is_read_with_its_credentials(server: ServerProcess) -> None:
    document = yaml.safe_load(server.kubeconfig.read_text())
    client = HttpClient.from_kubeconfig(document)
    assert client.config.server == server.url
    assert client.config.client_certificate_data and client.config.client_key_data
    assert "PRIVATE" not in repr(client.config)


async def test_watch_from_a_list_sees_exactly_the_later_changes(server: ServerProcess) -> None:
    async with connect(server) as client, connect(server) as writer:
        await ensure_namespace(client, "watch")
        await client.create(CONFIGMAPS, configmap("before"), "watch")
        since = (await client.list(CONFIGMAPS, "watch"))["metadata"]["resourceVersion"]
        events: list[tuple[str, str]] = []

        async def follow() -> None:
            stream = client.watch(CONFIGMAPS, "watch", resource_version=since, timeout_seconds=30)
            async with contextlib.aclosing(stream):  # type: ignore[type-var]
                async for event in stream:
                    if event.type != "BOOKMARK":
                        events.append((event.type, event.object["metadata"]["name"]))
                    if len(events) == 3:
                        return

        async with asyncio.timeout(20), asyncio.TaskGroup() as tasks:
            tasks.create_task(follow())
            await writer.create(CONFIGMAPS, configmap("b"), "watch")
            await writer.patch(CONFIGMAPS, "b", {"data": {"k": "2"}}, "watch")
            await writer.delete(CONFIGMAPS, "b", "watch")
        assert events == [("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "b")]


async def test_watch_ends_cleanly_at_its_timeout_and_cancels_cleanly(server: ServerProcess) -> None:
    async with connect(server) as client:
        await ensure_namespace(client, "watch-end")
        since = (await client.list(CONFIGMAPS, "watch-end"))["metadata"]["resourceVersion"]
        async with asyncio.timeout(15):
            seen = [e async for e in client.watch(CONFIGMAPS, "watch-end", resource_version=since, timeout_seconds=1)]
        assert [e.type for e in seen if e.type != "BOOKMARK"] == []

        async def forever() -> None:
            async for _ in client.watch(CONFIGMAPS, "watch-end", resource_version=since):
                pass

        task = asyncio.ensure_future(forever())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await client.get(NAMESPACES, "watch-end"))["metadata"]["name"] == "watch-end"


async def test_informer_syncs_and_follows_changes_made_by_another_client(server: ServerProcess) -> None:
    async with connect(server) as client, connect(server) as writer:
        await ensure_namespace(client, "informer")
        await writer.create(CONFIGMAPS, configmap("old"), "informer")
        informer = Informer(client, CONFIGMAPS, "informer")
        seen: list[tuple[str, str]] = []
        changed = asyncio.Event()

        def record(kind: str) -> Any:
            def handler(*objs: dict[str, Any]) -> None:
                seen.append((kind, objs[-1]["metadata"]["name"]))
                changed.set()

            return handler

        informer.add_handler(record("add"), record("update"), record("delete"))

        async def until(expected: list[tuple[str, str]]) -> None:
            while seen != expected:
                changed.clear()
                await changed.wait()

        async with asyncio.timeout(20), asyncio.TaskGroup() as tasks:
            task = tasks.create_task(informer.run())
            await informer.wait_for_sync()
            assert seen == [("add", "old")]
            await writer.create(CONFIGMAPS, configmap("new"), "informer")
            await writer.patch(CONFIGMAPS, "old", {"data": {"k": "changed"}}, "informer")
            await writer.delete(CONFIGMAPS, "new", "informer")
            await until([("add", "old"), ("add", "new"), ("update", "old"), ("delete", "new")])
            cached = informer.get("informer/old")
            assert cached is not None and cached["data"] == {"k": "changed"}
            assert informer.get("informer/new") is None
            task.cancel()


async def test_leader_election_one_leader_then_takeover_when_it_stops_renewing(server: ServerProcess) -> None:
    timing: dict[str, Any] = {"lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.25}
    async with connect(server) as first_client, connect(server) as second_client:
        await ensure_namespace(first_client, "election")
        leaders: set[str] = set()
        overlaps: list[set[str]] = []
        started: dict[str, asyncio.Event] = {"one": asyncio.Event(), "two": asyncio.Event()}

        def lead(identity: str) -> Any:
            async def on_started_leading() -> None:
                leaders.add(identity)
                if len(leaders) > 1:
                    overlaps.append(set(leaders))
                started[identity].set()
                try:
                    await asyncio.get_running_loop().create_future()
                finally:
                    leaders.discard(identity)

            return on_started_leading

        one = LeaderElector(first_client, "election", "ctrl", "one", **timing)
        two = LeaderElector(second_client, "election", "ctrl", "two", **timing)
        stopped: list[str] = []
        async with asyncio.timeout(30), asyncio.TaskGroup() as tasks:
            first = tasks.create_task(one.run(lead("one"), lambda: stopped.append("one")))
            await started["one"].wait()
            second = tasks.create_task(two.run(lead("two"), lambda: stopped.append("two")))
            await asyncio.sleep(1.5 * timing["lease_duration"])  # "one" keeps renewing: "two" must wait
            assert leaders == {"one"} and two.leader == "one" and not two.is_leader
            lease = await first_client.get(LEASES, "ctrl", "election")
            assert lease["spec"]["holderIdentity"] == "one"
            assert MICRO_TIME.match(lease["spec"]["renewTime"]) and MICRO_TIME.match(lease["spec"]["acquireTime"])
            assert lease["spec"]["leaseDurationSeconds"] == 2

            first.cancel()  # "one" stops renewing (and does not release the lease)
            await started["two"].wait()
            assert leaders == {"two"} and stopped == ["one"]
            lease = await second_client.get(LEASES, "ctrl", "election")
            assert lease["spec"]["holderIdentity"] == "two"
            assert lease["spec"]["leaseTransitions"] == 1
            second.cancel()
        assert overlaps == []
        assert stopped == ["one", "two"]


async def test_leader_releasing_on_cancel_hands_over_at_once(server: ServerProcess) -> None:
    timing: dict[str, Any] = {"lease_duration": 15.0, "renew_deadline": 10.0, "retry_period": 0.25}
    async with connect(server) as client:
        await ensure_namespace(client, "release")
        one = LeaderElector(client, "release", "ctrl", "one", release_on_cancel=True, **timing)
        two = LeaderElector(client, "release", "ctrl", "two", **timing)
        finished = asyncio.Event()

        async def short_work() -> None:
            await asyncio.sleep(0.2)

        async with asyncio.timeout(10):
            await one.run(short_work)  # returns when the work is done, releasing the lease
            lease = await client.get(LEASES, "ctrl", "release")
            assert lease["spec"]["holderIdentity"] == ""

            async def mark() -> None:
                finished.set()

            await two.run(mark)  # far sooner than the 15 s lease would have expired
        assert finished.is_set()
