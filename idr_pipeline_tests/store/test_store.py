"""The serving store on both backends: embedded SQLite and the MySQL-protocol server (MariaDB).

Every behavioral test runs twice through the ``store`` fixture (``conftest.py``); the MariaDB
run gets a fresh database of its own, so tests neither see each other's rows nor depend on
their order.
"""

from __future__ import annotations

import math
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from idr_pipeline.store import IdentityStore, open_store, parse_store_url
from idr_pipeline.store.singlestore_ddl import SINGLESTORE_LAYOUT, all_ddl, mysql_ddl, singlestore_ddl
from idr_pipeline.store.tables import IDENTITY_STATUSES, STREAM_TABLES, TABLES

# ----------------------------------------------------------------------------- sample data


def _identity(identity_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "identity_id": identity_id,
        "status": "active",
        "merged_into": None,
        "record_count": 1,
    } | overrides


def _golden(identity_id: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "identity_id": identity_id,
        "first_name": "Ann",
        "last_name": "Lee",
        "email": f"{identity_id}@example.com",
        "phone": "+15555550100",
        "street": "1 Main St",
        "city": "Springfield",
        "state": "IL",
        "postcode": "62701",
        "country": "US",
        "dob": "1990-04-01",
        "national_id": None,
        "sources": ["crm", "web"],
        "record_count": 2,
    }
    return row | overrides


def _load_two_identities(store: IdentityStore) -> None:
    store.upsert_identities([_identity("ID-A", record_count=2), _identity("ID-B")])
    store.upsert_record_links(
        [
            {"record_id": "crm-1", "identity_id": "ID-A", "source": "crm"},
            {"record_id": "web-7", "identity_id": "ID-A", "source": "web"},
            {"record_id": "crm-2", "identity_id": "ID-B", "source": "crm"},
        ]
    )
    store.upsert_golden_profiles([_golden("ID-A"), _golden("ID-B", first_name="Bob")])
    store.upsert_identifiers(
        [
            {"id_type": "email", "id_value": "ann@example.com", "identity_id": "ID-A"},
            {"id_type": "phone", "id_value": "+15555550100", "identity_id": "ID-A"},
            {"id_type": "device_id", "id_value": "dev-123", "identity_id": "ID-A"},
            {"id_type": "email", "id_value": "bob@example.com", "identity_id": "ID-B"},
        ]
    )


# ----------------------------------------------------------------------------- schema


def test_schema_is_created_and_rerunnable(store: IdentityStore) -> None:
    store.ensure_schema()  # a second run must be a no-op, not an error
    assert store.table_counts() == dict.fromkeys(TABLES, 0)
    assert store.backend_name in {"sqlite", "mysql", "singlestore"}


def test_server_backend_uses_plain_mysql_ddl_on_mariadb(store: IdentityStore) -> None:
    if store.backend_name == "sqlite":
        return  # the SQLite half of this test is test_lookup_is_one_indexed_query
    rows = store._query("SHOW CREATE TABLE identifiers")
    ddl = rows[0][1].upper()
    if store.backend_name == "mysql":
        assert "SHARD KEY" not in ddl and "SORT KEY" not in ddl
        assert "PRIMARY KEY (`ID_TYPE`,`ID_VALUE`,`IDENTITY_ID`)" in ddl
    else:
        assert "SHARD KEY" in ddl


# ----------------------------------------------------------------------------- upserts


def test_second_identical_upsert_changes_nothing(store: IdentityStore) -> None:
    _load_two_identities(store)
    before = store.get_identity("ID-A")
    assert before is not None
    time.sleep(0.01)  # a rewrite would now stamp a visibly later updated_at
    assert store.upsert_identities([_identity("ID-A", record_count=2), _identity("ID-B")]) == 0
    assert store.upsert_golden_profiles([_golden("ID-A"), _golden("ID-B", first_name="Bob")]) == 0
    assert store.upsert_record_links([{"record_id": "crm-1", "identity_id": "ID-A", "source": "crm"}]) == 0
    assert (
        store.upsert_identifiers([{"id_type": "email", "id_value": "ann@example.com", "identity_id": "ID-A"}])
        == 0
    )
    after = store.get_identity("ID-A")
    assert after == before
    assert after["updated_at"] == before["updated_at"]
    assert after["profile"]["updated_at"] == before["profile"]["updated_at"]
    assert after["records"][0]["linked_at"] == before["records"][0]["linked_at"]


