"""clean_profiles and quarantined_profiles: one Spark pass splits every raw row between them."""

import dagster as dg
from dagster_pyspark import PySparkResource

from idr_pipeline.core.reporting import markdown_table
from idr_pipeline.defs.platform.execution import SPARK_POOL
from idr_pipeline.defs.platform.resources import LakeResource, PipelineConfig, StoreResource
from idr_pipeline.standardize.steps import run_cleaning
from idr_pipeline.store.tombstones import load_tombstones


@dg.multi_asset(
    pool=SPARK_POOL,
    specs=[
        dg.AssetSpec(
            "clean_profiles",
            deps=["raw_profiles"],
            group_name="standardize",
            kinds={"spark", "parquet"},
            description="Standardized canonical profiles (pandera-validated); one row per record_id.",
        ),
        dg.AssetSpec(
            "quarantined_profiles",
            deps=["raw_profiles"],
            group_name="standardize",
            kinds={"spark", "parquet"},
            description="Rows with nothing usable, unparseable lines and superseded versions, each with its reason.",
        ),
    ],
)
def standardized_profiles(
    pyspark: PySparkResource, lake: LakeResource, store: StoreResource, pipeline_config: PipelineConfig
):
    spark = pyspark.spark_session
    stats = run_cleaning(
        spark,
        lake.lake(spark),
        pipeline_config.mappings(),
        pipeline_config.default_phone_region,
        load_tombstones(store.url),
    )
    yield dg.MaterializeResult(
        asset_key="clean_profiles",
        metadata={
            "dagster/row_count": stats.clean_rows,
            "raw_rows": stats.raw_rows,
            "collapsed_duplicates": stats.collapsed_duplicates,
            "sources_not_landed": ", ".join(stats.sources_missing) or "none",
            "preview": dg.MetadataValue.md(markdown_table(stats.clean_preview)),
        },
    )
    yield dg.MaterializeResult(
        asset_key="quarantined_profiles",
        metadata={
            "dagster/row_count": stats.quarantined_rows,
            "quarantine_rate": stats.quarantined_rows / max(stats.raw_rows, 1),
            "top_reasons": dg.MetadataValue.md(markdown_table(stats.top_reasons)),
            "preview": dg.MetadataValue.md(markdown_table(stats.quarantine_preview)),
        },
    )
