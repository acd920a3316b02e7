"""A parser for the part of the Prometheus text exposition format the kubelet's ``/metrics/resource``
uses: ``name{label="value",…} value [timestamp_ms]`` lines, ``#`` comments.  Pure; lines that do not
parse are skipped (a scraper must not fail a whole node on one odd line)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Sample", "parse_text"]


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float
    timestamp_ms: int | None


def _parse_labels(text: str) -> tuple[dict[str, str], str] | None:
    """Labels from just after ``{``; returns them and the rest of the line after ``}``."""
    labels: dict[str, str] = {}
    i = 0
    while True:
        while i < len(text) and text[i] in " ,":
            i += 1
        if i < len(text) and text[i] == "}":
            return labels, text[i + 1 :]
        eq = text.find("=", i)
        if eq < 0 or eq + 1 >= len(text) or text[eq + 1] != '"':
            return None
        key = text[i:eq].strip()
        i = eq + 2
        value: list[str] = []
        while i < len(text) and text[i] != '"':
            if text[i] == "\\" and i + 1 < len(text):
                i += 1
                value.append({"n": "\n"}.get(text[i], text[i]))
            else:
                value.append(text[i])
            i += 1
        if i >= len(text):
            return None
        labels[key] = "".join(value)
        i += 1


def _parse_line(line: str) -> Sample | None:
    brace = line.find("{")
    space = line.find(" ")
    if brace >= 0 and (space < 0 or brace < space):
        name = line[:brace]
        parsed = _parse_labels(line[brace + 1 :])
        if parsed is None:
            return None
        labels, rest = parsed
    else:
        name, _, rest = line.partition(" ")
        labels = {}
    fields = rest.split()
    if not name or not fields or len(fields) > 2:
        return None
    try:
        value = float(fields[0])
        timestamp = int(fields[1]) if len(fields) == 2 else None
    except ValueError:
        return None
    if math.isnan(value):
        return None
    return Sample(name, labels, value, timestamp)


def parse_text(text: str) -> list[Sample]:
    samples: list[Sample] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        sample = _parse_line(line)
        if sample is not None:
            samples.append(sample)
    return samples
