"""Tiny hand-built worlds for the segment tests: events, identifiers and golden profiles."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from idr_pipeline.stream.parse import EVENT_SCHEMA

#: The as-of day of every golden case; windows end at the following midnight (exclusive).
AS_OF = date(2025, 3, 31)
END = datetime(2025, 4, 1, tzinfo=UTC)

#: The landed Parquet layout: what events.parse writes.
LANDED_SCHEMA = EVENT_SCHEMA

_seq = iter(range(10**9))


def ev(kind: str, ago: timedelta, who: str | None = None, **props: Any) -> dict[str, Any]:
    """One event ``ago`` before END; ``who`` becomes the anonymous_id unless props say otherwise."""
    row = {name: None for name in LANDED_SCHEMA.names}
    row.update(event_id=f"e{next(_seq)}", type=kind, ts=END - ago, anonymous_id=who)
    row.update(props)
    return row


def days(n: float) -> timedelta:
    return timedelta(days=n)


def write_landed(lake_dir: Path, partition_key: str, rows: list[dict[str, Any]]) -> None:
    """Rows as one landed offset-range partition: ``raw/events/<key>/part-00000.parquet``."""
    folder = lake_dir / "raw" / "events" / partition_key
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=LANDED_SCHEMA), folder / "part-00000.parquet")


def identifiers_rows(anon_of: dict[str, str]) -> list[tuple[str, str, str]]:
    """Each identity holds one cookie named after it: ``anon-<identity>``."""
    return [("anonymous_id", anon, identity) for anon, identity in anon_of.items()]
