"""event_aggregates on both backends: a publish replaces the table in one transaction, keeps only
identities the store holds (counting the rest), refuses to commit unbalanced accounts, keeps
values that differ only by trailing spaces apart, and erasure removes a person's rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from idr_pipeline.store import IdentityStore
from idr_pipeline.store.singlestore_ddl import mysql_ddl, singlestore_ddl
from idr_pipeline.store.tables import TABLES

AS_OF = datetime(2025, 3, 31, 15, 30, tzinfo=UTC)


def _row(identity_id: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "event_type": "purchase",
        "category": "luxury",
        "days_ago": 3,
        "identity_id": identity_id,
        "product_id": "",
        "campaign": "",
        "events": 1,
        "amount": 100.0,
    }
    return row | overrides


def _run(events: int, unresolved: int = 0, other_types: int = 0) -> dict[str, Any]:
    return {
        "as_of": AS_OF,
        "window_days": 366,
        "events": events,
        "unresolved": unresolved,
        "other_types": other_types,
    }


def test_publish_replaces_keeps_known_identities_and_accounts_for_every_event(store: IdentityStore) -> None:
    store.upsert_identities([{"identity_id": i} for i in ("ID-A", "ID-B")])
    store.publish_event_aggregates([_row("ID-A", days_ago=200), _row("ID-GONE")], _run(2))
    rows = [
        _row("ID-A", events=2, amount=150.5),
        _row("ID-A", category="luxury ", days_ago=0),  # trailing space: another value, as in Spark
        _row("ID-B", event_type="ad_click", category="", campaign="black_friday", amount=0.0),
        _row("ID-GONE", events=4),  # erased (or not yet served): no identities row
    ]
    run = store.publish_event_aggregates(rows, _run(events=11, unresolved=2, other_types=1))
    assert run["aggregated"] == 4 and run["unknown_identity"] == 4 and run["aggregate_rows"] == 3
    stored = store.select_rows("event_aggregates", order_by=["identity_id", "days_ago"])
    assert [(r["identity_id"], r["days_ago"], r["events"]) for r in stored] == [
        ("ID-A", 0, 1),
        ("ID-A", 3, 2),
        ("ID-B", 3, 1),
    ]  # the previous publish is gone
    (recorded,) = store.select_rows("event_aggregate_runs")
    assert recorded["as_of"] == AS_OF.replace(tzinfo=None)
    assert (recorded["events"], recorded["unresolved"], recorded["other_types"]) == (11, 2, 1)
    n = store.query(
        f"SELECT COUNT(*) FROM event_aggregates WHERE category = {store.placeholder}", ["luxury"]
    )[0][0]
    assert n == 1  # 'luxury ' is not 'luxury' (MariaDB's utf8mb4_bin would pad; VARBINARY does not)


def test_unbalanced_publish_rolls_back(store: IdentityStore) -> None:
    store.upsert_identities([{"identity_id": "ID-A"}])
    store.publish_event_aggregates([_row("ID-A")], _run(1))
    with pytest.raises(ValueError, match="do not balance"):
        store.publish_event_aggregates([_row("ID-A", events=2)], _run(events=5))
    assert [r["events"] for r in store.select_rows("event_aggregates")] == [1]
    assert store.count_rows("event_aggregate_runs") == 1


def test_duplicate_aggregate_keys_fail_loudly(store: IdentityStore) -> None:
    store.upsert_identities([{"identity_id": "ID-A"}])
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own IntegrityError
        store.publish_event_aggregates([_row("ID-A"), _row("ID-A")], _run(2))
    assert store.count_rows("event_aggregates") == 0


def test_erasure_removes_event_aggregates(store: IdentityStore) -> None:
    store.upsert_identities([{"identity_id": i} for i in ("ID-A", "ID-B")])
    store.publish_event_aggregates([_row("ID-A"), _row("ID-A", days_ago=9), _row("ID-B")], _run(3))
    deleted = store.erase_identities(["ID-A"])
    assert deleted["event_aggregates"] == 2
    assert [r["identity_id"] for r in store.select_rows("event_aggregates")] == ["ID-B"]


def test_aggregate_ddl_per_server_kind() -> None:
    spec = TABLES["event_aggregates"]
    mysql = mysql_ddl(spec)
    assert "category VARBINARY(512) NOT NULL" in mysql and "SHARD KEY" not in mysql
    assert "KEY ix_event_aggregates_identity_id (identity_id)" in mysql
    single = singlestore_ddl(spec)
    assert "SHARD KEY (identity_id)" in single and "SORT KEY (event_type, category, days_ago)" in single
