"""Read exactly one offset range, or fail.

No consumer group: the sensor cursor and the partition keys own the offsets, so nothing is
committed to the broker (and group joins, slow on Tansu, are avoided). A range that
cannot be read completely within the timeout raises, so a short read fails the run instead of
landing fewer rows than the range names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition

from idr_pipeline.stream.offsets import OffsetRange


@dataclass(frozen=True, slots=True)
class RawMessage:
    """What the parsers need from a Kafka record; ``timestamp_ms`` is -1 when the broker has none."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


class RangeReadError(RuntimeError):
    """The broker did not deliver every offset of a range."""


def _consumer(bootstrap: str) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )


def watermarks(bootstrap: str, topic: str, timeout_s: float = 10.0) -> tuple[dict[int, int], dict[int, int]]:
    """(low, high) watermark per partition; an unknown topic has no partitions yet."""
    consumer = _consumer(bootstrap)
    try:
        partitions = _partitions(consumer, topic, timeout_s)
        if not partitions:
            return {}, {}
        tps = [TopicPartition(topic, p) for p in partitions]
        low = consumer.beginning_offsets(tps)
        high = _confirmed_high(consumer, low, consumer.end_offsets(tps), timeout_s)
        return {tp.partition: o for tp, o in low.items()}, {tp.partition: o for tp, o in high.items()}
    finally:
        consumer.close()


def _confirmed_high(
    consumer: KafkaConsumer,
    low: dict[TopicPartition, int],
    listed: dict[TopicPartition, int],
    timeout_s: float,
) -> dict[TopicPartition, int]:
    """The high watermarks as a fetch reports them.

    Tansu 0.6 answers ListOffsets(latest) with the *base* offset of the last record batch
    plus one, so a producer batch of 500 messages shows up as one message: planning from that
    number would leave the rest of the batch unread until the next batch arrives. A fetch from
    the listed offset minus one returns that whole last batch and the fetch response's own high
    watermark, which is right on Tansu and on Kafka alike (where it equals the listed value).
    """
    high = dict(listed)
    probe = [tp for tp in listed if listed[tp] > low[tp]]
    if not probe:
        return high
    consumer.assign(probe)
    for tp in probe:
        consumer.seek(tp, listed[tp] - 1)
    pending = set(probe)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        records = consumer.poll(timeout_ms=200, max_records=100_000)
        for tp, msgs in records.items():
            if msgs:
                high[tp] = max(high[tp], msgs[-1].offset + 1)
        for tp in list(pending):
            hw = consumer.highwater(tp)
            if hw is not None:
                high[tp] = max(high[tp], hw)
                pending.discard(tp)
    if pending:
        raise RangeReadError(
            f"no fetch answer for {sorted(tp.partition for tp in pending)} within {timeout_s:.0f} s"
        )
    return high


def _partitions(consumer: KafkaConsumer, topic: str, timeout_s: float) -> list[int]:
    # partitions_for_topic answers None until the first metadata response arrives.
    deadline = time.monotonic() + timeout_s
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is not None:
            return sorted(partitions)
        if topic not in consumer.topics() or time.monotonic() > deadline:
            return []
        time.sleep(0.05)


def read_range(bootstrap: str, rng: OffsetRange, timeout_s: float = 60.0) -> list[RawMessage]:
    """Every message with ``rng.start <= offset < rng.end``, in offset order.

    Progress is measured by the consumer position rather than by counting messages, so offsets
    the log does not hold (transaction markers, compaction) do not make the read wait forever.
    """
    consumer = _consumer(bootstrap)
    tp = TopicPartition(rng.topic, rng.partition)
    out: list[RawMessage] = []
    try:
        consumer.assign([tp])
        consumer.seek(tp, rng.start)
        deadline = time.monotonic() + timeout_s
        position = rng.start
        while position < rng.end:
            if time.monotonic() > deadline:
                raise RangeReadError(
                    f"{rng.topic}[{rng.partition}] {rng.key}: read {len(out)} messages up to offset "
                    f"{position} of [{rng.start}, {rng.end}) within {timeout_s:.0f} s"
                )
            batch = consumer.poll(timeout_ms=500, max_records=10_000)
            for record in batch.get(tp, ()):
                if record.offset >= rng.end:
                    break
                if record.offset >= rng.start:
                    out.append(RawMessage(record.offset, record.key, record.value, record.timestamp))
            position = consumer.position(tp)
    finally:
        consumer.close()
    return out
