"""The Spark job that turns raw landed batches into clean profiles and quarantine rows.

Spark carries the data: one shuffle brings every row of a record id to one partition, sorted.
Everything else (exact duplicates, the field rules of ``idr_pipeline.standardize``, erasure,
superseded versions) is the pure pandas pass of ``idr_pipeline.standardize.batches`` over each
sorted partition, run with ``mapInPandas``, so it is tested without Spark and behaves the same
in the job. One shuffle takes the place of a group-by, a window and Spark-side JSON, each its
own pass over the data. The rows are then written once, split by outcome, and
the clean rows' folder becomes the clean profiles without being written again.

Accounting is exact by construction: every raw row ends in exactly one of clean,
quarantined, erased, or collapsed (an exact duplicate folded into its first copy).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from idr_pipeline.core.schema import CANONICAL_COLUMNS, EXTRAS_COLUMN
from idr_pipeline.core.tombstones import Tombstones
from idr_pipeline.ingest.landing import raw_source_path
from idr_pipeline.ingest.mapping import SourceMapping
from idr_pipeline.ingest.readers import META_ERROR, META_LINE, META_RAW
from idr_pipeline.standardize.batches import (
    CLEAN,
    CONTENT_COLUMNS,
    DUPLICATE_COUNT,
    ERASED,
    JAVA_WHITESPACE_CLASS,
    OUTCOME,
    PARTITION_KEY,
    QUARANTINED,
    STAGED_RAW,
    STAGED_REASON,
    clean_sorted_partition,
    staged,
)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from idr_pipeline.core.lake import Lake

META_COLUMNS = ["_batch_id", "_ingested_at", META_LINE, "_trust"]
CLEAN_COLUMNS = [
    *CANONICAL_COLUMNS,
    "email_key",
    EXTRAS_COLUMN,
    "_reasons",
    "_duplicate_count",
    *META_COLUMNS,
]
QUARANTINE_COLUMNS = [
    "record_id", "source", "_batch_id", META_LINE, "_ingested_at", "_reason", "_raw", META_RAW, "_duplicate_count",
]  # fmt: skip


@dataclass
class CleanResult:
    clean: DataFrame
    quarantined: DataFrame
    raw_rows: int
    collapsed_duplicates: int
    # Raw rows dropped because they carry an erased subject's identifier (every copy counts).
    erased_rows: int = 0
    # The staged folder that holds exactly ``clean`` (None when no row is clean): the caller can
    # adopt it as the clean profiles instead of writing them again. ``clean`` reads it, so it is
    # not read after the folder has moved.
    clean_folder: str | None = None


def map_source_to_canonical(raw: DataFrame, mapping: SourceMapping) -> DataFrame:
    cols = set(raw.columns)
    select = []
    for canonical in CANONICAL_COLUMNS:
        if canonical == "source":
            own = F.col("`source`").cast("string") if mapping.canonical and "source" in cols else None
            name = F.lit(mapping.name)
            select.append(
                (F.coalesce(F.nullif(F.trim(own), F.lit("")), name) if own is not None else name).alias(
                    "source"
                )
            )
            continue
        src = mapping.source_column_for(canonical)
        expr = F.col(f"`{src}`").cast("string") if src and src in cols else F.lit(None).cast("string")
        select.append(expr.alias(canonical))
    extras = [c for c in mapping.extra_columns(raw.columns) if c not in ("source", "batch_id")]
    extras_expr = (
        F.to_json(F.struct(*[F.col(f"`{c}`").cast("string").alias(c) for c in extras]))
        if extras
        else F.lit(None).cast("string")
    )
    return raw.select(
        *select,
        extras_expr.alias(EXTRAS_COLUMN),
        F.col("_batch_id"),
        F.col("_ingested_at"),
        F.col(META_LINE).cast("long").alias(META_LINE),
        F.col(META_ERROR) if META_ERROR in cols else F.lit(None).cast("string").alias(META_ERROR),
        F.col(META_RAW) if META_RAW in cols else F.lit(None).cast("string").alias(META_RAW),
        F.lit(mapping.trust).cast("int").alias("_trust"),
    )


def read_mapped_raw(
    spark: SparkSession, lake: Lake, mappings: dict[str, SourceMapping]
) -> tuple[DataFrame, list[str]]:
    frames, missing = [], []
    for mapping in mappings.values():
        path = raw_source_path(lake, mapping.name)
        if not lake.exists(path):
            missing.append(mapping.name)
            continue
        frames.append(map_source_to_canonical(spark.read.parquet(path), mapping))
    if not frames:
        raise FileNotFoundError("no source has landed in the raw zone yet; materialize raw_profiles first")
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out, missing


# Columns nearly unique per record: Parquet's writer would try a dictionary for each, find it
# no smaller than the values and rewrite them plain, so the dictionary attempt is skipped. The
# files' encodings are the ones the writer ends up with anyway.
UNIQUE_LIKE_COLUMNS = (
    "record_id", "source_customer_id", "email", "email_key", "phone", "street", "national_id",
    "device_id", "anonymous_id", "updated_at", META_LINE,
)  # fmt: skip
PLAIN_ENCODED = {f"parquet.enable.dictionary#{column}": "false" for column in UNIQUE_LIKE_COLUMNS}


def _clean_schema() -> T.StructType:
    fields = [T.StructField(c, T.StringType()) for c in [*CANONICAL_COLUMNS, "email_key", EXTRAS_COLUMN]]
    fields += [
        T.StructField(STAGED_REASON, T.StringType()),
        T.StructField(DUPLICATE_COUNT, T.LongType()),
        T.StructField("_batch_id", T.StringType()),
        T.StructField("_ingested_at", T.StringType()),
        T.StructField(META_LINE, T.LongType()),
        T.StructField("_trust", T.IntegerType()),
    ]
    schema = T.StructType(fields)
    assert schema.names == CLEAN_COLUMNS
    return schema


def _staged_schema() -> T.StructType:
    return T.StructType([*_clean_schema().fields, T.StructField(OUTCOME, T.StringType())])


def clean_partitions(default_region: str, tombstones: Tombstones | Mapping[str, set[str]]):
    """A mapInPandas function over partitions sorted by the partition key; imports on the worker."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:

        names = _staged_schema().names
        for out in clean_sorted_partition(batches, default_region, tombstones):
            yield staged(out)[names]

    return run


