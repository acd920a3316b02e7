"""The CronJob controller: its pure core (job naming and template, job review, history, the schedule
decision) table-tested, and the controller run against FakeClient + FakeClock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.cronjob import (
    CRONJOBS,
    JOBS,
    SCHEDULED_TIMESTAMP_ANNOTATION,
    CronJobController,
    decide,
    job_from_template,
    job_name,
    jobs_to_trim,
    review_jobs,
)
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

EVENTS = builtin("", "events")
NS = "ns"
START = datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)  # the fake wall clock: 30 s past a minute


def at(hour: int, minute: int, second: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def cronjob(name: str = "cj", schedule: str = "*/1 * * * *", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schedule": schedule,
        "concurrencyPolicy": "Allow",
        "jobTemplate": {
            "metadata": {"labels": {"app": name}, "annotations": {"team": "a"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}},
        },
    }
    body.update(spec)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "creationTimestamp": stamp(at(9, 0, 30))},
        "spec": body,
    }


def job(name: str, *, owner: str = "uid-cj", finished: str | None = None, started: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if started:
        status["startTime"] = started
    if finished:
        status["conditions"] = [{"type": finished, "status": "True"}]
        if finished == "Complete":
            status["completionTime"] = started or stamp(at(10, 0))
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "ownerReferences": [{"kind": "CronJob", "name": "cj", "uid": owner, "controller": True}],
        },
        "status": status,
    }


def ref(name: str) -> dict[str, Any]:
    return {"kind": "Job", "namespace": NS, "name": name, "uid": f"uid-{name}", "apiVersion": "batch/v1"}


# -- the functional core -----------------------------------------------------------------------------


def test_job_name_is_the_cronjob_and_the_scheduled_minute_since_the_epoch() -> None:
    assert job_name("backup", at(10, 1)) == f"backup-{int(at(10, 1).timestamp()) // 60}"
    assert job_name("backup", at(10, 1)) == "backup-29454361"


def test_job_from_template_carries_metadata_annotation_and_controller_reference() -> None:
    made = job_from_template(cronjob(timeZone="Europe/Berlin"), at(10, 1))
    meta = made["metadata"]
    assert meta["name"] == "cj-29454361" and meta["namespace"] == NS
    assert meta["labels"] == {"app": "cj"}
    assert meta["annotations"] == {"team": "a", SCHEDULED_TIMESTAMP_ANNOTATION: "2026-01-01T11:01:00+01:00"}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "cj",
            "uid": "uid-cj",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert made["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    utc_made = job_from_template(cronjob(), at(10, 1))
    assert utc_made["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == "2026-01-01T10:01:00Z"


@dataclass
class ReviewCase:
    active: list[str]
    jobs: list[dict[str, Any]]
    left_active: list[str]
    completed: list[tuple[str, str]]
    unexpected: list[str]
    unseen: list[str]
    last_successful: str | None = None


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(ReviewCase(["a"], [job("a")], ["a"], [], [], []), id="running-stays-active"),
        pytest.param(
            ReviewCase(
                ["a"],
                [job("a", finished="Complete", started="2026-01-01T10:01:00Z")],
                [],
                [("a", "Complete")],
                [],
                [],
                "2026-01-01T10:01:00Z",
            ),
            id="completed-leaves-active-and-sets-last-success",
        ),
        pytest.param(
            ReviewCase(["a"], [job("a", finished="Failed")], [], [("a", "Failed")], [], []), id="failed-leaves"
        ),
        pytest.param(ReviewCase([], [job("m")], [], [], ["m"], []), id="unlisted-running-is-unexpected"),
        pytest.param(ReviewCase(["gone"], [], ["gone"], [], [], ["gone"]), id="listed-without-job-is-unseen"),
        pytest.param(
            ReviewCase(
                [],
                [job("old", finished="Complete", started="2026-01-01T09:00:00Z")],
                [],
                [],
                [],
                [],
                "2026-01-01T10:00:00Z",
            ),
            id="older-success-keeps-newer-time",
        ),
    ],
)
def test_review_jobs(case: ReviewCase) -> None:
    status = {"active": [ref(n) for n in case.active], "lastSuccessfulTime": "2026-01-01T10:00:00Z"}
    if case.last_successful is None:
        del status["lastSuccessfulTime"]
    review = review_jobs(status, case.jobs)
    assert [r["name"] for r in review.active] == case.left_active
    assert review.completed == case.completed
    assert [j["metadata"]["name"] for j in review.unexpected] == case.unexpected
    assert [r["name"] for r in review.unseen] == case.unseen
    assert review.last_successful_time == case.last_successful


def test_jobs_to_trim_deletes_the_oldest_finished_beyond_each_limit() -> None:
    jobs = [
        job("ok-3", finished="Complete", started="2026-01-01T10:03:00Z"),
        job("ok-1", finished="Complete", started="2026-01-01T10:01:00Z"),
        job("ok-never-started", finished="Complete"),
        job("ok-2", finished="Complete", started="2026-01-01T10:02:00Z"),
        job("bad-1", finished="Failed", started="2026-01-01T10:01:00Z"),
        job("bad-2", finished="Failed", started="2026-01-01T10:02:00Z"),
        job("running", started="2026-01-01T09:00:00Z"),
    ]
    names = [j["metadata"]["name"] for j in jobs_to_trim(jobs, successful_limit=2, failed_limit=1)]
    assert names == ["ok-1", "ok-2", "bad-1"]
    assert jobs_to_trim(jobs, successful_limit=None, failed_limit=None) == []
    assert [j["metadata"]["name"] for j in jobs_to_trim(jobs, successful_limit=0, failed_limit=5)] == [
        "ok-1",
        "ok-2",
        "ok-3",
        "ok-never-started",
    ]


def with_status(obj: dict[str, Any], **status: Any) -> dict[str, Any]:
    obj["status"] = status
    return obj


@pytest.mark.parametrize(
    ("obj", "active", "now", "run_at", "replace", "reasons"),
    [
        pytest.param(
            with_status(cronjob(), lastScheduleTime=stamp(at(10, 0))),
            [],
            at(10, 0, 30),
            None,
            False,
            [],
            id="nothing-due",
        ),
        pytest.param(
            with_status(cronjob(), lastScheduleTime=stamp(at(10, 0))), [], at(10, 1, 1), at(10, 1), False, [], id="due"
        ),
        pytest.param(
            with_status(cronjob(suspend=True), lastScheduleTime=stamp(at(10, 0))),
            [],
            at(10, 5),
            None,
            False,
            [],
            id="suspended",
        ),
        pytest.param(
            with_status(cronjob(concurrencyPolicy="Forbid"), lastScheduleTime=stamp(at(10, 0))),
            [ref("a")],
            at(10, 1, 1),
            None,
            False,
            ["JobAlreadyActive"],
            id="forbid-while-active",
        ),
        pytest.param(
            with_status(cronjob(concurrencyPolicy="Replace"), lastScheduleTime=stamp(at(10, 0))),
            [ref("a")],
            at(10, 1, 1),
            at(10, 1),
            True,
            [],
            id="replace-active",
        ),
        pytest.param(
            with_status(cronjob(concurrencyPolicy="Replace"), lastScheduleTime=stamp(at(10, 0))),
            [],
            at(10, 1, 1),
            at(10, 1),
            False,
            [],
            id="replace-nothing-active",
        ),
        pytest.param(
            with_status(cronjob(), lastScheduleTime=stamp(at(10, 1))),
            [],
            at(10, 1, 30),
            None,
            False,
            [],
            id="already-ran",
        ),
        pytest.param(
            with_status(cronjob(), lastScheduleTime=stamp(at(10, 0))),
            [ref("cj-29454361")],
            at(10, 1, 30),
            None,
            False,
            [],
            id="already-active-by-name",
        ),
        pytest.param(
            with_status(cronjob(timeZone="Mars/Olympus")),
            [],
            at(10, 5),
            None,
            False,
            ["UnknownTimeZone"],
            id="bad-zone",
        ),
        pytest.param(
            with_status(cronjob(schedule="every minute")),
            [],
            at(10, 5),
            None,
            False,
            ["UnparseableSchedule"],
            id="bad-schedule",
        ),
        pytest.param(
            with_status(cronjob(schedule="0 0 30 2 *")),
            [],
            at(10, 5),
            None,
            False,
            ["InvalidSchedule"],
            id="never-fires",
        ),
        pytest.param(
            with_status(cronjob(schedule="TZ=UTC * * * * *"), lastScheduleTime=stamp(at(10, 0))),
            [],
            at(10, 1, 1),
            at(10, 1),
            False,
            ["UnsupportedSchedule"],
            id="legacy-tz-prefix",
        ),
        pytest.param(
            with_status(cronjob(), lastScheduleTime=stamp(at(10, 0, day=1))),
            [],
            at(10, 0, 30, day=3),
            at(10, 0, day=3),
            False,
            ["TooManyMissedTimes"],
            id="too-many-missed",
        ),
    ],
)
def test_decide(
    obj: dict[str, Any],
    active: list[dict[str, Any]],
    now: datetime,
    run_at: datetime | None,
    replace: bool,
    reasons: list[str],
) -> None:
    decision = decide(obj, active=active, now=now)
    assert (decision.run_at, decision.replace) == (run_at, replace)
    assert [e.reason for e in decision.events] == reasons


def test_decide_requeues_just_after_the_next_time_and_not_when_it_cannot_schedule() -> None:
    obj = with_status(cronjob(), lastScheduleTime=stamp(at(10, 0)))
    assert decide(obj, active=[], now=at(10, 0, 30)).requeue_after == pytest.approx(30.1)
    assert decide(cronjob(suspend=True), active=[], now=at(10, 0, 30)).requeue_after is None
    deleting = cronjob()
    deleting["metadata"]["deletionTimestamp"] = stamp(at(10, 0))
    assert decide(deleting, active=[], now=at(10, 5)).run_at is None


# -- the controller ----------------------------------------------------------------------------------


@dataclass
class Harness:
    client: FakeClient
    clock: FakeClock
    recorder: EventRecorder
    controller: CronJobController

    async def events(self) -> list[tuple[str, str]]:
        await self.recorder.flush()
        return [(e["reason"], e["message"]) for e in self.client.objects(EVENTS)]

    async def reasons(self) -> list[str]:
        return [reason for reason, _ in await self.events()]

    def jobs(self) -> list[dict[str, Any]]:
        return self.client.objects(JOBS)

    def job_names(self) -> list[str]:
        return [j["metadata"]["name"] for j in self.jobs()]

    async def cronjob(self, name: str = "cj") -> dict[str, Any]:
        return await self.client.get(CRONJOBS, name, NS)

    async def idle(self) -> None:
        """Until nothing is being reconciled or ready to be (the next wake-up is on the clock)."""
        await until(lambda: self.controller.queue.processing() == 0 and len(self.controller.queue) == 0)
        await asyncio.sleep(0.01)
        await until(lambda: self.controller.queue.processing() == 0 and len(self.controller.queue) == 0)

    async def assert_caches_untouched(self) -> None:
        """The controller changed no cached object: each equals the API's copy once caught up."""
        await self.idle()
        for informer, resource in ((self.controller.cronjobs, CRONJOBS), (self.controller.jobs, JOBS)):
            assert sorted(map(repr, informer.list())) == sorted(map(repr, self.client.objects(resource)))

    async def advance(self, seconds: float) -> None:
        await self.idle()
        await self.clock.step(seconds)
        await self.idle()


