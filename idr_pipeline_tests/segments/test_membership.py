"""Membership diffs and their application to the store: joined/left history, idempotence."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from idr_pipeline.segments.dsl import SegmentCatalog
from idr_pipeline.segments.membership import apply_members, diff_members, retire_segments
from idr_pipeline.segments.steps import check_segment_sizes, evaluation_order
from idr_pipeline.store import IdentityStore

CATALOG = SegmentCatalog.model_validate(
    {
        "segments": [
            {
                "id": "prospects",
                "kind": "rule",
                "name": "Prospects",
                "rule": {"all": [{"in_segment": "taste"}, {"not": {"in_segment": "buyers"}}]},
                "expected_size": {"min_share": 0.1, "max_share": 0.5},
            },
            {
                "id": "buyers",
                "kind": "rule",
                "name": "Buyers",
                "rule": {"purchased": {"category": "luxury", "within_days": 30, "min_total": 500}},
            },
            {"id": "taste", "kind": "prototype", "name": "Taste", "description": "luxury", "threshold": 0.5},
        ]
    }
)
BUYERS = CATALOG.by_id()["buyers"]
T1 = datetime(2025, 3, 1, 6, tzinfo=UTC)
T2 = datetime(2025, 3, 2, 6, tzinfo=UTC)


def frame(pairs: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"identity_id": list(pairs), "score": list(pairs.values())})


def test_diff_members_joined_left_rescored() -> None:
    diff = diff_members(frame({"a": 1.0, "b": 0.7, "c": 0.9}), frame({"b": 0.70001, "c": 0.8, "d": 1.0}))
    assert diff.joined.to_dict("records") == [{"identity_id": "d", "score": 1.0}]
    assert diff.left.to_dict("records") == [{"identity_id": "a", "score": 1.0}]
    # b moved by less than the stored precision: not a change; c's score really moved.
    assert diff.rescored.to_dict("records") == [{"identity_id": "c", "score": 0.8}]
    assert not diff_members(frame({"a": 1.0}), frame({"a": 1.0})).changed
    assert diff_members(frame({}), frame({"x": 1.0})).joined["identity_id"].tolist() == ["x"]


def test_evaluation_order_puts_referenced_segments_first() -> None:
    assert [s.id for s in evaluation_order(CATALOG)] == ["taste", "buyers", "prospects"]


def test_segment_size_check_flags_out_of_bounds() -> None:
    checks = {c.segment_id: c for c in check_segment_sizes({"prospects": 1, "buyers": 3}, 10, CATALOG)}
    assert checks["prospects"].share == 0.1 and checks["prospects"].ok  # bounds are inclusive
    assert checks["buyers"].ok and checks["taste"].members == 0 and checks["taste"].ok
    too_big = check_segment_sizes({"prospects": 6}, 10, CATALOG)[0]
    too_small = check_segment_sizes({"prospects": 0}, 10, CATALOG)[0]
    assert not too_big.ok and not too_small.ok


def _history(store: IdentityStore) -> list[tuple[str, str]]:
    rows = store.select_rows("segment_membership_history", order_by=["changed_at", "identity_id"])
    return [(r["identity_id"], r["change_type"]) for r in rows]


def test_apply_members_writes_history_and_is_idempotent(store: IdentityStore) -> None:
    first = apply_members(store, BUYERS, frame({"a": 1.0, "b": 1.0}), T1)
    assert (first.size, first.joined, first.left) == (2, 2, 0)
    segment = store.select_rows("segments", {"segment_id": "buyers"})[0]
    assert segment["member_count"] == 2 and segment["kind"] == "rule"
    assert segment["definition"]["rule"] == {
        "purchased": {"category": "luxury", "within_days": 30, "min_count": 1, "min_total": 500.0}
    }
    before = store.table_counts()

    again = apply_members(store, BUYERS, frame({"b": 1.0, "a": 1.0}), T2)
    assert (again.joined, again.left, again.rescored) == (0, 0, 0)
    assert store.table_counts() == before
    assert store.select_rows("segments", {"segment_id": "buyers"})[0]["updated_at"] == segment["updated_at"]

    moved = apply_members(store, BUYERS, frame({"b": 1.0, "c": 1.0}), T2)
    assert (moved.size, moved.joined, moved.left) == (2, 1, 1)
    members = store.select_rows("segment_members", {"segment_id": "buyers"}, order_by=["identity_id"])
    assert [m["identity_id"] for m in members] == ["b", "c"]
    assert members[0]["assigned_at"].replace(tzinfo=UTC) == T1  # b stayed: its join time is kept
    assert _history(store) == [("a", "joined"), ("b", "joined"), ("a", "left"), ("c", "joined")]
    assert store.select_rows("segments", {"segment_id": "buyers"})[0]["member_count"] == 2


def test_retired_segment_members_leave(store: IdentityStore) -> None:
    apply_members(store, BUYERS, frame({"a": 1.0}), T1)
    assert [c.segment_id for c in retire_segments(store, {"taste"}, T2)] == ["buyers"]
    assert store.count_rows("segments") == 0 and store.count_rows("segment_members") == 0
    assert _history(store) == [("a", "joined"), ("a", "left")]
    assert retire_segments(store, {"taste"}, T2) == []
