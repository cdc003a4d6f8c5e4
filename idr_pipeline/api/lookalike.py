"""Lookalike expansions for the API, from the behavior index the pipeline keeps.

The ``behavior_embeddings`` asset writes one Faiss index per daily partition under
``IDR_INDEX_DIR/behavior/<day>``; the API answers from the newest, loaded on first use and
reloaded when a newer day (or a rewrite of the same day) appears, so a running server follows
the pipeline without a restart. Seeds are the segment's current members in the store, and only
identities the store holds as active, never named by an erasure request, are returned: the
index on disk may be a day older than an erasure.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from idr_pipeline.segments.behavior_index import BehaviorIndex, latest_behavior_index_dir
from idr_pipeline.segments.lookalike import erased_identities, expand
from idr_pipeline.store import IdentityStore

#: The most members one API answer carries; larger audiences belong in a lookalike segment
#: of config/segments.yaml, which activations can page through.
MAX_API_LOOKALIKE = 10_000
#: Ids per ``IN (...)`` look-up of active identities: inside every backend's parameter limit.
ID_CHUNK = 1000


class BehaviorIndexCache:
    """The newest behavior index under ``index_dir``, reloaded when its folder changes."""

    def __init__(self, index_dir: str | Path) -> None:
        self.index_dir = Path(index_dir)
        self._lock = threading.Lock()
        self._loaded: tuple[Path, float] | None = None
        self._index: BehaviorIndex | None = None

    def get(self) -> tuple[BehaviorIndex | None, str | None]:
        """``(index, its day)``, or ``(None, None)`` before the pipeline wrote one."""
        with self._lock:
            path = latest_behavior_index_dir(self.index_dir)
            if path is None:
                self._loaded, self._index = None, None
                return None, None
            stamp = (path, (path / "meta.json").stat().st_mtime)
            if stamp != self._loaded:
                self._index = BehaviorIndex.load(path)
                self._loaded = stamp
            return self._index, path.name


def active_identities(store: IdentityStore, identity_ids: Iterable[str]) -> set[str]:
    """Those of ``identity_ids`` the store holds with status active."""
    ids = list(dict.fromkeys(identity_ids))
    out: set[str] = set()
    for start in range(0, len(ids), ID_CHUNK):
        rows = store.select_rows(
            "identities", {"identity_id": ids[start : start + ID_CHUNK], "status": "active"}
        )
        out.update(str(r["identity_id"]) for r in rows)
    return out


@dataclass
class Expansion:
    seed_members: int
    seed_with_behavior: int
    members: pd.DataFrame
    behavior_as_of: str | None


def lookalike_members(
    store: IdentityStore,
    cache: BehaviorIndexCache,
    segment_id: str,
    size: int,
    min_similarity: float,
) -> Expansion:
    """The expansion of the segment's current members by the newest behavior index."""
    seed = [r["identity_id"] for r in store.select_rows("segment_members", {"segment_id": segment_id})]
    index, day = cache.get()
    if index is None:
        return Expansion(len(seed), 0, pd.DataFrame(columns=["identity_id", "score"]), None)
    erased = erased_identities(store)
    members = expand(
        index,
        seed,
        size,
        min_similarity,
        exclude=erased,
        eligible=lambda ids: active_identities(store, ids),
    )
    return Expansion(len(seed), sum(1 for i in seed if i in index), members, day)