async def until(predicate: Callable[[], Any], *, timeout: float = 5.0) -> None:
    """Poll `predicate` (a look at the fake API or the queue) in real time, at most `timeout`."""
    async with asyncio.timeout(timeout):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.005)


@asynccontextmanager
async def running(client: FakeClient, clock: FakeClock) -> AsyncIterator[Harness]:
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "cronjob-controller", clock=clock)
    controller = CronJobController(ControllerContext(client, factory, recorder, clock))
    tasks = [asyncio.create_task(c) for c in (factory.run(), recorder.run(), controller.run())]
    try:
        await factory.wait_for_sync()
        harness = Harness(client, clock, recorder, controller)
        await harness.idle()
        yield harness
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def create_cronjob(
    client: FakeClient, name: str = "cj", *, last: datetime | None = at(10, 0), **spec: Any
) -> dict[str, Any]:
    obj = cronjob(name, **spec)
    del obj["metadata"]["uid"], obj["metadata"]["creationTimestamp"]
    created = await client.create(CRONJOBS, obj, NS)
    if last is not None:  # the fake API stamps creation with the real clock: anchor the schedule here
        created = await client.patch(
            CRONJOBS, name, {"status": {"lastScheduleTime": stamp(last)}}, NS, subresource="status"
        )
    return created


