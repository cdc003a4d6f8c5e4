"""Adding one micro-batch of events to the store's aggregates, and moving the day forward.

Everything here runs inside the micro-batch's transaction (``single_transaction``). Each
valid event ends in exactly one bucket of :class:`EventCounts`, so a range's valid messages
always add up; the same buckets feed the current ``event_aggregate_runs`` row, whose balance
(events = aggregated + unresolved + other_types + unknown_identity) the batch publish keeps.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from idr_pipeline.segments.aggregates import AGGREGATE_DAYS
from idr_pipeline.segments.dsl import BEHAVIOR_LEAVES, Age, RuleSegment, SegmentCatalog, behavior_args, walk
from idr_pipeline.segments.live_events import (
    COOKIE,
    birthday_today,
    day_number,
    is_aggregated_type,
    resolve,
    value_key,
    window_start_day,
)
from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.stream_state import (
    Sums,
    add_event_aggregates,
    add_held,
    bump_run,
    drop_held_before,
    existing_identities,
    identities_with_days,
    shift_event_aggregates,
    take_due,
    take_held,
)
from idr_pipeline.store.tables import STREAM_IDENTIFY_LINKS


@dataclass
class EventCounts:
    """Where a batch's valid events went; ``total`` equals the valid events given."""

    aggregated: int = 0
    held_unresolved: int = 0  # an aggregated type, no identity yet, a cookie to wait on
    unresolved: int = 0
    other_types: int = 0
    unknown_identity: int = 0
    held_future: int = 0  # dated after the current day: counted when their day comes
    outside_window: int = 0
    duplicates: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    def add(self, other: EventCounts) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    def run_add(self) -> dict[str, int]:
        """What these events add to the current publish record of event_aggregates."""
        unresolved = self.unresolved + self.held_unresolved
        window = self.aggregated + unresolved + self.other_types + self.unknown_identity
        return {
            "events": window,
            "aggregated": self.aggregated,
            "unresolved": unresolved,
            "other_types": self.other_types,
            "unknown_identity": self.unknown_identity,
        }


class RecentIds:
    """The event ids seen most recently, so a message sent twice is counted once.

    Bounded: the batch de-duplicates over its whole window; this catches the usual case,
    a producer's retry arriving within seconds or minutes of the first copy.
    """

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, event_id: str) -> bool:
        if event_id in self._ids:
            return True
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False


@dataclass
class Applied:
    counts: EventCounts
    touched: set[str] = field(default_factory=set)
    linked_cookies: int = 0


def _hold_key(row: Mapping[str, Any], day: int) -> tuple[str, str, int, str, str]:
    kind, category, product, campaign = value_key(row)
    return kind, category, day, product, campaign


def apply_events(
    store: IdentityStore, rows: Sequence[Mapping[str, Any]], end: datetime, recent: RecentIds
) -> Applied:
    """Add a batch of landed events (``parse_events`` rows) to the aggregates as of ``end``."""
    counts = EventCounts()
    fresh: list[Mapping[str, Any]] = []
    for row in rows:
        if recent.seen(row["event_id"]):
            counts.duplicates += 1
        else:
            fresh.append(row)
    res = resolve(store, fresh)
    today = day_number(end - timedelta(microseconds=1))
    linked = {c: i for c, i in res.link_changes.items() if i is not None}
    known = existing_identities(store, [i for i in res.identities if i] + list(linked.values()))
    aggregates: dict[tuple[str, tuple], Sums] = defaultdict(Sums)
    held: dict[tuple[str, tuple], Sums] = defaultdict(Sums)
    touched: set[str] = set()
    window_start = end - timedelta(days=AGGREGATE_DAYS)
    for row, identity, keys in zip(fresh, res.identities, res.keys, strict=True):
        ts: datetime = row["ts"]
        amount = float(row.get("price") or 0.0)
        if ts >= end:
            holder = identity if identity in known else (COOKIE + keys.anon if keys.anon else None)
            if holder is not None and is_aggregated_type(row["type"]):
                held[(holder, _hold_key(row, day_number(ts)))].add(1, amount)
                counts.held_future += 1
            else:
                counts.unresolved += 1
        elif ts < window_start:
            counts.outside_window += 1
        elif identity is None:
            if keys.anon and is_aggregated_type(row["type"]):
                held[(COOKIE + keys.anon, _hold_key(row, day_number(ts)))].add(1, amount)
                counts.held_unresolved += 1
            else:
                counts.unresolved += 1
        elif identity not in known:
            counts.unknown_identity += 1
        elif not is_aggregated_type(row["type"]):
            counts.other_types += 1
        else:
            kind, category, product, campaign = value_key(row)
            aggregates[(identity, (kind, category, today - day_number(ts), product, campaign))].add(1, amount)
            counts.aggregated += 1
            touched.add(identity)
    moved = _release_cookies(store, linked, known, today, end, aggregates, held)
    touched |= moved.touched
    if res.link_changes:
        store.upsert(
            STREAM_IDENTIFY_LINKS.name,
            ({"anonymous_id": c, "identity_id": i} for c, i in res.link_changes.items()),
        )
    add_event_aggregates(store, aggregates)
    add_held(store, held)
    run = counts.run_add()
    for k, v in moved.run_add().items():
        run[k] += v
    bump_run(store, end, AGGREGATE_DAYS, run)
    return Applied(counts, touched, len(linked))


