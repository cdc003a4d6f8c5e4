"""Identity changes: what one publish changed, as a pure function of the state before and after.

The serving store holds the last published state; a publish replaces it with the lake's newest
resolution. :func:`identity_changes` compares the two and names, per identity, what happened
to it (the kinds of ``tables.CHANGE_KINDS``), so downstream systems that copy identities learn
which ids to re-read without diffing the store themselves. An erasure has no "after" state in
the lake yet, so :func:`erased_changes` describes it from what the erasure deleted.

Every change gets a deterministic event id (a digest of run id, identity id and kind): a
re-run of the same publish finds the same changes under the same ids, and the store's upsert
on ``event_id`` keeps one row of each.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from idr_pipeline.store.tables import ACTIVE, CHANGE_KINDS, GOLDEN_PROFILES
from idr_pipeline.store.values import converter

#: Columns of a golden record whose change makes an ``updated`` change (``record_count`` is
#: left out: a change of records is reported as records joining or leaving).
GOLDEN_CONTENT = tuple(c for c in GOLDEN_PROFILES.compare if c != "record_count")
_GOLDEN_CONVERTERS = tuple((name, converter(GOLDEN_PROFILES.column(name))) for name in GOLDEN_CONTENT)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class IdentityState:
    """What is known of identities at one point: each identity's status and ``merged_into``,
    the identity each record belongs to, and a digest of each golden record."""

    identities: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    records: Mapping[str, str] = field(default_factory=dict)
    golden: Mapping[str, str] = field(default_factory=dict)

    def records_by_identity(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for record, identity in self.records.items():
            out[identity].add(record)
        return out


@dataclass(frozen=True)
class IdentityChange:
    run_id: str
    identity_id: str
    kind: str
    related_identity_ids: tuple[str, ...] = ()
    record_ids: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def event_id(self) -> str:
        return change_event_id(self.run_id, self.identity_id, self.kind)

    def row(self) -> dict[str, Any]:
        """The ``identity_changes`` row (``seq``, ``recorded_at``, ``published_at`` are the store's)."""
        return {
            "event_id": self.event_id,
            "run_id": self.run_id,
            "identity_id": self.identity_id,
            "kind": self.kind,
            "related_identity_ids": list(self.related_identity_ids),
            "record_ids": list(self.record_ids),
            "details": dict(self.details),
        }


def change_event_id(run_id: str, identity_id: str, kind: str) -> str:
    """SHA-256 hex of the three parts, unit-separated so no two triples share a digest."""
    return hashlib.sha256("\x1f".join((run_id, identity_id, kind)).encode("utf-8")).hexdigest()


def golden_digest(row: Mapping[str, Any]) -> str:
    """A digest of a golden record's content, equal for the lake's row and the store's copy of it.

    Both sides go through the store's own value conversion (dates to ``date``, maps and lists
    to sorted-key JSON text), so a date read back as text and one read from Parquet as a date
    give one digest.
    """
    values = [conv(row.get(name), _EPOCH) for name, conv in _GOLDEN_CONVERTERS]
    text = json.dumps(values, default=str, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def identity_changes(previous: IdentityState, new: IdentityState, run_id: str) -> list[IdentityChange]:
    """One change per identity whose published state differs between ``previous`` and ``new``.

    * active in ``new`` and unknown before: ``split_from`` when some of its records belonged to
      identities that still exist (named in ``related_identity_ids``), else ``created``; its
      ``record_ids`` are all its records;
    * active before, ``merged`` now: ``merged_into`` its survivor, with the records it had;
    * active before, ``retired`` now: ``retired``, with the records it had;
    * active in both: ``updated`` when records joined or left it or its golden record changed;
      ``record_ids`` are the records that moved, ``related_identity_ids`` the identities they
      came from or went to, ``details`` says which joined, which left and whether the golden
      record changed.

    Identities absent from ``new`` are not changes of this publish (an erasure reports its own),
    nor are ids never published that are already inactive. Sorted by identity id, then kind.
    """
    before = previous.records_by_identity()
    after = new.records_by_identity()
    changes: list[IdentityChange] = []
    for identity in sorted(new.identities):
        status, merged_into = new.identities[identity]
        old = previous.identities.get(identity)
        was_active = old is not None and old[0] == ACTIVE
        records = after.get(identity, set())
        if status == ACTIVE and old is None:
            origins = {previous.records[r] for r in records if r in previous.records} - {identity}
            origins = {o for o in origins if o in new.identities}
            kind = "split_from" if origins else "created"
            changes.append(
                IdentityChange(run_id, identity, kind, tuple(sorted(origins)), tuple(sorted(records)))
            )
        elif was_active and status != ACTIVE:
            had = tuple(sorted(before.get(identity, set())))
            if status == "merged":
                related = (merged_into,) if merged_into else ()
                changes.append(IdentityChange(run_id, identity, "merged_into", related, had))
            else:
                changes.append(IdentityChange(run_id, identity, "retired", (), had))
        elif was_active and status == ACTIVE:
            had = before.get(identity, set())
            joined, left = records - had, had - records
            golden_changed = previous.golden.get(identity) != new.golden.get(identity)
            if not (joined or left or golden_changed):
                continue
            related = {previous.records[r] for r in joined if r in previous.records}
            related |= {new.records[r] for r in left if r in new.records}
            related.discard(identity)
            changes.append(
                IdentityChange(
                    run_id,
                    identity,
                    "updated",
                    tuple(sorted(related)),
                    tuple(sorted(joined | left)),
                    {
                        "joined_record_ids": sorted(joined),
                        "left_record_ids": sorted(left),
                        "golden_record_changed": golden_changed,
                    },
                )
            )
    return changes


def erased_changes(request_id: str, records_by_identity: Mapping[str, Iterable[str]]) -> list[IdentityChange]:
    """One ``erased`` change per erased identity, with the records it held; the erasure request
    id is the run id."""
    return [
        IdentityChange(request_id, identity, "erased", (), tuple(sorted(records)))
        for identity, records in sorted(records_by_identity.items())
    ]


def count_by_kind(changes: Iterable[IdentityChange | Mapping[str, Any]]) -> dict[str, int]:
    """How many changes of each kind (every kind of ``CHANGE_KINDS``, zeros included)."""
    counts = dict.fromkeys(sorted(CHANGE_KINDS), 0)
    for change in changes:
        kind = change.kind if isinstance(change, IdentityChange) else change["kind"]
        counts[kind] += 1
    return counts
