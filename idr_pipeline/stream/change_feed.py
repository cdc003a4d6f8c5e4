"""Publishing the identity change feed: committed ``identity_changes`` rows to a Kafka topic.

The store's table is the outbox: a change is sent only after it was committed there, and is
stamped ``published_at`` only after the broker acknowledged it. A publisher that dies between
the two sends the change again next time, under the same ``event_id``, which consumers use to
drop what they have seen; nothing is lost, and nothing a consumer could not tell apart is
repeated. Within one producer session, retries after a lost acknowledgement are de-duplicated
by the broker when it supports idempotent producers (``enable_idempotence``).

Each message is keyed by the identity id, so one identity's changes stay in order on one
partition; the value is the change as JSON (``change_message``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.change_log import mark_published, unpublished_changes
from idr_pipeline.store.changes import count_by_kind
from idr_pipeline.stream.producer import ensure_topics

#: Changes read from the store and sent per round (each round waits for the broker's acks).
BATCH = 1000


def change_message(row: Mapping[str, Any]) -> dict[str, Any]:
    """The wire form of one ``identity_changes`` row."""
    recorded = row.get("recorded_at")
    return {
        "event_id": row["event_id"],
        "seq": row["seq"],
        "run_id": row["run_id"],
        "kind": row["kind"],
        "identity_id": row["identity_id"],
        "related_identity_ids": list(row.get("related_identity_ids") or []),
        "record_ids": list(row.get("record_ids") or []),
        "details": dict(row.get("details") or {}),
        "recorded_at": recorded.isoformat() if isinstance(recorded, datetime) else recorded,
    }


def idempotent_producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    """An idempotent producer: acks from all in-sync replicas, and the broker drops a batch it
    already wrote when a retry resends it (the producer id and sequence numbers of
    ``enable_idempotence``). A broker without idempotent producers refuses the producer id
    request, and this raises rather than silently producing without it."""
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap.split(","),
        "acks": "all",
        "enable_idempotence": True,
        "retries": 5,
        "linger_ms": 20,
        "max_block_ms": 10_000,
    }
    settings.update(overrides)
    return KafkaProducer(**settings)


@dataclass
class FeedStats:
    topic: str
    published: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def publish_pending_changes(
    store: IdentityStore,
    bootstrap: str,
    topic: str,
    timeout: float = 30.0,
) -> FeedStats:
    """Send every committed change not yet acknowledged, in ``seq`` order, and stamp them.

    Raises (after stamping the rounds already acknowledged) when the broker cannot be reached,
    refuses a message or does not acknowledge it within ``timeout`` seconds (each wait is bounded
    by it: connecting, creating the topic, sending): the unstamped rest is sent by the next call.
    """
    wait_ms = int(timeout * 1000)
    ensure_topics(bootstrap, [topic], bootstrap_timeout_ms=wait_ms, request_timeout_ms=wait_ms)
    stats = FeedStats(topic=topic, by_kind=count_by_kind([]))
    producer = idempotent_producer(bootstrap, bootstrap_timeout_ms=wait_ms, max_block_ms=wait_ms)
    try:
        while rows := unpublished_changes(store, BATCH):
            futures = [
                producer.send(
                    topic,
                    key=row["identity_id"].encode("utf-8"),
                    value=json.dumps(change_message(row), separators=(",", ":")).encode("utf-8"),
                    headers=[("event_id", row["event_id"].encode("ascii"))],
                )
                for row in rows
            ]
            producer.flush(timeout=timeout)
            acknowledged = []
            for row, future in zip(rows, futures, strict=True):
                try:
                    future.get(timeout=timeout)
                except KafkaError as exc:
                    mark_published(store, acknowledged)
                    raise RuntimeError(
                        f"the broker did not take change {row['event_id']} for {topic}: {exc!r}"
                    ) from exc
                acknowledged.append(row["event_id"])
                stats.by_kind[row["kind"]] += 1
            mark_published(store, acknowledged)
            stats.published += len(acknowledged)
    finally:
        producer.close(timeout=5)
    return stats
