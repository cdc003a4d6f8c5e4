"""The golden stage over the lake: golden records and identifier look-ups from the identity links."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from idr_pipeline.core.catalog import CLEAN, GOLDEN, IDENTIFIERS, LINKS
from idr_pipeline.core.lake import Lake
from idr_pipeline.golden.survivorship import build_golden_records, build_identifiers


@dataclass
class GoldenStats:
    identities: int
    identifiers: int
    identifiers_by_type: pd.DataFrame
    preview: pd.DataFrame


def run_golden(spark: SparkSession, lake: Lake) -> GoldenStats:
    clean = lake.read_latest(*CLEAN)
    links = lake.read_latest(*LINKS)
    lake.write_version(build_golden_records(clean, links), *GOLDEN)
    lake.write_version(build_identifiers(clean, links), *IDENTIFIERS)
    golden = lake.read_latest(*GOLDEN)
    identifiers = lake.read_latest(*IDENTIFIERS)
    return GoldenStats(
        identities=golden.count(),
        identifiers=identifiers.count(),
        identifiers_by_type=identifiers.groupBy("id_type").count().orderBy("id_type").toPandas(),
        preview=golden.orderBy(F.desc("record_count"), "identity_id").limit(5).toPandas(),
    )
