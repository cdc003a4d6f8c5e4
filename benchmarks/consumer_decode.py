"""Messages per second one consumer can take off the broker, kafka-python against librdkafka.

Publishes N generated events (``idr generate-events``' generator, ~1% malformed) to a fresh
topic on the running Tansu broker, then reads them all back, interleaving the candidates so
that a busy machine slows each alike:

* kafka-python 3 (pure Python), ``value_deserializer=None`` (raw bytes), ``fetch_max_bytes``
  64 MB, ``max_partition_fetch_bytes`` 8 MB, ``poll(max_records=100000)``: with CRC checks
  (the default) and without;
* kafka-python in ``--processes`` processes, one partition range each;
* confluent-kafka (librdkafka, C), ``consume(num_messages=10000)``.

Then the per-message cost of decoding the value: pydantic's ``Event.model_validate_json``
(the contract the landing applies), ``orjson.loads`` and ``json.loads``.

    .venv/bin/python benchmarks/consumer_decode.py --events 200000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import confluent_kafka as ck
import orjson
from kafka import KafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from idr_pipeline.devtools import services  # noqa: E402
from idr_pipeline.devtools.synthetic.clickstream import generate_event_stream  # noqa: E402
from idr_pipeline.stream.contracts import Event  # noqa: E402
from idr_pipeline.stream.producer import ensure_topics  # noqa: E402


def kafka_python(bootstrap: str, topic: str, partitions: list[int], n: int, crc: bool) -> float:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        check_crcs=crc,
        value_deserializer=None,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    consumer.seek_to_beginning()
    got, started = 0, time.perf_counter()
    while got < n:
        got += sum(len(v) for v in consumer.poll(timeout_ms=500, max_records=100_000).values())
    seconds = time.perf_counter() - started
    consumer.close()
    return seconds


def _worker(args: tuple[str, str, list[int], int]) -> float:
    bootstrap, topic, partitions, n = args
    return kafka_python(bootstrap, topic, partitions, n, crc=True)


def confluent(bootstrap: str, topic: str, partitions: list[int], n: int) -> float:
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False})
    consumer.assign([ck.TopicPartition(topic, p, 0) for p in partitions])
    got, started = 0, time.perf_counter()
    while got < n:
        got += sum(1 for m in consumer.consume(num_messages=10_000, timeout=0.5) if m.error() is None)
    seconds = time.perf_counter() - started
    consumer.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    bootstrap = services.up(only=["kafka"])["kafka"]["bootstrap"]
    topic = f"bench.decode.{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic], partitions=args.partitions)
    days = max(1, args.events // 9_000 + 1)
    messages = generate_event_stream(10_000, days, seed=42, until=datetime(2026, 1, 1, tzinfo=UTC)).events
    messages = messages[: args.events]
    producer = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 262144})
    for m in messages:
        while True:
            try:
                producer.produce(topic, key=m.key.encode() if m.key else None, value=m.value)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush()
    n = len(messages)
    everything = list(range(args.partitions))
    shares = [everything[i :: args.processes] for i in range(args.processes)]
    counts = {p: 0 for p in everything}
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "count"})
    for p in everything:
        counts[p] = consumer.get_watermark_offsets(ck.TopicPartition(topic, p))[1]
    consumer.close()
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        results.setdefault("kafka-python, CRC checks on", []).append(
            kafka_python(bootstrap, topic, everything, n, True)
        )
        results.setdefault("kafka-python, CRC checks off", []).append(
            kafka_python(bootstrap, topic, everything, n, False)
        )
        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            started = time.perf_counter()
            pool.map(_worker, [(bootstrap, topic, s, sum(counts[p] for p in s)) for s in shares])
            results.setdefault(f"kafka-python, {args.processes} processes", []).append(
                time.perf_counter() - started
            )
        results.setdefault("confluent-kafka (librdkafka)", []).append(
            confluent(bootstrap, topic, everything, n)
        )
    size = sum(len(m.value) for m in messages) / n
    print(f"{n:,} messages of {size:.0f} bytes on {args.partitions} partitions (Tansu {bootstrap})")
    print(f"{'consumer':36} {'best msg/s':>12} {'all runs, s':>20}")
    for name, runs in results.items():
        print(f"{name:36} {n / min(runs):12,.0f} {', '.join(f'{r:.2f}' for r in runs):>20}")
    values = [m.value for m in messages]

    def per_message(decode) -> float:
        started = time.perf_counter()
        for v in values:
            try:
                decode(v)
            except ValueError:
                pass
        return (time.perf_counter() - started) / n * 1e6

    print(f"{'decoding one value':36} {'us/message':>12}")
    for name, fn in (
        ("pydantic Event.model_validate_json", Event.model_validate_json),
        ("orjson.loads", orjson.loads),
        ("json.loads", json.loads),
    ):
        print(f"{name:36} {min(per_message(fn) for _ in range(args.rounds)):12.1f}")


if __name__ == "__main__":
    main()
