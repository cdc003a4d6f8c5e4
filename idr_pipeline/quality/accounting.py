"""Row accounting recomputed from the lake, independent of what the job reported."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import functions as F

from idr_pipeline.core.catalog import CLEAN, LINKS, QUARANTINE, RAW_PROFILES, RAW_ZONE
from idr_pipeline.core.lake import Lake


@dataclass(frozen=True)
class RowAccount:
    raw: int
    clean: int
    quarantined: int
    collapsed: int

    @property
    def balanced(self) -> bool:
        return self.raw == self.clean + self.quarantined + self.collapsed


def row_account(lake: Lake) -> RowAccount:
    raw = lake.spark.read.parquet(lake.path(RAW_ZONE, RAW_PROFILES)).count()
    clean = lake.read_latest(*CLEAN)
    quarantined = lake.read_latest(*QUARANTINE)
    extra = F.sum(F.col("_duplicate_count") - 1)
    collapsed = (clean.agg(extra).first()[0] or 0) + (quarantined.agg(extra).first()[0] or 0)
    return RowAccount(raw=raw, clean=clean.count(), quarantined=quarantined.count(), collapsed=int(collapsed))


def records_without_identity(lake: Lake) -> int:
    clean = lake.read_latest(*CLEAN).select("record_id")
    links = lake.read_latest(*LINKS).select("record_id")
    return clean.join(links, "record_id", "left_anti").count()
