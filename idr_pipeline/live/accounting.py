"""Is every offset the stream service passed accounted for? Read from the store's ledger.

Per topic partition and topic id, the ranges (``stream_ranges``) and the recorded losses
(``stream_losses``) must tile the offsets from the first one the service knew up to its
position (``stream_offsets``) with no hole and no overlap, and each range's messages must be
its valid rows plus its dead letters. Offsets inside a range that the log does not hold
(transaction markers, compaction) are counted as the range's gaps, not as holes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.tables import STREAM_LOSSES, STREAM_OFFSETS, STREAM_RANGES


@dataclass
class Accounting:
    topic: str
    ranges: int = 0
    messages: int = 0
    valid: int = 0
    dead: int = 0
    gaps: int = 0
    lost_offsets: int = 0
    lost_ranges: list[dict[str, Any]] = field(default_factory=list)
    #: Problems: holes between ranges, overlaps, ranges whose counts do not add up.
    problems: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.problems

    @property
    def dead_rate(self) -> float:
        return self.dead / self.messages if self.messages else 0.0

    def metadata(self) -> dict[str, Any]:
        return {
            "ranges": self.ranges,
            "messages": self.messages,
            "valid": self.valid,
            "dead_letters": self.dead,
            "offset_gaps": self.gaps,
            "offsets_lost": self.lost_offsets,
            "lost_ranges": self.lost_ranges,
            "problems": self.problems[:20],
        }


def account(store: IdentityStore, consumer: str, topic: str) -> Accounting:
    out = Accounting(topic)
    where = {"consumer": consumer, "topic": topic}
    spans: dict[tuple[int, str], list[tuple[int, int, str]]] = defaultdict(list)
    for r in store.select_rows(STREAM_RANGES.name, where):
        first, last = int(r["first_offset"]), int(r["last_offset"])
        messages, valid, dead = int(r["messages"]), int(r["valid"]), int(r["dead"])
        out.ranges += 1
        out.messages += messages
        out.valid += valid
        out.dead += dead
        gaps = int((r["counts"] or {}).get("gaps", 0))
        out.gaps += gaps
        if messages != valid + dead or messages + gaps != last - first + 1:
            out.problems.append(
                f"range {r['range_key']}: {messages} messages, {valid} valid, {dead} dead, {gaps} gaps"
            )
        counts = r["counts"] or {}
        bucketed = sum(
            int(counts.get(k, 0))
            for k in (
                "aggregated",
                "held_unresolved",
                "unresolved",
                "other_types",
                "unknown_identity",
                "held_future",
                "outside_window",
                "duplicates",
            )
        )
        if "aggregated" in counts and bucketed != valid:
            out.problems.append(f"range {r['range_key']}: {valid} valid events but {bucketed} accounted")
        spans[(int(r["kafka_partition"]), _id(r["topic_id"]))].append((first, last, "range"))
    for r in store.select_rows(STREAM_LOSSES.name, where):
        first = int(r["first_offset"])
        last = r["last_offset"]
        out.lost_ranges.append(
            {"partition": int(r["kafka_partition"]), "first": first, "last": last, "reason": r["reason"]}
        )
        if last is not None:
            out.lost_offsets += int(last) - first + 1
            spans[(int(r["kafka_partition"]), _id(r["topic_id"]))].append((first, int(last), "lost"))
    positions = {
        (int(r["kafka_partition"]), _id(r["topic_id"])): int(r["next_offset"])
        for r in store.select_rows(STREAM_OFFSETS.name, where)
    }
    for key in sorted(set(spans) | set(positions)):
        partition, topic_id = key
        expected = 0
        for first, last, kind in sorted(spans.get(key, [])):
            if first > expected:
                out.problems.append(
                    f"{topic}[{partition}] id {topic_id[:8]}: offsets {expected}..{first - 1} unaccounted"
                )
            elif first < expected:
                out.problems.append(
                    f"{topic}[{partition}] id {topic_id[:8]}: {kind} from {first} overlaps up to {expected - 1}"
                )
            expected = max(expected, last + 1)
        if key in positions and positions[key] != expected:
            out.problems.append(
                f"{topic}[{partition}] id {topic_id[:8]}: position {positions[key]} but ledger reaches {expected}"
            )
    return out


def _id(topic_id: str | None) -> str:
    return (topic_id or "").replace("-", "").lower()
