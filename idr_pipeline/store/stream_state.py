"""The stream service's writes to the store: one transaction per micro-batch, and its bookkeeping.

A micro-batch changes event aggregates, held aggregates, identify links, memberships, the
offsets and the range ledger; all of it commits together or not at all, so a crash at any
point leaves the store either before or after the batch, and the offsets say which.
:func:`single_transaction` makes the store's own writes (``upsert``, ``delete_rows``...) join
one transaction instead of each committing on its own.

Aggregates are *added to* here (read, add, write the sums), so applying a batch twice would
count it twice: the offsets written in the same transaction are what prevent that.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.tables import (
    EVENT_AGGREGATE_RUNS,
    EVENT_AGGREGATES,
    STREAM_CONTROL,
    STREAM_HELD_AGGREGATES,
    STREAM_TOUCHED,
    TableSpec,
)

#: The name the stream service's rows carry in the stream_* tables (one service per store).
DEFAULT_CONSUMER = "idr-stream"

#: event_aggregates key without identity: (event_type, category, days_ago, product_id, campaign).
AggregateKey = tuple[str, str, int, str, str]
#: Ids per IN (...) list.
CHUNK = 1000
#: Ids per IN (...) list of a single-column read: far below SQLite's 32766 and MySQL's 65535
#: bound parameters, and few statements per micro-batch.
BIG_CHUNK = 10_000


@contextmanager
def _joined() -> Iterator[None]:
    yield


@contextmanager
def single_transaction(store: IdentityStore) -> Iterator[None]:
    """One transaction around everything inside; the store's own writes join it.

    The store's methods each open ``_transaction()``; while this block runs, the instance's
    ``_transaction`` is a no-op context, so they run inside the outer one (a nested BEGIN would
    fail on SQLite and commit early on MySQL). Re-entrant: an inner block joins the outer one.
    """
    if "_transaction" in vars(store):
        yield
        return
    with store._transaction():
        store._transaction = _joined  # type: ignore[method-assign]
        try:
            yield
        finally:
            del store._transaction


def _chunks(values: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# ------------------------------------------------------------------ aggregates


@dataclass
class Sums:
    events: int = 0
    amount: float = 0.0

    def add(self, events: int, amount: float) -> None:
        self.events += events
        self.amount += amount


#: Tables whose rows this module builds from native str/int/float values only.
_NATIVE = frozenset({EVENT_AGGREGATES.name, STREAM_HELD_AGGREGATES.name})


def _add_rows(store: IdentityStore, spec: TableSpec, rows: list[dict[str, Any]]) -> int:
    """INSERT rows, or add their ``events`` and ``amount`` to the existing row of the same key.

    One additive upsert per row and no pre-read: the database adds, so a batch costs one
    executemany whatever the table holds.
    """
    if not rows:
        return 0
    now = datetime.now(UTC)
    convert = [(c.name, store._pipeline(c)) for c in spec.columns]
    marks = ", ".join([store.placeholder] * len(spec.columns))
    head = f"INSERT INTO {spec.name} ({', '.join(spec.names)}) VALUES ({marks})"
    if store.backend_name == "sqlite":
        sql = (
            f"{head} ON CONFLICT ({', '.join(spec.key)}) DO UPDATE SET "
            f"events = {spec.name}.events + excluded.events, amount = {spec.name}.amount + excluded.amount"
        )
    else:
        sql = f"{head} ON DUPLICATE KEY UPDATE events = events + VALUES(events), amount = amount + VALUES(amount)"
    if spec.name in _NATIVE:
        # Every column is text, an integer or a float already: no conversion to apply.
        values = [tuple(row[name] for name in spec.names) for row in rows]
    else:
        values = [tuple(conv(row.get(name), now) for name, conv in convert) for row in rows]
    with store._transaction():
        for chunk in _chunks(values, store.chunk_size):
            store._executemany(sql, chunk)
    return len(values)


def add_event_aggregates(store: IdentityStore, deltas: Mapping[tuple[str, AggregateKey], Sums]) -> int:
    """Add ``{(identity_id, key): Sums}`` to event_aggregates; returns rows written."""
    rows = [
        {
            "event_type": key[0],
            "category": key[1],
            "days_ago": key[2],
            "identity_id": identity,
            "product_id": key[3],
            "campaign": key[4],
            "events": sums.events,
            "amount": sums.amount,
        }
        for (identity, key), sums in deltas.items()
    ]
    return _add_rows(store, EVENT_AGGREGATES, rows)


#: stream_held_aggregates key without holder: (event_type, category, day, product_id, campaign).
HeldKey = tuple[str, str, int, str, str]


def add_held(store: IdentityStore, deltas: Mapping[tuple[str, HeldKey], Sums]) -> int:
    """Add ``{(holder, key): Sums}`` to the held aggregates."""
    rows = [
        {
            "holder": holder,
            "event_type": key[0],
            "category": key[1],
            "day": key[2],
            "product_id": key[3],
            "campaign": key[4],
            "events": sums.events,
            "amount": sums.amount,
        }
        for (holder, key), sums in deltas.items()
    ]
    return _add_rows(store, STREAM_HELD_AGGREGATES, rows)


def take_held(store: IdentityStore, holders: Iterable[str]) -> list[dict]:
    """Remove and return the held rows of these holders."""
    out: list[dict] = []
    for chunk in _chunks(sorted(set(holders))):
        out += store.select_rows(STREAM_HELD_AGGREGATES.name, {"holder": chunk})
        store.delete_rows(STREAM_HELD_AGGREGATES.name, {"holder": chunk})
    return out


def take_due(store: IdentityStore, up_to_day: int, skip_prefix: str) -> list[dict]:
    """Remove and return held rows of days up to ``up_to_day`` whose holder does not start with
    ``skip_prefix`` (identities' future-dated events whose day has come; cookies stay held)."""
    ph = store.placeholder
    # SUBSTR rather than LIKE: the prefix holds "_", a LIKE wildcard, and escapes differ by backend.
    where = f"day <= {ph} AND SUBSTR(holder, 1, {len(skip_prefix)}) <> {ph}"
    params = (up_to_day, skip_prefix)
    names = STREAM_HELD_AGGREGATES.names
    rows = store.query(f"SELECT {', '.join(names)} FROM {STREAM_HELD_AGGREGATES.name} WHERE {where}", params)
    store._execute(f"DELETE FROM {STREAM_HELD_AGGREGATES.name} WHERE {where}", params)
    return [dict(zip(names, r, strict=True)) for r in rows]


def drop_held_before(store: IdentityStore, day: int) -> int:
    """Forget held rows of days no window reaches any more."""
    ph = store.placeholder
    return store._execute(f"DELETE FROM {STREAM_HELD_AGGREGATES.name} WHERE day < {ph}", (day,))


def shift_event_aggregates(store: IdentityStore, days: int, keep_days: int) -> int:
    """Age every row by ``days`` (``days_ago += days``) and drop rows of ``keep_days`` or older.

    ``days_ago`` is part of the key, so a plain ``+ days`` could collide with a row not yet
    moved. Two passes avoid that: first every row to a distinct negative value (-d - 2 - days),
    which no remaining non-negative row can equal, then back to d + days. Returns rows dropped.
    """
    if days <= 0:
        return 0
    name = EVENT_AGGREGATES.name
    ph = store.placeholder
    store._execute(f"UPDATE {name} SET days_ago = -days_ago - 2 - {ph} WHERE days_ago >= 0", (days,))
    store._execute(f"UPDATE {name} SET days_ago = -days_ago - 2 WHERE days_ago < 0")
    return store._execute(f"DELETE FROM {name} WHERE days_ago >= {ph}", (keep_days,))


def identities_with_days(store: IdentityStore, days: Iterable[int]) -> set[str]:
    """Identities having aggregates on any of these days_ago."""
    wanted = sorted(set(days))
    if not wanted:
        return set()
    marks = ", ".join([store.placeholder] * len(wanted))
    sql = f"SELECT DISTINCT identity_id FROM {EVENT_AGGREGATES.name} WHERE days_ago IN ({marks})"
    return {r[0] for r in store.query(sql, wanted)}


def existing_identities(store: IdentityStore, ids: Iterable[str]) -> set[str]:
    """The ids that have an identities row (any status)."""
    found: set[str] = set()
    ph = store.placeholder
    for chunk in _chunks(sorted(set(ids)), BIG_CHUNK):
        sql = f"SELECT identity_id FROM identities WHERE identity_id IN ({', '.join([ph] * len(chunk))})"
        found |= {r[0] for r in store.query(sql, chunk)}
    return found


@contextmanager
def touched_scope(store: IdentityStore, identity_ids: list[str]) -> Iterator[None]:
    """``stream_touched`` holds exactly these identities inside the block (call in a transaction)."""
    name = STREAM_TOUCHED.name
    store._execute(f"DELETE FROM {name}")
    marks = store.placeholder
    for chunk in _chunks(identity_ids, store.chunk_size):
        store._executemany(f"INSERT INTO {name} (identity_id) VALUES ({marks})", [(i,) for i in chunk])
    try:
        yield
    finally:
        store._execute(f"DELETE FROM {name}")


# ------------------------------------------------------------------ the publish record


def latest_run(store: IdentityStore) -> dict[str, Any] | None:
    """The event_aggregate_runs row with the latest as_of, or None before any publish."""
    rows = store.select_rows(EVENT_AGGREGATE_RUNS.name, order_by=["as_of"])
    return rows[-1] if rows else None


RUN_COUNTS = ("events", "aggregated", "unresolved", "other_types", "unknown_identity")


def bump_run(store: IdentityStore, as_of: datetime, window_days: int, add: Mapping[str, int]) -> dict:
    """Add counts to the run row of ``as_of`` (created from the latest earlier row if missing).

    ``aggregate_rows`` is recounted. The balance the batch publish keeps holds here too:
    events = aggregated + unresolved + other_types + unknown_identity, because every event the
    stream counts lands in exactly one of those.
    """
    key = as_of.astimezone(UTC).replace(tzinfo=None)
    # Compared in Python: a datetime filter is not converted to each backend's stored form.
    rows = [r for r in store.select_rows(EVENT_AGGREGATE_RUNS.name) if r["as_of"] == key]
    if rows:
        row = rows[0]
    else:
        previous = latest_run(store)
        row = {k: int(previous[k]) if previous else 0 for k in RUN_COUNTS}
        row.update(as_of=key, window_days=window_days)
        if previous:
            # The carried "aggregated" must match what is left after the shift.
            row["aggregated"] = aggregated_events(store)
            row["events"] = row["aggregated"] + sum(row[k] for k in RUN_COUNTS[2:])
    for k, v in add.items():
        row[k] = int(row.get(k, 0)) + int(v)
    row["aggregate_rows"] = store.count_rows(EVENT_AGGREGATES.name)
    store.upsert(EVENT_AGGREGATE_RUNS.name, [row])
    return row


def aggregated_events(store: IdentityStore) -> int:
    return int(store.query(f"SELECT COALESCE(SUM(events), 0) FROM {EVENT_AGGREGATES.name}")[0][0])


# ------------------------------------------------------------------ control and heartbeat


def _set(store: IdentityStore, consumer: str, values: Mapping[str, Any], condition: str = "") -> int:
    """UPDATE named columns of the consumer's control row (created first when missing).

    Column by column rather than an upsert of the whole row: the service's heartbeat and the
    batch's pause request write different columns of one row and must not undo each other.
    """
    if not store.select_rows(STREAM_CONTROL.name, {"consumer": consumer}):
        store.upsert(STREAM_CONTROL.name, [{"consumer": consumer}])
    now = datetime.now(UTC)
    ph = store.placeholder
    sets = ", ".join(f"{name} = {ph}" for name in values)
    params = [store._pipeline(STREAM_CONTROL.column(n))(v, now) for n, v in values.items()]
    sql = f"UPDATE {STREAM_CONTROL.name} SET {sets} WHERE consumer = {ph}{condition}"
    with store._transaction():
        return store._execute(sql, [*params, consumer])


def heartbeat(
    store: IdentityStore, consumer: str, status: Mapping[str, Any], error: str | None = None
) -> bool:
    """Record that the service is alive; returns True when the batch asked it to pause.

    Being asked, the service acknowledges (``paused_at``) once; it calls this between
    micro-batches only, so an acknowledged pause means no batch is in flight.
    """
    _set(store, consumer, {"heartbeat_at": _now(), "status": dict(status), "error": error})
    _set(
        store,
        consumer,
        {"paused_at": _now()},
        " AND pause_requested_at IS NOT NULL AND paused_at IS NULL",
    )
    row = control_row(store, consumer)
    return bool(row and row.get("pause_requested_at") is not None)


def control_row(store: IdentityStore, consumer: str) -> dict[str, Any] | None:
    rows = store.select_rows(STREAM_CONTROL.name, {"consumer": consumer})
    return rows[0] if rows else None


def alive(row: Mapping[str, Any] | None, stale_after_s: float, now: datetime | None = None) -> bool:
    """A heartbeat newer than ``stale_after_s`` seconds, and no error recorded since."""
    if not row or row.get("heartbeat_at") is None or row.get("error"):
        return False
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    return now - row["heartbeat_at"] <= timedelta(seconds=stale_after_s)


def set_pause(store: IdentityStore, consumer: str, requested: bool) -> None:
    """Ask the service to pause after its current micro-batch, or let it go on."""
    _set(store, consumer, {"pause_requested_at": _now() if requested else None, "paused_at": None})


@contextmanager
def stream_paused(
    store: IdentityStore,
    consumer: str = DEFAULT_CONSUMER,
    timeout_s: float = 300.0,
    stale_after_s: float = 60.0,
) -> Iterator[None]:
    """Hold the stream service between micro-batches while the batch replaces what it writes.

    The daily batch rewrites event_aggregates and memberships from the lake; with the service
    paused, every range it landed is in the lake the batch reads and nothing it applies can
    interleave with the batch's writes. No wait when no service is alive; a service that does
    not acknowledge within ``timeout_s`` is an error, not a reason to go ahead.
    """
    if not alive(control_row(store, consumer), stale_after_s):
        yield
        return
    set_pause(store, consumer, True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            row = control_row(store, consumer)
            if row and row.get("paused_at") is not None:
                break
            if not alive(row, stale_after_s):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stream service did not pause within {timeout_s:.0f} s")
            time.sleep(0.2)
        yield
    finally:
        set_pause(store, consumer, False)
