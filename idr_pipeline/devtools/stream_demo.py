"""The streaming half of ``idr demo``: events through Kafka into identities and audiences.

It drives the same definitions the UI shows, in the order the daemon would: publish the
generated click stream, let the sensors plan offset ranges and land them, stitch the landed
ranges into the identity graph, send the identity changes of the publish and the stitching
to the change feed's topic, then evaluate today's segments. Every run lands in the
Dagster instance, so ``make dev`` afterwards shows the partitions, ticks and lineage.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg

from idr_pipeline.core.lake import Lake
from idr_pipeline.core.spark import get_spark
from idr_pipeline.definitions import load_idr_definitions
from idr_pipeline.defs.platform.resources import build_resources
from idr_pipeline.defs.serving.change_feed import identity_change_feed
from idr_pipeline.defs.stream.streams import STREAMS
from idr_pipeline.devtools import services
from idr_pipeline.devtools.dagster_runs import check_evaluations, run_config
from idr_pipeline.devtools.stream_runs import SENSOR_TAG, ingest_stream, publish_generated_stream
from idr_pipeline.segments.lookalike_lift import LiftReport, catalog_lift
from idr_pipeline.settings import get_settings
from idr_pipeline.store import open_store


@dataclass
class StreamDemo:
    bootstrap: str
    published: int
    messages: int
    valid: int
    dead: int
    partitions: int
    ingest_seconds: float
    stitched_share: float
    merges: int
    segment_sizes: dict[str, int] = field(default_factory=dict)
    universe: int = 0
    checks: dict[str, bool] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Each lookalike segment's lift over a random expansion (``lift_horizon_days`` of joins).
    lookalike_lift: list[LiftReport] = field(default_factory=list)
    seconds: float = 0.0
    #: Whether the broker still runs after the demo: it was running before, or it was kept.
    broker_running: bool = True
    #: Identity changes sent to the change feed's topic, by kind.
    identity_changes: dict[str, int] = field(default_factory=dict)


def _forget_stream_partitions(instance: dg.DagsterInstance) -> None:
    """A fresh demo empties the topics, so the offset ranges of an earlier demo must go too:
    their partitions, their materializations, and their runs (a range's run key is its
    offsets, so an old run would make the same range of the new topic look done)."""

    for stream in STREAMS:
        for key in instance.get_dynamic_partitions(stream.partitions_def.name):
            instance.delete_dynamic_partition(stream.partitions_def.name, key)
        for run in instance.get_runs(filters=dg.RunsFilter(tags={SENSOR_TAG: stream.sensor_name})):
            instance.delete_run(run.run_id)
    keys = [k for s in STREAMS for k in (s.raw_key, s.dead_key)]
    instance.wipe_assets([*keys, dg.AssetKey("stitched_identities")])


def _checks(result: dg.ExecuteInProcessResult) -> tuple[dict[str, bool], list[str]]:
    """Check name -> passed; a failed check of WARN severity is listed as a warning instead."""

    evaluations = check_evaluations(result)
    warnings = [
        name
        for name, data in evaluations.items()
        if not data.passed and data.severity == dg.AssetCheckSeverity.WARN
    ]
    passed = {name: data.passed or name in warnings for name, data in evaluations.items()}
    return passed, warnings


def _metadata_value(result: dg.ExecuteInProcessResult, asset: str, key: str, default: float = 0.0) -> float:
    for mat in result.asset_materializations_for_node(asset):
        entry = mat.metadata.get(key)
        if entry is not None:
            return float(entry.value)
    return default


def run_stream_demo(
    instance: dg.DagsterInstance, people: int, seed: int, days: int, fresh: bool, keep_broker: bool = False
) -> StreamDemo:
    """The stream half of the demo. A broker this call starts is stopped when it ends, unless
    ``keep_broker``; one that was running before is left running."""

    started = time.perf_counter()
    if fresh:
        services.down(only=["kafka"])  # Tansu keeps topics in memory: a restart empties them
        _forget_stream_partitions(instance)
    with services.started(["kafka"], keep=keep_broker) as broker:
        demo = _stream_through(instance, broker["endpoints"]["kafka_bootstrap"], people, seed, days)
    demo.broker_running = "kafka" not in broker["stopped_at_exit"]
    demo.seconds = time.perf_counter() - started
    return demo


def _stream_through(
    instance: dg.DagsterInstance, bootstrap: str, people: int, seed: int, days: int
) -> StreamDemo:
    os.environ["IDR_KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    get_settings.cache_clear()
    published = publish_generated_stream(people, seed=seed, days=days, bootstrap=bootstrap)
    ingest = ingest_stream(instance)
    if ingest.failed:
        raise RuntimeError(f"stream ranges failed to land: {ingest.failed}")
    sent = sum(p.messages for p in published.values())
    if ingest.messages != sent:
        raise RuntimeError(f"published {sent:,} messages but landed {ingest.messages:,}")
    defs = load_idr_definitions()
    log = run_config("WARNING")
    stitch = defs.resolve_job_def("stitch_job").execute_in_process(instance=instance, run_config=log)
    # What the daemon's automation would run after the publish and the stitching.
    feed = dg.materialize(
        [identity_change_feed], resources=build_resources(), instance=instance, run_config=log
    )
    feed_metadata = feed.asset_materializations_for_node("identity_change_feed")[0].metadata
    changes = {
        key.removeprefix("published_"): int(entry.value)
        for key, entry in feed_metadata.items()
        if key.startswith("published_")
    }
    today = datetime.now(UTC).date().isoformat()
    segments = defs.resolve_job_def("segments_job").execute_in_process(
        instance=instance, partition_key=today, run_config=log
    )
    stitch_checks, stitch_warnings = _checks(stitch)
    segment_checks, segment_warnings = _checks(segments)
    settings = get_settings()
    spark = get_spark(settings)
    # Half the streamed days to expand from, the other half for the seed to grow in.
    lifts = catalog_lift(
        spark,
        Lake(settings.lake_uri, spark),
        datetime.now(UTC),
        lift_horizon_days(days),
        vectorizer=settings.behavior_vectorizer,
    )
    with open_store(settings.store_url) as store:
        rows = store.select_rows("segments", order_by=["segment_id"])
        universe = store.count_rows("identities", {"status": "active"})
    return StreamDemo(
        bootstrap=bootstrap,
        published=sent,
        messages=ingest.messages,
        valid=ingest.valid,
        dead=ingest.dead,
        partitions=ingest.partitions,
        ingest_seconds=ingest.seconds,
        stitched_share=_metadata_value(stitch, "stitched_identities", "stitched_share"),
        merges=int(_metadata_value(stitch, "stitched_identities", "merges")),
        segment_sizes={r["segment_id"]: int(r["member_count"]) for r in rows},
        universe=universe,
        checks={**stitch_checks, **segment_checks},
        warnings=stitch_warnings + segment_warnings,
        identity_changes=changes,
        lookalike_lift=lifts,
    )


def lift_horizon_days(event_days: int) -> int:
    """The days of joins a lookalike's lift is measured over: the later half of the stream."""
    return max(1, event_days // 2)


def format_stream_demo(s: StreamDemo) -> str:
    lines = [
        f"kafka broker               {s.bootstrap}"
        + (
            "  (still running: `.venv/bin/idr services down` stops it)"
            if s.broker_running
            else "  (stopped: the demo started it)"
        ),
        f"messages published         {s.published:>10,}",
        f"messages landed            {s.messages:>10,}  in {s.partitions} offset-range partitions, "
        f"{s.messages / max(s.ingest_seconds, 1e-9):,.0f}/s",
        f"  valid                    {s.valid:>10,}",
        f"  dead letters             {s.dead:>10,}  ({s.dead / max(s.messages, 1):.2%})",
        f"stitched share of events   {s.stitched_share:>10.2%}",
        f"identities merged by stream{s.merges:>10,}",
        f"identity changes sent      {sum(s.identity_changes.values()):>10,}  to "
        f"{get_settings().identity_changes_topic}: "
        + ", ".join(f"{kind} {n:,}" for kind, n in sorted(s.identity_changes.items()) if n),
        "segment sizes:",
        *[
            f"  {name:<28} {size:>8,}  ({size / max(s.universe, 1):.2%})"
            for name, size in sorted(s.segment_sizes.items())
        ],
        *(["lookalike lift over a random expansion:"] if s.lookalike_lift else []),
        *[f"  {report.summary()}" for report in s.lookalike_lift],
        *[f"  warning: check {name} did not pass" for name in s.warnings],
    ]
    return "\n".join(lines)
