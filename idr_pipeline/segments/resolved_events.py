"""Landed click-stream events, read back from the raw zone and tied to resolved identities.

Features, rules and behavior vectors all start from the same frame: events within a look-back
window, de-duplicated by ``event_id`` (Kafka delivers at least once, so a range re-landed after
a failure repeats messages) and carrying the ``identity_id`` they resolve to. Unresolved events
stay in the frame with a null identity: dropping them would hide how much of the traffic the
identity graph cannot yet explain, which is the number stitching is judged by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from idr_pipeline.core.catalog import RAW_EVENTS
from idr_pipeline.core.lake import Lake
from idr_pipeline.standardize.email import email_match_key
from idr_pipeline.standardize.identifiers import normalize_identifier

#: The columns segments need, typed as the landing step writes them (``ts`` a UTC timestamp).
EVENT_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType()),
        T.StructField("type", T.StringType()),
        T.StructField("ts", T.TimestampType()),
        T.StructField("anonymous_id", T.StringType()),
        T.StructField("user_id", T.StringType()),
        T.StructField("email", T.StringType()),
        T.StructField("campaign", T.StringType()),
        T.StructField("product_id", T.StringType()),
        T.StructField("category", T.StringType()),
        T.StructField("price", T.DoubleType()),
    ]
)

#: Resolution rungs, strongest first: a signed-in account id names one person; an e-mail key
#: almost always does; a cookie can be shared (a family laptop) or re-keyed; an identify event
#: in the stream itself ties a cookie to an account the batch graph has not seen together yet.
RUNGS: tuple[str, ...] = ("user_id", "email_key", "anonymous_id", "identify")

#: The source whose ``source_customer_id`` is the event ``user_id`` (store: ``web:<user_id>``).
USER_ID_SOURCE = "web"


def as_of_end(as_of: date | datetime) -> datetime:
    """The instant windows end at: the end of a day for a date, the instant itself otherwise.

    A daily partition means "as of the end of that day"; the current day's partition passes
    ``now`` instead so a window never reaches into the future.
    """
    if isinstance(as_of, datetime):
        return as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)
    return datetime.combine(as_of + timedelta(days=1), time.min, tzinfo=UTC)


def in_window(end: datetime, days: int, ts: str = "ts") -> Column:
    """``end - days <= ts < end``: N whole 24-hour days before the as-of instant."""
    start = end - timedelta(days=days)
    return (F.col(ts) >= F.lit(start)) & (F.col(ts) < F.lit(end))


def empty_events(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([], EVENT_SCHEMA)


def read_events(
    spark: SparkSession, lake: Lake, end: datetime | None = None, lookback_days: int | None = None
) -> DataFrame:
    """Every landed event (all offset-range partitions) with ``ts`` inside the window.

    Reading all partitions and filtering by ``ts`` rather than picking partitions: a partition
    is an offset range, not a day, so late or replayed messages of any day can sit in any of
    them. Parquet statistics on ``ts`` let Spark skip row groups outside the window.
    """
    root = lake.path("raw", RAW_EVENTS)
    if not lake.list_dirs(root):
        return empty_events(spark)
    events = spark.read.schema(EVENT_SCHEMA).parquet(f"{root}/*")
    if end is not None:
        events = events.where(in_window(end, lookback_days) if lookback_days else F.col("ts") < F.lit(end))
    return events.where(F.col("event_id").isNotNull()).dropDuplicates(["event_id"])


@F.pandas_udf(T.StringType())
def _email_key(emails: pd.Series) -> pd.Series:
    """The batch's e-mail match key (Gmail dots and +tags folded), so events meet identifiers."""
    return emails.map(lambda e: email_match_key(e) if isinstance(e, str) and e else None)


@F.pandas_udf(T.StringType())
def _identifier(values: pd.Series) -> pd.Series:
    """The batch's id normalization: canonical UUIDs, and fillers (nil UUID, 'guest') as null."""
    return values.map(lambda v: normalize_identifier(v).value if isinstance(v, str) else None)


