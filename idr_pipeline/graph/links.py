"""Scored pairs and deterministic links as one set of row positions, for the clustering."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from idr_pipeline.graph.clustering import FORCED_LINK, log2_odds

# Identifiers one person owns. A phone is left to the model: landlines are shared by households
# in ways the per-identifier limit cannot see when a record carries no first name.
PERSONAL_IDENTIFIERS = ("email_key", "national_id", "device_id", "source_customer_key")


#: The person-level weight (bits) of a link made by a shared personal identifier or forced by a
#: steward: stronger than any scored evidence, so such a link wins when a record is settled.
DETERMINISTIC_LINK_WEIGHT = 30.0


@dataclass
class LinkedPairs:
    """The scored pairs plus the deterministic links and stewards' decisions, as row positions
    into the profiles.

    Rows 0..scored-1 are the scored pairs in their order; after them come the deterministic
    links nobody scored, then the forced decisions. Positions, not ids: looking up tens of
    millions of id strings and holding them as Python objects would cost more than the
    clustering, which reads only a small share of the rows.
    """

    left: np.ndarray
    right: np.ndarray
    probability: np.ndarray
    id_type: np.ndarray  # object: comma-joined identifier types of a deterministic link, or None
    scored: int  # how many of the rows are scored pairs
    person_weight: np.ndarray  # float: bits of person-level evidence
    person_evidence: np.ndarray  # bool: the pair may join two groups of records
    forced: np.ndarray  # object: FORCED_LINK, FORCED_SPLIT or None

    def frame(self, rows: np.ndarray, record_ids: np.ndarray) -> pd.DataFrame:
        """The chosen rows as the clustering reads them, labeled by row number; ``scored_row``
        is missing for an added link."""
        return pd.DataFrame(
            {
                "record_id_l": record_ids[self.left[rows]],
                "record_id_r": record_ids[self.right[rows]],
                "probability": self.probability[rows],
                "person_weight": self.person_weight[rows],
                "person_evidence": self.person_evidence[rows],
                "forced": self.forced[rows],
                "scored_row": np.where(rows < self.scored, rows, np.nan),
                "id_type": self.id_type[rows],
            },
            index=rows,
        )


def deterministic_link_positions(
    src: np.ndarray, dst: np.ndarray, id_type: np.ndarray, profiles: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared strong identifiers (identity_edges: not blocklisted, not shared by several people)
    are links in their own right, whatever the model's score on the other attributes; the
    clustering constraints still apply to them. A shared phone counts only between two records
    that both name the same first name: a landline is a household's, and a record without a
    first name cannot show whose it is.

    ``src`` and ``dst`` are the edges' row positions in ``profiles``. Returns one row per
    linked pair, ordered by (lower position, higher position): the positions of record_id_l and
    record_id_r (record_id_l < record_id_r), and the pair's identifier types, sorted and
    comma-joined. All in positions and integer codes: the same done on id strings (a join on
    the first names, drop_duplicates, a group-by on pairs) would build a Python object per id.
    """
    n = np.int64(max(len(profiles), 1))
    id_type = np.asarray(id_type, dtype=object)
    personal = np.isin(id_type, PERSONAL_IDENTIFIERS)
    phone = id_type == "phone"
    if phone.any():
        # The first two letters of the first name, lower-cased, as a code per distinct name;
        # -1 where there is no name.
        name_of_row, names = pd.factorize(profiles["first_name"])
        heads = np.array([n.lower()[:2] if isinstance(n, str) else "" for n in names], dtype=object)
        head_of_name = np.where(heads == "", -1, pd.factorize(heads)[0]) if len(heads) else heads
        head = np.append(head_of_name, -1).astype(np.int64)[name_of_row]
        personal |= phone & (head[src] >= 0) & (head[src] == head[dst])
    src, dst, types = np.asarray(src)[personal], np.asarray(dst)[personal], id_type[personal]
    if not len(src):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, dtype=object)
    pairs, of_pair = np.unique(
        np.minimum(src, dst).astype(np.int64) * n + np.maximum(src, dst), return_inverse=True
    )
    type_names, type_code = np.unique(types, return_inverse=True)
    sets = np.zeros(len(pairs), dtype=np.int64)
    np.bitwise_or.at(sets, of_pair.reshape(-1), np.left_shift(1, type_code.reshape(-1).astype(np.int64)))
    distinct, which = np.unique(sets, return_inverse=True)
    spelled = np.array(
        [",".join(t for i, t in enumerate(type_names) if int(b) >> i & 1) for b in distinct], dtype=object
    )
    lo, hi = pairs // n, pairs % n
    record_ids = profiles["record_id"].to_numpy(dtype=object)
    swap = record_ids[lo] > record_ids[hi]
    return np.where(swap, hi, lo), np.where(swap, lo, hi), spelled[which.reshape(-1)]


