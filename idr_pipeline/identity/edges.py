"""Deterministic edges: records that share a normalised strong identifier.

A shared value is only evidence of one person when the records carrying it look like one
person. Households share landlines and family e-mails; placeholders like test@test.com are
shared by thousands. Both are detected here and reported instead of becoming edges, which
is what keeps one bad value from chaining thousands of people into one identity.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from idr_pipeline.golden_record import identifier_expression
from idr_pipeline.identity.blocklist import is_blocked

LINKING_IDENTIFIERS = ["email_key", "phone", "national_id", "device_id", "source_customer_key"]
# Above this many records a value is a placeholder or a system default, whoever carries it.
MAX_RECORDS_PER_IDENTIFIER = 200


def identifier_occurrences(clean: DataFrame) -> DataFrame:
    """One row per (record, identifier) with the attributes that tell people apart.

    One scan of the profiles, exploding each row's identifiers, rather than one scan per type.
    """
    first_key = F.substring(F.regexp_replace(F.lower(F.col("first_name")), "[^a-z]", ""), 1, 2)
    entries = F.array(
        *[
            F.struct(F.lit(id_type).alias("id_type"), identifier_expression(id_type).alias("id_value"))
            for id_type in LINKING_IDENTIFIERS
        ]
    )
    return (
        clean.select(
            "record_id",
            F.explode(entries).alias("_id"),
            F.when(first_key != "", first_key).alias("person_name"),
            F.col("dob").alias("person_dob"),
        )
        .select("record_id", "_id.id_type", "_id.id_value", "person_name", "person_dob")
        .where(F.col("id_value").isNotNull())
    )


def classify_identifiers(
    occurrences: DataFrame, max_people: int, blocklist: dict[str, set[str]]
) -> DataFrame:
    """Per identifier value: how many records and distinct people carry it, and whether it links."""
    # The blocklist rule runs once per distinct value (not per occurrence) through the same
    # pure function the API uses, so there is one definition of "placeholder". A pandas UDF
    # moves the values in Arrow batches: the row-at-a-time UDF pickled every one of a
    # million-record run's millions of distinct identifiers and took most of this step.

    def blocked(id_types: pd.Series, values: pd.Series) -> pd.Series:
        flags = [int(is_blocked(t, v, blocklist)) for t, v in zip(id_types, values, strict=True)]
        return pd.Series(flags, dtype="int32")

    blocked_udf = F.pandas_udf(blocked, T.IntegerType())
    stats = (
        occurrences.groupBy("id_type", "id_value")
        .agg(
            F.count(F.lit(1)).alias("records"),
            # Sets, not countDistinct: two distinct counts make Spark expand every row into
            # three before the shuffle; a value is carried by a handful of records, so its sets
            # stay small.
            F.size(F.collect_set("person_name")).cast("long").alias("distinct_names"),
            F.size(F.collect_set("person_dob")).cast("long").alias("distinct_dobs"),
        )
        .withColumn("blocked", blocked_udf("id_type", "id_value"))
    )
    people = F.greatest("distinct_names", "distinct_dobs")
    reason = (
        F.when(F.col("blocked") == 1, F.lit("blocklisted"))
        .when(F.col("records") > MAX_RECORDS_PER_IDENTIFIER, F.lit("too_many_records"))
        .when(people > max_people, F.concat(F.lit("shared_by_"), people.cast("string"), F.lit("_people")))
    )
    return stats.withColumn("people", people).withColumn("not_identity_reason", reason)


def deterministic_edges(occurrences: DataFrame, classified: DataFrame) -> DataFrame:
    """Star edges from the smallest record id of each linking value: n-1 edges, not n^2."""
    linking = classified.where(F.col("not_identity_reason").isNull() & (F.col("records") > 1)).select(
        "id_type", "id_value"
    )
    occ = occurrences.select("record_id", "id_type", "id_value").join(linking, ["id_type", "id_value"])
    # A window over the join's own partitioning: no second shuffle and join for the hubs.
    hub = F.min("record_id").over(Window.partitionBy("id_type", "id_value"))
    return (
        occ.withColumn("src", hub)
        .where(F.col("record_id") != F.col("src"))
        .select("src", F.col("record_id").alias("dst"), "id_type", "id_value")
        .dropDuplicates(["src", "dst", "id_type", "id_value"])
    )
