"""The ``identity_changes`` table: the outbox of the identity change feed.

A publish records its changes before it loads the store (``seq`` NULL: pending), loads, then
commits them (:func:`commit_pending` numbers them); an erasure records and commits its changes
in the transaction that deletes the identities. Readers (``GET /changes``, the Kafka publisher)
only see committed rows, in ``seq`` order. Numbers are taken under the store's write lock (SQLite's
``BEGIN IMMEDIATE``; a locking read of the highest number on the MySQL-protocol servers), so
a row committed later always gets a higher number than every row a reader has already seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.changes import GOLDEN_CONTENT, IdentityChange, IdentityState, golden_digest
from idr_pipeline.store.tables import IDENTITY_CHANGES

_TABLE = IDENTITY_CHANGES.name
#: Event ids per UPDATE batch and per IN (...) list.
_CHUNK = 1000


def record_changes(store: IdentityStore, changes: Iterable[IdentityChange]) -> int:
    """Upsert the changes as pending rows; returns how many were new or different (a second
    call with the same changes returns 0 and leaves their numbers and publish times alone)."""
    return store.upsert(_TABLE, (c.row() for c in changes))


def has_changes_of_run(store: IdentityStore, run_id: str) -> bool:
    return store.count_rows(_TABLE, {"run_id": run_id}) > 0


def commit_pending(store: IdentityStore, run_ids: Sequence[str] | None = None) -> int:
    """Number the pending changes (of ``run_ids``, or all), oldest recorded first; returns how many.

    Pending changes of a publish that failed after recording them are committed by the next
    publish: what they describe may have partly reached the store, and a consumer told twice
    can tell the two apart by run id, while one never told cannot recover.
    """
    where = "seq IS NULL"
    params: list[Any] = []
    if run_ids is not None:
        if not run_ids:
            return 0
        where += f" AND run_id IN ({', '.join([store.placeholder] * len(run_ids))})"
        params = list(run_ids)
    lock = "" if store.backend_name == "sqlite" else " FOR UPDATE"
    with store._transaction():
        top = store._query(f"SELECT COALESCE(MAX(seq), 0) FROM {_TABLE}{lock}")[0][0]
        pending = [
            row[0]
            for row in store._query(
                f"SELECT event_id FROM {_TABLE} WHERE {where} "
                "ORDER BY recorded_at, run_id, identity_id, kind, event_id",
                params,
            )
        ]
        numbered = [(int(top) + n, event_id) for n, event_id in enumerate(pending, start=1)]
        mark = store.placeholder
        for start in range(0, len(numbered), _CHUNK):
            store._executemany(
                f"UPDATE {_TABLE} SET seq = {mark} WHERE event_id = {mark}", numbered[start : start + _CHUNK]
            )
    return len(numbered)


def changes_after(store: IdentityStore, after_seq: int, limit: int) -> list[dict[str, Any]]:
    """Committed changes numbered above ``after_seq``, in order, at most ``limit``."""
    return store.select_rows(_TABLE, limit=limit, after={"seq": int(after_seq)})


def unpublished_changes(store: IdentityStore, limit: int) -> list[dict[str, Any]]:
    """Committed changes the broker has not acknowledged yet, in order, at most ``limit``."""
    return store.select_rows(_TABLE, {"published_at": None}, limit=limit, after={"seq": 0})


def mark_published(store: IdentityStore, event_ids: Sequence[str], at: datetime | None = None) -> int:
    """Stamp the changes the broker acknowledged; returns how many rows were stamped."""
    when = at or datetime.now(UTC)
    stamped = 0
    for start in range(0, len(event_ids), _CHUNK):
        stamped += store.update_rows(
            _TABLE, {"published_at": when}, {"event_id": list(event_ids[start : start + _CHUNK])}
        )
    return stamped


def published_state(store: IdentityStore) -> IdentityState:
    """The identities as the store serves them now: the "before" of the next publish."""
    identities = {
        str(i): (str(s), m)
        for i, s, m in store.query("SELECT identity_id, status, merged_into FROM identities")
    }
    records = {str(r): str(i) for r, i in store.query("SELECT record_id, identity_id FROM record_links")}
    # The stored values as they are: JSON columns hold the canonical text the digest would
    # make of them again, so decoding and re-encoding each would only cost time.
    columns = ", ".join(GOLDEN_CONTENT)
    golden = {
        str(row[0]): golden_digest(dict(zip(GOLDEN_CONTENT, row[1:], strict=True)))
        for row in store.query(f"SELECT identity_id, {columns} FROM golden_profiles")
    }
    return IdentityState(identities=identities, records=records, golden=golden)


def forget_records_of(store: IdentityStore, identity_ids: Sequence[str]) -> int:
    """Blank the record ids of every change of these (erased) identities, once the lake purge
    is done: until then they tell consumers which of their copies to delete; after it the
    store keeps no record id of an erased person. Returns how many rows were blanked."""
    ids = list(dict.fromkeys(identity_ids))
    blanked = 0
    for start in range(0, len(ids), _CHUNK):
        blanked += store.update_rows(
            _TABLE, {"record_ids": [], "details": {}}, {"identity_id": ids[start : start + _CHUNK]}
        )
    return blanked
