"""Incremental re-resolution of the identity graph against full recomputation.

    .venv/bin/python benchmarks/incremental_graph.py --nodes 1000000 --new-edge-share 0.01

Builds a random identity graph (many small components with power-law sizes, as records and
their identifiers form them: spanning trees plus some redundant edges), resolves it, then adds
a batch of new edges (``--new-edge-share`` of the existing count): half join two existing
nodes (identify events, merges), half attach a brand-new record to an existing node (new
profiles). Then it times, on the same final graph:

* full recomputation with the project's Spark ``connected_components`` (labels only);
* full recomputation in memory with ``incremental.full_recompute`` (labels + stable ids);
* the incremental step ``incremental.apply_batch`` on the resolved state (labels + ids + delta);
* persisting that step (batch log append) and loading the state back (snapshot + replay).

The incremental result is checked against the in-memory full recomputation (same node ->
identity id) before anything is printed.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

from idr_pipeline.graph.incremental.persist import BatchInput, StateStore
from idr_pipeline.graph.incremental.state import GraphState, apply_batch, full_recompute

KINDS = np.array(["record", "email_key", "anonymous_id", "device_id", "source_customer_key"], dtype=object)
KIND_WEIGHTS = [0.5, 0.2, 0.15, 0.1, 0.05]


def make_graph(
    n: int, seed: int, max_size: int, extra: float, zipf: float = 2.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """keys, src, dst: components with Zipf(2) sizes (most of 1-3 nodes, a few in the hundreds)."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.zipf(zipf, size=n), max_size)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    sizes[-1] -= sizes.sum() - n
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    offset = np.arange(n) - starts
    # Random recursive tree per component: node j links to one of the nodes before it.
    child = np.flatnonzero(offset > 0)
    parent = starts[child] + (rng.random(len(child)) * offset[child]).astype(np.int64)
    # Redundant edges inside components (a record and its identifiers form cycles).
    big = np.flatnonzero(np.repeat(sizes, sizes) > 2)
    pick = rng.choice(big, size=int(extra * len(child)), replace=True) if len(big) else np.empty(0, np.int64)
    size_of = np.repeat(sizes, sizes)
    other = starts[pick] + (rng.random(len(pick)) * size_of[pick]).astype(np.int64)
    src = np.concatenate([child, pick])
    dst = np.concatenate([parent, other])
    kinds = rng.choice(KINDS, size=n, p=KIND_WEIGHTS)
    keys = np.array([f"{k}:{i:09d}" for k, i in zip(kinds.tolist(), range(n), strict=True)], dtype=object)
    return keys, keys[src], keys[dst]


