"""Publishing resolved identities into the serving store, in bounded transactions.

``publish_identities`` is the store half of ``served_identities`` (``steps.load_store`` hands
it the lake's tables as row iterators): the identities, their record links, golden profiles,
identifiers and merges, the kept match links, the review tables, then the pruning of look-up
rows of identities that are no longer active.

Each upserted table is written in transactions of about ``commit_rows`` rows that end only
between two identities (the rows arrive grouped by identity), so a reader sees each table's
rows of one identity all old or all new. No transaction holds SQLite's write lock, the
servers' row locks or a growing undo log or SQLite write-ahead log for a whole table (and for
the Spark iteration feeding it), so other writers (the API's, the stream service) wait at
most for one batch. What a reader may see in the middle of a publish is described in
docs/api.md ("Reads during a publish"). ``commit_rows`` 0 writes each table in one
transaction instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from idr_pipeline.store.base import IdentityStore, Row

#: Upserted tables in the order they are published, each with the column its rows are grouped
#: by: a transaction never ends between two rows with the same value there.
UPSERTED: dict[str, str] = {
    "identities": "identity_id",
    "record_links": "identity_id",
    "golden_profiles": "identity_id",
    "identifiers": "identity_id",
    "merge_history": "survivor_id",
    "match_links": "identity_id",
}
#: Tables the publish replaces: rows the load does not name are deleted.
REPLACED: tuple[str, ...] = ("possible_matches", "shared_identifiers")


def publish_identities(
    store: IdentityStore, tables: Mapping[str, Iterable[Row]], commit_rows: int
) -> dict[str, Any]:
    """Write ``tables`` (table name -> rows, those of :data:`UPSERTED` grouped by its column)
    and prune what no longer holds; returns the rows changed or deleted per table.

    ``commit_rows`` is the size of a transaction (see ``IdentityStore.upsert``); 0 means one
    transaction per table. Rows of a table absent from ``tables`` are left as they are.
    """
    unknown = sorted(set(tables) - set(UPSERTED) - set(REPLACED))
    if unknown:
        raise ValueError(f"publish_identities does not write {unknown}")
    if commit_rows < 0:
        raise ValueError(f"commit_rows must be 0 (one transaction per table) or more, got {commit_rows}")
    bounded = commit_rows or None
    changed: dict[str, Any] = {}
    for table, group in UPSERTED.items():
        if table in tables:
            changed[table] = store.upsert(table, tables[table], commit_rows=bounded, group_by=group)
    if "match_links" in tables:
        changed["pruned_match_links"] = store.prune_match_links()
    for table in REPLACED:
        if table in tables:
            changed[table], changed[f"pruned_{table}"] = store.replace_rows(
                table, tables[table], commit_rows=bounded
            )
    # A merged or retired identity must stop answering look-ups in the same load.
    changed.update({f"pruned_{table}": n for table, n in store.prune_inactive().items()})
    return changed
