"""Offset bookkeeping for the sensors: the cursor, range planning and range partition keys.

Pure functions, so the rules that decide "nothing lost, nothing twice" are tested without a
broker. A range is ``[start, end)`` internally (``end`` = the next offset after it, the Kafka
convention for high watermarks); its partition key names the *inclusive* first and last offset
(``p0-000000000100-000000000199`` holds offsets 100..199), because that is what a person
reading the UI expects. Offsets are zero-padded to 12 digits so keys sort in offset order.
A key may end in ``-t<topic id>`` (32 hex digits): a topic deleted and created again starts its
offsets over, and the id keeps its ranges apart from the old topic's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from idr_pipeline.stream.guard import PositionMismatch, check_positions

#: {topic: {partition: next offset to read}}; JSON object keys are strings, so partitions are
#: converted on the way in and out.
Cursor = dict[str, dict[int, int]]

_KEY = re.compile(r"^p(\d+)-(\d{12,})-(\d{12,})(?:-t([0-9a-f]{32}))?$")
_WIDTH = 12


@dataclass(frozen=True, order=True)
class OffsetRange:
    """Offsets ``start`` (inclusive) to ``end`` (exclusive) of one topic partition."""

    topic: str
    partition: int
    start: int
    end: int
    #: Kafka's id of the topic the range was planned on (compact hex), or "" when unknown.
    topic_id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.partition < 0 or self.start < 0 or self.end <= self.start:
            raise ValueError(f"empty or negative range {self}")

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def key(self) -> str:
        return range_key(self.partition, self.start, self.end, self.topic_id)


def compact_topic_id(topic_id: str | None) -> str:
    """A topic id as it appears in keys: the UUID's 32 hex digits."""
    return (topic_id or "").replace("-", "").lower()


def range_key(partition: int, start: int, end: int, topic_id: str | None = None) -> str:
    """The partition key of ``[start, end)``: first and last offset, both inclusive, then the topic id."""
    key = f"p{partition}-{start:0{_WIDTH}d}-{end - 1:0{_WIDTH}d}"
    return f"{key}-t{compact_topic_id(topic_id)}" if topic_id else key


def parse_range_key(topic: str, key: str) -> OffsetRange:
    """Inverse of :func:`range_key`; the topic is not in the key (one partitions definition per topic)."""
    match = _KEY.match(key)
    if not match:
        raise ValueError(f"not an offset-range key: {key!r}")
    partition, first, last, topic_id = match.groups()
    return OffsetRange(topic, int(partition), int(first), int(last) + 1, topic_id or "")


def encode_cursor(cursor: Mapping[str, Mapping[int, int]]) -> str:
    return json.dumps(
        {t: {str(p): int(o) for p, o in sorted(parts.items())} for t, parts in sorted(cursor.items())},
        sort_keys=True,
    )


def decode_cursor(text: str | None) -> Cursor:
    """An empty or missing cursor means "nothing read yet"; anything else must be well formed.

    Keys starting with "_" carry the cursor's metadata (:func:`cursor_meta`), not topics.
    """
    if not text:
        return {}
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f"cursor is not a JSON object: {text!r}")
    return {
        str(t): {int(p): int(o) for p, o in parts.items()}
        for t, parts in raw.items()
        if not t.startswith("_")
    }


@dataclass
class CursorMeta:
    """What a sensor cursor remembers beside the offsets: topic ids, and the ranges recorded lost."""

    topic_ids: dict[str, str] = field(default_factory=dict)
    lost: list[dict] = field(default_factory=list)


def cursor_meta(text: str | None) -> CursorMeta:
    raw = json.loads(text) if text else {}
    return CursorMeta(dict(raw.get("_topic_ids", {})), list(raw.get("_lost", [])))


def encode_sensor_cursor(cursor: Mapping[str, Mapping[int, int]], meta: CursorMeta) -> str:
    """:func:`encode_cursor` plus the metadata keys."""
    raw = json.loads(encode_cursor(cursor))
    if meta.topic_ids:
        raw["_topic_ids"] = dict(sorted(meta.topic_ids.items()))
    if meta.lost:
        raw["_lost"] = meta.lost
    return json.dumps(raw, sort_keys=True)


def cursor_from_keys(topic: str, keys: Iterable[str], topic_id: str | None = None) -> Cursor:
    """Rebuild a cursor from the ranges already turned into partitions.

    Used when a sensor starts without a cursor (first tick, or a reset): continuing after the
    highest range of each partition avoids planning ranges that overlap existing partitions.
    With ``topic_id``, ranges of another topic id (a topic since recreated) do not count: the
    new topic's offsets start over and none of them has been read. Keys without an id (written
    before ids were recorded) cannot be told apart and count.
    """
    wanted = compact_topic_id(topic_id)
    nxt: dict[int, int] = {}
    for key in keys:
        r = parse_range_key(topic, key)
        if wanted and r.topic_id and r.topic_id != wanted:
            continue
        nxt[r.partition] = max(nxt.get(r.partition, 0), r.end)
    return {topic: nxt} if nxt else {}


@dataclass(frozen=True)
class Plan:
    """The ranges of one tick and what the sensor should remember and report."""

    ranges: list[OffsetRange]
    cursor: Cursor
    #: Per partition first seen by this cursor: the offsets below its log start, deleted
    #: before anyone read them here; not ours to recover, but reported, never passed over.
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

    A partition the cursor has never seen starts at its low watermark. A position below the
    log start or above the high watermark raises PositionMismatch. The returned cursor
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
    found = check_positions(topic, None, "", {p: o for p, o in positions.items() if p in high}, low, high)
    if found:
        # Refuse rather than guess: offsets went backwards or were deleted unread.
        raise PositionMismatch(found, tool="sensor")
    for partition in sorted(high):
        hw = high[partition]
        lw = low.get(partition, 0)
        if partition not in positions and lw > 0:
            expired[partition] = lw  # deleted before this cursor ever read the partition
        start = positions.get(partition, lw)
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
