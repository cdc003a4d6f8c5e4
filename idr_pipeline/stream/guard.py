"""Does a saved position still fit the topic? The checks that stop a consumer instead of guessing.

A position is (topic id, next offset) per partition. Kafka gives every topic a UUID; a topic
deleted and created again under the same name gets a new one, and its offsets start over, so
offsets alone cannot tell "the topic grew" from "another topic grew past our cursor". Three
cases make a position unusable, and each names the command that recovers from it:

* the topic id changed (the topic was recreated; the old topic's unread messages are gone);
* the log start offset is past the next offset (retention deleted messages before they were
  read);
* the high watermark is below the next offset (offsets went backwards without an id change,
  e.g. a broker that lost its data and does not report topic ids).

Pure functions: the sensors, the stream service and the tests share exactly these rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Problem = Literal["topic_recreated", "log_start_past_cursor", "high_watermark_below_cursor"]

#: What a person runs to accept the loss and go on, per consumer kind; ``{topic}`` is filled in.
RECOVERY = {
    "stream": "idr stream reset --topic {topic}",
    "sensor": "set the sensor's cursor as the error of its tick says (dagster sensor cursor ... --set)",
}


@dataclass(frozen=True)
class Mismatch:
    """One partition whose saved position no longer fits the topic."""

    topic: str
    partition: int
    problem: Problem
    next_offset: int
    low: int
    high: int
    saved_topic_id: str
    topic_id: str

    def lost_range(self) -> tuple[int, int | None]:
        """(first, last) offsets that will never be read; last is None when unknown."""
        if self.problem == "log_start_past_cursor":
            return self.next_offset, self.low - 1
        return self.next_offset, None

    def describe(self) -> str:
        where = f"{self.topic}[{self.partition}]"
        if self.problem == "topic_recreated":
            return (
                f"{where}: the topic was recreated (id {self.saved_topic_id} -> {self.topic_id}); "
                f"offsets from {self.next_offset} of the old topic were never read"
            )
        if self.problem == "log_start_past_cursor":
            return (
                f"{where}: the log starts at {self.low} but the next offset to read is {self.next_offset}; "
                f"offsets {self.next_offset}..{self.low - 1} were deleted (retention) before they were read"
            )
        return (
            f"{where}: the high watermark {self.high} is below the next offset to read {self.next_offset}; "
            "was the topic recreated or the broker's data lost?"
        )


class PositionMismatch(RuntimeError):
    """Raised instead of reading on: the saved position does not fit the topic any more."""

    def __init__(self, mismatches: list[Mismatch], tool: str = "stream", recovery: str | None = None) -> None:
        self.mismatches = mismatches
        topics = sorted({m.topic for m in mismatches})
        recovery = recovery or "; ".join(RECOVERY[tool].format(topic=t) for t in topics)
        lines = [m.describe() for m in mismatches]
        super().__init__(
            "stopped: the saved position does not fit the topic.\n  "
            + "\n  ".join(lines)
            + f"\nTo record these offsets as lost and continue from the topic's current start, run: {recovery}"
        )


def check_positions(
    topic: str,
    saved_topic_id: str | None,
    topic_id: str,
    positions: Mapping[int, int],
    low: Mapping[int, int],
    high: Mapping[int, int],
) -> list[Mismatch]:
    """The partitions of ``positions`` (next offset to read) that no longer fit the topic.

    ``saved_topic_id`` None or "" means the position was saved without an id (an old cursor):
    only the offset checks apply. A partition that disappeared counts as high watermark 0.
    """
    out: list[Mismatch] = []
    for partition, nxt in sorted(positions.items()):
        lw, hw = low.get(partition, 0), high.get(partition, 0)
        problem: Problem | None = None
        if saved_topic_id and topic_id and saved_topic_id != topic_id:
            # Even at offset 0: the old topic may have held messages nobody read.
            problem = "topic_recreated"
        elif nxt > hw:
            problem = "high_watermark_below_cursor"
        elif nxt < lw:
            problem = "log_start_past_cursor"
        if problem is not None:
            out.append(Mismatch(topic, partition, problem, nxt, lw, hw, saved_topic_id or "", topic_id))
    return out
