"""run_edges' summaries, read with Arrow, against the same summaries as Spark queries."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from idr_pipeline.graph.edges import edge_summary, not_identity_summary

EDGE_SCHEMA = pa.schema([(c, pa.string()) for c in ["src", "dst", "id_type", "id_value"]])
SHARED_SCHEMA = pa.schema(
    [
        ("id_type", pa.string()),
        ("id_value", pa.string()),
        ("records", pa.int64()),
        ("not_identity_reason", pa.string()),
    ]
)
EDGES = [
    ("r1", "r2", "email_key", "a"),
    ("r1", "r3", "email_key", "a"),
    ("r2", "r3", "phone", "b"),  # r2, r3 again: records count once
    ("r4", None, "phone", "c"),  # a missing record id is one record to Spark's distinct
    (None, "r5", "zz", "d"),
    ("r6", "r7", None, "e"),  # a missing type sorts first
    ("é1", "r1", "émail", "f"),  # UTF-8 byte order: 'z' < 'é'
    ("r8", "r9", "Phone", "g"),  # upper case sorts before lower
]
SHARED = [
    ("phone", "1", 3, "shared_by_3_people"),
    ("phone", "2", 12, "shared_by_12_people"),
    ("phone", "3", 4, "shared_by_4_people"),
    ("phone", "4", 500, "too_many_records"),
    ("email_key", "5", 2, "blocklisted"),
    ("email_key", "6", None, "blocklisted"),  # a missing count is skipped by the sum
    ("email_key", "7", None, "shared_by_2_people"),  # and a group of missing counts sums to missing
    ("émail", "8", 1, "shared_by_1_people"),
    (None, "9", 5, "blocklisted"),
    ("device_id", "10", 7, None),
    ("device_id", "11", 8, "x_2_people_extra"),  # the count is only dropped at the end
]


def _spark_edge_stats(edges) -> tuple[int, int, pd.DataFrame]:
    return (
        edges.count(),
        edges.select(F.explode(F.array("src", "dst"))).distinct().count(),
        edges.groupBy("id_type").count().orderBy("id_type").toPandas(),
    )


def _spark_not_identity(shared) -> pd.DataFrame:
    reason_head = F.regexp_replace(F.col("not_identity_reason"), r"_\d+_people$", "_people")
    return (
        shared.groupBy("id_type", reason_head.alias("reason"))
        .agg(F.count(F.lit(1)).alias("values"), F.sum("records").alias("records"))
        .orderBy("id_type", "reason")
        .toPandas()
    )


def _tables(spark, rows: list[tuple], schema: pa.Schema):
    table = pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema)
    return table, spark.createDataFrame(
        table.to_pandas(), schema=", ".join(f"{f.name} {_ddl(f.type)}" for f in schema)
    )


def _ddl(arrow_type: pa.DataType) -> str:
    return "bigint" if arrow_type == pa.int64() else "string"


@pytest.mark.parametrize("rows", [EDGES, EDGES[:3], []], ids=["awkward", "plain", "empty"])
def test_edge_summary_equals_the_spark_queries(spark, rows: list[tuple]) -> None:
    table, frame = _tables(spark, rows, EDGE_SCHEMA)
    count, linked, by_type = edge_summary(table.select(["src", "dst", "id_type"]))
    want_count, want_linked, want_by_type = _spark_edge_stats(frame)
    assert (count, linked) == (want_count, want_linked)
    pd.testing.assert_frame_equal(by_type, want_by_type)


@pytest.mark.parametrize("rows", [SHARED, SHARED[:2], []], ids=["awkward", "plain", "empty"])
def test_not_identity_summary_equals_the_spark_query(spark, rows: list[tuple]) -> None:
    table, frame = _tables(spark, rows, SHARED_SCHEMA)
    got = not_identity_summary(table.select(["id_type", "not_identity_reason", "records"]))
    pd.testing.assert_frame_equal(got, _spark_not_identity(frame))