@dataclass
class _Moved:
    aggregated: int = 0
    unknown: int = 0
    touched: set[str] = field(default_factory=set)

    def run_add(self) -> dict[str, int]:
        # Held cookie events were counted unresolved; now they are someone's.
        return {
            "events": 0,
            "aggregated": self.aggregated,
            "unresolved": -(self.aggregated + self.unknown),
            "other_types": 0,
            "unknown_identity": self.unknown,
        }


def _release_cookies(
    store: IdentityStore,
    linked: Mapping[str, str],
    known: set[str],
    today: int,
    end: datetime,
    aggregates: dict,
    held: dict,
) -> _Moved:
    """Give the held events of newly linked cookies to their identity (the identify rung)."""
    moved = _Moved()
    if not linked:
        return moved
    first_day = window_start_day(end)
    rows = take_held(store, (COOKIE + c for c in linked))
    for r in rows:
        identity = linked[r["holder"][len(COOKIE) :]]
        key = (r["event_type"], r["category"], r["day"], r["product_id"], r["campaign"])
        if r["day"] > today:
            held[(identity, key)].add(r["events"], r["amount"])
        elif r["day"] < first_day:
            continue
        elif identity not in known:
            moved.unknown += r["events"]
        else:
            agg_key = (r["event_type"], r["category"], today - r["day"], r["product_id"], r["campaign"])
            aggregates[(identity, agg_key)].add(r["events"], r["amount"])
            moved.aggregated += r["events"]
            moved.touched.add(identity)
    return moved


# ------------------------------------------------------------------ a new day


def rule_windows(catalog: SegmentCatalog) -> set[int]:
    """Every ``within_days`` a rule segment's behavioral leaves use."""
    return {
        behavior_args(n).within_days
        for s in catalog.segments
        if isinstance(s, RuleSegment)
        for n in walk(s.rule)
        if isinstance(n, BEHAVIOR_LEAVES)
    }


def uses_age(catalog: SegmentCatalog) -> bool:
    return any(
        isinstance(n, Age) for s in catalog.segments if isinstance(s, RuleSegment) for n in walk(s.rule)
    )


@dataclass
class Roll:
    """What moving the as-of instant forward did."""

    days: int
    dropped_rows: int
    released_events: int
    expired_identities: set[str]


def roll_days(
    store: IdentityStore, old_end: datetime, new_end: datetime, windows: Iterable[int], ages: bool
) -> Roll:
    """Move event_aggregates from ``old_end`` to ``new_end`` (whole days later).

    Rows age by the days passed; rows past the widest window go; held events whose day has
    come join the aggregates. Returns the identities whose window contents changed without a
    new event (events that left a rule's window, a birthday for age rules): the caller
    re-evaluates their segments.
    """
    days = (new_end - old_end) // timedelta(days=1)
    if days <= 0:
        return Roll(0, 0, 0, set())
    leaving = {d for n in windows for d in range(max(0, n - days), n)}
    expired = identities_with_days(store, leaving)
    dropped = shift_event_aggregates(store, days, AGGREGATE_DAYS)
    bump_run(store, new_end, AGGREGATE_DAYS, {})  # the new day's record, carried from the last
    today = day_number(new_end - timedelta(microseconds=1))
    due = take_due(store, today, COOKIE)
    first_day = window_start_day(new_end)
    known = existing_identities(store, {r["holder"] for r in due})
    aggregates: dict[tuple[str, tuple], Sums] = defaultdict(Sums)
    released = unknown = 0
    for r in due:
        if r["day"] < first_day:
            continue
        if r["holder"] not in known:
            unknown += r["events"]
            continue
        key = (r["event_type"], r["category"], today - r["day"], r["product_id"], r["campaign"])
        aggregates[(r["holder"], key)].add(r["events"], r["amount"])
        released += r["events"]
        expired.add(r["holder"])
    add_event_aggregates(store, aggregates)
    drop_held_before(store, first_day)
    bump_run(
        store,
        new_end,
        AGGREGATE_DAYS,
        {"events": released + unknown, "aggregated": released, "unknown_identity": unknown},
    )
    if ages:
        on_days = [(old_end + timedelta(days=i)).date() for i in range(days)]
        rows = store.query("SELECT identity_id, dob FROM golden_profiles WHERE dob IS NOT NULL")
        expired |= {i for i, dob in rows if any(birthday_today(dob, d) for d in on_days)}
    return Roll(days, dropped, released, expired)
