"""Checks on the identity graph: no runaway clusters, no record left without an identity.

Both are blocking: a failure stops the golden records and the publish to the store, which
keeps the identities of the last run that passed.
"""

import dagster as dg
from dagster_pyspark import PySparkResource
from pyspark.sql import functions as F

from idr_pipeline.core.catalog import LINKS
from idr_pipeline.defs.platform.execution import SPARK_POOL
from idr_pipeline.defs.platform.resources import LakeResource, PipelineConfig
from idr_pipeline.quality.accounting import records_without_identity


@dg.asset_check(
    asset="identity_graph",
    description="the largest identity stays under the configured cap",
    blocking=True,
    pool=SPARK_POOL,
)
def largest_cluster_under_cap(
    pyspark: PySparkResource, lake: LakeResource, pipeline_config: PipelineConfig
) -> dg.AssetCheckResult:
    links = lake.lake(pyspark.spark_session).read_latest(*LINKS)
    largest = int(links.groupBy("identity_id").count().agg(F.max("count")).first()[0] or 0)
    cap = pipeline_config.max_cluster_size
    return dg.AssetCheckResult(
        passed=largest <= cap,
        description=None
        if largest <= cap
        else f"the largest identity has {largest:,} records, over IDR_MAX_CLUSTER_SIZE {cap:,}: "
        "publishing stopped",
        metadata={"largest_cluster": largest, "cap": cap},
    )


@dg.asset_check(
    asset="identity_graph",
    description="every clean record is linked to exactly one identity",
    blocking=True,
    pool=SPARK_POOL,
)
def every_record_has_identity(pyspark: PySparkResource, lake: LakeResource) -> dg.AssetCheckResult:
    lk = lake.lake(pyspark.spark_session)
    missing = records_without_identity(lk)
    links = lk.read_latest(*LINKS)
    duplicated = links.groupBy("record_id").count().where(F.col("count") > 1).count()
    passed = missing == 0 and duplicated == 0
    return dg.AssetCheckResult(
        passed=passed,
        description=None
        if passed
        else f"{missing:,} records without an identity, {duplicated:,} with several: publishing stopped",
        metadata={"records_without_identity": missing, "records_with_several_identities": duplicated},
    )
