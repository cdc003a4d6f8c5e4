"""stitched_identities: streamed sign-ups and identify events folded into the identity graph."""

import dagster as dg
from dagster_pyspark import PySparkResource

from idr_pipeline.core.reporting import markdown_table
from idr_pipeline.defs.platform.execution import SPARK_POOL
from idr_pipeline.defs.platform.resources import LakeResource, StoreResource
from idr_pipeline.stream.stitch_ranges import stitch_new_ranges

#: Below this share of events resolving to an identity the check warns: anonymous traffic is
#: normal, but a share this low means identify events or sign-ups are not reaching the graph.
MIN_STITCHED_SHARE = 0.5


@dg.asset(
    pool=SPARK_POOL,
    deps=[
        dg.AssetDep("raw_events", partition_mapping=dg.AllPartitionMapping()),
        dg.AssetDep("raw_profile_stream", partition_mapping=dg.AllPartitionMapping()),
        "served_identities",
    ],
    group_name="stream",
    kinds={"python", "parquet"},
    automation_condition=dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing()),
    description="Incremental re-resolution: the offset ranges landed since the last run add records "
    "and anonymous_id/user_id/email edges; only the touched components are recomputed, merges keep "
    "the older id and are recorded in the store.",
)
def stitched_identities(
    pyspark: PySparkResource, lake: LakeResource, store: StoreResource
) -> dg.MaterializeResult:
    with store.open() as opened:
        run = stitch_new_ranges(opened, lake.lake(pyspark.spark_session))
    result = run.result
    merges = result.merges if result is not None else None
    return dg.MaterializeResult(
        metadata={
            "ranges_stitched": dg.MetadataValue.json(run.ranges),
            "events": run.events,
            "identify_events": run.identify_events,
            "profiles": run.profiles,
            "stitched_share": round(run.stitched_share, 4),
            "touched_nodes": result.touched_nodes if result else 0,
            "new_identities": result.new_identities if result else 0,
            "erased_records": result.erased_records if result else 0,
            "erased_events": result.erased_events if result else 0,
            "merges": run.merges,
            "store_rows_changed": dg.MetadataValue.json(result.changed if result else {}),
            "merge_preview": dg.MetadataValue.md(
                markdown_table(merges.head(10)) if merges is not None else ""
            ),
            "seconds": round(run.seconds, 2),
        }
    )


@dg.asset_check(asset=stitched_identities, description="Share of events that resolve to an identity.")
def stitched_share_of_events(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    event = context.instance.get_latest_materialization_event(dg.AssetKey("stitched_identities"))
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    events = metadata.get("events")
    share = metadata.get("stitched_share")
    n = int(events.value) if events is not None else 0
    value = float(share.value) if share is not None else 0.0
    return dg.AssetCheckResult(
        passed=n == 0 or value >= MIN_STITCHED_SHARE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"events": n, "stitched_share": value, "min_share": MIN_STITCHED_SHARE},
    )


stitch_job = dg.define_asset_job(
    "stitch_job",
    selection=dg.AssetSelection.assets("stitched_identities"),
    description="Fold newly landed stream ranges into the identity graph.",
)
