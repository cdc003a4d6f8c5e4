"""Clustering scored pairs into identities without chaining people together.

Connected components over every pair above the threshold chain households and namesakes: one
good-looking link between a father's and a son's records merges two people, and a run of such
links merges a street. Here pairs are taken strongest first, and each merge of two clusters must
pass these tests:

* **forced decisions**: a pair a steward forced apart never ends in one identity; a pair forced
  together merges before anything else and skips the guards below;
* **no person-level conflict** (:mod:`idr_pipeline.scoring.person`): no record of one side may
  conflict with a record of the other on national id, generational suffix, date of birth or
  given name, unless the model matched those conflicting pairs directly (their average
  probability, an unscored pair counting 0, is above one half: a corrupted copy, a re-keyed id)
  on person-level evidence, or where data entry explains the conflict (a re-keyed national
  id, a given name replaced under one family name and exact date of birth); any other
  conflicting pair counts 0;
* **a size cap**: a merge that would exceed ``max_cluster_size`` is refused;
* **person-level evidence between groups**: when both sides already hold several records, some
  pair across them must carry person-level evidence (given name with date of birth, or an
  identifier that is personal by the data: see ``idr_pipeline.scoring.score.person_evidence``).
  Household evidence (address, landline, home IP, family e-mail, shared device) never joins two
  groups;
* **no weak bridges**: between two groups, the average probability over all their record pairs
  (missing pairs count 0) must clear ``min_avg_linkage``, so one strong-looking link cannot glue
  two dense groups together.

Then a record whose strong links fit two people is settled: it stays with the person whose
person-level evidence beats the runner-up's by ``ambiguity_margin`` bits, and otherwise leaves
both as its own identity, marked **ambiguous**, with a possible-match link to each (Senzing's
"ambiguous entity"). A thin record ("J Smith, 12 Main St") therefore never decides between
John and Jane.

Every refusal is reported with its reason, and every link that did merge is returned, so the
store can answer "why are these records one identity" with the path and its weights. The result
is a pure function of (pairs, profiles): the input order does not matter, and a record with no
pairs changes no other identity.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from idr_pipeline.graph.paths import path_between
from idr_pipeline.graph.sparse_components import component_labels
from idr_pipeline.scoring.person import (
    CONFLICTING_NATIONAL_ID,
    PersonKey,
    could_be_one_corrupted_person,
    different_national_ids,
    person_conflict,
    person_key,
)

REFUSED_WEAK_BRIDGE = "weak_bridge"
REFUSED_HOUSEHOLD_ONLY = "household_evidence_only"
REFUSED_SIZE = "cluster_size_cap"
REFUSED_FORCED_SPLIT = "forced_split"
AMBIGUOUS = "ambiguous"
#: ``forced`` values of a pair: a steward's decision, applied before the guards.
FORCED_LINK = "link"
FORCED_SPLIT = "split"

PAIR_COLUMNS = ["record_id_l", "record_id_r", "probability"]
AMBIGUOUS_COLUMNS = ["record_id", "candidate_record_id", "probability", "person_weight"]
#: What the guards read of a profile: conflicting national ids, names, suffixes and birth dates.
CLUSTERING_COLUMNS = ["record_id", "national_id", "first_name", "last_name", "dob", "email"]


@dataclass(frozen=True)
class ClusteringPolicy:
    threshold: float = 0.9
    min_avg_linkage: float = 0.5
    max_cluster_size: int = 50
    #: Bits (log2 of the odds) of person-level evidence by which a record's best person must
    #: beat the runner-up for the record to join it; closer than this, the record is ambiguous.
    ambiguity_margin: float = 4.0


@dataclass(slots=True)
class _Cluster:
    members: list[str]
    #: (record, person key) of the members that carry a person-level attribute
    keyed: list[tuple[str, PersonKey]] = field(default_factory=list)

    def absorb(self, other: _Cluster) -> None:
        self.members.extend(other.members)
        self.keyed.extend(other.keyed)


@dataclass
class ClusteringResult:
    # record_id -> cluster label (smallest record id in the cluster)
    labels: dict[str, str]
    # the pairs that merged two clusters: record_id_l, record_id_r, probability; indexed by
    # their labels in the input pairs, so a caller can bring along any other column it holds
    kept: pd.DataFrame
    # pairs above the threshold (or forced) that were refused, with the reason
    refused: pd.DataFrame
    # records left on their own because their evidence fits several people: one row per
    # candidate person, naming the candidate's record the ambiguous one links to best
    ambiguous: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=AMBIGUOUS_COLUMNS))

    def refused_counts(self) -> dict[str, int]:
        return self.refused["reason"].value_counts().to_dict() if len(self.refused) else {}


def log2_odds(probability: np.ndarray | float) -> np.ndarray:
    """The match weight of a probability, in bits, clipped to a finite range."""
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-12, 1 - 1e-12)
    return np.log2(p / (1 - p))


def with_pair_defaults(pairs: pd.DataFrame) -> pd.DataFrame:
    """The optional pair columns filled in where a caller has none: ``person_weight`` is the
    whole match weight, ``person_evidence`` True (no information, so no refusal) and ``forced``
    None."""
    out = pairs
    if "person_weight" not in out.columns:
        out = out.assign(person_weight=log2_odds(out["probability"].to_numpy()))
    if "person_evidence" not in out.columns:
        out = out.assign(person_evidence=True)
    if "forced" not in out.columns:
        out = out.assign(forced=None)
    return out


def strong_components(
    left: np.ndarray, right: np.ndarray, probability: np.ndarray, n: int, policy: ClusteringPolicy
) -> np.ndarray:
    """Per record position 0..n-1, its connected component over the strong pairs: clustering
    never merges across them, so components can be clustered apart (see ``merge_clusterings``).
    A forced link must come with probability 1."""
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
    """Forced links first, then by probability descending, then by the pair's smaller and larger
    record id, stable: the order the loop takes the pairs in, whichever way round a pair is
    written. Sorted by Arrow, whose string order (UTF-8 bytes) is Python's (code points)."""
    left = pa.array(pairs["record_id_l"].to_numpy(dtype=object), pa.string())
    right = pa.array(pairs["record_id_r"].to_numpy(dtype=object), pa.string())
    keys = pa.table(
        {
            "forced": pa.array((pairs["forced"] == FORCED_LINK).to_numpy(dtype=bool)),
            "probability": pa.array(pairs["probability"].to_numpy(dtype=np.float64)),
            "low": pc.min_element_wise(left, right),
            "high": pc.max_element_wise(left, right),
        }
    )
    order = pc.sort_indices(
        keys,
        sort_keys=[
            ("forced", "descending"),
            ("probability", "descending"),
            ("low", "ascending"),
            ("high", "ascending"),
        ],
    )
    return pairs.iloc[order.to_numpy()]


