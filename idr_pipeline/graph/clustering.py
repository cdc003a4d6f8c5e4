"""Clustering scored pairs into identities without over-merging.

Connected components over every pair above the threshold chain households and namesakes
together: one good-looking link between a father's and a son's records merges two people, and
a run of such links merges a street. Here pairs are taken strongest first and each merge of two
clusters must pass three tests:

* **no conflicting strong identifiers**: the merged cluster may not hold two national ids more
  than one typo apart, nor the same full name with clearly different dates of birth (Jr and Sr),
  unless the record pairs that carry the conflict were themselves scored as likely matches
  (the model has then weighed that disagreement directly: a re-keyed or corrupted copy);
* **no weak bridges**: when both sides already hold several records, the average probability
  over all record pairs between them (missing pairs count as 0) must clear ``min_avg_linkage``,
  so one strong-looking link cannot glue two dense groups together;
* **a size cap**: a merge that would exceed ``max_cluster_size`` is refused and counted.

Every refusal is reported with its reason, and every link that did merge is returned, so the
store can answer "why are these records one identity" with the path and its weights.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz.distance import OSA

from idr_pipeline.graph.paths import path_between
from idr_pipeline.graph.sparse_components import component_labels

REFUSED_NATIONAL_ID = "conflicting_national_id"
REFUSED_DOB = "same_name_different_dob"
REFUSED_WEAK_BRIDGE = "weak_bridge"
REFUSED_SIZE = "cluster_size_cap"


@dataclass(frozen=True)
class ClusteringPolicy:
    threshold: float = 0.9
    min_avg_linkage: float = 0.5
    max_cluster_size: int = 50


@dataclass(slots=True)
class _Cluster:
    members: list[str]
    # What the guards compare, kept per cluster as it grows so a merge's check looks at the
    # members that carry something instead of pairing every member with every other (which
    # grows with the product of the two clusters' sizes). None while the cluster has none.
    national_ids: list[tuple[str, str]] | None = None  # (record, national id)
    people: dict[str, list[tuple[str, str]]] | None = None  # full-name key -> [(record, dob)]

    def absorb(self, other: _Cluster) -> None:
        self.members.extend(other.members)
        if other.national_ids:
            if self.national_ids is None:
                self.national_ids = []
            self.national_ids.extend(other.national_ids)
        if other.people:
            if self.people is None:
                self.people = {}
            for key, entries in other.people.items():
                self.people.setdefault(key, []).extend(entries)


@dataclass
class ClusteringResult:
    # record_id -> cluster label (smallest record id in the cluster)
    labels: dict[str, str]
    # the pairs that merged two clusters: record_id_l, record_id_r, probability; indexed by
    # their labels in the input pairs, so a caller can bring along any other column it holds
    kept: pd.DataFrame
    # pairs above the threshold that were refused, with the reason
    refused: pd.DataFrame

    def refused_counts(self) -> dict[str, int]:
        return self.refused["reason"].value_counts().to_dict() if len(self.refused) else {}


def clearly_different_dob(a: str, b: str) -> bool:
    """Two ISO dates that no data-entry slip turns into each other.

    Equal dates, one mistyped digit, day/month transposed, or a year off by one with the same
    day and month are typos of one birthday; anything else under the same name is two people.
    """
    if a == b:
        return False
    if len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1:
        return False  # one mistyped digit
    ya, ma, da = a[:4], a[5:7], a[8:10]
    yb, mb, db = b[:4], b[5:7], b[8:10]
    if ya == yb and ma == db and da == mb:
        return False
    if ma == mb and da == db and ya.isdigit() and yb.isdigit() and abs(int(ya) - int(yb)) == 1:
        return False
    return True


def different_national_ids(a: set[str], b: set[str]) -> bool:
    """Two sets of national ids with no pair within one edit: a typo is not a second person."""
    if not a or not b or not a.isdisjoint(b):
        return False
    return all(OSA.distance(x, y) > 1 for x in a for y in b)


def _conflict(a: _Cluster, b: _Cluster, direct: tuple[str, str]) -> str | None:
    """A conflict that other members reveal, beyond the linking pair itself.

    The linking pair's own disagreements were already weighed by the match model, which scored
    it above the threshold anyway (FEBRL-style corrupted copies, a mistyped id). The guard is
    against transitivity: a record without a date of birth linked to both a father and his son.

    National ids conflict when some cross pair of id-carrying members other than the linking
    pair exists and the two sides' ids are all more than one edit apart. Birth dates conflict
    when the cross pairs of members with the same full name (the linking pair aside) exist and
    every one of them has clearly different dates (``clearly_different_dob`` is symmetric).
    """
    left, right = direct

    def is_linking(x: str, y: str) -> bool:
        return (x == left and y == right) or (x == right and y == left)

    if a.national_ids and b.national_ids:
        # Of the cross pairs at most one is the linking pair, so another exists unless there is
        # exactly one cross pair and it is the linking one.
        single = len(a.national_ids) == 1 and len(b.national_ids) == 1
        if not (single and is_linking(a.national_ids[0][0], b.national_ids[0][0])):
            ids_a = {nid for _, nid in a.national_ids}
            ids_b = {nid for _, nid in b.national_ids}
            if different_national_ids(ids_a, ids_b):
                return REFUSED_NATIONAL_ID
    if not (a.people and b.people):
        return None
    fewer, more = (a.people, b.people) if len(a.people) <= len(b.people) else (b.people, a.people)
    namesakes = False
    for key, entries in fewer.items():
        others = more.get(key)
        if others is None:
            continue
        for x, dob_x in entries:
            for y, dob_y in others:
                if is_linking(x, y):
                    continue
                if not clearly_different_dob(dob_x, dob_y):
                    return None  # one namesake pair could be one person: no conflict
                namesakes = True
    return REFUSED_DOB if namesakes else None


def _conflicting_pairs(
    a: _Cluster, b: _Cluster, reason: str, nid_of: dict[str, str], person_of
) -> list[tuple[str, str]]:
    """The cross pairs that themselves carry the conflict."""
    if reason == REFUSED_NATIONAL_ID:
        return [
            (x, y)
            for x in a.members
            if x in nid_of
            for y in b.members
            if y in nid_of and OSA.distance(nid_of[x], nid_of[y]) > 1
        ]
    return [
        (x, y)
        for x in a.members
        if x in person_of
        for y in b.members
        if y in person_of
        and person_of[x][0] == person_of[y][0]
        and clearly_different_dob(person_of[x][1], person_of[y][1])
    ]


def _conflict_weighed_by_model(pairs: list[tuple[str, str]], neighbors: dict[str, dict[str, float]]) -> bool:
    """The pairs carrying the conflict are, on average, more likely the same person than not
    (an unscored pair counts 0): one heavily corrupted copy among five must not veto the
    other four, while father and son, whose own pairs score low, stay apart."""
    return bool(pairs) and sum(neighbors[x].get(y, 0.0) for x, y in pairs) / len(pairs) > 0.5


def _name_key(first: object, last: object) -> str | None:
    if not isinstance(first, str) or not isinstance(last, str) or not first or not last:
        return None
    return f"{first.lower()}|{last.lower()}"


def strong_components(
    left: np.ndarray, right: np.ndarray, probability: np.ndarray, n: int, policy: ClusteringPolicy
) -> np.ndarray:
    """Per record position 0..n-1, its connected component over the strong pairs: clustering
    never merges across them, so components can be clustered apart (see ``merge_clusterings``)."""
    strong = probability >= policy.threshold
    return component_labels(n, left[strong], right[strong])


def rows_clustering_reads(
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    n: int,
    policy: ClusteringPolicy,
    component: np.ndarray | None = None,
) -> np.ndarray:
    """Which pairs (record positions 0..n-1) ``cluster_pairs`` can read: the strong pairs, and
    the pairs inside one strong component that goes through the guarded loop (the loop asks
    only for those probabilities). Clustering just these rows gives the same result as
    clustering all of them, so a caller holding pairs as positions can spell out ids for few.
    ``component`` is ``strong_components`` of the same pairs, when the caller has it."""
    strong = probability >= policy.threshold
    if component is None:
        component = strong_components(left, right, probability, n, policy)
    size = np.bincount(component, minlength=1)[component] if n else component
    same = component[left] == component[right]
    if policy.max_cluster_size >= 2:
        same &= size[left] > 2
    return strong | same


def _strongest_first(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs by probability descending, then record ids ascending, stable: the order the
    loop takes them in. Sorted by Arrow, whose string order (UTF-8 bytes) is Python's (code
    points), without factorizing and sorting both id columns first as pandas would."""
    keys = pa.table(
        {
            "probability": pa.array(pairs["probability"].to_numpy(dtype=np.float64)),
            "record_id_l": pa.array(pairs["record_id_l"].to_numpy(dtype=object), pa.string()),
            "record_id_r": pa.array(pairs["record_id_r"].to_numpy(dtype=object), pa.string()),
        }
    )
    order = pc.sort_indices(
        keys,
        sort_keys=[("probability", "descending"), ("record_id_l", "ascending"), ("record_id_r", "ascending")],
    )
    return pairs.iloc[order.to_numpy()]


