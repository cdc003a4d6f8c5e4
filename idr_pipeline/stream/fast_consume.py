"""Continuous readers of topic partitions from given offsets, for the stream service.

Two clients behind one interface (``open_reader``): kafka-python, the project's client, with
CRC checks off (in pure Python they cost most of its decoding time, and librdkafka does not
check them by default either), and librdkafka through confluent-kafka, which decodes in C on
its own threads. At 10k events/s the service keeps up equally with both; past that librdkafka
leaves a little more time to the store (docs/performance.md, "Stream freshness"). Either way
there is no consumer group: partitions are assigned at the offsets the service saved, nothing
is committed to the broker, and an offset the log does not hold is an error, never a silent
jump.

Topic ids come from kafka-python's admin client (Metadata v10+), which reports them on Tansu.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import confluent_kafka as ck
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import OffsetOutOfRangeError

from idr_pipeline.stream.consume import RawMessage

#: librdkafka reports an offset outside the log with this error code when reset is "error".
_OFFSET_RESET_ERRORS = {ck.KafkaError._AUTO_OFFSET_RESET, ck.KafkaError.OFFSET_OUT_OF_RANGE}


class ReadError(RuntimeError):
    """The broker refused a read: an offset out of range, an unknown partition, a broken connection."""

    def __init__(self, message: str, out_of_range: bool = False) -> None:
        super().__init__(message)
        self.out_of_range = out_of_range


def topic_ids(bootstrap: str, topics: Iterable[str]) -> dict[str, str]:
    """Kafka's UUID of each existing topic (absent topics are left out)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        wanted = list(topics)
        existing = set(admin.list_topics())
        present = [t for t in wanted if t in existing]
        if not present:
            return {}
        return {d["name"]: str(d["topic_id"]) for d in admin.describe_topics(present) if d.get("topic_id")}
    finally:
        admin.close()


class PartitionReader:
    """Reads assigned partitions forward from the offsets it was given, on librdkafka."""

    def __init__(self, bootstrap: str, client_id: str = "idr-stream") -> None:
        self._consumer = ck.Consumer(
            {
                "bootstrap.servers": bootstrap,
                # Required by librdkafka even without subscribing; no group is joined or committed.
                "group.id": client_id,
                "client.id": client_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "error",
                "enable.partition.eof": False,
                "fetch.wait.max.ms": 100,
                "fetch.max.bytes": 64 * 1024 * 1024,
                "max.partition.fetch.bytes": 8 * 1024 * 1024,
                "topic.metadata.refresh.interval.ms": 10_000,
            }
        )
        self._assigned: dict[tuple[str, int], int] = {}

    def assign(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Read ``(topic, partition)`` from the given next offsets (replaces any earlier assignment)."""
        self._assigned = dict(positions)
        self._consumer.assign([ck.TopicPartition(t, p, o) for (t, p), o in sorted(positions.items())])

    def poll(self, max_messages: int, timeout_s: float) -> list[tuple[str, int, RawMessage]]:
        """Up to ``max_messages`` messages in offset order per partition, waiting at most ``timeout_s``."""
        out: list[tuple[str, int, RawMessage]] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < max_messages:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            batch = self._consumer.consume(num_messages=min(10_000, max_messages - len(out)), timeout=left)
            for msg in batch:
                error = msg.error()
                if error is not None:
                    if error.code() in _OFFSET_RESET_ERRORS:
                        raise ReadError(
                            f"{msg.topic()}[{msg.partition()}]: offset out of range ({error.str()})",
                            out_of_range=True,
                        )
                    if error.fatal() or not error.retriable():
                        raise ReadError(f"{msg.topic()}[{msg.partition()}]: {error.str()}")
                    continue
                kind, ts = msg.timestamp()
                ts = ts if kind != ck.TIMESTAMP_NOT_AVAILABLE else -1
                out.append(
                    (msg.topic(), msg.partition(), RawMessage(msg.offset(), msg.key(), msg.value(), ts))
                )
        return out

    def close(self) -> None:
        self._consumer.close()


class KafkaPythonReader:
    """The same reader on kafka-python (``IDR_STREAM_READER=kafka-python``, the default).

    CRC checks off: they are what makes kafka-python slow (benchmarks/consumer_decode.py), and
    librdkafka does not check them by default either; TCP's checksums still guard the wire.
    """

    def __init__(self, bootstrap: str, client_id: str = "idr-stream") -> None:
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",
            check_crcs=False,
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )

    def assign(self, positions: Mapping[tuple[str, int], int]) -> None:
        tps = {(t, p): TopicPartition(t, p) for (t, p) in positions}
        self._consumer.assign(list(tps.values()))
        for key, offset in positions.items():
            self._consumer.seek(tps[key], offset)

    def poll(self, max_messages: int, timeout_s: float) -> list[tuple[str, int, RawMessage]]:
        out: list[tuple[str, int, RawMessage]] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < max_messages:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch = self._consumer.poll(timeout_ms=int(left * 1000), max_records=max_messages - len(out))
            except OffsetOutOfRangeError as exc:
                raise ReadError(f"offset out of range ({exc})", out_of_range=True) from exc
            for tp, records in batch.items():
                out += [
                    (tp.topic, tp.partition, RawMessage(r.offset, r.key, r.value, r.timestamp))
                    for r in records
                ]
        return out

    def close(self) -> None:
        self._consumer.close()


def open_reader(
    kind: str, bootstrap: str, client_id: str = "idr-stream"
) -> PartitionReader | KafkaPythonReader:
    """``kafka-python`` (the default) or ``confluent``."""
    if kind == "kafka-python":
        return KafkaPythonReader(bootstrap, client_id)
    if kind != "confluent":
        raise ValueError(f"unknown stream reader {kind!r}: confluent or kafka-python")
    return PartitionReader(bootstrap, client_id)
