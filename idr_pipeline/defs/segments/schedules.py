"""The daily re-evaluation: windows move every day even when no event arrives."""

import dagster as dg

from idr_pipeline.defs.segments.partitions import segments_daily

segments_job = dg.define_asset_job(
    "segments_job",
    selection=dg.AssetSelection.assets("user_features", "behavior_embeddings", "audience_segments"),
    partitions_def=segments_daily,
    description="Features, behavior vectors and audiences as of the partition's day.",
)

# 03:00 UTC, after the 02:00 resolve job: today's partition (end_offset=1), so "clicked in the
# last 7 days" drops yesterday's week-old clickers even on a day without traffic.
daily_segments_schedule = dg.build_schedule_from_partitioned_job(
    segments_job,
    name="daily_segments_schedule",
    hour_of_day=3,
    minute_of_hour=0,
    # On by default: the batch is the reconciliation of the stream service, and the only
    # re-evaluation of prototype segments.
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