def clean_profiles(
    raw: DataFrame,
    default_region: str,
    tombstones: Tombstones | Mapping[str, set[str]] | None,
    staging: str,
) -> CleanResult:
    """One shuffle of the parsed rows by record id; the rest happens per sorted partition.

    Exact duplicates, erasure and the choice of each record id's current version all need a
    record id's rows together, so ``batches`` does them in the same pandas pass that
    standardizes, in place of a group-by over every column, JSON of every row and a window
    evaluated twice.

    Every row is written once, to ``staging`` split by :data:`OUTCOME` (a folder the caller
    owns and deletes): the clean rows' folder (``CleanResult.clean_folder``) is the clean
    profiles as they are, and the quarantine reads only its own rows back: nothing is cached
    and no row is encoded twice.
    """
    spark = raw.sparkSession
    # The counts read Parquet footers or one column; the one full read feeds the shuffle. The
    # file list is fixed when ``raw`` is planned, so every count sees the same batches.
    raw_rows = raw.count()
    parse_bad = raw.where(F.col(META_ERROR).isNotNull())
    parsed = raw.where(F.col(META_ERROR).isNull())
    key = F.regexp_replace(F.col("record_id"), JAVA_WHITESPACE_CLASS, "")
    (
        parsed.select(*CONTENT_COLUMNS, *META_COLUMNS, key.alias(PARTITION_KEY))
        .repartition(PARTITION_KEY)
        .sortWithinPartitions(PARTITION_KEY)
        .mapInPandas(clean_partitions(default_region, Tombstones.coerce(tombstones)), _staged_schema())
        .write.mode("overwrite")
        .options(**PLAIN_ENCODED)
        .partitionBy(OUTCOME)
        .parquet(staging)
    )
    parsed_rows = raw_rows - parse_bad.count()
    # Every parsed row has an outcome, so with any parsed row at least one outcome folder exists.
    totals = (
        {
            row[OUTCOME]: (row["rows"], int(row["copies"] or 0))
            for row in spark.read.parquet(staging)
            .groupBy(OUTCOME)
            .agg(F.count(F.lit(1)).alias("rows"), F.sum(DUPLICATE_COUNT).alias("copies"))
            .collect()
        }
        if parsed_rows
        else {}
    )

    def staged_rows(outcome: str) -> DataFrame:
        if outcome not in totals:  # no row had this outcome, so Spark wrote no folder for it
            return spark.createDataFrame([], _clean_schema())
        return spark.read.schema(_clean_schema()).parquet(_outcome_folder(staging, outcome))

    deduped_rows = sum(rows for rows, _copies in totals.values())
    erased_distinct, erased_rows = totals.get(ERASED, (0, 0))

    def as_quarantine(df: DataFrame, reason: F.Column, raw_json: F.Column, raw_line: F.Column) -> DataFrame:
        return df.select(
            "record_id", "source", "_batch_id", META_LINE, "_ingested_at",
            reason.alias("_reason"), raw_json.alias("_raw"), raw_line.alias(META_RAW), F.col(DUPLICATE_COUNT),
        )  # fmt: skip

    quarantined = as_quarantine(
        parse_bad.withColumn(DUPLICATE_COUNT, F.lit(1).cast("long")),
        F.concat(F.lit("parse_error: "), F.col(META_ERROR)),
        F.lit(None).cast("string"),
        F.col(META_RAW),
    ).unionByName(
        as_quarantine(
            staged_rows(QUARANTINED), F.col(STAGED_REASON), F.col(STAGED_RAW), F.lit(None).cast("string")
        )
    )
    return CleanResult(
        clean=staged_rows(CLEAN),
        quarantined=quarantined,
        raw_rows=raw_rows,
        # An erased row's duplicates are erased with it, not collapsed.
        collapsed_duplicates=(parsed_rows - erased_rows) - (deduped_rows - erased_distinct),
        erased_rows=erased_rows,
        clean_folder=_outcome_folder(staging, CLEAN) if CLEAN in totals else None,
    )


def _outcome_folder(staging: str, outcome: str) -> str:
    return f"{staging.rstrip('/')}/{OUTCOME}={outcome}"
