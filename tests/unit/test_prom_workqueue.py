"""Work-queue and reflector metrics under client-go's names, measured on a FakeClock."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kubelite.client.metrics import WORKQUEUE_DURATION_BUCKETS, ReflectorMetrics, WorkQueueMetrics
from kubelite.client.workqueue import ItemExponentialRateLimiter, WorkQueue
from kubelite.testing.fake_clock import FakeClock


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition text, parsed back (so the text itself is checked too)."""
    text = generate_latest(registry).decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float:
    return samples(registry)[(metric, tuple(sorted(labels.items())))]


def metered_queue(registry: CollectorRegistry, clock: FakeClock, name: str = "deployment") -> WorkQueue[str]:
    return WorkQueue(
        clock=clock,
        name=name,
        rate_limiter=ItemExponentialRateLimiter(1.0, 60.0),
        metrics=WorkQueueMetrics(registry).queue(name),
    )


async def test_adds_count_distinct_waiting_items_and_depth_follows_get() -> None:
    registry, clock = CollectorRegistry(), FakeClock()
    queue = metered_queue(registry, clock)
    for item in ("a", "b", "a"):
        queue.add(item)
    assert value(registry, "workqueue_adds_total", name="deployment") == 2
    assert value(registry, "workqueue_depth", name="deployment") == 2
    await queue.get()
    assert value(registry, "workqueue_depth", name="deployment") == 1


async def test_queue_and_work_durations_are_measured_on_the_queue_clock() -> None:
    registry, clock = CollectorRegistry(), FakeClock()
    queue = metered_queue(registry, clock)
    queue.add("a")
    clock.advance(0.5)
    item = await queue.get()
    clock.advance(2.0)
    queue.done(item)
    assert value(registry, "workqueue_queue_duration_seconds_sum", name="deployment") == 0.5
    assert value(registry, "workqueue_queue_duration_seconds_count", name="deployment") == 1
    assert value(registry, "workqueue_work_duration_seconds_sum", name="deployment") == 2.0
    assert value(registry, "workqueue_work_duration_seconds_bucket", name="deployment", le="10.0") == 1
    assert value(registry, "workqueue_work_duration_seconds_bucket", name="deployment", le="1.0") == 0


async def test_unfinished_work_and_longest_processor_are_computed_when_scraped() -> None:
    registry, clock = CollectorRegistry(), FakeClock()
    queue = metered_queue(registry, clock)
    queue.add("a")
    queue.add("b")
    first = await queue.get()
    clock.advance(3.0)
    await queue.get()
    clock.advance(1.0)
    assert value(registry, "workqueue_unfinished_work_seconds", name="deployment") == 5.0
    assert value(registry, "workqueue_longest_running_processor_seconds", name="deployment") == 4.0
    queue.done(first)
    assert value(registry, "workqueue_longest_running_processor_seconds", name="deployment") == 1.0


async def test_rate_limited_and_delayed_adds_count_as_retries() -> None:
    registry, clock = CollectorRegistry(), FakeClock()
    queue = metered_queue(registry, clock)
    queue.add_rate_limited("a")
    queue.add_after("b", 0)
    queue.add("c")
    assert value(registry, "workqueue_retries_total", name="deployment") == 2
    assert value(registry, "workqueue_adds_total", name="deployment") == 2  # "a" waits for its back-off


async def test_an_item_readded_while_processing_counts_once_more_and_is_measured_again() -> None:
    registry, clock = CollectorRegistry(), FakeClock()
    queue = metered_queue(registry, clock)
    queue.add("a")
    item = await queue.get()
    queue.add("a")  # dirty while processing: queued again on done
    assert value(registry, "workqueue_depth", name="deployment") == 1
    clock.advance(1.0)
    queue.done(item)
    clock.advance(1.0)
    await queue.get()
    assert value(registry, "workqueue_depth", name="deployment") == 0
    assert value(registry, "workqueue_adds_total", name="deployment") == 2
    assert value(registry, "workqueue_queue_duration_seconds_sum", name="deployment") == 2.0


async def test_queues_share_one_registry_under_their_own_names() -> None:
    registry, clock = CollectorRegistry(), FakeClock()
    families = WorkQueueMetrics(registry)
    first = WorkQueue[str](clock=clock, name="replicaset", metrics=families.queue("replicaset"))
    second = WorkQueue[str](clock=clock, name="job", metrics=families.queue("job"))
    first.add("x")
    second.add("y")
    second.add("z")
    assert value(registry, "workqueue_depth", name="replicaset") == 1
    assert value(registry, "workqueue_depth", name="job") == 2


async def test_queue_without_metrics_behaves_as_before() -> None:
    queue = WorkQueue[str](clock=FakeClock())
    queue.add("a")
    queue.add_after("b", 0)
    item = await queue.get()
    queue.done(item)
    assert len(queue) == 1


def test_workqueue_buckets_are_client_gos_exponential_ones() -> None:
    assert WORKQUEUE_DURATION_BUCKETS[0] == 1e-8
    assert WORKQUEUE_DURATION_BUCKETS[-1] == 10.0
    assert len(WORKQUEUE_DURATION_BUCKETS) == 10


def test_reflector_counts_lists_and_watches_per_name() -> None:
    registry = CollectorRegistry()
    reflectors = ReflectorMetrics(registry)
    pods = reflectors.reflector("pods")
    deployments = reflectors.reflector("deployments.apps")
    pods.listed(seconds=0.02, items=3, resource_version="41")
    pods.watched(events=5, short=False, resource_version="57")
    pods.watched(events=0, short=True, resource_version="57")
    deployments.listed(seconds=0.01, items=0, resource_version="")
    assert value(registry, "reflector_lists_total", name="pods") == 1
    assert value(registry, "reflector_watches_total", name="pods") == 2
    assert value(registry, "reflector_short_watches_total", name="pods") == 1
    assert value(registry, "reflector_items_per_list_sum", name="pods") == 3
    assert value(registry, "reflector_items_per_watch_sum", name="pods") == 5
    assert value(registry, "reflector_last_resource_version", name="pods") == 57
    assert value(registry, "reflector_lists_total", name="deployments.apps") == 1
