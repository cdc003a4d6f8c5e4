"""Segment membership in the store: a diff of new against current members, then only the diff.

Writing only what changed is what makes a re-evaluation idempotent: the same members with the
same scores produce no joined or left rows, so history only grows when someone really moved,
and an activation that syncs "joined since" sends nothing twice. ``assigned_at`` is the time
the identity (last) joined; a score change rewrites the score but keeps that time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from idr_pipeline.segments.dsl import AnySegment, LookalikeSegment, RuleSegment, to_json

ID = "identity_id"
SCORE_DECIMALS = 4
#: Ids per DELETE ... IN (...) statement: inside every backend's parameter limit.
DELETE_CHUNK = 1000


@dataclass
class MembershipDiff:
    joined: pd.DataFrame  # identity_id, score
    left: pd.DataFrame  # identity_id, score (the score they had)
    rescored: pd.DataFrame  # identity_id, score (the new score)

    @property
    def changed(self) -> bool:
        return not (self.joined.empty and self.left.empty and self.rescored.empty)


def _normalize(members: pd.DataFrame) -> pd.DataFrame:
    if members is None or members.empty:
        return pd.DataFrame({ID: pd.Series(dtype=object), "score": pd.Series(dtype=float)})
    out = members[[ID, "score"]].copy()
    out[ID] = out[ID].astype(str)
    out["score"] = out["score"].astype(float).round(SCORE_DECIMALS)
    # One row per identity: the best score if an evaluation produced duplicates.
    return out.sort_values([ID, "score"], ascending=[True, False]).drop_duplicates(ID).reset_index(drop=True)


def diff_members(current: pd.DataFrame, new: pd.DataFrame) -> MembershipDiff:
    """Who joined, who left and whose score moved, from two ``identity_id, score`` frames."""
    cur, nxt = _normalize(current), _normalize(new)
    both = cur.merge(nxt, on=ID, how="outer", suffixes=("_cur", "_new"), indicator=True)
    joined = both[both["_merge"] == "right_only"]
    left = both[both["_merge"] == "left_only"]
    stayed = both[both["_merge"] == "both"]
    rescored = stayed[stayed["score_cur"] != stayed["score_new"]]

    def frame(rows: pd.DataFrame, column: str) -> pd.DataFrame:
        return rows[[ID, column]].rename(columns={column: "score"}).reset_index(drop=True)

    return MembershipDiff(frame(joined, "score_new"), frame(left, "score_cur"), frame(rescored, "score_new"))


def history_rows(segment_id: str, diff: MembershipDiff, now: datetime) -> list[dict[str, Any]]:
    rows = [
        {
            "segment_id": segment_id,
            ID: r[ID],
            "changed_at": now,
            "change_type": kind,
            "score": float(r["score"]),
        }
        for kind, frame in (("joined", diff.joined), ("left", diff.left))
        for r in frame.to_dict("records")
    ]
    return rows


def segment_row(segment: AnySegment, member_count: int) -> dict[str, Any]:
    """The ``segments`` row: the validated definition as JSON, so the API serves what ran."""
    if isinstance(segment, RuleSegment):
        definition: dict[str, Any] = {"rule": to_json(segment.rule)}
        threshold = None
    elif isinstance(segment, LookalikeSegment):
        definition = {"seed": segment.seed, "size": segment.size.model_dump(exclude_none=True)}
        threshold = float(segment.min_similarity)
    else:
        definition = {"examples": list(segment.examples), "within_days": segment.within_days}
        threshold = float(segment.threshold)
    definition["expected_size"] = segment.expected_size.model_dump()
    return {
        "segment_id": segment.id,
        "name": segment.name,
        "kind": segment.kind,
        "description": segment.description,
        "definition": json.loads(json.dumps(definition)),
        "threshold": threshold,
        "member_count": int(member_count),
    }


@dataclass
class SegmentChange:
    segment_id: str
    size: int
    joined: int
    left: int
    rescored: int


def current_members(store, segment_id: str) -> pd.DataFrame:
    rows = store.select_rows("segment_members", {"segment_id": segment_id}, order_by=[ID])
    return pd.DataFrame(rows, columns=["segment_id", ID, "score", "assigned_at"])[[ID, "score"]]


def _chunks(values: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def apply_members(store, segment: AnySegment, members: pd.DataFrame, now: datetime) -> SegmentChange:
    """Bring the store's members of ``segment`` to ``members``; history for joins and leaves.

    Order matters for a reader mid-way: members are written before the history that announces
    them and the segment row (with its count) last, so a count is never ahead of its members.
    """
    diff = diff_members(current_members(store, segment.id), members)
    upserts = pd.concat([diff.joined, diff.rescored], ignore_index=True)
    store.upsert(
        "segment_members",
        (
            {"segment_id": segment.id, ID: r[ID], "score": float(r["score"]), "assigned_at": now}
            for r in upserts.to_dict("records")
        ),
    )
    for chunk in _chunks(diff.left[ID].tolist(), DELETE_CHUNK):
        store.delete_rows("segment_members", {"segment_id": segment.id, ID: chunk})
    store.upsert("segment_membership_history", history_rows(segment.id, diff, now))
    size = store.count_rows("segment_members", {"segment_id": segment.id})
    store.upsert("segments", [segment_row(segment, size)])
    return SegmentChange(segment.id, size, len(diff.joined), len(diff.left), len(diff.rescored))


def retire_segments(store, keep: Iterable[str], now: datetime) -> list[SegmentChange]:
    """Remove segments no longer in the catalog: their members leave (with history), then the row.

    Without this a deleted definition would go on serving its last members to activations.
    """
    keep_ids = set(keep)
    gone = [r["segment_id"] for r in store.select_rows("segments") if r["segment_id"] not in keep_ids]
    changes = []
    for segment_id in gone:
        diff = diff_members(current_members(store, segment_id), pd.DataFrame(columns=[ID, "score"]))
        store.delete_rows("segment_members", {"segment_id": segment_id})
        store.upsert("segment_membership_history", history_rows(segment_id, diff, now))
        store.delete_rows("segments", {"segment_id": segment_id})
        changes.append(SegmentChange(segment_id, 0, 0, len(diff.left), 0))
    return changes
