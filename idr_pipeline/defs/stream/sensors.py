"""One sensor per topic: high watermarks in, offset-range partitions and run requests out.

The cursor ({topic: {partition: next offset}}, plus the topic ids and the ranges recorded lost)
moves only past ranges that this tick turns into partitions, in the same SensorResult that adds them, so a tick that fails half-way
changes nothing and the next tick plans the same ranges again. The run key is the range, so a
range is never run twice by the sensor; re-running one by hand rewrites the same rows.
"""

import dagster as dg

from idr_pipeline.defs.platform.resources import KafkaResource, StoreResource
from idr_pipeline.defs.stream.streams import STREAMS, Stream
from idr_pipeline.live.service import CONSUMER
from idr_pipeline.settings import get_settings
from idr_pipeline.store import open_store
from idr_pipeline.store.stream_state import alive, control_row
from idr_pipeline.stream.consume import watermarks
from idr_pipeline.stream.fast_consume import topic_ids
from idr_pipeline.stream.guard import PositionMismatch, check_positions
from idr_pipeline.stream.offsets import (
    Cursor,
    CursorMeta,
    OffsetRange,
    compact_topic_id,
    cursor_from_keys,
    cursor_meta,
    decode_cursor,
    encode_sensor_cursor,
    plan_ranges,
)

#: Run tag holding the id of the topic a range was planned on; the range run checks it.
TOPIC_ID_TAG = "idr/topic_id"


def build_job(stream: Stream):
    return dg.define_asset_job(
        stream.job_name,
        selection=dg.AssetSelection.assets(stream.raw_key, stream.dead_key),
        description=f"Land one offset range of the {stream.name} topic (raw rows and dead letters).",
    )


def landed_topic_id(instance: dg.DagsterInstance, stream: Stream) -> str:
    """The topic id the latest landed range was read from ("" when none recorded one)."""
    event = instance.get_latest_materialization_event(stream.raw_key)
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    value = metadata.get("topic_id")
    return str(value.value) if value is not None else ""


def recovery_command(stream: Stream, topic: str, cursor: Cursor, meta: CursorMeta, found, low) -> str:
    """The one command that records the lost offsets in the cursor and restarts at the log start."""
    recreated = any(m.problem == "topic_recreated" for m in found)
    positions = {p: o for p, o in cursor.get(topic, {}).items()}
    for m in found:
        positions[m.partition] = low.get(m.partition, 0)
    if recreated:
        positions = {p: low.get(p, 0) for p in positions}
    lost = [
        {
            "topic": topic,
            "partition": m.partition,
            "first": m.lost_range()[0],
            "last": m.lost_range()[1],
            "topic_id": m.saved_topic_id,
            "reason": m.describe(),
        }
        for m in found
    ]
    new_meta = CursorMeta({**meta.topic_ids, topic: found[0].topic_id}, [*meta.lost, *lost])
    new_cursor = {**cursor, topic: positions}
    text = encode_sensor_cursor(new_cursor, new_meta)
    return f"dagster sensor cursor {stream.sensor_name} -w workspace.yaml --set '{text}'"


