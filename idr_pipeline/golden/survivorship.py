"""Golden records: one best profile per identity, by survivorship rules.

For each attribute group the surviving value comes from the most trusted source, then the
most recent record, then the value seen most often. Names and addresses survive as whole
groups, so a golden record never pairs one record's street with another record's postcode.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from idr_pipeline.standardize.identifier_columns import identifier_expression

ATTRIBUTE_GROUPS: dict[str, list[str]] = {
    "name": ["first_name", "last_name"],
    "address": ["street", "city", "state", "postcode", "country"],
    "email": ["email"],
    "phone": ["phone"],
    "dob": ["dob"],
    "national_id": ["national_id"],
}
GOLDEN_COLUMNS = [c for cols in ATTRIBUTE_GROUPS.values() for c in cols]
IDENTIFIER_TYPES = [
    "email",
    "email_key",
    "phone",
    "device_id",
    "national_id",
    "anonymous_id",
    "source_customer_key",
]


def _group_key(cols: list[str]) -> Column:
    return F.concat_ws("\u241f", *[F.coalesce(F.col(c), F.lit("")) for c in cols])


def build_golden_records(clean: DataFrame, links: DataFrame) -> DataFrame:
    """One row per identity: surviving attributes plus every identifier it holds, by type."""
    df = clean.join(links.select("record_id", "identity_id"), "record_id").withColumn(
        "_ts", F.coalesce(F.col("updated_at"), F.lit(""))
    )
    aggs = []
    for group, cols in ATTRIBUTE_GROUPS.items():
        present = reduce(lambda a, b: a | b, [F.col(c).isNotNull() for c in cols])
        key = _group_key(cols)
        df = df.withColumn(f"_freq_{group}", F.count(F.lit(1)).over(Window.partitionBy("identity_id", key)))
        ranked = F.struct(
            (-F.col("_trust")).alias("trust"),
            F.col("_ts").alias("ts"),
            F.col(f"_freq_{group}").alias("freq"),
            *[F.col(c).alias(c) for c in cols],
        )
        aggs.append(F.max(F.when(present, ranked)).alias(f"_best_{group}"))
    golden = df.groupBy("identity_id").agg(
        *aggs,
        F.sort_array(F.collect_set("source")).alias("sources"),
        F.count(F.lit(1)).alias("record_count"),
        F.max("updated_at").alias("updated_at"),
    )
    held = (
        build_identifiers(clean, links)
        .groupBy("identity_id", "id_type")
        .agg(F.sort_array(F.collect_list("id_value")).alias("values"))
        .groupBy("identity_id")
        .agg(F.map_from_entries(F.collect_list(F.struct("id_type", "values"))).alias("identifiers"))
    )
    return golden.join(held, "identity_id", "left").select(
        "identity_id",
        *[F.col(f"_best_{g}.{c}").alias(c) for g, cols in ATTRIBUTE_GROUPS.items() for c in cols],
        "identifiers",
        "sources",
        "record_count",
        "updated_at",
    )


def build_identifiers(clean: DataFrame, links: DataFrame) -> DataFrame:
    """(identity_id, id_type, id_value): every identifier an identity holds, for look-ups."""
    df = clean.join(links.select("record_id", "identity_id"), "record_id")
    parts = [
        df.select("identity_id", F.lit(t).alias("id_type"), identifier_expression(t).alias("id_value")).where(
            F.col("id_value").isNotNull()
        )
        for t in IDENTIFIER_TYPES
    ]
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.distinct()
