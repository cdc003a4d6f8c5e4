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

import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

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

T = TypeVar("T")


def at_lower_priority(nice: int, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a thread of its own whose CPU priority is lowered by ``nice``.

    On Linux a nice value belongs to a thread, so only that thread yields the CPU, and it ends
    with the call: the caller's priority is never changed (raising it back would need a
    privilege). Elsewhere, or with ``nice`` 0, ``fn`` runs as it is.
    """
    if nice <= 0 or not sys.platform.startswith("linux"):
        return fn(*args)

    def lowered() -> T:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + nice))
        return fn(*args)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-publish") as pool:
        return pool.submit(lowered).result()


def publish_identities(
    store: IdentityStore, tables: Mapping[str, Iterable[Row]], commit_rows: int, nice: int = 0
) -> dict[str, Any]:
    """Write ``tables`` (table name -> rows, those of :data:`UPSERTED` grouped by its column)
    and prune what no longer holds; returns the rows changed or deleted per table.

    ``commit_rows`` is the size of a transaction (see ``IdentityStore.upsert``); 0 means one
    transaction per table. Rows of a table absent from ``tables`` are left as they are.
    ``nice`` > 0 runs the publish at that much lower CPU priority (:func:`at_lower_priority`):
    its Python work (reading the rows, converting them, finding what changed) takes about a
    core, and on a host it shares with the API (always, with the embedded SQLite store) it
    would otherwise take the cores the API's answers wait for.
    """
    return at_lower_priority(nice, _publish, store, tables, commit_rows)


def _publish(store: IdentityStore, tables: Mapping[str, Iterable[Row]], commit_rows: int) -> dict[str, Any]:
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
