"""Stitching streamed profiles and identify events into the serving store, on SQLite and MariaDB."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from idr_pipeline.core.tombstones import Tombstones, tombstone_digest
from idr_pipeline.graph.incremental.persist import StateStore
from idr_pipeline.store import IdentityStore
from idr_pipeline.store.change_log import changes_after
from idr_pipeline.stream.stitch import (
    bootstrap_from_lake,
    load_state,
    stitch_batch,
    stitched_share,
    store_resolver,
)

# The batch's output: two people, resolved on Monday (web account u1) and Tuesday (a shop
# record with a cookie and a phone).
LINKS = pd.DataFrame(
    {"record_id": ["web-1", "shop-9"], "identity_id": ["idr_old", "idr_new"], "source": ["web", "shop"]}
)
REGISTRY = pd.DataFrame(
    {
        "identity_id": ["idr_old", "idr_new"],
        "created_at": ["2024-01-01T00:00:00.000000Z", "2024-01-02T00:00:00.000000Z"],
        "status": "active",
        "merged_into": None,
        "record_count": 1,
    }
)
IDENTIFIERS = pd.DataFrame(
    {
        "id_type": ["source_customer_key", "email_key", "anonymous_id", "phone"],
        "id_value": ["web:u1", "ann@x.com", "c9", "+15550001"],
        "identity_id": ["idr_old", "idr_old", "idr_new", "idr_new"],
    }
)
NOW = "2024-02-01T00:00:00.000000Z"


def _load_batch_output(db: IdentityStore) -> None:
    """What the batch serving step writes, so the stream starts from a loaded store."""
    db.upsert_identities(REGISTRY.drop(columns="created_at").to_dict("records"))
    db.upsert_record_links(LINKS.to_dict("records"))
    db.upsert_identifiers(IDENTIFIERS.to_dict("records"))


@pytest.fixture
def state_dir(tmp_path: Path) -> str:
    """A state folder bootstrapped from the batch output above (the lake's role)."""
    from idr_pipeline.graph.incremental.state import bootstrap_state

    folder = str(tmp_path / "graph")
    StateStore(folder).save_snapshot(bootstrap_state(LINKS, REGISTRY, IDENTIFIERS))
    return folder


def _identify(
    anon: str, user: str | None = None, email: str | None = None, event_id: str = "e1"
) -> pd.DataFrame:
    return pd.DataFrame(
        [{"event_id": event_id, "type": "identify", "anonymous_id": anon, "user_id": user, "email": email}]
    )


def test_identify_event_merges_two_stored_identities(store: IdentityStore, state_dir: str) -> None:
    _load_batch_output(store)
    result = stitch_batch(store, state_dir, None, _identify("c9", user="u1"), now=NOW)

    assert result.merges[["merged_id", "survivor_id", "reason"]].values.tolist() == [
        ["idr_new", "idr_old", "identify_event"]
    ]
    merged = store.get_identity("idr_new")
    assert (merged["status"], merged["merged_into"]) == ("merged", "idr_old")
    survivor = store.get_identity("idr_old")
    assert survivor["record_ids"] == ["shop-9", "web-1"]
    assert [(m["merged_id"], m["reason"]) for m in survivor["merges"]] == [("idr_new", "identify_event")]
    # Every identifier now answers with the survivor, including the phone the graph does not link on.
    assert store.lookup("anonymous_id", "c9") == ["idr_old"]
    assert store.lookup("phone", "+15550001") == ["idr_old"]
    assert store.lookup("email_key", "ann@x.com") == ["idr_old"]

    # The same micro-batch again (a re-run after a failure) changes nothing.
    again = stitch_batch(store, state_dir, None, _identify("c9", user="u1"), now="2024-02-02T00:00:00Z")
    assert again.merges.empty and not any(again.changed.values())


def test_streamed_profiles_are_standardized_and_join_by_email(store: IdentityStore, state_dir: str) -> None:
    _load_batch_output(store)
    profiles = pd.DataFrame(
        [
            # Gmail-folded and upper-cased: the same mailbox as Ann's ann@x.com? No: a new person.
            {"record_id": "web-2", "source": "web", "source_customer_id": "u2", "email": "Bob.Smith+shop@Gmail.com",
             "first_name": "bob", "anonymous_id": "c20"},
            {"record_id": "web-3", "source": "web", "email": " ANN@X.COM ", "phone": "(415) 555-2671"},
            {"record_id": "junk", "source": "web", "city": "Springfield"},  # quarantined: nothing usable
        ]
    )  # fmt: skip
    result = stitch_batch(store, state_dir, profiles, None, now=NOW)
    assert (result.records, result.quarantined, result.new_identities) == (2, 1, 1)
    assert store.lookup("email_key", "ann@x.com") == ["idr_old"]
    assert store.get_identity("idr_old")["record_ids"] == ["web-1", "web-3"]
    bob = store.lookup("email_key", "bobsmith@gmail.com")
    assert len(bob) == 1 and bob != ["idr_old"]
    assert store.lookup("source_customer_key", "web:u2") == bob
    assert store.lookup("phone", "+14155552671") == ["idr_old"]  # look-up only identifiers stored too
    assert store.get_identity(bob[0])["status"] == "active"

    # A later identify event of Bob's cookie with Ann's e-mail merges Bob into older Ann.
    result = stitch_batch(
        store, state_dir, None, _identify("c20", email="ann@x.com"), now="2024-03-01T00:00:00Z"
    )
    assert result.merges.survivor_id.tolist() == ["idr_old"]
    assert store.lookup("source_customer_key", "web:u2") == ["idr_old"]

    # The state survives between calls: a fresh load sees every node.
    state = load_state(state_dir)
    assert state.identity_of("record:web-2") == "idr_old"


def test_stitched_share(store: IdentityStore, state_dir: str) -> None:
    _load_batch_output(store)
    events = pd.DataFrame(
        {
            "event_id": ["1", "2", "3", "4"],
            "anonymous_id": ["c9", "unknown", None, "unknown"],
            "user_id": [None, "u1", None, None],
            "email": [None, None, "Ann@x.com", None],
        }
    )
    assert stitched_share(events, store_resolver(store)) == 0.75
    assert stitched_share(events, load_state(state_dir).resolve) == 0.75
    assert stitched_share(events.iloc[:0], store_resolver(store)) == 0.0


def test_bootstrap_from_the_lake_follows_the_batch(spark, tmp_path: Path) -> None:
    from idr_pipeline.core.catalog import IDENTIFIERS as SERVING_IDENTIFIERS
    from idr_pipeline.core.catalog import LINKS as LINKS_DATASET
    from idr_pipeline.core.catalog import REGISTRY as REGISTRY_DATASET
    from idr_pipeline.core.lake import Lake
    from idr_pipeline.store import open_store

    lake = Lake((tmp_path / "lake").as_uri(), spark)
    assert bootstrap_from_lake(lake).n == 0  # before the first batch run
    lake.write_pandas_version(LINKS, *LINKS_DATASET)
    lake.write_pandas_version(REGISTRY, *REGISTRY_DATASET)
    lake.write_pandas_version(IDENTIFIERS, *SERVING_IDENTIFIERS)
    with open_store(f"sqlite:///{tmp_path / 'store.db'}") as db:
        db.ensure_schema()
        _load_batch_output(db)
        stitch_batch(db, lake, None, _identify("c9", user="u1"), now=NOW)
        assert db.lookup("anonymous_id", "c9") == ["idr_old"]
    assert lake.exists(lake.path("resolution", "incremental_graph", "log"))

    # The batch runs again and now resolves the two as one itself; the stream log is replayed on it.
    lake.write_pandas_version(LINKS.assign(identity_id="idr_old"), *LINKS_DATASET)
    state = load_state(lake)
    assert state.identity_of("record:shop-9") == "idr_old" and state.version == 1


def test_a_stewards_split_holds_in_the_stream_and_in_its_replayed_log(
    store: IdentityStore, state_dir: str
) -> None:
    """The identify event that would merge the two people is refused while the store holds a
    split of their records; the log keeps the split, so a state rebuilt from it agrees."""
    _load_batch_output(store)
    store.record_decision("web-1", "shop-9", "split", "two people who share a tablet", "test")
    result = stitch_batch(store, state_dir, None, _identify("c9", user="u1"), now=NOW)
    assert result.merges.empty and result.blocked_edges == 1
    assert store.get_identity("idr_new")["status"] == "active"
    replayed = load_state(state_dir)
    assert replayed.identity_of("record:web-1") != replayed.identity_of("record:shop-9")
    store.remove_decision("web-1", "shop-9")
    merged = stitch_batch(store, state_dir, None, _identify("c9", user="u1", event_id="e2"), now=NOW)
    assert merged.merges[["merged_id", "survivor_id"]].values.tolist() == [["idr_new", "idr_old"]]


def _feed(store: IdentityStore, after: int = 0) -> list[tuple[str, str, list[str], list[str]]]:
    return [
        (c["identity_id"], c["kind"], c["related_identity_ids"], c["record_ids"])
        for c in changes_after(store, after, 100)
    ]


def test_stitching_records_its_identity_changes_and_a_replay_records_none(
    store: IdentityStore, state_dir: str
) -> None:
    _load_batch_output(store)
    profiles = pd.DataFrame(
        [
            {"record_id": "web-2", "source": "web", "source_customer_id": "u2", "email": "bob@y.com"},
            {"record_id": "web-3", "source": "web", "email": "ann@x.com"},
        ]
    )
    result = stitch_batch(store, state_dir, profiles, None, now=NOW)
    bob = store.lookup("email_key", "bob@y.com")[0]
    assert sorted(_feed(store)) == [
        (bob, "created", [], ["web-2"]),
        ("idr_old", "updated", [], ["web-3"]),
    ]
    assert (
        result.changed["identity_changes_created"] == 1 and result.changed["identity_changes_committed"] == 2
    )

    # An identify event merges the shop identity into the older web one.
    stitch_batch(store, state_dir, None, _identify("c9", user="u1"), now="2024-03-01T00:00:00Z")
    assert sorted(_feed(store, after=2)) == [
        ("idr_new", "merged_into", ["idr_old"], ["shop-9"]),
        ("idr_old", "updated", ["idr_new"], ["shop-9"]),
    ]
    # The same micro-batch again changes nothing, so records no change.
    before = {c["event_id"] for c in changes_after(store, 0, 100)}
    stitch_batch(store, state_dir, None, _identify("c9", user="u1"), now="2024-03-02T00:00:00Z")
    assert {c["event_id"] for c in changes_after(store, 0, 100)} == before


def _tombstones(*identifiers: tuple[str, str]) -> Tombstones:
    key = b"k" * 32
    return Tombstones(key=key, keyed={t: frozenset({tombstone_digest(key, t, v)}) for t, v in identifiers})


def test_an_erased_subject_is_not_stitched_back(store: IdentityStore, state_dir: str) -> None:
    """A streamed record or identify event carrying an erased value stays out, counted."""
    _load_batch_output(store)
    tombstones = _tombstones(("email_key", "erased@x.com"), ("anonymous_id", "c9"))
    profiles = pd.DataFrame(
        [
            {"record_id": "web-7", "source": "web", "email": "Erased@X.com", "phone": "(415) 555-2671"},
            {"record_id": "web-8", "source": "web", "email": "kept@x.com"},
        ]
    )
    result = stitch_batch(store, state_dir, profiles, None, now=NOW, tombstones=tombstones)
    assert (result.records, result.erased_records, result.new_identities) == (1, 1, 1)
    assert store.lookup("email_key", "erased@x.com") == []
    assert store.lookup("phone", "+14155552671") == []
    assert len(store.lookup("email_key", "kept@x.com")) == 1

    # The erased cookie's identify event would merge the shop identity into the web one.
    events = pd.concat([_identify("c9", user="u1"), _identify("c77", email="erased@x.com", event_id="e2")])
    result = stitch_batch(store, state_dir, None, events, now=NOW, tombstones=tombstones)
    assert (result.identify_events, result.erased_events) == (0, 2)
    assert result.merges.empty
    assert store.lookup("anonymous_id", "c77") == []
    assert store.get_identity("idr_new")["status"] == "active"
    # Without the tombstones the same events do stitch: the check above is what held them out.
    result = stitch_batch(store, state_dir, None, events, now="2024-02-03T00:00:00Z")
    assert len(result.merges) == 1
