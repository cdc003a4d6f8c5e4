"""``idr stream reset``: record the offsets a stopped stream can no longer read, and go on.

The service stops rather than skip offsets (:mod:`idr_pipeline.stream.guard`). Resetting is the
deliberate decision to accept the loss: each unreadable range goes to ``stream_losses`` with
its reason, and the position moves to the topic's current log start (under the new topic id
when the topic was recreated), all in one transaction. Nothing is reset while the position
still fits the topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from idr_pipeline.store import open_store
from idr_pipeline.store.stream_state import control_row, single_transaction
from idr_pipeline.store.tables import STREAM_CONTROL, STREAM_LOSSES, STREAM_OFFSETS
from idr_pipeline.stream.consume import watermarks
from idr_pipeline.stream.fast_consume import topic_ids
from idr_pipeline.stream.guard import check_positions


@dataclass
class Reset:
    topic: str
    losses: list[dict]
    positions: dict[int, int]


def reset_topic(bootstrap: str, store_url: str, consumer: str, topic: str) -> Reset:
    """Record the lost ranges of ``topic`` and restart it at its log start; a no-op when it fits."""
    with open_store(store_url) as store:
        store.ensure_schema()
        saved = store.select_rows(STREAM_OFFSETS.name, {"consumer": consumer, "topic": topic})
        ids = {r["topic_id"] for r in saved if r["topic_id"]}
        current = topic_ids(bootstrap, [topic]).get(topic, "")
        low, high = watermarks(bootstrap, topic)
        found = check_positions(
            topic,
            next(iter(ids)) if len(ids) == 1 else "",
            current,
            {int(r["kafka_partition"]): int(r["next_offset"]) for r in saved},
            low,
            high,
        )
        if not found:
            return Reset(topic, [], {})
        recreated = any(m.problem == "topic_recreated" for m in found)
        losses = []
        for m in found:
            first, last = m.lost_range()
            losses.append(
                {
                    "consumer": consumer,
                    "topic": topic,
                    "kafka_partition": m.partition,
                    "first_offset": first,
                    "topic_id": m.saved_topic_id,
                    "last_offset": last,
                    "reason": m.describe(),
                }
            )
        moved = {m.partition for m in found}
        partitions = sorted(high) if recreated else sorted(moved)
        positions = {p: low.get(p, 0) for p in partitions}
        for p, start in positions.items():
            if recreated and start > 0:
                losses.append(
                    {
                        "consumer": consumer,
                        "topic": topic,
                        "kafka_partition": p,
                        "first_offset": 0,
                        "topic_id": current,
                        "last_offset": start - 1,
                        "reason": "deleted before first read",
                    }
                )
        with single_transaction(store):
            if recreated:
                store.delete_rows(STREAM_OFFSETS.name, {"consumer": consumer, "topic": topic})
            store.upsert(
                STREAM_OFFSETS.name,
                (
                    {
                        "consumer": consumer,
                        "topic": topic,
                        "kafka_partition": p,
                        "topic_id": current,
                        "next_offset": start,
                    }
                    for p, start in positions.items()
                ),
            )
            store.upsert(STREAM_LOSSES.name, losses)
            row = control_row(store, consumer)
            if row and row.get("error"):
                store.upsert(STREAM_CONTROL.name, [{**row, "error": None}])
        return Reset(topic, losses, positions)