class _Graph:
    """The guarded components' clusters, and what the guards and the settling pass look up."""

    def __init__(self, linked: Iterable[str], keys: dict[str, PersonKey]) -> None:
        self.clusters: dict[str, _Cluster] = {}
        self.owner: dict[str, str] = {}
        for rid in linked:
            key = keys.get(rid)
            self.clusters[rid] = _Cluster([rid], [(rid, key)] if key is not None else [])
            self.owner[rid] = rid
        self.probability: dict[str, dict[str, float]] = defaultdict(dict)
        self.evidence: dict[str, set[str]] = defaultdict(set)
        self.splits: dict[str, set[str]] = defaultdict(set)
        #: the kept links (record pair -> row of the input pairs), and each record's kept partners
        self.kept: dict[frozenset[str], Hashable] = {}
        self.kept_partners: dict[str, set[str]] = defaultdict(set)
        #: each record's strong pairs within its component: (other record, probability, row)
        self.strong: dict[str, list[tuple[str, float, Hashable]]] = defaultdict(list)

    def keep(self, left: str, right: str, row: Hashable) -> None:
        self.kept[frozenset((left, right))] = row
        self.kept_partners[left].add(right)
        self.kept_partners[right].add(left)

    def conflict(self, a: _Cluster, b: _Cluster) -> str | None:
        """The person-level conflict between two clusters that the model did not weigh itself."""
        if not a.keyed or not b.keyed:
            return None
        conflicting = [
            (x, kx, y, ky, reason)
            for x, kx in a.keyed
            for y, ky in b.keyed
            if (reason := person_conflict(kx, ky)) is not None
        ]
        if not conflicting:
            return None
        if all(reason == CONFLICTING_NATIONAL_ID for *_, reason in conflicting) and _share_national_id(a, b):
            # One national id on both sides: the other, different one is a mistyped copy.
            return None
        weighed = sum(self._vouched(*conflict) for conflict in conflicting) / len(conflicting)
        return None if weighed > 0.5 else conflicting[0][4]

    def _vouched(self, x: str, kx: PersonKey, y: str, ky: PersonKey, reason: str) -> float:
        """How far the model's own score of a conflicting pair overrules the conflict: its
        probability when the pair carries person-level evidence or data entry explains the
        conflict (``could_be_one_corrupted_person``); 0 otherwise, since a score that stands on a
        shared address, surname and landline says two household members are alike, not that
        they are one person."""
        vouched = y in self.evidence.get(x, ()) or could_be_one_corrupted_person(kx, ky, reason)
        return self.probability[x].get(y, 0.0) if vouched else 0.0

    def forced_apart(self, a: _Cluster, b: _Cluster) -> bool:
        small, large = (a, b) if len(a.members) <= len(b.members) else (b, a)
        large_members = set(large.members)
        return any(self.splits[x] & large_members for x in small.members if self.splits.get(x))

    def person_evidence_between(self, a: _Cluster, b: _Cluster) -> bool:
        small, large = (a, b) if len(a.members) <= len(b.members) else (b, a)
        label = self.owner[large.members[0]]
        return any(self.owner[y] == label for x in small.members for y in self.evidence.get(x, ()))

    def average_linkage(self, a: _Cluster, b: _Cluster) -> float:
        in_b = set(b.members)
        total = sum(p for m in a.members for n, p in self.probability[m].items() if n in in_b)
        return total / (len(a.members) * len(b.members))

    def merge(self, la: str, lb: str) -> str:
        a, b = self.clusters[la], self.clusters[lb]
        # the larger cluster keeps its key; on a tie, the smaller key (whichever way round)
        keep, drop = (la, lb) if (-len(a.members), la) <= (-len(b.members), lb) else (lb, la)
        loser = self.clusters.pop(drop)
        self.clusters[keep].absorb(loser)
        for member in loser.members:
            self.owner[member] = keep
        return keep

    def detach(self, record: str) -> None:
        """Take ``record`` out of its cluster as a singleton. The rest stays together where its
        kept links, or its other strong pairs (strongest first, each becoming a kept link),
        still join it, and splits where the record was the only link between two parts."""
        cluster = self.clusters.pop(self.owner[record])
        keys = dict(cluster.keyed)
        for partner in self.kept_partners.pop(record, set()):
            self.kept_partners[partner].discard(record)
            del self.kept[frozenset((record, partner))]
        self._add(record, keys)
        rest = [m for m in cluster.members if m != record]
        part = {m: m for m in rest}

        def find(member: str) -> str:
            while part[member] != member:
                part[member] = part[part[member]]
                member = part[member]
            return member

        for member in rest:
            for partner in self.kept_partners[member]:
                part[find(partner)] = find(member)
        bridges = sorted(
            {
                (-prob, min(m, o), max(m, o), row)
                for m in rest
                for o, prob, row in self.strong.get(m, ())
                if o in part
            }
        )
        for _, left, right, row in bridges:
            a, b = find(left), find(right)
            if a != b:
                part[a] = b
                self.keep(left, right, row)
        parts: dict[str, list[str]] = defaultdict(list)
        for member in rest:
            parts[find(member)].append(member)
        for members in parts.values():
            head = min(members)
            self.clusters[head] = _Cluster(members, [(m, keys[m]) for m in members if m in keys])
            for member in members:
                self.owner[member] = head

    def without(self, label: str, record: str) -> _Cluster:
        """The cluster ``label`` as it would be without ``record``, for the conflict test."""
        cluster = self.clusters[label]
        return _Cluster(
            [m for m in cluster.members if m != record], [(m, k) for m, k in cluster.keyed if m != record]
        )

    def _add(self, record: str, keys: dict[str, PersonKey]) -> None:
        key = keys.get(record)
        self.clusters[record] = _Cluster([record], [(record, key)] if key is not None else [])
        self.owner[record] = record


