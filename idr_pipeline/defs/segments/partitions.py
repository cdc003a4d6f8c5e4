"""The daily partitions of the segment assets, and what instant a partition stands for."""

from datetime import UTC, date, datetime

import dagster as dg

from idr_pipeline.segments.resolved_events import as_of_end
from idr_pipeline.settings import get_settings

#: ``end_offset=1``: today's partition exists while today runs, so the latest audiences are
#: as of now rather than as of last midnight.
segments_daily = dg.DailyPartitionsDefinition(
    start_date=get_settings().segments_start_date, timezone="UTC", end_offset=1
)


def partition_as_of(partition_key: str, now: datetime | None = None) -> datetime:
    """The end of the partition's day, or now while that day is still running."""
    now = now or datetime.now(UTC)
    return min(as_of_end(date.fromisoformat(partition_key)), now)


def is_current(partition_key: str, now: datetime | None = None) -> bool:
    """Only today's partition may rewrite membership: the store holds current audiences."""
    now = now or datetime.now(UTC)
    return date.fromisoformat(partition_key) >= now.date()
