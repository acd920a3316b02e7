"""WorkQueue: client-go's guarantees (stingy, exclusive, fair), delays and rate limiting on a FakeClock."""

from __future__ import annotations

import asyncio
import random

import pytest

from kubelite.client.workqueue import (
    BucketRateLimiter,
    ItemExponentialRateLimiter,
    QueueShutDown,
    WorkQueue,
    default_controller_rate_limiter,
)
from kubelite.testing.fake_clock import FakeClock


def new_queue(clock: FakeClock | None = None) -> WorkQueue[str]:
    return WorkQueue(clock=clock or FakeClock())


async def test_items_are_handed_out_in_the_order_they_were_added() -> None:
    queue = new_queue()
    for item in ("a", "b", "c"):
        queue.add(item)
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]


async def test_item_added_several_times_before_processing_is_processed_once() -> None:
    queue = new_queue()
    for item in ("a", "b", "a", "a", "b"):
        queue.add(item)
    assert len(queue) == 2
    assert queue.len() == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    assert len(queue) == 0


async def test_item_re_added_while_processing_is_queued_again_when_done() -> None:
    queue = new_queue()
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0, "never handed out while a worker holds it"
    queue.done("a")
    assert len(queue) == 1
    assert await queue.get() == "a"
    queue.done("a")
    assert len(queue) == 0


async def test_done_without_re_add_does_not_queue_the_item_again() -> None:
    queue = new_queue()
    queue.add("a")
    queue.done(await queue.get())
    assert len(queue) == 0
    assert queue.processing() == 0


async def test_an_item_is_never_processed_by_two_workers_at_once() -> None:
    queue = new_queue()
    rng = random.Random(7)
    in_flight: set[str] = set()
    processed: list[str] = []
    overlaps: list[str] = []

    async def worker() -> None:
        while True:
            try:
                item = await queue.get()
            except QueueShutDown:
                return
            if item in in_flight:
                overlaps.append(item)
            in_flight.add(item)
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
            if rng.random() < 0.5:
                queue.add(item)  # changed again while we work on it
            in_flight.discard(item)
            processed.append(item)
            queue.done(item)

    async with asyncio.TaskGroup() as tasks:
        for _ in range(4):
            tasks.create_task(worker())
        for round_ in range(50):
            for item in ("a", "b", "c"):
                queue.add(item)
            if round_ % 5 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0)
        await queue.shutdown_with_drain()

    assert overlaps == []
    assert set(processed) == {"a", "b", "c"}
    assert len(queue) == 0 and queue.processing() == 0


async def test_get_waits_for_an_item_and_a_cancelled_get_takes_nothing() -> None:
    queue = new_queue()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.add("a")
    assert await asyncio.wait_for(getter, 1) == "a"
    assert len(queue) == 0


async def test_add_after_makes_the_item_ready_once_the_delay_has_passed() -> None:
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add_after("a", 5.0)
    assert len(queue) == 0 and queue.waiting() == 1
    getter = asyncio.ensure_future(queue.get())
    await clock.wait_for_sleepers(1)
    await clock.step(4.9)
    assert not getter.done()
    await clock.step(0.1)
    assert await asyncio.wait_for(getter, 1) == "a"
    assert queue.waiting() == 0


async def test_add_after_twice_keeps_the_earlier_time() -> None:
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add_after("a", 10.0)
    queue.add_after("a", 2.0)
    queue.add_after("a", 7.0)
    assert queue.waiting() == 1
    getter = asyncio.ensure_future(queue.get())
    await clock.wait_for_sleepers(1)
    await clock.step(2.0)
    assert await asyncio.wait_for(getter, 1) == "a"
    queue.done("a")
    await clock.step(10.0)
    assert len(queue) == 0, "the later times were dropped"


async def test_an_earlier_delayed_item_wakes_a_getter_waiting_for_a_later_one() -> None:
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add_after("late", 60.0)
    getter = asyncio.ensure_future(queue.get())
    await clock.wait_for_sleepers(1)
    queue.add_after("soon", 1.0)
    await asyncio.sleep(0)
    await clock.step(1.0)
    assert await asyncio.wait_for(getter, 1) == "soon"


