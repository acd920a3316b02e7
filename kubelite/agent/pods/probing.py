"""The probes of one container attempt, wired to its pod worker.

Contracts, as the kubelet's prober manager:

* With a startupProbe, only it runs until it succeeds; then the container is ``started`` and its
  liveness and readiness probes start.  Without one the container is started at once.
* ``ready`` is the readiness probe's state (initially false); without a readiness probe a started
  container is ready.
* A liveness or startup failure (the prober's thresholded state turning false) emits Killing
  ``Container <c> failed <kind> probe, will be restarted``, stops this attempt's probes and asks the
  worker to kill the container; it restarts per restartPolicy with a new set of probes.
* Every failed attempt emits Unhealthy ``<Kind> probe failed: <message>``.
* Results for an attempt that is no longer the slot's running one are ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from kubelite.agent.pods.containers import Slot
from kubelite.agent.pods.probes import ProbeContext, Prober
from kubelite.client.clock import Clock

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]
Emit = Callable[[Slot, str, str, str], None]

__all__ = ["AttemptProbes", "stop_probes"]


def stop_probes(slot: Slot) -> None:
    for task in slot.probers:
        task.cancel()
    slot.probers.clear()


class AttemptProbes:
    """Starts the probes of `slot`'s attempt `container_id` as tasks made by `spawn` (kept in
    ``slot.probers``); `changed` wakes the worker, `kill` asks it to stop the container."""

    def __init__(
        self,
        slot: Slot,
        container_id: str,
        ctx: ProbeContext,
        *,
        clock: Clock,
        spawn: Spawn,
        changed: Callable[[], None],
        emit: Emit,
        kill: Callable[[Slot, str], None],
    ) -> None:
        self.slot, self.container_id, self.ctx = slot, container_id, ctx
        self._clock, self._spawn, self._changed, self._emit, self._kill = clock, spawn, changed, emit, kill

    def start(self) -> None:
        if self.slot.spec.get("startupProbe"):
            self._run("startup")
        else:
            self._started()

    def _current(self) -> bool:
        current = self.slot.current
        return current is not None and current.id == self.container_id and self.slot.running

    def _started(self) -> None:
        self.slot.started = True
        self.slot.ready = not self.slot.spec.get("readinessProbe")
        for kind in ("liveness", "readiness"):
            if self.slot.spec.get(f"{kind}Probe"):
                self._run(kind)
        self._changed()

    def _run(self, kind: str) -> None:
        slot = self.slot

        def on_change(ok: bool) -> None:
            if not self._current():
                return
            if kind == "readiness":
                slot.ready = ok
                self._changed()
            elif kind == "startup" and ok:
                self._started()
            elif not ok:
                self._emit(slot, "Normal", "Killing", f"Container {slot.name} failed {kind} probe, will be restarted")
                stop_probes(slot)
                self._kill(slot, self.container_id)

        def on_failure(message: str) -> None:
            if self._current():
                self._emit(slot, "Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {message}")

        prober = Prober(
            kind,  # type: ignore[arg-type]
            slot.spec[f"{kind}Probe"],
            self.ctx,
            clock=self._clock,
            on_change=on_change,
            on_failure=on_failure,
        )
        slot.probers.append(self._spawn(self._supervise(prober), f"{kind}-{slot.name}"))

    async def _supervise(self, prober: Prober) -> None:
        try:
            await prober.run()
        except Exception:  # supervision point: a broken probe must not take the pod down
            log.exception("prober failed", extra={"container": self.container_id})
