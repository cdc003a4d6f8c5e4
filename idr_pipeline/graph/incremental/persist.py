"""Keeping the incremental graph state between runs: a batch log plus an occasional snapshot.

Writing the whole state after every micro-batch would cost O(graph) and undo the point of
resolving incrementally, so each batch appends only its *input* (nodes and edges, with its
version, time and reason) to an append-only log. :func:`apply_batch` is deterministic, so
replaying the log over the last snapshot rebuilds the exact state; every ``snapshot_every``
batches a snapshot caches the result so the replay stays short.

The log is never discarded: when the batch resolution runs again (a new version of
``resolution/identity_links``), the state is re-bootstrapped from the batch output and the
whole stream log is replayed on top, so stream edges the batch has not seen yet survive.

Layout under ``<lake>/resolution/incremental_graph/`` (any pyarrow filesystem URI or path):
``log/<version>.parquet``, ``snapshot/v=<version>/*.parquet`` and a ``_SNAPSHOT`` pointer.
One writer at a time is assumed (the streaming asset runs with concurrency one).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from idr_pipeline.graph.incremental.state import MERGE_COLUMNS, Delta, GraphState, apply_batch

LOG = "log"
SNAPSHOT = "snapshot"
POINTER = "_SNAPSHOT"
SNAPSHOT_EVERY = 20


@dataclass
class BatchInput:
    """What one batch added, as :func:`apply_batch` takes it: enough to replay it exactly."""

    version: int
    now: str
    reason: str
    nodes: pd.DataFrame  # node, source
    edges: pd.DataFrame  # src, dst
    #: node-key pairs a steward forced apart when the batch ran (a, b): replayed with it
    apart: tuple[tuple[str, str], ...] = ()

    def apply(self, state: GraphState) -> Delta:
        _, delta = apply_batch(
            state, self.nodes, self.edges, self.version, now=self.now, reason=self.reason, apart=self.apart
        )
        return delta


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), posixpath.abspath(uri)


class StateStore:
    """The log and snapshots of one incremental graph at ``uri``."""

    def __init__(self, uri: str, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        self.uri = uri
        self.fs, self.root = _filesystem(uri)
        self.snapshot_every = snapshot_every

    def _path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def _list(self, folder: str) -> list[str]:
        info = self.fs.get_file_info(pafs.FileSelector(self._path(folder), allow_not_found=True))
        return sorted(posixpath.basename(i.path) for i in info)

    # ------------------------------------------------------------------ the log

    def append_log(self, batch: BatchInput) -> None:
        nodes = batch.nodes.reindex(columns=["node", "source"])
        apart = list(batch.apart)
        table = pa.table(
            {
                "kind": pa.array(
                    ["n"] * len(nodes) + ["e"] * len(batch.edges) + ["x"] * len(apart), pa.string()
                ),
                "a": pa.array(
                    [*nodes.node.tolist(), *batch.edges.src.tolist(), *(a for a, _ in apart)], pa.string()
                ),
                "b": pa.array(
                    [None] * len(nodes) + batch.edges.dst.tolist() + [b for _, b in apart], pa.string()
                ),
                "source": pa.array(
                    [*nodes.source.tolist(), *([None] * (len(batch.edges) + len(apart)))], pa.string()
                ),
            }
        )
        meta = {"version": batch.version, "now": batch.now, "reason": batch.reason}
        table = table.replace_schema_metadata({"idr_batch": json.dumps(meta)})
        self.fs.create_dir(self._path(LOG), recursive=True)
        # Written under a temporary name and moved, so a crash never leaves half a batch to replay.
        final = self._path(LOG, f"{batch.version:012d}.parquet")
        pq.write_table(table, final + ".tmp", filesystem=self.fs)
        self.fs.move(final + ".tmp", final)

    def log_versions(self, after: int = 0) -> list[int]:
        names = [n for n in self._list(LOG) if n.endswith(".parquet")]
        return [v for v in (int(n.split(".")[0]) for n in names) if v > after]

    def read_log(self, version: int) -> BatchInput:
        table = pq.read_table(self._path(LOG, f"{version:012d}.parquet"), filesystem=self.fs)
        meta = json.loads(table.schema.metadata[b"idr_batch"])
        frame = table.to_pandas()
        node_rows, edge_rows = frame[frame.kind == "n"], frame[frame.kind == "e"]
        apart_rows = frame[frame.kind == "x"]
        return BatchInput(
            version=int(meta["version"]),
            now=meta["now"],
            reason=meta["reason"],
            nodes=pd.DataFrame({"node": node_rows.a.to_numpy(), "source": node_rows.source.to_numpy()}),
            edges=pd.DataFrame({"src": edge_rows.a.to_numpy(), "dst": edge_rows.b.to_numpy()}),
            apart=tuple(zip(apart_rows.a.tolist(), apart_rows.b.tolist(), strict=True)),
        )

    # ------------------------------------------------------------------ snapshots

    def snapshot_version(self) -> int | None:
        try:
            with self.fs.open_input_stream(self._path(POINTER)) as f:
                return int(json.loads(f.read().decode())["version"])
        except FileNotFoundError:
            return None

    def save_snapshot(self, state: GraphState, base: str | None = None) -> None:
        folder = self._path(SNAPSHOT, f"v={state.version:012d}")
        self.fs.create_dir(folder, recursive=True)
        edges = state.edges()
        tables = {
            "nodes": pa.table(
                {
                    "key": pa.array(state.keys, pa.string()),
                    "source": pa.array(state.sources, pa.string()),
                    "owner": pa.array(state.owner, pa.int64()),
                }
            ),
            "identities": pa.Table.from_pandas(state.registry(), preserve_index=False),
            "edges": pa.table({"src": edges[:, 0], "dst": edges[:, 1], "version": edges[:, 2]}),
            "merges": pa.Table.from_pandas(
                pd.DataFrame(state.merge_log, columns=MERGE_COLUMNS), preserve_index=False
            ),
            "blocked": pa.table({"key": pa.array(sorted(state.blocked), pa.string())}),
        }
        for name, table in tables.items():
            pq.write_table(table, posixpath.join(folder, f"{name}.parquet"), filesystem=self.fs)
        pointer = json.dumps({"version": state.version, "base": base})
        with self.fs.open_output_stream(self._path(POINTER) + ".tmp") as f:
            f.write(pointer.encode())
        self.fs.move(self._path(POINTER) + ".tmp", self._path(POINTER))
        for old in self._list(SNAPSHOT):
            if old != f"v={state.version:012d}":
                self.fs.delete_dir(self._path(SNAPSHOT, old))

    def _pointer(self) -> dict | None:
        try:
            with self.fs.open_input_stream(self._path(POINTER)) as f:
                return json.loads(f.read().decode())
        except FileNotFoundError:
            return None

    def load_snapshot(self) -> tuple[GraphState, str | None] | None:
        pointer = self._pointer()
        if pointer is None:
            return None
        folder = self._path(SNAPSHOT, f"v={int(pointer['version']):012d}")

        def read(name: str) -> pa.Table:
            return pq.read_table(posixpath.join(folder, f"{name}.parquet"), filesystem=self.fs)

        return _state_from_tables(
            read("nodes"), read("identities"), read("edges"), read("merges"), read("blocked"),
            int(pointer["version"]),
        ), pointer.get("base")  # fmt: skip

    # ------------------------------------------------------------------ whole state

    def load(self, bootstrap: Callable[[], GraphState] | None = None, base: str | None = None) -> GraphState:
        """The current state: the snapshot when it was built on ``base``, else a fresh bootstrap
        (or an empty graph), with every logged batch after it replayed."""
        snap = self.load_snapshot()
        if snap is not None and snap[1] == base:
            state = snap[0]
        else:
            state = bootstrap() if bootstrap is not None else GraphState()
        for version in self.log_versions(after=state.version):
            self.read_log(version).apply(state)
        return state

    def record(self, state: GraphState, batch: BatchInput, base: str | None = None) -> None:
        """Log a batch that ``state`` has applied; snapshot when the replay tail grows long."""
        self.append_log(batch)
        since = self.snapshot_version()
        if since is None or len(self.log_versions(after=since)) >= self.snapshot_every:
            self.save_snapshot(state, base)


def _state_from_tables(
    nodes: pa.Table, identities: pa.Table, edges: pa.Table, merges: pa.Table, blocked: pa.Table, version: int
) -> GraphState:
    state = GraphState(version=version)
    state.keys = nodes.column("key").to_pylist()
    state.sources = nodes.column("source").to_pylist()
    state.index = dict(zip(state.keys, range(len(state.keys)), strict=True))
    owner = nodes.column("owner").to_numpy().astype(np.int64)
    state.owner_buf = owner.copy()
    reg = identities.to_pandas()
    state.ids = reg.identity_id.tolist()
    state.id_slot = {i: s for s, i in enumerate(state.ids)}
    state.created_at = reg.created_at.tolist()
    state.status = reg.status.tolist()
    state.merged_into = [None if pd.isna(v) else v for v in reg.merged_into]
    state.record_counts = reg.record_count.astype(int).tolist()
    order = np.argsort(owner, kind="stable")
    bounds = np.flatnonzero(np.diff(owner[order])) + 1
    for group in np.split(order, bounds) if len(order) else []:
        state.members[int(owner[group[0]])] = group.tolist()
    e = np.column_stack([edges.column(c).to_numpy().astype(np.int64) for c in ("src", "dst", "version")])
    state.edge_chunks = [e] if len(e) else []
    state.merge_log = [tuple(r) for r in merges.to_pandas()[MERGE_COLUMNS].itertuples(index=False)]
    state.blocked = set(blocked.column("key").to_pylist())
    return state
