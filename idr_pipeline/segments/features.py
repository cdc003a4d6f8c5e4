"""user_features: per-identity behavior counts, spend and recency as of one instant.

One row per identity with any resolved event in the recency look-back. Counts come in the
three windows marketing asks for (7, 30, 90 days) both as totals and as ``{category: n}``
maps: maps rather than one column per category because the category list is the shop's, not
the schema's, and a new category must not need a migration. Recency looks back further than
the widest window (a year) so "lapsed for 200 days" is a number, not a null.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from idr_pipeline.segments.resolved_events import in_window

WINDOWS: tuple[int, ...] = (7, 30, 90)
#: Event type -> feature stem.
KINDS: dict[str, str] = {"page_view": "views", "ad_click": "clicks", "purchase": "purchases"}
SPEND_WINDOWS: tuple[int, ...] = (30, 90)
RECENCY_LOOKBACK_DAYS = 365
TOP_CATEGORIES = 3
#: How much one event says about a taste when ranking top categories: buying beats looking.
CATEGORY_WEIGHTS: dict[str, float] = {"purchase": 3.0, "ad_click": 2.0, "page_view": 1.0}


def _metric(kind: str, days: int) -> str:
    return f"{KINDS[kind]}_{days}d"


def feature_columns() -> list[str]:
    counts = [_metric(k, w) for w in WINDOWS for k in KINDS]
    return [
        "identity_id",
        "as_of",
        *counts,
        *[f"{c}_by_category" for c in counts],
        *[f"spend_{w}d" for w in SPEND_WINDOWS],
        "last_event_at",
        "last_purchase_at",
        "days_since_last_event",
        "days_since_last_purchase",
        "top_categories",
    ]


def _is(kind: str) -> Column:
    return F.col("type") == kind


def build_user_features(events: DataFrame, end: datetime) -> DataFrame:
    """Features of every resolved identity from ``events`` (resolved, any look-back).

    Two aggregations: first per (identity, category), so category maps and the top-category
    ranking come from one pass, then per identity. Events without a category count in the
    totals but in no map (a map key cannot be null, and "unknown" would crowd out real tastes).
    """
    behavior = events.where(
        F.col("identity_id").isNotNull()
        & F.col("type").isin(list(KINDS))
        & in_window(end, RECENCY_LOOKBACK_DAYS)
    )
    counts = [_metric(k, w) for w in WINDOWS for k in KINDS]
    weight = F.lit(0.0)
    for kind, w in CATEGORY_WEIGHTS.items():
        weight = F.when(_is(kind), F.lit(w)).otherwise(weight)
    per_category = behavior.groupBy("identity_id", "category").agg(
        *[
            F.sum(F.when(_is(kind) & in_window(end, days), 1).otherwise(0)).alias(_metric(kind, days))
            for days in WINDOWS
            for kind in KINDS
        ],
        *[
            F.sum(F.when(_is("purchase") & in_window(end, days), F.coalesce("price", F.lit(0.0)))).alias(
                f"spend_{days}d"
            )
            for days in SPEND_WINDOWS
        ],
        F.sum(F.when(in_window(end, max(WINDOWS)), weight).otherwise(0.0)).alias("_taste"),
        F.max("ts").alias("last_event_at"),
        F.max(F.when(_is("purchase"), F.col("ts"))).alias("last_purchase_at"),
    )
    named = F.col("category").isNotNull()

    def category_map(metric: str) -> Column:
        entry = F.when(named & (F.col(metric) > 0), F.struct(F.col("category"), F.col(metric)))
        return F.map_from_entries(F.collect_list(entry)).alias(f"{metric}_by_category")

    ranked = F.collect_list(
        F.when(
            named & (F.col("_taste") > 0),
            F.struct((-F.col("_taste")).alias("w"), F.col("category").alias("c")),
        )
    )
    features = per_category.groupBy("identity_id").agg(
        *[F.sum(c).cast("int").alias(c) for c in counts],
        *[category_map(c) for c in counts],
        *[
            F.round(F.coalesce(F.sum(f"spend_{d}d"), F.lit(0.0)), 2).alias(f"spend_{d}d")
            for d in SPEND_WINDOWS
        ],
        F.max("last_event_at").alias("last_event_at"),
        F.max("last_purchase_at").alias("last_purchase_at"),
        F.transform(F.slice(F.array_sort(ranked), 1, TOP_CATEGORIES), lambda s: s["c"]).alias(
            "top_categories"
        ),
    )
    as_of = F.to_date(F.lit(end) - F.expr("INTERVAL 1 MICROSECOND"))
    return features.select(
        "identity_id",
        as_of.alias("as_of"),
        *counts,
        *[f"{c}_by_category" for c in counts],
        *[f"spend_{d}d" for d in SPEND_WINDOWS],
        "last_event_at",
        "last_purchase_at",
        F.datediff(as_of, F.to_date("last_event_at")).alias("days_since_last_event"),
        F.datediff(as_of, F.to_date("last_purchase_at")).alias("days_since_last_purchase"),
        "top_categories",
    )
