"""The CronJob controller: starts Jobs on a schedule (upstream pkg/controller/cronjob, the v2 controller).

Contracts:

* Level-based and requeue-driven: each sync looks at the CronJob, the Jobs it controls and the
  clock, starts at most one Job — for the most recent unmet schedule time — and asks to be woken
  just after the next schedule time (`queue.add_after`); nothing polls.  Job and CronJob changes
  wake it earlier.  Schedule maths: `kubelite.controllers.cronschedule`.
* Jobs are named `<cronjob>-<scheduled time in minutes since the epoch>`: the name is the lock
  that keeps a restarted controller (or a stale cache) from starting the same run twice.  A 409
  AlreadyExists for a Job this CronJob controls means "already started": it is put in
  `status.active` without a second `SuccessfulCreate`.
* The CronJob's Jobs are those whose controller reference has its uid (manual runs from
  `kubectl create job --from=cronjob/x` included, as upstream: they are reported once as
  `UnexpectedJob`, count for `lastSuccessfulTime` and the history limits, and never enter
  `status.active`, so they do not block a Forbid CronJob).  Nothing is adopted.
* `status` (active, lastScheduleTime, lastSuccessfulTime) is written once per sync, after the
  Job writes, with the cached resourceVersion: a stale cache costs a quiet 409 and a retry.
* Upstream's events and wording: SuccessfulCreate, FailedCreate, SawCompletedJob, SuccessfulDelete,
  FailedDelete, FailedGet, UnexpectedJob, MissingJob, JobAlreadyActive, TooManyMissedTimes,
  UnknownTimeZone, UnparseableSchedule, UnsupportedSchedule, InvalidSchedule and
  UnParseableCronJobSchedule.  Unlike upstream, events that every sync of an unchanged situation
  would repeat (JobAlreadyActive and TooManyMissedTimes for one schedule time, UnexpectedJob for
  one Job, UnsupportedSchedule) are recorded once.  A run later than startingDeadlineSeconds is
  skipped without an event: upstream's MissSchedule cannot fire in its v2 controller either, since
  such times are left out before the check.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubelite.client.errors import TransportError
from kubelite.client.events import NORMAL, WARNING
from kubelite.client.interface import builtin, key_of
from kubelite.controllers import cronschedule
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.ownership import controller_ref, is_controlled_by, owner_reference
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, name_of, namespace_of, parse_time, rfc3339

log = logging.getLogger(__name__)

CRONJOBS = builtin("batch", "cronjobs")
JOBS = builtin("batch", "jobs")
API_VERSION = "batch/v1"
KIND = "CronJob"
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
CONTROLLER_UID_INDEX = "cronjob-controller/controller-uid"
TOO_MANY_MISSED_MESSAGE = (
    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
)
FORBID_MESSAGE = "Not starting job because prior execution is running and concurrency policy is Forbid"

Obj = dict[str, Any]


# -- the functional core ---------------------------------------------------------------------------


def job_name(cronjob_name: str, scheduled_time: datetime) -> str:
    """Deterministic per schedule time (minute granularity), as upstream's getJobName."""
    return f"{cronjob_name}-{int(scheduled_time.timestamp()) // 60}"


