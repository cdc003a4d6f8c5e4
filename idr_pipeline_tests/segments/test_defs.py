"""The segment assets' wiring: daily partitions, event dependency, automation, check, schedule."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from idr_pipeline.definitions import load_idr_definitions
from idr_pipeline.defs.segments.partitions import is_current, partition_as_of

SEGMENT_ASSETS = ("user_features", "behavior_embeddings", "audience_segments")


def test_segment_assets_are_daily_automated_and_read_all_event_ranges() -> None:
    defs = load_idr_definitions()
    graph = defs.resolve_asset_graph()
    for name in SEGMENT_ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition)
        assert node.automation_condition is not None
        assert dg.AssetKey("raw_events") in node.parent_keys
        mapping = graph.get_partition_mapping(dg.AssetKey(name), dg.AssetKey("raw_events"))
        assert isinstance(mapping, dg.AllPartitionMapping)
    for name in ("user_features", "audience_segments"):  # both write the store after it is served
        assert dg.AssetKey("served_identities") in graph.get(dg.AssetKey(name)).parent_keys
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == dg.AssetKey("audience_segments")}
    assert "segment_sizes_within_bounds" in checks
    schedule = defs.resolve_schedule_def("daily_segments_schedule")
    assert schedule.cron_schedule == "0 3 * * *" and schedule.job_name == "segments_job"


def test_partition_instant_and_which_partition_may_write() -> None:
    now = datetime(2025, 3, 31, 15, 30, tzinfo=UTC)
    assert partition_as_of("2025-03-30", now) == datetime(2025, 3, 31, tzinfo=UTC)
    # Today's partition ends at the coming midnight, as the stream service's windows do.
    assert partition_as_of("2025-03-31", now) == datetime(2025, 4, 1, tzinfo=UTC)
    assert is_current("2025-03-31", now) and not is_current("2025-03-30", now)
