"""A Faiss index over behavior vectors, so lookalike queries do not scan every vector.

Behavior vectors of the default ``tokens`` vectorizer are sparse in 2^18 hashed dims, which
Faiss cannot hold. Only the dims some identity uses matter for a cosine, so the index keeps
those columns as dense dims (exact: every cosine is unchanged) while there are at most
``max_dims`` of them; past that, a seeded Gaussian random projection to ``max_dims`` keeps
cosines approximately (Johnson-Lindenstrauss) at a bounded width. Dense vectors (``minilm``)
go in as they are. Queries are built from vectors already in the index (a seed's members), so
the projection never has to be applied to anything new and is not persisted.

Exact ``IndexFlatIP`` up to ``flat_max`` vectors; above it an ``IndexIVFFlat`` searched with
``nprobe`` lists. Both keep a direct map from id to vector (``vectors_of``) and support
``remove`` (erasure), and the index is saved with its id map under one directory.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np
import pandas as pd
from scipy import sparse

if TYPE_CHECKING:  # pragma: no cover - the API loads indexes without importing pyspark
    from idr_pipeline.segments.behavior import BehaviorVectors

DEFAULT_MAX_DIMS = 256
DEFAULT_FLAT_MAX = 200_000
DEFAULT_NPROBE = 16
EXACT = "exact"
PROJECTED = "projected"
_INDEX_FILE = "index.faiss"
_IDS_FILE = "ids.parquet"
_META_FILE = "meta.json"
_FORMAT_VERSION = 1


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(matrix, dtype=np.float32)
    if len(out):
        faiss.normalize_L2(out)
    return out


def dense_behavior(vectors: np.ndarray | sparse.spmatrix, max_dims: int = DEFAULT_MAX_DIMS, seed: int = 7):
    """``(dense unit rows, how)``: the used columns of a sparse matrix (``exact``) or their
    random projection to ``max_dims`` (``projected``); a dense matrix as it is (``exact``)."""
    if not sparse.issparse(vectors):
        return _unit_rows(np.asarray(vectors, dtype=np.float32)), EXACT
    csr = sparse.csr_matrix(vectors)
    used = np.unique(csr.indices)
    compact = csr[:, used]
    if len(used) <= max_dims:
        return _unit_rows(compact.toarray()), EXACT
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((len(used), max_dims)).astype(np.float32) / math.sqrt(max_dims)
    return _unit_rows(np.asarray(compact @ projection)), PROJECTED


class BehaviorIndex:
    """Unit behavior vectors in Faiss, addressed by identity id; cosine by inner product."""

    def __init__(self, index: faiss.Index, ids: Sequence[str], how: str, vectorizer: str) -> None:
        self._index = index
        self.how = how
        self.vectorizer = vectorizer
        self._ids = np.asarray([str(i) for i in ids], dtype=object)
        self._position = {identity: n for n, identity in enumerate(self._ids.tolist())}
        self._removed: set[int] = set()

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        behavior: BehaviorVectors,
        *,
        max_dims: int = DEFAULT_MAX_DIMS,
        flat_max: int = DEFAULT_FLAT_MAX,
        nprobe: int = DEFAULT_NPROBE,
        seed: int = 7,
    ) -> BehaviorIndex:
        if len(set(behavior.ids)) != len(behavior.ids):
            raise ValueError("behavior vectors hold an identity twice")
        dense, how = dense_behavior(behavior.vectors, max_dims, seed) if behavior.ids else (None, EXACT)
        dim = int(dense.shape[1]) if dense is not None and dense.shape[1] else 1
        if dense is None or dense.shape[1] == 0:
            dense = np.zeros((len(behavior.ids), dim), np.float32)
        keys = np.arange(len(behavior.ids), dtype=np.int64)
        if len(dense) <= flat_max:
            index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
            index.add_with_ids(dense, keys)
        else:
            nlist = min(len(dense), max(1, int(round(4 * math.sqrt(len(dense))))))
            quantizer = faiss.IndexFlatIP(dim)
            ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(seed)
            sample = min(len(dense), 64 * nlist)
            ivf.cp.seed = seed
            ivf.train(dense if sample == len(dense) else dense[rng.choice(len(dense), sample, replace=False)])
            # A hashtable direct map lets vectors be read back by id and removed by id.
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
            ivf.add_with_ids(dense, keys)
            ivf.nprobe = nprobe
            index = ivf
        return cls(index, behavior.ids, how, behavior.vectorizer)

    # -- contents -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __contains__(self, identity_id: object) -> bool:
        n = self._position.get(str(identity_id))
        return n is not None and n not in self._removed

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def kind(self) -> str:
        return "ivf" if isinstance(self._index, faiss.IndexIVF) else "flat"

    def identities(self) -> list[str]:
        return [i for n, i in enumerate(self._ids.tolist()) if n not in self._removed]

    def vectors_of(self, identity_ids: Iterable[str]) -> np.ndarray:
        """The indexed unit vectors of these identities (those not in the index are skipped)."""
        keys = [self._position[i] for i in identity_ids if i in self]
        if not keys:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._index.reconstruct(int(k)) for k in keys]).astype(np.float32)

    def remove(self, identity_ids: Iterable[str]) -> int:
        """Take these identities' vectors out (erasure); unknown ids are ignored."""
        keys = sorted({self._position[i] for i in identity_ids if i in self})
        if not keys:
            return 0
        # An array selector: the IVF's hashtable direct map refuses the other kinds.
        chosen = np.asarray(keys, dtype=np.int64)
        removed = int(self._index.remove_ids(faiss.IDSelectorArray(chosen)))
        self._removed.update(keys)
        return removed

    # -- queries --------------------------------------------------------------------------------

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest identities to one unit query vector and their cosines, best first."""
        k = min(int(k), len(self))
        if k <= 0:
            return np.zeros(0, dtype=object), np.zeros(0, np.float32)
        scores, keys = self._index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
        found = keys[0] >= 0
        return self._ids[keys[0][found]], scores[0][found]

    # -- persistence ----------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write index, ids and settings into a fresh folder, then swap it into place."""
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        faiss.write_index(self._index, str(staging / _INDEX_FILE))
        pd.DataFrame(
            {"identity_id": self._ids, "removed": np.isin(np.arange(len(self._ids)), list(self._removed))}
        ).to_parquet(staging / _IDS_FILE, index=False)
        meta = {"format_version": _FORMAT_VERSION, "how": self.how, "vectorizer": self.vectorizer}
        (staging / _META_FILE).write_text(json.dumps(meta, indent=2))
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> BehaviorIndex:
        src = Path(directory)
        meta = json.loads((src / _META_FILE).read_text())
        if meta.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"unsupported behavior index format {meta.get('format_version')!r} in {src}")
        index = faiss.read_index(str(src / _INDEX_FILE))
        ids = pd.read_parquet(src / _IDS_FILE)
        out = cls(index, ids["identity_id"].astype(str).tolist(), meta["how"], meta["vectorizer"])
        out._removed = set(np.flatnonzero(ids["removed"].to_numpy()).tolist())
        if len(out._ids) - len(out._removed) != len(out):
            raise ValueError(
                f"{src}: index holds {len(out)} vectors but its id list {len(out._ids) - len(out._removed)}"
            )
        return out


def behavior_index_dir(index_dir: str | os.PathLike[str], partition_key: str) -> Path:
    """Where the behavior index of one daily partition is kept."""
    return Path(index_dir) / "behavior" / partition_key


def latest_behavior_index_dir(index_dir: str | os.PathLike[str]) -> Path | None:
    """The newest daily partition's folder (partition keys are ISO dates), or None."""
    root = Path(index_dir) / "behavior"
    days = sorted(
        p for p in root.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]") if (p / _META_FILE).exists()
    )
    return days[-1] if days else None


def remove_from_behavior_indexes(index_dir: str | os.PathLike[str], identity_ids: Iterable[str]) -> int:
    """Take these identities' vectors out of every day's behavior index under ``index_dir``
    (erasure); returns how many vectors went. A day's index is rewritten only if it held one."""
    ids = list(dict.fromkeys(str(i) for i in identity_ids))
    root = Path(index_dir) / "behavior"
    removed = 0
    if not ids or not root.is_dir():
        return 0
    for day in sorted(p for p in root.iterdir() if (p / _META_FILE).exists()):
        index = BehaviorIndex.load(day)
        taken = index.remove(ids)
        if taken:
            index.save(day)
            removed += taken
    return removed
