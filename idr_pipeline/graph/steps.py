"""The graph stage over the lake: deterministic edges, clustering of the scored pairs and the
identity graph with stable ids and merge history, as the Dagster assets and ``idr resolve`` run them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from idr_pipeline.core.catalog import (
    CLEAN,
    EDGES,
    KEPT_LINKS,
    LINKS,
    MERGES,
    POSSIBLE_MATCHES,
    REFUSED_LINKS,
    REGISTRY,
    SCORED,
    SHARED_IDENTIFIERS,
)
from idr_pipeline.core.clock import utc_timestamp
from idr_pipeline.core.lake import Lake
from idr_pipeline.core.positions import arrow_positions
from idr_pipeline.core.schema import PAIR_KEYS
from idr_pipeline.graph.cluster import cluster, policy_of
from idr_pipeline.graph.clustering import (
    AMBIGUOUS,
    CLUSTERING_COLUMNS,
    FORCED_LINK,
    ClusteringResult,
    rows_clustering_reads,
    strong_components,
)
from idr_pipeline.graph.edges import (
    deterministic_edges,
    edge_summary,
    identifier_occurrences,
    link_identifiers,
    not_identity_summary,
    shared_identifiers,
)
from idr_pipeline.graph.identity_graph import (
    MERGE_COLUMNS,
    REGISTRY_COLUMNS,
    PreviousGraph,
    build_identity_graph,
    empty_merges,
    empty_registry,
    identity_graph_from_clusters,
    rows_at,
)
from idr_pipeline.graph.links import LinkedPairs, link_positions
from idr_pipeline.scoring.score import PERSON_EVIDENCE, PERSON_WEIGHT, WEIGHT_PREFIX, weights_json
from idr_pipeline.settings import MatchConfig
from idr_pipeline.standardize.profiles import read_profiles


@dataclass
class EdgeStats:
    edges: int
    linked_records: int
    edges_by_type: pd.DataFrame
    not_identity: pd.DataFrame  # id_type, reason, values
    shared_preview: pd.DataFrame


def run_edges(spark: SparkSession, lake: Lake, blocklist: dict[str, set[str]], max_people: int) -> EdgeStats:
    """Write the deterministic edges and the values that must not link, and summarize both.

    The counts are read back with Arrow in the driver (``edges.edge_summary`` says why that is
    bounded) instead of five Spark jobs over the written files. The preview stays a Spark query
    over the written shared values: its ties are broken by the order Spark reads them in.
    """

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
    # Materialize the previous links now: this run is about to write a new version beside them.
    links = lake.read_latest(*LINKS).select("record_id", "identity_id").localCheckpoint()
    return PreviousGraph(links=links, registry=_read_registry(lake), merges=_read_merges(lake))


def _read_registry(lake: Lake) -> pd.DataFrame:
    return lake.read_latest_pandas(*REGISTRY)


def _read_merges(lake: Lake) -> pd.DataFrame:

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
    now = now or utc_timestamp()
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
            # the profiles' file order, read in that order, so the preview is deterministic.
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


def read_links(lake: Lake) -> pd.DataFrame:
    return lake.read_latest_pandas(*LINKS, columns=["record_id", "identity_id"])


@dataclass
class ClusterOutput:
    components: pd.DataFrame  # node, component
    kept: pd.DataFrame  # record_id_l, record_id_r, probability, weights
    refused_counts: dict[str, int]
    possible_counts: dict[str, int]  # reason -> possible-match pairs
    ambiguous_records: int


#: Columns of the possible matches: the pair, its probability and person-level weight, why.
POSSIBLE_SCHEMA = pa.schema(
    [
        ("record_id_l", pa.string()),
        ("record_id_r", pa.string()),
        ("probability", pa.float64()),
        ("person_weight", pa.float64()),
        ("reason", pa.string()),
    ]
)
GREY_BAND = "grey_band"


def decision_positions(
    decisions: pd.DataFrame | None, record_ids: pd.Series
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Stewards' forced links and splits (record_id_l, record_id_r, decision) as row positions into the
    profiles; decisions about records no longer among them are dropped (an erased record)."""
    if decisions is None or decisions.empty:
        return None
    position = pd.Series(np.arange(len(record_ids)), index=record_ids.to_numpy())
    left = decisions["record_id_l"].map(position)
    right = decisions["record_id_r"].map(position)
    known = (left.notna() & right.notna()).to_numpy()
    return (
        left[known].to_numpy(np.int64),
        right[known].to_numpy(np.int64),
        decisions["decision"].to_numpy(dtype=object)[known],
    )


