"""user_features, behavior_embeddings and audience_segments: thin wrappers over idr_pipeline.segments."""

import dagster as dg
from dagster_pyspark import PySparkResource

from idr_pipeline.core.reporting import markdown_table
from idr_pipeline.defs.platform.execution import SPARK_POOL
from idr_pipeline.defs.platform.resources import LakeResource, StoreResource
from idr_pipeline.defs.segments.partitions import is_current, partition_as_of, segments_daily
from idr_pipeline.segments.steps import (
    build_behavior_embeddings,
    build_features,
    evaluate_segments,
    read_behavior_embeddings,
    read_behavior_index,
)

#: Landed events arrive as dynamically partitioned offset ranges; every day's features read
#: all of them (an offset range is not a day), so the dependency spans all partitions.
RAW_EVENTS = dg.AssetDep("raw_events", partition_mapping=dg.AllPartitionMapping())

#: Re-evaluate the latest day whenever events land or identities are re-served. Eager, minus
#: its "no dependency partition missing" guard: one offset range that failed to land would
#: otherwise hold every audience back until someone repaired it.
ON_NEW_EVENTS = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())


def _stitch_metadata(stitch) -> dict[str, object]:
    return {
        "events": stitch.events,
        "events_unresolved": stitch.unresolved,
        "stitched_share": round(stitch.stitched_share, 4),
        "resolution": dg.MetadataValue.md(markdown_table(stitch.table())),
    }


def _aggregate_metadata(run: dict[str, object] | None) -> dict[str, object]:
    """Where every event of the aggregate window went; nothing when the store was left alone."""
    if run is None:
        return {"aggregates_published": False}
    counts = ("events", "aggregated", "unresolved", "other_types", "unknown_identity", "aggregate_rows")
    return {"aggregates_published": True, **{f"aggregates_{k}": int(run[k]) for k in counts}}


@dg.asset(
    pool=SPARK_POOL,
    # served_identities: the aggregates keep only identities the store holds, so they are
    # published after the store has this run's identities.
    deps=[RAW_EVENTS, "resolved_profiles", "served_identities"],
    partitions_def=segments_daily,
    automation_condition=ON_NEW_EVENTS,
    group_name="segments",
    kinds={"spark", "parquet", "sqlite", "singlestore"},
    description="Per identity: 7/30/90-day views, clicks and purchases (total and by category), "
    "spend, recency and top categories, as of the partition's day. Today's partition also "
    "replaces the store's event_aggregates, which the API's behavioral audience leaves read.",
)
def user_features(
    context: dg.AssetExecutionContext, pyspark: PySparkResource, lake: LakeResource, store: StoreResource
) -> dg.MaterializeResult:
    as_of = partition_as_of(context.partition_key)
    spark = pyspark.spark_session
    if is_current(context.partition_key):
        with store.open() as st:
            stats = build_features(spark, lake.lake(spark), as_of, st)
    else:
        stats = build_features(spark, lake.lake(spark), as_of)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats.identities,
            "as_of": as_of.isoformat(),
            "seconds": round(stats.seconds, 1),
            **_stitch_metadata(stats.stitch),
            **_aggregate_metadata(stats.aggregates),
            "preview": dg.MetadataValue.md(markdown_table(stats.preview)),
        }
    )


@dg.asset(
    pool=SPARK_POOL,
    deps=[RAW_EVENTS, "resolved_profiles"],
    partitions_def=segments_daily,
    automation_condition=ON_NEW_EVENTS,
    group_name="segments",
    kinds={"parquet", "faiss"},
    description="One behavior vector per identity from its last 90 days of events "
    "(text rendering + the configured vectorizer), for prototype segments, and their Faiss "
    "index under IDR_INDEX_DIR/behavior/<day>, which lookalike segments and the API query.",
)
def behavior_embeddings(
    context: dg.AssetExecutionContext, pyspark: PySparkResource, lake: LakeResource
) -> dg.MaterializeResult:
    as_of = partition_as_of(context.partition_key)
    built = build_behavior_embeddings(pyspark.spark_session, lake.lake(pyspark.spark_session), as_of)
    vectors = built.vectors
    sample = vectors.to_frame()[["identity_id", "text"]].head(5)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(vectors.ids),
            "vectorizer": vectors.vectorizer,
            "as_of": as_of.isoformat(),
            "seconds": round(built.seconds, 1),
            "index_vectors": len(built.index),
            "index_kind": built.index.kind,
            "index_dims": built.index.dim,
            "index_dims_from": built.index.how,
            "index_path": dg.MetadataValue.path(built.index_path),
            **_stitch_metadata(built.stitch),
            "sample_texts": dg.MetadataValue.md(markdown_table(sample)),
        }
    )


@dg.asset(
    pool=SPARK_POOL,
    deps=["behavior_embeddings", RAW_EVENTS, "resolved_profiles", "served_identities"],
    partitions_def=segments_daily,
    automation_condition=ON_NEW_EVENTS,
    group_name="segments",
    kinds={"spark", "sqlite", "singlestore"},
    description="Segment definitions and members (identity_id, segment, score, assigned_at) in the "
    "store, with joined/left history. Only today's partition writes the store.",
)
def audience_segments(
    context: dg.AssetExecutionContext, pyspark: PySparkResource, lake: LakeResource, store: StoreResource
) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    lk = lake.lake(spark)
    as_of = partition_as_of(context.partition_key)
    write = is_current(context.partition_key)
    with store.open() as st:
        stats = evaluate_segments(
            spark,
            lk,
            st,
            as_of,
            embeddings=read_behavior_embeddings(lk, as_of),
            behavior_index=read_behavior_index(as_of),
            write=write,
        )
    if not write:
        context.log.info(
            "partition %s is not today's: sizes reported, store left as it is", context.partition_key
        )
    table = stats.table()
    return dg.MaterializeResult(
        metadata={
            "as_of": as_of.isoformat(),
            "store_written": write,
            "active_identities": stats.universe,
            "segments": len(table),
            "members_total": int(table["members"].sum()),
            "joined": int(table["joined"].sum()),
            "left": int(table["left"].sum()),
            "retired_segments": ", ".join(stats.retired) or "-",
            "vectorizer": stats.vectorizer,
            "seconds": round(stats.seconds, 1),
            "sizes": dg.MetadataValue.md(markdown_table(table, max_rows=100)),
            **_stitch_metadata(stats.stitch),
        }
    )
