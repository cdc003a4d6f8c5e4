"""Rule segments re-evaluated for a few identities, with the SQL the audience API runs.

Each rule segment's expression is compiled once by :func:`idr_pipeline.api.audience_sql.compile_audience`
(the compiler behind ``POST /audiences/query``), scoped to the ``stream_touched`` table, and
asked only about the identities a micro-batch touched, which fill that table for the length of
the batch's transaction: every subquery then reads those identities' rows only, so the cost
follows the batch, not the size of the tables. The answer
is diffed against those identities' current membership; joins and leaves are written to
``segment_members`` and ``segment_membership_history`` exactly as the batch writes them
(:mod:`idr_pipeline.segments.membership`), and the segment's member count is refreshed.

Prototype segments are not re-evaluated here (their vectors come from the daily batch); rule
segments that refer to them (``in_segment``) read their current members from the store, as
the compiled expression does for every ``in_segment``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import pandas as pd

from idr_pipeline.api.audience_sql import CompiledAudience, compile_audience
from idr_pipeline.segments.dsl import RuleSegment, SegmentCatalog
from idr_pipeline.segments.membership import ID, MembershipDiff, history_rows, segment_row
from idr_pipeline.segments.steps import evaluation_order
from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.stream_state import touched_scope
from idr_pipeline.store.tables import STREAM_TOUCHED

#: Identities per DELETE ... IN (...) statement.
ID_CHUNK = 1000
RULE_SCORE = 1.0


@dataclass
class RuleSet:
    """The catalog's rule segments in evaluation order, compiled for one store and one day."""

    segments: list[RuleSegment]
    compiled: dict[str, CompiledAudience]
    day: date


def compile_rules(catalog: SegmentCatalog, placeholder: str, day: date) -> RuleSet:
    rules = [s for s in evaluation_order(catalog) if isinstance(s, RuleSegment)]
    compiled = {
        s.id: compile_audience(s.rule, placeholder, today=day, scope=STREAM_TOUCHED.name) for s in rules
    }
    return RuleSet(rules, compiled, day)


@dataclass
class Changes:
    """Joins and leaves per segment of one re-evaluation."""

    joined: dict[str, int] = field(default_factory=dict)
    left: dict[str, int] = field(default_factory=dict)
    evaluated: int = 0

    @property
    def total(self) -> int:
        return sum(self.joined.values()) + sum(self.left.values())


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(values), ID_CHUNK):
        yield values[i : i + ID_CHUNK]


def matching(store: IdentityStore, compiled: CompiledAudience) -> set[str]:
    """The identities in ``stream_touched`` that satisfy the compiled expression."""
    sql = (
        f"SELECT i.identity_id FROM identities i WHERE {compiled.predicate} "
        f"AND i.identity_id IN (SELECT identity_id FROM {STREAM_TOUCHED.name})"
    )
    return {r[0] for r in store.query(sql, compiled.params)}


def reevaluate(store: IdentityStore, rules: RuleSet, identities: Iterable[str], now: datetime) -> Changes:
    """Bring every rule segment's membership of ``identities`` to what its expression says now.

    Segments run in dependency order, so an ``in_segment`` sees the membership this call just
    wrote. Call inside the micro-batch's transaction.
    """
    ids = sorted(set(identities))
    changes = Changes(evaluated=len(ids))
    if not ids:
        return changes
    with touched_scope(store, ids):
        for segment in rules.segments:
            _reevaluate_segment(store, segment, rules.compiled[segment.id], now, changes)
    return changes


def _current_members(store: IdentityStore, segment_id: str) -> set[str]:
    """The segment's members among the touched identities."""
    ph = store.placeholder
    sql = (
        f"SELECT identity_id FROM segment_members WHERE segment_id = {ph} "
        f"AND identity_id IN (SELECT identity_id FROM {STREAM_TOUCHED.name})"
    )
    return {r[0] for r in store.query(sql, [segment_id])}


def _reevaluate_segment(
    store: IdentityStore, segment: RuleSegment, compiled: CompiledAudience, now: datetime, changes: Changes
) -> None:
    now_in = matching(store, compiled)
    was_in = _current_members(store, segment.id)
    joined, left = sorted(now_in - was_in), sorted(was_in - now_in)
    known = bool(store.select_rows("segments", {"segment_id": segment.id}))
    if not joined and not left and known:
        return
    store.upsert(
        "segment_members",
        ({"segment_id": segment.id, ID: i, "score": RULE_SCORE, "assigned_at": now} for i in joined),
    )
    for chunk in _chunks(left):
        store.delete_rows("segment_members", {"segment_id": segment.id, ID: chunk})
    diff = MembershipDiff(
        joined=pd.DataFrame({ID: joined, "score": RULE_SCORE}),
        left=pd.DataFrame({ID: left, "score": RULE_SCORE}),
        rescored=pd.DataFrame({ID: [], "score": []}),
    )
    store.upsert("segment_membership_history", history_rows(segment.id, diff, now))
    size = store.count_rows("segment_members", {"segment_id": segment.id})
    store.upsert("segments", [segment_row(segment, size)])
    changes.joined[segment.id] = len(joined)
    changes.left[segment.id] = len(left)
