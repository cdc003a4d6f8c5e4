"""Store additions for the serving side's privacy work, on SQLite and MariaDB: column migration
of stores created before a column existed, targeted updates, the append-only audit table and
statement time limits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from idr_pipeline.store import IdentityStore, open_store
from idr_pipeline.store.base import QueryTimeout
from idr_pipeline.store.tables import TABLES
from idr_pipeline_tests.services_fixtures import throwaway_database


def _slow_sql(store: IdentityStore) -> str:
    """A SELECT that runs for seconds on the store's backend."""
    if store.backend_name == "sqlite":
        return (
            "SELECT COUNT(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "WHERE x < 500000000) SELECT x FROM c) t"
        )
    return "SELECT SLEEP(5)"


def test_query_with_timeout_interrupts_a_slow_select(store: IdentityStore) -> None:
    with pytest.raises(QueryTimeout):
        store.query_with_timeout(_slow_sql(store), (), 0.2)
    # The connection is usable afterwards, and a quick statement is not interrupted.
    assert store.query_with_timeout("SELECT 1", (), 0.2) == [(1,)]
    with pytest.raises(ValueError):
        store.query_with_timeout("DELETE FROM identities", (), 1.0)


def test_erasure_audit_is_append_only(store: IdentityStore) -> None:
    store.append_rows("erasure_audit", [{"audit_id": "a1", "action": "erase", "outcome": "erased"}])
    with pytest.raises(Exception, match="append-only"):
        store.delete_rows("erasure_audit", {"audit_id": "a1"})
    with pytest.raises(Exception, match="append-only"):
        store.update_rows("erasure_audit", {"outcome": "nothing"}, {"audit_id": "a1"})
    with pytest.raises(Exception, match="(?i)duplicate|unique"):  # an error, not an overwrite
        store.append_rows("erasure_audit", [{"audit_id": "a1", "action": "erase", "outcome": "x"}])
    assert [r["outcome"] for r in store.select_rows("erasure_audit")] == ["erased"]


def test_update_rows_changes_only_the_named_columns(store: IdentityStore) -> None:
    store.upsert("api_keys", [{"key_id": "k1", "key_sha256": "0" * 64, "name": "n", "scopes": ["read"]}])
    store.update_rows("api_keys", {"revoked_at": "2025-01-02T00:00:00"}, {"key_id": "k1"})
    assert store.update_rows("api_keys", {"last_used_at": "2025-01-03T00:00:00"}, {"key_id": "k1"}) == 1
    row = store.select_rows("api_keys", {"key_id": "k1"})[0]
    assert row["revoked_at"].isoformat() == "2025-01-02T00:00:00"
    assert row["last_used_at"].isoformat() == "2025-01-03T00:00:00"
    with pytest.raises(ValueError):
        store.update_rows("api_keys", {"name": "x"}, {})


def test_ensure_schema_adds_columns_to_an_older_store(tmp_path: Path) -> None:
    """A store whose tables predate the new columns gets them, with its rows kept."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE tombstones (id_type TEXT NOT NULL, value_sha256 TEXT NOT NULL, request_id TEXT, "
        "erased_at TEXT NOT NULL, PRIMARY KEY (id_type, value_sha256))"
    )
    conn.execute("INSERT INTO tombstones VALUES ('phone', ?, 'r1', '2025-01-01 00:00:00')", ("a" * 64,))
    conn.commit()
    conn.close()
    with open_store(f"sqlite:///{path}") as store:
        store.ensure_schema()
        assert store.tombstone_rows() == [("phone", "a" * 64, None, None)]
        assert store.tombstone_hashes() == {"phone": {"a" * 64}}
        columns = {row[1] for row in store._conn.execute("PRAGMA table_info(tombstones)")}
        assert set(TABLES["tombstones"].names) <= columns


def test_ensure_schema_adds_columns_on_mariadb(mariadb_url: str) -> None:
    with throwaway_database(mariadb_url, "idr_migrate") as url, open_store(url) as store:
        store._query(
            "CREATE TABLE activations (activation_id VARCHAR(64) NOT NULL PRIMARY KEY, segment_id "
            "VARCHAR(128) NOT NULL, destination VARCHAR(32) NOT NULL, target TEXT, status VARCHAR(16) "
            "NOT NULL, counts TEXT, error TEXT, created_at DATETIME(6) NOT NULL, updated_at DATETIME(6) NOT NULL)"
        )
        store._query(
            "INSERT INTO activations VALUES ('a1', 's', 'file', 'x.csv', 'succeeded', NULL, NULL, NOW(), NOW())"
        )
        store.ensure_schema()
        row = store.select_rows("activations", {"activation_id": "a1"})[0]
        assert row["owner_key_id"] is None and row["status"] == "succeeded"
