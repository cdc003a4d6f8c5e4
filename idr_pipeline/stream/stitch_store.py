"""Writing an incremental batch's delta to the serving store: only the rows it changed.

Identifier nodes map one-to-one onto the store's ``identifiers`` rows (the node kind is the
store's ``id_type``), record nodes onto ``record_links``. Merged-away identities also hold
identifiers the graph does not carry (phone, national id, raw e-mail), so before
``prune_inactive`` drops their look-up rows those rows are re-pointed at the survivor: a merge
must not make a person unfindable by phone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import pandas as pd

from idr_pipeline.graph.incremental.state import RECORD, Delta, GraphState, split_key
from idr_pipeline.store.base import IdentityStore


def _records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    for row in frame.itertuples(index=False):
        yield row._asdict()


def apply_delta(
    store: IdentityStore,
    state: GraphState,
    deltas: Iterable[Delta],
    merged_at: str | None = None,
    extra_identifiers: pd.DataFrame | None = None,
) -> dict[str, int]:
    """Upsert the identities, record links, identifiers and merges of ``deltas``; prune.

    ``extra_identifiers`` (record_id, id_type, id_value): identifiers of new records that are
    not graph nodes (phone, e-mail as written, national id), stored under each record's
    identity so look-ups by them work at once. Returns rows changed per table.
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

    changed = {
        "identities": store.upsert_identities(_records(identities)),
        "record_links": store.upsert_record_links(_records(links)),
        "identifiers": store.upsert_identifiers(_records(identifiers)),
        "merge_history": store.record_merges(_records(merges)),
    }
    changed["repointed_identifiers"] = _repoint_identifiers(store, state, merges)
    changed.update({f"pruned_{table}": n for table, n in store.prune_inactive().items()})
    return changed


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
