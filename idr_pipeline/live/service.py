"""The stream service: consumes both topics continuously and keeps the store's audiences current.

One loop, one process (``idr stream run``; ``idr services up --only stream`` starts it in the
background). Each micro-batch, per topic partition:

1. read the messages after the saved position (no consumer group, nothing committed);
2. land them in the lake as one offset range (valid rows plus dead letters, the layout the
   daily batch reads);
3. in one store transaction: add the events to ``event_aggregates`` for the identities they
   resolve to, re-evaluate the rule segments of those identities only (the audience API's SQL),
   write joins and leaves, the range's accounting and the new position.

A crash between 2 and 3 is repaired at start: ranges landed after the saved position are read
back from the lake and applied, so nothing is landed or counted twice. A position that no
longer fits its topic (recreated, truncated by retention, gone backwards) stops the service
with the command that records the loss and goes on (:mod:`idr_pipeline.stream.guard`).
At each UTC midnight the aggregates age by a day and the identities whose windows changed are
re-evaluated, so "in the last 7 days" expires people on days without events.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from idr_pipeline.core.catalog import RAW_EVENTS, RAW_PROFILE_STREAM, dead_letter_dataset
from idr_pipeline.core.clock import utc_now
from idr_pipeline.live.aggregates import (
    EventCounts,
    RecentIds,
    apply_events,
    roll_days,
    rule_windows,
    uses_age,
)
from idr_pipeline.live.ranges import (
    Landed,
    compact_id,
    landed_ranges,
    live_range_key,
    parse,
    read_landed,
    write_range,
)
from idr_pipeline.live.segments import Changes, RuleSet, compile_rules, reevaluate
from idr_pipeline.segments.aggregates import AGGREGATE_DAYS
from idr_pipeline.segments.dsl import SegmentCatalog, load_segments
from idr_pipeline.segments.live_events import anchor_of
from idr_pipeline.store import open_store
from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.stream_state import (
    DEFAULT_CONSUMER,
    bump_run,
    heartbeat,
    latest_run,
    single_transaction,
)
from idr_pipeline.store.tables import STREAM_LOSSES, STREAM_OFFSETS, STREAM_RANGES
from idr_pipeline.stream import land
from idr_pipeline.stream.consume import RawMessage, watermarks
from idr_pipeline.stream.fast_consume import (
    KafkaPythonReader,
    PartitionReader,
    ReadError,
    open_reader,
    topic_ids,
)
from idr_pipeline.stream.guard import Mismatch, PositionMismatch, check_positions
from idr_pipeline.stream.producer import ensure_topics

log = logging.getLogger(__name__)

CONSUMER = DEFAULT_CONSUMER


@dataclass(frozen=True)
class TopicSpec:
    kind: str  # "events" or "profiles"
    name: str
    raw_dataset: str


@dataclass(frozen=True)
class ServiceConfig:
    bootstrap: str
    store_url: str
    lake_uri: str
    events_topic: str
    profiles_topic: str
    segments_path: str
    batch_seconds: float = 2.0
    batch_max_messages: int = 50_000
    check_seconds: float = 30.0
    consumer: str = CONSUMER
    reader: str = "kafka-python"

    def topics(self) -> list[TopicSpec]:
        return [
            TopicSpec("events", self.events_topic, RAW_EVENTS),
            TopicSpec("profiles", self.profiles_topic, RAW_PROFILE_STREAM),
        ]


@dataclass
class Position:
    topic_id: str
    next_offset: int


@dataclass
class BatchStats:
    """One micro-batch, for the log, the status row and the Dagster reports."""

    ranges: list[Landed] = field(default_factory=list)
    events: EventCounts = field(default_factory=EventCounts)
    touched: int = 0
    changes: Changes = field(default_factory=Changes)
    landed_s: float = 0.0
    applied_s: float = 0.0

    def by_kind(self, kind_of: Mapping[str, str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = defaultdict(
            lambda: {"messages": 0, "valid": 0, "dead": 0, "ranges": 0}
        )
        for r in self.ranges:
            entry = out[kind_of[r.topic]]
            entry["messages"] += r.messages
            entry["valid"] += r.batch.valid.num_rows
            entry["dead"] += r.batch.dead.num_rows
            entry["ranges"] += 1
        return dict(out)


class OffsetConflict(RuntimeError):
    """The store's position is not where this batch starts: another consumer is writing."""