def _unvouched_conflicts(
    strong: pd.DataFrame,
    pairs: pd.DataFrame,
    two: np.ndarray,
    pair_component: np.ndarray,
    profiles: pd.DataFrame,
) -> np.ndarray:
    """The two-record components (labels) whose records conflict person-level while no pair
    between them carries person-level evidence or is a forced link: the guard must see them."""
    vouched_rows = (
        pairs.loc[strong.index, "person_evidence"].to_numpy(dtype=bool)
        | (strong["forced"] == FORCED_LINK).to_numpy()
    )
    vouched = np.unique(pair_component[two & vouched_rows])
    candidates = two & ~np.isin(pair_component, vouched)
    if not candidates.any():
        return np.zeros(0, dtype=pair_component.dtype)
    rows = strong.loc[candidates, ["record_id_l", "record_id_r"]]
    records = pd.unique(rows.to_numpy().ravel())
    keys = _person_keys(profiles, records)
    conflicting = [
        component
        for component, (left, right) in zip(
            pair_component[candidates], rows.itertuples(index=False, name=None), strict=True
        )
        if left in keys
        and right in keys
        and (reason := person_conflict(keys[left], keys[right])) is not None
        and not could_be_one_corrupted_person(keys[left], keys[right], reason)
    ]
    return np.unique(np.asarray(conflicting, dtype=pair_component.dtype))


