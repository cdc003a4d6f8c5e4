"""Per-identity event aggregates for the API's behavioral audience leaves.

The query API cannot run Spark, so the feature step hands it what the Spark rule evaluator
(:mod:`idr_pipeline.segments.rules_spark`) would look at, rolled up small enough to serve: one
row per identity, 24-hour period, event type and the values a leaf can filter on, with the
event count and the price total. Every choice below is there to keep the two answers equal:

* The periods count back from the evaluation's instant, not calendar days: the current
  partition is evaluated as of *now*, and Spark's "within N days" is ``now - N days <= ts <
  now``. Period ``days_ago`` = n holds ``now - (n+1) days <= ts < now - n days``, so the window
  is ``days_ago < N`` at any instant of the day.
* Events come from the same resolved frame the rules read (de-duplicated, stitched by the same
  rungs); unresolved ones belong to nobody and are counted, not aggregated.
* Category and campaign are lower-cased here as Spark lower-cases both sides of its
  comparison; the product id is exact. A missing value is "" (the DSL cannot ask for "", just
  as Spark's comparison with null never matches).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from idr_pipeline.segments.dsl import MAX_WITHIN_DAYS
from idr_pipeline.segments.resolved_events import in_window
from idr_pipeline.store.tables import AGGREGATE_VALUE_CHARS, AGGREGATED_EVENT_TYPES

#: Every within_days the DSL accepts can be answered.
AGGREGATE_DAYS = MAX_WITHIN_DAYS
_DAY_MICROS = 86_400 * 1_000_000


def _value(column: Column) -> Column:
    """The value, or the empty string when it is missing or longer than the DSL can name."""
    return F.when(F.length(column) <= AGGREGATE_VALUE_CHARS, column).otherwise(F.lit(""))


def days_ago(end: datetime, ts: str = "ts") -> Column:
    """Whole 24-hour periods between ``ts`` and ``end``: 0 for ``end - 1 day <= ts < end``."""
    gap = F.unix_micros(F.lit(end)) - F.unix_micros(F.col(ts))
    return F.floor((gap - 1) / F.lit(_DAY_MICROS)).cast("int")


def _aggregated_type() -> Column:
    """True for the types the leaves count; false (never null) for any other or a missing type."""
    return F.coalesce(F.col("type").isin(sorted(AGGREGATED_EVENT_TYPES)), F.lit(False))


def build_event_aggregates(events: DataFrame, end: datetime) -> DataFrame:
    """Rows of ``event_aggregates`` from resolved events (``resolve_event_identities``)."""
    kind = F.col("type")
    behavior = events.where(
        F.col("identity_id").isNotNull() & _aggregated_type() & in_window(end, AGGREGATE_DAYS)
    )
    keyed = behavior.select(
        kind.alias("event_type"),
        _value(F.lower(F.col("category"))).alias("category"),
        days_ago(end).alias("days_ago"),
        "identity_id",
        F.when(kind == "purchase", _value(F.col("product_id"))).otherwise(F.lit("")).alias("product_id"),
        F.when(kind == "ad_click", _value(F.lower(F.col("campaign")))).otherwise(F.lit("")).alias("campaign"),
        F.coalesce(F.col("price"), F.lit(0.0)).alias("price"),
    )
    return keyed.groupBy("event_type", "category", "days_ago", "identity_id", "product_id", "campaign").agg(
        F.count(F.lit(1)).cast("int").alias("events"), F.sum("price").alias("amount")
    )


@dataclass(frozen=True)
class EventCounts:
    """The window's events split by what happens to them before the store sees them."""

    events: int
    unresolved: int
    other_types: int

    def run_row(self, end: datetime) -> dict[str, Any]:
        return {
            "as_of": end,
            "window_days": AGGREGATE_DAYS,
            "events": self.events,
            "unresolved": self.unresolved,
            "other_types": self.other_types,
        }


def count_window_events(events: DataFrame, end: datetime) -> EventCounts:
    """Events in the aggregate window: in all, unresolved, and resolved but of another type."""
    row = (
        events.where(in_window(end, AGGREGATE_DAYS))
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.sum(F.when(F.col("identity_id").isNull(), 1).otherwise(0)).alias("unresolved"),
            F.sum(F.when(F.col("identity_id").isNotNull() & ~_aggregated_type(), 1).otherwise(0)).alias(
                "other_types"
            ),
        )
        .first()
    )
    return EventCounts(int(row["events"]), int(row["unresolved"] or 0), int(row["other_types"] or 0))


def publish_event_aggregates(store, events: DataFrame, end: datetime) -> dict[str, Any]:
    """Replace the store's event aggregates with those of ``events`` as of ``end``.

    Returns the recorded run: the window's events and where each went (aggregated, unresolved,
    other types, identities the store does not hold), which the store checks balance.
    """
    counts = count_window_events(events, end)
    rows = (r.asDict() for r in build_event_aggregates(events, end).toLocalIterator(prefetchPartitions=True))
    return store.publish_event_aggregates(rows, counts.run_row(end))
