"""Identity graph: components of the edge graph, named with stable identity ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from idr_pipeline.graph.components import connected_components
from idr_pipeline.graph.stable_ids import Assignment, assign_identity_ids

REGISTRY_COLUMNS = ["identity_id", "created_at", "status", "merged_into", "record_count", "updated_at"]
MERGE_COLUMNS = ["merged_id", "survivor_id", "reason", "merged_at"]


@dataclass
class PreviousGraph:
    links: DataFrame  # record_id, identity_id
    registry: pd.DataFrame  # REGISTRY_COLUMNS
    merges: pd.DataFrame  # MERGE_COLUMNS


@dataclass
class GraphResult:
    links: DataFrame | pa.Table  # record_id, identity_id, source
    registry: pd.DataFrame
    merges: pd.DataFrame  # all merges ever, newest included
    new_merges: pd.DataFrame
    rounds: int
    components: int
    # From the matcher's clusters only: links per identity sorted by identity id (identities
    # without a link left out), and each link's row in the clean profiles it was built from.
    sizes: pd.Series | None = None
    link_rows: np.ndarray | None = None

    def rows_of(self, identity_id: str) -> np.ndarray:
        """The clean-profile rows linked to one identity, in the profiles' order."""
        if self.link_rows is None or not isinstance(self.links, pa.Table):
            raise ValueError("only a graph built from the matcher's clusters keeps its rows")
        match = pc.equal(self.links["identity_id"], identity_id).to_numpy(zero_copy_only=False)
        return np.sort(self.link_rows[match])


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
    record_count = (
        assignment.components["identity_id"]
        .map(counts.set_index("identity_id")["record_count"])
        .fillna(0)
        .to_numpy(dtype=np.int64)
    )
    return _graph_result(links, registry, old_merges, assignment, record_count, now, rounds, len(comp_table))


def identity_graph_from_clusters(
    sources: pa.Table,
    components: pd.DataFrame,
    previous_links: pa.Table | None,
    registry: pd.DataFrame,
    old_merges: pd.DataFrame,
    now: str,
) -> GraphResult:
    """``build_identity_graph`` for the matcher's clusters, in the driver.

    The clusters are already a pandas frame in the driver (the matcher clusters there), so
    sending them to Spark to join them with the ids and back would cost more than the joins.
    The ids are carried over by the same rules (``assign_identity_ids``). The record ids stay
    Arrow strings and every join is a lookup by position: turning every clean id into a Python
    string and joining them in pandas would cost more than the rest of the step.

    sources: record_id, source of every clean profile (other columns are ignored);
    components: node, component; previous_links: record_id, identity_id of the last run, or
    None on the first. The links are an Arrow table; ``sizes`` and ``link_rows`` come with them.
    """
    codes, labels = pd.factorize(components["component"].to_numpy(dtype=object))
    nodes = pa.array(components["node"].to_numpy(dtype=object), pa.string())
    if previous_links is not None:
        overlaps = _cluster_overlaps(nodes, codes, labels, previous_links, registry)
    else:
        overlaps = _no_overlaps()
    assignment = assign_identity_ids(
        pd.DataFrame({"component": labels}), overlaps, set(registry.identity_id), now
    )
    # The assigned row of each cluster: the assignment lists survivors first, then fresh ids.
    assigned = pd.Index(assignment.components["component"]).get_indexer(labels)
    # Like the joins, a node that is not a clean profile gets no link.
    at = pc.index_in(nodes, value_set=sources["record_id"].combine_chunks())
    found = at.is_valid()
    link_rows = at.filter(found).to_numpy().astype(np.int64)
    link_assigned = assigned[codes[found.to_numpy(zero_copy_only=False)]]
    ids = pa.array(assignment.components["identity_id"].to_numpy(dtype=object), pa.string())
    links = pa.table(
        {
            "record_id": nodes.filter(found),
            "identity_id": ids.take(link_assigned),
            "source": sources["source"].take(link_rows).cast(pa.string()),
        }
    )
    record_count = np.bincount(link_assigned, minlength=len(ids)).astype(np.int64)
    result = _graph_result(links, registry, old_merges, assignment, record_count, now, 0, len(labels))
    result.sizes = _sizes_by_id(ids, record_count)
    result.link_rows = link_rows
    return result


def rows_at(dataset: ds.Dataset, rows: np.ndarray, columns: list[str]) -> pa.Table:
    """Rows of a Parquet dataset by position in its ``to_table`` order (``rows`` ascending),
    decoding only the row groups that hold them: the preview needs ten profiles, and reading
    its other columns for every profile would decode the whole dataset for ten rows."""
    pieces = []
    start = 0
    for fragment in dataset.get_fragments():
        for group in fragment.split_by_row_group():
            size = group.row_groups[0].num_rows
            inside = rows[(rows >= start) & (rows < start + size)]
            if len(inside):
                table = group.to_table(schema=dataset.schema, columns=columns)
                pieces.append(table.take(pa.array(inside - start)))
            start += size
    return pa.concat_tables(pieces) if pieces else dataset.schema.empty_table().select(columns)