Reporter = Callable[["StreamService", BatchStats | None], None]


class StreamService:
    def __init__(
        self,
        config: ServiceConfig,
        clock: Callable[[], datetime] = utc_now,
        catalog: SegmentCatalog | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.catalog = catalog or load_segments(config.segments_path)
        self.windows = rule_windows(self.catalog)
        self.ages = uses_age(self.catalog)
        self.topics = {t.name: t for t in config.topics()}
        self.positions: dict[tuple[str, int], Position] = {}
        self.recent = RecentIds()
        self.store: IdentityStore | None = None
        self.reader: PartitionReader | KafkaPythonReader | None = None
        self.end: datetime | None = None
        self.rules: RuleSet | None = None
        self.lag: dict[str, int] = {}
        self.totals: dict[str, int] = defaultdict(int)
        self.started_at = clock()
        self._last_check = 0.0

    # ------------------------------------------------------------------ start and stop

    def open(self) -> StreamService:
        store = open_store(self.config.store_url)
        store.ensure_schema()
        self.store = store
        ensure_topics(self.config.bootstrap, list(self.topics))
        self._load_positions()
        self.check_positions()
        self._advance_day()
        self._recover_landed()
        self.reader = open_reader(self.config.reader, self.config.bootstrap, client_id=self.config.consumer)
        self.reader.assign({k: p.next_offset for k, p in self.positions.items()})
        self._heartbeat()
        return self

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> StreamService:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _store(self) -> IdentityStore:
        if self.store is None:
            raise RuntimeError("the service is not open")
        return self.store

    # ------------------------------------------------------------------ positions

    def _saved(self) -> dict[tuple[str, int], Position]:
        rows = self._store.select_rows(STREAM_OFFSETS.name, {"consumer": self.config.consumer})
        return {
            (r["topic"], int(r["kafka_partition"])): Position(r["topic_id"], int(r["next_offset"]))
            for r in rows
            if r["topic"] in self.topics
        }

    def _load_positions(self) -> None:
        """Saved positions, plus every partition not seen before starting at its log start.

        Offsets below a new partition's log start were deleted before this consumer ever read
        the topic; they are recorded as lost rather than passed over in silence.
        """
        saved = self._saved()
        ids = topic_ids(self.config.bootstrap, self.topics)
        new_rows, losses, ledger = [], [], []
        for topic in self.topics:
            low, high = watermarks(self.config.bootstrap, topic)
            spec = self.topics[topic]
            for partition in sorted(high):
                if (topic, partition) in saved:
                    continue
                start = low.get(partition, 0)
                # After what the sensor path already landed from this topic, if anything.
                landed = landed_ranges(self.config.lake_uri, spec.raw_dataset, ids.get(topic, ""), partition)
                position = max([start, *[r.end for r in landed]])
                saved[(topic, partition)] = Position(ids.get(topic, ""), position)
                new_rows.append(self._offset_row(topic, partition, saved[(topic, partition)]))
                for r in landed:  # into the ledger, so the accounting covers them
                    batch = read_landed(self.config.lake_uri, spec.raw_dataset, r.key)
                    handed = Landed(
                        topic, partition, ids.get(topic, ""), r.start, r.end, r.key, batch, self.clock()
                    )
                    ledger.append(self._range_row(handed, None))
                if start > 0:
                    losses.append(
                        self._loss_row(
                            topic, partition, ids.get(topic, ""), 0, start - 1, "deleted before first read"
                        )
                    )
        if new_rows:
            with single_transaction(self._store):
                self._store.upsert(STREAM_OFFSETS.name, new_rows)
                self._store.upsert(STREAM_LOSSES.name, losses)
                self._store.upsert(STREAM_RANGES.name, ledger)
        self.positions = saved

    def _offset_row(self, topic: str, partition: int, pos: Position) -> dict[str, Any]:
        return {
            "consumer": self.config.consumer,
            "topic": topic,
            "kafka_partition": partition,
            "topic_id": pos.topic_id,
            "next_offset": pos.next_offset,
        }

    def _loss_row(
        self, topic: str, partition: int, topic_id: str, first: int, last: int | None, reason: str
    ) -> dict[str, Any]:
        return {
            "consumer": self.config.consumer,
            "topic": topic,
            "kafka_partition": partition,
            "first_offset": first,
            "topic_id": topic_id,
            "last_offset": last,
            "reason": reason,
        }

    def mismatches(self) -> list[Mismatch]:
        """Partitions whose position no longer fits the topic (see stream.guard)."""
        ids = topic_ids(self.config.bootstrap, self.topics)
        found: list[Mismatch] = []
        for topic in self.topics:
            low, high = watermarks(self.config.bootstrap, topic)
            mine = {p: pos for (t, p), pos in self.positions.items() if t == topic}
            saved_ids = {pos.topic_id for pos in mine.values() if pos.topic_id}
            saved_id = next(iter(saved_ids)) if len(saved_ids) == 1 else ""
            found += check_positions(
                topic,
                saved_id,
                ids.get(topic, ""),
                {p: pos.next_offset for p, pos in mine.items()},
                low,
                high,
            )
            self.lag[topic] = sum(max(0, high.get(p, 0) - pos.next_offset) for p, pos in mine.items())
        return found

    def check_positions(self) -> None:
        self._last_check = time.monotonic()
        found = self.mismatches()
        if found:
            raise PositionMismatch(found)

    # ------------------------------------------------------------------ recovery

    def _recover_landed(self) -> None:
        """Apply ranges that landed after the saved position (a crash between landing and applying)."""
        for (topic, partition), pos in sorted(self.positions.items()):
            spec = self.topics[topic]
            self._drop_orphan_dead_letters(spec, partition, pos)
            for rng in landed_ranges(self.config.lake_uri, spec.raw_dataset, pos.topic_id, partition):
                pos = self.positions[(topic, partition)]  # moved by each range applied
                if rng.end <= pos.next_offset:
                    continue
                if rng.start != pos.next_offset:
                    raise RuntimeError(
                        f"{topic}[{partition}]: landed range {rng.key} does not start at the saved "
                        f"position {pos.next_offset}; the lake and the store disagree"
                    )
                batch = read_landed(self.config.lake_uri, spec.raw_dataset, rng.key)
                landed = Landed(
                    topic, partition, pos.topic_id, rng.start, rng.end, rng.key, batch, self.clock()
                )
                log.info("re-applying landed range %s of %s (%d messages)", rng.key, topic, batch.messages)
                self._apply([landed])

    def _drop_orphan_dead_letters(self, spec: TopicSpec, partition: int, pos: Position) -> None:
        """Dead letters of a range whose valid rows never landed (a crash between the two writes)."""
        dataset = dead_letter_dataset(spec.raw_dataset)
        landed = {
            r.key for r in landed_ranges(self.config.lake_uri, spec.raw_dataset, pos.topic_id, partition)
        }
        for rng in landed_ranges(self.config.lake_uri, dataset, pos.topic_id, partition):
            if rng.start >= pos.next_offset and rng.key not in landed:
                land.delete_partition(self.config.lake_uri, dataset, rng.key)

    # ------------------------------------------------------------------ the day

    def _advance_day(self) -> None:
        """Move the aggregates' as-of instant to the end of the current UTC day."""
        end = anchor_of(self.clock())
        if self.end is not None and end == self.end:
            return
        store = self._store
        with single_transaction(store):
            latest = latest_run(store)
            previous = latest["as_of"] if latest else None
            if previous is not None:
                previous = previous.replace(tzinfo=end.tzinfo)
                if previous.time() != datetime.min.time():
                    raise RuntimeError(
                        f"event_aggregates were last published as of {previous:%Y-%m-%d %H:%M:%S} UTC, not at "
                        "the end of a day; the stream counts whole days back from midnight. Publish the "
                        "current day's user_features partition (it ends at midnight), then start again."
                    )
                if previous > end:
                    raise RuntimeError(
                        f"event_aggregates are as of {previous}, after the current day's end {end}"
                    )
            if previous is not None and previous < end:
                roll = roll_days(store, previous, end, self.windows, self.ages)
                rules = compile_rules(
                    self.catalog, store.placeholder, (end - timedelta(microseconds=1)).date()
                )
                changes = reevaluate(store, rules, roll.expired_identities, self.clock())
                log.info(
                    "new day %s: aged %d day(s), dropped %d rows, re-evaluated %d identities (%d changes)",
                    end.date(),
                    roll.days,
                    roll.dropped_rows,
                    len(roll.expired_identities),
                    changes.total,
                )
            elif previous is None:
                bump_run(store, end, AGGREGATE_DAYS, {})
        self.end = end
        self.rules = compile_rules(self.catalog, store.placeholder, (end - timedelta(microseconds=1)).date())

    # ------------------------------------------------------------------ the loop

    def step(self) -> BatchStats | None:
        """One turn of the loop: a new day, a pause, or one micro-batch (None when nothing came)."""
        self._advance_day()
        if self._heartbeat():
            time.sleep(min(1.0, self.config.batch_seconds))
            return None
        if time.monotonic() - self._last_check > self.config.check_seconds:
            self.check_positions()
        assert self.reader is not None
        try:
            polled = self.reader.poll(self.config.batch_max_messages, self.config.batch_seconds)
        except ReadError as exc:
            if exc.out_of_range:
                self.check_positions()  # raises the precise mismatch
            raise
        if not polled:
            return None
        return self.process(polled)

    def process(self, polled: list[tuple[str, int, RawMessage]]) -> BatchStats:
        started = time.monotonic()
        grouped: dict[tuple[str, int], list[RawMessage]] = defaultdict(list)
        for topic, partition, msg in polled:
            grouped[(topic, partition)].append(msg)
        ranges: list[Landed] = []
        for (topic, partition), msgs in sorted(grouped.items()):
            pos = self.positions[(topic, partition)]
            msgs = [m for m in msgs if m.offset >= pos.next_offset]
            if not msgs:
                continue
            start, end = pos.next_offset, msgs[-1].offset + 1
            spec = self.topics[topic]
            batch = parse(spec.kind, topic, partition, msgs)
            key = live_range_key(partition, start, end, pos.topic_id)
            write_range(self.config.lake_uri, spec.raw_dataset, key, batch)
            ranges.append(Landed(topic, partition, pos.topic_id, start, end, key, batch, self.clock()))
        landed_s = time.monotonic() - started
        stats = self._apply(ranges)
        stats.landed_s = landed_s
        stats.applied_s = time.monotonic() - started - landed_s
        return stats

    def _apply(self, ranges: list[Landed]) -> BatchStats:
        """Everything one batch changes in the store, in one transaction."""
        store = self._store
        stats = BatchStats(ranges=ranges)
        if not ranges:
            return stats
        assert self.end is not None and self.rules is not None
        now = self.clock()
        touched: set[str] = set()
        with single_transaction(store):
            saved = self._saved()
            for r in ranges:
                pos = saved.get((r.topic, r.partition))
                if (
                    pos is None
                    or pos.next_offset != r.start
                    or compact_id(pos.topic_id) != compact_id(r.topic_id)
                ):
                    raise OffsetConflict(
                        f"{r.topic}[{r.partition}]: the store's position is {pos}, the batch starts at {r.start}; "
                        "is another stream service writing to this store?"
                    )
            ledger = []
            for r in ranges:
                counts = EventCounts()
                if self.topics[r.topic].kind == "events":
                    applied = apply_events(store, r.batch.valid_rows(), self.end, self.recent)
                    counts = applied.counts
                    touched |= applied.touched
                    stats.events.add(counts)
                ledger.append(self._range_row(r, counts))
            stats.changes = reevaluate(store, self.rules, touched, now)
            stats.touched = len(touched)
            store.upsert(STREAM_RANGES.name, ledger)
            store.upsert(
                STREAM_OFFSETS.name,
                [self._offset_row(r.topic, r.partition, Position(r.topic_id, r.end)) for r in ranges],
            )
        for r in ranges:
            self.positions[(r.topic, r.partition)] = Position(r.topic_id, r.end)
            kind = self.topics[r.topic].kind
            self.totals[f"{kind}_messages"] += r.messages
            self.totals[f"{kind}_valid"] += r.batch.valid.num_rows
            self.totals[f"{kind}_dead"] += r.batch.dead.num_rows
        self.totals["joined"] += sum(stats.changes.joined.values())
        self.totals["left"] += sum(stats.changes.left.values())
        return stats

    def _range_row(self, r: Landed, counts: EventCounts | None) -> dict[str, Any]:
        """The ledger row of a range; ``counts`` None for a range the sensor path landed."""
        detail: dict[str, Any] = {"gaps": r.gaps, "landed_at": r.landed_at.isoformat()}
        if counts is None:
            detail["landed_by"] = "sensor"
        elif self.topics[r.topic].kind == "events":
            detail.update(vars(counts))
        return {
            "consumer": self.config.consumer,
            "topic": r.topic,
            "kafka_partition": r.partition,
            "first_offset": r.start,
            "last_offset": r.end - 1,
            "topic_id": r.topic_id,
            "range_key": r.key,
            "messages": r.messages,
            "valid": r.batch.valid.num_rows,
            "dead": r.batch.dead.num_rows,
            "counts": detail,
        }

    def status(self) -> dict[str, Any]:
        return {
            "positions": {f"{t}[{p}]": pos.next_offset for (t, p), pos in sorted(self.positions.items())},
            "consumer_lag": dict(self.lag),
            "as_of": self.end.isoformat() if self.end else None,
            "started_at": self.started_at.isoformat(),
            **dict(self.totals),
        }

    def _heartbeat(self, error: str | None = None) -> bool:
        return heartbeat(self._store, self.config.consumer, self.status(), error)

    def fail(self, error: BaseException) -> None:
        """Record why the service stopped, so the Dagster check and `idr stream status` show it."""
        if self.store is not None:
            try:
                self._heartbeat(error=f"{type(error).__name__}: {error}")
            except Exception:  # the store itself may be what failed
                log.exception("could not record the error in the store")

    def run(
        self, should_stop: Callable[[], bool], reporter: Reporter | None = None, report_s: float = 30.0
    ) -> None:
        """Loop until ``should_stop()``; report to ``reporter`` at most every ``report_s`` seconds."""
        last_report = time.monotonic()
        pending: list[BatchStats] = []
        try:
            while not should_stop():
                stats = self.step()
                if stats is not None:
                    pending.append(stats)
                    log.info(
                        "batch: %d ranges, %d events applied, %d identities, %d joins, %d leaves (%.2f s land, %.2f s store)",
                        len(stats.ranges),
                        stats.events.aggregated,
                        stats.touched,
                        sum(stats.changes.joined.values()),
                        sum(stats.changes.left.values()),
                        stats.landed_s,
                        stats.applied_s,
                    )
                if reporter is not None and time.monotonic() - last_report >= report_s:
                    reporter(self, merge_stats(pending))
                    pending, last_report = [], time.monotonic()
        except BaseException as exc:
            self.fail(exc)
            raise
        if reporter is not None and pending:
            reporter(self, merge_stats(pending))


def merge_stats(batches: list[BatchStats]) -> BatchStats | None:
    if not batches:
        return None
    out = BatchStats()
    for b in batches:
        out.ranges += b.ranges
        out.events.add(b.events)
        out.touched += b.touched
        for k, v in b.changes.joined.items():
            out.changes.joined[k] = out.changes.joined.get(k, 0) + v
        for k, v in b.changes.left.items():
            out.changes.left[k] = out.changes.left.get(k, 0) + v
        out.landed_s += b.landed_s
        out.applied_s += b.applied_s
    return out