async def finish(client: FakeClient, name: str, condition: str = "Complete", when: datetime = at(10, 1, 20)) -> None:
    status: dict[str, Any] = {"conditions": [{"type": condition, "status": "True"}], "startTime": stamp(when)}
    if condition == "Complete":
        status["completionTime"] = stamp(when)
    await client.patch(JOBS, name, {"status": status}, NS, subresource="status")


def minute_job(name: str, moment: datetime) -> str:
    return job_name(name, moment)


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_wall=START)


async def test_every_minute_schedule_creates_a_job_at_each_minute(client: FakeClient, clock: FakeClock) -> None:
    await create_cronjob(client)
    async with running(client, clock) as h:
        assert h.jobs() == []
        await h.advance(31)
        await until(lambda: len(h.jobs()) == 1)
        first = h.jobs()[0]
        assert first["metadata"]["name"] == minute_job("cj", at(10, 1))
        assert first["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == "2026-01-01T10:01:00Z"
        assert first["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
        status = (await h.cronjob())["status"]
        assert status["lastScheduleTime"] == "2026-01-01T10:01:00Z"
        assert status["active"] == [
            {
                "kind": "Job",
                "namespace": NS,
                "name": first["metadata"]["name"],
                "uid": first["metadata"]["uid"],
                "apiVersion": "batch/v1",
                "resourceVersion": first["metadata"]["resourceVersion"],
            }
        ]
        await h.advance(60)
        await until(lambda: len(h.jobs()) == 2)
        assert sorted(h.job_names()) == sorted([minute_job("cj", at(10, 1)), minute_job("cj", at(10, 2))])
        assert await h.events() == [
            ("SuccessfulCreate", f"Created job {minute_job('cj', at(10, 1))}"),
            ("SuccessfulCreate", f"Created job {minute_job('cj', at(10, 2))}"),
        ]
        assert len((await h.cronjob())["status"]["active"]) == 2  # Allow: both run
        await h.assert_caches_untouched()


async def test_completed_job_leaves_active_and_sets_last_successful_time(client: FakeClient, clock: FakeClock) -> None:
    await create_cronjob(client)
    async with running(client, clock) as h:
        await h.advance(31)
        await until(lambda: len(h.jobs()) == 1)
        name = h.job_names()[0]
        await finish(client, name, when=at(10, 1, 20))
        await until(lambda: bool(client.objects(CRONJOBS)[0]["status"].get("lastSuccessfulTime")))
        status = (await h.cronjob())["status"]
        assert status["lastSuccessfulTime"] == "2026-01-01T10:01:20Z"
        assert "active" not in status
        assert ("SawCompletedJob", f"Saw completed job: {name}, condition: Complete") in await h.events()


async def test_forbid_skips_while_a_job_is_active_and_says_so_once(client: FakeClient, clock: FakeClock) -> None:
    await create_cronjob(client, concurrencyPolicy="Forbid")
    async with running(client, clock) as h:
        await h.advance(31)
        await until(lambda: len(h.jobs()) == 1)
        first = h.job_names()[0]
        await h.advance(60)  # 10:02: the 10:01 job still runs
        await client.patch(JOBS, first, {"status": {"active": 1}}, NS, subresource="status")  # a job update: sync again
        await h.idle()
        assert h.job_names() == [first]
        assert (await h.reasons()).count("JobAlreadyActive") == 1
        event = dict(await h.events())["JobAlreadyActive"]
        assert event == "Not starting job because prior execution is running and concurrency policy is Forbid"
        await finish(client, first, when=at(10, 2, 10))
        # the skipped 10:02 run starts late once the first has finished (no deadline set)
        await until(lambda: len(h.jobs()) == 2)
        assert minute_job("cj", at(10, 2)) in h.job_names()
        await h.assert_caches_untouched()


async def test_replace_deletes_the_active_job_and_starts_the_new_one(client: FakeClient, clock: FakeClock) -> None:
    await create_cronjob(client, concurrencyPolicy="Replace")
    async with running(client, clock) as h:
        await h.advance(31)
        await until(lambda: len(h.jobs()) == 1)
        first = h.job_names()[0]
        client.clear_actions()
        await h.advance(60)
        await until(lambda: h.job_names() == [minute_job("cj", at(10, 2))])
        deletes = [a for a in client.actions if a.verb == "delete" and a.resource == "jobs"]
        assert [a.name for a in deletes] == [first]
        status = (await h.cronjob())["status"]
        assert [r["name"] for r in status["active"]] == [minute_job("cj", at(10, 2))]
        reasons = await h.events()
        assert ("SuccessfulDelete", f"Deleted job {first}") in reasons
        assert reasons.index(("SuccessfulDelete", f"Deleted job {first}")) < reasons.index(
            ("SuccessfulCreate", f"Created job {minute_job('cj', at(10, 2))}")
        )
        await h.assert_caches_untouched()


async def test_history_limits_delete_the_oldest_finished_jobs(client: FakeClient, clock: FakeClock) -> None:
    created = await create_cronjob(client, successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1)
    owner = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "name": "cj",
        "uid": created["metadata"]["uid"],
        "controller": True,
    }
    for i, condition in enumerate(["Complete", "Complete", "Failed", "Complete", "Failed"]):
        name = f"old-{i}"
        await client.create(JOBS, {"metadata": {"name": name, "ownerReferences": [owner]}, "spec": {}}, NS)
        await finish(client, name, condition, when=at(9, 50 + i))
    async with running(client, clock) as h:
        await until(lambda: sorted(h.job_names()) == ["old-1", "old-3", "old-4"])
        assert sorted(m for r, m in await h.events() if r == "SuccessfulDelete") == [
            "Deleted job old-0",
            "Deleted job old-2",
        ]
        await h.assert_caches_untouched()


async def test_suspended_cronjob_starts_nothing_until_resumed(client: FakeClient, clock: FakeClock) -> None:
    await create_cronjob(client, suspend=True)
    async with running(client, clock) as h:
        for _ in range(3):
            await h.advance(60)
        assert h.jobs() == []
        await client.patch(CRONJOBS, "cj", {"spec": {"suspend": False}}, NS)
        await until(lambda: len(h.jobs()) == 1)
        assert h.job_names() == [minute_job("cj", at(10, 3))]  # only the latest missed minute


async def test_missed_runs_while_down_start_one_job(client: FakeClient, clock: FakeClock) -> None:
    await create_cronjob(client, last=at(9, 0))
    async with running(client, clock) as h:
        await until(lambda: len(h.jobs()) == 1)
        await h.idle()
        assert h.job_names() == [minute_job("cj", at(10, 0))]
        assert (await h.reasons()) == ["SuccessfulCreate"]


async def test_too_many_missed_warns_and_still_starts_one(client: FakeClient, clock: FakeClock) -> None:
    await create_cronjob(client, last=datetime(2025, 12, 30, tzinfo=UTC))
    async with running(client, clock) as h:
        await until(lambda: len(h.jobs()) == 1)
        assert h.job_names() == [minute_job("cj", at(10, 0))]
        events = dict(await h.events())
        assert events["TooManyMissedTimes"] == (
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
        )


async def test_starting_deadline_passed_skips_the_run(client: FakeClient, clock: FakeClock) -> None:
    await create_cronjob(client, schedule="0 * * * *", last=at(9, 0), startingDeadlineSeconds=10)
    async with running(client, clock) as h:
        await h.idle()
        assert h.jobs() == []  # 10:00 was 30 s ago, the deadline 10 s
        await h.advance(3600 - 30 + 1)  # woken just after 11:00, within the deadline
        await until(lambda: h.job_names() == [minute_job("cj", at(11, 0))])


async def test_existing_job_for_the_time_is_recorded_not_created_twice(client: FakeClient, clock: FakeClock) -> None:
    created = await create_cronjob(client, last=at(9, 59))
    # as if the controller crashed after creating the 10:00 job and before writing status
    await client.create(JOBS, job_from_template(created, at(10, 0)), NS)
    async with running(client, clock) as h:
        await until(lambda: bool((client.objects(CRONJOBS)[0].get("status") or {}).get("active")))
        status = (await h.cronjob())["status"]
        assert [r["name"] for r in status["active"]] == [minute_job("cj", at(10, 0))]
        assert status["lastScheduleTime"] == "2026-01-01T10:00:00Z"
        assert "SuccessfulCreate" not in await h.reasons()
        assert len(h.jobs()) == 1


async def test_manual_job_is_reported_once_and_does_not_block_forbid(client: FakeClient, clock: FakeClock) -> None:
    created = await create_cronjob(client, concurrencyPolicy="Forbid")
    manual = job_from_template(created, at(10, 0))  # as kubectl create job --from=cronjob/cj
    manual["metadata"]["name"] = "test-run"
    manual["metadata"]["annotations"] = {"cronjob.kubernetes.io/instantiate": "manual"}
    await client.create(JOBS, manual, NS)
    async with running(client, clock) as h:
        await client.patch(JOBS, "test-run", {"status": {"active": 1}}, NS, subresource="status")
        await h.idle()
        await h.advance(31)
        await until(lambda: len(h.jobs()) == 2)
        status = (await h.cronjob())["status"]
        assert [r["name"] for r in status["active"]] == [minute_job("cj", at(10, 1))]
        events = await h.events()
        assert events.count(("UnexpectedJob", "Saw a job that the controller did not create or forgot: test-run")) == 1
        assert "test-run" in h.job_names()


async def test_active_job_that_vanished_is_dropped_from_status(client: FakeClient, clock: FakeClock) -> None:
    await create_cronjob(client)
    await client.patch(CRONJOBS, "cj", {"status": {"active": [ref("ghost")]}}, NS, subresource="status")
    async with running(client, clock) as h:
        await until(lambda: "active" not in client.objects(CRONJOBS)[0]["status"])
        assert ("MissingJob", "Active job went missing: ghost") in await h.events()


async def test_schedule_change_requeues_for_the_new_next_time(client: FakeClient, clock: FakeClock) -> None:
    await create_cronjob(client, schedule="0 * * * *")
    async with running(client, clock) as h:
        await client.patch(CRONJOBS, "cj", {"spec": {"schedule": "*/5 * * * *"}}, NS)
        await h.advance(5 * 60 - 30 + 1)
        await until(lambda: h.job_names() == [minute_job("cj", at(10, 5))])


async def test_deleted_cronjob_is_forgotten(client: FakeClient, clock: FakeClock) -> None:
    await create_cronjob(client)
    async with running(client, clock) as h:
        await client.delete(CRONJOBS, "cj", NS)
        await h.advance(120)
        assert h.jobs() == []
