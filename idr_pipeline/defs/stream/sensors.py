"""One sensor per topic: high watermarks in, offset-range partitions and run requests out.

The cursor ({topic: {partition: next offset}}) moves only past ranges that this tick turns
into partitions, in the same SensorResult that adds them, so a tick that fails half-way
changes nothing and the next tick plans the same ranges again. The run key is the range, so a
range is never run twice by the sensor; re-running one by hand rewrites the same rows.
"""

import json

import dagster as dg

from idr_pipeline.defs.platform.resources import KafkaResource
from idr_pipeline.defs.stream.streams import STREAMS, Stream
from idr_pipeline.settings import get_settings
from idr_pipeline.stream.consume import watermarks
from idr_pipeline.stream.offsets import cursor_from_keys, decode_cursor, encode_cursor, plan_ranges


def build_job(stream: Stream):
    return dg.define_asset_job(
        stream.job_name,
        selection=dg.AssetSelection.assets(stream.raw_key, stream.dead_key),
        description=f"Land one offset range of the {stream.name} topic (raw rows and dead letters).",
    )


def evaluate_stream(stream: Stream, context: dg.SensorEvaluationContext, bootstrap: str) -> dg.SensorResult:
    """The sensor body, separate so the demo runner and the tests call exactly this."""
    settings = get_settings()
    topic = stream.topic(settings)
    cursor = decode_cursor(context.cursor)
    if not cursor:
        # No cursor (first tick or a reset): continue after the partitions that already exist.
        cursor = cursor_from_keys(topic, context.instance.get_dynamic_partitions(stream.partitions_def.name))
    low, high = watermarks(bootstrap, topic)
    if not high:
        return dg.SensorResult(skip_reason=f"topic {topic} does not exist yet", cursor=encode_cursor(cursor))
    plan = plan_ranges(
        topic,
        cursor,
        low,
        high,
        max_messages=settings.stream_max_range_messages,
        max_ranges_per_partition=settings.stream_max_ranges_per_tick,
    )
    observation = dg.AssetObservation(
        asset_key=stream.source_key,
        metadata={
            "consumer_lag": sum(plan.lag_before.values()),
            "unplanned_after_tick": sum(plan.lag_after.values()),
            "lag_by_partition": dg.MetadataValue.json({str(p): v for p, v in plan.lag_before.items()}),
            "high_watermarks": dg.MetadataValue.json({str(p): v for p, v in sorted(high.items())}),
            "expired_before_read": sum(plan.expired.values()),
            "ranges_planned": len(plan.ranges),
        },
    )
    new_cursor = encode_cursor(plan.cursor)
    if not plan.ranges:
        return dg.SensorResult(
            skip_reason=f"no new messages on {topic}", cursor=new_cursor, asset_events=[observation]
        )
    if plan.expired:
        context.log.warning(f"{topic}: retention deleted unread messages {json.dumps(plan.expired)}")
    keys = [r.key for r in plan.ranges]
    existing = set(context.instance.get_dynamic_partitions(stream.partitions_def.name))
    new_keys = [k for k in keys if k not in existing]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=k, run_key=f"{topic}:{k}") for k in keys],
        dynamic_partitions_requests=[stream.partitions_def.build_add_request(new_keys)] if new_keys else [],
        cursor=new_cursor,
        asset_events=[observation],
    )


def build_sensor(stream: Stream, job) -> dg.SensorDefinition:
    @dg.sensor(
        name=stream.sensor_name,
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Turns new offsets of the {stream.name} topic into range partitions and runs.",
    )
    def _sensor(context: dg.SensorEvaluationContext, kafka: KafkaResource) -> dg.SensorResult:
        return evaluate_stream(stream, context, kafka.bootstrap_servers)

    return _sensor


stream_jobs = {s.name: build_job(s) for s in STREAMS}
stream_sensors = [build_sensor(s, stream_jobs[s.name]) for s in STREAMS]
