"""Loading the resolved identities into the serving store.

Rows stream from the lake to the store in chunks (``toLocalIterator``), so the driver never
holds a whole table, grouped by identity, so ``publish_identities`` can commit in bounded
transactions that never split one identity's rows of a table. Upserts report only rows that changed: a second load of the same data
reports zero everywhere, which is how the pipeline proves it is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from idr_pipeline.core.catalog import (
    GOLDEN,
    IDENTIFIERS,
    KEPT_LINKS,
    LINKS,
    MERGES,
    POSSIBLE_MATCHES,
    REGISTRY,
    SHARED_IDENTIFIERS,
)
from idr_pipeline.core.lake import Lake
from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.change_log import commit_pending, has_changes_of_run, published_state, record_changes
from idr_pipeline.store.changes import (
    GOLDEN_CONTENT,
    IdentityState,
    count_by_kind,
    golden_digest,
    identity_changes,
)
from idr_pipeline.store.publish import UPSERTED, publish_identities


@dataclass
class ServeStats:
    changed: dict[str, int]
    table_counts: dict[str, int]


@dataclass
class ChangeStats:
    """The identity changes of one publish: its run id, how many of each kind it found (or
    found on an earlier attempt of the same run), and how many changes it committed (its own
    and any left pending by a publish that failed)."""

    run_id: str
    by_kind: dict[str, int]
    committed: int


def _rows(df: DataFrame) -> Iterator[dict]:
    for row in df.toLocalIterator(prefetchPartitions=True):
        yield row.asDict()


def _golden_rows(df: DataFrame) -> Iterator[dict]:
    for row in _rows(df):
        row["sources"] = list(row["sources"] or [])
        row["identifiers"] = {k: list(v) for k, v in (row["identifiers"] or {}).items()}
        yield row


def _grouped(df: DataFrame, column: str) -> DataFrame:
    """``df`` with the rows sharing ``column`` adjacent (one partition each, sorted within it),
    as ``publish_identities`` needs them to commit an identity's rows together."""
    return df.repartition(column).sortWithinPartitions(column)


def load_store(lake: Lake, store: IdentityStore, commit_rows: int, nice: int = 0) -> ServeStats:
    """Publish the lake's latest resolution into ``store`` (``publish_identities``), committing
    about every ``commit_rows`` rows between identities (0: one transaction per table), at
    ``nice`` lower CPU priority."""
    links = lake.read_latest(*LINKS)
    tables: dict[str, Iterator[dict]] = {
        "identities": _rows(
            _grouped(
                lake.read_latest(*REGISTRY).select(
                    "identity_id", "status", "merged_into", "created_at", "record_count"
                ),
                UPSERTED["identities"],
            )
        ),
        "record_links": _rows(
            _grouped(links.select("record_id", "identity_id", "source"), UPSERTED["record_links"])
        ),
        "golden_profiles": _golden_rows(
            _grouped(lake.read_latest(*GOLDEN).drop("updated_at"), UPSERTED["golden_profiles"])
        ),
        "identifiers": _rows(
            _grouped(
                lake.read_latest(*IDENTIFIERS).select("id_type", "id_value", "identity_id"),
                UPSERTED["identifiers"],
            )
        ),
        "merge_history": _rows(
            _grouped(
                lake.read_latest(*MERGES).select("merged_id", "survivor_id", "reason", "merged_at"),
                UPSERTED["merge_history"],
            )
        ),
    }
    if lake.has_dataset(*KEPT_LINKS):
        owners = links.select(F.col("record_id").alias("record_id_l"), "identity_id")
        kept = lake.read_latest(*KEPT_LINKS).join(owners, "record_id_l")
        tables["match_links"] = _rows(
            _grouped(
                kept.select("record_id_l", "record_id_r", "identity_id", "probability", "weights"),
                UPSERTED["match_links"],
            )
        )
    if lake.has_dataset(*POSSIBLE_MATCHES):
        owner = links.select("record_id", "identity_id")
        possible = (
            lake.read_latest(*POSSIBLE_MATCHES)
            .join(
                owner.withColumnRenamed("record_id", "record_id_l").withColumnRenamed(
                    "identity_id", "identity_id_l"
                ),
                "record_id_l",
            )
            .join(
                owner.withColumnRenamed("record_id", "record_id_r").withColumnRenamed(
                    "identity_id", "identity_id_r"
                ),
                "record_id_r",
            )
            .where(F.col("identity_id_l") != F.col("identity_id_r"))
        )
        tables["possible_matches"] = _rows(
            possible.select(
                "record_id_l",
                "record_id_r",
                "identity_id_l",
                "identity_id_r",
                "probability",
                "person_weight",
                "reason",
            )
        )
    if lake.has_dataset(*SHARED_IDENTIFIERS):
        tables["shared_identifiers"] = _rows(
            lake.read_latest(*SHARED_IDENTIFIERS).select(
                "id_type",
                "id_value",
                "records",
                "people",
                "conflict",
                F.col("not_identity_reason").alias("reason"),
            )
        )
    changed = publish_identities(store, tables, commit_rows, nice)
    return ServeStats(changed=changed, table_counts=store.table_counts())


