"""Deterministic edges: records that share a normalised strong identifier.

A shared value is only evidence of one person when the records carrying it look like one
person. Households share landlines and family e-mails; placeholders like test@test.com are
shared by thousands. Both are detected here and reported instead of becoming edges, which
is what keeps one bad value from chaining thousands of people into one identity.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from idr_pipeline.golden_record import identifier_expression
from idr_pipeline.identity.identifier_runs import EDGE_COLUMNS, SHARED_COLUMNS, SORT_ORDER, VALUE_KEY

LINKING_IDENTIFIERS = ["email_key", "phone", "national_id", "device_id", "source_customer_key"]


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


def link_identifiers(occurrences: DataFrame, max_people: int, blocklist: dict[str, set[str]]) -> DataFrame:
    """The values that must not link and the edges the others make, in one pass.

    One shuffle of the occurrences by value, sorted so each value's carriers arrive together
    with the smallest record id first; ``identifier_runs.classify_runs`` does the rest in
    pandas. The result holds both kinds of row (``kind`` is ``shared`` or ``edge``): cache it
    and read each with :func:`shared_identifiers` and :func:`deterministic_edges`.
    """

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from idr_pipeline.identity.identifier_runs import VALUE_KEY, classify_runs
        from idr_pipeline.sorted_runs import whole_runs

        for occ in whole_runs(batches, VALUE_KEY):
            shared, edges = classify_runs(occ, max_people, blocklist)
            yield _linked_rows(shared, "shared")
            yield _linked_rows(edges, "edge")

    return (
        occurrences.select(*SORT_ORDER, "person_name", "person_dob")
        .repartition(*VALUE_KEY)
        .sortWithinPartitions(*SORT_ORDER)
        .mapInPandas(run, LINKED_SCHEMA)
    )


def _linked_rows(rows: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``rows`` in :data:`LINKED_SCHEMA`, the other kind's columns missing (object ``None``)."""
    missing = np.full(len(rows), None, dtype=object)
    columns = {
        name: rows[name].to_numpy() if name in rows else missing for name in LINKED_SCHEMA.fieldNames()
    }
    return pd.DataFrame({**columns, "kind": np.full(len(rows), kind, dtype=object)})


def shared_identifiers(linked: DataFrame) -> DataFrame:
    """Per value that does not link: carriers, people and the reason."""
    return linked.where(F.col("kind") == "shared").select(*SHARED_COLUMNS)


def deterministic_edges(linked: DataFrame) -> DataFrame:
    """Star edges (src, dst, id_type, id_value) from the smallest record id of each linking value."""
    return linked.where(F.col("kind") == "edge").select(*EDGE_COLUMNS)


LINKED_SCHEMA = T.StructType(
    [
        T.StructField("kind", T.StringType()),
        T.StructField("id_type", T.StringType()),
        T.StructField("id_value", T.StringType()),
        T.StructField("records", T.LongType()),
        T.StructField("distinct_names", T.LongType()),
        T.StructField("distinct_dobs", T.LongType()),
        T.StructField("blocked", T.IntegerType()),
        T.StructField("people", T.LongType()),
        T.StructField("not_identity_reason", T.StringType()),
        T.StructField("src", T.StringType()),
        T.StructField("dst", T.StringType()),
    ]
)
