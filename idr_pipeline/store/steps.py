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
from idr_pipeline.store.publish import UPSERTED, publish_identities


@dataclass
class ServeStats:
    changed: dict[str, int]
    table_counts: dict[str, int]


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
