"""The CronJob controller in-process against a real `kubelite server` (API only, no agent, no
controllers of its own) and the real kubectl.

Time is a FakeClock started at the real wall-clock time, so a `* * * * *` run happens when the test
moves the clock past the next minute, not a minute later; everything else (validation, defaults,
the status subresource, kubectl's manual run) is the real thing.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubelite.client import ApiError, HttpClient, builtin
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.cronjob import CRONJOBS, JOBS, SCHEDULED_TIMESTAMP_ANNOTATION, CronJobController, job_name
from kubelite.machinery.meta import parse_time
from kubelite.testing.fake_clock import FakeClock
from kubelite.testing.server import ServerProcess

EVENTS = builtin("", "events")
NAMESPACES = builtin("", "namespaces")
T = TypeVar("T")


@pytest.fixture(scope="module")
def cron_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        Path(tmp_path_factory.mktemp("kubelite-cron")), extra_args=["--disable-agent", "--disable-controllers"]
    ).start()
    try:
        yield process
    finally:
        process.stop()


@asynccontextmanager
async def controller_against(server: ServerProcess, clock: FakeClock) -> AsyncIterator[HttpClient]:
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        factory = SharedInformerFactory(client, clock=clock)
        recorder = EventRecorder(client, "cronjob-controller", clock=clock)
        controller = CronJobController(ControllerContext(client, factory, recorder, clock))
        tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
        try:
            await factory.wait_for_sync()
            yield client
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, *, timeout: float = 15.0) -> T:
    async with asyncio.timeout(timeout):
        while True:
            try:
                found = await check()
            except ApiError:
                found = None
            if found:
                return found
            await asyncio.sleep(0.1)
    raise AssertionError(what)  # pragma: no cover - asyncio.timeout raises first


def manifest(name: str, schedule: str) -> str:
    return textwrap.dedent(
        f"""
        apiVersion: batch/v1
        kind: CronJob
        metadata: {{name: {name}}}
        spec:
          schedule: "{schedule}"
          jobTemplate:
            metadata:
              labels: {{app: {name}}}
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers:
                  - name: job
                    image: busybox
                    command: ["true"]
        """
    )


async def kubectl(server: ServerProcess, *args: str, input: str | None = None) -> str:
    result = await asyncio.to_thread(server.kubectl, *args, input=input)
    return result.stdout


async def test_scheduled_run_is_created_and_recorded_through_the_real_api(cron_server: ServerProcess) -> None:
    ns = "cron-scheduled"
    await kubectl(cron_server, "create", "namespace", ns)
    await kubectl(cron_server, "apply", "-n", ns, "-f", "-", input=manifest("tick", "* * * * *"))
    clock = FakeClock(start_wall=datetime.now(UTC))
    async with controller_against(cron_server, clock) as client:
        created = parse_time((await client.get(CRONJOBS, "tick", ns))["metadata"]["creationTimestamp"])
        next_minute = created.replace(second=0) + (datetime(2000, 1, 1, 0, 1) - datetime(2000, 1, 1))
        await asyncio.sleep(0.2)  # the first sync finds nothing due and sleeps on the clock
        assert (await client.list(JOBS, ns))["items"] == []
        await clock.step((next_minute - clock.utcnow()).total_seconds() + 1)

        name = job_name("tick", next_minute)
        job = await eventually(lambda: client.get(JOBS, name, ns), f"job {name}")
        owner = job["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("CronJob", "tick", True)
        assert job["metadata"]["labels"]["app"] == "tick"
        assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == next_minute.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )

        async def recorded() -> dict[str, Any] | None:
            status = (await client.get(CRONJOBS, "tick", ns)).get("status") or {}
            return status if status.get("active") else None

        status = await recorded() or await eventually(recorded, "status.active")
        assert [r["name"] for r in status["active"]] == [name]
        assert status["lastScheduleTime"] == next_minute.strftime("%Y-%m-%dT%H:%M:%SZ")
        table = await kubectl(cron_server, "get", "cronjob", "tick", "-n", ns)
        assert "tick" in table and "* * * * *" in table


async def test_kubectl_create_job_from_cronjob_is_a_manual_run_the_controller_leaves_alone(
    cron_server: ServerProcess,
) -> None:
    ns = "cron-manual"
    await kubectl(cron_server, "create", "namespace", ns)
    await kubectl(cron_server, "apply", "-n", ns, "-f", "-", input=manifest("nightly", "0 3 * * *"))
    clock = FakeClock(start_wall=datetime.now(UTC))
    async with controller_against(cron_server, clock) as client:
        cronjob = await client.get(CRONJOBS, "nightly", ns)
        await kubectl(cron_server, "create", "job", "--from=cronjob/nightly", "test-run", "-n", ns)
        job = json.loads(await kubectl(cron_server, "get", "job", "test-run", "-n", ns, "-o", "json"))
        assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
        owner = job["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("CronJob", "nightly", cronjob["metadata"]["uid"])
        assert owner.get("controller") is True  # so the controller counts it as its own, as upstream

        async def unexpected() -> list[dict[str, Any]] | None:
            found = [e for e in (await client.list(EVENTS, ns))["items"] if e["reason"] == "UnexpectedJob"]
            return found or None

        events = await eventually(unexpected, "an UnexpectedJob event")
        assert events[0]["message"] == "Saw a job that the controller did not create or forgot: test-run"
        assert events[0]["involvedObject"]["name"] == "nightly"
        assert not ((await client.get(CRONJOBS, "nightly", ns)).get("status") or {}).get("active")

        # it finishes (as the job controller would say): it counts as the CronJob's last success
        done = "2026-01-01T03:00:05Z"
        status = {
            "startTime": "2026-01-01T03:00:00Z",
            "completionTime": done,
            "succeeded": 1,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": done},
                {"type": "Complete", "status": "True", "lastTransitionTime": done},
            ],
        }
        await client.patch(JOBS, "test-run", {"status": status}, ns, subresource="status")

        async def last_success() -> str | None:
            return ((await client.get(CRONJOBS, "nightly", ns)).get("status") or {}).get("lastSuccessfulTime")

        assert await eventually(last_success, "lastSuccessfulTime") == done
        assert (await client.get(JOBS, "test-run", ns))["metadata"]["name"] == "test-run"  # not trimmed (limit 3)
