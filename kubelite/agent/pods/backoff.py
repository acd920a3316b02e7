"""CrashLoopBackOff: how long a failed container waits before the agent starts it again.

The kubelet's rules (``flowcontrol.Backoff`` as ``doBackOff`` uses it), per container:

* the first restart is immediate and arms a 10 s window; each later restart doubles the window, up
  to 5 minutes;
* a container that exited at `finished_at` may restart once `finished_at + window` has passed;
  until then it waits with reason CrashLoopBackOff and the message ``back-off <window> ...``;
* a container that ran longer than twice the cap (10 minutes) since its last restart starts over:
  it restarts at once and the window is 10 s again.

Times are the injected `Clock`'s monotonic seconds, so tests move time instead of sleeping.
"""

from __future__ import annotations

from kubelite.client.clock import Clock

INITIAL_SECONDS = 10.0
MAX_SECONDS = 300.0

__all__ = ["INITIAL_SECONDS", "MAX_SECONDS", "CrashLoopBackOff", "format_duration"]


class CrashLoopBackOff:
    """One container's back-off state.  `delay` decides, `restarted` records a restart."""

    def __init__(self, clock: Clock, *, initial: float = INITIAL_SECONDS, cap: float = MAX_SECONDS) -> None:
        self._clock = clock
        self.initial = initial
        self.cap = cap
        self._window: float | None = None  # None: no restart recorded yet
        self._last_restart = 0.0

    @property
    def window(self) -> float:
        """The current window in seconds (0 before the first restart): the message's ``back-off``."""
        return self._window or 0.0

    def _expired(self, moment: float) -> bool:
        return moment - self._last_restart > 2 * self.cap

    def delay(self, finished_at: float) -> float:
        """Seconds from now until a container that exited at `finished_at` may start again; 0: now."""
        if self._window is None or self._expired(finished_at):
            return 0.0
        return max(0.0, finished_at + self._window - self._clock.now())

    def restarted(self, finished_at: float) -> None:
        """Record a restart of a container that exited at `finished_at` (it is being started now)."""
        if self._window is None or self._expired(finished_at):
            self._window = self.initial
        else:
            self._window = min(self._window * 2, self.cap)
        self._last_restart = self._clock.now()


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration`` String for whole seconds: ``10s``, ``2m40s``, ``5m0s``."""
    total = round(seconds)
    minutes, secs = divmod(total, 60)
    if minutes == 0:
        return f"{secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f"{minutes}m{secs}s"
    return f"{hours}h{minutes}m{secs}s"
