"""Loading the resolved identities into the serving store.

Rows stream from the lake to the store in chunks (``toLocalIterator``), so the driver never
holds a whole table. Upserts report only rows that changed: a second load of the same data
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


def load_store(lake: Lake, store) -> ServeStats:
    registry = lake.read_latest(*REGISTRY)
    changed = {
        "identities": store.upsert_identities(
            _rows(registry.select("identity_id", "status", "merged_into", "created_at", "record_count"))
        ),
        "record_links": store.upsert_record_links(
            _rows(lake.read_latest(*LINKS).select("record_id", "identity_id", "source"))
        ),
        "golden_profiles": store.upsert_golden_profiles(
            _golden_rows(lake.read_latest(*GOLDEN).drop("updated_at"))
        ),
        "identifiers": store.upsert_identifiers(
            _rows(lake.read_latest(*IDENTIFIERS).select("id_type", "id_value", "identity_id"))
        ),
        "merge_history": store.record_merges(
            _rows(lake.read_latest(*MERGES).select("merged_id", "survivor_id", "reason", "merged_at"))
        ),
    }
    if lake.has_dataset(*KEPT_LINKS):
        links = lake.read_latest(*LINKS).select(F.col("record_id").alias("record_id_l"), "identity_id")
        kept = lake.read_latest(*KEPT_LINKS).join(links, "record_id_l")
        changed["match_links"] = store.upsert_match_links(
            _rows(kept.select("record_id_l", "record_id_r", "identity_id", "probability", "weights"))
        )
        changed["pruned_match_links"] = store.prune_match_links()
    if lake.has_dataset(*POSSIBLE_MATCHES):
        owner = lake.read_latest(*LINKS).select("record_id", "identity_id")
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
        changed["possible_matches"], changed["pruned_possible_matches"] = store.replace_rows(
            "possible_matches",
            _rows(
                possible.select(
                    "record_id_l",
                    "record_id_r",
                    "identity_id_l",
                    "identity_id_r",
                    "probability",
                    "person_weight",
                    "reason",
                )
            ),
        )
    if lake.has_dataset(*SHARED_IDENTIFIERS):
        shared = lake.read_latest(*SHARED_IDENTIFIERS).select(
            "id_type",
            "id_value",
            "records",
            "people",
            "conflict",
            F.col("not_identity_reason").alias("reason"),
        )
        changed["shared_identifiers"], changed["pruned_shared_identifiers"] = store.replace_rows(
            "shared_identifiers", _rows(shared)
        )
    # A merged or retired identity must stop answering look-ups in the same load.
    changed.update({f"pruned_{table}": n for table, n in store.prune_inactive().items()})
    return ServeStats(changed=changed, table_counts=store.table_counts())
