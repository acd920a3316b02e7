"""CRI log records (framing, timestamps) and size-based rotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelite.agent.runtime.logs import CriFramer, CriLogWriter, format_timestamp

T = "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_767_225_600_123_456_789, "2026-01-01T00:00:00.123456789Z"),
        (1_767_225_600_120_000_000, "2026-01-01T00:00:00.12Z"),
        (1_767_225_600_000_000_001, "2026-01-01T00:00:00.000000001Z"),
    ],
)
def test_timestamps_are_rfc3339_nano_with_trailing_zeros_trimmed(ns: int, text: str) -> None:
    assert format_timestamp(ns) == text


def test_full_lines_become_f_records_and_the_rest_waits() -> None:
    framer = CriFramer("stdout")
    assert framer.feed(b"one\ntwo\nthr", T) == [f"{T} stdout F one\n".encode(), f"{T} stdout F two\n".encode()]
    assert framer.feed(b"ee\n", T) == [f"{T} stdout F three\n".encode()]
    assert framer.feed(b"\n", T) == [f"{T} stdout F \n".encode()]


def test_a_line_longer_than_the_limit_is_split_into_partial_records() -> None:
    framer = CriFramer("stderr", max_line=4)
    assert framer.feed(b"abcdefghij", T) == [f"{T} stderr P abcd\n".encode(), f"{T} stderr P efgh\n".encode()]
    assert framer.feed(b"k\nxy", T) == [f"{T} stderr F ijk\n".encode()]
    assert framer.feed(b"z", T) == []


def test_flush_ends_an_unterminated_line_as_full_or_partial() -> None:
    framer = CriFramer("stdout")
    framer.feed(b"no newline", T)
    assert framer.flush(T, final=False) == [f"{T} stdout P no newline\n".encode()]
    assert framer.flush(T) == []
    framer.feed(b"last", T)
    assert framer.flush(T) == [f"{T} stdout F last\n".encode()]


def test_the_writer_rotates_before_a_record_would_pass_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "c" / "0.log"
    writer = CriLogWriter(path, max_bytes=30, max_files=1)
    records = [f"record {i:02d} xxxxxxx\n".encode() for i in range(5)]  # 18 bytes each
    try:
        writer.write(records[:2])
        writer.write(records[2:])
    finally:
        writer.close()
    assert path.read_bytes() == records[4]
    assert Path(f"{path}.1").read_bytes() == records[3]
    assert not Path(f"{path}.2").exists()


def test_the_writer_keeps_max_files_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = CriLogWriter(path, max_bytes=10, max_files=2)
    try:
        for i in range(4):
            writer.write([f"line {i}...\n".encode()])
    finally:
        writer.close()
    assert [Path(f"{path}{suffix}").read_text() for suffix in ("", ".1", ".2")] == [
        "line 3...\n",
        "line 2...\n",
        "line 1...\n",
    ]


def test_the_writer_appends_to_an_existing_log(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(b"old\n")
    writer = CriLogWriter(path, max_bytes=100)
    writer.write([b"new\n"])
    writer.close()
    writer.write([b"ignored after close\n"])
    assert path.read_bytes() == b"old\nnew\n"
