"""CronJob schedule maths: parsing, robfig/cron's next-time rules (DST included) and the sync plan."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kubelite.controllers.cronschedule import (
    MANY_MISSED,
    CronSchedule,
    EverySchedule,
    InvalidScheduleError,
    ScheduleError,
    UnknownTimeZoneError,
    go_rfc3339,
    parse_schedule,
    plan,
    unmet_times,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def times(spec: str, start: datetime, count: int, time_zone: str | None = None) -> list[datetime | None]:
    schedule = parse_schedule(spec, time_zone)
    out: list[datetime | None] = []
    moment: datetime | None = start
    for _ in range(count):
        assert moment is not None
        moment = schedule.next(moment)
        out.append(moment)
    return out


@pytest.mark.parametrize(
    ("spec", "start", "expected"),
    [
        pytest.param(
            "* * * * *", utc(2026, 1, 1, 10, 0), [utc(2026, 1, 1, 10, 1), utc(2026, 1, 1, 10, 2)], id="every-minute"
        ),
        pytest.param(
            "*/1 * * * *", utc(2026, 1, 1, 10, 0, 30), [utc(2026, 1, 1, 10, 1), utc(2026, 1, 1, 10, 2)], id="step-1"
        ),
        pytest.param(
            "*/15 * * * *", utc(2026, 1, 1, 10, 7), [utc(2026, 1, 1, 10, 15), utc(2026, 1, 1, 10, 30)], id="quarter"
        ),
        pytest.param("@hourly", utc(2026, 1, 1, 10, 0), [utc(2026, 1, 1, 11), utc(2026, 1, 1, 12)], id="hourly"),
        pytest.param("@daily", utc(2026, 1, 1, 10), [utc(2026, 1, 2), utc(2026, 1, 3)], id="daily"),
        pytest.param("@midnight", utc(2026, 1, 1, 0), [utc(2026, 1, 2), utc(2026, 1, 3)], id="midnight"),
        pytest.param("@weekly", utc(2026, 1, 1), [utc(2026, 1, 4), utc(2026, 1, 11)], id="weekly-sundays"),
        pytest.param("@monthly", utc(2026, 1, 15), [utc(2026, 2, 1), utc(2026, 3, 1)], id="monthly"),
        pytest.param("@yearly", utc(2026, 1, 1), [utc(2027, 1, 1), utc(2028, 1, 1)], id="yearly"),
        pytest.param("@annually", utc(2026, 6, 1), [utc(2027, 1, 1), utc(2028, 1, 1)], id="annually"),
        pytest.param("0 9 * JAN-MAR mon", utc(2026, 1, 1), [utc(2026, 1, 5, 9), utc(2026, 1, 12, 9)], id="names"),
        # day-of-month and day-of-week both restricted: either matches (2026-01-01 is a Thursday)
        pytest.param(
            "0 0 1,15 * 1", utc(2026, 1, 1), [utc(2026, 1, 5), utc(2026, 1, 12), utc(2026, 1, 15)], id="dom-or-dow"
        ),
        # one of them `*`: both must match
        pytest.param("0 0 13 * *", utc(2026, 1, 1), [utc(2026, 1, 13), utc(2026, 2, 13)], id="dom-only"),
        pytest.param("0 0 29 2 *", utc(2026, 1, 1), [utc(2028, 2, 29), utc(2032, 2, 29)], id="leap-day"),
        pytest.param("30 6-16/4 * * 1-5", utc(2026, 1, 2, 15), [utc(2026, 1, 5, 6, 30)], id="weekdays-over-weekend"),
        pytest.param("@every 90m", utc(2026, 1, 1, 0, 0, 5), [utc(2026, 1, 1, 1, 30, 5)], id="every"),
    ],
)
def test_next_follows_cron_rules(spec: str, start: datetime, expected: list[datetime]) -> None:
    assert times(spec, start, len(expected)) == expected


def test_next_of_a_time_exactly_on_the_schedule_is_the_following_one() -> None:
    assert times("0 * * * *", utc(2026, 1, 1, 10), 1) == [utc(2026, 1, 1, 11)]


def test_next_is_none_for_a_schedule_that_never_fires() -> None:
    assert times("0 0 31 2 *", utc(2026, 1, 1), 1) == [None]


def test_time_zone_makes_wall_clock_times_in_that_zone() -> None:
    got = times("0 9 * * *", utc(2026, 1, 1), 1, "America/New_York")
    assert got == [utc(2026, 1, 1, 14)]  # 09:00 EST
    got = times("0 9 * * *", utc(2026, 7, 1), 1, "America/New_York")
    assert got == [utc(2026, 7, 1, 13)]  # 09:00 EDT


def test_legacy_tz_prefix_sets_the_zone() -> None:
    assert times("CRON_TZ=Europe/Berlin 0 9 * * *", utc(2026, 1, 1), 1) == [utc(2026, 1, 1, 8)]


@pytest.mark.parametrize(
    ("spec", "start", "expected"),
    [
        # spring forward (2026-03-08 02:00 EST → 03:00 EDT): 02:30 does not exist that day and is skipped
        pytest.param(
            "30 2 * * *",
            datetime(2026, 3, 7, 12, tzinfo=NY),
            ["2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"],
            id="spring-gap-skipped",
        ),
        # fall back (2026-11-01 02:00 EDT → 01:00 EST): 01:30 exists twice and runs twice
        pytest.param(
            "30 1 * * *",
            datetime(2026, 10, 31, 12, tzinfo=NY),
            ["2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00"],
            id="fall-overlap-twice",
        ),
        # minute schedules step in absolute time through the change
        pytest.param(
            "*/30 * * * *",
            datetime(2026, 3, 8, 1, 0, tzinfo=NY),
            ["2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"],
            id="spring-every-30-minutes",
        ),
        pytest.param(
            "@hourly",
            datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN),
            ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"],
            id="berlin-hourly-spring",
        ),
    ],
)
def test_daylight_saving_changes_follow_upstream(spec: str, start: datetime, expected: list[str]) -> None:
    zone = str(start.tzinfo)
    got = times(spec, start, len(expected), zone)
    assert [t.isoformat() if t else None for t in got] == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        ("@every soon", 'failed to parse duration @every soon: time: invalid duration "soon"'),
        ("TZ=Mars/Olympus * * * * *", "provided bad location Mars/Olympus: unknown time zone Mars/Olympus"),
        ("61 * * * *", "out of range"),
    ],
)
def test_unparseable_schedules_raise_schedule_error(spec: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=re.escape(message)):
        parse_schedule(spec)


def test_unknown_time_zone_raises_with_gos_wording() -> None:
    with pytest.raises(UnknownTimeZoneError, match=r"^unknown time zone Mars/Olympus$"):
        parse_schedule("* * * * *", "Mars/Olympus")


def test_question_mark_and_step_one_keep_the_star_rule() -> None:
    schedule = parse_schedule("0 0 ? * */1")
    assert isinstance(schedule, CronSchedule) and schedule.any_day
    assert not parse_schedule("0 0 1 * */2").any_day  # type: ignore[union-attr]


def test_every_is_cut_to_whole_seconds_and_at_least_one() -> None:
    assert parse_schedule("@every 1.5s") == EverySchedule(timedelta(seconds=1))
    assert parse_schedule("@every 500ms") == EverySchedule(timedelta(seconds=1))
    assert parse_schedule("@every 1h30m") == EverySchedule(timedelta(minutes=90))


# -- the plan ---------------------------------------------------------------------------------------

CREATED = utc(2026, 1, 1, 9, 0, 30)


@pytest.mark.parametrize(
    ("spec", "last", "deadline", "now", "scheduled", "missed", "next_time"),
    [
        pytest.param(
            "* * * * *",
            utc(2026, 1, 1, 10),
            None,
            utc(2026, 1, 1, 10, 0, 30),
            None,
            0,
            utc(2026, 1, 1, 10, 1),
            id="before-next-minute",
        ),
        pytest.param(
            "* * * * *",
            utc(2026, 1, 1, 10),
            None,
            utc(2026, 1, 1, 10, 1),
            utc(2026, 1, 1, 10, 1),
            1,
            utc(2026, 1, 1, 10, 2),
            id="on-the-minute",
        ),
        pytest.param(
            "* * * * *",
            None,
            None,
            utc(2026, 1, 1, 9, 1, 5),
            utc(2026, 1, 1, 9, 1),
            1,
            utc(2026, 1, 1, 9, 2),
            id="first-run-counts-from-creation",
        ),
        pytest.param(
            "* * * * *",
            utc(2026, 1, 1, 10),
            None,
            utc(2026, 1, 1, 10, 5, 30),
            utc(2026, 1, 1, 10, 5),
            5,
            utc(2026, 1, 1, 10, 6),
            id="missed-while-down-runs-once",
        ),
        pytest.param(
            "* * * * *",
            utc(2026, 1, 1, 10),
            60,
            utc(2026, 1, 1, 10, 5, 30),
            utc(2026, 1, 1, 10, 5),
            1,
            utc(2026, 1, 1, 10, 6),
            id="deadline-narrows-the-window",
        ),
        pytest.param(
            "* * * * *",
            utc(2026, 1, 1, 10),
            10,
            utc(2026, 1, 1, 10, 5, 30),
            None,
            0,
            utc(2026, 1, 1, 10, 6),
            id="deadline-passed-nothing-to-run",
        ),
        pytest.param(
            "@hourly",
            utc(2026, 1, 1, 10),
            None,
            utc(2026, 1, 1, 12, 59),
            utc(2026, 1, 1, 12),
            2,
            utc(2026, 1, 1, 13),
            id="hourly-two-missed",
        ),
        pytest.param(
            "* * * * *",
            utc(2026, 1, 1, 11),
            None,
            utc(2026, 1, 1, 10, 30),
            None,
            0,
            utc(2026, 1, 1, 11, 1),
            id="last-schedule-in-the-future",
        ),
    ],
)
def test_plan_starts_at_most_the_latest_unmet_time(
    spec: str,
    last: datetime | None,
    deadline: int | None,
    now: datetime,
    scheduled: datetime | None,
    missed: int,
    next_time: datetime,
) -> None:
    got = plan(
        parse_schedule(spec),
        last_schedule_time=last,
        creation_timestamp=CREATED,
        starting_deadline_seconds=deadline,
        now=now,
    )
    assert (got.scheduled_time, got.missed, got.next_time) == (scheduled, missed, next_time)
    assert not got.too_many_missed


def test_too_many_missed_times_still_runs_the_latest_once() -> None:
    now = utc(2026, 1, 3, 7, 42, 10)
    got = plan(
        parse_schedule("* * * * *"),
        last_schedule_time=utc(2026, 1, 1),
        creation_timestamp=CREATED,
        starting_deadline_seconds=None,
        now=now,
    )
    assert got.too_many_missed and got.missed == MANY_MISSED + 1
    assert got.scheduled_time == utc(2026, 1, 3, 7, 42)
    assert got.next_time == utc(2026, 1, 3, 7, 43)
    assert got.requeue_after(now) == pytest.approx(50.1)


def test_too_many_missed_finds_the_latest_of_an_irregular_schedule() -> None:
    # weekdays 06:30, 10:30, 14:30: months missed; "now" is a Sunday, the latest run Friday 14:30
    scheduled, missed = unmet_times(
        parse_schedule("30 6-16/4 * * 1-5"), earliest=utc(2025, 10, 1), now=utc(2026, 1, 4, 12)
    )
    assert missed > MANY_MISSED
    assert scheduled == utc(2026, 1, 2, 14, 30)


def test_a_starting_deadline_keeps_a_long_outage_from_counting_as_too_many() -> None:
    got = plan(
        parse_schedule("* * * * *"),
        last_schedule_time=utc(2026, 1, 1),
        creation_timestamp=CREATED,
        starting_deadline_seconds=200,
        now=utc(2026, 1, 3, 7, 42, 10),
    )
    assert (got.scheduled_time, got.missed, got.too_many_missed) == (utc(2026, 1, 3, 7, 42), 4, False)


def test_plan_uses_the_crons_zone() -> None:
    got = plan(
        parse_schedule("0 9 * * *", "America/New_York"),
        last_schedule_time=utc(2026, 1, 1, 14),
        creation_timestamp=CREATED,
        starting_deadline_seconds=None,
        now=utc(2026, 1, 2, 14, 0, 1),
    )
    assert (got.scheduled_time, got.missed, got.next_time) == (utc(2026, 1, 2, 14), 1, utc(2026, 1, 3, 14))


def test_plan_across_spring_forward_in_the_crons_zone() -> None:
    schedule = parse_schedule("30 2 * * *", "America/New_York")
    # down over the night with no 02:30: the latest unmet time is the day before's
    got = plan(
        schedule,
        last_schedule_time=utc(2026, 3, 6, 7, 30),
        creation_timestamp=CREATED,
        starting_deadline_seconds=None,
        now=datetime(2026, 3, 8, 12, tzinfo=NY),
    )
    assert got.scheduled_time == datetime(2026, 3, 7, 2, 30, tzinfo=NY)
    assert got.missed == 1
    assert got.next_time == datetime(2026, 3, 9, 2, 30, tzinfo=NY)


def test_a_schedule_that_never_fires_is_invalid() -> None:
    with pytest.raises(InvalidScheduleError, match="less than 1 second"):
        plan(
            parse_schedule("0 0 30 2 *"),
            last_schedule_time=None,
            creation_timestamp=CREATED,
            starting_deadline_seconds=None,
            now=utc(2026, 5, 1),
        )


def test_requeue_after_adds_a_small_delta_past_the_next_time() -> None:
    now = utc(2026, 1, 1, 10, 0, 30)
    got = plan(
        parse_schedule("* * * * *"),
        last_schedule_time=utc(2026, 1, 1, 10),
        creation_timestamp=CREATED,
        starting_deadline_seconds=None,
        now=now,
    )
    assert got.requeue_after(now) == pytest.approx(30.1)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2026, 1, 1, 10, 1), "2026-01-01T10:01:00Z"),
        (datetime(2026, 1, 1, 10, 1, tzinfo=ZoneInfo("Europe/London")), "2026-01-01T10:01:00Z"),
        (datetime(2026, 7, 1, 10, 1, tzinfo=ZoneInfo("Europe/London")), "2026-07-01T10:01:00+01:00"),
        (datetime(2026, 1, 1, 10, 1, tzinfo=NY), "2026-01-01T10:01:00-05:00"),
        (datetime(2026, 1, 1, 10, 1, tzinfo=ZoneInfo("Asia/Kolkata")), "2026-01-01T10:01:00+05:30"),
    ],
)
def test_go_rfc3339_writes_z_only_for_a_zero_offset(moment: datetime, expected: str) -> None:
    assert go_rfc3339(moment) == expected
