"""Incremental re-resolution of the identity graph: only the components a batch touches.

A full run recomputes every component although a stream batch (new ``idr.profiles`` records,
``identify`` events) touches a tiny fraction of them. Edges are only ever added here, so the
components of the old graph can only grow or join, never split. That makes the versioned-edges
recipe exact with a cheap contraction: the touched nodes are the endpoints of the batch's edges
plus its new nodes; each of them that already exists stands for its whole component (reached
through the node -> identity index, not by walking the graph), because re-running union-find
over that component's old edges would only rebuild the same component. Union-find then runs
over those contracted super-nodes and the batch's brand-new nodes, and nothing else.

Since an active identity and a component are one and the same, the node -> component index is
the node -> identity index. Ids follow the batch's rules (``stable_ids``): a component holding
one existing identity keeps it; one joining several keeps the oldest (``created_at``, then the
smaller id) and records the others as merged into it; one holding none gets a fresh id derived
from its smallest node key. Ids are never reused.

Nodes are typed keys ``<id_type>:<value>``: ``record:<record_id>`` for a profile record and
the serving store's identifier types otherwise (``email_key:...``, ``anonymous_id:...``,
``device_id:...``, ``source_customer_key:web:<user_id>``), so a node maps to a store row
without a translation table and a web account's profile and its identify events meet on the
same node.

Pure Python/numpy: no Spark, no Dagster. The state is mutated in place by :func:`apply_batch`
because copying a million-node state per micro-batch would cost more than the batch itself.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from idr_pipeline.core.clock import utc_timestamp
from idr_pipeline.graph.sparse_components import component_labels
from idr_pipeline.graph.stable_ids import assign_identity_ids, new_identity_id

RECORD = "record"
#: Identifier types that become graph nodes: strong enough that two holders are one person
#: (phone and national id are left to the batch matcher, which weighs households and typos).
STITCH_TYPES: tuple[str, ...] = ("email_key", "anonymous_id", "source_customer_key", "device_id")
ACTIVE, MERGED = "active", "merged"

REGISTRY_COLUMNS = ["identity_id", "created_at", "status", "merged_into", "record_count"]
MERGE_COLUMNS = ["merged_id", "survivor_id", "reason", "version"]


def node_key(kind: str, value: str) -> str:
    return f"{kind}:{value}"


def split_key(key: str) -> tuple[str, str]:
    """(kind, value); kinds never contain ':' but values may (``web:123``)."""
    kind, _, value = key.partition(":")
    return kind, value


@dataclass
class Resolution:
    """A node -> identity assignment with its registry and merges, comparable across engines."""

    links: pd.DataFrame  # node, identity_id
    registry: pd.DataFrame  # REGISTRY_COLUMNS (record_count may be absent)
    merges: pd.DataFrame  # merged_id, survivor_id, reason

    def assignment(self) -> dict[str, str]:
        return dict(zip(self.links.node, self.links.identity_id, strict=True))

    def partition(self) -> set[frozenset[str]]:
        return {frozenset(g) for g in self.links.groupby("identity_id").node.agg(list)}


@dataclass
class Delta:
    """What one batch changed, so the caller writes only these rows to the store."""

    version: int
    reason: str
    # node, identity_id: new nodes and nodes whose identity changed (merged away), nothing else.
    assignments: pd.DataFrame
    # REGISTRY_COLUMNS of identities created, grown or merged by this batch.
    identities: pd.DataFrame
    # merged_id, survivor_id, reason
    merges: pd.DataFrame
    new_nodes: int = 0
    new_edges: int = 0
    blocked_edges: int = 0
    # nodes in the components the batch touched (before joining): the work it could not avoid.
    touched_nodes: int = 0


@dataclass
class GraphState:
    """The identity graph between runs: nodes, versioned edges, identities and the index."""

    index: dict[str, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    sources: list[str | None] = field(default_factory=list)
    owner_buf: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    # Active identity slot -> its nodes; merged identities have no entry.
    members: dict[int, list[int]] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    id_slot: dict[str, int] = field(default_factory=dict)
    created_at: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    merged_into: list[str | None] = field(default_factory=list)
    record_counts: list[int] = field(default_factory=list)
    # (k, 3) int64 chunks of (src node, dst node, version): the versioned edge log.
    edge_chunks: list[np.ndarray] = field(default_factory=list)
    merge_log: list[tuple[str, str, str, int]] = field(default_factory=list)
    # Identifier nodes no edge may pass through: values the batch classified as shared.
    blocked: set[str] = field(default_factory=set)
    version: int = 0

    # ------------------------------------------------------------------ reads

    @property
    def n(self) -> int:
        return len(self.keys)

    @property
    def owner(self) -> np.ndarray:
        """node -> identity slot (-1 while a node is being added)."""
        return self.owner_buf[: self.n]

    def identity_of(self, key: str) -> str | None:
        node = self.index.get(key)
        return None if node is None else self.ids[int(self.owner_buf[node])]

    def resolve(self, id_type: str, value: str) -> str | None:
        """The identity an identifier belongs to, or None: the stitched-share resolver."""
        return self.identity_of(node_key(id_type, value))

    def edges(self) -> np.ndarray:
        if not self.edge_chunks:
            return np.empty((0, 3), dtype=np.int64)
        return np.concatenate(self.edge_chunks)

    def edge_frame(self) -> pd.DataFrame:
        keys = np.asarray(self.keys, dtype=object)
        e = self.edges()
        return pd.DataFrame({"src": keys[e[:, 0]], "dst": keys[e[:, 1]], "version": e[:, 2]})

    def registry(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "identity_id": self.ids,
                "created_at": self.created_at,
                "status": self.status,
                "merged_into": self.merged_into,
                "record_count": self.record_counts,
            }
        )

    def resolution(self) -> Resolution:
        ids = np.asarray(self.ids, dtype=object)
        links = pd.DataFrame({"node": np.asarray(self.keys, dtype=object), "identity_id": ids[self.owner]})
        merges = pd.DataFrame(self.merge_log, columns=MERGE_COLUMNS)[["merged_id", "survivor_id", "reason"]]
        return Resolution(links=links, registry=self.registry(), merges=merges)

    # ------------------------------------------------------------------ growth

    def _add_nodes(self, keys: np.ndarray, sources: np.ndarray | None) -> np.ndarray:
        start = self.n
        count = len(keys)
        if start + count > len(self.owner_buf):
            grown = np.full(max(2 * len(self.owner_buf), start + count, 1024), -1, dtype=np.int64)
            grown[:start] = self.owner_buf[:start]
            self.owner_buf = grown
        self.owner_buf[start : start + count] = -1
        self.keys.extend(keys.tolist())
        self.sources.extend(sources.tolist() if sources is not None else [None] * count)
        self.index.update(zip(keys.tolist(), range(start, start + count), strict=True))
        return np.arange(start, start + count, dtype=np.int64)

    def _new_identity(self, identity_id: str, created_at: str) -> int:
        slot = len(self.ids)
        self.ids.append(identity_id)
        self.id_slot[identity_id] = slot
        self.created_at.append(created_at)
        self.status.append(ACTIVE)
        self.merged_into.append(None)
        self.record_counts.append(0)
        return slot


# ---------------------------------------------------------------------- batch input


def _key_array(values: Iterable[str] | pd.Series | np.ndarray) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == object:
        return values
    return np.asarray(list(values) if not isinstance(values, pd.Series) else values.to_numpy(), dtype=object)


def _node_arrays(
    new_nodes: Iterable[str] | pd.DataFrame, sources: Mapping[str, str | None] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(new_nodes, pd.DataFrame):
        keys = _key_array(new_nodes["node"])
        srcs = _key_array(new_nodes["source"]) if "source" in new_nodes.columns else None
        return keys, srcs
    keys = _key_array(new_nodes)
    if sources is None:
        return keys, None
    return keys, np.asarray([sources.get(k) for k in keys], dtype=object)


def _edge_arrays(new_edges: Iterable[tuple[str, str]] | pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(new_edges, pd.DataFrame):
        return _key_array(new_edges["src"]), _key_array(new_edges["dst"])
    pairs = list(new_edges)
    src = np.asarray([a for a, _ in pairs], dtype=object)
    dst = np.asarray([b for _, b in pairs], dtype=object)
    return src, dst


def _is_blocked(keys: np.ndarray, blocked: set[str]) -> np.ndarray:
    if not blocked or not len(keys):
        return np.zeros(len(keys), dtype=bool)
    return (
        pd.Index(keys).isin(list(blocked))
        if len(blocked) < len(keys)
        else np.fromiter((k in blocked for k in keys), dtype=bool, count=len(keys))
    )


# ---------------------------------------------------------------------- the incremental step


def apply_batch(
    state: GraphState,
    new_nodes: Iterable[str] | pd.DataFrame,
    new_edges: Iterable[tuple[str, str]] | pd.DataFrame,
    version: int,
    *,
    now: str | None = None,
    reason: str = "stream",
    sources: Mapping[str, str | None] | None = None,
    apart: Iterable[tuple[str, str]] = (),
) -> tuple[GraphState, Delta]:
    """Add a batch of nodes and edges; recompute only the components it touches.

    ``apart`` holds pairs of node keys a steward forced apart: an edge that would put both
    into one identity (directly or through the batch's other edges) is refused and counted
    with the blocked edges.

    ``new_nodes`` are keys (or a frame with ``node`` and optionally ``source``), ``new_edges``
    pairs of keys (or a frame with ``src``, ``dst``); endpoints need not be listed as nodes.
    Known nodes and repeated edges are no-ops, so replaying a batch changes nothing. Edges
    touching a blocked (shared) identifier are dropped. Returns the same, mutated, state.
    """
    if version <= state.version:
        raise ValueError(f"batch version {version} is not after the state's version {state.version}")
    # A state of millions of small objects makes every full garbage collection walk all of
    # them; the batch creates no reference cycles, so collection waits until it is done.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _apply_batch(
            state, new_nodes, new_edges, version, now=now, reason=reason, sources=sources, apart=apart
        )
    finally:
        if was_enabled:
            gc.enable()


def _apply_batch(
    state: GraphState,
    new_nodes: Iterable[str] | pd.DataFrame,
    new_edges: Iterable[tuple[str, str]] | pd.DataFrame,
    version: int,
    *,
    now: str | None,
    reason: str,
    sources: Mapping[str, str | None] | None,
    apart: Iterable[tuple[str, str]] = (),
) -> tuple[GraphState, Delta]:
    now = now or utc_timestamp()
    node_keys, node_sources = _node_arrays(new_nodes, sources)
    src, dst = _edge_arrays(new_edges)
    loop = src == dst  # a self-loop only says its node exists
    if loop.any():
        node_keys = np.concatenate([node_keys, src[loop]])
        if node_sources is not None:
            node_sources = np.concatenate([node_sources, np.full(int(loop.sum()), None, dtype=object)])
    blocked = _is_blocked(src, state.blocked) | _is_blocked(dst, state.blocked)
    blocked_edges = int((blocked & ~loop).sum())
    src, dst = src[~blocked & ~loop], dst[~blocked & ~loop]
    node_ok = ~_is_blocked(node_keys, state.blocked)
    node_keys = node_keys[node_ok]
    node_sources = node_sources[node_ok] if node_sources is not None else None

    # 1. Integer node ids; unseen keys become nodes (with the source a record came with).
    all_keys = np.concatenate([node_keys, src, dst])
    codes, uniques = pd.factorize(all_keys)
    uniques = np.asarray(uniques, dtype=object)
    known = np.fromiter((state.index.get(k, -1) for k in uniques), dtype=np.int64, count=len(uniques))
    fresh = known < 0
    if fresh.any():
        fresh_sources = None
        if node_sources is not None:
            by_key = dict(zip(node_keys.tolist(), node_sources.tolist(), strict=True))
            fresh_sources = np.asarray([by_key.get(k) for k in uniques[fresh]], dtype=object)
        known[fresh] = state._add_nodes(uniques[fresh], fresh_sources)
    node_ids = known[codes]
    k, m = len(node_keys), len(src)
    e_src, e_dst = node_ids[k : k + m], node_ids[k + m :]

    # 2. Contract: a known node stands for its identity's whole component.
    slots_before = len(state.ids)
    owner = state.owner
    touched = node_ids if len(node_ids) else np.empty(0, dtype=np.int64)
    supers = np.where(owner[touched] >= 0, owner[touched], slots_before + touched)
    local, verts = pd.factorize(supers)
    verts = np.asarray(verts, dtype=np.int64)
    labels = component_labels(len(verts), local[k : k + m], local[k + m :])
    forbidden = _forbidden_vertex_pairs(state, apart, verts, slots_before)
    if forbidden:
        labels, refused = _labels_kept_apart(len(verts), local[k : k + m], local[k + m :], forbidden)
        blocked_edges += refused

    # 3. Group the super-nodes by their new component and name each component.
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    changed_nodes: list[np.ndarray] = []
    changed_ids: set[int] = set()
    merges: list[tuple[str, str, str]] = []
    unnamed: list[tuple[str, np.ndarray]] = []
    touched_nodes = 0
    for group in np.split(verts[order], bounds) if len(verts) else []:
        old = group[group < slots_before]
        new = group[group >= slots_before] - slots_before
        touched_nodes += sum(len(state.members[int(s)]) for s in old) + len(new)
        if len(old) == 0:
            unnamed.append((min(state.keys[int(x)] for x in new), new))
            continue
        if len(old) == 1 and len(new) == 0:
            continue  # an edge inside one identity: nothing changes
        survivor = int(min(old, key=lambda s: (state.created_at[int(s)], state.ids[int(s)])))
        _join(state, survivor, new)
        changed_nodes.append(new)
        changed_ids.add(survivor)
        for s in old:
            s = int(s)
            if s == survivor:
                continue
            moved = state.members.pop(s)
            state.owner_buf[moved] = survivor
            state.members[survivor].extend(moved)
            state.record_counts[survivor] += state.record_counts[s]
            state.status[s], state.merged_into[s] = MERGED, state.ids[survivor]
            changed_nodes.append(np.asarray(moved, dtype=np.int64))
            changed_ids.add(s)
            merges.append((state.ids[s], state.ids[survivor], reason))
            state.merge_log.append((state.ids[s], state.ids[survivor], reason, version))
    # 4. Components of new nodes only: fresh ids, in founding-key order as the batch does.
    for founding, new in sorted(unnamed, key=lambda t: t[0]):
        slot = state._new_identity(new_identity_id(founding, state.id_slot.keys()), now)
        state.members[slot] = []
        _join(state, slot, new)
        changed_nodes.append(new)
        changed_ids.add(slot)

    if m:
        state.edge_chunks.append(np.column_stack([e_src, e_dst, np.full(m, version, dtype=np.int64)]))
    state.version = version
    return state, _delta(state, version, reason, changed_nodes, changed_ids, merges, fresh.sum(), m,
                         blocked_edges, touched_nodes)  # fmt: skip


def _forbidden_vertex_pairs(
    state: GraphState, apart: Iterable[tuple[str, str]], verts: np.ndarray, slots_before: int
) -> set[frozenset[int]]:
    """The pairs of this batch's super-nodes (``verts`` positions) that must stay apart: the
    identities (or new nodes) holding the two keys of each pair in ``apart``."""
    position = {int(v): i for i, v in enumerate(verts.tolist())}
    owner = state.owner
    out: set[frozenset[int]] = set()
    for a, b in apart:
        ends = []
        for key in (a, b):
            node = state.index.get(key, -1)
            if node < 0:
                break
            vert = int(owner[node]) if owner[node] >= 0 else slots_before + node
            ends.append(position.get(vert))
        if len(ends) == 2 and None not in ends and ends[0] != ends[1]:
            out.add(frozenset(ends))
    return out


def _labels_kept_apart(
    n: int, src: np.ndarray, dst: np.ndarray, forbidden: set[frozenset[int]]
) -> tuple[np.ndarray, int]:
    """Components of ``n`` vertices over the edges in their order, skipping every edge that would
    join two vertices of a forbidden pair; returns the labels and how many edges were refused."""
    parent = list(range(n))
    members: dict[int, set[int]] = {v: {v} for pair in forbidden for v in pair}
    partners: dict[int, set[int]] = {}
    for pair in forbidden:
        x, y = tuple(pair)
        partners.setdefault(x, set()).add(y)
        partners.setdefault(y, set()).add(x)

    def find(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    refused = 0
    for a, b in zip(src.tolist(), dst.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        mine, theirs = members.get(ra, set()), members.get(rb, set())
        if any(partners.get(v, set()) & theirs for v in mine):
            refused += 1
            continue
        parent[rb] = ra
        if theirs:
            members[ra] = mine | theirs
            members.pop(rb, None)
    return np.fromiter((find(v) for v in range(n)), dtype=np.int64, count=n), refused


def _join(state: GraphState, slot: int, nodes: np.ndarray) -> None:
    if not len(nodes):
        return
    state.owner_buf[nodes] = slot
    state.members[slot].extend(nodes.tolist())
    state.record_counts[slot] += sum(1 for x in nodes.tolist() if state.keys[x].startswith(RECORD + ":"))


def _delta(
    state: GraphState,
    version: int,
    reason: str,
    changed_nodes: list[np.ndarray],
    changed_ids: set[int],
    merges: list[tuple[str, str, str]],
    new_nodes: int,
    new_edges: int,
    blocked_edges: int,
    touched_nodes: int,
) -> Delta:
    # Per-node lists, not whole-state arrays: converting a million keys would cost more than the batch.
    nodes = np.concatenate(changed_nodes).tolist() if changed_nodes else []
    keys = [state.keys[x] for x in nodes]
    owners = [state.ids[s] for s in state.owner_buf[nodes].tolist()] if nodes else []
    slots = sorted(changed_ids)
    identities = pd.DataFrame(
        {
            "identity_id": [state.ids[s] for s in slots],
            "created_at": [state.created_at[s] for s in slots],
            "status": [state.status[s] for s in slots],
            "merged_into": [state.merged_into[s] for s in slots],
            "record_count": [state.record_counts[s] for s in slots],
        },
        columns=REGISTRY_COLUMNS,
    )
    return Delta(
        version=version,
        reason=reason,
        assignments=pd.DataFrame(
            {"node": pd.Series(keys, dtype=object), "identity_id": pd.Series(owners, dtype=object)}
        ),
        identities=identities,
        merges=pd.DataFrame(merges, columns=["merged_id", "survivor_id", "reason"]),
        new_nodes=int(new_nodes),
        new_edges=new_edges,
        blocked_edges=blocked_edges,
        touched_nodes=touched_nodes,
    )


# ---------------------------------------------------------------------- the reference


def full_recompute(
    nodes: Iterable[str] | np.ndarray,
    edges: Iterable[tuple[str, str]] | pd.DataFrame,
    previous: Resolution | None = None,
    now: str = "",
    reason: str = "components_joined",
) -> Resolution:
    """Every component from scratch, named by the batch's id rules against ``previous``.

    The reference the incremental step must equal, and the cost it is benchmarked against:
    one labeling of the whole graph, then ``stable_ids.assign_identity_ids`` carrying ids over
    from the previous assignment (oldest survives, fresh ids from the smallest node key).
    """
    src, dst = _edge_arrays(edges)
    all_keys = np.concatenate([_key_array(nodes), src, dst])
    codes, uniques = pd.factorize(all_keys)
    uniques = np.asarray(uniques, dtype=object)
    n_nodes = len(all_keys) - 2 * len(src)
    m = len(src)
    labels = component_labels(len(uniques), codes[n_nodes : n_nodes + m], codes[n_nodes + m :])
    # The smallest key per component, by rank: pandas' groupby-min on strings falls back to a
    # Python loop per group, which would dominate a full run on a large graph.
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[pc.sort_indices(pa.array(uniques, pa.string())).to_numpy()] = np.arange(len(uniques))
    first = pd.Series(rank).groupby(labels).transform("min").to_numpy()
    by_rank = np.empty(len(uniques), dtype=np.int64)
    by_rank[rank] = np.arange(len(uniques))
    frame = pd.DataFrame({"node": uniques, "component": uniques[by_rank[first]]})
    comp_table = pd.DataFrame({"component": frame.component.unique()})

    if previous is not None:
        registry = previous.registry
        active = registry[registry.status == ACTIVE][["identity_id", "created_at"]]
        overlaps = (
            frame[["node", "component"]]
            .merge(previous.links, on="node")
            .groupby(["component", "identity_id"], as_index=False)
            .size()
            .rename(columns={"size": "records"})
            .merge(active, on="identity_id")
        )
        known = set(registry.identity_id)
    else:
        registry = pd.DataFrame(columns=REGISTRY_COLUMNS)
        overlaps = pd.DataFrame(columns=["component", "identity_id", "created_at", "records"])
        known = set()
    assigned = assign_identity_ids(comp_table, overlaps, known, now)
    links = frame[["node", "component"]].merge(assigned.components, on="component")[["node", "identity_id"]]
    merged_into = dict(zip(assigned.merges.merged_id, assigned.merges.survivor_id, strict=True))
    rest = registry[~registry.identity_id.isin(assigned.components.identity_id)].copy()
    hit = rest.identity_id.isin(merged_into)
    rest.loc[hit, "status"] = MERGED
    rest.loc[hit, "merged_into"] = rest.loc[hit, "identity_id"].map(merged_into)
    active_rows = assigned.components[["identity_id", "created_at"]].assign(status=ACTIVE, merged_into=None)
    cols = ["identity_id", "created_at", "status", "merged_into"]
    new_registry = pd.concat([active_rows[cols], rest[cols]], ignore_index=True)
    old_merges = (
        previous.merges
        if previous is not None
        else pd.DataFrame(columns=["merged_id", "survivor_id", "reason"])
    )
    merges = pd.concat([old_merges, assigned.merges.assign(reason=reason)], ignore_index=True)
    return Resolution(links=links.reset_index(drop=True), registry=new_registry, merges=merges)


# ---------------------------------------------------------------------- bootstrapping


def bootstrap_state(
    links: pd.DataFrame,
    registry: pd.DataFrame,
    identifiers: pd.DataFrame | None = None,
    shared: pd.DataFrame | None = None,
    version: int = 0,
) -> GraphState:
    """The state that reproduces the batch's output exactly, so the stream starts from it.

    links: record_id, identity_id[, source]; registry: identity_id, created_at, status[,
    merged_into]; identifiers: id_type, id_value, identity_id (the batch's serving table);
    shared: id_type, id_value the batch refused to link on (households, placeholders).

    The batch's identities may rest on matcher links that no shared identifier explains, so
    each identity becomes a star of version-0 edges from its smallest record: a full recompute
    of the bootstrapped graph gives back the batch's partition. An identifier joins the graph
    only when exactly one active identity holds it; one held by several, or classified as
    shared, is blocked so that no stream edge can chain people through it.
    """
    state = GraphState(version=version)
    # Sorted, so each identity's first node (its star's hub) is its smallest record id.
    links = links.sort_values("record_id", kind="stable")
    reg = registry.copy()
    if "merged_into" not in reg.columns:
        reg["merged_into"] = None
    reg = reg.drop_duplicates("identity_id")
    link_ids = pd.Index(links.identity_id.unique())
    missing = link_ids.difference(pd.Index(reg.identity_id))
    if len(missing):  # an identity the registry does not know: treat it as active, oldest first
        extra = pd.DataFrame(
            {"identity_id": missing, "created_at": "", "status": ACTIVE, "merged_into": None}
        )
        reg = pd.concat([reg, extra], ignore_index=True)
    reg = reg.sort_values(["created_at", "identity_id"], kind="stable").reset_index(drop=True)
    state.ids = reg.identity_id.astype(str).tolist()
    state.id_slot = {i: s for s, i in enumerate(state.ids)}
    state.created_at = reg.created_at.fillna("").astype(str).tolist()
    state.status = reg.status.fillna(ACTIVE).astype(str).tolist()
    state.merged_into = [None if pd.isna(v) else str(v) for v in reg.merged_into]
    state.record_counts = [0] * len(state.ids)

    slot_of = pd.Series(np.arange(len(state.ids)), index=pd.Index(state.ids))
    rec_keys = (RECORD + ":" + links.record_id.astype(str)).to_numpy(dtype=object)
    rec_slots = slot_of.reindex(links.identity_id.to_numpy()).to_numpy()
    rec_sources = links["source"].to_numpy(dtype=object) if "source" in links.columns else None
    for slot in np.unique(rec_slots):  # records of a merged identity follow it to its survivor
        if state.status[slot] != ACTIVE:
            state.status[slot] = ACTIVE
            state.merged_into[slot] = None

    id_keys = np.empty(0, dtype=object)
    id_slots = np.empty(0, dtype=np.int64)
    if identifiers is not None and len(identifiers):
        ident = identifiers[identifiers.id_type.isin(STITCH_TYPES)]
        ident = ident[ident.identity_id.isin(link_ids)]
        keys = ident.id_type.astype(str) + ":" + ident.id_value.astype(str)
        holders = ident.assign(key=keys.to_numpy()).groupby("key").identity_id.agg(["nunique", "first"])
        state.blocked.update(holders.index[holders["nunique"] > 1])
        single = holders[holders["nunique"] == 1]
        id_keys = single.index.to_numpy(dtype=object)
        id_slots = slot_of.reindex(single["first"].to_numpy()).to_numpy()
    if shared is not None and len(shared):
        state.blocked.update((shared.id_type.astype(str) + ":" + shared.id_value.astype(str)).tolist())
    keep = ~_is_blocked(id_keys, state.blocked)
    id_keys, id_slots = id_keys[keep], id_slots[keep]

    all_keys = np.concatenate([rec_keys, id_keys])
    all_slots = np.concatenate([rec_slots, id_slots]).astype(np.int64)
    sources = None
    if rec_sources is not None:
        sources = np.concatenate([rec_sources, np.full(len(id_keys), None, dtype=object)])
    nodes = state._add_nodes(all_keys, sources)
    state.owner_buf[nodes] = all_slots
    counts = np.bincount(rec_slots.astype(np.int64), minlength=len(state.ids))
    state.record_counts = counts.tolist()
    order = np.argsort(all_slots, kind="stable")
    bounds = np.flatnonzero(np.diff(all_slots[order])) + 1
    for group in np.split(nodes[order], bounds) if len(nodes) else []:
        state.members[int(all_slots[group[0]])] = group.tolist()
    # Star edges from each identity's hub (its first node: the smallest record id) to the rest.
    hub = {slot: group[0] for slot, group in state.members.items()}
    hubs = np.asarray([hub[int(s)] for s in all_slots], dtype=np.int64) if len(nodes) else nodes
    spoke = nodes != hubs
    state.edge_chunks.append(np.column_stack([hubs[spoke], nodes[spoke], np.full(int(spoke.sum()), version)]))
    return state
