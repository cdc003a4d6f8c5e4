"""The batch pipeline as plain functions over Spark and the lake.

Dagster assets and ``idr resolve`` both call these, so a run from the UI and a run from the
command line execute the same code. Each step reads its inputs from the lake, writes a new
version of its outputs, and returns the figures its caller reports.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from idr_pipeline.cleaning import clean_profiles, read_mapped_raw
from idr_pipeline.golden_record import build_golden_records, build_identifiers
from idr_pipeline.identity.edges import (
    deterministic_edges,
    identifier_occurrences,
    link_identifiers,
    shared_identifiers,
)
from idr_pipeline.identity.graph import (
    MERGE_COLUMNS,
    REGISTRY_COLUMNS,
    PreviousGraph,
    build_identity_graph,
    empty_merges,
    empty_registry,
    identity_graph_from_clusters,
    rows_at,
)
from idr_pipeline.ingest.mapping import SourceMapping
from idr_pipeline.lake import Lake
from idr_pipeline.privacy.tombstones import Tombstones

CLEAN = ("clean", "profiles")
QUARANTINE = ("clean", "quarantine")
EDGES = ("resolution", "identity_edges")
SHARED_IDENTIFIERS = ("resolution", "shared_identifiers")
LINKS = ("resolution", "identity_links")
REGISTRY = ("resolution", "identity_registry")
MERGES = ("resolution", "identity_merges")
GOLDEN = ("serving", "golden_profiles")
IDENTIFIERS = ("serving", "identifiers")
# Rows the last cleaning run dropped for erasure tombstones: a count only, for the accounting.
ERASED = ("clean", "erased_counts")
# Where the cleaning job writes every row once, split by outcome, before the clean rows' folder
# becomes the clean profiles; one folder per run, deleted when the run ends.
CLEANING_STAGING = ("clean", "_staging")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class CleaningStats:
    raw_rows: int
    clean_rows: int
    quarantined_rows: int
    collapsed_duplicates: int
    top_reasons: pd.DataFrame
    clean_preview: pd.DataFrame
    quarantine_preview: pd.DataFrame
    sources_missing: list[str] = field(default_factory=list)
    erased_rows: int = 0

    @property
    def balanced(self) -> bool:
        return self.raw_rows == (
            self.clean_rows + self.quarantined_rows + self.collapsed_duplicates + self.erased_rows
        )


def load_tombstones(store_url: str, key: bytes | None = None) -> Tombstones:
    """The store's erasure tombstones, checked with the tombstone key (the settings' when
    ``key`` is None); none when the embedded store file does not exist yet.

    Any other failure propagates, including tombstones written under another key
    (TombstoneKeyMismatch): cleaning without the tombstones would bring erased people back.
    """
    from idr_pipeline.privacy.secrets import tombstone_key
    from idr_pipeline.settings import get_settings
    from idr_pipeline.store import open_store, parse_store_url

    parsed = parse_store_url(store_url)
    if parsed.backend == "sqlite" and (parsed.path == ":memory:" or not Path(parsed.path).exists()):
        return Tombstones()
    with open_store(store_url) as store:
        store.ensure_schema()
        rows = store.tombstone_rows()
    if not rows:
        return Tombstones()
    return Tombstones.from_rows(rows, key if key is not None else tombstone_key(get_settings()))


def read_erased_rows(lake: Lake) -> int:
    """Rows the latest cleaning run erased (0 before the first run that recorded it)."""
    if not lake.has_dataset(*ERASED):
        return 0
    return int(lake.read_latest(*ERASED).agg(F.sum("erased_rows")).first()[0] or 0)


def run_cleaning(
    spark: SparkSession,
    lake: Lake,
    mappings: dict[str, SourceMapping],
    default_region: str,
    tombstones: Tombstones | None = None,
) -> CleaningStats:
    """``tombstones`` default to those in the settings' store, under the settings' key."""
    if tombstones is None:
        from idr_pipeline.settings import get_settings

        tombstones = load_tombstones(get_settings().store_url)
    raw, missing = read_mapped_raw(spark, lake, mappings)
    staging = lake.path(*CLEANING_STAGING, uuid.uuid4().hex)
    try:
        result = clean_profiles(raw, default_region, tombstones, staging)
        lake.write_version(result.quarantined, *QUARANTINE)
        if result.clean_folder is None:
            lake.write_version(result.clean, *CLEAN)
        else:
            lake.adopt_version(result.clean_folder, *CLEAN)
    finally:
        lake.delete(staging)
    lake.write_version(spark.createDataFrame([(result.erased_rows,)], "erased_rows long"), *ERASED)
    clean = lake.read_latest(*CLEAN)
    quarantined = lake.read_latest(*QUARANTINE)
    reason_head = F.regexp_extract(F.col("_reason"), r"^([^:]+)", 1)
    top = (
        quarantined.groupBy(reason_head.alias("reason")).count().orderBy(F.desc("count")).limit(10).toPandas()
    )
    return CleaningStats(
        raw_rows=result.raw_rows,
        clean_rows=clean.count(),
        quarantined_rows=quarantined.count(),
        collapsed_duplicates=result.collapsed_duplicates,
        top_reasons=top,
        clean_preview=clean.drop("extras").limit(5).toPandas(),
        quarantine_preview=quarantined.limit(5).toPandas(),
        sources_missing=missing,
        erased_rows=result.erased_rows,
    )


@dataclass
class EdgeStats:
    edges: int
    linked_records: int
    edges_by_type: pd.DataFrame
    not_identity: pd.DataFrame  # id_type, reason, values
    shared_preview: pd.DataFrame


def run_edges(spark: SparkSession, lake: Lake, blocklist: dict[str, set[str]], max_people: int) -> EdgeStats:
    """Write the deterministic edges and the values that must not link, and summarise both.

    The counts are read back with Arrow in the driver (``edges.edge_summary`` says why that is
    bounded) instead of five Spark jobs over the written files. The preview stays a Spark query
    over the written shared values: its ties are broken by the order Spark reads them in.
    """
    from idr_pipeline.identity.edges import edge_summary, not_identity_summary

    clean = lake.read_latest(*CLEAN)
    linked = link_identifiers(identifier_occurrences(clean), max_people, blocklist).cache()
    lake.write_version(deterministic_edges(linked), *EDGES)
    lake.write_version(shared_identifiers(linked), *SHARED_IDENTIFIERS)
    linked.unpersist()
    edges, linked_records, edges_by_type = edge_summary(
        lake.read_latest_arrow(*EDGES, columns=["src", "dst", "id_type"])
    )
    shared = lake.read_latest_arrow(
        *SHARED_IDENTIFIERS, columns=["id_type", "not_identity_reason", "records"]
    )
    return EdgeStats(
        edges=edges,
        linked_records=linked_records,
        edges_by_type=edges_by_type,
        not_identity=not_identity_summary(shared),
        shared_preview=lake.read_latest(*SHARED_IDENTIFIERS).orderBy(F.desc("records")).limit(10).toPandas(),
    )


def load_previous_graph(lake: Lake) -> PreviousGraph | None:
    if not (lake.has_dataset(*LINKS) and lake.has_dataset(*REGISTRY)):
        return None
    # Materialise the previous links now: this run is about to write a new version beside them.
    links = lake.read_latest(*LINKS).select("record_id", "identity_id").localCheckpoint()
    return PreviousGraph(links=links, registry=_read_registry(lake), merges=_read_merges(lake))


def _read_registry(lake: Lake) -> pd.DataFrame:
    return lake.read_latest_pandas(*REGISTRY)


def _read_merges(lake: Lake) -> pd.DataFrame:
    from idr_pipeline.identity.graph import empty_merges

    return lake.read_latest_pandas(*MERGES) if lake.has_dataset(*MERGES) else empty_merges()


@dataclass
class GraphStats:
    records: int
    identities: int
    largest_cluster: int
    rounds: int
    new_merges: int
    cluster_sizes: pd.Series
    largest_preview: pd.DataFrame


def run_graph(
    spark: SparkSession, lake: Lake, now: str | None = None, components: pd.DataFrame | None = None
) -> GraphStats:
    """Identities from the matcher's clusters (node, component), or from deterministic edges alone."""
    now = now or utc_now()
    shown = ["record_id", "source", "first_name", "last_name", "email", "phone", "dob"]
    if components is None:
        clean = lake.read_latest(*CLEAN)
        result = build_identity_graph(spark, clean, lake.read_latest(*EDGES), load_previous_graph(lake), now)
        lake.write_version(result.links, *LINKS)
        sizes = (
            lake.read_latest(*LINKS)
            .groupBy("identity_id")
            .count()
            .toPandas()
            .set_index("identity_id")["count"]
        )
        preview = pd.DataFrame()
        if len(sizes):
            largest = sizes.sort_index().idxmax()  # the largest, ties to the smallest id
            links = lake.read_latest(*LINKS)
            preview = (
                clean.join(links.where(F.col("identity_id") == largest).select("record_id"), "record_id")
                .select(*shown)
                .limit(10)
                .toPandas()
            )
    else:
        # The clusters are pandas already: ids are carried over in the driver, not through Spark,
        # and the profiles and links are read and written by Arrow.
        profiles = lake.latest_dataset(*CLEAN)
        has_previous = lake.has_dataset(*LINKS) and lake.has_dataset(*REGISTRY)
        result = identity_graph_from_clusters(
            profiles.to_table(columns=["record_id", "source"]),
            components,
            lake.read_latest_arrow(*LINKS, columns=["record_id", "identity_id"]) if has_previous else None,
            _read_registry(lake) if has_previous else empty_registry(),
            _read_merges(lake) if has_previous else empty_merges(),
            now,
        )
        # With the pandas metadata a frame of strings is written with, as the links were before.
        frame_metadata = pa.Table.from_pandas(
            pd.DataFrame({c: pd.Series(dtype=object) for c in LINK_SCHEMA.names}),
            schema=LINK_SCHEMA,
            preserve_index=False,
        ).schema.metadata
        links = result.links.select(LINK_SCHEMA.names).cast(LINK_SCHEMA.with_metadata(frame_metadata))
        lake.write_pandas_version(links, *LINKS)
        sizes = result.sizes  # sorted by identity id
        preview = pd.DataFrame()
        if len(sizes):
            # Ten of the largest identity's profiles (ties to the smallest id): the first ten in
            # the profiles' file order. The Spark join and limit promised no order; they gave
            # these ten at a million records, read in that order.
            preview = rows_at(profiles, result.rows_of(sizes.idxmax())[:10], shown).to_pandas()
    lake.write_pandas_version(_registry_table(result.registry), *REGISTRY)
    lake.write_pandas_version(_merges_table(result.merges), *MERGES)
    return GraphStats(
        records=int(sizes.sum()),
        identities=len(sizes),
        largest_cluster=int(sizes.max()) if len(sizes) else 0,
        rounds=result.rounds,
        new_merges=len(result.new_merges),
        cluster_sizes=sizes.reset_index(drop=True).rename("count"),
        largest_preview=preview,
    )


