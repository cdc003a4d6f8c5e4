"""The standardize stage over the lake: raw batches to clean profiles and quarantine rows, as the
Dagster assets and ``idr resolve`` run it, with the figures the row accounting checks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from idr_pipeline.core.catalog import CLEAN, CLEANING_STAGING, ERASED, QUARANTINE
from idr_pipeline.core.lake import Lake
from idr_pipeline.core.tombstones import Tombstones
from idr_pipeline.ingest.mapping import SourceMapping
from idr_pipeline.standardize.job import clean_profiles, read_mapped_raw


@dataclass
class CleaningStats:
    raw_rows: int
    clean_rows: int
    quarantined_rows: int
    collapsed_duplicates: int
    top_reasons: pd.DataFrame
    clean_preview: pd.DataFrame
    quarantine_preview: pd.DataFrame
    sources_missing: list[str] = field(default_factory=list)
    erased_rows: int = 0

    @property
    def balanced(self) -> bool:
        return self.raw_rows == (
            self.clean_rows + self.quarantined_rows + self.collapsed_duplicates + self.erased_rows
        )


def read_erased_rows(lake: Lake) -> int:
    """Rows the latest cleaning run erased (0 before the first run that recorded it)."""
    if not lake.has_dataset(*ERASED):
        return 0
    return int(lake.read_latest(*ERASED).agg(F.sum("erased_rows")).first()[0] or 0)


def run_cleaning(
    spark: SparkSession,
    lake: Lake,
    mappings: dict[str, SourceMapping],
    default_region: str,
    tombstones: Tombstones,
) -> CleaningStats:
    """``tombstones``: the store's erasure tombstones (id_type -> hashes); rows carrying one are
    erased, not cleaned (see ``idr_pipeline.store.tombstones.load_tombstones``)."""
    raw, missing = read_mapped_raw(spark, lake, mappings)
    staging = lake.path(*CLEANING_STAGING, uuid.uuid4().hex)
    try:
        result = clean_profiles(raw, default_region, tombstones, staging)
        lake.write_version(result.quarantined, *QUARANTINE)
        if result.clean_folder is None:
            lake.write_version(result.clean, *CLEAN)
        else:
            lake.adopt_version(result.clean_folder, *CLEAN)
    finally:
        lake.delete(staging)
    lake.write_version(spark.createDataFrame([(result.erased_rows,)], "erased_rows long"), *ERASED)
    clean = lake.read_latest(*CLEAN)
    quarantined = lake.read_latest(*QUARANTINE)
    reason_head = F.regexp_extract(F.col("_reason"), r"^([^:]+)", 1)
    top = (
        quarantined.groupBy(reason_head.alias("reason")).count().orderBy(F.desc("count")).limit(10).toPandas()
    )
    return CleaningStats(
        raw_rows=result.raw_rows,
        clean_rows=clean.count(),
        quarantined_rows=quarantined.count(),
        collapsed_duplicates=result.collapsed_duplicates,
        top_reasons=top,
        clean_preview=clean.drop("extras").limit(5).toPandas(),
        quarantine_preview=quarantined.limit(5).toPandas(),
        sources_missing=missing,
        erased_rows=result.erased_rows,
    )
