"""Prometheus metrics of the client-side machinery: work queues (client-go's ``workqueue_*`` names, so the
controller-manager dashboards work) and informers' reflectors (the ``reflector_*`` names client-go used).

Metric families exist once per `CollectorRegistry`, so they are made by a per-registry provider and
handed out per queue or informer, each a child labelled ``name``::

    queues = WorkQueueMetrics(registry)
    queue = WorkQueue(clock=clock, name="deployment", metrics=queues.queue("deployment"))

    reflectors = ReflectorMetrics(registry)
    informer = Informer(client, PODS, metrics=reflectors.reflector("pods"))

Work-queue semantics follow client-go's ``queueMetrics``: an ``add`` of an item not already waiting
counts once in ``workqueue_adds_total`` and raises ``workqueue_depth``; ``get`` lowers the depth and
observes ``workqueue_queue_duration_seconds`` (added → handed out); ``done`` observes
``workqueue_work_duration_seconds`` (handed out → done); every ``add_after`` / ``add_rate_limited``
counts in ``workqueue_retries_total``.  ``workqueue_unfinished_work_seconds`` and
``workqueue_longest_running_processor_seconds`` are computed when scraped.  Durations are on the
queue's `Clock`, so a `FakeClock` makes them exact in tests.

None of this is required: a queue or informer without metrics does exactly what it did before.
"""

from __future__ import annotations

from collections.abc import Hashable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kubelite.client.clock import Clock, RealClock

__all__ = [
    "WORKQUEUE_DURATION_BUCKETS",
    "QueueMetrics",
    "ReflectorMetrics",
    "ReflectorRecorder",
    "WorkQueueMetrics",
]

# client-go / component-base: prometheus.ExponentialBuckets(10e-9, 10, 10) → 1e-8 s … 10 s
WORKQUEUE_DURATION_BUCKETS = tuple(10.0**exponent for exponent in range(-8, 2))
LIST_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ITEMS_BUCKETS = (1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0)


class WorkQueueMetrics:
    """The ``workqueue_*`` families in one registry; `queue(name)` makes one queue's recorder."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge("workqueue_depth", "Current depth of workqueue", ["name"], registry=registry)
        self.adds = Counter("workqueue_adds", "Total number of adds handled by workqueue", ["name"], registry=registry)
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested.",
            ["name"],
            buckets=WORKQUEUE_DURATION_BUCKETS,
            registry=registry,
        )
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            ["name"],
            buckets=WORKQUEUE_DURATION_BUCKETS,
            registry=registry,
        )
        self.unfinished = Gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has done that is in progress and hasn't been observed by "
            "work_duration. Large values indicate stuck threads. One can deduce the number of stuck "
            "threads by observing the rate at which this increases.",
            ["name"],
            registry=registry,
        )
        self.longest = Gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            ["name"],
            registry=registry,
        )
        self.retries = Counter(
            "workqueue_retries", "Total number of retries handled by workqueue", ["name"], registry=registry
        )

    def queue(self, name: str) -> QueueMetrics:
        """The recorder for the queue `name` (one per queue: it tracks that queue's items)."""
        return QueueMetrics(self, name)


class QueueMetrics:
    """One queue's recorder; the `WorkQueue` calls it (see the module docstring) and gives it its clock
    through `bind`.  Synchronous, for use on the queue's event loop."""

    def __init__(self, families: WorkQueueMetrics, name: str) -> None:
        self.name = name
        self._clock: Clock = RealClock()
        self._depth = families.depth.labels(name)
        self._adds = families.adds.labels(name)
        self._queue_duration = families.queue_duration.labels(name)
        self._work_duration = families.work_duration.labels(name)
        self._retries = families.retries.labels(name)
        self._added_at: dict[Hashable, float] = {}
        self._started_at: dict[Hashable, float] = {}
        families.unfinished.labels(name).set_function(self.unfinished_seconds)
        families.longest.labels(name).set_function(self.longest_running_seconds)

    def bind(self, clock: Clock) -> None:
        """Measure on `clock` (the queue's)."""
        self._clock = clock

    def add(self, item: Hashable) -> None:
        self._adds.inc()
        self._depth.inc()
        self._added_at.setdefault(item, self._clock.now())

    def get(self, item: Hashable) -> None:
        now = self._clock.now()
        self._depth.dec()
        added = self._added_at.pop(item, None)
        if added is not None:
            self._queue_duration.observe(now - added)
        self._started_at[item] = now

    def done(self, item: Hashable) -> None:
        started = self._started_at.pop(item, None)
        if started is not None:
            self._work_duration.observe(self._clock.now() - started)

    def retry(self) -> None:
        self._retries.inc()

    def unfinished_seconds(self) -> float:
        now = self._clock.now()
        return sum(now - started for started in self._started_at.values())

    def longest_running_seconds(self) -> float:
        if not self._started_at:
            return 0.0
        return self._clock.now() - min(self._started_at.values())


class ReflectorMetrics:
    """The ``reflector_*`` families in one registry; `reflector(name)` makes one informer's recorder
    (name: the resource it lists, e.g. ``deployments.apps``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.lists = Counter(
            "reflector_lists", "Total number of API lists done by the reflectors", ["name"], registry=registry
        )
        self.list_duration = Histogram(
            "reflector_list_duration_seconds",
            "How long an API list takes to return and decode for the reflectors",
            ["name"],
            buckets=LIST_DURATION_BUCKETS,
            registry=registry,
        )
        self.items_per_list = Histogram(
            "reflector_items_per_list",
            "How many items an API list returns to the reflectors",
            ["name"],
            buckets=ITEMS_BUCKETS,
            registry=registry,
        )
        self.watches = Counter(
            "reflector_watches", "Total number of API watches done by the reflectors", ["name"], registry=registry
        )
        self.short_watches = Counter(
            "reflector_short_watches",
            "Total number of short API watches done by the reflectors",
            ["name"],
            registry=registry,
        )
        self.items_per_watch = Histogram(
            "reflector_items_per_watch",
            "How many items an API watch returns to the reflectors",
            ["name"],
            buckets=ITEMS_BUCKETS,
            registry=registry,
        )
        self.last_resource_version = Gauge(
            "reflector_last_resource_version",
            "Last resource version seen for the reflectors",
            ["name"],
            registry=registry,
        )

    def reflector(self, name: str) -> ReflectorRecorder:
        return ReflectorRecorder(self, name)


class ReflectorRecorder:
    """One informer's recorder: `listed` after each complete list, `watched` after each watch ends."""

    def __init__(self, families: ReflectorMetrics, name: str) -> None:
        self.name = name
        self._lists = families.lists.labels(name)
        self._list_duration = families.list_duration.labels(name)
        self._items_per_list = families.items_per_list.labels(name)
        self._watches = families.watches.labels(name)
        self._short_watches = families.short_watches.labels(name)
        self._items_per_watch = families.items_per_watch.labels(name)
        self._last_resource_version = families.last_resource_version.labels(name)

    def listed(self, *, seconds: float, items: int, resource_version: str) -> None:
        self._lists.inc()
        self._list_duration.observe(seconds)
        self._items_per_list.observe(items)
        self._resource_version(resource_version)

    def watched(self, *, events: int, short: bool, resource_version: str) -> None:
        self._watches.inc()
        if short:
            self._short_watches.inc()
        self._items_per_watch.observe(events)
        self._resource_version(resource_version)

    def _resource_version(self, resource_version: str) -> None:
        # resourceVersions are opaque to clients; kubelite's (and etcd's) are integers, so plot them
        if resource_version.isdigit():
            self._last_resource_version.set(float(resource_version))
