"""DDL for the MySQL-protocol backends: SingleStore, and MariaDB/MySQL as its local stand-in.

SingleStore distributes each row to a partition by its SHARD KEY and only enforces a unique key
inside one partition, so **the shard key must be a subset of every unique key**. The layout
below is chosen so that rule holds while the hot queries still hit one partition:

============== ========================================= ====================== ==============
table          primary key (uniqueness, upsert target)   shard key              sort key
============== ========================================= ====================== ==============
identities     (identity_id)                             (identity_id)          (identity_id)
golden_profiles(identity_id)                             (identity_id)          (identity_id)
record_links   (record_id)                               (record_id)            (identity_id)
identifiers    (id_type, id_value, identity_id)          (id_type, id_value)    (id_type, id_value)
merge_history  (merged_id, survivor_id)                  (merged_id)            (merged_id)
============== ========================================= ====================== ==============

* identities and golden_profiles share their shard key, so joining them is partition-local.
* record_links cannot be sharded on identity_id: its primary key is record_id alone (a record
  belongs to one identity and moves when identities merge), and (identity_id) is not a subset of
  (record_id). It is sharded on record_id; the per-identity listing uses a hash index on
  identity_id and the sort key on identity_id lets segment elimination skip most of the table.
* identifiers is sharded on (id_type, id_value), a prefix of its primary key, so ``lookup`` is
  routed to exactly one partition and answered from the (id_type, id_value) hash index (a
  columnstore hash index only serves whole-key equality, so the primary key's hash cannot).

On MariaDB/MySQL the same tables are plain InnoDB with B-tree indexes: the primary key's leftmost
prefix (id_type, id_value) already is the look-up index, so no duplicate index is created there.
String columns use the binary utf8mb4 collation on both, so keys compare exactly as in SQLite
(``Ann@x.com`` and ``ann@x.com`` are different identifiers; normalization happens upstream).
"""

from __future__ import annotations

from dataclasses import dataclass

from idr_pipeline.store.tables import TABLES, Column, TableSpec

_TABLE_OPTIONS_MYSQL = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
_TABLE_OPTIONS_SINGLESTORE = "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


@dataclass(frozen=True)
class SingleStoreLayout:
    shard_key: tuple[str, ...]
    sort_key: tuple[str, ...]
    hash_indexes: tuple[tuple[str, ...], ...] = ()


SINGLESTORE_LAYOUT: dict[str, SingleStoreLayout] = {
    "identities": SingleStoreLayout(("identity_id",), ("identity_id",)),
    "golden_profiles": SingleStoreLayout(("identity_id",), ("identity_id",)),
    "record_links": SingleStoreLayout(("record_id",), ("identity_id",), (("identity_id",),)),
    "identifiers": SingleStoreLayout(
        ("id_type", "id_value"),
        ("id_type", "id_value"),
        (("id_type", "id_value"), ("identity_id",)),
    ),
    "merge_history": SingleStoreLayout(("merged_id",), ("merged_id",), (("survivor_id",),)),
    "match_links": SingleStoreLayout(("record_id_l",), ("identity_id",), (("identity_id",),)),
    "possible_matches": SingleStoreLayout(
        ("record_id_l",), ("identity_id_l",), (("identity_id_l",), ("identity_id_r",))
    ),
    "shared_identifiers": SingleStoreLayout(("id_type", "id_value"), ("id_type", "id_value")),
    "match_decisions": SingleStoreLayout(("record_id_l",), ("record_id_l", "record_id_r")),
    # Members are sharded by segment so a segment's listing and count stay partition-local.
    "segments": SingleStoreLayout(("segment_id",), ("segment_id",)),
    "segment_members": SingleStoreLayout(("segment_id",), ("segment_id", "identity_id"), (("identity_id",),)),
    "segment_membership_history": SingleStoreLayout(
        ("segment_id",), ("segment_id", "changed_at"), (("identity_id",),)
    ),
    # Sharded by identity so an audience leaf's GROUP BY identity_id is partition-local; sorted
    # by what a leaf filters on, so segment elimination skips other types and categories.
    "event_aggregates": SingleStoreLayout(
        ("identity_id",), ("event_type", "category", "days_ago"), (("identity_id",),)
    ),
    "event_aggregate_runs": SingleStoreLayout(("as_of",), ("as_of",)),
    "tombstones": SingleStoreLayout(("id_type", "value_sha256"), ("id_type", "value_sha256")),
    "api_keys": SingleStoreLayout(("key_id",), ("key_id",), (("key_sha256",),)),
    "activations": SingleStoreLayout(("activation_id",), ("activation_id",), (("segment_id",),)),
    "erasure_audit": SingleStoreLayout(("audit_id",), ("recorded_at",), (("request_id",),)),
    "purge_requests": SingleStoreLayout(("request_id",), ("request_id",), (("status",),)),
    # Sorted by seq, so a page of the change feed (seq > cursor) skips the older segments.
    "identity_changes": SingleStoreLayout(("event_id",), ("seq",), (("run_id",),)),
    # The stream service's bookkeeping (tables.STREAM_TABLES): small, read by key.
    "stream_offsets": SingleStoreLayout(("consumer", "topic"), ("consumer", "topic")),
    "stream_ranges": SingleStoreLayout(("consumer", "topic"), ("consumer", "topic", "kafka_partition")),
    "stream_losses": SingleStoreLayout(("consumer", "topic"), ("consumer", "topic")),
    "stream_held_aggregates": SingleStoreLayout(("holder",), ("holder",)),
    "stream_identify_links": SingleStoreLayout(("anonymous_id",), ("anonymous_id",)),
    "stream_control": SingleStoreLayout(("consumer",), ("consumer",)),
    "stream_touched": SingleStoreLayout(("identity_id",), ("identity_id",)),
}


