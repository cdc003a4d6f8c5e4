"""Identity changes: the pure diff of two states, and the outbox table on SQLite and MariaDB."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date

import pytest

from idr_pipeline.store import IdentityStore, open_store
from idr_pipeline.store.change_log import (
    changes_after,
    commit_pending,
    forget_records_of,
    has_changes_of_run,
    mark_published,
    published_state,
    record_changes,
    unpublished_changes,
)
from idr_pipeline.store.changes import (
    IdentityChange,
    IdentityState,
    change_event_id,
    count_by_kind,
    erased_changes,
    golden_digest,
    identity_changes,
)
from idr_pipeline.store.stream_state import single_transaction
from idr_pipeline_tests.services_fixtures import throwaway_database

ACTIVE = ("active", None)


def _state(identities: dict, records: dict, golden: dict | None = None) -> IdentityState:
    return IdentityState(identities=identities, records=records, golden=golden or {})


def test_every_kind_of_change_is_named_once_per_identity() -> None:
    previous = _state(
        {"A": ACTIVE, "B": ACTIVE, "C": ACTIVE, "D": ACTIVE, "E": ACTIVE, "G": ACTIVE},
        {"a1": "A", "a2": "A", "b1": "B", "c1": "C", "d1": "D", "e1": "E", "g1": "G"},
        {"A": "ga", "B": "gb", "C": "gc", "D": "gd", "E": "ge", "G": "gg"},
    )
    new = _state(
        {
            "A": ACTIVE,
            "N": ACTIVE,  # a2 split off A
            "B": ("merged", "C"),
            "C": ACTIVE,
            "D": ("retired", None),
            "E": ACTIVE,  # same record, new golden record
            "F": ACTIVE,  # new records only
            "G": ACTIVE,  # unchanged
        },
        {"a1": "A", "a2": "N", "b1": "C", "c1": "C", "e1": "E", "f1": "F", "g1": "G"},
        {"A": "ga", "N": "gn", "C": "gc2", "E": "ge2", "F": "gf", "G": "gg"},
    )
    changes = {c.identity_id: c for c in identity_changes(previous, new, "run-1")}
    assert sorted(changes) == ["A", "B", "C", "D", "E", "F", "N"]
    assert (changes["N"].kind, changes["N"].related_identity_ids, changes["N"].record_ids) == (
        "split_from",
        ("A",),
        ("a2",),
    )
    assert changes["A"].kind == "updated"
    assert changes["A"].details == {
        "joined_record_ids": [],
        "left_record_ids": ["a2"],
        "golden_record_changed": False,
    }
    assert changes["A"].related_identity_ids == ("N",)
    assert (changes["B"].kind, changes["B"].related_identity_ids, changes["B"].record_ids) == (
        "merged_into",
        ("C",),
        ("b1",),
    )
    assert changes["C"].kind == "updated" and changes["C"].details["joined_record_ids"] == ["b1"]
    assert changes["C"].related_identity_ids == ("B",)
    assert (changes["D"].kind, changes["D"].record_ids) == ("retired", ("d1",))
    assert changes["E"].kind == "updated" and changes["E"].details == {
        "joined_record_ids": [],
        "left_record_ids": [],
        "golden_record_changed": True,
    }
    assert (changes["F"].kind, changes["F"].record_ids, changes["F"].related_identity_ids) == (
        "created",
        ("f1",),
        (),
    )
    assert count_by_kind(changes.values()) == {
        "created": 1,
        "erased": 0,
        "merged_into": 1,
        "retired": 1,
        "split_from": 1,
        "updated": 3,
    }


def test_the_same_states_give_no_changes_and_the_same_run_gives_the_same_event_ids() -> None:
    state = _state({"A": ACTIVE}, {"a1": "A"}, {"A": "g"})
    assert identity_changes(state, state, "run-1") == []
    first = identity_changes(IdentityState(), state, "run-1")
    again = identity_changes(IdentityState(), state, "run-1")
    other = identity_changes(IdentityState(), state, "run-2")
    assert [c.event_id for c in first] == [c.event_id for c in again]
    assert first[0].event_id != other[0].event_id
    assert first[0].event_id == change_event_id("run-1", "A", "created")
    # The separator keeps ("a", "bc") and ("ab", "c") apart.
    assert change_event_id("a", "bc", "created") != change_event_id("ab", "c", "created")


def test_golden_digest_is_the_same_for_the_lakes_row_and_the_stores_copy() -> None:
    lake_row = {
        "first_name": "Ann",
        "dob": date(1980, 2, 3),
        "identifiers": {"email": ["ann@x.com"], "phone": ["+1"]},
        "sources": ["crm", "web"],
        "record_count": 2,
    }
    store_row = {
        "first_name": "Ann",
        "dob": "1980-02-03",
        "identifiers": {"phone": ["+1"], "email": ["ann@x.com"]},
        "sources": ["crm", "web"],
        "record_count": 3,  # records are reported as records joining or leaving, not here
        "updated_at": "2026-01-01 00:00:00",
    }
    assert golden_digest(lake_row) == golden_digest(store_row)
    assert golden_digest(lake_row) != golden_digest({**lake_row, "first_name": "Anne"})


def _changes(run: str, *ids: str) -> list[IdentityChange]:
    return [IdentityChange(run, i, "created", (), (f"r-{i}",)) for i in ids]


def test_the_outbox_upserts_on_event_id_and_numbers_changes_in_commit_order(store: IdentityStore) -> None:
    assert record_changes(store, _changes("run-1", "B", "A")) == 2
    assert record_changes(store, _changes("run-1", "B", "A")) == 0
    assert has_changes_of_run(store, "run-1") and not has_changes_of_run(store, "run-2")
    # Pending changes are not served.
    assert changes_after(store, 0, 10) == [] and unpublished_changes(store, 10) == []
    record_changes(store, _changes("run-2", "C"))
    # An erasure commits only its own run; the publish's pending rows stay pending.
    assert commit_pending(store, ["run-2"]) == 1
    assert [r["identity_id"] for r in changes_after(store, 0, 10)] == ["C"]
    assert commit_pending(store) == 2
    assert commit_pending(store) == 0
    rows = changes_after(store, 0, 10)
    assert [(r["seq"], r["identity_id"]) for r in rows] == [(1, "C"), (2, "A"), (3, "B")]
    assert rows[1]["record_ids"] == ["r-A"] and rows[1]["run_id"] == "run-1"
    assert [r["identity_id"] for r in changes_after(store, 1, 1)] == ["A"]
    # Recording the same changes again keeps their numbers.
    record_changes(store, _changes("run-1", "A", "B"))
    assert [(r["seq"], r["identity_id"]) for r in changes_after(store, 0, 10)] == [
        (1, "C"),
        (2, "A"),
        (3, "B"),
    ]

    assert [r["event_id"] for r in unpublished_changes(store, 10)] == [r["event_id"] for r in rows]
    assert mark_published(store, [rows[0]["event_id"]]) == 1
    assert [r["identity_id"] for r in unpublished_changes(store, 10)] == ["A", "B"]
    assert changes_after(store, 0, 1)[0]["published_at"] is not None


def test_erased_changes_keep_record_ids_until_the_purge_forgets_them(store: IdentityStore) -> None:
    record_changes(store, erased_changes("req-1", {"X": ["x2", "x1"]}))
    commit_pending(store, ["req-1"])
    (row,) = changes_after(store, 0, 10)
    assert (row["kind"], row["record_ids"], row["run_id"]) == ("erased", ["x1", "x2"], "req-1")
    assert forget_records_of(store, ["X"]) == 1
    assert changes_after(store, 0, 10)[0]["record_ids"] == []


def test_published_state_reads_what_the_store_serves(store: IdentityStore) -> None:
    store.upsert_identities(
        [
            {"identity_id": "A", "status": "active", "record_count": 1},
            {"identity_id": "B", "status": "merged", "merged_into": "A", "record_count": 0},
        ]
    )
    store.upsert_record_links([{"record_id": "a1", "identity_id": "A", "source": "crm"}])
    golden = {"identity_id": "A", "first_name": "Ann", "dob": "1980-02-03", "identifiers": {"email": ["a@x"]}}
    store.upsert_golden_profiles([golden])
    state = published_state(store)
    assert state.identities == {"A": ("active", None), "B": ("merged", "A")}
    assert state.records == {"a1": "A"}
    assert state.golden == {"A": golden_digest({**golden, "dob": date(1980, 2, 3)})}


@pytest.mark.parametrize("kind", ["created", "nonsense"])
def test_the_table_refuses_an_unknown_kind(store: IdentityStore, kind: str) -> None:
    change = IdentityChange("run-1", "A", kind)
    if kind == "nonsense":
        with pytest.raises(ValueError, match="kind"):
            record_changes(store, [change])
    else:
        assert record_changes(store, [change]) == 1


@pytest.fixture(params=["sqlite", "mariadb"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A store URL with its schema created, for tests that open several connections."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'store.db'}"
        else:
            url = stack.enter_context(throwaway_database(request.getfixturevalue("mariadb_url")))
        with open_store(url) as store:
            store.ensure_schema()
        yield url


def test_a_commit_waiting_on_another_is_numbered_after_it(store_url: str) -> None:
    """Two writers commit at once (an erasure while a publish commits): the second waits for
    the first's lock and numbers its changes after the first's, so no reader can have passed a
    number a later commit then takes."""
    with open_store(store_url) as first, open_store(store_url) as second:
        record_changes(first, _changes("publish", "A"))
        record_changes(second, _changes("erasure", "B"))
        with single_transaction(first):
            commit_pending(first, ["publish"])
            waiting = threading.Thread(target=commit_pending, args=(second, ["erasure"]))
            waiting.start()
            # Give the second writer time to reach the lock while the first still holds it.
            time.sleep(1.0)
        waiting.join(timeout=60)
        assert not waiting.is_alive()
        assert [(r["seq"], r["identity_id"]) for r in changes_after(first, 0, 10)] == [(1, "A"), (2, "B")]