def _share_national_id(a: _Cluster, b: _Cluster) -> bool:
    """Some record of each side carries the same national id (up to a typo)."""
    ids_a = {k.national_id for _, k in a.keyed if k.national_id}
    ids_b = {k.national_id for _, k in b.keyed if k.national_id}
    return any(not different_national_ids(x, y) for x in ids_a for y in ids_b)


def _person_keys(profiles: pd.DataFrame, records: np.ndarray) -> dict[str, PersonKey]:
    # A frame without e-mails (no source carries one) names records by their given names only.
    attributes = profiles.loc[profiles["record_id"].isin(records)].reindex(columns=CLUSTERING_COLUMNS)
    keys = {}
    for rid, nid, first, last, dob, email in attributes.itertuples(index=False, name=None):
        key = person_key(first, last, dob, nid, email)
        if key.carries_any:
            keys[rid] = key
    return keys


def cluster_pairs(
    record_ids: Iterable[str],
    pairs: pd.DataFrame,
    profiles: pd.DataFrame,
    policy: ClusteringPolicy = ClusteringPolicy(),
) -> ClusteringResult:
    """pairs: record_id_l, record_id_r, probability and, optionally, person_weight (bits of
    person-level evidence), person_evidence (bool) and forced (``link``, ``split`` or None; a
    forced link carries probability 1); profiles: at least CLUSTERING_COLUMNS."""
    if not pairs.index.is_unique:
        pairs = pairs.reset_index(drop=True)
    pairs = with_pair_defaults(pairs)
    record_ids = list(record_ids)
    split_rows = (pairs["forced"] == FORCED_SPLIT).to_numpy()
    usable = pairs[~split_rows]
    is_strong = (usable["probability"] >= policy.threshold).to_numpy()
    strong = _strongest_first(usable.loc[is_strong, [*PAIR_COLUMNS, "person_weight", "forced"]])
    order = strong.index
    linked = pd.unique(np.concatenate([strong["record_id_l"].to_numpy(), strong["record_id_r"].to_numpy()]))
    unknown = pd.Index(linked).difference(pd.Index(record_ids))
    if len(unknown):
        raise ValueError(f"pairs name records that are not among the record ids, e.g. {list(unknown[:3])}")
    # A merge only ever joins records of one connected component of the strong pairs, so each
    # component can be clustered on its own. A component of two records is a single merge that
    # only the conflict guard can refuse (each side is one record: no other member, no bridge),
    # and only when the two conflict and no pair between them carries person-level evidence, so
    # the others merge here at once and only larger components and those go through the loop
    # below, which keeps clusters and the probabilities of their records.
    trivial_kept: list[Hashable] = []
    trivial_labels: dict[str, str] = {}
    index = pd.Index(linked)
    left_code = index.get_indexer(strong["record_id_l"])
    component = component_labels(len(index), left_code, index.get_indexer(strong["record_id_r"]))
    size = np.bincount(component)[component]  # per linked record, its component's size
    split_ids = pairs.loc[split_rows, ["record_id_l", "record_id_r"]]
    split_records = set(split_ids.to_numpy().ravel().tolist())
    if policy.max_cluster_size >= 2 and len(strong):
        pair_component = component[left_code]
        two = (size[left_code] == 2) & ~(
            strong["record_id_l"].isin(split_records) & strong["record_id_r"].isin(split_records)
        ).to_numpy()
        two &= ~np.isin(pair_component, _unvouched_conflicts(strong, pairs, two, pair_component, profiles))
        first = two & ~pd.Series(pair_component).duplicated().to_numpy()
        trivial_kept = strong.index[first].tolist()
        for left, right in strong.loc[first, ["record_id_l", "record_id_r"]].itertuples(
            index=False, name=None
        ):
            trivial_labels[left] = trivial_labels[right] = min(left, right)
        trivial_records = set(trivial_labels)
        strong = strong[~(strong["record_id_l"].isin(trivial_records).to_numpy())]
        guarded = ~index.isin(trivial_records)
    else:
        guarded = np.ones(len(index), dtype=bool)
    linked = index[guarded].to_numpy()
    graph = _Graph(linked, _person_keys(profiles, linked))

    # The loop asks for the probability of a pair only within one component (the members of
    # two clusters it may merge), so the pairs between components are never kept.
    lc, rc = index.get_indexer(pairs["record_id_l"]), index.get_indexer(pairs["record_id_r"])
    known = (lc >= 0) & (rc >= 0)
    among = known.copy()
    among[known] = guarded[lc[known]] & (component[lc[known]] == component[rc[known]])
    columns = ["record_id_l", "record_id_r", "probability", "person_evidence", "forced"]
    for left, right, prob, evidence, forced in pairs.loc[among, columns].itertuples(index=False, name=None):
        if forced == FORCED_SPLIT:
            graph.splits[left].add(right)
            graph.splits[right].add(left)
            continue
        graph.probability[left][right] = prob
        graph.probability[right][left] = prob
        if evidence or forced == FORCED_LINK:
            graph.evidence[left].add(right)
            graph.evidence[right].add(left)

    for row, left, right, prob in strong[PAIR_COLUMNS].itertuples(index=True, name=None):
        graph.strong[left].append((right, prob, row))
        graph.strong[right].append((left, prob, row))
    refused: list[tuple[str, str, float, str]] = []
    for row, left, right, prob, _weight, forced in strong.itertuples(index=True, name=None):
        la, lb = graph.owner[left], graph.owner[right]
        if la == lb:
            continue
        a, b = graph.clusters[la], graph.clusters[lb]
        reason = None
        if graph.forced_apart(a, b):
            reason = REFUSED_FORCED_SPLIT
        elif forced != FORCED_LINK:
            reason = graph.conflict(a, b)
            if reason is None and len(a.members) + len(b.members) > policy.max_cluster_size:
                reason = REFUSED_SIZE
            if reason is None and len(a.members) > 1 and len(b.members) > 1:
                if not graph.person_evidence_between(a, b):
                    reason = REFUSED_HOUSEHOLD_ONLY
                elif graph.average_linkage(a, b) < policy.min_avg_linkage:
                    reason = REFUSED_WEAK_BRIDGE
        if reason is not None:
            refused.append((left, right, prob, reason))
            continue
        graph.merge(la, lb)
        graph.keep(left, right, row)

    ambiguous = _settle(graph, strong, policy)

    labels: dict[str, str] = {rid: rid for rid in record_ids}
    labels.update(trivial_labels)
    for cluster in graph.clusters.values():
        label = min(cluster.members)
        for member in cluster.members:
            labels[member] = label
    # Kept links in the order they were taken (strongest first), wherever they were decided.
    taken = pd.Index(trivial_kept + list(graph.kept.values()))
    taken = taken[np.argsort(order.get_indexer(taken), kind="stable")]
    return ClusteringResult(
        labels=labels,
        kept=pairs.loc[taken, PAIR_COLUMNS],
        refused=pd.DataFrame(refused, columns=["record_id_l", "record_id_r", "probability", "reason"]),
        ambiguous=pd.DataFrame(ambiguous, columns=AMBIGUOUS_COLUMNS),
    )


