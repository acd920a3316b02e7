"""Reading CRI logs the way ``kubectl logs`` sees them: tail, since, timestamps, partial lines,
limitBytes, rotated files, and following across a rotation until the container ends."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kubelite.agent.streaming.logs import (
    LogOptions,
    parse_log_options,
    parse_record,
    parse_timestamp,
    read_logs,
)

T0 = "2026-01-02T03:04:05.000000001Z"
T1 = "2026-01-02T03:04:06.5Z"
T2 = "2026-01-02T03:04:07.123456789Z"


def cri(*records: tuple[str, str, str, str]) -> bytes:
    return b"".join(f"{t} {stream} {tag} {text}\n".encode() for t, stream, tag, text in records)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


async def collect(path: Path, options: LogOptions, until: asyncio.Future[object] | None = None) -> bytes:
    return b"".join([chunk async for chunk in read_logs(path, options, until=until)])


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "c" / "0.log"
    path.parent.mkdir()
    path.write_bytes(
        cri(
            (T0, "stdout", "F", "one"),
            (T1, "stderr", "F", "two"),
            (T1, "stdout", "P", "thr"),
            (T2, "stdout", "F", "ee"),
            (T2, "stdout", "F", "four"),
        )
    )
    return path


async def test_all_lines_with_partial_records_joined(log_path: Path) -> None:
    assert await collect(log_path, LogOptions()) == b"one\ntwo\nthree\nfour\n"


async def test_timestamps_prefix_each_line_with_its_first_record_time(log_path: Path) -> None:
    out = await collect(log_path, LogOptions(timestamps=True))
    assert out.decode().splitlines() == [f"{T0} one", f"{T1} two", f"{T1} three", f"{T2} four"]


@pytest.mark.parametrize(("tail", "expected"), [(0, b""), (1, b"four\n"), (2, b"three\nfour\n"), (10, None)])
async def test_tail_counts_lines_not_records(log_path: Path, tail: int, expected: bytes | None) -> None:
    out = await collect(log_path, LogOptions(tail_lines=tail))
    assert out == (expected if expected is not None else b"one\ntwo\nthree\nfour\n")


async def test_since_keeps_records_at_or_after_the_time(log_path: Path) -> None:
    assert await collect(log_path, LogOptions(since_ns=parse_timestamp(T1))) == b"two\nthree\nfour\n"
    assert await collect(log_path, LogOptions(since_ns=parse_timestamp(T2) + 1)) == b""


async def test_limit_bytes_cuts_the_output(log_path: Path) -> None:
    assert await collect(log_path, LogOptions(limit_bytes=6)) == b"one\ntw"


async def test_rotated_files_are_read_oldest_first(log_path: Path) -> None:
    Path(f"{log_path}.2").write_bytes(cri((T0, "stdout", "F", "oldest")))
    Path(f"{log_path}.1").write_bytes(cri((T0, "stdout", "F", "older")))
    out = await collect(log_path, LogOptions(tail_lines=6))
    assert out == b"oldest\nolder\none\ntwo\nthree\nfour\n"


async def test_malformed_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(b"garbage\n" + cri((T0, "stdout", "F", "ok")) + b"2026 stdout X bad\n")
    assert await collect(path, LogOptions()) == b"ok\n"


async def test_follow_streams_new_lines_across_rotation_until_the_container_ends(log_path: Path) -> None:
    exited: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    received = bytearray()
    seen = asyncio.Event()

    async def reader() -> None:
        async for chunk in read_logs(log_path, LogOptions(follow=True, tail_lines=1), until=exited):
            received.extend(chunk)
            seen.set()

    async def wait_for(text: bytes) -> None:
        async with asyncio.timeout(10):
            while text not in received:
                seen.clear()
                await seen.wait()

    task = asyncio.create_task(reader())
    await wait_for(b"four\n")
    append(log_path, cri((T2, "stdout", "F", "five")))
    await wait_for(b"five\n")
    # rotate: the old file gets one more record before it moves, then a new file starts
    append(log_path, cri((T2, "stdout", "F", "six")))
    os.replace(log_path, f"{log_path}.1")
    log_path.write_bytes(cri((T2, "stdout", "F", "seven")))
    await wait_for(b"seven\n")
    assert not task.done()
    append(log_path, cri((T2, "stdout", "F", "last")))
    exited.set_result(None)
    async with asyncio.timeout(10):
        await task
    assert bytes(received) == b"four\nfive\nsix\nseven\nlast\n"


async def test_follow_without_a_file_yet_waits_for_it(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    exited: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(collect(path, LogOptions(follow=True), exited))
    await asyncio.sleep(0.05)
    path.write_bytes(cri((T0, "stdout", "F", "hello")))
    exited.set_result(None)
    async with asyncio.timeout(10):
        assert await task == b"hello\n"


def test_parse_log_options_reads_the_kubelet_query() -> None:
    options = parse_log_options(
        {"follow": "true", "previous": "1", "tailLines": "5", "timestamps": "true", "limitBytes": "10"}
    )
    assert options == LogOptions(follow=True, previous=True, tail_lines=5, timestamps=True, limit_bytes=10)
    assert parse_log_options({"sinceSeconds": "10"}, now_ns=100_000_000_000).since_ns == 90_000_000_000
    assert parse_log_options({"sinceTime": "2026-01-02T04:04:05+01:00"}).since_ns == parse_timestamp(
        "2026-01-02T03:04:05Z"
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"sinceSeconds": "1", "sinceTime": T0}, "at most one of `sinceTime` or `sinceSeconds` may be specified"),
        ({"tailLines": "x"}, "invalid value for tailLines"),
        ({"follow": "maybe"}, "invalid value for follow"),
        ({"sinceTime": "yesterday"}, "not an RFC 3339 time"),
    ],
)
def test_parse_log_options_rejects_bad_queries(query: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_log_options(query)


def test_parse_record() -> None:
    record = parse_record(f"{T2} stderr P a b c".encode())
    assert record is not None
    assert (record.stream, record.partial, record.content) == ("stderr", True, b"a b c")
    assert record.time_ns % 1_000_000_000 == 123456789
    empty = parse_record(f"{T0} stdout F".encode())
    assert empty is not None and empty.content == b""
