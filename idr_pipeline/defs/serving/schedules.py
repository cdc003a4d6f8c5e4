"""The resolution job: everything after landing, run daily and on demand."""

import dagster as dg

resolve_job = dg.define_asset_job(
    "resolve_job",
    # The batch lineage only: the stream and segment assets carry their own partitions (offset
    # ranges, days), and one job cannot span several partitions definitions.
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.assets("raw_profiles")
    # The change feed follows every publish on its own (it needs the broker, the publish does not).
    - dg.AssetSelection.assets("identity_change_feed")
    - dg.AssetSelection.groups("stream", "segments"),
    description="Standardize, link, cluster, build golden records and serve; raw landing runs per source.",
)

daily_resolve_schedule = dg.ScheduleDefinition(
    name="daily_resolve_schedule",
    job=resolve_job,
    cron_schedule="0 2 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
