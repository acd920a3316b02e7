"""The proxy's sync loop (kubelite.proxy.proxy.run_proxy) with a FakeClient, a FakeClock and a recording back end:
what triggers a sync, the min_sync_period rate limit, retries, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

import pytest

from kubelite.client.interface import builtin
from kubelite.proxy.commands import CommandError
from kubelite.proxy.model import ServicePortName, ServicePortPlan
from kubelite.proxy.proxy import ProxyConfig, run_proxy
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock
from kubelite.testing.servicelab import service_object, slice_object

SERVICES = builtin("", "services")
SLICES = builtin("discovery.k8s.io", "endpointslices")


class RecordingProxier:
    mode = "recording"

    def __init__(self) -> None:
        self.synced: list[set[str]] = []
        self.fail_next = 0
        self.closed = False
        self.changed = asyncio.Event()

    async def sync(self, plans: Mapping[ServicePortName, ServicePortPlan]) -> None:
        self.changed.set()
        if self.fail_next:
            self.fail_next -= 1
            raise CommandError(["nft"], 1, "boom")
        self.synced.append({str(name) for name in plans})

    async def close(self) -> None:
        self.closed = True

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.synced) < count:
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def proxy(client: FakeClient, clock: FakeClock, proxier: RecordingProxier) -> AsyncIterator[None]:
    config = ProxyConfig(node_name="node", node_ips=("192.0.2.1",), min_sync_period=1.0, sync_period=30.0)
    task = asyncio.create_task(run_proxy(client, config, clock=clock, proxier=proxier))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def test_first_sync_happens_at_once_with_every_service_port():
    client, clock, proxier = FakeClient(), FakeClock(), RecordingProxier()
    await client.create(SERVICES, service_object("web", "10.43.0.5"), "default")
    await client.create(SLICES, slice_object("web", "10.42.0.2"), "default")
    async with proxy(client, clock, proxier):
        await proxier.wait_for(1)
    assert proxier.synced == [{"default/web:http"}]
    assert proxier.closed


async def test_changes_within_min_sync_period_wait_for_it_and_fold_into_one_sync():
    client, clock, proxier = FakeClient(), FakeClock(), RecordingProxier()
    async with proxy(client, clock, proxier):
        await proxier.wait_for(1)
        await client.create(SERVICES, service_object("a", "10.43.0.5"), "default")
        await client.create(SERVICES, service_object("b", "10.43.0.6"), "default")
        await settle()
        assert len(proxier.synced) == 1  # rate-limited: the second sync waits for min_sync_period
        await clock.step(1.0)
        await proxier.wait_for(2)
        assert proxier.synced[1] == {"default/a:http", "default/b:http"}
        await clock.step(5.0)  # quiet for longer than min_sync_period: the next change goes through at once
        await settle()
        await client.delete(SERVICES, "a", "default")
        await proxier.wait_for(3)
        assert proxier.synced[2] == {"default/b:http"}


async def test_periodic_resync_without_changes():
    client, clock, proxier = FakeClient(), FakeClock(), RecordingProxier()
    async with proxy(client, clock, proxier):
        await proxier.wait_for(1)
        await clock.wait_for_sleepers(1)
        await clock.step(30.0)
        await proxier.wait_for(2)


async def test_failed_sync_is_retried_after_back_off():
    client, clock, proxier = FakeClient(), FakeClock(), RecordingProxier()
    proxier.fail_next = 1
    async with proxy(client, clock, proxier):
        await clock.wait_for_sleepers(1)
        assert proxier.synced == []
        await clock.step(1.0)  # the back-off (0.5 s), and min_sync_period since the failed attempt
        await proxier.wait_for(1)


def test_config_rejects_unknown_mode():
    with pytest.raises(ValueError, match="iptables"):
        ProxyConfig(node_name="n", node_ips=(), mode="iptables")