def new_batch(keys: np.ndarray, n_edges: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half between existing nodes, half from a new record to an existing node."""
    rng = np.random.default_rng(seed + 1)
    joins = n_edges // 2
    attach = n_edges - joins
    new_keys = np.array([f"record:new{i:09d}" for i in range(attach)], dtype=object)
    src = np.concatenate([keys[rng.integers(0, len(keys), joins)], new_keys])
    dst = np.concatenate([keys[rng.integers(0, len(keys), joins)], keys[rng.integers(0, len(keys), attach)]])
    return new_keys, src, dst


def labels_only(keys: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The floor of any full recomputation in memory: key -> int, then one C labeling pass."""
    codes, uniques = pd.factorize(np.concatenate([keys, src, dst]))
    n, m = len(keys), len(src)
    graph = sparse.coo_matrix(
        (np.ones(m, dtype=np.int32), (codes[n : n + m], codes[n + m :])), shape=(len(uniques),) * 2
    )
    return csgraph.connected_components(graph.tocsr(), directed=True, connection="weak")[1]


def spark_full(keys: np.ndarray, src: np.ndarray, dst: np.ndarray) -> tuple[float, int, float]:
    """Seconds for the project's Spark connected_components (data already in Spark), rounds, setup s."""
    from idr_pipeline.core.spark import get_spark
    from idr_pipeline.graph.components import connected_components

    t0 = time.perf_counter()
    spark = get_spark()
    nodes = spark.createDataFrame(pd.DataFrame({"node": keys})).localCheckpoint()
    edges = spark.createDataFrame(pd.DataFrame({"src": src, "dst": dst})).localCheckpoint()
    nodes.count(), edges.count()
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels, rounds = connected_components(nodes, edges)
    labels.count()
    return time.perf_counter() - t0, rounds, setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--new-edge-share", type=float, default=0.01, help="new edges / existing edges")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-component", type=int, default=500)
    parser.add_argument("--zipf", type=float, default=2.5, help="component-size exponent (smaller: bigger)")
    parser.add_argument("--extra-edges", type=float, default=0.1, help="redundant edges / tree edges")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the in-memory steps (best of)")
    parser.add_argument("--no-spark", action="store_true", help="skip the Spark full recomputation")
    args = parser.parse_args()

    t0 = time.perf_counter()
    keys, src, dst = make_graph(args.nodes, args.seed, args.max_component, args.extra_edges, args.zipf)
    new_keys, new_src, new_dst = new_batch(keys, int(args.new_edge_share * len(src)), args.seed)
    print(f"graph: {len(keys):,} nodes, {len(src):,} edges; batch: {len(new_src):,} new edges "
          f"({args.new_edge_share:.1%}), {len(new_keys):,} new nodes; generated in "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip

    t0 = time.perf_counter()
    base = GraphState()
    apply_batch(base, keys, pd.DataFrame({"src": src, "dst": dst}), 1, now="2024-01-01")
    previous = base.resolution()
    build_s = time.perf_counter() - t0
    print(f"initial resolution of the graph (apply_batch from empty): {build_s:.2f} s, "
          f"{(previous.registry.status == 'active').sum():,} identities")  # fmt: skip

    all_keys = np.concatenate([keys, new_keys])
    all_edges = pd.DataFrame({"src": np.concatenate([src, new_src]), "dst": np.concatenate([dst, new_dst])})
    batch = BatchInput(
        version=2,
        now="2024-01-02",
        reason="identify_event",
        nodes=pd.DataFrame({"node": new_keys, "source": "web"}),
        edges=pd.DataFrame({"src": new_src, "dst": new_dst}),
    )

    full_times, inc_times, label_times = [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        labels_only(all_keys, all_edges.src.to_numpy(), all_edges.dst.to_numpy())
        label_times.append(time.perf_counter() - t0)
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        full = full_recompute(all_keys, all_edges, previous=previous, now="2024-01-02")
        full_times.append(time.perf_counter() - t0)
    for _ in range(args.repeat):
        state = copy.deepcopy(base)  # not timed: each run starts from the same resolved state
        t0 = time.perf_counter()
        delta = batch.apply(state)
        inc_times.append(time.perf_counter() - t0)

    check = full.links.merge(state.resolution().links, on="node", suffixes=("_full", "_inc"))
    assert len(check) == len(all_keys) == len(full.links), "node sets differ"
    assert (check.identity_id_full == check.identity_id_inc).all(), "incremental != full recomputation"
    assert len(delta.merges) == len(full.merges) - len(previous.merges)

    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(tmp)
        t0 = time.perf_counter()
        store.save_snapshot(base)
        snapshot_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.append_log(batch)
        log_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        loaded = store.load()
        load_s = time.perf_counter() - t0
        assert loaded.version == 2 and loaded.identity_of(new_keys[0]) == state.identity_of(new_keys[0])

    spark_s = rounds = setup = None
    if not args.no_spark:
        spark_s, rounds, setup = spark_full(all_keys, all_edges.src.to_numpy(), all_edges.dst.to_numpy())

    full_s, inc_s = min(full_times), min(inc_times)
    print()
    print(f"batch: {delta.new_edges:,} edges, {delta.new_nodes:,} new nodes, {len(delta.merges):,} merges, "
          f"{delta.touched_nodes:,} nodes in touched components, {len(delta.assignments):,} assignments "
          f"written; incremental == full recomputation: yes")  # fmt: skip
    print()
    rows = []
    if spark_s is not None:
        rows.append(("full, Spark connected_components (labels only)", spark_s, f"{rounds} rounds"))
    rows.append(("full, in-memory full_recompute (labels + ids)", full_s, f"best of {args.repeat}"))
    rows.append(("full, in-memory labels only (scipy csgraph, no ids)", min(label_times), "lower bound"))
    rows.append(("incremental, apply_batch (labels + ids + delta)", inc_s, f"best of {args.repeat}"))
    width = max(len(r[0]) for r in rows)
    print(f"{'run':<{width}}  {'seconds':>9}  {'incremental / this':>18}  note")
    for name, seconds, note in rows:
        print(f"{name:<{width}}  {seconds:>9.3f}  {f'1/{seconds / inc_s:,.0f}':>18}  {note}")
    print()
    print(f"persisting the batch (log append): {log_s:.3f} s; state snapshot: {snapshot_s:.2f} s; "
          f"load (snapshot + replay of 1 batch): {load_s:.2f} s")  # fmt: skip
    if setup is not None:
        print(f"Spark setup not counted above (session, createDataFrame, checkpoint): {setup:.1f} s")


if __name__ == "__main__":
    main()
