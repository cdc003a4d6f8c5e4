"""Events per second through Kafka: publish, land (sensor + range runs -> Parquet), end to end.

Publishes N generated events (the same generator as ``idr generate-events``, ~1% malformed) to
fresh topics on the running broker, then drains them with ``ingest_stream``, the function the
demo calls: sensor ticks, one Dagster run per offset range, raw and dead-letter Parquet, checks.
Everything goes to a temporary lake and a temporary Dagster instance.

    .venv/bin/python benchmarks/stream_throughput.py --events 200000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import record


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--range-size", type=int, default=50_000, help="max messages per offset range (run)")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument(
        "--bootstrap", default=None, help="default: IDR_KAFKA_BOOTSTRAP_SERVERS or the dev services"
    )
    parser.add_argument("--record", action="store_true", help="write the figures into docs/performance.md")
    args = parser.parse_args()
    if args.record:
        record.check(["stream-throughput"])

    suffix = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="idr-stream-bench-"))
    os.environ["IDR_EVENTS_TOPIC"] = f"bench.events.{suffix}"
    os.environ["IDR_PROFILES_TOPIC"] = f"bench.profiles.{suffix}"
    os.environ["IDR_LAKE_URI"] = (work / "lake").as_uri()
    os.environ["IDR_STREAM_MAX_RANGE_MESSAGES"] = str(args.range_size)
    os.environ["IDR_TOPIC_PARTITIONS"] = str(args.partitions)
    if args.bootstrap is None:
        from idr_pipeline.devtools.services import service_endpoints

        args.bootstrap = service_endpoints(start=True)["kafka_bootstrap"]
    os.environ["IDR_KAFKA_BOOTSTRAP_SERVERS"] = args.bootstrap
    from idr_pipeline.settings import get_settings

    get_settings.cache_clear()  # read again now that the environment names the broker and lake
    get_settings.cache_clear()

    import dagster as dg

    from idr_pipeline.devtools.stream_runs import ingest_stream
    from idr_pipeline.devtools.synthetic.clickstream import generate_event_stream
    from idr_pipeline.stream.producer import publish

    t = time.perf_counter()
    days = max(1, -(-args.events // 9_000))  # ~9.4k events per day from 10k people
    stream = generate_event_stream(args.people, days, seed=42, until=datetime(2026, 1, 1, tzinfo=UTC))
    while len(stream.events) < args.events:
        days *= 2
        stream = generate_event_stream(args.people, days, seed=42, until=datetime(2026, 1, 1, tzinfo=UTC))
    events = stream.events[: args.events]
    generate_s = time.perf_counter() - t
    size_mb = sum(len(m.value) for m in events) / 1e6

    start = time.perf_counter()
    pub = publish(args.bootstrap, os.environ["IDR_EVENTS_TOPIC"], events)
    with dg.instance_for_test() as instance:
        t = time.perf_counter()
        stats = ingest_stream(instance)
        land_s = time.perf_counter() - t
    total_s = time.perf_counter() - start

    assert not stats.failed, stats.failed
    assert stats.messages == len(events) == stats.valid + stats.dead, stats
    lines = [
        f"broker            {args.bootstrap} (Tansu), {args.partitions} partitions, ranges <= {args.range_size:,}",
        f"events            {len(events):,} ({size_mb:.1f} MB JSON; generated in {generate_s:.1f} s, not timed)",
        f"publish           {pub.seconds:6.1f} s  {pub.per_second:10,.0f} events/s",
        f"land              {land_s:6.1f} s  {stats.messages / land_s:10,.0f} events/s  "
        f"({stats.partitions} range runs; {stats.valid:,} valid, {stats.dead:,} dead letters)",
        f"end to end        {total_s:6.1f} s  {len(events) / total_s:10,.0f} events/s  (publish start -> last range landed)",
        f"machine           {os.cpu_count()} cores",
    ]
    print("\n".join(lines))
    if args.record:
        record.record("stream-throughput", record.fenced(lines))


if __name__ == "__main__":
    main()
