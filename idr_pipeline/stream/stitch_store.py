"""Writing an incremental batch's delta to the serving store: only the rows it changed.

Identifier nodes map one-to-one onto the store's ``identifiers`` rows (the node kind is the
store's ``id_type``), record nodes onto ``record_links``. Merged-away identities also hold
identifiers the graph does not carry (phone, national id, raw e-mail), so before
``prune_inactive`` drops their look-up rows those rows are re-pointed at the survivor: a merge
must not make a person unfindable by phone.

The identity changes a batch makes (``store.changes``) are recorded for the change feed in the
same way a batch publish records them: diffed before the write, committed after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import pandas as pd

from idr_pipeline.graph.incremental.state import RECORD, Delta, GraphState, split_key
from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.change_log import commit_pending, has_changes_of_run, record_changes
from idr_pipeline.store.changes import IdentityState, count_by_kind, identity_changes


def _records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    for row in frame.itertuples(index=False):
        yield row._asdict()


def apply_delta(
    store: IdentityStore,
    state: GraphState,
    deltas: Iterable[Delta],
    merged_at: str | None = None,
    extra_identifiers: pd.DataFrame | None = None,
    run_id: str | None = None,
) -> dict[str, int]:
    """Upsert the identities, record links, identifiers and merges of ``deltas``; prune.

    ``extra_identifiers`` (record_id, id_type, id_value): identifiers of new records that are
    not graph nodes (phone, e-mail as written, national id), stored under each record's
    identity so look-ups by them work at once. With ``run_id`` (the same for a replay of the
    same batch) the identity changes are recorded and committed around the writes; their counts
    are in the result as ``identity_changes_<kind>``. Returns rows changed per table.
    """
    deltas = list(deltas)
    assignments = pd.concat([d.assignments for d in deltas], ignore_index=True).drop_duplicates(
        "node", keep="last"
    )
    # The final identity of each node, whatever batch moved it last.
    assignments["identity_id"] = [state.identity_of(n) for n in assignments.node]
    kinds = assignments.node.map(lambda k: split_key(k)[0])
    values = assignments.node.map(lambda k: split_key(k)[1])
    is_record = kinds == RECORD
    links = pd.DataFrame(
        {
            "record_id": values[is_record],
            "identity_id": assignments.identity_id[is_record],
            "source": [state.sources[state.index[n]] for n in assignments.node[is_record]],
        }
    )
    identifiers = pd.DataFrame(
        {
            "id_type": kinds[~is_record],
            "id_value": values[~is_record],
            "identity_id": assignments.identity_id[~is_record],
        }
    )
    if extra_identifiers is not None and len(extra_identifiers):
        owner = extra_identifiers.record_id.map(lambda r: state.identity_of(f"{RECORD}:{r}"))
        extra = extra_identifiers.assign(identity_id=owner)[["id_type", "id_value", "identity_id"]]
        identifiers = pd.concat([identifiers, extra[extra.identity_id.notna()]], ignore_index=True)

    registry = state.registry()
    touched = pd.concat([d.identities.identity_id for d in deltas]).unique()
    identities = registry[registry.identity_id.isin(touched)][
        ["identity_id", "status", "merged_into", "created_at", "record_count"]
    ].copy()
    merges = pd.concat([d.merges for d in deltas], ignore_index=True)
    if merged_at is not None:
        merges = merges.assign(merged_at=merged_at)
    # created_at is insert-only in the store, so an identity first written by the batch keeps its time.
    identities["created_at"] = identities.created_at.map(_timestamp_or_none)

    changes_by_kind: dict[str, int] = {}
    if run_id is not None and not has_changes_of_run(store, run_id):
        changes = identity_changes(
            _stored_state(store, list(identities.identity_id), list(links.record_id)),
            _batch_state(store, identities, links),
            run_id,
        )
        record_changes(store, changes)
        changes_by_kind = count_by_kind(changes)

    changed = {
        "identities": store.upsert_identities(_records(identities)),
        "record_links": store.upsert_record_links(_records(links)),
        "identifiers": store.upsert_identifiers(_records(identifiers)),
        "merge_history": store.record_merges(_records(merges)),
    }
    changed["repointed_identifiers"] = _repoint_identifiers(store, state, merges)
    changed.update({f"pruned_{table}": n for table, n in store.prune_inactive().items()})
    if run_id is not None:
        changed["identity_changes_committed"] = commit_pending(store, [run_id])
        changed.update({f"identity_changes_{kind}": n for kind, n in changes_by_kind.items()})
    return changed


def _stored_state(store: IdentityStore, identity_ids: list[str], record_ids: list[str]) -> IdentityState:
    """What the store serves of the batch's identities and records before the batch is written.

    Golden records are left out on both sides: the stream writes none.
    """
    identities: dict[str, tuple[str, str | None]] = {}
    records: dict[str, str] = {}
    for start in range(0, len(identity_ids), 1000):
        chunk = identity_ids[start : start + 1000]
        for row in store.select_rows("identities", {"identity_id": chunk}):
            identities[row["identity_id"]] = (row["status"], row["merged_into"])
        for row in store.select_rows("record_links", {"identity_id": chunk}):
            records[row["record_id"]] = row["identity_id"]
    for start in range(0, len(record_ids), 1000):
        for row in store.select_rows("record_links", {"record_id": record_ids[start : start + 1000]}):
            records[row["record_id"]] = row["identity_id"]
    return IdentityState(identities=identities, records=records)


def _batch_state(store: IdentityStore, identities: pd.DataFrame, links: pd.DataFrame) -> IdentityState:
    """The batch's identities as they will be served after it: their new status, and the records
    they hold (the store's records of them, moved by the batch's links)."""
    statuses = {
        str(i): (str(s), None if pd.isna(m) else str(m))
        for i, s, m in zip(identities.identity_id, identities.status, identities.merged_into, strict=True)
    }
    ids = list(statuses)
    records: dict[str, str] = {}
    for start in range(0, len(ids), 1000):
        for row in store.select_rows("record_links", {"identity_id": ids[start : start + 1000]}):
            records[row["record_id"]] = row["identity_id"]
    records.update(zip(links.record_id.astype(str), links.identity_id.astype(str), strict=True))
    return IdentityState(identities=statuses, records=records)


def _timestamp_or_none(value: object) -> datetime | None:
    """The store's datetime, or None so the store stamps the load time."""
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def final_survivor(state: GraphState, identity_id: str) -> str:
    """Follow ``merged_into`` to the active identity: a merged id may have merged again since."""
    seen = {identity_id}
    slot = state.id_slot[identity_id]
    while state.merged_into[slot] is not None and state.status[slot] != "active":
        identity_id = state.merged_into[slot]
        if identity_id in seen:
            break
        seen.add(identity_id)
        slot = state.id_slot[identity_id]
    return identity_id


def _repoint_identifiers(store: IdentityStore, state: GraphState, merges: pd.DataFrame) -> int:
    """Copy every identifier row of a merged-away identity to its (final) survivor."""
    if merges.empty:
        return 0
    survivor = {m: final_survivor(state, m) for m in merges.merged_id.unique()}
    merged = list(survivor)
    changed = 0
    for start in range(0, len(merged), 1000):
        rows = store.select_rows("identifiers", {"identity_id": merged[start : start + 1000]})
        changed += store.upsert_identifiers({**r, "identity_id": survivor[r["identity_id"]]} for r in rows)
    return changed
