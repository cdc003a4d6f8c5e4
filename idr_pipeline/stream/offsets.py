"""Offset bookkeeping for the sensors: the cursor, range planning and range partition keys.

Pure functions, so the rules that decide "nothing lost, nothing twice" are tested without a
broker. A range is ``[start, end)`` internally (``end`` = the next offset after it, the Kafka
convention for high watermarks); its partition key names the *inclusive* first and last offset
(``p0-000000000100-000000000199`` holds offsets 100..199), because that is what a person
reading the UI expects. Offsets are zero-padded to 12 digits so keys sort in offset order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: {topic: {partition: next offset to read}}; JSON object keys are strings, so partitions are
#: converted on the way in and out.
Cursor = dict[str, dict[int, int]]

_KEY = re.compile(r"^p(\d+)-(\d{12,})-(\d{12,})$")
_WIDTH = 12


@dataclass(frozen=True, order=True)
class OffsetRange:
    """Offsets ``start`` (inclusive) to ``end`` (exclusive) of one topic partition."""

    topic: str
    partition: int
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.partition < 0 or self.start < 0 or self.end <= self.start:
            raise ValueError(f"empty or negative range {self}")

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def key(self) -> str:
        return range_key(self.partition, self.start, self.end)


def range_key(partition: int, start: int, end: int) -> str:
    """The partition key of ``[start, end)``: first and last offset, both inclusive."""
    return f"p{partition}-{start:0{_WIDTH}d}-{end - 1:0{_WIDTH}d}"


def parse_range_key(topic: str, key: str) -> OffsetRange:
    """Inverse of :func:`range_key`; the topic is not in the key (one partitions definition per topic)."""
    match = _KEY.match(key)
    if not match:
        raise ValueError(f"not an offset-range key: {key!r}")
    partition, first, last = (int(g) for g in match.groups())
    return OffsetRange(topic, partition, first, last + 1)


def encode_cursor(cursor: Mapping[str, Mapping[int, int]]) -> str:
    return json.dumps(
        {t: {str(p): int(o) for p, o in sorted(parts.items())} for t, parts in sorted(cursor.items())},
        sort_keys=True,
    )


def decode_cursor(text: str | None) -> Cursor:
    """An empty or missing cursor means "nothing read yet"; anything else must be well formed."""
    if not text:
        return {}
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f"cursor is not a JSON object: {text!r}")
    return {str(t): {int(p): int(o) for p, o in parts.items()} for t, parts in raw.items()}


def cursor_from_keys(topic: str, keys: Iterable[str]) -> Cursor:
    """Rebuild a cursor from the ranges already turned into partitions.

    Used when a sensor starts without a cursor (first tick, or a reset): continuing after the
    highest range of each partition avoids planning ranges that overlap existing partitions.
    """
    nxt: dict[int, int] = {}
    for key in keys:
        r = parse_range_key(topic, key)
        nxt[r.partition] = max(nxt.get(r.partition, 0), r.end)
    return {topic: nxt} if nxt else {}


@dataclass(frozen=True)
class Plan:
    """The ranges of one tick and what the sensor should remember and report."""

    ranges: list[OffsetRange]
    cursor: Cursor
    #: Messages below the low watermark that retention deleted before they were read, per
    #: partition: not ours to recover, but reported rather than skipped in silence.
    expired: dict[int, int]
    #: High watermark minus the next offset to plan, per partition, before and after this tick.
    lag_before: dict[int, int]
    lag_after: dict[int, int]


def plan_ranges(
    topic: str,
    cursor: Mapping[str, Mapping[int, int]],
    low: Mapping[int, int],
    high: Mapping[int, int],
    max_messages: int,
    max_ranges_per_partition: int,
) -> Plan:
    """Cut ``[next offset, high watermark)`` of each partition into ranges of at most ``max_messages``.

    A partition the cursor has never seen starts at its low watermark. The returned cursor
    moves only past the ranges returned, so whatever is left over (more than
    ``max_ranges_per_partition`` ranges' worth) is planned on a later tick. The cursor of
    other topics is carried over unchanged.
    """
    if max_messages < 1 or max_ranges_per_partition < 1:
        raise ValueError("max_messages and max_ranges_per_partition must be positive")
    positions = dict(cursor.get(topic, {}))
    ranges: list[OffsetRange] = []
    expired: dict[int, int] = {}
    lag_before: dict[int, int] = {}
    lag_after: dict[int, int] = {}
    for partition in sorted(high):
        hw = high[partition]
        lw = low.get(partition, 0)
        start = positions.get(partition, lw)
        if start < lw:
            expired[partition] = lw - start
            start = lw
        if start > hw:
            # The topic was recreated (offsets went backwards). Refuse rather than guess: the
            # cursor must be reset deliberately.
            raise ValueError(
                f"{topic}[{partition}]: cursor at {start} is past the high watermark {hw}; "
                "was the topic recreated? Reset the sensor cursor to re-read it."
            )
        lag_before[partition] = hw - start
        for _ in range(max_ranges_per_partition):
            if start >= hw:
                break
            end = min(start + max_messages, hw)
            ranges.append(OffsetRange(topic, partition, start, end))
            start = end
        positions[partition] = start
        lag_after[partition] = hw - start
    new_cursor: Cursor = {t: dict(p) for t, p in cursor.items()}
    new_cursor[topic] = positions
    return Plan(ranges, new_cursor, expired, lag_before, lag_after)