def _column_lines(spec: TableSpec) -> list[str]:
    lines = []
    for c in spec.columns:
        null = "" if c.nullable else " NOT NULL"
        default = f" DEFAULT {c.default}" if isinstance(c.default, int) else ""
        lines.append(f"{c.name} {c.sql_type}{null}{default}")
    return lines


def _index_name(spec: TableSpec, columns: tuple[str, ...]) -> str:
    return f"ix_{spec.name}_{'_'.join(columns)}"


def mysql_ddl(spec: TableSpec) -> str:
    """InnoDB table with ordinary B-tree secondary indexes."""
    lines = _column_lines(spec)
    lines.append(f"PRIMARY KEY ({', '.join(spec.key)})")
    lines += [f"KEY {_index_name(spec, cols)} ({', '.join(cols)})" for cols in spec.indexes]
    body = ",\n  ".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {spec.name} (\n  {body}\n) {_TABLE_OPTIONS_MYSQL}"


def singlestore_ddl(spec: TableSpec) -> str:
    """Columnstore table with shard key, sort key and hash indexes (see the module docstring)."""
    layout = SINGLESTORE_LAYOUT[spec.name]
    if not set(layout.shard_key) <= set(spec.key):
        raise AssertionError(f"{spec.name}: shard key must be a subset of the primary key")
    lines = _column_lines(spec)
    lines.append(f"PRIMARY KEY ({', '.join(spec.key)})")
    lines.append(f"SHARD KEY ({', '.join(layout.shard_key)})")
    lines.append(f"SORT KEY ({', '.join(layout.sort_key)})")
    lines += [f"KEY {_index_name(spec, cols)} ({', '.join(cols)}) USING HASH" for cols in layout.hash_indexes]
    body = ",\n  ".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {spec.name} (\n  {body}\n) {_TABLE_OPTIONS_SINGLESTORE}"


def all_ddl(singlestore: bool) -> list[str]:
    render = singlestore_ddl if singlestore else mysql_ddl
    return [render(spec) for spec in TABLES.values()]


def add_column_ddl(spec: TableSpec, column: Column) -> str:
    """ALTER TABLE adding a column a store created before the column existed (always nullable:
    rows already there have no value for it)."""
    return f"ALTER TABLE {spec.name} ADD COLUMN {column.name} {column.sql_type} NULL"


def append_only_triggers_ddl(table: str) -> list[str]:
    """Triggers refusing UPDATE and DELETE on ``table`` (MariaDB/MySQL; SingleStore has none)."""
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{event.lower()} BEFORE {event} ON {table} "
        f"FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{table} is append-only'"
        for event in ("UPDATE", "DELETE")
    ]
