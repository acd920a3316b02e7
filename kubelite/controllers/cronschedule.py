"""CronJob schedule maths, pure: parsing a schedule and finding the times a CronJob should run.

Semantics are those of the CronJob controller (robfig/cron/v3's `ParseStandard` and `Next`), not
of any other cron:

* A schedule is five fields (minute hour day-of-month month day-of-week, names allowed), a macro
  (`@yearly` `@annually` `@monthly` `@weekly` `@daily` `@midnight` `@hourly`) or `@every <Go
  duration>`.  `croniter` parses the fields; the day rule is cron's: when day-of-month or
  day-of-week is `*` both must match, otherwise either may.
* Times are wall-clock times in the schedule's zone (`spec.timeZone`, a legacy `TZ=`/`CRON_TZ=`
  prefix, else UTC — the zone this cluster's controller manager runs in).  Across daylight-saving
  changes `next()` steps hours in absolute time as upstream does: a time that does not exist
  (02:30 when clocks jump 02:00→03:00) is skipped for that day, and a time that exists twice
  (01:30 when clocks fall back) runs twice.
* `plan()` is the controller's whole view of time for one sync: at most one run — the most recent
  unmet time — is started however many were missed (no storm after an outage); the count of missed
  times is reported so that more than `MANY_MISSED` can be warned about; and the next time to look
  again is returned, so the controller requeues instead of polling.

Errors: `ScheduleError` (unparseable schedule, upstream's parser wording) and `UnknownTimeZoneError`
(an IANA name zoneinfo does not know).  `InvalidScheduleError`: a schedule that parses but never
fires (`0 0 31 2 *`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

MANY_MISSED = 100  # more missed start times than this is probably clock skew (upstream's limit)
NEXT_SCHEDULE_DELTA = 0.1  # seconds added to a requeue so the controller wakes just after the time
YEARS_SEARCHED = 5  # robfig/cron gives up on a schedule with no time in the next five years

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


class ScheduleError(ValueError):
    """The schedule does not parse."""


class UnknownTimeZoneError(ValueError):
    """The time zone is not an IANA name known to this host; the message is Go's."""


class InvalidScheduleError(ValueError):
    """The schedule parses but yields no usable times (upstream's "invalid schedule")."""


