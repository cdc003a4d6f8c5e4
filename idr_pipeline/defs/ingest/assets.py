"""raw_profiles: each source file landed, unchanged, in the raw zone."""

import dagster as dg
from dagster_pyspark import PySparkResource

from idr_pipeline.core.reporting import markdown_table
from idr_pipeline.defs.ingest.partitions import source_partitions
from idr_pipeline.defs.platform.execution import SPARK_POOL
from idr_pipeline.defs.platform.resources import LakeResource, PipelineConfig
from idr_pipeline.ingest.landing import land_source


@dg.asset(
    pool=SPARK_POOL,
    partitions_def=source_partitions,
    group_name="ingest",
    kinds={"spark", "parquet"},
    description="Source files landed as Parquet in the raw zone; one partition per source, immutable batches.",
)
def raw_profiles(
    context: dg.AssetExecutionContext,
    pyspark: PySparkResource,
    lake: LakeResource,
    pipeline_config: PipelineConfig,
) -> dg.MaterializeResult:
    mapping = pipeline_config.mappings()[context.partition_key]
    result = land_source(lake.lake(pyspark.spark_session), mapping, pipeline_config.landing_dir)
    if result.already_landed:
        context.log.info(f"batch {result.batch_id} of {mapping.name} already landed; raw zone left unchanged")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.rows,
            "batch_id": result.batch_id,
            "path": dg.MetadataValue.path(result.path),
            "parse_errors": result.parse_errors,
            "already_landed": result.already_landed,
            "preview": dg.MetadataValue.md(markdown_table(result.preview)),
        }
    )
