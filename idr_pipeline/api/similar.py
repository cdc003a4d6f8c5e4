"""Nearest identities in the profile-embedding index, for ``/similar``.

A query is an identity (its golden profile is encoded), an e-mail (the golden profile of the
identity holding it, else the address alone) or a free-text profile. The index holds records;
hits are read back through the store's ``record_links`` and grouped by identity, each identity
scored by its closest record. A record the store no longer links (its identity was erased, or
the index is older than the store) is never answered, and neither is an identity that is not
active, so an erased person stays out even in an API process whose index still held them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from idr_pipeline.candidates.faiss_index import FaissCandidateIndex
from idr_pipeline.store import IdentityStore

# Records fetched per identity asked for: an identity has several records, and some hits are
# the query's own records or unlinked ones.
_OVERFETCH = 4


@dataclass(frozen=True)
class SimilarIdentity:
    identity_id: str
    score: float  # cosine of the identity's closest record to the query
    record_id: str  # that record


def nearest_identities(
    index: FaissCandidateIndex,
    store: IdentityStore,
    vector: np.ndarray,
    k: int,
    exclude_identity: str | None = None,
    search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[SimilarIdentity]:
    """Up to ``k`` active identities nearest to ``vector`` (one row), best first.

    ``search`` runs the index search (the API passes one that holds the index lock); it
    defaults to ``index.search``.
    """
    run = search or index.search
    size = len(index)
    fetch = min(size, max(k, 1) * _OVERFETCH)
    while True:
        names, scores = run(vector, fetch)
        hits = [
            (str(n), float(s))
            for n, s in zip(names[0].tolist(), scores[0].tolist(), strict=True)
            if n is not None and not np.isnan(s)
        ]
        found = _by_identity(store, hits, exclude_identity)
        if len(found) >= k or fetch >= size:
            return found[:k]
        fetch = min(size, fetch * 4)


def _by_identity(
    store: IdentityStore, hits: list[tuple[str, float]], exclude_identity: str | None
) -> list[SimilarIdentity]:
    if not hits:
        return []
    links = {
        r["record_id"]: r["identity_id"]
        for r in store.select_rows("record_links", {"record_id": [rid for rid, _ in hits]})
    }
    identities = sorted(set(links.values()))
    active = {
        r["identity_id"]
        for r in store.select_rows("identities", {"identity_id": identities})
        if r.get("status") == "active"
    }
    best: dict[str, SimilarIdentity] = {}
    for record_id, score in hits:  # best first, as the index returns them
        identity = links.get(record_id)
        if identity is None or identity not in active or identity == exclude_identity or identity in best:
            continue
        best[identity] = SimilarIdentity(identity, round(score, 6), record_id)
    return sorted(best.values(), key=lambda h: -h.score)


def golden_profile(store: IdentityStore, identity_id: str) -> dict[str, Any] | None:
    """The identity's golden profile row, or None when the store has no such identity."""
    rows = store.select_rows("golden_profiles", {"identity_id": identity_id})
    return rows[0] if rows else None