def link_positions(
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    profiles: pd.DataFrame,
    person_weight: np.ndarray | None = None,
    person_evidence: np.ndarray | None = None,
    decisions: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> LinkedPairs:
    """The scored pairs (row positions into ``profiles``) with the deterministic links and the
    stewards' decisions joined in.

    A scored pair that is also a link gets probability 1, its identifier types and person-level
    evidence; a link nobody scored is added after the scored rows. ``edges`` is (src, dst,
    id_type) of identity_edges, the records as row positions. ``decisions`` is (left, right,
    kind) of forced links and splits: each becomes a row of its own after those, a forced link
    with probability 1, a forced split with probability 0. Without ``person_weight`` the pairs'
    whole match weight stands in, without ``person_evidence`` every pair counts as evidence."""
    n = np.int64(max(len(profiles), 1))
    dl, dr, det_type = deterministic_link_positions(*edges, profiles)
    det_code = np.minimum(dl, dr) * n + np.maximum(dl, dr)  # sorted: the links come in this order
    probability = np.asarray(probability, dtype=np.float64).copy()
    weight = (
        log2_odds(probability)
        if person_weight is None
        else np.asarray(person_weight, dtype=np.float64).copy()
    )
    evidence = (
        np.ones(len(left), dtype=bool)
        if person_evidence is None
        else np.asarray(person_evidence, bool).copy()
    )
    id_type = np.full(len(left), None, dtype=object)
    found = np.zeros(len(det_code), dtype=bool)
    if len(det_code) and len(left):
        # Only a pair of two linked records can be a link: look those few up, not every pair.
        in_det = np.zeros(int(n), dtype=bool)
        in_det[dl] = in_det[dr] = True
        maybe = np.flatnonzero(in_det[left] & in_det[right])
        lo, hi = left[maybe], right[maybe]
        code = np.minimum(lo, hi).astype(np.int64) * n + np.maximum(lo, hi)
        at = np.minimum(np.searchsorted(det_code, code), len(det_code) - 1)
        is_link = det_code[at] == code
        hit, at = maybe[is_link], at[is_link]
        id_type[hit] = det_type[at]
        probability[hit] = 1.0
        weight[hit] = np.maximum(weight[hit], DETERMINISTIC_LINK_WEIGHT)
        evidence[hit] = True
        found[at] = True
    extra = ~found
    kinds = np.zeros(0, dtype=object) if decisions is None else np.asarray(decisions[2], dtype=object)
    forced_left = np.zeros(0, np.int64) if decisions is None else np.asarray(decisions[0], np.int64)
    forced_right = np.zeros(0, np.int64) if decisions is None else np.asarray(decisions[1], np.int64)
    added = int(extra.sum())
    return LinkedPairs(
        left=np.concatenate([left, dl[extra], forced_left]).astype(np.int64, copy=False),
        right=np.concatenate([right, dr[extra], forced_right]).astype(np.int64, copy=False),
        probability=np.concatenate([probability, np.ones(added), (kinds == FORCED_LINK).astype(np.float64)]),
        id_type=np.concatenate([id_type, det_type[extra], np.full(len(kinds), None, dtype=object)]),
        scored=len(left),
        person_weight=np.concatenate(
            [
                weight,
                np.full(added, DETERMINISTIC_LINK_WEIGHT),
                np.full(len(kinds), DETERMINISTIC_LINK_WEIGHT),
            ]
        ),
        person_evidence=np.concatenate([evidence, np.ones(added, bool), kinds == FORCED_LINK]),
        forced=np.concatenate([np.full(len(left) + added, None, dtype=object), kinds]),
    )
