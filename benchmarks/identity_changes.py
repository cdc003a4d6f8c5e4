"""What the identity change feed adds to a publish: reading the store's published state and
diffing it against the new state, at a given number of identities.

A SQLite store (or ``--store-url``) is filled with N identities of two records each and their
golden records; the new state merges 1% of them pairwise, splits 1%, changes the golden record
of 2% and adds 1% new people. Printed: seconds to read the published state, seconds of the pure
diff, changes per kind, and seconds to record and commit them.

    .venv/bin/python benchmarks/identity_changes.py --identities 100000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from idr_pipeline.store import open_store
from idr_pipeline.store.change_log import commit_pending, published_state, record_changes
from idr_pipeline.store.changes import IdentityState, count_by_kind, golden_digest, identity_changes


def _golden(i: int, name: str) -> dict:
    return {
        "identity_id": f"id-{i:08d}",
        "first_name": name,
        "last_name": f"Last{i}",
        "dob": "1980-02-03",
        "identifiers": {"email": [f"p{i}@x.com"]},
        "sources": ["crm", "web"],
        "record_count": 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--identities", type=int, default=100_000)
    parser.add_argument("--store-url", default="")
    args = parser.parse_args()
    n = args.identities
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store_url or f"sqlite:///{Path(tmp) / 'store.db'}"
        with open_store(url) as store:
            store.ensure_schema()
            store.upsert_identities(
                {"identity_id": f"id-{i:08d}", "status": "active", "record_count": 2} for i in range(n)
            )
            store.upsert_record_links(
                {"record_id": f"r-{i}-{k}", "identity_id": f"id-{i:08d}", "source": "crm"}
                for i in range(n)
                for k in (0, 1)
            )
            store.upsert_golden_profiles(_golden(i, f"Name{i}") for i in range(n))

            started = time.perf_counter()
            previous = published_state(store)
            read_s = time.perf_counter() - started

            identities = dict(previous.identities)
            records = dict(previous.records)
            golden = dict(previous.golden)
            step = 100
            for i in range(0, n - 1, step):  # 1%: identity i+1 merges into i
                merged, survivor = f"id-{i + 1:08d}", f"id-{i:08d}"
                identities[merged] = ("merged", survivor)
                for k in (0, 1):
                    records[f"r-{i + 1}-{k}"] = survivor
            for i in range(50, n, step):  # 1%: a record splits off into a new identity
                identities[f"new-{i}"] = ("active", None)
                records[f"r-{i}-1"] = f"new-{i}"
            for i in range(25, n, 50):  # 2%: the golden record changes
                golden[f"id-{i:08d}"] = golden_digest(_golden(i, f"Renamed{i}"))
            for i in range(n, n + n // 100):  # 1%: new people
                identities[f"id-{i:08d}"] = ("active", None)
                records[f"r-{i}-0"] = f"id-{i:08d}"
            new = IdentityState(identities=identities, records=records, golden=golden)

            started = time.perf_counter()
            changes = identity_changes(previous, new, "bench")
            diff_s = time.perf_counter() - started

            started = time.perf_counter()
            record_changes(store, changes)
            commit_pending(store)
            write_s = time.perf_counter() - started
            backend = store.backend_name

    print(f"backend: {backend}; identities: {n}; records: {2 * n}")
    print(f"read published state: {read_s:.2f} s")
    print(f"diff (pure function): {diff_s:.2f} s")
    print(f"record + commit {len(changes)} changes: {write_s:.2f} s")
    print("changes by kind:", count_by_kind(changes))


if __name__ == "__main__":
    main()
