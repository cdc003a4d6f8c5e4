"""Deterministic edges: records that share a normalized strong identifier.

A shared value is only evidence of one person when the records carrying it look like one
person. Households share landlines and family e-mails; placeholders like test@test.com are
shared by thousands. Both are detected here and reported instead of becoming edges, which
is what keeps one bad value from chaining thousands of people into one identity.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from idr_pipeline.core.sorted_runs import whole_tables
from idr_pipeline.graph.identifier_runs import (
    EDGE_COLUMNS,
    PERSON_COLUMNS,
    SHARED_COLUMNS,
    SORT_ORDER,
    VALUE_KEY,
    classify_runs,
)
from idr_pipeline.standardize.identifier_columns import identifier_expression

LINKING_IDENTIFIERS = ["email_key", "phone", "national_id", "device_id", "source_customer_key"]


def identifier_occurrences(clean: DataFrame) -> DataFrame:
    """One row per (record, identifier) with the person-level attributes that tell people apart.

    One scan of the profiles, exploding each row's identifiers, rather than one scan per type.
    """
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
            F.col("first_name").alias("person_first"),
            F.col("last_name").alias("person_last"),
            F.col("dob").alias("person_dob"),
            F.col("national_id").alias("person_national_id"),
            F.col("email").alias("person_email"),
        )
        .select("record_id", "_id.id_type", "_id.id_value", *PERSON_COLUMNS)
        .where(F.col("id_value").isNotNull())
    )


def link_identifiers(occurrences: DataFrame, max_people: int, blocklist: dict[str, set[str]]) -> DataFrame:
    """The values that must not link and the edges the others make, in one pass.

    One shuffle of the occurrences by value, sorted so each value's carriers arrive together
    with the smallest record id first; ``identifier_runs.classify_runs`` does the rest on the
    Arrow batches. The result holds both kinds of row (``kind`` is ``shared`` or ``edge``):
    cache it and read each with :func:`shared_identifiers` and :func:`deterministic_edges`.

    The sort leads with a 64-bit hash of the value, computed after the shuffle: sorting by
    the type first made almost every comparison fall through the 8-byte sort prefix (five
    types) to full string comparisons, and the sort cost twice the shuffle. Runs only need to
    be contiguous, so their order does not matter; the rows shuffled, and so each partition's
    set of rows, are the same as without it.
    """

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:

        for occ in whole_tables(batches, VALUE_KEY):
            shared, edges = classify_runs(occ, max_people, blocklist)
            yield from _linked_rows(shared, "shared")
            yield from _linked_rows(edges, "edge")

    return (
        occurrences.select(*SORT_ORDER, *PERSON_COLUMNS)
        .repartition(*VALUE_KEY)
        .sortWithinPartitions(F.xxhash64(*VALUE_KEY), *SORT_ORDER)
        .mapInArrow(run, LINKED_SCHEMA)
    )


def _linked_rows(rows: pa.Table, kind: str) -> list[pa.RecordBatch]:
    """``rows`` in :data:`LINKED_ARROW_SCHEMA`, the other kind's columns missing (null)."""
    count = rows.num_rows

    def column(field: pa.Field) -> pa.Array | pa.ChunkedArray:
        if field.name == "kind":
            return pa.repeat(pa.scalar(kind, field.type), count)
        return rows.column(field.name) if field.name in rows.column_names else pa.nulls(count, field.type)

    return pa.Table.from_arrays(
        [column(f) for f in LINKED_ARROW_SCHEMA], schema=LINKED_ARROW_SCHEMA
    ).to_batches()


def shared_identifiers(linked: DataFrame) -> DataFrame:
    """Per value that does not link: carriers, people and the reason.

    Each partition sorted by value, as the job sorted its rows before it led with a hash: the
    preview of the most shared values reads these files, and ties on the record count (many
    values have six) are broken by the order Spark reads the rows in.
    """
    return linked.where(F.col("kind") == "shared").select(*SHARED_COLUMNS).sortWithinPartitions(*VALUE_KEY)


def deterministic_edges(linked: DataFrame) -> DataFrame:
    """Star edges (src, dst, id_type, id_value) from the smallest record id of each linking value."""
    return linked.where(F.col("kind") == "edge").select(*EDGE_COLUMNS)


LINKED_SCHEMA = T.StructType(
    [
        T.StructField("kind", T.StringType()),
        T.StructField("id_type", T.StringType()),
        T.StructField("id_value", T.StringType()),
        T.StructField("records", T.LongType()),
        T.StructField("blocked", T.IntegerType()),
        T.StructField("people", T.LongType()),
        T.StructField("conflict", T.StringType()),
        T.StructField("not_identity_reason", T.StringType()),
        T.StructField("src", T.StringType()),
        T.StructField("dst", T.StringType()),
    ]
)
LINKED_ARROW_SCHEMA = to_arrow_schema(LINKED_SCHEMA)


# --- Summaries of the two outputs, read back with Arrow in the driver.
# The edges are at most one per identifier occurrence, a few narrow columns, and the matching
# steps after this one hold every profile's columns in the driver anyway, so reading them adds
# no new scale limit; it spares five small Spark jobs over the written files, one of them a
# shuffle for the distinct records.


def edge_summary(edges: pa.Table) -> tuple[int, int, pd.DataFrame]:
    """(edges, distinct records on either end, edges per ``id_type``) of ``src, dst, id_type``.

    As Spark computes them: a missing record id counts as one record, and the types come in
    ascending byte order, a missing type first, in a frame of ``id_type`` and ``count``.
    """
    ends = pa.chunked_array([*edges.column("src").chunks, *edges.column("dst").chunks], pa.string())
    linked = pc.count_distinct(ends, mode="all").as_py()
    by_type = edges.group_by("id_type").aggregate([([], "count_all")])
    by_type = by_type.select(["id_type", "count_all"]).rename_columns(["id_type", "count"])
    return edges.num_rows, linked, _ascending(by_type, ["id_type"]).to_pandas()


def not_identity_summary(shared: pa.Table) -> pd.DataFrame:
    """Values and their records per ``id_type`` and reason, the people count dropped from it.

    ``shared_by_3_people`` and ``shared_by_12_people`` are one reason, ``shared_by_people``.
    The reasons are :func:`identifier_runs.classify_runs`' own, which hold no line breaks, so
    RE2's ``$`` (end of text) is Java's (end of text, or before a final line break).
    """
    reason = pc.replace_substring_regex(shared.column("not_identity_reason"), r"_[0-9]+_people$", "_people")
    keyed = pa.table(
        {"id_type": shared.column("id_type"), "reason": reason, "records": shared.column("records")}
    )
    summary = keyed.group_by(["id_type", "reason"]).aggregate([([], "count_all"), ("records", "sum")])
    summary = summary.select(["id_type", "reason", "count_all", "records_sum"])
    return _ascending(
        summary.rename_columns(["id_type", "reason", "values", "records"]), ["id_type", "reason"]
    ).to_pandas()


def _ascending(table: pa.Table, keys: list[str]) -> pa.Table:
    """``table`` in Spark's ``orderBy(*keys)``: ascending, strings by their UTF-8 bytes, missing first."""
    return table.sort_by([(key, "ascending", "at_start") for key in keys])
