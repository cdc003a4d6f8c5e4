"""The offset ranges the stream service lands: their lake keys, and writing and reading them.

A range is one partition's messages of one micro-batch, ``[start, end)``. Its key is the
sensor path's, ``p<partition>-<first>-<last>-t<topic id>`` (:func:`idr_pipeline.stream.offsets.range_key`):
a topic deleted and created again starts its offsets over, and the id keeps the new topic's
ranges from replacing the old one's files. The valid rows' file is written last and is what "landed" means; the
dead letters (written only when there are some) go first, so a landed range is always whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from idr_pipeline.core.catalog import dead_letter_dataset
from idr_pipeline.stream import land
from idr_pipeline.stream.consume import RawMessage
from idr_pipeline.stream.offsets import compact_topic_id, parse_range_key, range_key
from idr_pipeline.stream.parse import DEAD_LETTER_SCHEMA, ParsedBatch, parse_events, parse_profiles


def compact_id(topic_id: str) -> str:
    return compact_topic_id(topic_id)


def live_range_key(partition: int, start: int, end: int, topic_id: str) -> str:
    return range_key(partition, start, end, topic_id)


@dataclass(frozen=True)
class LandedRange:
    partition: int
    start: int
    end: int
    topic_id: str  # compact form
    key: str


def parse_live_key(key: str) -> LandedRange | None:
    """The range a key names, or None for a key that is not a range's."""
    try:
        r = parse_range_key("", key)
    except ValueError:
        return None
    return LandedRange(r.partition, r.start, r.end, r.topic_id, key)


def landed_ranges(lake_uri: str, dataset: str, topic_id: str, partition: int) -> list[LandedRange]:
    """This topic incarnation's landed ranges of one partition, in offset order."""
    wanted = compact_id(topic_id)
    found = [parse_live_key(k) for k in land.landed_partitions(lake_uri, dataset)]
    return sorted(
        (r for r in found if r is not None and r.topic_id == wanted and r.partition == partition),
        key=lambda r: r.start,
    )


@dataclass
class Landed:
    """One range as landed: where it is, what it held, and when it became visible in the lake."""

    topic: str
    partition: int
    topic_id: str
    start: int
    end: int
    key: str
    batch: ParsedBatch
    landed_at: datetime

    @property
    def messages(self) -> int:
        return self.batch.messages

    @property
    def gaps(self) -> int:
        """Offsets of the range the log does not hold (transaction markers, compaction)."""
        return self.end - self.start - self.messages


def parse(kind: str, topic: str, partition: int, messages: Sequence[RawMessage]) -> ParsedBatch:
    return (parse_events if kind == "events" else parse_profiles)(topic, partition, messages)


def write_range(lake_uri: str, raw_dataset: str, key: str, batch: ParsedBatch) -> None:
    """Dead letters (if any) first, then the valid rows: the valid file marks the range landed."""
    if batch.dead.num_rows:
        land.write_partition(lake_uri, dead_letter_dataset(raw_dataset), key, batch.dead)
    land.write_partition(lake_uri, raw_dataset, key, batch.valid)


def read_landed(lake_uri: str, raw_dataset: str, key: str) -> ParsedBatch:
    """A landed range read back: its valid rows and dead letters."""
    valid = land.read_partition(lake_uri, raw_dataset, key)
    dead_keys = set(land.landed_partitions(lake_uri, dead_letter_dataset(raw_dataset)))
    dead = (
        land.read_partition(lake_uri, dead_letter_dataset(raw_dataset), key)
        if key in dead_keys
        else pa.Table.from_pylist([], schema=DEAD_LETTER_SCHEMA)
    )
    return ParsedBatch(valid.num_rows + dead.num_rows, valid, dead)
