"""The server store: SingleStore in production, MariaDB/MySQL in development and tests.

All three speak the MySQL protocol, so one client (``singlestoredb``) and one upsert dialect
(``INSERT ... ON DUPLICATE KEY UPDATE``) serve them; only the DDL differs, and it is chosen by
asking the server what it is rather than trusting the URL scheme.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import singlestoredb as s2

from idr_pipeline.store.base import IdentityStore, QueryTimeout
from idr_pipeline.store.singlestore_ddl import add_column_ddl, all_ddl, append_only_triggers_ddl
from idr_pipeline.store.tables import APPEND_ONLY, TABLES, TableSpec

log = logging.getLogger(__name__)

#: Schemes accepted for this backend; the client itself only needs the host/user/db part.
SERVER_SCHEMES = ("singlestoredb", "mysql", "mariadb")


def client_url(url: str) -> str:
    """Rewrite ``mysql://`` and ``mariadb://`` to the ``singlestoredb://`` scheme the client knows."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SERVER_SCHEMES:
        raise ValueError(f"not a singlestoredb/mysql URL: {url!r}")
    return f"singlestoredb://{rest}"


def is_singlestore(conn: Any) -> bool:
    """``@@memsql_version`` exists only on SingleStore (MemSQL's old name survives there)."""
    cursor = conn.cursor()
    try:
        cursor.execute("SELECT @@memsql_version")
        cursor.fetchall()
        return True
    except s2.Error:
        return False
    finally:
        cursor.close()


class SingleStoreIdentityStore(IdentityStore):
    """SingleStore, or MariaDB/MySQL standing in for it, through the ``singlestoredb`` client.

    The connection runs in autocommit mode, so reads always see the latest committed load;
    each upsert call wraps its chunks in one explicit transaction.
    """

    placeholder = "%s"

    def __init__(self, url: str) -> None:
        self._conn = s2.connect(client_url(url), autocommit=True)
        self._singlestore = is_singlestore(self._conn)

    @property
    def backend_name(self) -> str:
        return "singlestore" if self._singlestore else "mysql"

    def ensure_schema(self) -> None:
        # DDL commits implicitly on MySQL, so it runs outside _transaction.
        for statement in all_ddl(self._singlestore):
            self._query(statement)
        # A store created before a column was added gets it now (nullable).
        present: dict[str, set[str]] = {}
        for table, column in self._query(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE()"
        ):
            present.setdefault(str(table).lower(), set()).add(str(column).lower())
        for spec in TABLES.values():
            for column in spec.columns:
                if column.name.lower() not in present.get(spec.name.lower(), set()):
                    self._query(add_column_ddl(spec, column))
        if not self._singlestore:
            for table in APPEND_ONLY:
                for statement in append_only_triggers_ddl(table):
                    try:
                        self._query(statement)
                    except s2.Error as exc:  # no TRIGGER privilege: the table stays insert-only in code
                        log.warning("could not make %s append-only in the database: %s", table, exc)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.begin()
        try:
            yield
        except BaseException:
            self._conn.rollback()
            raise
        self._conn.commit()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._conn.cursor()
        try:
            # No params -> no interpolation, so a literal '%' in DDL is left alone.
            cursor.execute(sql, tuple(params) if params else None)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    #: Server errors that mean "statement interrupted by its time limit": MariaDB's
    #: max_statement_time (1969) and MySQL's max_execution_time (3024).
    TIMEOUT_ERRORS = (1969, 3024)

    def _query_with_timeout(
        self, sql: str, params: Sequence[Any], timeout_seconds: float
    ) -> list[tuple[Any, ...]]:
        """MariaDB: ``SET STATEMENT max_statement_time = s FOR <select>``; MySQL: the
        ``MAX_EXECUTION_TIME(ms)`` optimizer hint. SingleStore has neither (its resource pools'
        QUERY_TIMEOUT is set by the operator), so there the statement runs unlimited."""
        flavor = self._flavor()
        if flavor == "mariadb":
            sql = f"SET STATEMENT max_statement_time = {float(timeout_seconds):.3f} FOR {sql}"
        elif flavor == "mysql":
            head, _, rest = sql.lstrip().partition(" ")
            sql = f"{head} /*+ MAX_EXECUTION_TIME({max(1, int(timeout_seconds * 1000))}) */ {rest}"
        try:
            return self._query(sql, params)
        except s2.Error as exc:
            if exc.args and exc.args[0] in self.TIMEOUT_ERRORS:
                raise QueryTimeout(f"statement interrupted after {timeout_seconds:g} s") from exc
            raise

    def _flavor(self) -> str:
        """'singlestore', 'mariadb' or 'mysql', asked of the server once per connection."""
        flavor = getattr(self, "_server_flavor", None)
        if flavor is None:
            if self._singlestore:
                flavor = "singlestore"
            else:
                version = str(self._query("SELECT VERSION()")[0][0])
                flavor = "mariadb" if "mariadb" in version.lower() else "mysql"
            self._server_flavor = flavor
        return flavor

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        # DELETE/UPDATE counts are exact on MySQL; only upserts report 2-per-update (see base).
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql, tuple(params) if params else None)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        # The client folds executemany of an INSERT into multi-row INSERT statements.
        cursor = self._conn.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()

    def _upsert_sql(self, spec: TableSpec) -> str:
        marks = ", ".join(["%s"] * len(spec.columns))
        head = f"INSERT INTO {spec.name} ({', '.join(spec.names)}) VALUES ({marks})"
        # Tables whose every column is key have nothing to update: a self-assignment of the
        # first key column makes a duplicate a no-op without INSERT IGNORE's habit of turning
        # data errors (truncation, bad dates) into warnings.
        updates = spec.updatable or spec.key[:1]
        sets = ", ".join(f"{c} = VALUES({c})" for c in updates)
        return f"{head} ON DUPLICATE KEY UPDATE {sets}"