async def test_add_after_with_no_delay_adds_at_once() -> None:
    queue = new_queue()
    queue.add_after("a", 0)
    assert len(queue) == 1


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(1, 0.005), (2, 0.01), (3, 0.02), (4, 0.04), (10, 2.56), (18, 655.36), (19, 1000.0), (100, 1000.0)],
)
def test_per_item_backoff_doubles_from_5ms_up_to_1000s(failures: int, expected: float) -> None:
    limiter = ItemExponentialRateLimiter()
    delays = [limiter.when("a") for _ in range(failures)]
    assert delays[-1] == pytest.approx(expected)
    assert limiter.retries("a") == failures


def test_per_item_backoff_is_per_item_and_forget_resets_it() -> None:
    limiter = ItemExponentialRateLimiter(base_delay=1.0, max_delay=8.0)
    assert [limiter.when("a") for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert limiter.when("b") == 1.0
    limiter.forget("a")
    assert limiter.retries("a") == 0
    assert limiter.when("a") == 1.0


def test_bucket_limiter_allows_a_burst_then_spaces_items_by_qps() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10.0, burst=3, clock=clock)
    assert [limiter.when(i) for i in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.when(3) == pytest.approx(0.1)
    assert limiter.when(4) == pytest.approx(0.2)
    clock.advance(10.0)
    assert limiter.when(5) == 0.0


def test_default_controller_limiter_is_the_slower_of_item_backoff_and_bucket() -> None:
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock, burst=2)
    assert limiter.when("a") == pytest.approx(0.005)
    assert limiter.when("a") == pytest.approx(0.01)
    assert limiter.when("b") == pytest.approx(0.1), "the bucket is empty: 10 qps"
    limiter.forget("a")
    assert limiter.retries("a") == 0


async def test_add_rate_limited_backs_off_per_item_and_forget_resets() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock, rate_limiter=ItemExponentialRateLimiter(1.0, 100.0))
    for expected_delay in (1.0, 2.0, 4.0):
        queue.add_rate_limited("a")
        getter = asyncio.ensure_future(queue.get())
        await clock.wait_for_sleepers(1)
        await clock.step(expected_delay - 0.01)
        assert not getter.done()
        await clock.step(0.01)
        assert await asyncio.wait_for(getter, 1) == "a"
        queue.done("a")
    assert queue.num_requeues("a") == 3
    queue.forget("a")
    assert queue.num_requeues("a") == 0
    queue.add_rate_limited("a")
    getter = asyncio.ensure_future(queue.get())
    await clock.wait_for_sleepers(1)
    await clock.step(1.0)
    assert await asyncio.wait_for(getter, 1) == "a"


async def test_shutdown_hands_out_queued_items_then_raises_and_ignores_new_ones() -> None:
    clock = FakeClock()
    queue = new_queue(clock)
    queue.add("a")
    queue.add_after("later", 1.0)
    queue.shutdown()
    queue.add("b")
    queue.add_after("c", 1.0)
    assert queue.shutting_down
    assert await queue.get() == "a"
    with pytest.raises(QueueShutDown):
        await queue.get()
    await clock.step(5.0)
    with pytest.raises(QueueShutDown):
        await queue.get()


async def test_shutdown_wakes_every_waiting_get() -> None:
    queue = new_queue()
    getters = [asyncio.ensure_future(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)
    queue.shutdown()
    results = await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), 1)
    assert all(isinstance(r, QueueShutDown) for r in results)


async def test_shutdown_with_drain_waits_for_items_in_process() -> None:
    queue = new_queue()
    queue.add("a")
    item = await queue.get()
    drain = asyncio.ensure_future(queue.shutdown_with_drain())
    await asyncio.sleep(0)
    assert not drain.done()
    queue.done(item)
    await asyncio.wait_for(drain, 1)