def _settle(
    graph: _Graph, strong: pd.DataFrame, policy: ClusteringPolicy
) -> list[tuple[str, str, float, float]]:
    """Each record whose strong links reach more than one cluster stays with the clearly best
    person (by the person-level weight of its best link to each), moves to it, or is detached
    as ambiguous. Records are settled in id order; a forced link is never undone."""
    links: dict[str, list[tuple[str, float, float, Hashable]]] = defaultdict(list)
    forced: set[str] = set()
    for row, left, right, prob, weight, how in strong.itertuples(index=True, name=None):
        links[left].append((right, prob, weight, row))
        links[right].append((left, prob, weight, row))
        if how == FORCED_LINK:
            forced.update((left, right))
    ambiguous: list[tuple[str, str, float, float]] = []
    for record in sorted(links):
        if record in forced:
            continue
        own = graph.owner[record]
        best: dict[str, tuple[float, str, float, Hashable]] = {}  # label -> (weight, partner, p, row)
        for other, prob, weight, row in links[record]:
            label = graph.owner[other]
            # the strongest link to each cluster: by weight, then probability, then the smaller id
            if label not in best or (-weight, -prob, other) < (
                -best[label][0],
                -best[label][2],
                best[label][1],
            ):
                best[label] = (weight, other, prob, row)
        if len(best) < 2:
            continue
        me = graph.clusters[own]
        alone = _Cluster([record], [(record, k) for r, k in me.keyed if r == record])
        candidates = {
            label: entry
            for label, entry in best.items()
            if label == own
            or (
                graph.conflict(alone, graph.clusters[label]) is None
                and not graph.forced_apart(alone, graph.clusters[label])
            )
        }
        if len(candidates) < 2:
            continue
        ranked = sorted(candidates.items(), key=lambda item: (-item[1][0], -item[1][2], item[1][1]))
        top_label, top = ranked[0]
        # Only people the data tells apart compete for the record: a cluster kept apart for
        # another reason (a weak bridge, the size cap) may be the same person.
        rivals = [
            entry
            for label, entry in ranked[1:]
            if graph.conflict(graph.without(top_label, record), graph.without(label, record)) is not None
            or graph.forced_apart(graph.without(top_label, record), graph.without(label, record))
        ]
        if not rivals:
            continue
        runner_up = rivals[0]
        if top[0] - runner_up[0] >= policy.ambiguity_margin:
            if top_label != own and len(graph.clusters[top_label].members) < policy.max_cluster_size:
                graph.detach(record)
                graph.merge(graph.owner[record], top_label)
                graph.keep(record, top[1], top[3])
            continue
        graph.detach(record)
        for weight, partner, prob, _row in [top, *rivals]:
            ambiguous.append((record, partner, prob, weight))
    return ambiguous


