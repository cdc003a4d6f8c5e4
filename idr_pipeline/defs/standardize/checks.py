"""Checks on standardization: nothing lost, and not too much rejected."""

import dagster as dg
from dagster_pyspark import PySparkResource

from idr_pipeline.defs.platform.execution import SPARK_POOL
from idr_pipeline.defs.platform.resources import LakeResource, PipelineConfig
from idr_pipeline.quality.accounting import row_account
from idr_pipeline.standardize.steps import read_erased_rows


@dg.asset_check(
    asset="clean_profiles",
    description="raw rows = clean + quarantined + collapsed duplicates + erased",
    pool=SPARK_POOL,
)
def row_accounting(pyspark: PySparkResource, lake: LakeResource) -> dg.AssetCheckResult:
    the_lake = lake.lake(pyspark.spark_session)
    acc = row_account(the_lake)
    erased = read_erased_rows(the_lake)
    return dg.AssetCheckResult(
        passed=acc.raw == acc.clean + acc.quarantined + acc.collapsed + erased,
        metadata={
            "raw": acc.raw,
            "clean": acc.clean,
            "quarantined": acc.quarantined,
            "collapsed": acc.collapsed,
            "erased": erased,
        },
    )


@dg.asset_check(
    asset="quarantined_profiles",
    description="share of raw rows quarantined stays under the threshold",
    pool=SPARK_POOL,
)
def quarantine_rate_under_threshold(
    pyspark: PySparkResource, lake: LakeResource, pipeline_config: PipelineConfig
) -> dg.AssetCheckResult:
    acc = row_account(lake.lake(pyspark.spark_session))
    rate = acc.quarantined / max(acc.raw, 1)
    return dg.AssetCheckResult(
        passed=rate <= pipeline_config.max_quarantine_rate,
        metadata={"quarantine_rate": rate, "threshold": pipeline_config.max_quarantine_rate},
    )
