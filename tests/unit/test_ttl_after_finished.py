"""The TTL-after-finished controller: finished Jobs are deleted TTL seconds after they finished."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.job import JOBS
from kubelite.controllers.ttlafterfinished import TTLAfterFinishedController, expiry, needs_cleanup, time_left
from kubelite.machinery.meta import rfc3339
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import DEFAULT_START, FakeClock

NS = "ns"
NOW = DEFAULT_START
T = TypeVar("T")


def finished_job(
    name: str = "done", *, ttl: int | None = 100, kind: str = "Complete", at: datetime = NOW, status: str = "True"
) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    condition = {"type": kind, "status": status, "lastProbeTime": rfc3339(at), "lastTransitionTime": rfc3339(at)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
        "status": {"conditions": [condition]},
    }


@pytest.mark.parametrize(
    ("job", "left"),
    [
        (finished_job(ttl=100), 60.0),
        (finished_job(ttl=100, kind="Failed"), 60.0),
        (finished_job(ttl=0), -40.0),
        (finished_job(ttl=30), -10.0),
        (finished_job(ttl=None), None),
        (finished_job(kind="SuccessCriteriaMet"), None),  # not finished yet
        (finished_job(status="False"), None),
    ],
)
def test_time_left_counts_the_ttl_from_the_terminal_condition(job: dict[str, Any], left: float | None) -> None:
    assert time_left(job, NOW + timedelta(seconds=40)) == left


def test_expiry_is_finish_time_plus_ttl() -> None:
    assert expiry(finished_job(ttl=5)) == (NOW, NOW + timedelta(seconds=5))
    assert needs_cleanup(finished_job()) and not needs_cleanup(finished_job(ttl=None))


class RecordingClient(FakeClient):
    """Remembers the options of each delete, and can answer `get` with a newer object than the
    informer has seen (a TTL raised meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.deletes: list[dict[str, Any]] = []
        self.fresher: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    async def get(self, resource: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        found = await super().get(resource, name, namespace)
        return self.fresher(found) if self.fresher is not None else found

    async def delete(self, resource: Any, name: str, namespace: str | None = None, **options: Any) -> dict[str, Any]:
        self.deletes.append({"name": name, **options})
        return await super().delete(resource, name, namespace, **options)


@contextlib.asynccontextmanager
async def running(client: FakeClient, clock: FakeClock) -> AsyncIterator[TTLAfterFinishedController]:
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "ttl-after-finished-controller", clock=clock)
    controller = TTLAfterFinishedController(ControllerContext(client, factory, recorder, clock))
    tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
    try:
        await asyncio.wait_for(factory.wait_for_sync(), 5)
        yield controller
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def eventually(check: Callable[[], T | None], *, timeout: float = 5.0) -> T:
    async with asyncio.timeout(timeout):
        while True:
            if result := check():
                return result
            await asyncio.sleep(0.001)


async def idle(controller: TTLAfterFinishedController) -> None:
    queue = controller.queue
    quiet = 0
    async with asyncio.timeout(5):
        while quiet < 3:
            await asyncio.sleep(0.001)
            quiet = quiet + 1 if not len(queue) and not queue.processing() else 0


async def step(controller: TTLAfterFinishedController, clock: FakeClock, seconds: float) -> None:
    """Move the fake clock once the controller is idle (so every wait it started is registered on
    the clock), then let it work through what came due."""
    await idle(controller)
    await clock.step(seconds)
    await idle(controller)


def job_names(client: FakeClient) -> list[str]:
    return [j["metadata"]["name"] for j in client.objects(JOBS)]


async def test_finished_job_is_deleted_when_its_ttl_expires() -> None:
    client, clock = RecordingClient(), FakeClock()
    async with running(client, clock) as controller:
        created = await client.create(JOBS, finished_job(ttl=100), NS)
        await idle(controller)
        await step(controller, clock, 99)
        await idle(controller)
        assert job_names(client) == ["done"]
        await step(controller, clock, 1)
        await eventually(lambda: not job_names(client))
    assert client.deletes == [
        {
            "name": "done",
            "propagation_policy": "Background",
            "preconditions": {"uid": created["metadata"]["uid"]},
        }
    ]


async def test_jobs_without_ttl_or_not_finished_are_kept() -> None:
    client, clock = RecordingClient(), FakeClock()
    async with running(client, clock) as controller:
        await client.create(JOBS, finished_job("no-ttl", ttl=None), NS)
        await client.create(JOBS, finished_job("running", ttl=0, kind="SuccessCriteriaMet"), NS)
        await idle(controller)
        await step(controller, clock, 3600)
        await idle(controller)
    assert sorted(job_names(client)) == ["no-ttl", "running"] and client.deletes == []


async def test_job_that_finishes_later_is_deleted_after_its_ttl() -> None:
    client, clock = RecordingClient(), FakeClock()
    async with running(client, clock) as controller:
        job = finished_job(ttl=10, kind="SuccessCriteriaMet")
        await client.create(JOBS, job, NS)
        await step(controller, clock, 50)
        finished = finished_job(ttl=10, at=clock.utcnow())["status"]
        await client.patch(JOBS, "done", {"status": finished}, NS, subresource="status")
        await idle(controller)
        await step(controller, clock, 9)
        await idle(controller)
        assert job_names(client) == ["done"]
        await step(controller, clock, 1)
        await eventually(lambda: not job_names(client))


async def test_a_ttl_raised_meanwhile_is_read_fresh_before_deleting() -> None:
    client, clock = RecordingClient(), FakeClock()

    def raised(job: dict[str, Any]) -> dict[str, Any]:
        job["spec"]["ttlSecondsAfterFinished"] = 500
        return job

    client.fresher = raised
    async with running(client, clock) as controller:
        await client.create(JOBS, finished_job(ttl=0), NS)
        await idle(controller)
        assert job_names(client) == ["done"] and client.deletes == []
        # the cached Job says expired, the API says 500 s: the next look is due then
        assert clock.next_deadline() == pytest.approx(clock.now() + 500)
        client.fresher = None
        await client.patch(JOBS, "done", {"spec": {"ttlSecondsAfterFinished": 500}}, NS)
        await step(controller, clock, 500)
        await eventually(lambda: not job_names(client))