def run_clustering(
    spark: SparkSession, lake: Lake, config: MatchConfig, decisions: pd.DataFrame | None = None
) -> ClusterOutput:
    """Cluster the scored pairs with the deterministic links and the stewards' ``decisions``
    (record_id_l, record_id_r, decision: ``link`` or ``split``; see ``store.decisions``), and
    write the kept, refused and possible matches."""
    # Only the columns the guards read: every column would cost more to read than it serves.
    profiles = read_profiles(lake, CLUSTERING_COLUMNS)
    scored_columns = set(lake.latest_columns(*SCORED))
    person = [c for c in (PERSON_WEIGHT, PERSON_EVIDENCE) if c in scored_columns]
    scored = lake.read_latest_arrow(*SCORED, columns=[*PAIR_KEYS, "probability", *person])
    edges = lake.read_latest_arrow(*EDGES, columns=["src", "dst", "id_type"])
    # One lookup for the pairs and the edges, so the record ids are hashed once.
    left, right = arrow_positions(
        profiles["record_id"],
        pa.chunked_array([*scored["record_id_l"].chunks, *edges["src"].chunks], pa.string()),
        pa.chunked_array([*scored["record_id_r"].chunks, *edges["dst"].chunks], pa.string()),
    )
    pairs = scored.num_rows
    links = link_positions(
        left[:pairs],
        right[:pairs],
        scored["probability"].to_numpy(),
        (left[pairs:], right[pairs:], edges["id_type"].to_numpy(zero_copy_only=False)),
        profiles,
        person_weight=scored[PERSON_WEIGHT].to_numpy() if PERSON_WEIGHT in person else None,
        person_evidence=(
            scored[PERSON_EVIDENCE].to_numpy(zero_copy_only=False) if PERSON_EVIDENCE in person else None
        ),
        decisions=decision_positions(decisions, profiles["record_id"]),
    )
    # Only the rows the clustering can read become id strings: the strong pairs, the pairs
    # inside a strong component it guards, and the forced decisions. The result is the same as
    # clustering every row.
    policy = policy_of(config)
    component = strong_components(links.left, links.right, links.probability, len(profiles), policy)
    rows = np.flatnonzero(
        rows_clustering_reads(links.left, links.right, links.probability, len(profiles), policy, component)
        | (links.forced != None)  # noqa: E711 - element-wise on an object array
    )
    record_ids = profiles["record_id"].to_numpy(dtype=object)
    linked = links.frame(rows, record_ids)
    # Every row read lies inside one strong component: half of the components (by label parity)
    # go to a forked child.
    result = cluster(profiles, linked, config, part=(component[links.left[rows]] % 2 == 1))
    kept = linked.loc[result.kept.index].reset_index(drop=True)
    kept["weights"] = kept_weights(lake, kept)
    for frame, with_reason, dataset in ((kept, False, KEPT_LINKS), (result.refused, True, REFUSED_LINKS)):
        pdf, schema = _pairs_frame(frame, with_reason)
        lake.write_pandas_version(pdf, *dataset, schema=schema)
    possible = possible_matches(links, record_ids, result, config)
    lake.write_pandas_version(possible, *POSSIBLE_MATCHES, schema=POSSIBLE_SCHEMA)
    components = pd.DataFrame({"node": list(result.labels), "component": list(result.labels.values())})
    return ClusterOutput(
        components=components,
        kept=kept,
        refused_counts=result.refused_counts(),
        possible_counts=possible["reason"].value_counts().to_dict(),
        ambiguous_records=int(result.ambiguous["record_id"].nunique()),
    )