def load_zone(name: str) -> tzinfo:
    """The zone called `name`; "" and "UTC" are UTC (as Go's `time.LoadLocation`)."""
    if name in ("", "UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise UnknownTimeZoneError(f"unknown time zone {name}") from exc


@dataclass(frozen=True)
class CronSchedule:
    """A five-field schedule in `zone`; `next()` is robfig/cron's `SpecSchedule.Next`."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday
    any_day: bool  # day-of-month or day-of-week was `*`: both must match, else either
    zone: tzinfo = UTC

    def next(self, after: datetime) -> datetime | None:
        """The first time strictly after `after` (whole seconds), or None if there is none within
        five years.  The result is aware, in the schedule's zone."""
        t = _plus(_floor_second(after.astimezone(self.zone)), 1)
        added = False
        year_limit = t.year + YEARS_SEARCHED
        while t.year <= year_limit:
            # each field, coarse to fine; moving a field resets the finer ones once ("added"), and a
            # wrap-around starts the checks again from the year
            if t.month not in self.months:
                if not added:
                    added, t = True, _wall(t.year, t.month, 1, 0, 0, self.zone)
                t = _wall(t.year, t.month + 1, t.day, t.hour, t.minute, self.zone)
                continue
            if not self._day_matches(t):
                if not added:
                    added, t = True, _wall(t.year, t.month, t.day, 0, 0, self.zone)
                t = _wall(t.year, t.month, t.day + 1, t.hour, t.minute, self.zone)
                if t.hour != 0:  # midnight did not exist (DST): back to the day's first hour
                    t = _plus(t, (24 - t.hour) * 3600 if t.hour > 12 else -t.hour * 3600)
                continue
            if t.hour not in self.hours:
                if not added:
                    added, t = True, _wall(t.year, t.month, t.day, t.hour, 0, self.zone)
                t = _plus(t, 3600)
                continue
            if t.minute not in self.minutes:
                if not added:
                    added, t = True, _floor_minute(t)
                t = _plus(t, 60)
                continue
            if t.second != 0:
                added, t = True, _plus(_floor_minute(t), 60)
                continue
            return t
        return None

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days_of_month
        dow = (t.weekday() + 1) % 7 in self.days_of_week
        return (dom and dow) if self.any_day else (dom or dow)


@dataclass(frozen=True)
class EverySchedule:
    """`@every <duration>`: a fixed delay (whole seconds, at least one) after the previous time."""

    delay: timedelta

    def next(self, after: datetime) -> datetime | None:
        return _floor_second(after) + self.delay


Schedule = CronSchedule | EverySchedule


def parse_schedule(spec: str, time_zone: str | None = None) -> Schedule:
    """Parse `spec` as upstream does.  A `TZ=`/`CRON_TZ=` prefix (legacy objects only: the API
    server refuses it on new ones) wins over `time_zone`; without either, times are UTC.

    Raises ScheduleError, or UnknownTimeZoneError for a bad `time_zone`.
    """
    spec = spec.strip()
    if not spec:
        raise ScheduleError("empty spec string")
    zone = load_zone(time_zone) if time_zone else UTC
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        name = spec[spec.find("=") + 1 : space if space >= 0 else len(spec)]
        try:
            zone = load_zone(name)
        except UnknownTimeZoneError as exc:
            raise ScheduleError(f"provided bad location {name}: {exc}") from exc
        spec = spec[space:].strip() if space >= 0 else ""
    if spec.startswith("@every "):
        return EverySchedule(_every(spec[len("@every ") :].strip()))
    if spec.startswith("@"):
        if spec not in MACROS:
            raise ScheduleError(f"unrecognized descriptor: {spec}")
        spec = MACROS[spec]
    return _five_fields(spec, zone)


def _five_fields(spec: str, zone: tzinfo) -> CronSchedule:
    fields = spec.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    fields = [f.replace("?", "*") for f in fields]  # robfig reads `?` as `*` in every field
    try:
        expanded, nth = croniter.expand(" ".join(fields))
    except CroniterError as exc:
        raise ScheduleError(str(exc)) from exc
    if nth:
        raise ScheduleError(f"unsupported day-of-week syntax: {fields[4]}")
    sets: list[frozenset[int]] = []
    for values, (low, high) in zip(expanded, _RANGES, strict=True):
        if any(not isinstance(v, int) and v != "*" for v in values):
            raise ScheduleError(f"unsupported syntax: {' '.join(fields)}")
        sets.append(frozenset(range(low, high + 1)) if "*" in values else frozenset(int(v) for v in values))
    return CronSchedule(
        minutes=sets[0],
        hours=sets[1],
        days_of_month=sets[2],
        months=sets[3],
        days_of_week=frozenset(d % 7 for d in sets[4]),
        any_day=_is_star(fields[2]) or _is_star(fields[4]),
        zone=zone,
    )


def _is_star(field: str) -> bool:
    """robfig's star bit: some comma part is `*` with no step above 1."""
    for part in field.split(","):
        base, slash, step = part.partition("/")
        if base == "*" and (not slash or (step.lstrip("+").isdigit() and int(step) <= 1)):
            return True
    return False


def _every(text: str) -> timedelta:
    """A Go duration ("1h30m", "90s", "1.5h"), cut to whole seconds, at least one second."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        seconds = 0.0
    else:
        parts = list(_DURATION_PART.finditer(body))
        if not parts or "".join(p.group(0) for p in parts) != body:
            raise ScheduleError(f'failed to parse duration @every {text}: time: invalid duration "{text}"')
        seconds = sum(float(p.group(1)) * _UNIT_SECONDS[p.group(2)] for p in parts)
    return timedelta(seconds=max(1, int(sign * seconds)))


# -- Go time arithmetic ---------------------------------------------------------------------------


def _plus(t: datetime, seconds: int) -> datetime:
    """`t.Add(seconds)`: absolute time, not wall clock (Python's aware `+` is wall clock)."""
    zone = t.tzinfo
    return (t.astimezone(UTC) + timedelta(seconds=seconds)).astimezone(zone)


def _floor_second(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def _floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def _wall(year: int, month: int, day: int, hour: int, minute: int, zone: tzinfo | None) -> datetime:
    """Go's `time.Date(year, month, day, hour, minute, 0, 0, zone)`: out-of-range months and days
    roll over; a wall time in a DST gap or overlap gets Go's choice of offset."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    naive = datetime(year, month, 1) + timedelta(days=day - 1, hours=hour, minutes=minute)
    as_utc = naive.replace(tzinfo=UTC)
    offset = as_utc.astimezone(zone).utcoffset() or timedelta(0)
    moment = as_utc - offset
    actual = moment.astimezone(zone).utcoffset() or timedelta(0)
    if actual != offset:  # the guess straddled a transition: use the offset in force at the instant
        moment = as_utc - actual
    return moment.astimezone(zone)


# -- Go's time format for the scheduled-timestamp annotation ------------------------------------


def go_rfc3339(moment: datetime) -> str:
    """Go's time.RFC3339: seconds, "Z" for a zero offset, else ±hh:mm."""
    offset = moment.utcoffset() or timedelta(0)
    if not offset:
        return f"{moment:%Y-%m-%dT%H:%M:%S}Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{moment:%Y-%m-%dT%H:%M:%S}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# -- when to run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchedulePlan:
    """One sync's answer.  `scheduled_time`: the single run to start now (the most recent unmet
    time within the starting deadline), or None.  `missed`: unmet times in the window, counted up to
    `MANY_MISSED + 1`.  `next_time`: the next time after now (None for a schedule that never fires);
    `requeue_after(now)` is how long to wait for it."""

    scheduled_time: datetime | None
    missed: int
    next_time: datetime | None

    @property
    def too_many_missed(self) -> bool:
        return self.missed > MANY_MISSED

    def requeue_after(self, now: datetime) -> float | None:
        if self.next_time is None:
            return None
        return max(0.0, (self.next_time - now).total_seconds()) + NEXT_SCHEDULE_DELTA


def earliest_time(
    *,
    last_schedule_time: datetime | None,
    creation_timestamp: datetime,
    starting_deadline_seconds: int | None,
    now: datetime,
) -> datetime:
    """Where unmet times start: the last run (else the CronJob's creation), but no earlier than
    `starting_deadline_seconds` ago — a run later than that is not started at all."""
    earliest = last_schedule_time or creation_timestamp
    if starting_deadline_seconds is not None:
        deadline = now - timedelta(seconds=starting_deadline_seconds)
        earliest = max(earliest, deadline)
    return earliest


def unmet_times(schedule: Schedule, *, earliest: datetime, now: datetime) -> tuple[datetime | None, int]:
    """The most recent schedule time in (earliest, now] and how many there are (counted to
    MANY_MISSED + 1).  Exact, and cheap however long the controller was away: counting stops after
    the limit and the most recent is then found by searching back from `now`.

    Raises InvalidScheduleError when the schedule has no time after `earliest`.
    """
    first = schedule.next(earliest)
    if first is None:
        raise InvalidScheduleError("time difference between two schedules is less than 1 second")
    if first > now:
        return None, 0
    latest, count = first, 1
    while count <= MANY_MISSED:
        following = schedule.next(latest)
        if following is None or following > now:
            return latest, count
        latest, count = following, count + 1
    return _latest_up_to(schedule, earliest, now, interval=(latest - first) / (count - 1)), count


def _latest_up_to(schedule: Schedule, earliest: datetime, now: datetime, *, interval: timedelta) -> datetime | None:
    """The last time in (earliest, now]: walk forward from ever further back until one is found."""
    back = max(interval, timedelta(seconds=1)) * 2
    while True:
        start = max(earliest, now - back)
        latest = None
        moment = schedule.next(start)
        while moment is not None and moment <= now:
            latest, moment = moment, schedule.next(moment)
        if latest is not None or start == earliest:
            return latest
        back *= 2


def plan(
    schedule: Schedule,
    *,
    last_schedule_time: datetime | None,
    creation_timestamp: datetime,
    starting_deadline_seconds: int | None,
    now: datetime,
) -> SchedulePlan:
    """The run to start now (at most one), the missed count and the next time; see SchedulePlan.

    Raises InvalidScheduleError for a schedule that never fires.
    """
    earliest = earliest_time(
        last_schedule_time=last_schedule_time,
        creation_timestamp=creation_timestamp,
        starting_deadline_seconds=starting_deadline_seconds,
        now=now,
    )
    scheduled, missed = unmet_times(schedule, earliest=earliest, now=now)
    # the next time ignores the deadline: it is the first time after now (or after a future
    # lastScheduleTime, when clocks disagree)
    base = last_schedule_time or creation_timestamp
    return SchedulePlan(scheduled, missed, schedule.next(max(base, now)))


__all__ = [
    "MACROS",
    "MANY_MISSED",
    "NEXT_SCHEDULE_DELTA",
    "CronSchedule",
    "EverySchedule",
    "InvalidScheduleError",
    "Schedule",
    "ScheduleError",
    "SchedulePlan",
    "UnknownTimeZoneError",
    "earliest_time",
    "go_rfc3339",
    "load_zone",
    "parse_schedule",
    "plan",
    "unmet_times",
]
