"""CrashLoopBackOff: the kubelet's restart delays (immediate, then 10 s doubling to 5 min, reset after 10 min)."""

from __future__ import annotations

import pytest

from kubelite.agent.pods.backoff import CrashLoopBackOff, format_duration
from kubelite.testing.fake_clock import FakeClock


def crash_and_restart(backoff: CrashLoopBackOff, clock: FakeClock, *, ran: float) -> float:
    """The container runs `ran` seconds and exits; returns the delay, then waits it out and restarts."""
    clock.advance(ran)
    finished = clock.now()
    delay = backoff.delay(finished)
    clock.advance(delay)
    assert backoff.delay(finished) == 0
    backoff.restarted(finished)
    return delay


def test_first_restart_is_immediate_then_windows_double_up_to_five_minutes() -> None:
    clock = FakeClock()
    backoff = CrashLoopBackOff(clock)
    delays = [crash_and_restart(backoff, clock, ran=1) for _ in range(8)]
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300]
    assert backoff.window == 300


def test_delay_counts_from_the_exit_not_from_the_check() -> None:
    clock = FakeClock()
    backoff = CrashLoopBackOff(clock)
    backoff.restarted(clock.now())  # first crash, restarted at once: window 10 s
    clock.advance(2)
    finished = clock.now()
    clock.advance(4)  # the agent looks 4 s after the exit
    assert backoff.delay(finished) == pytest.approx(6)


def test_a_container_that_ran_ten_minutes_restarts_at_once_with_a_fresh_window() -> None:
    clock = FakeClock()
    backoff = CrashLoopBackOff(clock)
    for _ in range(5):
        crash_and_restart(backoff, clock, ran=1)
    assert backoff.window == 160
    assert crash_and_restart(backoff, clock, ran=601) == 0
    assert backoff.window == 10
    assert crash_and_restart(backoff, clock, ran=1) == 10


@pytest.mark.parametrize(
    ("seconds", "text"), [(10, "10s"), (40, "40s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s"), (3600, "1h0m0s")]
)
def test_format_duration_is_gos(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