def job_from_template(cronjob: Obj, scheduled_time: datetime) -> Obj:
    """The Job to create for `scheduled_time`: the template's labels, annotations and spec, the
    scheduled-timestamp annotation (RFC 3339 in spec.timeZone, else UTC) and a controller
    reference to the CronJob."""
    spec = cronjob.get("spec") or {}
    template = spec.get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    zone = cronschedule.load_zone(spec.get("timeZone") or "")
    annotations = dict(template_meta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = cronschedule.go_rfc3339(scheduled_time.astimezone(zone))
    meta: Obj = {"name": job_name(name_of(cronjob), scheduled_time), "namespace": namespace_of(cronjob)}
    if template_meta.get("labels"):
        meta["labels"] = dict(template_meta["labels"])
    meta["annotations"] = annotations
    meta["ownerReferences"] = [owner_reference(cronjob, api_version=API_VERSION, kind=KIND)]
    return {"apiVersion": API_VERSION, "kind": "Job", "metadata": meta, "spec": deep_copy(template.get("spec") or {})}


def finished_condition(job: Obj) -> str | None:
    """ "Complete" or "Failed" when the Job has finished (that condition is True), else None."""
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def object_reference(job: Obj) -> Obj:
    meta = job.get("metadata") or {}
    ref = {
        "kind": "Job",
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "apiVersion": API_VERSION,
        "resourceVersion": meta.get("resourceVersion"),
    }
    return {k: v for k, v in ref.items() if v}


def jobs_to_trim(jobs: list[Obj], *, successful_limit: int | None, failed_limit: int | None) -> list[Obj]:
    """Finished Jobs beyond the history limits, oldest (by status.startTime, then name) first.  A
    limit that is None keeps everything (the API server defaults them to 3 and 1); Jobs already
    being deleted are not deleted again."""
    doomed: list[Obj] = []
    for kind, limit in (("Complete", successful_limit), ("Failed", failed_limit)):
        if limit is None:
            continue
        finished = [
            j for j in jobs if finished_condition(j) == kind and not (j.get("metadata") or {}).get("deletionTimestamp")
        ]
        finished.sort(key=_start_order)
        doomed += finished[: max(0, len(finished) - limit)]
    return doomed


def _start_order(job: Obj) -> tuple[int, str, str]:
    started = (job.get("status") or {}).get("startTime")
    return (0, str(started), name_of(job)) if started else (1, "", name_of(job))


@dataclass
class JobReview:
    """What the Jobs say about `status`: the new active list, the finished Jobs that left it (for
    SawCompletedJob), unfinished Jobs missing from it, active entries with no Job in the cache (to
    confirm with a live read) and the new lastSuccessfulTime."""

    active: list[Obj]
    completed: list[tuple[str, str]] = field(default_factory=list)  # (job name, condition)
    unexpected: list[Obj] = field(default_factory=list)
    unseen: list[Obj] = field(default_factory=list)
    last_successful_time: str | None = None


def review_jobs(status: Obj, jobs: list[Obj]) -> JobReview:
    active = list(status.get("active") or ())
    review = JobReview(active=active, last_successful_time=status.get("lastSuccessfulTime"))
    uids = {(j.get("metadata") or {}).get("uid") for j in jobs}
    for job in jobs:
        uid = (job.get("metadata") or {}).get("uid")
        listed = any(ref.get("uid") == uid for ref in review.active)
        condition = finished_condition(job)
        if condition is None:
            if not listed:
                review.unexpected.append(job)
            continue
        if listed:
            review.active = [ref for ref in review.active if ref.get("uid") != uid]
            review.completed.append((name_of(job), condition))
        completion = (job.get("status") or {}).get("completionTime")
        if condition == "Complete" and completion:
            current = review.last_successful_time
            if current is None or parse_time(completion) > parse_time(current):
                review.last_successful_time = completion
    review.unseen = [ref for ref in review.active if ref.get("uid") not in uids]
    return review


@dataclass(frozen=True)
class Event:
    """An event to record; `once_per` set: record it only once for that value (see the module docstring)."""

    type: str
    reason: str
    message: str
    once_per: str | None = None


@dataclass
class Decision:
    """What the schedule asks for: `run_at` (create the Job for that time, after deleting the
    active Jobs when `replace`), the events, and when to look again (seconds, None: not until the
    CronJob or its Jobs change)."""

    run_at: datetime | None = None
    replace: bool = False
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


def decide(cronjob: Obj, *, active: list[Obj], now: datetime) -> Decision:
    """The scheduling half of upstream's syncCronJob, given the already reconciled active list."""
    meta, spec, status = cronjob.get("metadata") or {}, cronjob.get("spec") or {}, cronjob.get("status") or {}
    decision = Decision()
    if meta.get("deletionTimestamp"):
        return decision
    schedule_text = str(spec.get("schedule") or "")
    time_zone = spec.get("timeZone")
    if time_zone is not None:
        try:
            cronschedule.load_zone(time_zone)
        except cronschedule.UnknownTimeZoneError as exc:
            decision.events.append(Event(WARNING, "UnknownTimeZone", f"invalid timeZone: {_quote(time_zone)}: {exc}"))
            return decision
    if spec.get("suspend"):
        return decision
    if "TZ" in schedule_text:
        decision.events.append(Event(WARNING, "UnsupportedSchedule", _unsupported(schedule_text), once_per="tz"))
    try:
        schedule = cronschedule.parse_schedule(schedule_text, None if "TZ" in schedule_text else time_zone)
        plan = cronschedule.plan(
            schedule,
            last_schedule_time=_time(status.get("lastScheduleTime")),
            creation_timestamp=_time(meta.get("creationTimestamp")) or now,
            starting_deadline_seconds=spec.get("startingDeadlineSeconds"),
            now=now,
        )
    except cronschedule.ScheduleError as exc:
        message = f"unparseable schedule: {_quote(schedule_text)} : {exc}"
        decision.events.append(Event(WARNING, "UnparseableSchedule", message))
        return decision
    except cronschedule.InvalidScheduleError as exc:
        decision.events.append(Event(WARNING, "InvalidSchedule", f"invalid schedule: {schedule_text} : {exc}"))
        return decision
    decision.requeue_after = plan.requeue_after(now)
    scheduled = plan.scheduled_time
    if scheduled is None:
        return decision
    once = rfc3339(scheduled)
    if plan.too_many_missed:
        decision.events.append(Event(WARNING, "TooManyMissedTimes", TOO_MANY_MISSED_MESSAGE, once_per=once))
    name = job_name(name_of(cronjob), scheduled)
    if any(ref.get("name") == name for ref in active) or _time(status.get("lastScheduleTime")) == scheduled:
        return decision  # this time has run already
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and active:
        decision.events.append(Event(NORMAL, "JobAlreadyActive", FORBID_MESSAGE, once_per=once))
        return decision
    decision.replace = policy == "Replace" and bool(active)
    decision.run_at = scheduled
    return decision


def _namespace_terminating(exc: ApiError) -> bool:
    """403 with upstream's NamespaceTerminating cause (or its message, when no cause is sent)."""
    if exc.code != 403:
        return False
    return any(c.reason == "NamespaceTerminating" for c in exc.causes) or "being terminated" in exc.message


def _time(text: Any) -> datetime | None:
    return parse_time(str(text)) if text else None


def _quote(text: str) -> str:
    """Go's %q for ordinary strings."""
    return json.dumps(text, ensure_ascii=False)


def _unsupported(schedule: str) -> str:
    return (
        f"CRON_TZ or TZ used in schedule {_quote(schedule)} is not officially supported, see "
        "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details"
    )


# -- the controller ------------------------------------------------------------------------------


def _cronjob_uid(job: Obj) -> list[str]:
    ref = controller_ref(job)
    return [str(ref["uid"])] if ref and ref.get("kind") == KIND and ref.get("uid") else []


class CronJobController(Controller):
    name = "cronjob-controller"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.cronjobs = self.informer(CRONJOBS)
        self.jobs = self.informer(JOBS)
        self.jobs.add_index(CONTROLLER_UID_INDEX, _cronjob_uid)
        self._reported: dict[str, set[str]] = {}  # key → once-only events recorded in its last sync
        self.cronjobs.add_handler(self.enqueue, self._on_cronjob_update, self.enqueue)
        self.jobs.add_handler(self._on_job_add, self._on_job_update, self._on_job_delete)

    # -- handlers: only enqueue -----------------------------------------------------------------

    def _on_cronjob_update(self, old: Obj, new: Obj) -> None:
        """A new schedule or zone moves the wake-up to its next time (the old wake-up, if earlier,
        finds nothing to do); any other change syncs now."""
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        if (old_spec.get("schedule"), old_spec.get("timeZone")) == (new_spec.get("schedule"), new_spec.get("timeZone")):
            self.enqueue(new)
            return
        schedule_text = str(new_spec.get("schedule") or "")
        now = self.clock.utcnow()
        try:
            schedule = cronschedule.parse_schedule(schedule_text, new_spec.get("timeZone"))
            plan = cronschedule.plan(
                schedule,
                last_schedule_time=_time((new.get("status") or {}).get("lastScheduleTime")),
                creation_timestamp=_time((new.get("metadata") or {}).get("creationTimestamp")) or now,
                starting_deadline_seconds=None,
                now=now,
            )
        except cronschedule.ScheduleError:
            message = f"unparseable schedule for cronjob: {schedule_text}"
            self.recorder.event(new, WARNING, "UnParseableCronJobSchedule", message)
            return
        except ValueError:  # unknown zone, a schedule that never fires: the sync reports it
            self.enqueue(new)
            return
        after = plan.requeue_after(now)
        if after is not None:
            self.queue.add_after(key_of(new), after)

    def _on_job_add(self, job: Obj) -> None:
        self._enqueue_owner(job, controller_ref(job))

    def _on_job_update(self, old: Obj, new: Obj) -> None:
        if (old.get("metadata") or {}).get("resourceVersion") == (new.get("metadata") or {}).get("resourceVersion"):
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref != new_ref:
            self._enqueue_owner(old, old_ref)
        self._enqueue_owner(new, new_ref)

    def _on_job_delete(self, job: Obj) -> None:
        self._enqueue_owner(job, controller_ref(job))

    def _enqueue_owner(self, job: Obj, ref: Obj | None) -> None:
        if ref is None or ref.get("kind") != KIND:
            return
        cronjob = self.cronjobs.get(f"{namespace_of(job)}/{ref.get('name')}")
        if cronjob is not None and (cronjob.get("metadata") or {}).get("uid") == ref.get("uid"):
            self.enqueue(cronjob)

    # -- the sync -----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        cronjob = self.cronjobs.get(key)
        if cronjob is None:
            self._reported.pop(key, None)
            return
        uid = str((cronjob.get("metadata") or {}).get("uid") or "")
        jobs = [j for j in self.jobs.by_index(CONTROLLER_UID_INDEX, uid) if namespace_of(j) == namespace_of(cronjob)]
        if await self._status_is_stale(cronjob, jobs):
            return  # the watch brings the newer CronJob and wakes this key again
        working = deep_copy(cronjob)
        working.setdefault("status", {})
        sync = _Sync(self, key, working, previous=self._reported.get(key, set()))
        try:
            await sync.trim_history(jobs)
            requeue = await sync.run(jobs)
        except (ApiError, TransportError):
            await self._write_status(cronjob, working)  # what did happen is recorded, as upstream
            raise
        finally:
            self._reported[key] = sync.reported
        await self._write_status(cronjob, working)
        if requeue is not None:
            self.queue.add_after(key, requeue)

    async def _status_is_stale(self, cronjob: Obj, jobs: list[Obj]) -> bool:
        """An unfinished Job missing from the cached status.active may be one this controller just
        started and recorded in a status the cache has not seen: ask the API (upstream does too)."""
        listed = {ref.get("uid") for ref in (cronjob.get("status") or {}).get("active") or ()}
        unlisted = {
            (j.get("metadata") or {}).get("uid")
            for j in jobs
            if finished_condition(j) is None and (j.get("metadata") or {}).get("uid") not in listed
        }
        if not unlisted:
            return False
        try:
            fresh = await self.client.get(CRONJOBS, name_of(cronjob), namespace_of(cronjob))
        except ApiError as exc:
            if exc.code == 404:
                return True
            raise
        if (fresh.get("metadata") or {}).get("uid") != (cronjob.get("metadata") or {}).get("uid"):
            return True
        fresh_listed = {ref.get("uid") for ref in (fresh.get("status") or {}).get("active") or ()}
        return bool(unlisted & fresh_listed)

    async def _write_status(self, cached: Obj, working: Obj) -> None:
        status = working.get("status") or {}
        if "active" in status and not status["active"]:
            del status["active"]  # omitempty, as the Go type
        if status == (cached.get("status") or {}):
            return
        await self.client.update(CRONJOBS, working, namespace_of(working), subresource="status")


class _Sync:
    """One sync of one CronJob: applies `review_jobs`, `jobs_to_trim` and `decide` through the API,
    changing `cronjob` (a private copy) as it goes."""

    def __init__(self, controller: CronJobController, key: str, cronjob: Obj, *, previous: set[str]) -> None:
        self.client = controller.client
        self.recorder = controller.recorder
        self.clock = controller.clock
        self.key = key
        self.cronjob = cronjob
        self.status: Obj = cronjob["status"]
        self.previous = previous
        self.reported: set[str] = set()

    def event(self, event: Event) -> None:
        if event.once_per is not None:
            token = f"{event.reason}/{event.once_per}"
            self.reported.add(token)
            if token in self.previous:
                return
        self.recorder.event(self.cronjob, event.type, event.reason, event.message)

    def forget_active(self, uid: Any) -> None:
        self.status["active"] = [ref for ref in self.status.get("active") or () if ref.get("uid") != uid]

    async def trim_history(self, jobs: list[Obj]) -> None:
        spec = self.cronjob.get("spec") or {}
        doomed = jobs_to_trim(
            jobs,
            successful_limit=spec.get("successfulJobsHistoryLimit"),
            failed_limit=spec.get("failedJobsHistoryLimit"),
        )
        for job in doomed:
            await self.delete_job(job, raise_errors=False)

    async def delete_job(self, job: Obj, *, raise_errors: bool) -> None:
        """Delete `job` (Background: its pods go with it) and its active entry."""
        uid = (job.get("metadata") or {}).get("uid")
        try:
            await self.client.delete(
                JOBS,
                name_of(job),
                namespace_of(job) or namespace_of(self.cronjob),
                propagation_policy="Background",
                preconditions={"uid": uid} if uid else None,
            )
        except ApiError as exc:
            if exc.code in (404, 409):  # gone, or a namesake: ours is gone
                self.forget_active(uid)
                return
            self.event(Event(WARNING, "FailedDelete", f"Deleted job: {exc.message}"))
            if raise_errors:
                raise
            return
        self.forget_active(uid)
        self.event(Event(NORMAL, "SuccessfulDelete", f"Deleted job {name_of(job)}"))

    async def run(self, jobs: list[Obj]) -> float | None:
        """Upstream's syncCronJob; returns the requeue delay."""
        review = review_jobs(self.status, jobs)
        self.status["active"] = review.active
        for name, condition in review.completed:
            self.event(Event(NORMAL, "SawCompletedJob", f"Saw completed job: {name}, condition: {condition}"))
        if review.last_successful_time:
            self.status["lastSuccessfulTime"] = review.last_successful_time
        for job in review.unexpected:
            message = f"Saw a job that the controller did not create or forgot: {name_of(job)}"
            self.event(Event(WARNING, "UnexpectedJob", message, once_per=str(job["metadata"].get("uid"))))
        for ref in review.unseen:
            await self._confirm_missing(ref)
        now = self.clock.utcnow()
        decision = decide(self.cronjob, active=self.status.get("active") or [], now=now)
        for event in decision.events:
            self.event(event)
        if decision.run_at is None:
            return decision.requeue_after
        if decision.replace:
            for ref in list(self.status.get("active") or ()):
                await self._replace(ref)
        await self._start(decision.run_at)
        return decision.requeue_after

    async def _confirm_missing(self, ref: Obj) -> None:
        """An active entry with no Job in the cache: the cache may lag, so read the Job."""
        try:
            job = await self.client.get(JOBS, str(ref.get("name")), ref.get("namespace") or namespace_of(self.cronjob))
        except ApiError as exc:
            if exc.code != 404:
                raise
            job = None
        if job is None or (job.get("metadata") or {}).get("uid") != ref.get("uid"):
            self.event(Event(NORMAL, "MissingJob", f"Active job went missing: {ref.get('name')}"))
            self.forget_active(ref.get("uid"))

    async def _replace(self, ref: Obj) -> None:
        try:
            job = await self.client.get(JOBS, str(ref.get("name")), ref.get("namespace") or namespace_of(self.cronjob))
        except ApiError as exc:
            if exc.code == 404:
                self.forget_active(ref.get("uid"))
                return
            self.event(Event(WARNING, "FailedGet", f"Get job: {exc.message}"))
            raise
        await self.delete_job(job, raise_errors=True)

    async def _start(self, scheduled: datetime) -> None:
        """Create the Job for `scheduled` and record it in status.  AlreadyExists: a Job of this
        CronJob is recorded without a second event; another actor's Job is left to them."""
        request = job_from_template(self.cronjob, scheduled)
        namespace = namespace_of(self.cronjob)
        try:
            job = await self.client.create(JOBS, request, namespace)
        except ApiError as exc:
            if _namespace_terminating(exc):
                raise  # nothing can be created there any more; no event, as upstream
            if exc.code != 409 or exc.reason != "AlreadyExists":
                self.event(Event(WARNING, "FailedCreate", f"Error creating job: {exc.message}"))
                raise
            job = await self.client.get(JOBS, name_of(request), namespace)
            if not is_controlled_by(job, self.cronjob):
                return
            uid = (job.get("metadata") or {}).get("uid")
            if any(ref.get("uid") == uid for ref in self.status.get("active") or ()):
                return
            log.info("job already exists", extra={"cronjob": self.key, "job": name_of(job)})
        else:
            self.event(Event(NORMAL, "SuccessfulCreate", f"Created job {name_of(job)}"))
        self.status.setdefault("active", []).append(object_reference(job))
        self.status["lastScheduleTime"] = rfc3339(scheduled)


__all__ = [
    "CRONJOBS",
    "JOBS",
    "SCHEDULED_TIMESTAMP_ANNOTATION",
    "CronJobController",
    "Decision",
    "Event",
    "JobReview",
    "decide",
    "finished_condition",
    "job_from_template",
    "job_name",
    "jobs_to_trim",
    "object_reference",
    "review_jobs",
]
