"""The serving-store interface and the change-detecting upsert both backends share.

Why changes are detected in Python instead of trusting affected-row counts: MySQL reports 2 per
updated row and 0 per no-op update (unless the client sets FOUND_ROWS), SQLite reports 1 per
touched row, and SingleStore's columnstore makes a no-op update as costly as a real one. Reading
the existing rows of each chunk by an indexed key prefix and writing only the rows that differ
gives one exact meaning everywhere: an upsert returns how many rows it inserted or changed, and
a rerun of an identical load reads but writes nothing and returns 0.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from functools import cache
from itertools import accumulate, islice
from typing import Any, Self

from idr_pipeline.graph.paths import path_between
from idr_pipeline.store.tables import (
    ACTIVE,
    EVENT_AGGREGATE_RUNS,
    EVENT_AGGREGATES,
    GOLDEN_PROFILES,
    IDENTIFIERS,
    IDENTITIES,
    MATCH_DECISIONS,
    MATCH_LINKS,
    MERGE_HISTORY,
    POSSIBLE_MATCHES,
    RECORD_LINKS,
    SEGMENT_MEMBERS,
    SHARED_IDENTIFIERS,
    TABLES,
    Column,
    TableSpec,
)
from idr_pipeline.store.values import converter

Row = Mapping[str, Any]
_ABSENT = object()


class QueryTimeout(Exception):
    """A statement ran past the time it was given and the backend interrupted it."""


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def commit_batches(rows: Iterable[Any], size: int, group_by: str | None) -> Iterator[list[Any]]:
    """Lists of about ``size`` rows. With ``group_by``, a list ends only where the next row's
    ``group_by`` value differs from its last row's, so adjacent rows sharing a value stay in one
    list (a list grows past ``size`` only by the rest of one group)."""
    if size < 1:
        raise ValueError(f"a batch needs at least one row, got {size}")
    if group_by is None:
        yield from _chunks(rows, size)
        return
    batch: list[Any] = []
    last: Any = _ABSENT
    for row in rows:
        group = _as_mapping(row).get(group_by)
        if len(batch) >= size and group != last:
            yield batch
            batch = []
        batch.append(row)
        last = group
    if batch:
        yield batch


def _as_mapping(row: Any) -> Row:
    # Spark rows are accepted as they come off collect()/toLocalIterator().
    if isinstance(row, Mapping):
        return row
    if hasattr(row, "asDict"):
        return row.asDict()
    raise TypeError(f"store rows must be mappings, got {type(row).__name__}")


#: The reads behind ``get_identity``: (part, table, column compared with the identity id).
_IDENTITY_PARTS: tuple[tuple[str, TableSpec, str], ...] = (
    ("identity", IDENTITIES, "identity_id"),
    ("profile", GOLDEN_PROFILES, "identity_id"),
    ("record", RECORD_LINKS, "identity_id"),
    ("identifier", IDENTIFIERS, "identity_id"),
    ("merge_as_survivor", MERGE_HISTORY, "survivor_id"),
    ("merge_as_merged", MERGE_HISTORY, "merged_id"),
    ("segment", SEGMENT_MEMBERS, "identity_id"),
)
_IDENTITY_TABLES: dict[str, TableSpec] = {spec.name: spec for _, spec, _ in _IDENTITY_PARTS}


def _slot_family(column: Column) -> str:
    """Columns of one family may share a position of the ``get_identity`` row.

    Text and JSON text are one family (every backend hands both back as ``str``); dates,
    datetimes, integers and doubles each keep positions of their own, so a position never
    mixes two types and the backend's ``UNION`` keeps the column's type.
    """
    return "str" if column.kind in ("str", "json") else column.kind


def _identity_layout() -> tuple[int, dict[str, tuple[int, ...]]]:
    """Width of a ``get_identity`` row and, per table, the row position of each of its columns.

    Position 0 is the part number. Tables share positions: a table's n-th column of a family
    sits at that family's n-th position, so the row is as wide as the widest table per family
    (far narrower than one position per column of every table). The MySQL client parses a
    description per column and
    per statement, so every position saved is client time on each identity read.
    """
    families: dict[str, int] = {}
    for spec in _IDENTITY_TABLES.values():
        counts: dict[str, int] = defaultdict(int)
        for column in spec.columns:
            counts[_slot_family(column)] += 1
        for family, n in counts.items():
            families[family] = max(families.get(family, 0), n)
    starts = dict(zip(families, accumulate(families.values(), initial=1), strict=False))
    positions: dict[str, tuple[int, ...]] = {}
    for spec in _IDENTITY_TABLES.values():
        used: dict[str, int] = defaultdict(int)
        slots = []
        for column in spec.columns:
            family = _slot_family(column)
            slots.append(starts[family] + used[family])
            used[family] += 1
        positions[spec.name] = tuple(slots)
    return 1 + sum(families.values()), positions


_IDENTITY_WIDTH, _IDENTITY_POSITIONS = _identity_layout()


@cache
def _identity_sql(placeholder: str) -> str:
    """``UNION ALL`` of one indexed read per part, on the shared positions of ``_identity_layout``.

    Row layout: the part's number, then the part's table's columns at that table's positions,
    NULL at every other position. A position only ever carries one family of types (text,
    DATETIME, DATE, INT or DOUBLE) and NULL, so every backend keeps the column's type instead
    of coercing a mix to text, and the values decode exactly as in a single-table read.
    """
    branches = []
    for n, (_, spec, key) in enumerate(_IDENTITY_PARTS):
        select = [str(n)] + ["NULL"] * (_IDENTITY_WIDTH - 1)
        for column, position in zip(spec.names, _IDENTITY_POSITIONS[spec.name], strict=True):
            select[position] = column
        branches.append(f"SELECT {', '.join(select)} FROM {spec.name} WHERE {key} = {placeholder}")
    return "\nUNION ALL ".join(branches)


class IdentityStore(ABC):
    """Where resolved identities are served from: embedded SQLite or a MySQL-protocol server.

    Writes are idempotent upserts that return the number of rows actually changed; reads are
    single indexed queries. Every value travels as a bound parameter; only table and column
    names from :mod:`idr_pipeline.store.tables` are ever written into SQL text.
    """

    #: Rows per pre-read and per executemany batch: large enough to amortise round trips,
    #: small enough that the ``IN (...)`` list stays within every backend's parameter limit.
    chunk_size: int = 5000
    #: The driver's positional placeholder.
    placeholder: str = "?"

    # ----------------------------------------------------------------- backend hooks

    @property
    @abstractmethod
    def backend_name(self) -> str:
        """'sqlite', 'singlestore' or 'mysql' (MariaDB reports itself as 'mysql')."""

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create missing tables and indexes; safe to call on every start."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[None]:
        """Commit on success, roll back on error: a failed load must not leave half a chunk."""

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one DML statement and return the driver's affected-row count."""

    @abstractmethod
    def _upsert_sql(self, spec: TableSpec) -> str:
        """INSERT of all columns that overwrites ``spec.updatable`` when the key exists."""

    def _db_adapter(self, column: Column) -> Callable[[Any], Any] | None:
        """Canonical value -> the form the backend stores and hands back; None means as-is."""
        return None

    def _from_db(self, column: Column, value: Any) -> Any:
        """Stored value to what readers get: datetimes, ISO date strings, decoded JSON."""
        if value is None:
            return None
        if column.kind == "date" and isinstance(value, date):
            return value.isoformat()
        if column.kind == "json" and isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    # ----------------------------------------------------------------- writes

    def upsert_identities(self, rows: Iterable[Row]) -> int:
        """Rows of ``identity_id, status, merged_into, record_count[, created_at, updated_at]``."""
        return self._upsert(IDENTITIES, rows)

    def upsert_record_links(self, rows: Iterable[Row]) -> int:
        """Rows of ``record_id, identity_id, source[, linked_at]``: which identity owns a record."""
        return self._upsert(RECORD_LINKS, rows)

    def upsert_golden_profiles(self, rows: Iterable[Row]) -> int:
        """One survivorship-picked profile per identity; ``sources`` may be a list or JSON text."""
        return self._upsert(GOLDEN_PROFILES, rows)

    def upsert_identifiers(self, rows: Iterable[Row]) -> int:
        """Rows of ``id_type, id_value, identity_id``; returns how many were new."""
        return self._upsert(IDENTIFIERS, rows)

    def record_merges(self, rows: Iterable[Row]) -> int:
        """Rows of ``merged_id, survivor_id, reason[, merged_at]``; the first ``merged_at`` sticks."""
        return self._upsert(MERGE_HISTORY, rows)

    def _upsert(
        self,
        spec: TableSpec,
        rows: Iterable[Row],
        *,
        commit_rows: int | None = None,
        group_by: str | None = None,
    ) -> int:
        """Write the rows that differ from what is stored; returns how many.

        ``commit_rows`` None: one transaction for all rows, so readers see all of them or none.
        Otherwise a commit after about every ``commit_rows`` rows (see :func:`commit_batches`): a
        reader sees the load table by table and batch by batch, and a failure keeps the
        batches committed before it (a rerun of the idempotent load completes them). With
        ``group_by``, a batch only ends where that column's value changes, so rows sharing
        it, which the caller hands over adjacent, commit together.
        """
        now = datetime.now(UTC).replace(tzinfo=None)
        if commit_rows is None:
            with self._transaction():
                return self._upsert_rows(spec, rows, now)
        changed = 0
        for batch in commit_batches(rows, commit_rows, group_by):
            with self._transaction():
                changed += self._upsert_rows(spec, batch, now)
        return changed

    def _upsert_rows(self, spec: TableSpec, rows: Iterable[Row], now: datetime) -> int:
        """The upsert's work inside the caller's transaction: pre-read each chunk, write what differs."""
        convert = [(c.name, self._pipeline(c)) for c in spec.columns]
        key_pos = [spec.names.index(k) for k in spec.key]
        cmp_pos = [spec.names.index(c) for c in spec.compare]
        sql = self._upsert_sql(spec)
        changed = 0
        for chunk in _chunks(rows, self.chunk_size):
            # Later duplicates of a key win, as they would in a sequence of single upserts.
            prepared: dict[tuple[Any, ...], tuple[Any, ...]] = {}
            for raw in chunk:
                row = _as_mapping(raw)
                values = tuple([conv(row.get(name), now) for name, conv in convert])
                prepared[tuple(values[i] for i in key_pos)] = values
            existing = self._existing(spec, list(prepared))
            todo = [
                values
                for key, values in prepared.items()
                if existing.get(key, _ABSENT) != tuple(values[i] for i in cmp_pos)
            ]
            if todo:
                self._executemany(sql, todo)
                changed += len(todo)
        return changed

    def upsert_match_links(self, rows: Iterable[Row]) -> int:
        """Rows of ``record_id_l, record_id_r, identity_id, probability, weights``: kept links."""
        return self._upsert(MATCH_LINKS, rows)

    def prune_match_links(self) -> int:
        """Delete kept links whose records no longer both belong to the link's identity.

        A re-run can split or re-route an identity; a link row left pointing at the old
        grouping would make "why merged" explain a merge that no longer holds.
        """
        owner = f"SELECT identity_id FROM {RECORD_LINKS.name} r WHERE r.record_id = {{side}}"
        sql = (
            f"DELETE FROM {MATCH_LINKS.name} WHERE identity_id <> COALESCE(({owner.format(side='record_id_l')}), '') "
            f"OR identity_id <> COALESCE(({owner.format(side='record_id_r')}), '')"
        )
        with self._transaction():
            return self._execute(sql, ())

    def replace_rows(
        self, table: str, rows: Iterable[Row], *, commit_rows: int | None = None
    ) -> tuple[int, int]:
        """Make ``table`` hold exactly ``rows``: an idempotent upsert of them, then a delete of
        every row whose key is not among them. Returns (rows changed, rows deleted); a second
        call with the same rows returns (0, 0). ``commit_rows`` bounds the transactions of both
        steps as in :meth:`upsert`; None deletes in one transaction."""
        spec = TABLES[table]
        wanted: list[Row] = list(rows)
        changed = self._upsert(spec, wanted, commit_rows=commit_rows)
        keep = {tuple(_as_mapping(r).get(k) for k in spec.key) for r in wanted}
        sql = f"SELECT {', '.join(spec.key)} FROM {spec.name}"
        stale = [key for key in self._query(sql, ()) if tuple(key) not in keep]
        where = " AND ".join(f"{k} = {self.placeholder}" for k in spec.key)
        for batch in _chunks(iter(stale), commit_rows or max(1, len(stale))):
            with self._transaction():
                for chunk in _chunks(iter(batch), self.chunk_size):
                    self._executemany(f"DELETE FROM {spec.name} WHERE {where}", [tuple(k) for k in chunk])
        return changed, len(stale)

    def possible_matches_of(self, identity_id: str) -> list[dict[str, Any]]:
        """The identity's possible matches, each seen from its side: this identity's record,
        the other record and identity, the probability, the person-level weight and why."""
        out = []
        for side, other in (("l", "r"), ("r", "l")):
            for row in self._select(POSSIBLE_MATCHES, f"identity_id_{side}", identity_id):
                out.append(
                    {
                        "record_id": row[f"record_id_{side}"],
                        "other_record_id": row[f"record_id_{other}"],
                        "other_identity_id": row[f"identity_id_{other}"],
                        "probability": row["probability"],
                        "person_weight": row["person_weight"],
                        "reason": row["reason"],
                    }
                )
        return sorted(out, key=lambda r: (-r["probability"], r["record_id"], r["other_record_id"]))

    def record_decision(
        self, record_a: str, record_b: str, decision: str, reason: str | None, decided_by: str | None
    ) -> bool:
        """A steward forces two records together (``link``) or apart (``split``); the pair is
        stored in id order, so either way round names one decision. True when it changed."""
        if record_a == record_b:
            raise ValueError("a decision needs two different records")
        low, high = sorted((record_a, record_b))
        row = {"record_id_l": low, "record_id_r": high, "decision": decision, "reason": reason}
        return bool(self._upsert(MATCH_DECISIONS, [{**row, "decided_by": decided_by}]))

    def remove_decision(self, record_a: str, record_b: str) -> bool:
        low, high = sorted((record_a, record_b))
        return bool(self.delete_rows(MATCH_DECISIONS.name, {"record_id_l": low, "record_id_r": high}))

    def match_decisions(self) -> list[dict[str, Any]]:
        """Every steward decision, by pair."""
        return self.select_rows(MATCH_DECISIONS.name, order_by=["record_id_l", "record_id_r"])

    def why_merged(self, record_a: str, record_b: str) -> dict[str, Any]:
        """Why two records share an identity: the chain of kept links between them and the
        per-comparison weights of each link; ``same_identity`` False when they do not."""
        links = {
            r["record_id"]: r["identity_id"]
            for r in self._select_in(RECORD_LINKS, "record_id", [record_a, record_b])
        }
        a_id, b_id = links.get(record_a), links.get(record_b)
        answer: dict[str, Any] = {
            "record_a": record_a,
            "record_b": record_b,
            "identity_a": a_id,
            "identity_b": b_id,
            "same_identity": a_id is not None and a_id == b_id,
            "path": [],
        }
        if not answer["same_identity"] or record_a == record_b:
            return answer
        rows = {
            (r["record_id_l"], r["record_id_r"]): r for r in self._select(MATCH_LINKS, "identity_id", a_id)
        }
        steps = path_between(rows, record_a, record_b) or []
        # A decision is stored under the pair's smaller record id.
        decisions = {
            frozenset((d["record_id_l"], d["record_id_r"])): d
            for x, y in steps
            for d in self._select(MATCH_DECISIONS, "record_id_l", min(x, y))
        }
        answer["path"] = []
        for x, y in steps:
            link = rows.get((x, y)) or rows[(y, x)]
            step = {"from": x, "to": y, "probability": link["probability"], "weights": link["weights"]}
            decision = decisions.get(frozenset((x, y)))
            if decision is not None:
                step["decision"] = {
                    k: decision[k] for k in ("decision", "reason", "decided_by", "decided_at")
                }
            answer["path"].append(step)
        return answer

    def _select_in(self, spec: TableSpec, column: str, values: Sequence[Any]) -> list[dict[str, Any]]:
        marks = ", ".join([self.placeholder] * len(values))
        sql = f"SELECT {', '.join(spec.names)} FROM {spec.name} WHERE {column} IN ({marks})"
        return [
            {c.name: self._from_db(c, v) for c, v in zip(spec.columns, row, strict=True)}
            for row in self._query(sql, tuple(values))
        ]

    def prune_inactive(self) -> dict[str, int]:
        """Delete look-up and golden-profile rows of identities whose status is not 'active'.

        Upserts never delete, so after a merge the merged-away identity would keep answering
        ``lookup`` with its old identifiers (the survivor's rows are added alongside). Pruning
        by the identities table's status makes the survivor the only answer. Rows of
        identities that have no identities row at all are kept: that is a load still in
        progress, not a merge. ``record_links`` needs no pruning: it is keyed by record_id, so
        the upsert that moves a record to its survivor overwrites the old link. A second call
        deletes nothing. Returns the number of rows deleted per table.
        """
        ph = self.placeholder
        inactive = f"SELECT identity_id FROM {IDENTITIES.name} WHERE status <> {ph}"
        deleted: dict[str, int] = {}
        with self._transaction():
            for spec in (IDENTIFIERS, GOLDEN_PROFILES):
                sql = f"DELETE FROM {spec.name} WHERE identity_id IN ({inactive})"
                deleted[spec.name] = self._execute(sql, (ACTIVE,))
        return deleted

    def _pipeline(self, column: Column) -> Callable[[Any, datetime], Any]:
        convert = converter(column)
        adapt = self._db_adapter(column)
        if adapt is None:
            return convert

        def convert_and_adapt(value: Any, now: datetime) -> Any:
            result = convert(value, now)
            return None if result is None else adapt(result)

        return convert_and_adapt

    def _existing(
        self, spec: TableSpec, keys: list[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        """Key -> compare-column values of the rows already stored, by one index range per group."""
        key_pos = {name: i for i, name in enumerate(spec.key)}
        groups: dict[tuple[Any, ...], set[Any]] = defaultdict(set)
        for key in keys:
            groups[tuple(key[key_pos[c]] for c in spec.probe_eq)].add(key[key_pos[spec.probe_in]])
        wanted = set(keys)
        select = ", ".join(spec.key + spec.compare)
        width = len(spec.key)
        found: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for eq_values, in_values in groups.items():
            conditions = [f"{c} = {self.placeholder}" for c in spec.probe_eq]
            conditions.append(f"{spec.probe_in} IN ({', '.join([self.placeholder] * len(in_values))})")
            sql = f"SELECT {select} FROM {spec.name} WHERE {' AND '.join(conditions)}"
            for row in self._query(sql, [*eq_values, *in_values]):
                key = tuple(row[:width])
                if key in wanted:
                    found[key] = tuple(row[width:])
        return found

    # ----------------------------------------------------------------- reads

    def lookup(self, id_type: str, id_value: str) -> list[str]:
        """Identity ids carrying this identifier, by the (id_type, id_value) index; usually one."""
        ph = self.placeholder
        sql = (
            f"SELECT identity_id FROM {IDENTIFIERS.name} "
            f"WHERE id_type = {ph} AND id_value = {ph} ORDER BY identity_id"
        )
        return [row[0] for row in self._query(sql, (id_type, id_value))]

    def get_identity(self, identity_id: str) -> dict[str, Any] | None:
        """Everything known about one identity, or None when there is no identities row.

        Keys: the identities columns, ``profile`` (golden profile without its key, or None),
        ``record_ids``, ``records`` (record_id/source/linked_at), ``identifiers``
        (id_type/id_value), ``merges`` (every merge_history row naming this identity as
        survivor or as merged, oldest first) and ``segments`` (segment_id/score/assigned_at of
        its current memberships). A merged identity is returned as stored; follow
        ``merged_into`` to reach its survivor.

        One statement, one round trip: against a server store each round trip costs network
        and client time plus a GIL hand-over in a threaded server, and one read per table would
        make those most of ``GET /identities/{id}``'s latency.
        """
        rows = self._query(_identity_sql(self.placeholder), (identity_id,) * len(_IDENTITY_PARTS))
        by_part: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            tag, spec, _ = _IDENTITY_PARTS[int(row[0])]
            positions = _IDENTITY_POSITIONS[spec.name]
            by_part[tag].append(
                {c.name: self._from_db(c, row[i]) for c, i in zip(spec.columns, positions, strict=True)}
            )
        if not by_part["identity"]:
            return None
        result = by_part["identity"][0]
        profiles = by_part["profile"]
        result["profile"] = {k: v for k, v in profiles[0].items() if k != "identity_id"} if profiles else None
        records = sorted(by_part["record"], key=lambda r: r["record_id"])
        result["records"] = [{k: v for k, v in r.items() if k != "identity_id"} for r in records]
        result["record_ids"] = [r["record_id"] for r in records]
        result["identifiers"] = sorted(
            ({"id_type": r["id_type"], "id_value": r["id_value"]} for r in by_part["identifier"]),
            key=lambda r: (r["id_type"], r["id_value"]),
        )
        merges = by_part["merge_as_survivor"] + [
            r for r in by_part["merge_as_merged"] if r["survivor_id"] != identity_id
        ]
        result["merges"] = sorted(merges, key=lambda r: (r["merged_at"], r["merged_id"], r["survivor_id"]))
        result["segments"] = sorted(
            (
                {"segment_id": m["segment_id"], "score": m["score"], "assigned_at": m["assigned_at"]}
                for m in by_part["segment"]
            ),
            key=lambda m: m["segment_id"],
        )
        return result

    def _select(
        self, spec: TableSpec, column: str, value: Any, order_by: str | None = None
    ) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(spec.names)} FROM {spec.name} WHERE {column} = {self.placeholder}"
        if order_by:
            sql += f" ORDER BY {order_by}"
        return [
            {c.name: self._from_db(c, v) for c, v in zip(spec.columns, row, strict=True)}
            for row in self._query(sql, (value,))
        ]

    # ----------------------------------------------------------------- generic access
    # For the audience, API-key, activation and tombstone tables: callers name a table from
    # TABLES and pass values; column names are checked against its spec before they reach SQL
    # text, and every value is a bound parameter.

    def upsert(
        self, table: str, rows: Iterable[Row], *, commit_rows: int | None = None, group_by: str | None = None
    ) -> int:
        """Idempotent upsert into any table in TABLES; returns rows actually changed. One
        transaction, or bounded ones with ``commit_rows`` (and ``group_by``): see ``_upsert``."""
        if group_by is not None:
            TABLES[table].column(group_by)  # KeyError for a column the table does not have
        return self._upsert(TABLES[table], rows, commit_rows=commit_rows, group_by=group_by)

    def _where(self, spec: TableSpec, where: Mapping[str, Any]) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for name, value in where.items():
            spec.column(name)  # KeyError for a column the table does not have
            if isinstance(value, list | tuple | set | frozenset):
                values = list(value)
                if not values:
                    clauses.append("1 = 0")
                    continue
                clauses.append(f"{name} IN ({', '.join([self.placeholder] * len(values))})")
                params.extend(values)
            elif value is None:
                clauses.append(f"{name} IS NULL")
            else:
                clauses.append(f"{name} = {self.placeholder}")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def select_rows(
        self,
        table: str,
        where: Mapping[str, Any] | None = None,
        order_by: Sequence[str] = (),
        limit: int | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Rows by equality/IN filters; ``after`` gives keyset pagination on one column
        (``{"identity_id": last_seen}`` returns rows with a greater value, ordered by it)."""
        spec = TABLES[table]
        clause, params = self._where(spec, where or {})
        order = list(order_by)
        if after:
            ((col, value),) = after.items()
            spec.column(col)
            clause += (" AND " if clause else " WHERE ") + f"{col} > {self.placeholder}"
            params.append(value)
            order = [col, *[c for c in order if c != col]]
        for col in order:
            spec.column(col)
        sql = f"SELECT {', '.join(spec.names)} FROM {spec.name}{clause}"
        if order:
            sql += f" ORDER BY {', '.join(order)}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            {c.name: self._from_db(c, v) for c, v in zip(spec.columns, row, strict=True)}
            for row in self._query(sql, params)
        ]

    def update_rows(self, table: str, values: Mapping[str, Any], where: Mapping[str, Any]) -> int:
        """``UPDATE table SET values WHERE where`` for the named columns only, in one transaction.

        For changing one column of rows that other writers also change (a key's last use beside
        its revocation), where read-modify-upsert of the whole row could undo their write.
        """
        if not where or not values:
            raise ValueError("update_rows needs values and at least one filter")
        spec = TABLES[table]
        now = datetime.now(UTC).replace(tzinfo=None)
        sets, params = [], []
        for name, value in values.items():
            sets.append(f"{spec.column(name).name} = {self.placeholder}")
            params.append(self._pipeline(spec.column(name))(value, now))
        clause, where_params = self._where(spec, where)
        with self._transaction():
            return self._execute(
                f"UPDATE {spec.name} SET {', '.join(sets)}{clause}", [*params, *where_params]
            )

    def append_rows(self, table: str, rows: Iterable[Row]) -> None:
        """Plain INSERTs in one transaction: for append-only tables, where a key seen twice is
        an error rather than an update."""
        with self._transaction():
            self._insert_rows(TABLES[table], rows)

    def count_rows(self, table: str, where: Mapping[str, Any] | None = None) -> int:
        spec = TABLES[table]
        clause, params = self._where(spec, where or {})
        return int(self._query(f"SELECT COUNT(*) FROM {spec.name}{clause}", params)[0][0])

    def delete_rows(self, table: str, where: Mapping[str, Any]) -> int:
        """Delete by filters; an empty filter is refused so a bug cannot empty a table."""
        if not where:
            raise ValueError("delete_rows needs at least one filter")
        spec = TABLES[table]
        clause, params = self._where(spec, where)
        with self._transaction():
            return self._execute(f"DELETE FROM {spec.name}{clause}", params)

    # ----------------------------------------------------------------- erasure

    def erase_identities(
        self, identity_ids: Sequence[str], cookies: Sequence[str] = (), cookie_holders: Sequence[str] = ()
    ) -> dict[str, int]:
        """Delete every row that names these identities, in one transaction; rows per table.

        One transaction because a half-done erasure is the worst outcome: the API would report
        the person gone while their golden profile still answers look-ups. Match links are
        found by identity and by either record, so a link row of another identity that still
        names an erased record goes too.

        ``cookies`` are anonymous ids only these identities held. The stream service keeps rows
        under a cookie that name no identity: an identify link two identities contested (its
        identity NULL), and events held back under the cookie until an identify event ties it to
        someone (``cookie_holders``: those rows' holder keys). Both are the person's data and go
        too.
        """
        ids = list(dict.fromkeys(identity_ids))
        if not ids:
            return {}
        marks = ", ".join([self.placeholder] * len(ids))
        records = f"SELECT record_id FROM {RECORD_LINKS.name} WHERE identity_id IN ({marks})"
        # (table, WHERE clause, how many copies of the id list it binds); match_links first,
        # while record_links still says which records were the erased identities'.
        plan = [
            (
                MATCH_LINKS.name,
                f"identity_id IN ({marks}) OR record_id_l IN ({records}) OR record_id_r IN ({records})",
                3,
            ),
            (
                POSSIBLE_MATCHES.name,
                f"identity_id_l IN ({marks}) OR identity_id_r IN ({marks}) "
                f"OR record_id_l IN ({records}) OR record_id_r IN ({records})",
                4,
            ),
            (
                MATCH_DECISIONS.name,
                f"record_id_l IN ({records}) OR record_id_r IN ({records})",
                2,
            ),
            # Shared values the erased identities held: the values themselves are personal data.
            (
                SHARED_IDENTIFIERS.name,
                f"EXISTS (SELECT 1 FROM {IDENTIFIERS.name} i WHERE i.identity_id IN ({marks}) "
                f"AND i.id_type = {SHARED_IDENTIFIERS.name}.id_type AND i.id_value = {SHARED_IDENTIFIERS.name}.id_value)",
                1,
            ),
            (RECORD_LINKS.name, f"identity_id IN ({marks})", 1),
            (GOLDEN_PROFILES.name, f"identity_id IN ({marks})", 1),
            (IDENTIFIERS.name, f"identity_id IN ({marks})", 1),
            (MERGE_HISTORY.name, f"merged_id IN ({marks}) OR survivor_id IN ({marks})", 2),
            ("segment_members", f"identity_id IN ({marks})", 1),
            ("segment_membership_history", f"identity_id IN ({marks})", 1),
            (EVENT_AGGREGATES.name, f"identity_id IN ({marks})", 1),
            # The stream service's rows naming the identity (tables.STREAM_TABLES).
            ("stream_held_aggregates", f"holder IN ({marks})", 1),
            ("stream_identify_links", f"identity_id IN ({marks})", 1),
            (IDENTITIES.name, f"identity_id IN ({marks})", 1),
        ]
        by_cookie = [
            (table, column, list(dict.fromkeys(values)))
            for table, column, values in (
                ("stream_identify_links", "anonymous_id", cookies),
                ("stream_held_aggregates", "holder", cookie_holders),
            )
            if values
        ]
        deleted: dict[str, int] = {}
        with self._transaction():
            for table, clause, copies in plan:
                deleted[table] = self._execute(f"DELETE FROM {table} WHERE {clause}", ids * copies)
            for table, column, values in by_cookie:
                cookie_marks = ", ".join([self.placeholder] * len(values))
                deleted[table] += self._execute(
                    f"DELETE FROM {table} WHERE {column} IN ({cookie_marks})", values
                )
        return deleted

    # ----------------------------------------------------------------- event aggregates

    def publish_event_aggregates(self, rows: Iterable[Row], run: Row) -> dict[str, Any]:
        """Replace ``event_aggregates`` with ``rows`` and record the publish, in one transaction.

        One transaction because ``days_ago`` counts from this publish's instant: a reader must
        see every row of one publish or of the previous one, never a mix (SQLite's WAL readers
        and the servers' snapshots answer from the old rows until the commit). Rows of
        identities the store does not hold are deleted before the commit and their events
        counted as ``unknown_identity``: until the next resolution run an erased person's
        events still resolve through the lake's identifiers, and must not come back here.

        ``run`` carries ``as_of``, ``window_days``, ``events``, ``unresolved`` and
        ``other_types``; ``aggregated``, ``unknown_identity`` and ``aggregate_rows`` are
        counted from what was written. Raises ValueError, rolling back, when the events do not
        balance (events = aggregated + unresolved + other_types + unknown_identity).
        """
        spec, ids = EVENT_AGGREGATES.name, IDENTITIES.name
        unknown = f"identity_id NOT IN (SELECT identity_id FROM {ids})"
        record = dict(run)
        with self._transaction():
            self._execute(f"DELETE FROM {spec}")
            self._insert_rows(EVENT_AGGREGATES, rows)
            _, dropped = self._query(
                f"SELECT COUNT(*), COALESCE(SUM(events), 0) FROM {spec} WHERE {unknown}"
            )[0]
            self._execute(f"DELETE FROM {spec} WHERE {unknown}")
            kept, aggregated = self._query(f"SELECT COUNT(*), COALESCE(SUM(events), 0) FROM {spec}")[0]
            record.update(aggregated=int(aggregated), unknown_identity=int(dropped), aggregate_rows=int(kept))
            accounted = sum(
                int(record[k]) for k in ("aggregated", "unresolved", "other_types", "unknown_identity")
            )
            if accounted != int(record["events"]):
                raise ValueError(f"event aggregates do not balance: {record}")
            as_of = self._pipeline(EVENT_AGGREGATE_RUNS.column("as_of"))(record["as_of"], datetime.now(UTC))
            self._execute(
                f"DELETE FROM {EVENT_AGGREGATE_RUNS.name} WHERE as_of = {self.placeholder}", (as_of,)
            )
            self._insert_rows(EVENT_AGGREGATE_RUNS, [record])
        return record

    def _insert_rows(self, spec: TableSpec, rows: Iterable[Row]) -> None:
        """Plain INSERTs in chunks, inside the caller's transaction: a duplicate key is an error."""
        now = datetime.now(UTC).replace(tzinfo=None)
        convert = [(c.name, self._pipeline(c)) for c in spec.columns]
        marks = ", ".join([self.placeholder] * len(spec.columns))
        sql = f"INSERT INTO {spec.name} ({', '.join(spec.names)}) VALUES ({marks})"
        for chunk in _chunks(rows, self.chunk_size):
            values = [tuple(conv(_as_mapping(row).get(name), now) for name, conv in convert) for row in chunk]
            self._executemany(sql, values)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a compiled SELECT whose text names only TABLES columns and binds every value.

        For query compilers such as ``idr_pipeline.api.audience_sql``; never pass text built
        from client input.
        """
        if not sql.lstrip().upper().startswith("SELECT"):
            raise ValueError("query() runs SELECT statements only")
        return self._query(sql, params)

    def query_with_timeout(
        self, sql: str, params: Sequence[Any] = (), timeout_seconds: float = 0.0
    ) -> list[tuple[Any, ...]]:
        """:meth:`query` interrupted by the backend after ``timeout_seconds`` (QueryTimeout);
        0 means no limit. A backend that cannot interrupt a statement runs it unlimited."""
        if not sql.lstrip().upper().startswith("SELECT"):
            raise ValueError("query() runs SELECT statements only")
        if timeout_seconds <= 0:
            return self._query(sql, params)
        return self._query_with_timeout(sql, params, timeout_seconds)

    def _query_with_timeout(
        self, sql: str, params: Sequence[Any], timeout_seconds: float
    ) -> list[tuple[Any, ...]]:
        return self._query(sql, params)

    def tombstone_hashes(self) -> dict[str, set[str]]:
        """id_type -> plain SHA-256 hex of values erased before tombstones were keyed (legacy)."""
        out: dict[str, set[str]] = defaultdict(set)
        for id_type, digest in self._query(
            "SELECT id_type, value_sha256 FROM tombstones WHERE scheme IS NULL"
        ):
            out[id_type].add(digest)
        return dict(out)

    def tombstone_rows(self) -> list[tuple[str, str, str | None, str | None]]:
        """(id_type, digest, scheme, key_id) of every tombstone; scheme None is plain SHA-256."""
        return [
            (str(t), str(d), s, k)
            for t, d, s, k in self._query("SELECT id_type, value_sha256, scheme, key_id FROM tombstones")
        ]

    def table_counts(self) -> dict[str, int]:
        """Row count per table, for run summaries and the 'a second run changes nothing' check."""
        return {name: int(self._query(f"SELECT COUNT(*) FROM {name}")[0][0]) for name in TABLES}

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
