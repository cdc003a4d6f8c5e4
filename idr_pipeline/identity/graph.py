"""Identity graph: components of the edge graph, named with stable identity ids."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from idr_pipeline.identity.components import connected_components
from idr_pipeline.identity.stable_ids import Assignment, assign_identity_ids

REGISTRY_COLUMNS = ["identity_id", "created_at", "status", "merged_into", "record_count", "updated_at"]
MERGE_COLUMNS = ["merged_id", "survivor_id", "reason", "merged_at"]


@dataclass
class PreviousGraph:
    links: DataFrame  # record_id, identity_id
    registry: pd.DataFrame  # REGISTRY_COLUMNS
    merges: pd.DataFrame  # MERGE_COLUMNS


@dataclass
class GraphResult:
    links: DataFrame | pd.DataFrame  # record_id, identity_id, source
    registry: pd.DataFrame
    merges: pd.DataFrame  # all merges ever, newest included
    new_merges: pd.DataFrame
    rounds: int
    components: int


def empty_registry() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in REGISTRY_COLUMNS})


def empty_merges() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in MERGE_COLUMNS})


def build_identity_graph(
    spark: SparkSession,
    clean: DataFrame,
    edges: DataFrame,
    previous: PreviousGraph | None,
    now: str,
) -> GraphResult:
    """Components of the deterministic edges, with ids carried over from the previous run (the
    matcher's clusters take ``identity_graph_from_clusters``, by the same rules)."""
    nodes = clean.select(F.col("record_id").alias("node"))
    comps, rounds = connected_components(nodes, edges.select("src", "dst"))
    comps = comps.localCheckpoint()
    comp_table = comps.select("component").distinct().toPandas()

    registry = previous.registry.copy() if previous is not None else empty_registry()
    old_merges = previous.merges.copy() if previous is not None else empty_merges()
    if previous is not None:
        active = registry[registry.status == "active"][["identity_id", "created_at"]]
        overlaps = (
            comps.join(previous.links.select(F.col("record_id").alias("node"), "identity_id"), "node")
            .groupBy("component", "identity_id")
            .agg(F.count(F.lit(1)).alias("records"))
            .toPandas()
            .merge(active, on="identity_id", how="inner")
        )
    else:
        overlaps = _no_overlaps()
    assignment = assign_identity_ids(comp_table, overlaps, set(registry.identity_id), now)

    schema = T.StructType(
        [T.StructField(c, T.StringType()) for c in ("component", "identity_id", "created_at")]
    )
    comp_ids = spark.createDataFrame(
        assignment.components[["component", "identity_id", "created_at"]], schema
    )
    links = (
        comps.join(F.broadcast(comp_ids) if len(comp_table) < 200_000 else comp_ids, "component")
        .select(F.col("node").alias("record_id"), "identity_id")
        .join(clean.select("record_id", "source"), "record_id")
    ).localCheckpoint()
    counts = links.groupBy("identity_id").agg(F.count(F.lit(1)).alias("record_count")).toPandas()

    return _graph_result(links, registry, old_merges, assignment, counts, now, rounds, len(comp_table))


def identity_graph_from_clusters(
    sources: pd.DataFrame,
    components: pd.DataFrame,
    previous_links: pd.DataFrame | None,
    registry: pd.DataFrame,
    old_merges: pd.DataFrame,
    now: str,
) -> GraphResult:
    """``build_identity_graph`` for the matcher's clusters, in pandas.

    The clusters are already a pandas frame in the driver (the matcher clusters there), so
    sending them to Spark to join them with a few hundred thousand ids and back cost more than
    the joins (16.5 s of Spark jobs at a million records). The ids are carried over by the same
    rules (``assign_identity_ids``), and the links come out as the Spark path writes them.

    sources: record_id, source of every clean profile; components: node, component;
    previous_links: record_id, identity_id of the last run, or None on the first.
    """
    comps = components[["node", "component"]]
    codes, labels = pd.factorize(comps["component"].to_numpy(dtype=object))
    comp_table = pd.DataFrame({"component": labels})
    if previous_links is not None:
        active = registry[registry.status == "active"][["identity_id", "created_at"]]
        overlaps = (
            comps.merge(
                previous_links.rename(columns={"record_id": "node"})[["node", "identity_id"]], on="node"
            )
            .groupby(["component", "identity_id"], sort=False)
            .size()
            .rename("records")
            .reset_index()
            .merge(active, on="identity_id", how="inner")
        )
    else:
        overlaps = _no_overlaps()
    assignment = assign_identity_ids(comp_table, overlaps, set(registry.identity_id), now)
    # Lookups by position instead of joins on a million string keys; like the joins, a node
    # that is not a clean profile gets no link.
    identity = assignment.components.set_index("component")["identity_id"].reindex(labels).to_numpy()[codes]
    at = pd.Index(sources["record_id"]).get_indexer(comps["node"])
    found = at >= 0
    links = pd.DataFrame(
        {
            "record_id": comps["node"].to_numpy(dtype=object)[found],
            "identity_id": identity[found],
            "source": sources["source"].to_numpy(dtype=object)[at[found]],
        }
    )
    counts = links.groupby("identity_id", sort=False).size().rename("record_count").reset_index()
    return _graph_result(links, registry, old_merges, assignment, counts, now, 0, len(comp_table))


def _no_overlaps() -> pd.DataFrame:
    """The overlaps of a first run: no previous identity to carry over."""
    return pd.DataFrame(
        {"component": pd.Series(dtype="object"), "identity_id": pd.Series(dtype="object"),
         "created_at": pd.Series(dtype="object"), "records": pd.Series(dtype="int64")}
    )  # fmt: skip


def _graph_result(
    links: DataFrame | pd.DataFrame,
    registry: pd.DataFrame,
    old_merges: pd.DataFrame,
    assignment: Assignment,
    counts: pd.DataFrame,
    now: str,
    rounds: int,
    components: int,
) -> GraphResult:
    """The registry and merge log after this run's assignment, whichever engine built the links."""
    new_registry = _next_registry(registry, assignment.components, assignment.merges, counts, now)
    new_merges = assignment.merges.assign(merged_at=now)[MERGE_COLUMNS]
    all_merges = pd.concat([old_merges, new_merges], ignore_index=True)[MERGE_COLUMNS]
    return GraphResult(
        links=links,
        registry=new_registry,
        merges=all_merges,
        new_merges=new_merges,
        rounds=rounds,
        components=components,
    )


def _next_registry(
    registry: pd.DataFrame, assigned: pd.DataFrame, merges: pd.DataFrame, counts: pd.DataFrame, now: str
) -> pd.DataFrame:
    """Every id ever issued, with its status: active, merged (into a survivor) or retired."""
    active = assigned[["identity_id", "created_at"]].merge(counts, on="identity_id", how="left")
    active = active.assign(status="active", merged_into=None)
    previous = registry.set_index("identity_id")
    unchanged = active.identity_id.isin(previous.index)
    same_count = unchanged & active.identity_id.map(previous.get("record_count", pd.Series(dtype=object))).eq(
        active.record_count
    )
    active["updated_at"] = now
    active.loc[same_count, "updated_at"] = active.loc[same_count, "identity_id"].map(previous["updated_at"])
    rest = registry[~registry.identity_id.isin(active.identity_id)].copy()
    merged_into = dict(zip(merges.merged_id, merges.survivor_id, strict=True))
    newly_merged = rest.identity_id.isin(merged_into)
    rest.loc[newly_merged, "status"] = "merged"
    rest.loc[newly_merged, "merged_into"] = rest.loc[newly_merged, "identity_id"].map(merged_into)
    newly_retired = (rest.status == "active") & ~newly_merged
    rest.loc[newly_retired, "status"] = "retired"
    rest.loc[newly_merged | newly_retired, "updated_at"] = now
    out = pd.concat([active[REGISTRY_COLUMNS], rest[REGISTRY_COLUMNS]], ignore_index=True)
    out["record_count"] = pd.to_numeric(out["record_count"], errors="coerce").fillna(0).astype("int64")
    return out