def test_equivalent_spellings_of_the_same_content_are_not_changes(store: IdentityStore) -> None:
    store.upsert_golden_profiles([_golden("ID-A", national_id=None)])
    same = _golden(
        "ID-A",
        dob=date(1990, 4, 1),  # date object instead of ISO text
        sources='["crm","web"]',  # JSON text instead of a list
        national_id=math.nan,  # pandas' missing value
    )
    assert store.upsert_golden_profiles([same]) == 0
    store.upsert_identities([_identity("ID-A")])
    stored = store.get_identity("ID-A")
    assert stored is not None
    assert stored["profile"]["dob"] == "1990-04-01"
    assert stored["profile"]["sources"] == ["crm", "web"]


def test_changed_content_touches_updated_at_but_keeps_created_at(store: IdentityStore) -> None:
    store.upsert_identities([_identity("ID-A")])
    first = store.get_identity("ID-A")
    assert first is not None
    time.sleep(0.01)
    assert store.upsert_identities([_identity("ID-A", record_count=5)]) == 1
    second = store.get_identity("ID-A")
    assert second is not None
    assert second["record_count"] == 5
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] > first["updated_at"]
    assert isinstance(second["updated_at"], datetime)


def test_upsert_counts_changes_across_chunks_and_duplicate_keys(store: IdentityStore) -> None:
    store.chunk_size = 3  # force several pre-read chunks and id_type groups per chunk
    rows = [
        {"id_type": kind, "id_value": f"{kind}-{i}", "identity_id": f"ID-{i % 4}"}
        for i in range(10)
        for kind in ("email", "phone")
    ]
    assert store.upsert_identifiers(rows) == 20
    assert store.upsert_identifiers(rows) == 0
    assert (
        store.upsert_identifiers(rows + [{"id_type": "email", "id_value": "new", "identity_id": "ID-9"}]) == 1
    )
    assert store.table_counts()["identifiers"] == 21
    # Within one call the last row for a key wins, as a sequence of single upserts would.
    dupes = [_identity("ID-X", record_count=1), _identity("ID-X", record_count=3)]
    assert store.upsert_identities(dupes) == 1
    assert store.get_identity("ID-X")["record_count"] == 3


def test_spark_like_rows_are_accepted(store: IdentityStore) -> None:
    class FakeSparkRow:
        def __init__(self, **values: Any) -> None:
            self._values = values

        def asDict(self) -> dict[str, Any]:  # noqa: N802 - Spark's spelling
            return dict(self._values)

    assert store.upsert_identities([FakeSparkRow(**_identity("ID-S"))]) == 1
    with pytest.raises(TypeError, match="mappings"):
        store.upsert_identities([("ID-T", "active")])


def test_status_accepts_active_merged_retired_only(store: IdentityStore) -> None:
    assert IDENTITY_STATUSES == {"active", "merged", "retired"}
    rows = [
        _identity("ID-1"),
        _identity("ID-2", status="merged", merged_into="ID-1"),
        _identity("ID-3", status="retired"),
    ]
    assert store.upsert_identities(rows) == 3
    assert [store.get_identity(f"ID-{i}")["status"] for i in (1, 2, 3)] == ["active", "merged", "retired"]
    with pytest.raises(ValueError, match="status"):
        store.upsert_identities([_identity("ID-4", status="deleted")])
    assert store.get_identity("ID-4") is None  # the failed load wrote nothing


def test_record_link_moves_with_its_record(store: IdentityStore) -> None:
    """record_links is keyed by record_id: re-pointing a record replaces its link, no pruning."""
    assert store.upsert_record_links([{"record_id": "crm-2", "identity_id": "ID-B", "source": "crm"}]) == 1
    assert store.upsert_record_links([{"record_id": "crm-2", "identity_id": "ID-A", "source": "crm"}]) == 1
    assert store.table_counts()["record_links"] == 1
    store.upsert_identities([_identity("ID-A"), _identity("ID-B")])
    assert store.get_identity("ID-A")["record_ids"] == ["crm-2"]
    assert store.get_identity("ID-B")["record_ids"] == []


# ----------------------------------------------------------------------------- reads


