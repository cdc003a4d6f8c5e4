"""Lookalike expansion: the identities nearest a seed audience that are not in it.

The seed is summarized by its centroid, the normalized mean of its members' behavior
vectors, and every other identity is scored by its cosine to it: one Faiss query per
expansion, and a score with one meaning (how much this person behaves like the seed's average
member) that ``min_similarity`` can bound. Seed members without a behavior vector add nothing
to the centroid; a seed with none gives an empty expansion.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

import numpy as np
import pandas as pd

from idr_pipeline.segments.behavior_index import BehaviorIndex

SCORE_DECIMALS = 4

#: Keeps the identities that may be members, from a batch of candidates (e.g. active ones).
Eligible = Callable[[list[str]], Collection[str]]


def erased_identities(store) -> set[str]:
    """Identities an erasure request named (``purge_requests``): never a lookalike member,
    even while the lake still holds them until the purge runs."""
    if store is None:
        return set()
    return {str(i) for r in store.select_rows("purge_requests") for i in (r.get("identity_ids") or [])}


def empty_members() -> pd.DataFrame:
    return pd.DataFrame({"identity_id": pd.Series(dtype=object), "score": pd.Series(dtype=float)})


def seed_centroid(index: BehaviorIndex, seed_ids: Iterable[str]) -> np.ndarray | None:
    """The unit mean of the seed's indexed vectors; None when none is indexed or they cancel out."""
    vectors = index.vectors_of(seed_ids)
    if not len(vectors):
        return None
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm).astype(np.float32) if norm > 0 else None


def expand(
    index: BehaviorIndex,
    seed_ids: Iterable[str],
    size: int,
    min_similarity: float = 0.0,
    *,
    exclude: Iterable[str] = (),
    eligible: Eligible | None = None,
) -> pd.DataFrame:
    """``identity_id, score``: at most ``size`` identities nearest the seed's centroid, best first.

    Never a seed member nor one of ``exclude`` (erased identities); with ``eligible``, only
    identities it keeps. Scores are cosines to the centroid rounded to ``SCORE_DECIMALS``, all
    at least ``min_similarity``; equal scores are ordered by identity id. The Faiss query asks
    for as many neighbors as could be needed and doubles that until ``size`` members are found,
    the scores fall under ``min_similarity``, or the index is exhausted.
    """
    seed = {str(i) for i in seed_ids}
    centroid = seed_centroid(index, seed)
    if centroid is None or size <= 0 or len(index) == 0:
        return empty_members()
    banned = seed | {str(i) for i in exclude}
    k = min(len(index), size + sum(1 for i in banned if i in index))
    while True:
        names, scores = index.search(centroid, k)
        rounded = np.round(scores.astype(np.float64), SCORE_DECIMALS)
        keep = (rounded >= min_similarity) & np.array([n not in banned for n in names], dtype=bool)
        found = pd.DataFrame({"identity_id": names[keep].astype(str), "score": rounded[keep]})
        if eligible is not None and len(found):
            allowed = set(eligible(found["identity_id"].tolist()))
            found = found[found["identity_id"].isin(allowed)]
        exhausted = k >= len(index) or (len(rounded) and rounded[-1] < min_similarity)
        if len(found) >= size or exhausted:
            break
        k = min(len(index), 2 * k)
    found = found.sort_values(["score", "identity_id"], ascending=[False, True], kind="stable")
    return found.head(size).reset_index(drop=True)
