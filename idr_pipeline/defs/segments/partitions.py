"""The daily partitions of the segment assets, and what instant a partition stands for."""

from datetime import UTC, date, datetime

import dagster as dg

from idr_pipeline.segments.resolved_events import as_of_end
from idr_pipeline.settings import get_settings

#: ``end_offset=1``: today's partition exists while today runs, so the latest audiences count
#: today's events rather than stopping at last midnight.
segments_daily = dg.DailyPartitionsDefinition(
    start_date=get_settings().segments_start_date, timezone="UTC", end_offset=1
)


def partition_as_of(partition_key: str, now: datetime | None = None) -> datetime:
    """The end of the partition's day, today's too.

    Windows are whole UTC days ending with the partition's day ("in the last 7 days" is that
    day and the six before it). Today's partition ends at the coming midnight, the instant the
    stream service (idr_pipeline.live) counts back from, so the batch's publish and the
    stream's updates describe the same windows and the batch reconciles the stream.
    ``now`` is accepted for callers that pass it; the answer does not depend on it.
    """
    return as_of_end(date.fromisoformat(partition_key))


def is_current(partition_key: str, now: datetime | None = None) -> bool:
    """Only today's partition may rewrite membership: the store holds current audiences."""
    now = now or datetime.now(UTC)
    return date.fromisoformat(partition_key) >= now.date()
