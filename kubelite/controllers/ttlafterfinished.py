"""The TTL-after-finished controller: deletes finished Jobs `spec.ttlSecondsAfterFinished` seconds
after they finished (upstream's pkg/controller/ttlafterfinished).

Contracts:

* A Job is a candidate when it has a TTL, a True `Complete` or `Failed` condition, and no
  deletionTimestamp.  It finished at that condition's lastTransitionTime; it expires TTL seconds
  later.  Before expiry the key is requeued for the remaining time (`queue.add_after`).
* The cache may be stale (someone may have raised the TTL): before deleting, the Job is read
  fresh from the API and checked again, and the delete carries the fresh uid as a precondition so
  it cannot hit a re-created namesake.
* The delete cascades to the Job's pods with `propagation_policy` (Background by default).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from kubelite.client.interface import PropagationPolicy, key_of
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.job import JOBS
from kubelite.controllers.job_policy import finish_time, is_finished
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import name_of, namespace_of

log = logging.getLogger(__name__)


def needs_cleanup(job: Mapping[str, Any]) -> bool:
    """Has a TTL and has finished."""
    return (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None and is_finished(job)


def expiry(job: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """(finished at, expires at) of a Job that needs clean-up; None when it does not, or when its
    terminal condition carries no time."""
    if not needs_cleanup(job):
        return None
    finished = finish_time(job)
    if finished is None:
        return None
    ttl = int((job.get("spec") or {})["ttlSecondsAfterFinished"])
    return finished, finished + timedelta(seconds=ttl)


def time_left(job: Mapping[str, Any], now: datetime) -> float | None:
    """Seconds until the Job's TTL expires (<= 0: expired); None when it is no candidate."""
    found = expiry(job)
    if found is None:
        return None
    return (found[1] - now).total_seconds()


class TTLAfterFinishedController(Controller):
    """Watches batch/v1 Jobs; see the module docstring."""

    name = "ttl-after-finished-controller"

    def __init__(self, context: ControllerContext, *, propagation_policy: PropagationPolicy = "Background") -> None:
        super().__init__(context)
        self.propagation_policy: PropagationPolicy = propagation_policy
        self.jobs = self.informer(JOBS)
        self.jobs.add_handler(self._changed, lambda _old, new: self._changed(new))

    def _changed(self, job: dict[str, Any]) -> None:
        if not (job.get("metadata") or {}).get("deletionTimestamp") and needs_cleanup(job):
            self.enqueue(job)

    def _expired(self, job: Mapping[str, Any]) -> bool:
        """True when `job` is due for deletion; otherwise requeue it for when it will be."""
        if (job.get("metadata") or {}).get("deletionTimestamp"):
            return False
        left = time_left(job, self.clock.utcnow())
        if left is None:
            if needs_cleanup(job):
                log.warning("finished Job has no finish time; not cleaning it up", extra={"job": key_of(dict(job))})
            return False
        if left > 0:
            self.queue.add_after(key_of(dict(job)), left)
            return False
        return True

    async def reconcile(self, key: str) -> None:
        cached = self.jobs.get(key)
        if cached is None or not self._expired(cached):
            return
        namespace, name = namespace_of(cached), name_of(cached)
        try:
            fresh = await self.client.get(JOBS, name, namespace)
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        if not self._expired(fresh):
            return  # the TTL changed meanwhile
        uid = str((fresh.get("metadata") or {}).get("uid") or "")
        log.info("deleting finished Job whose TTL expired", extra={"job": key})
        try:
            await self.client.delete(
                JOBS,
                name,
                namespace,
                propagation_policy=self.propagation_policy,
                preconditions={"uid": uid} if uid else None,
            )
        except ApiError as exc:
            if exc.code != 404:
                raise


__all__ = ["TTLAfterFinishedController", "expiry", "needs_cleanup", "time_left"]