def evaluate_stream(
    stream: Stream, context: dg.SensorEvaluationContext, bootstrap: str, store_url: str | None = None
) -> dg.SensorResult:
    """The sensor body, separate so the demo runner and the tests call exactly this.

    The cursor keeps the topic id beside the offsets; a position that no longer fits the topic
    (recreated, truncated by retention, gone backwards) fails the tick with the command that
    records the loss and goes on. While the stream service consumes the topics (its heartbeat
    in the store is fresh), the sensor stays idle so the two never land the same offsets.
    """
    settings = get_settings()
    topic = stream.topic(settings)
    if store_url and service_running(store_url, settings.stream_batch_seconds):
        return dg.SensorResult(skip_reason=f"the stream service is consuming {topic}", cursor=context.cursor)
    meta = cursor_meta(context.cursor)
    cursor = decode_cursor(context.cursor)
    current_id = topic_ids(bootstrap, [topic]).get(topic, "")
    saved_id = meta.topic_ids.get(topic, "")
    if not cursor.get(topic):
        # No cursor (first tick or a reset): continue after the ranges of this topic id that
        # already exist; ranges of a recreated topic's predecessor do not count.
        keys = context.instance.get_dynamic_partitions(stream.partitions_def.name)
        cursor = {**cursor, **cursor_from_keys(topic, keys, current_id)}
        saved_id = saved_id or (current_id if cursor.get(topic) else "")
    low, high = watermarks(bootstrap, topic)
    if not high:
        return dg.SensorResult(skip_reason=f"topic {topic} does not exist yet", cursor=context.cursor)
    found = check_positions(topic, saved_id, current_id, cursor.get(topic, {}), low, high)
    if found:
        raise PositionMismatch(found, recovery=recovery_command(stream, topic, cursor, meta, found, low))
    plan = plan_ranges(
        topic,
        cursor,
        low,
        high,
        max_messages=settings.stream_max_range_messages,
        max_ranges_per_partition=settings.stream_max_ranges_per_tick,
    )
    meta.topic_ids[topic] = current_id
    for partition, count in plan.expired.items():
        meta.lost.append(
            {
                "topic": topic,
                "partition": partition,
                "first": 0,
                "last": count - 1,
                "topic_id": current_id,
                "reason": "deleted before first read",
            }
        )
        context.log.warning(
            f"{topic}[{partition}]: offsets 0..{count - 1} were deleted before this sensor read them"
        )
    observation = dg.AssetObservation(
        asset_key=stream.source_key,
        metadata={
            "consumer_lag": sum(plan.lag_before.values()),
            "unplanned_after_tick": sum(plan.lag_after.values()),
            "lag_by_partition": dg.MetadataValue.json({str(p): v for p, v in plan.lag_before.items()}),
            "high_watermarks": dg.MetadataValue.json({str(p): v for p, v in sorted(high.items())}),
            "topic_id": current_id,
            "expired_before_read": sum(plan.expired.values()),
            "offsets_recorded_lost": sum(
                (x["last"] - x["first"] + 1) if x["last"] is not None else 0 for x in meta.lost
            ),
            "lost_ranges": dg.MetadataValue.json(meta.lost),
            "ranges_planned": len(plan.ranges),
        },
    )
    new_cursor = encode_sensor_cursor(plan.cursor, meta)
    if not plan.ranges:
        return dg.SensorResult(
            skip_reason=f"no new messages on {topic}", cursor=new_cursor, asset_events=[observation]
        )
    ranges = [
        OffsetRange(r.topic, r.partition, r.start, r.end, compact_topic_id(current_id)) for r in plan.ranges
    ]
    keys = [r.key for r in ranges]
    existing = set(context.instance.get_dynamic_partitions(stream.partitions_def.name))
    new_keys = [k for k in keys if k not in existing]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(partition_key=k, run_key=f"{topic}:{k}", tags={TOPIC_ID_TAG: current_id})
            for k in keys
        ],
        dynamic_partitions_requests=[stream.partitions_def.build_add_request(new_keys)] if new_keys else [],
        cursor=new_cursor,
        asset_events=[observation],
    )


def service_running(store_url: str, batch_seconds: float) -> bool:
    """True while the stream service's heartbeat in the store is fresh."""
    with open_store(store_url) as store:
        store.ensure_schema()
        return alive(control_row(store, CONSUMER), stale_after_s=max(60.0, 10 * batch_seconds))


def build_sensor(stream: Stream, job) -> dg.SensorDefinition:
    @dg.sensor(
        name=stream.sensor_name,
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Turns new offsets of the {stream.name} topic into range partitions and runs.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext, kafka: KafkaResource, store: StoreResource
    ) -> dg.SensorResult:
        return evaluate_stream(stream, context, kafka.bootstrap_servers, store.url)

    return _sensor


stream_jobs = {s.name: build_job(s) for s in STREAMS}
stream_sensors = [build_sensor(s, stream_jobs[s.name]) for s in STREAMS]