def change_run_id(lake: Lake) -> str:
    """The run id of the changes a publish of the lake's current state makes: the versions of
    the identity registry (the resolution run, with its links and merges) and of the golden
    records. Publishing the same state again gives the same id, so the same event ids."""
    return f"r{lake.latest_version(*REGISTRY)}-g{lake.latest_version(*GOLDEN)}"


def lake_state(lake: Lake) -> IdentityState:
    """The identities as the lake's newest resolution has them: the "after" of a publish."""
    registry = lake.read_latest_arrow(*REGISTRY, columns=["identity_id", "status", "merged_into"])
    identities = {
        i: (s, m)
        for i, s, m in zip(
            *(registry[c].to_pylist() for c in ("identity_id", "status", "merged_into")), strict=True
        )
    }
    links = lake.read_latest_arrow(*LINKS, columns=["record_id", "identity_id"])
    records = dict(zip(links["record_id"].to_pylist(), links["identity_id"].to_pylist(), strict=True))
    # A column the golden records lack is missing from both sides, as the load leaves it NULL.
    present = set(lake.latest_columns(*GOLDEN))
    golden_columns = ["identity_id", *(c for c in GOLDEN_CONTENT if c in present)]
    golden_table = lake.read_latest_arrow(*GOLDEN, columns=golden_columns)
    golden = {}
    for row in golden_table.to_pylist():
        # Arrow hands a map column over as (key, value) pairs; the store holds it as an object.
        if isinstance(row.get("identifiers"), list):
            row["identifiers"] = dict(row["identifiers"])
        golden[row["identity_id"]] = golden_digest(row)
    return IdentityState(identities=identities, records=records, golden=golden)


def serve_with_changes(
    lake: Lake, store: IdentityStore, commit_rows: int = 0, nice: int = 0
) -> tuple[ServeStats, ChangeStats]:
    """``load_store`` (with its ``commit_rows`` and ``nice``) with the identity changes it makes
    recorded and committed around it.

    The changes are the difference between what the store serves before the load and the
    lake's state, recorded (pending) before the load and committed after it: a load that fails
    midway leaves them pending, and the next attempt of the same run (same run id) loads again
    and commits them rather than diffing against a half-loaded store.
    """
    run_id = change_run_id(lake)
    if has_changes_of_run(store, run_id):
        recorded = store.select_rows("identity_changes", {"run_id": run_id})
        by_kind = count_by_kind(recorded)
    else:
        changes = identity_changes(published_state(store), lake_state(lake), run_id)
        record_changes(store, changes)
        by_kind = count_by_kind(changes)
    stats = load_store(lake, store, commit_rows, nice)
    committed = commit_pending(store)
    return stats, ChangeStats(run_id=run_id, by_kind=by_kind, committed=committed)
