"""The shape every controller shares: informers → work queue of keys → `reconcile(key)`.

Contracts (after kube-controller-manager's controllers):

* Informer handlers only enqueue keys (`namespace/name`, or `name` for cluster objects); all work
  happens in `reconcile(key)`, which reads the current state from the informer caches and makes
  the API match it.  It is level-based and idempotent, so a controller can stop and start again at
  any moment and converge from whatever it finds.
* One key is never reconciled by two workers at once (the work queue guarantees it); different keys
  run concurrently on `workers` tasks.
* `reconcile` raising is retried with the queue's per-key exponential back-off (5 ms doubling to
  1000 s, as upstream); a 409 Conflict is an expected race and is retried without a log line.
  Returning normally forgets the key's back-off.  A reconcile that wants to look again later (a
  deadline, minReadySeconds) calls `self.queue.add_after(key, seconds)`.
* `run()` waits until every informer the controller asked for has synced, then works until
  cancelled.  Informers come from the shared factory of the `ControllerContext`, so controllers in
  one process share watches and caches; whoever owns the factory runs it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kubelite.client.clock import Clock, RealClock
from kubelite.client.errors import TransportError
from kubelite.client.events import EventRecorder
from kubelite.client.informer import Informer, SharedInformerFactory
from kubelite.client.interface import Client, key_of
from kubelite.client.metrics import WorkQueueMetrics
from kubelite.client.workqueue import QueueShutDown, WorkQueue
from kubelite.machinery.errors import ApiError
from kubelite.machinery.resources import Resource

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 5


@dataclass
class ControllerContext:
    """What a controller is built from: the API, the shared informers, an event recorder and a clock."""

    client: Client
    informers: SharedInformerFactory
    recorder: EventRecorder
    clock: Clock = field(default_factory=RealClock)
    queue_metrics: WorkQueueMetrics | None = None  # each controller's queue records workqueue_* under its name


class Controller:
    """Subclasses set `name`, ask for informers in `__init__` (through `self.informer(...)`), register
    handlers that call `self.enqueue(obj)` and implement `reconcile(key)`."""

    name: ClassVar[str] = "controller"

    def __init__(self, context: ControllerContext, *, workers: int = DEFAULT_WORKERS) -> None:
        self.context = context
        self.client = context.client
        self.recorder = context.recorder
        self.clock = context.clock
        self.workers = workers
        metrics = context.queue_metrics.queue(self.name) if context.queue_metrics is not None else None
        self.queue: WorkQueue[str] = WorkQueue(clock=context.clock, name=self.name, metrics=metrics)
        self._synced_before_start: list[Informer] = []

    # -- wiring -------------------------------------------------------------------------------------

    def informer(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Informer:
        """The shared informer for `resource`; `run()` waits for it to sync before any reconcile."""
        found = self.context.informers.informer(
            resource, namespace, label_selector=label_selector, field_selector=field_selector
        )
        if found not in self._synced_before_start:
            self._synced_before_start.append(found)
        return found

    def enqueue(self, obj: dict[str, Any]) -> None:
        self.queue.add(key_of(obj))

    def enqueue_key(self, key: str) -> None:
        self.queue.add(key)

    # -- the work -----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """Make the world match the object at `key` (which may be gone)."""
        raise NotImplementedError

    async def run(self) -> None:
        """Wait for the caches, then reconcile keys on `workers` tasks until cancelled."""
        for informer in self._synced_before_start:
            await informer.wait_for_sync()
        log.info("controller caches synced", extra={"controller": self.name})
        try:
            async with asyncio.TaskGroup() as tasks:
                for _ in range(self.workers):
                    tasks.create_task(self._work())
        finally:
            self.queue.shutdown()

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.code != 409:
                    log.warning(
                        "reconcile failed; retrying",
                        extra={"controller": self.name, "key": key, "reason": exc.reason, "error": str(exc)},
                    )
                self.queue.add_rate_limited(key)
            except Exception as exc:  # one object's failure must not stop the controller
                log.warning(
                    "reconcile failed; retrying",
                    extra={"controller": self.name, "key": key, "error": repr(exc)},
                    exc_info=not isinstance(exc, TransportError),
                )
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
            finally:
                self.queue.done(key)


__all__ = ["DEFAULT_WORKERS", "Controller", "ControllerContext"]