# What the guards read of a profile: conflicting national ids, names and birth dates.
CLUSTERING_COLUMNS = ["record_id", "national_id", "first_name", "last_name", "dob"]


def cluster_pairs(
    record_ids: Iterable[str],
    pairs: pd.DataFrame,
    profiles: pd.DataFrame,
    policy: ClusteringPolicy = ClusteringPolicy(),
) -> ClusteringResult:
    """pairs: record_id_l, record_id_r, probability; profiles: at least CLUSTERING_COLUMNS."""
    if not pairs.index.is_unique:
        pairs = pairs.reset_index(drop=True)
    columns = ["record_id_l", "record_id_r", "probability"]
    is_strong = (pairs["probability"] >= policy.threshold).to_numpy()
    strong = _strongest_first(pairs.loc[is_strong, columns])
    order = strong.index
    # Only records a strong pair touches can ever merge; every other record stays a singleton
    # and is labeled by itself at the end.
    linked = pd.unique(np.concatenate([strong["record_id_l"].to_numpy(), strong["record_id_r"].to_numpy()]))
    record_ids = list(record_ids)
    unknown = pd.Index(linked).difference(pd.Index(record_ids))
    if len(unknown):
        raise ValueError(f"pairs name records that are not among the record ids, e.g. {list(unknown[:3])}")
    # A merge only ever joins records of one connected component of the strong pairs, so each
    # component can be clustered on its own. A component of two records is a single merge that
    # no guard can refuse (each side is one record: no other member to conflict, no bridge),
    # so those merge here at once and only larger components go through the loop below, which
    # keeps clusters, identifiers and the probabilities it needs for their records alone.
    trivial_kept: list[Hashable] = []
    trivial_labels: dict[str, str] = {}
    index = pd.Index(linked)
    left_code = index.get_indexer(strong["record_id_l"])
    component = component_labels(len(index), left_code, index.get_indexer(strong["record_id_r"]))
    size = np.bincount(component)[component]  # per linked record, its component's size
    if policy.max_cluster_size >= 2 and len(strong):
        pair_component = component[left_code]
        two = size[left_code] == 2
        first = two & ~pd.Series(pair_component).duplicated().to_numpy()
        trivial_kept = strong.index[first].tolist()
        for left, right in strong.loc[first, ["record_id_l", "record_id_r"]].itertuples(
            index=False, name=None
        ):
            trivial_labels[left] = trivial_labels[right] = min(left, right)
        strong = strong[~two]
        guarded = size > 2
    else:
        guarded = np.ones(len(index), dtype=bool)
    linked = index[guarded].to_numpy()
    clusters: dict[str, _Cluster] = {rid: _Cluster([rid]) for rid in linked}
    owner: dict[str, str] = {rid: rid for rid in linked}
    nid_of: dict[str, str] = {}
    person_of: dict[str, tuple[str, str]] = {}  # record -> (full-name key, dob)
    attributes = profiles.loc[profiles["record_id"].isin(linked), CLUSTERING_COLUMNS]
    for rid, nid, first_name, last, dob in attributes.itertuples(index=False, name=None):
        if isinstance(nid, str) and nid:
            nid_of[rid] = nid
            clusters[rid].national_ids = [(rid, nid)]
        key = _name_key(first_name, last)
        if key and isinstance(dob, str) and dob:
            person_of[rid] = (key, dob)
            clusters[rid].people = {key: [(rid, dob)]}

    # The loop asks for the probability of a pair only within one component (the members of
    # two clusters it may merge), so the pairs between components are never kept.
    lc, rc = index.get_indexer(pairs["record_id_l"]), index.get_indexer(pairs["record_id_r"])
    known = (lc >= 0) & (rc >= 0)
    among = known.copy()
    among[known] = guarded[lc[known]] & (component[lc[known]] == component[rc[known]])
    neighbors: dict[str, dict[str, float]] = defaultdict(dict)
    for left, right, prob in pairs.loc[among, columns].itertuples(index=False, name=None):
        neighbors[left][right] = prob
        neighbors[right][left] = prob

    kept: list[Hashable] = []
    refused: list[tuple[str, str, float, str]] = []
    for row, left, right, prob in strong.itertuples(index=True, name=None):
        la, lb = owner[left], owner[right]
        if la == lb:
            continue
        a, b = clusters[la], clusters[lb]
        reason = _conflict(a, b, (left, right))
        if reason is not None and _conflict_weighed_by_model(
            _conflicting_pairs(a, b, reason, nid_of, person_of), neighbors
        ):
            # The pairs of records that carry the conflict were themselves scored as matches:
            # the model has weighed those disagreements directly (a corrupted copy, a re-keyed
            # id), so it is not a second person. Father and son do not pass: their own pairs
            # score low, and an unscored pair counts against.
            reason = None
        if reason is None and len(a.members) + len(b.members) > policy.max_cluster_size:
            reason = REFUSED_SIZE
        if reason is None and len(a.members) > 1 and len(b.members) > 1:
            in_b = set(b.members)
            total = sum(p for m in a.members for n, p in neighbors[m].items() if n in in_b)
            if total / (len(a.members) * len(b.members)) < policy.min_avg_linkage:
                reason = REFUSED_WEAK_BRIDGE
        if reason is not None:
            refused.append((left, right, prob, reason))
            continue
        keep, drop = (la, lb) if len(a.members) >= len(b.members) else (lb, la)
        winner, loser = clusters[keep], clusters.pop(drop)
        winner.absorb(loser)
        for member in loser.members:
            owner[member] = keep
        kept.append(row)

    labels: dict[str, str] = {rid: rid for rid in record_ids}
    labels.update(trivial_labels)
    for cluster in clusters.values():
        label = min(cluster.members)
        for member in cluster.members:
            labels[member] = label
    # Kept links in the order they were taken (strongest first), wherever they were decided.
    taken = pd.Index(trivial_kept + kept)
    taken = taken[np.argsort(order.get_indexer(taken), kind="stable")]
    return ClusteringResult(
        labels=labels,
        kept=pairs.loc[taken, columns],
        refused=pd.DataFrame(refused, columns=["record_id_l", "record_id_r", "probability", "reason"]),
    )