def _unique_lookup(identifiers: DataFrame, id_type: str, alias: str) -> DataFrame:
    """``id_value -> identity_id`` for values held by exactly one identity.

    A value two identities share (a household e-mail, a shared cookie) says nothing about
    which of them acted, so it resolves nobody rather than an arbitrary one.
    """
    return (
        identifiers.where(F.col("id_type") == id_type)
        .groupBy("id_value")
        .agg(F.countDistinct("identity_id").alias("_n"), F.min("identity_id").alias(alias))
        .where(F.col("_n") == 1)
        .select(F.col("id_value").alias(f"_key_{alias}"), alias)
    )


def resolve_event_identities(
    events: DataFrame, identifiers: DataFrame, user_id_source: str = USER_ID_SOURCE
) -> DataFrame:
    """Events plus ``identity_id`` (null when unresolved) and ``resolved_by`` (a RUNGS name).

    ``identifiers`` is ``(id_type, id_value, identity_id)`` as the batch writes it to
    ``serving/identifiers``. Priority is user_id (as ``source_customer_key``), then the
    e-mail's Gmail-folded key, then the cookie, then an identify event of the same cookie
    whose user_id or e-mail resolved: the first rung that answers wins, so a signed-in event
    on a shared laptop goes to the account holder, not to the cookie's owner.
    """
    keyed = (
        events.withColumn("_user", _identifier(F.col("user_id")))
        .withColumn("_k_user", F.concat(F.lit(f"{user_id_source}:"), F.col("_user")))
        .withColumn("_k_email", _email_key(F.col("email")))
        .withColumn("_k_anon", _identifier(F.col("anonymous_id")))
    )
    for id_type, key, alias in (
        ("source_customer_key", "_k_user", "_id_user"),
        ("email_key", "_k_email", "_id_email"),
        ("anonymous_id", "_k_anon", "_id_anon"),
    ):
        lookup = _unique_lookup(identifiers, id_type, alias)
        keyed = keyed.join(lookup, F.col(key) == F.col(f"_key_{alias}"), "left").drop(f"_key_{alias}")
    strong = F.coalesce("_id_user", "_id_email")
    # Cookies that an identify event tied to exactly one strongly resolved identity.
    stitched = (
        keyed.where((F.col("type") == "identify") & F.col("_k_anon").isNotNull() & strong.isNotNull())
        .groupBy(F.col("_k_anon").alias("_stitch_anon"))
        .agg(F.countDistinct(strong).alias("_n"), F.min(strong).alias("_id_identify"))
        .where(F.col("_n") == 1)
        .drop("_n")
    )
    keyed = keyed.join(stitched, F.col("_k_anon") == F.col("_stitch_anon"), "left")
    ids = [F.col(c) for c in ("_id_user", "_id_email", "_id_anon", "_id_identify")]
    rung = F.lit(None).cast("string")
    for name, col in reversed(list(zip(RUNGS, ids, strict=True))):
        rung = F.when(col.isNotNull(), F.lit(name)).otherwise(rung)
    return keyed.select(
        *events.columns,
        F.coalesce(*ids).alias("identity_id"),
        rung.alias("resolved_by"),
    )


@dataclass
class StitchReport:
    """How many events resolved, and by which rung; the share is what stitching is judged by."""

    events: int = 0
    by_rung: dict[str, int] = field(default_factory=dict)

    @property
    def resolved(self) -> int:
        return sum(self.by_rung.values())

    @property
    def unresolved(self) -> int:
        return self.events - self.resolved

    @property
    def stitched_share(self) -> float:
        return self.resolved / self.events if self.events else 0.0

    def table(self) -> pd.DataFrame:
        rows = [(r, self.by_rung.get(r, 0)) for r in RUNGS] + [("unresolved", self.unresolved)]
        return pd.DataFrame(rows, columns=["resolved_by", "events"])


def stitch_report(resolved: DataFrame) -> StitchReport:
    counts = {r["resolved_by"]: int(r["count"]) for r in resolved.groupBy("resolved_by").count().collect()}
    total = sum(counts.values())
    return StitchReport(events=total, by_rung={k: v for k, v in counts.items() if k is not None})
