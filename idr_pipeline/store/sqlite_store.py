"""The embedded default store: one SQLite file, so a fresh clone serves identities with no server."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from idr_pipeline.store.base import IdentityStore, QueryTimeout
from idr_pipeline.store.tables import APPEND_ONLY, TABLES, Column, TableSpec

_AFFINITY = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "REAL",
    "date": "TEXT",
    "datetime": "TEXT",
    "json": "TEXT",
}


def _iso_timestamp(value: datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds")


def sqlite_path_from_url(url: str) -> str:
    """``sqlite:///`` followed by the path, as SQLAlchemy spells it (four slashes = absolute)."""
    prefix = "sqlite:///"
    # The scheme is case-insensitive (as open_store treats it); the path is not.
    if url[: len(prefix)].lower() != prefix:
        raise ValueError(f"not a sqlite URL (expected {prefix}<path>): {url!r}")
    path = url[len(prefix) :]
    return path or ":memory:"


def sqlite_ddl(spec: TableSpec) -> list[str]:
    """CREATE TABLE plus CREATE INDEX statements; IF NOT EXISTS everywhere makes them rerunnable."""
    lines = [f"{c.name} {_AFFINITY[c.kind]}{'' if c.nullable else ' NOT NULL'}" for c in spec.columns]
    lines.append(f"PRIMARY KEY ({', '.join(spec.key)})")
    # WITHOUT ROWID clusters the table on its key, so the identifiers look-up is one B-tree
    # descent that already holds the answer.
    suffix = " WITHOUT ROWID" if spec.without_rowid else ""
    body = ",\n  ".join(lines)
    statements = [f"CREATE TABLE IF NOT EXISTS {spec.name} (\n  {body}\n){suffix}"]
    for columns in spec.indexes:
        name = f"ix_{spec.name}_{'_'.join(columns)}"
        statements.append(f"CREATE INDEX IF NOT EXISTS {name} ON {spec.name} ({', '.join(columns)})")
    return statements


def sqlite_append_only_triggers(table: str) -> list[str]:
    """Triggers refusing UPDATE and DELETE on ``table``."""
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{event.lower()} BEFORE {event} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        for event in ("UPDATE", "DELETE")
    ]


class SqliteIdentityStore(IdentityStore):
    """SQLite in WAL mode: readers (the API) keep reading while a load commits.

    The connection is opened with ``check_same_thread=False`` because Dagster and web servers
    hand objects between threads; it is still one connection, so give each concurrent writer
    its own store.
    """

    placeholder = "?"

    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:" and not path.startswith("file:"):
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in _transaction).
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across application crashes in WAL mode; only an OS crash can lose
        # the last commits, which a rerun of the idempotent load repairs.
        self._conn.execute("PRAGMA synchronous=NORMAL")

    @classmethod
    def from_url(cls, url: str) -> SqliteIdentityStore:
        return cls(sqlite_path_from_url(url))

    @property
    def backend_name(self) -> str:
        return "sqlite"

    def ensure_schema(self) -> None:
        with self._transaction():
            for spec in TABLES.values():
                for statement in sqlite_ddl(spec):
                    self._conn.execute(statement)
                # A store created before a column was added gets it now (nullable, so existing
                # rows read NULL).
                have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({spec.name})")}
                for column in spec.columns:
                    if column.name not in have:
                        self._conn.execute(
                            f"ALTER TABLE {spec.name} ADD COLUMN {column.name} {_AFFINITY[column.kind]}"
                        )
            for table in APPEND_ONLY:
                for statement in sqlite_append_only_triggers(table):
                    self._conn.execute(statement)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so two loaders queue instead of deadlocking
        # on a read-to-write upgrade.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._conn.executemany(sql, rows)

    #: SQLite virtual-machine instructions between two looks at the clock.
    PROGRESS_STEPS = 10_000

    def _query_with_timeout(
        self, sql: str, params: Sequence[Any], timeout_seconds: float
    ) -> list[tuple[Any, ...]]:
        """A progress handler checks the clock every PROGRESS_STEPS instructions and makes
        SQLite abandon the statement once the deadline passed (``OperationalError:
        interrupted``). The connection is this thread's own, so no other statement shares it."""
        deadline = time.monotonic() + timeout_seconds
        timed_out = False

        def past_deadline() -> int:
            nonlocal timed_out
            timed_out = time.monotonic() > deadline
            return 1 if timed_out else 0

        self._conn.set_progress_handler(past_deadline, self.PROGRESS_STEPS)
        try:
            return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.OperationalError as exc:
            if timed_out:
                raise QueryTimeout(f"statement interrupted after {timeout_seconds:g} s") from exc
            raise
        finally:
            self._conn.set_progress_handler(None, 0)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def _upsert_sql(self, spec: TableSpec) -> str:
        marks = ", ".join(["?"] * len(spec.columns))
        head = f"INSERT INTO {spec.name} ({', '.join(spec.names)}) VALUES ({marks})"
        target = f"ON CONFLICT ({', '.join(spec.key)})"
        if not spec.updatable:
            return f"{head} {target} DO NOTHING"
        sets = ", ".join(f"{c} = excluded.{c}" for c in spec.updatable)
        return f"{head} {target} DO UPDATE SET {sets}"

    def _db_adapter(self, column: Column) -> Callable[[Any], Any] | None:
        # ISO text sorts chronologically and reads back unambiguously.
        if column.kind == "datetime":
            return _iso_timestamp
        if column.kind == "date":
            return date.isoformat
        return None

    def _from_db(self, column: Column, value: Any) -> Any:
        if column.kind == "datetime" and isinstance(value, str):
            return datetime.fromisoformat(value)
        return super()._from_db(column, value)
