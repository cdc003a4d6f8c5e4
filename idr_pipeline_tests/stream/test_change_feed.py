"""The identity change feed on the real Tansu broker, from the SQLite and the MariaDB store."""

from __future__ import annotations

import json
import time
import uuid

from kafka import KafkaConsumer, TopicPartition

from idr_pipeline.store import IdentityStore
from idr_pipeline.store.change_log import changes_after, commit_pending, record_changes, unpublished_changes
from idr_pipeline.store.changes import IdentityChange
from idr_pipeline.stream.change_feed import idempotent_producer, publish_pending_changes
from idr_pipeline.stream.producer import ensure_topics


def read_all(bootstrap: str, topic: str, timeout: float = 30.0) -> list[tuple[str, dict]]:
    """Every message now in the topic, as (key, value): read up to the end offsets, no group."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                time.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(partitions or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[tuple[str, dict]] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out += [(r.key.decode(), json.loads(r.value)) for r in records]
        assert all(consumer.position(tp) >= ends[tp] for tp in tps), "topic not read to its end"
        return out
    finally:
        consumer.close()


def _changes(run: str, *ids: str) -> list[IdentityChange]:
    return [IdentityChange(run, i, "created", (), (f"r-{i}-1", f"r-{i}-2")) for i in ids]


def test_committed_changes_are_published_once_keyed_by_identity(
    store: IdentityStore, kafka_bootstrap: str
) -> None:
    topic = f"idr.identity_changes.{uuid.uuid4().hex[:8]}"
    record_changes(store, _changes("run-1", "A", "B", "C"))
    commit_pending(store)
    record_changes(store, _changes("run-2", "D"))  # pending: its publish has not loaded yet

    stats = publish_pending_changes(store, kafka_bootstrap, topic)
    assert stats.published == 3 and stats.by_kind["created"] == 3
    messages = read_all(kafka_bootstrap, topic)
    assert sorted(key for key, _ in messages) == ["A", "B", "C"]
    for key, value in messages:
        assert value["identity_id"] == key and value["run_id"] == "run-1" and value["kind"] == "created"
        assert value["record_ids"] == [f"r-{key}-1", f"r-{key}-2"]
    by_seq = {v["seq"]: v["event_id"] for _, v in messages}
    assert by_seq == {r["seq"]: r["event_id"] for r in changes_after(store, 0, 10)}
    assert unpublished_changes(store, 10) == []

    # A re-run of the same publish: the same changes are recorded again, nothing new is sent.
    record_changes(store, _changes("run-1", "A", "B", "C"))
    commit_pending(store, ["run-1"])
    assert publish_pending_changes(store, kafka_bootstrap, topic).published == 0
    assert len(read_all(kafka_bootstrap, topic)) == 3

    # The next publish commits: only its change goes out.
    commit_pending(store)
    assert publish_pending_changes(store, kafka_bootstrap, topic).published == 1
    after = read_all(kafka_bootstrap, topic)
    assert len(after) == 4 and len({v["event_id"] for _, v in after}) == 4


def test_the_producer_is_idempotent_on_tansu(kafka_bootstrap: str) -> None:
    """A retried batch (same producer id, epoch and sequence number) is written once.

    The retry is made by hand: the producer's sequence number for the partition is set back
    (kafka-python's transaction manager, not public API) so the next send carries the first
    one's sequence, exactly what a resend after a lost acknowledgement carries.
    """
    topic = f"idr.idempotence.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, [topic], partitions=1)
    producer = idempotent_producer(kafka_bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        first = producer.send(topic, partition=0, key=b"A", value=b"{}").get(timeout=10)
        manager = producer._transaction_manager
        assert manager is not None and manager.producer_id_and_epoch.producer_id >= 0
        assert manager.sequence_number(tp) == 1
        manager.set_sequence_number(tp, 0)
        producer.send(topic, partition=0, key=b"A", value=b"{}").get(timeout=10)
    finally:
        producer.close(timeout=5)
    messages = read_all(kafka_bootstrap, topic)
    assert len(messages) == 1 and first.offset == 0