def merge_clusterings(record_ids: Iterable[str], parts: Iterable[ClusteringResult]) -> ClusteringResult:
    """One result from the results of ``cluster_pairs`` over disjoint sets of strong components.

    The guarded loop never looks beyond the component of the pair it decides, so clustering the
    components in separate sets (in separate processes) and merging gives what one call over all
    pairs gives: the labels of every record, and the kept and refused links in the order one
    call takes them (strongest first, ties by record ids; a pair appears once in the input).
    """
    ids = list(record_ids)
    labels: dict[str, str] = dict(zip(ids, ids, strict=True))
    parts = list(parts)
    for part in parts:
        labels.update(part.labels)
    kept = _merge_taken_order([p.kept for p in parts])
    refused = _merge_taken_order([p.refused for p in parts])
    return ClusteringResult(labels=labels, kept=kept, refused=refused.reset_index(drop=True))


def _merge_taken_order(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames each already in the loop's order (probability descending, then the record ids),
    merged into that order: a merge of sorted runs, cheaper than sorting the concatenation by
    three keys."""
    frames = [f for f in frames if len(f)] or frames[:1]
    if len(frames) <= 1:
        return frames[0] if frames else pd.DataFrame(columns=["record_id_l", "record_id_r", "probability"])
    runs = [
        zip(
            (-f["probability"].to_numpy(dtype=np.float64)).tolist(),
            f["record_id_l"].tolist(),
            f["record_id_r"].tolist(),
            range(offset, offset + len(f)),
            strict=True,
        )
        for f, offset in zip(frames, np.cumsum([0, *(len(f) for f in frames[:-1])]).tolist(), strict=True)
    ]
    # A pair lies in one part only, so no two keys tie and the merge is the sort's order.
    taken = [row for *_key, row in heapq.merge(*runs)]
    return pd.concat(frames).iloc[taken]


def link_path(kept: pd.DataFrame, a: str, b: str) -> list[tuple[str, str]] | None:
    """The chain of kept links joining two records, or None if not joined."""
    return path_between(kept[["record_id_l", "record_id_r"]].itertuples(index=False), a, b)
