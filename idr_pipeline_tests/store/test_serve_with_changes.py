"""A publish records the identity changes it makes: lake states loaded through Spark into both stores.

Real parts: local Spark reads the lake folder (as ``served_identities`` does) and the load
goes into SQLite or MariaDB. The lake's resolution datasets are written by hand, two states
apart by a merge, a split, a golden record change and a new person, so the changes expected
are known exactly.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from idr_pipeline.core.catalog import GOLDEN, IDENTIFIERS, LINKS, MERGES, REGISTRY
from idr_pipeline.core.lake import Lake
from idr_pipeline.store import IdentityStore, steps
from idr_pipeline.store.change_log import changes_after
from idr_pipeline.store.steps import serve_with_changes

GOLDEN_SCHEMA = pa.schema(
    [
        ("identity_id", pa.string()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("dob", pa.date32()),
        ("identifiers", pa.map_(pa.string(), pa.list_(pa.string()))),
        ("sources", pa.list_(pa.string())),
        ("record_count", pa.int64()),
        ("updated_at", pa.string()),
    ]
)


def _write_state(lake: Lake, people: dict[str, dict], merged: dict[str, str]) -> None:
    """people: identity -> {"records": [...], "name": first name}; merged: merged id -> survivor."""
    registry = [
        {"identity_id": i, "created_at": "2026-01-01", "status": "active", "merged_into": None,
         "record_count": len(p["records"]), "updated_at": "2026-01-01"}
        for i, p in people.items()
    ] + [
        {"identity_id": m, "created_at": "2025-12-01", "status": "merged", "merged_into": s,
         "record_count": 0, "updated_at": "2026-01-02"}
        for m, s in merged.items()
    ]  # fmt: skip
    lake.write_pandas_version(
        pa.Table.from_pylist(
            registry,
            pa.schema([(c, pa.int64() if c == "record_count" else pa.string()) for c in registry[0]]),
        ),
        *REGISTRY,
    )
    links = [
        {"record_id": r, "identity_id": i, "source": "crm"} for i, p in people.items() for r in p["records"]
    ]
    lake.write_pandas_version(pd.DataFrame(links), *LINKS)
    golden = [
        {"identity_id": i, "first_name": p["name"], "last_name": "Doe", "dob": pd.Timestamp("1980-02-03").date(),
         "identifiers": [("email", [f"{p['name'].lower()}@x.com"])], "sources": ["crm"],
         "record_count": len(p["records"]), "updated_at": "2026-01-01"}
        for i, p in people.items()
    ]  # fmt: skip
    lake.write_pandas_version(pa.Table.from_pylist(golden, GOLDEN_SCHEMA), *GOLDEN)
    identifiers = [
        {"id_type": "email", "id_value": f"{p['name'].lower()}@x.com", "identity_id": i}
        for i, p in people.items()
    ]
    lake.write_pandas_version(pd.DataFrame(identifiers), *IDENTIFIERS)
    merges = [
        {"merged_id": m, "survivor_id": s, "reason": "components_joined", "merged_at": "2026-01-02"}
        for m, s in merged.items()
    ]
    lake.write_pandas_version(
        pa.Table.from_pylist(merges, pa.schema([(c, pa.string()) for c in ("merged_id", "survivor_id", "reason", "merged_at")])),
        *MERGES,
    )  # fmt: skip


FIRST = {
    "A": {"records": ["a1", "a2"], "name": "Ann"},
    "B": {"records": ["b1"], "name": "Bob"},
    "C": {"records": ["c1"], "name": "Cat"},
    "E": {"records": ["e1"], "name": "Eve"},
}
SECOND = {
    "A": {"records": ["a1"], "name": "Ann"},  # a2 split off into N
    "N": {"records": ["a2"], "name": "Ned"},
    "C": {"records": ["c1", "b1"], "name": "Cat"},  # B merged into C
    "E": {"records": ["e1"], "name": "Evelyn"},  # golden record changed
    "F": {"records": ["f1"], "name": "Fay"},  # new
}


def _kinds(rows: list[dict]) -> dict[str, str]:
    return {r["identity_id"]: r["kind"] for r in rows}


def test_a_publish_records_its_changes_and_a_rerun_records_none(
    store: IdentityStore, spark, tmp_path
) -> None:
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    _write_state(lake, FIRST, {})
    _, first = serve_with_changes(lake, store)
    assert first.by_kind["created"] == 4 and first.committed == 4
    assert _kinds(changes_after(store, 0, 100)) == dict.fromkeys(FIRST, "created")

    # The same lake state again: no new event, however often it is published.
    _, again = serve_with_changes(lake, store)
    assert again.run_id == first.run_id and again.committed == 0
    assert len(changes_after(store, 0, 100)) == 4

    _write_state(lake, SECOND, {"B": "C"})
    _, second = serve_with_changes(lake, store)
    assert second.run_id != first.run_id
    rows = changes_after(store, 4, 100)
    assert _kinds(rows) == {
        "A": "updated",
        "B": "merged_into",
        "C": "updated",
        "E": "updated",
        "F": "created",
        "N": "split_from",
    }
    assert second.committed == 6 and second.by_kind["updated"] == 3
    by_id = {r["identity_id"]: r for r in rows}
    assert by_id["B"]["related_identity_ids"] == ["C"] and by_id["B"]["record_ids"] == ["b1"]
    assert by_id["N"]["related_identity_ids"] == ["A"]
    assert by_id["E"]["details"]["golden_record_changed"] is True
    # Loading the same records again did not count as a golden change for A and C.
    assert by_id["A"]["details"]["golden_record_changed"] is False
    assert by_id["C"]["details"] == {
        "joined_record_ids": ["b1"],
        "left_record_ids": [],
        "golden_record_changed": False,
    }
    assert all(r["run_id"] == second.run_id for r in rows)

    event_ids = {r["event_id"] for r in changes_after(store, 0, 100)}
    _, rerun = serve_with_changes(lake, store)
    assert rerun.committed == 0
    assert {r["event_id"] for r in changes_after(store, 0, 100)} == event_ids


def test_a_publish_that_failed_after_recording_commits_its_changes_on_the_next_attempt(
    store: IdentityStore, spark, tmp_path, monkeypatch
) -> None:
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    _write_state(lake, FIRST, {})

    # The one stand-in: a load that dies after writing part of the store (a crash cannot be
    # timed inside the real load from a test).
    def broken_load(lake: Lake, store: IdentityStore, commit_rows: int = 0, nice: int = 0) -> None:
        store.upsert_identities([{"identity_id": "A", "status": "active", "record_count": 2}])
        raise RuntimeError("the store went away mid-load")

    real_load = steps.load_store
    monkeypatch.setattr(steps, "load_store", broken_load)
    try:
        serve_with_changes(lake, store)
    except RuntimeError:
        pass
    assert changes_after(store, 0, 100) == []  # recorded, not committed
    monkeypatch.setattr(steps, "load_store", real_load)
    _, retry = serve_with_changes(lake, store)
    # Not diffed against the half-loaded store (A would be missing): the recorded changes commit.
    assert retry.committed == 4
    assert _kinds(changes_after(store, 0, 100)) == dict.fromkeys(FIRST, "created")
