"""Drain both topics into the raw zone in-process, the way the demo and the benchmark do.

This is what the sensor daemon would do, done synchronously: evaluate each sensor, add the
range partitions it asks for, record its lag observation, and execute one run per requested
range through the same jobs the UI shows, so every run and check result lands in the
instance. Ranges that exist as partitions but never materialized (a crashed run) are run
again first, which is how "a crashed run loses nothing" holds without the daemon.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg

from idr_pipeline.definitions import load_idr_definitions
from idr_pipeline.defs.stream.streams import STREAMS, Stream
from idr_pipeline.devtools.dagster_runs import run_config
from idr_pipeline.devtools.synthetic.clickstream import generate_event_stream
from idr_pipeline.settings import get_settings
from idr_pipeline.stream.producer import PublishStats, publish

RUN_KEY_TAG = "dagster/run_key"
SENSOR_TAG = "dagster/sensor_name"


@dataclass
class StreamIngestStats:
    """Counts over one call; ``messages == valid + dead`` unless a run failed (see ``failed``)."""

    messages: int = 0
    valid: int = 0
    dead: int = 0
    partitions: int = 0
    seconds: float = 0.0
    by_stream: dict[str, dict[str, int]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def _unlanded(instance: dg.DagsterInstance, stream: Stream) -> list[str]:
    keys = instance.get_dynamic_partitions(stream.partitions_def.name)
    done = instance.get_materialized_partitions(stream.raw_key)
    return [k for k in keys if k not in done]


def _already_requested(instance: dg.DagsterInstance, run_key: str) -> bool:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
    return bool(runs)


def _execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    stream: Stream,
    key: str,
    tags: dict[str, str],
    log_level: str,
    stats: StreamIngestStats,
) -> None:
    job = defs.resolve_job_def(stream.job_name)
    result = job.execute_in_process(
        partition_key=key,
        instance=instance,
        tags=tags,
        raise_on_error=False,
        run_config=run_config(log_level),
    )
    counts = stats.by_stream.setdefault(stream.name, {"messages": 0, "valid": 0, "dead": 0, "partitions": 0})
    if not result.success:
        stats.failed.append(f"{stream.name}:{key}")
        return
    for mat in result.get_asset_materialization_events():
        m = mat.materialization
        rows = int(m.metadata["dagster/row_count"].value)
        if m.asset_key == stream.raw_key:
            counts["messages"] += int(m.metadata["messages"].value)
            counts["valid"] += rows
        elif m.asset_key == stream.dead_key:
            counts["dead"] += rows
    counts["partitions"] += 1


def ingest_stream(
    instance: dg.DagsterInstance,
    definitions: dg.Definitions | None = None,
    max_ticks: int = 100,
    log_level: str = "WARNING",
) -> StreamIngestStats:
    """Evaluate both sensors until they plan nothing new, running every requested range.

    The cursor between calls is rebuilt from the range partitions already in the instance
    (the sensors do that when they have no cursor), so repeated calls continue where the last
    one stopped. ``instance`` must be persistent (``DagsterInstance.get()`` or
    ``instance_for_test()``), as sensor contexts require.
    """
    defs = definitions or load_idr_definitions()
    stats = StreamIngestStats()
    started = time.monotonic()
    for stream in STREAMS:
        sensor = defs.resolve_sensor_def(stream.sensor_name)
        for key in _unlanded(instance, stream):  # crashed or never-run ranges first
            _execute(defs, instance, stream, key, {SENSOR_TAG: stream.sensor_name}, log_level, stats)
        cursor: str | None = None
        for _ in range(max_ticks):
            context = dg.build_sensor_context(
                instance=instance,
                cursor=cursor,
                definitions=defs,
                sensor_name=stream.sensor_name,
                resources={"kafka": defs.resources["kafka"], "store": defs.resources["store"]},
            )
            result = sensor(context)
            assert isinstance(result, dg.SensorResult)
            for request in result.dynamic_partitions_requests or []:
                instance.add_dynamic_partitions(
                    request.partitions_def_name, list(request.partition_keys or [])
                )
            for event in result.asset_events:
                instance.report_runless_asset_event(event)
            cursor = result.cursor
            requests = result.run_requests or []
            if not requests:
                break
            for request in requests:
                run_key = request.run_key or ""
                if run_key and _already_requested(instance, run_key):
                    continue
                tags = {**(request.tags or {}), RUN_KEY_TAG: run_key, SENSOR_TAG: stream.sensor_name}
                _execute(defs, instance, stream, str(request.partition_key), tags, log_level, stats)
    stats.seconds = time.monotonic() - started
    for counts in stats.by_stream.values():
        stats.messages += counts["messages"]
        stats.valid += counts["valid"]
        stats.dead += counts["dead"]
        stats.partitions += counts["partitions"]
    return stats


def publish_generated_stream(
    people: int,
    seed: int = 42,
    days: int = 7,
    until: datetime | None = None,
    rate: float = 0.0,
    bootstrap: str | None = None,
) -> dict[str, PublishStats]:
    """Publish the ``idr generate-events`` stream of the people ``idr generate`` made with this seed.

    The demo's producer side: call it after generating the landing files with the same
    ``people`` and ``seed``, then :func:`ingest_stream` to land what it published.
    """

    servers = bootstrap or get_settings().kafka_bootstrap_servers
    settings = get_settings()
    stream = generate_event_stream(people=people, days=days, seed=seed, until=until)
    return {
        settings.events_topic: publish(servers, settings.events_topic, stream.events, rate=rate),
        settings.profiles_topic: publish(servers, settings.profiles_topic, stream.profiles, rate=rate),
    }
