"""Checks on standardization: nothing lost, and not too much rejected.

Both are blocking: a failure stops every asset downstream of the checked one, so the store
keeps the identities of the last run that passed.
"""

import dagster as dg
from dagster_pyspark import PySparkResource

from idr_pipeline.defs.platform.execution import SPARK_POOL
from idr_pipeline.defs.platform.resources import LakeResource, PipelineConfig
from idr_pipeline.quality.accounting import row_account
from idr_pipeline.standardize.steps import read_erased_rows


@dg.asset_check(
    asset="clean_profiles",
    description="raw rows = clean + quarantined + collapsed duplicates + erased",
    blocking=True,
    pool=SPARK_POOL,
)
def row_accounting(pyspark: PySparkResource, lake: LakeResource) -> dg.AssetCheckResult:
    the_lake = lake.lake(pyspark.spark_session)
    acc = row_account(the_lake)
    erased = read_erased_rows(the_lake)
    accounted = acc.clean + acc.quarantined + acc.collapsed + erased
    return dg.AssetCheckResult(
        passed=acc.raw == accounted,
        description=None
        if acc.raw == accounted
        else f"{acc.raw:,} raw rows but {accounted:,} accounted for: publishing stopped",
        metadata={
            "raw": acc.raw,
            "clean": acc.clean,
            "quarantined": acc.quarantined,
            "collapsed": acc.collapsed,
            "erased": erased,
        },
    )


# On clean_profiles, not on quarantined_profiles: a blocking check stops only the assets
# downstream of the one it checks, and nothing reads the quarantine.
@dg.asset_check(
    asset="clean_profiles",
    description="share of raw rows quarantined stays under the threshold",
    blocking=True,
    pool=SPARK_POOL,
)
def quarantine_rate_under_threshold(
    pyspark: PySparkResource, lake: LakeResource, pipeline_config: PipelineConfig
) -> dg.AssetCheckResult:
    acc = row_account(lake.lake(pyspark.spark_session))
    rate = acc.quarantined / max(acc.raw, 1)
    threshold = pipeline_config.max_quarantine_rate
    return dg.AssetCheckResult(
        passed=rate <= threshold,
        description=None
        if rate <= threshold
        else f"{rate:.1%} of raw rows quarantined, above IDR_MAX_QUARANTINE_RATE {threshold:.1%}: "
        "publishing stopped",
        metadata={"quarantine_rate": rate, "threshold": threshold},
    )