def _cluster_overlaps(
    nodes: pa.Array, codes: np.ndarray, labels: np.ndarray, previous_links: pa.Table, registry: pd.DataFrame
) -> pd.DataFrame:
    """How many records of each previous active identity each cluster holds.

    The rows come out in another order than the pandas merge and groupby gave; the assignment
    sorts them on keys that are unique per row, so that order never mattered.
    """
    at = pc.index_in(previous_links["record_id"].combine_chunks(), value_set=nodes)
    found = at.is_valid()
    cluster = codes[at.filter(found).to_numpy()].astype(np.int64)
    previous = previous_links["identity_id"].combine_chunks().filter(found)
    id_codes, id_labels = pd.factorize(previous.to_numpy(zero_copy_only=False))
    keep = id_codes >= 0  # a link without an identity joins none, as groupby dropped it
    width = max(len(id_labels), 1)
    pairs, records = np.unique(cluster[keep] * width + id_codes[keep], return_counts=True)
    active = registry[registry.status == "active"][["identity_id", "created_at"]]
    return pd.DataFrame(
        {
            "component": labels[pairs // width],
            "identity_id": id_labels[pairs % width],
            "records": records.astype(np.int64),
        }
    ).merge(active, on="identity_id", how="inner")


def _sizes_by_id(ids: pa.Array, record_count: np.ndarray) -> pd.Series:
    """Links per identity, by identity id, as ``groupby("identity_id").size()`` gave them: an
    identity without a link is left out. Arrow sorts UTF-8 bytes, which is code point order,
    the order Python sorts ``str`` in."""
    linked = record_count > 0
    linked_ids = ids.filter(pa.array(linked))
    order = pc.sort_indices(linked_ids).to_numpy()
    index = pd.Index(linked_ids.take(order).to_numpy(zero_copy_only=False), name="identity_id")
    return pd.Series(record_count[linked][order], index=index)


def _no_overlaps() -> pd.DataFrame:
    """The overlaps of a first run: no previous identity to carry over."""
    return pd.DataFrame(
        {"component": pd.Series(dtype="object"), "identity_id": pd.Series(dtype="object"),
         "created_at": pd.Series(dtype="object"), "records": pd.Series(dtype="int64")}
    )  # fmt: skip


def _graph_result(
    links: DataFrame | pa.Table,
    registry: pd.DataFrame,
    old_merges: pd.DataFrame,
    assignment: Assignment,
    record_count: np.ndarray,
    now: str,
    rounds: int,
    components: int,
) -> GraphResult:
    """The registry and merge log after this run's assignment, whichever engine built the links."""
    new_registry = _next_registry(registry, assignment.components, assignment.merges, record_count, now)
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
    registry: pd.DataFrame, assigned: pd.DataFrame, merges: pd.DataFrame, record_count: np.ndarray, now: str
) -> pd.DataFrame:
    """Every id ever issued, with its status: active, merged (into a survivor) or retired.

    record_count: links of each assigned row. An identity without a link (0) is never
    unchanged, even against a registry count of 0: a count of 0 here means no count at all,
    and a missing count equals none.
    """
    ids = assigned["identity_id"]
    updated_at = pd.Series(now, index=assigned.index, dtype=object)
    if len(registry):
        previous = registry.set_index("identity_id")
        count = pd.Series(record_count, index=assigned.index)
        same_count = (
            ids.isin(previous.index)
            & (count > 0)
            & ids.map(previous.get("record_count", pd.Series(dtype=object))).eq(count)
        )
        updated_at[same_count] = ids[same_count].map(previous["updated_at"])
    active = pd.DataFrame(
        {
            "identity_id": ids.to_numpy(),
            "created_at": assigned["created_at"].to_numpy(),
            "status": "active",
            "merged_into": None,
            "record_count": np.asarray(record_count, dtype=np.int64),
            "updated_at": updated_at.to_numpy(),
        }
    )
    if registry.empty:  # a first run: nothing to retire, and no need to hash every new id
        return active
    rest = registry[~registry.identity_id.isin(ids)].copy()
    if rest.empty:
        return active
    merged_into = dict(zip(merges.merged_id, merges.survivor_id, strict=True))
    newly_merged = rest.identity_id.isin(merged_into)
    rest.loc[newly_merged, "status"] = "merged"
    rest.loc[newly_merged, "merged_into"] = rest.loc[newly_merged, "identity_id"].map(merged_into)
    newly_retired = (rest.status == "active") & ~newly_merged
    rest.loc[newly_retired, "status"] = "retired"
    rest.loc[newly_merged | newly_retired, "updated_at"] = now
    out = pd.concat([active, rest[REGISTRY_COLUMNS]], ignore_index=True)
    out["record_count"] = pd.to_numeric(out["record_count"], errors="coerce").fillna(0).astype("int64")
    return out