LINK_SCHEMA = pa.schema([("record_id", pa.string()), ("identity_id", pa.string()), ("source", pa.string())])


def _registry_table(registry: pd.DataFrame) -> pa.Table:
    schema = pa.schema([(c, pa.int64() if c == "record_count" else pa.string()) for c in REGISTRY_COLUMNS])
    pdf = registry.astype({"record_count": "int64"})
    return pa.Table.from_pandas(pdf[schema.names], schema=schema, preserve_index=False)


def _merges_table(merges: pd.DataFrame) -> pa.Table:
    schema = pa.schema([(c, pa.string()) for c in MERGE_COLUMNS])
    pdf = merges.astype(object).where(merges.notna(), None)
    return pa.Table.from_pandas(pdf[schema.names], schema=schema, preserve_index=False)


@dataclass
class GoldenStats:
    identities: int
    identifiers: int
    identifiers_by_type: pd.DataFrame
    preview: pd.DataFrame


def run_golden(spark: SparkSession, lake: Lake) -> GoldenStats:
    clean = lake.read_latest(*CLEAN)
    links = lake.read_latest(*LINKS)
    lake.write_version(build_golden_records(clean, links), *GOLDEN)
    lake.write_version(build_identifiers(clean, links), *IDENTIFIERS)
    golden = lake.read_latest(*GOLDEN)
    identifiers = lake.read_latest(*IDENTIFIERS)
    return GoldenStats(
        identities=golden.count(),
        identifiers=identifiers.count(),
        identifiers_by_type=identifiers.groupBy("id_type").count().orderBy("id_type").toPandas(),
        preview=golden.orderBy(F.desc("record_count"), "identity_id").limit(5).toPandas(),
    )


def read_links(lake: Lake) -> pd.DataFrame:
    return lake.read_latest_pandas(*LINKS, columns=["record_id", "identity_id"])
