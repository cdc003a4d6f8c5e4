"""Kafka topics as external assets, and each offset range landed as raw rows plus dead letters.

One multi-asset per stream writes both outputs from a single read of the range: reading the
range twice (once per asset) would double the broker traffic and could, in principle, see
different retention. The dead-letter output is its own asset so the UI shows it, its row count
and its check next to the clean rows.
"""

import time

import dagster as dg

from idr_pipeline.core.catalog import dead_letter_dataset
from idr_pipeline.core.reporting import markdown_table
from idr_pipeline.defs.platform.resources import KafkaResource, LakeResource
from idr_pipeline.defs.stream.streams import STREAMS, Stream
from idr_pipeline.settings import get_settings
from idr_pipeline.stream import land
from idr_pipeline.stream.consume import read_range, watermarks
from idr_pipeline.stream.fast_consume import topic_ids
from idr_pipeline.stream.offsets import compact_topic_id, parse_range_key

DEAD_LETTER_CHECK = "dead_letter_rate_under_threshold"
LAG_CHECK = "consumer_lag_under_threshold"
ACCOUNTING_CHECK = "every_offset_accounted_for"


def topic_spec(stream: Stream) -> dg.AssetSpec:
    return dg.AssetSpec(
        stream.source_key,
        kinds={"kafka"},
        group_name="stream",
        description=f"Kafka topic {stream.topic()!r} (external: produced outside Dagster). "
        "The sensor records the consumer lag here as an observation on every tick.",
        metadata={"topic": stream.topic()},
    )


def _preview(table, rows: int = 5) -> str:
    return markdown_table(table.slice(0, rows).to_pandas()) if table.num_rows else "_no rows_"


def build_stream_asset(stream: Stream) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=f"land_{stream.name}_range",
        specs=[
            dg.AssetSpec(
                stream.raw_key,
                deps=[stream.source_key],
                partitions_def=stream.partitions_def,
                kinds={"parquet"},
                group_name="stream",
                description=f"Valid {stream.name} messages of one offset range, as Parquet in "
                f"raw/{stream.raw_dataset}/<range key>; re-running a range rewrites the same rows.",
            ),
            dg.AssetSpec(
                stream.dead_key,
                deps=[stream.source_key],
                partitions_def=stream.partitions_def,
                kinds={"parquet"},
                group_name="stream",
                description=f"Malformed {stream.name} messages of one offset range with offset and reason.",
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                DEAD_LETTER_CHECK,
                asset=stream.dead_key,
                description="share of the range's messages that were dead-lettered stays under the threshold",
            ),
            dg.AssetCheckSpec(
                ACCOUNTING_CHECK,
                asset=stream.raw_key,
                description="every offset of the range was read, and messages = valid rows + dead letters",
            ),
            dg.AssetCheckSpec(
                LAG_CHECK,
                asset=stream.raw_key,
                description="messages behind the high watermark after this range (warns when large)",
            ),
        ],
        can_subset=False,
    )
    def _land(context: dg.AssetExecutionContext, kafka: KafkaResource, lake: LakeResource):
        settings = get_settings()
        topic = stream.topic(settings)
        rng = parse_range_key(topic, context.partition_key)
        current_id = compact_topic_id(topic_ids(kafka.bootstrap_servers, [topic]).get(topic, ""))
        if rng.topic_id and current_id != rng.topic_id:
            raise RuntimeError(
                f"range {rng.key} was planned on topic id {rng.topic_id}, but {topic} now has id "
                f"{current_id or 'none'}: the topic was recreated and this range's messages are gone"
            )
        started = time.monotonic()
        messages = read_range(kafka.bootstrap_servers, rng, settings.stream_read_timeout_s)
        read_s = time.monotonic() - started
        batch = stream.parse(topic, rng.partition, messages, None)
        raw_path = land.write_partition(lake.uri, stream.raw_dataset, rng.key, batch.valid)
        dead_path = land.write_partition(
            lake.uri, dead_letter_dataset(stream.raw_dataset), rng.key, batch.dead
        )
        _, high = watermarks(kafka.bootstrap_servers, topic)
        lag = max(0, high.get(rng.partition, rng.end) - rng.end)
        context.log_event(
            dg.AssetObservation(
                asset_key=stream.source_key,
                metadata={"partition": rng.partition, "landed_up_to": rng.end, "consumer_lag": lag},
            )
        )
        range_meta = {
            "topic": topic,
            "kafka_partition": rng.partition,
            "first_offset": rng.start,
            "last_offset": rng.end - 1,
            "messages": batch.messages,
            "topic_id": rng.topic_id or current_id,
        }
        yield dg.MaterializeResult(
            asset_key=stream.raw_key,
            metadata={
                **range_meta,
                "dagster/row_count": batch.valid.num_rows,
                "path": dg.MetadataValue.path(raw_path),
                "read_seconds": round(read_s, 3),
                "messages_per_second": round(batch.messages / read_s, 1) if read_s else 0.0,
                "preview": dg.MetadataValue.md(_preview(batch.valid)),
            },
        )
        yield dg.MaterializeResult(
            asset_key=stream.dead_key,
            metadata={
                **range_meta,
                "dagster/row_count": batch.dead.num_rows,
                "path": dg.MetadataValue.path(dead_path),
                "reasons": dg.MetadataValue.json(batch.reasons()),
                "preview": dg.MetadataValue.md(_preview(batch.dead)),
            },
        )
        yield dg.AssetCheckResult(
            asset_key=stream.dead_key,
            check_name=DEAD_LETTER_CHECK,
            passed=batch.dead_rate <= settings.max_dead_letter_rate,
            metadata={
                "dead_letters": batch.dead.num_rows,
                "messages": batch.messages,
                "dead_letter_rate": round(batch.dead_rate, 5),
                "threshold": settings.max_dead_letter_rate,
            },
        )
        offsets = sorted(m.offset for m in messages)
        gaps = rng.size - len(offsets)
        yield dg.AssetCheckResult(
            asset_key=stream.raw_key,
            check_name=ACCOUNTING_CHECK,
            passed=batch.messages == batch.valid.num_rows + batch.dead.num_rows
            and len(set(offsets)) == len(offsets),
            metadata={
                "range_size": rng.size,
                "messages": batch.messages,
                "valid": batch.valid.num_rows,
                "dead_letters": batch.dead.num_rows,
                # Offsets the log does not hold (transaction markers, compaction): expected 0.
                "offset_gaps": gaps,
            },
        )
        yield dg.AssetCheckResult(
            asset_key=stream.raw_key,
            check_name=LAG_CHECK,
            passed=lag <= settings.max_consumer_lag,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"consumer_lag": lag, "threshold": settings.max_consumer_lag},
        )

    return _land


topic_assets = [topic_spec(s) for s in STREAMS]
stream_assets = [build_stream_asset(s) for s in STREAMS]