def possible_matches(
    links: LinkedPairs, record_ids: np.ndarray, result: ClusteringResult, config: MatchConfig
) -> pd.DataFrame:
    """The pairs a steward may want to review, one row per pair: an ambiguous record's link to
    each person it fits, a refused merge with its reason, and a scored pair in the grey band
    (``possible_match_threshold`` up to the threshold) whose records ended in two identities."""
    label = pd.Series(record_ids).map(result.labels).fillna(pd.Series(record_ids)).to_numpy(dtype=object)
    label_code = pd.factorize(label)[0]
    scored = np.arange(links.scored)
    probability = links.probability[: links.scored]
    grey = scored[
        (probability >= config.possible_match_threshold)
        & (probability < config.threshold)
        & (label_code[links.left[scored]] != label_code[links.right[scored]])
    ]
    frames = [
        pd.DataFrame(
            {
                "record_id_l": result.ambiguous["record_id"].astype(object),
                "record_id_r": result.ambiguous["candidate_record_id"].astype(object),
                "probability": result.ambiguous["probability"].astype(np.float64),
                "person_weight": result.ambiguous["person_weight"].astype(np.float64),
                "reason": AMBIGUOUS,
            }
        ),
        result.refused.assign(person_weight=np.nan)[POSSIBLE_SCHEMA.names],
        pd.DataFrame(
            {
                "record_id_l": record_ids[links.left[grey]],
                "record_id_r": record_ids[links.right[grey]],
                "probability": probability[grey],
                "person_weight": links.person_weight[grey].astype(np.float64),
                "reason": GREY_BAND,
            }
        ),
    ]
    out = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    low = out[["record_id_l", "record_id_r"]].min(axis=1)
    high = out[["record_id_l", "record_id_r"]].max(axis=1)
    # One row per pair: the first reason (ambiguous, then refused, then grey band) stands.
    keep = ~pd.DataFrame({"low": low, "high": high}).duplicated().to_numpy()
    return out.loc[keep, POSSIBLE_SCHEMA.names].reset_index(drop=True)


def kept_weights(lake: Lake, kept: pd.DataFrame) -> list[str]:
    """The "why merged" JSON of each kept link: the model's weights where the pair was scored,
    else the identifier types it shares, or a steward's forced link."""
    # A handful of identifier types over hundreds of thousands of links: one dumps per type.
    types = kept["id_type"].dropna().unique()
    out = kept["id_type"].map({t: json.dumps({"shared_identifier": t}) for t in types}).to_numpy(dtype=object)
    if "forced" in kept.columns:
        out[(kept["forced"] == FORCED_LINK).to_numpy()] = json.dumps({"decision": FORCED_LINK})
    rows = kept["scored_row"]
    scored = rows.notna().to_numpy()
    if scored.any():
        columns = [c for c in lake.latest_columns(*SCORED) if c.startswith(WEIGHT_PREFIX)]
        # Taken in Arrow before pandas: the kept links are a small share of the scored pairs,
        # and turning all of the pairs' weights into pandas would be most of this step.
        weights = lake.read_latest_arrow(*SCORED, columns=columns)
        # Set in numpy: a pandas Series' masked __setitem__ of the JSON list is slow per element.
        out[scored] = weights_json(weights.take(rows[scored].astype(np.int64).to_numpy()).to_pandas())
    return out.tolist()


def _pairs_frame(pdf: pd.DataFrame, with_reason: bool) -> tuple[pd.DataFrame, pa.Schema]:
    schema = pa.schema(
        [
            ("record_id_l", pa.string()),
            ("record_id_r", pa.string()),
            ("probability", pa.float64()),
            ("reason" if with_reason else "weights", pa.string()),
        ]
    )
    return pdf[schema.names], schema