@pytest.mark.parametrize(
    ("id_type", "id_value", "expected"),
    [
        ("email", "ann@example.com", ["ID-A"]),
        ("phone", "+15555550100", ["ID-A"]),
        ("device_id", "dev-123", ["ID-A"]),
        ("email", "bob@example.com", ["ID-B"]),
        ("email", "ANN@example.com", []),  # exact match: normalization happens upstream
        ("phone", "ann@example.com", []),  # the type is part of the key
    ],
)
def test_lookup_by_identifier(store: IdentityStore, id_type: str, id_value: str, expected: list[str]) -> None:
    _load_two_identities(store)
    assert store.lookup(id_type, id_value) == expected


def test_lookup_is_one_indexed_query(store: IdentityStore) -> None:
    _load_two_identities(store)
    store.upsert_identifiers(
        [
            {"id_type": "email", "id_value": f"user{i}@example.com", "identity_id": f"ID-{i}"}
            for i in range(200)
        ]
    )
    sql = "SELECT identity_id FROM identifiers WHERE id_type = {ph} AND id_value = {ph} ORDER BY identity_id"
    sql = sql.format(ph=store.placeholder)
    params = ("email", "ann@example.com")
    if store.backend_name == "sqlite":
        plan = " ".join(str(row[-1]) for row in store._query(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "SEARCH identifiers USING PRIMARY KEY (id_type=? AND id_value=?)" in plan, plan
        assert "TEMP B-TREE" not in plan  # ORDER BY is served by the key order too
    else:
        rows = store._query(f"EXPLAIN {sql}", params)
        assert len(rows) == 1, rows
        columns = [
            "id",
            "select_type",
            "table",
            "type",
            "possible_keys",
            "key",
            "key_len",
            "ref",
            "rows",
            "extra",
        ]
        plan = dict(zip(columns, rows[0], strict=False))
        assert plan["key"] == "PRIMARY", plan
        assert plan["type"] in {"ref", "eq_ref", "const"}, plan
        assert "filesort" not in str(plan["extra"]).lower(), plan


def test_get_identity_gathers_links_golden_identifiers_and_merges(store: IdentityStore) -> None:
    _load_two_identities(store)
    store.record_merges(
        [
            {
                "merged_id": "ID-OLD",
                "survivor_id": "ID-A",
                "reason": "shared email",
                "merged_at": "2024-01-01T00:00:00",
            },
            {
                "merged_id": "ID-A",
                "survivor_id": "ID-Z",
                "reason": "later split",
                "merged_at": "2025-01-01T00:00:00",
            },
        ]
    )
    found = store.get_identity("ID-A")
    assert found is not None
    assert found["identity_id"] == "ID-A"
    assert found["status"] == "active"
    assert found["record_count"] == 2
    assert found["record_ids"] == ["crm-1", "web-7"]
    assert [r["source"] for r in found["records"]] == ["crm", "web"]
    assert found["profile"]["first_name"] == "Ann"
    assert found["profile"]["sources"] == ["crm", "web"]
    assert "identity_id" not in found["profile"]
    assert found["identifiers"] == [
        {"id_type": "device_id", "id_value": "dev-123"},
        {"id_type": "email", "id_value": "ann@example.com"},
        {"id_type": "phone", "id_value": "+15555550100"},
    ]
    assert [(m["merged_id"], m["survivor_id"]) for m in found["merges"]] == [
        ("ID-OLD", "ID-A"),
        ("ID-A", "ID-Z"),
    ]
    assert found["merges"][0]["merged_at"] == datetime(2024, 1, 1)
    assert found["segments"] == []
    assert store.get_identity("ID-NOPE") is None


def test_get_identity_is_one_round_trip_with_exact_types(
    store: IdentityStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load_two_identities(store)
    store.record_merges([{"merged_id": "ID-B", "survivor_id": "ID-A", "reason": "email"}])
    store.upsert(
        "segment_members",
        [
            {"segment_id": "vip", "identity_id": "ID-A", "score": 0.75},
            {"segment_id": "all", "identity_id": "ID-A"},
            {"segment_id": "vip", "identity_id": "ID-B"},
        ],
    )
    statements: list[str] = []
    real_query = store._query

    def counting(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        statements.append(sql)
        return real_query(sql, params)

    monkeypatch.setattr(store, "_query", counting)
    found = store.get_identity("ID-A")
    assert len(statements) == 1, statements
    assert found is not None
    # Each column keeps its own type although the rows come out of one UNION ALL.
    assert isinstance(found["created_at"], datetime) and isinstance(found["updated_at"], datetime)
    assert isinstance(found["record_count"], int) and found["record_count"] == 2
    assert found["profile"]["dob"] == "1990-04-01"
    assert isinstance(found["profile"]["updated_at"], datetime)
    assert found["profile"]["record_count"] == 2
    assert all(isinstance(r["linked_at"], datetime) for r in found["records"])
    assert [(s["segment_id"], s["score"]) for s in found["segments"]] == [("all", 1.0), ("vip", 0.75)]
    assert all(isinstance(s["assigned_at"], datetime) for s in found["segments"])
    assert [(m["merged_id"], m["survivor_id"], m["reason"]) for m in found["merges"]] == [
        ("ID-B", "ID-A", "email")
    ]
    # The merged side sees the same merge row; another identity sees none of ID-A's rows.
    merged = store.get_identity("ID-B")
    assert merged is not None and [m["survivor_id"] for m in merged["merges"]] == ["ID-A"]
    assert merged["record_ids"] == ["crm-2"] and [s["segment_id"] for s in merged["segments"]] == ["vip"]
    assert len(statements) == 2
    assert store.get_identity("ID-NOPE") is None


def test_get_identity_row_shares_positions_within_one_type_family(store: IdentityStore) -> None:
    from idr_pipeline.store.base import (
        _IDENTITY_PARTS,
        _IDENTITY_POSITIONS,
        _IDENTITY_TABLES,
        _IDENTITY_WIDTH,
        _identity_sql,
        _slot_family,
    )

    # Each position holds one family (text+JSON, DATETIME, DATE, INT or DOUBLE) across tables.
    family_at: dict[int, set[str]] = {}
    for name, spec in _IDENTITY_TABLES.items():
        positions = _IDENTITY_POSITIONS[name]
        assert len(set(positions)) == len(positions) == len(spec.columns)
        for column, position in zip(spec.columns, positions, strict=True):
            family_at.setdefault(position, set()).add(_slot_family(column))
    assert sorted(family_at) == list(range(1, _IDENTITY_WIDTH))
    assert all(len(families) == 1 for families in family_at.values()), family_at
    assert _IDENTITY_WIDTH < 1 + sum(len(s.columns) for s in _IDENTITY_TABLES.values())

    # The backend returns that many columns, each part at its own table's positions.
    _load_two_identities(store)
    rows = store._query(_identity_sql(store.placeholder), ("ID-A",) * len(_IDENTITY_PARTS))
    assert rows and all(len(row) == _IDENTITY_WIDTH for row in rows)
    (identity,) = [row for row in rows if int(row[0]) == 0]
    at = dict(zip(_IDENTITY_TABLES["identities"].names, _IDENTITY_POSITIONS["identities"], strict=True))
    assert identity[at["identity_id"]] == "ID-A" and identity[at["record_count"]] == 2
    created = _IDENTITY_TABLES["identities"].column("created_at")
    assert isinstance(store._from_db(created, identity[at["created_at"]]), datetime)


def test_first_merged_at_sticks(store: IdentityStore) -> None:
    row = {"merged_id": "ID-B", "survivor_id": "ID-A", "reason": "email", "merged_at": "2024-01-01T00:00:00"}
    assert store.record_merges([row]) == 1
    assert store.record_merges([row | {"merged_at": "2024-06-01T00:00:00"}]) == 0
    store.upsert_identities([_identity("ID-A")])
    assert store.get_identity("ID-A")["merges"][0]["merged_at"] == datetime(2024, 1, 1)


# ----------------------------------------------------------------------------- pruning


def test_prune_inactive_stops_merged_and_retired_identities_answering(store: IdentityStore) -> None:
    _load_two_identities(store)
    store.upsert_identities([_identity("ID-C")])
    store.upsert_identifiers([{"id_type": "email", "id_value": "cat@example.com", "identity_id": "ID-C"}])
    store.upsert_golden_profiles([_golden("ID-C")])
    # Orphans (no identities row yet) belong to a load in progress and are kept.
    store.upsert_identifiers([{"id_type": "email", "id_value": "new@example.com", "identity_id": "ID-N"}])

    # B merges into A: B's record and identifier now also point at A, B becomes 'merged'.
    store.upsert_identities(
        [
            _identity("ID-A", record_count=3),
            _identity("ID-B", status="merged", merged_into="ID-A", record_count=0),
        ]
    )
    store.upsert_identities([_identity("ID-C", status="retired", record_count=0)])
    store.upsert_record_links([{"record_id": "crm-2", "identity_id": "ID-A", "source": "crm"}])
    store.upsert_identifiers([{"id_type": "email", "id_value": "bob@example.com", "identity_id": "ID-A"}])
    store.record_merges([{"merged_id": "ID-B", "survivor_id": "ID-A", "reason": "shared phone"}])
    assert store.lookup("email", "bob@example.com") == ["ID-A", "ID-B"]  # before pruning: both

    assert store.prune_inactive() == {"identifiers": 2, "golden_profiles": 2}
    assert store.lookup("email", "bob@example.com") == ["ID-A"]
    assert store.lookup("email", "cat@example.com") == []
    assert store.lookup("email", "new@example.com") == ["ID-N"]
    assert store.prune_inactive() == {"identifiers": 0, "golden_profiles": 0}

    merged = store.get_identity("ID-B")
    assert merged is not None
    assert merged["status"] == "merged" and merged["merged_into"] == "ID-A"
    assert merged["profile"] is None and merged["identifiers"] == [] and merged["record_ids"] == []
    assert [m["survivor_id"] for m in merged["merges"]] == ["ID-A"]
    survivor = store.get_identity("ID-A")
    assert survivor["record_ids"] == ["crm-1", "crm-2", "web-7"]
    assert survivor["profile"] is not None
    assert store.table_counts() == {
        **dict.fromkeys(TABLES, 0),
        "identities": 3,
        "record_links": 3,
        "golden_profiles": 1,
        "identifiers": 5,
        "merge_history": 1,
    }


# ----------------------------------------------------------------------------- DDL (pure)


def test_mysql_ddl_has_no_singlestore_clauses() -> None:
    for spec in TABLES.values():
        ddl = mysql_ddl(spec)
        assert ddl.startswith(f"CREATE TABLE IF NOT EXISTS {spec.name} (")
        assert "SHARD KEY" not in ddl and "SORT KEY" not in ddl and "USING HASH" not in ddl
        assert "ENGINE=InnoDB" in ddl and "COLLATE=utf8mb4_bin" in ddl
        assert f"PRIMARY KEY ({', '.join(spec.key)})" in ddl
    identifiers = mysql_ddl(TABLES["identifiers"])
    # The primary key's prefix is the look-up index; only the reverse index is extra.
    assert "KEY ix_identifiers_identity_id (identity_id)" in identifiers
    assert "ix_identifiers_id_type_id_value" not in identifiers


def test_singlestore_ddl_has_shard_sort_and_hash_keys() -> None:
    for spec in TABLES.values():
        ddl = singlestore_ddl(spec)
        layout = SINGLESTORE_LAYOUT[spec.name]
        assert f"SHARD KEY ({', '.join(layout.shard_key)})" in ddl
        assert f"SORT KEY ({', '.join(layout.sort_key)})" in ddl
        assert "ENGINE=InnoDB" not in ddl
        assert set(layout.shard_key) <= set(spec.key)  # SingleStore's unique-key rule
    identifiers = singlestore_ddl(TABLES["identifiers"])
    assert "KEY ix_identifiers_id_type_id_value (id_type, id_value) USING HASH" in identifiers


def test_all_ddl_switches_on_the_server_kind() -> None:
    assert all_ddl(singlestore=False) == [mysql_ddl(s) for s in TABLES.values()]
    assert all_ddl(singlestore=True) == [singlestore_ddl(s) for s in TABLES.values()]
    assert len(all_ddl(singlestore=True)) == len(TABLES) == 20 + len(STREAM_TABLES)


# ----------------------------------------------------------------------------- URLs


def test_sqlite_urls_follow_sqlalchemy_slashes() -> None:
    relative = parse_store_url("sqlite:///rel/path.db")
    assert (relative.backend, relative.path) == ("sqlite", "rel/path.db")
    absolute = parse_store_url("sqlite:////abs/path.db")
    assert absolute.path == "/abs/path.db"
    assert parse_store_url("sqlite:///").path == ":memory:"
    assert parse_store_url("SQLite:///x.db").scheme == "sqlite"


def test_server_urls_are_taken_apart_without_connecting() -> None:
    parsed = parse_store_url("singlestoredb://user:pw@host:3306/db")
    assert parsed.backend == "server"
    assert (parsed.user, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "user",
        "pw",
        "host",
        3306,
        "db",
    )
    assert parsed.redacted() == "singlestoredb://user:***@host:3306/db"
    assert parse_store_url("mysql://u:p%40ss@db.internal/idr").password == "p@ss"
    assert parse_store_url("mariadb://u@h/idr").port == 3306


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://u:p@h/db", "unsupported store URL"),
        ("idr_store.db", "unsupported store URL"),
        ("sqlite://relative.db", "not a sqlite URL"),
        ("singlestoredb://user:pw@host:3306/", "needs a host and a database"),
        ("mysql://user:pw@host:notaport/db", "port"),
    ],
)
def test_bad_urls_fail_clearly(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


def test_open_store_sqlite_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///sub/rel.db") as relative:
        relative.ensure_schema()
        assert relative.backend_name == "sqlite"
    assert (tmp_path / "sub" / "rel.db").is_file()
    absolute_path = tmp_path / "abs" / "store.db"
    with open_store(f"sqlite:///{absolute_path}") as absolute:  # str(abs path) adds the 4th slash
        absolute.ensure_schema()
    assert absolute_path.is_file()


def test_open_store_server_url(mariadb_url: str) -> None:
    mysql_url = "mysql://" + mariadb_url.partition("://")[2]  # the same server by another scheme
    with open_store(mysql_url) as server:
        assert server.backend_name in {"mysql", "singlestore"}
        assert server._query("SELECT 1") == [(1,)]


def test_why_merged_returns_the_path_and_its_weights(store: IdentityStore) -> None:
    store.upsert_record_links(
        [
            {"record_id": "a", "identity_id": "ID-1", "source": "crm"},
            {"record_id": "b", "identity_id": "ID-1", "source": "web"},
            {"record_id": "c", "identity_id": "ID-1", "source": "app"},
            {"record_id": "z", "identity_id": "ID-2", "source": "app"},
        ]
    )
    links = [
        {"record_id_l": "a", "record_id_r": "b", "identity_id": "ID-1", "probability": 0.998,
         "weights": {"email": 12.3, "first_name": 6.2}},
        {"record_id_l": "b", "record_id_r": "c", "identity_id": "ID-1", "probability": 0.97,
         "weights": '{"phone": 12.1}'},
    ]  # fmt: skip
    assert store.upsert_match_links(links) == 2
    assert store.upsert_match_links(links) == 0  # idempotent, floats included
    answer = store.why_merged("a", "c")
    assert answer["same_identity"] is True
    assert [(step["from"], step["to"]) for step in answer["path"]] == [("a", "b"), ("b", "c")]
    assert answer["path"][0]["weights"] == {"email": 12.3, "first_name": 6.2}
    assert answer["path"][1]["probability"] == pytest.approx(0.97)
    apart = store.why_merged("a", "z")
    assert apart["same_identity"] is False and apart["path"] == []
    # c moves to another identity: its link no longer explains anything and is pruned.
    store.upsert_record_links([{"record_id": "c", "identity_id": "ID-2", "source": "app"}])
    assert store.prune_match_links() == 1
    assert store.why_merged("a", "b")["path"][0]["to"] == "b"


def test_generic_access_filters_paginates_and_refuses_unfiltered_delete(store: IdentityStore) -> None:
    rows = [{"segment_id": "lux", "identity_id": f"id{i:02d}", "score": i / 10} for i in range(5)]
    assert store.upsert("segment_members", rows) == 5
    assert store.upsert("segment_members", rows) == 0  # idempotent
    assert store.count_rows("segment_members", {"segment_id": "lux"}) == 5
    page = store.select_rows("segment_members", {"segment_id": "lux"}, limit=2, after={"identity_id": "id01"})
    assert [r["identity_id"] for r in page] == ["id02", "id03"]
    picked = store.select_rows("segment_members", {"identity_id": ["id00", "id04"]}, order_by=["identity_id"])
    assert [r["score"] for r in picked] == [0.0, 0.4]
    assert store.select_rows("segment_members", {"identity_id": []}) == []
    with pytest.raises(ValueError):
        store.delete_rows("segment_members", {})
    with pytest.raises(KeyError):
        store.select_rows("segment_members", {"no_such_column": 1})
    assert store.delete_rows("segment_members", {"identity_id": ["id00", "id01"]}) == 2
    assert store.count_rows("segment_members") == 3
    store.upsert("api_keys", [{"key_id": "k1", "key_sha256": "ab" * 32, "scopes": ["read", "admin"]}])
    (key,) = store.select_rows("api_keys", {"key_sha256": "ab" * 32})
    assert key["scopes"] == ["read", "admin"] and key["revoked_at"] is None