def merge_clusterings(record_ids: Iterable[str], parts: Iterable[ClusteringResult]) -> ClusteringResult:
    """One result from the results of ``cluster_pairs`` over disjoint sets of strong components.

    The clustering never looks beyond the component of the pair it decides, so clustering the
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
    ambiguous = [p.ambiguous for p in parts if len(p.ambiguous)]
    return ClusteringResult(
        labels=labels,
        kept=kept,
        refused=refused.reset_index(drop=True),
        ambiguous=(
            pd.concat(ambiguous)
            .sort_values(["record_id", "candidate_record_id"], kind="stable")
            .reset_index(drop=True)
            if ambiguous
            else pd.DataFrame(columns=AMBIGUOUS_COLUMNS)
        ),
    )


def _merge_taken_order(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames each already in the loop's order (probability descending, then the pair's smaller
    and larger record id),
    merged into that order: a merge of sorted runs, cheaper than sorting the concatenation by
    three keys."""
    frames = [f for f in frames if len(f)] or frames[:1]
    if len(frames) <= 1:
        return frames[0] if frames else pd.DataFrame(columns=PAIR_COLUMNS)
    runs = [
        zip(
            (-f["probability"].to_numpy(dtype=np.float64)).tolist(),
            f[["record_id_l", "record_id_r"]].min(axis=1).tolist(),
            f[["record_id_l", "record_id_r"]].max(axis=1).tolist(),
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
