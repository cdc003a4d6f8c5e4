"""The publisher of ``api_load.py --during-publish``: N changed identities through the store's
publish path, in a process of its own (as ``served_identities`` runs in Dagster's, not the API's).

    PYTHONPATH=<code> .venv/bin/python benchmarks/publish_worker.py --store-url URL --identities N

It imports the project from ``PYTHONPATH`` first, so ``api_load.py`` can run the same publish
with an earlier commit's code (``--code before=DIR``). Where that code has no
``idr_pipeline.store.publish`` the worker makes the calls ``load_store`` made there, in its
order: one upsert per table, each one transaction, then ``prune_inactive``.

Prints ``publishing`` when it starts writing and ``published <seconds> <changed>`` at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from api_load_people import identity_id, publish_tables

from idr_pipeline.standardize import email_match_key
from idr_pipeline.store import open_store

try:
    from idr_pipeline.store.publish import publish_identities
except ImportError:  # code before bounded publishes
    publish_identities = None


def legacy_publish(store, tables: dict) -> dict:
    """What ``load_store`` did before ``publish_identities``: one transaction per table."""
    changed = {
        "identities": store.upsert_identities(tables["identities"]),
        "record_links": store.upsert_record_links(tables["record_links"]),
        "golden_profiles": store.upsert_golden_profiles(tables["golden_profiles"]),
        "identifiers": store.upsert_identifiers(tables["identifiers"]),
        "merge_history": store.record_merges(tables["merge_history"]),
    }
    changed.update({f"pruned_{t}": n for t, n in store.prune_inactive().items()})
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store-url", required=True)
    parser.add_argument("--identities", type=int, default=100_000)
    parser.add_argument(
        "--commit-rows", type=int, default=int(os.environ.get("IDR_STORE_PUBLISH_COMMIT_ROWS", 5000))
    )
    parser.add_argument("--nice", type=int, default=int(os.environ.get("IDR_STORE_PUBLISH_NICE", 10)))
    args = parser.parse_args()
    store = open_store(args.store_url)
    # Every publish changes every identity: the record count moves to the next of 1..9.
    current = store.select_rows("identities", {"identity_id": identity_id(0)})
    generation = (current[0]["record_count"] % 9 + 1) if current else 1
    tables = publish_tables(args.identities, generation, email_match_key)
    print("publishing", flush=True)
    started = time.perf_counter()
    if publish_identities is not None:
        changed = publish_identities(store, tables, args.commit_rows, args.nice)
    else:
        changed = legacy_publish(store, tables)
    print(f"published {time.perf_counter() - started:.1f} {json.dumps(changed)}", flush=True)
    store.close()


if __name__ == "__main__":
    main()
