"""resolved_profiles."""

import dagster as dg
from dagster_pyspark import PySparkResource

from idr_pipeline.core.reporting import markdown_table
from idr_pipeline.defs.platform.execution import SPARK_POOL
from idr_pipeline.defs.platform.resources import LakeResource
from idr_pipeline.golden.steps import run_golden


@dg.asset(
    pool=SPARK_POOL,
    deps=["identity_graph", "clean_profiles"],
    group_name="golden",
    kinds={"spark", "parquet"},
    description="One golden record per identity by survivorship (trust, recency, frequency), with its identifiers.",
)
def resolved_profiles(pyspark: PySparkResource, lake: LakeResource) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    stats = run_golden(spark, lake.lake(spark))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats.identities,
            "identifiers": stats.identifiers,
            "identifiers_by_type": dg.MetadataValue.md(markdown_table(stats.identifiers_by_type)),
            "preview": dg.MetadataValue.md(markdown_table(stats.preview)),
        }
    )
