"""Churn soak for the SQLite backend: does it stay fast and bounded when written to for a long time?

    .venv/bin/python bench/store.py --seconds 60 --keys 1000

Many writer tasks create, update and delete objects of 1-2 KB over `--keys` keys (each writer owns a
slice of the keys, so compare-and-swap never conflicts and every write is real work), one task renews a
Lease-like key as fast as it can, and a subscriber follows the event stream (as the watch cache would)
and checks it has no gaps.  Every `--every` seconds it prints the figures that reveal the known SQLite
failures: write latency creeping up, the WAL or the file growing without bound, the event log not being
compacted.  It stops by itself after `--seconds` and removes its temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubelite.storage.interface import Backend
from kubelite.storage.sqlite import SqliteBackend, SqliteStats

LEASE_KEY = "/registry/leases/kube-system/kubelite-controller-manager"


@dataclass
class Figures:
    writes: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, since the last report
    events_seen: int = 0
    last_event: int = 0


async def writer(backend: Backend, keys: list[str], figures: Figures, stop: asyncio.Event, seed: int) -> None:
    rng = random.Random(seed)
    revisions: dict[str, int] = {}
    while not stop.is_set():
        key = rng.choice(keys)
        value = rng.randbytes(rng.randrange(1024, 2048))
        began = time.perf_counter()
        if key not in revisions:
            revisions[key] = await backend.create(key, value)
        elif rng.random() < 0.1:
            await backend.delete(key, expected_revision=revisions.pop(key))
        else:
            revisions[key] = await backend.update(key, value, expected_revision=revisions[key])
        figures.latencies.append(time.perf_counter() - began)
        figures.writes += 1


async def lease_renewer(backend: Backend, figures: Figures, stop: asyncio.Event) -> None:
    revision = await backend.create(LEASE_KEY, b'{"renewTime": 0}')
    renewals = 0
    while not stop.is_set():
        renewals += 1
        value = b'{"holderIdentity":"bench","renewTime":%d}' % renewals
        began = time.perf_counter()
        revision = await backend.update(LEASE_KEY, value, expected_revision=revision)
        figures.latencies.append(time.perf_counter() - began)
        figures.writes += 1


async def follower(backend: Backend, figures: Figures, start: int) -> None:
    """Checks the subscription has no gaps; ends when the backend closes."""
    figures.last_event = start
    async for event in backend.subscribe():
        if event.revision != figures.last_event + 1:
            raise AssertionError(f"gap in the event stream: {figures.last_event} -> {event.revision}")
        figures.last_event = event.revision
        figures.events_seen += 1


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def report(
    elapsed: float, figures: Figures, interval_writes: int, interval: float, stats: SqliteStats
) -> None:
    latencies = sorted(figures.latencies)
    figures.latencies.clear()
    mib = 1024 * 1024
    print(
        f"{elapsed:6.1f}s writes={figures.writes:>8} {interval_writes / interval:>8.0f}/s"
        f" p50={percentile(latencies, 0.50) * 1000:6.2f}ms p99={percentile(latencies, 0.99) * 1000:7.2f}ms"
        f" db={stats.db_bytes / mib:6.1f}MiB wal={stats.wal_bytes / mib:5.1f}MiB"
        f" log_rows={stats.log_rows:>6} batch={stats.writes / max(stats.write_batches, 1):5.1f}"
        f" events={figures.events_seen}",
        flush=True,
    )


async def soak(args: argparse.Namespace, directory: str) -> int:
    path = str(Path(directory) / "state.db")
    backend = SqliteBackend(path, synchronous=args.synchronous)
    await backend.start()
    figures = Figures()
    stop = asyncio.Event()
    keys = [f"/registry/configmaps/bench/cm-{i:06d}" for i in range(args.keys)]
    began = time.monotonic()
    print(f"sqlite soak: {args.seconds}s, {args.keys} keys, {args.writers} writers + 1 lease, {path}")
    async with asyncio.TaskGroup() as outer:  # the follower fails the run if it sees a gap
        outer.create_task(follower(backend, figures, await backend.current_revision()))
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(lease_renewer(backend, figures, stop))
            for i in range(args.writers):
                tasks.create_task(writer(backend, keys[i :: args.writers], figures, stop, seed=i))
            last_writes, last_time = 0, began
            while (now := time.monotonic()) - began < args.seconds:
                await asyncio.sleep(min(args.every, args.seconds - (now - began)))
                now = time.monotonic()
                stats = await backend.stats()
                report(now - began, figures, figures.writes - last_writes, now - last_time, stats)
                last_writes, last_time = figures.writes, now
            stop.set()
        final = await backend.stats()  # the writers have returned
        closing = time.perf_counter()
        await backend.close()  # ends the follower
        closed_ms = 1000 * (time.perf_counter() - closing)
    print(
        f"done: {final.writes} writes in {time.monotonic() - began:.1f}s, {final.write_batches} batches,"
        f" {final.compaction_steps} compaction steps, {final.checkpoints} TRUNCATE checkpoints,"
        f" close {closed_ms:.0f}ms,"
        f" events seen {figures.events_seen} (last {figures.last_event}, revision {final.current_revision})"
    )
    reopened = SqliteBackend(path)
    await reopened.start()
    revision = await reopened.current_revision()
    await reopened.close()
    if revision != final.current_revision or figures.last_event != revision:
        print(f"MISMATCH after reopen: revision {revision}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run")
    parser.add_argument("--keys", type=int, default=1000, help="distinct object keys")
    parser.add_argument("--writers", type=int, default=32, help="concurrent writer tasks")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between reports")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-") as directory:
        return asyncio.run(soak(args, directory))


if __name__ == "__main__":
    sys.exit(main())
