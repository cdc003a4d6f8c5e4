"""A Faiss inner-product index keyed by record id, with removal and persistence.

Faiss only knows int64 ids, while the pipeline knows string record ids, so the wrapper owns the
mapping and persists it next to the index: an index without its id map is useless, and a
removal that forgot the map would leave a deleted person findable. Erasure requests depend on
`remove` actually taking vectors out of the index, for both index types, which is why removal
goes through `remove_ids` rather than a tombstone list.

Index choice by size: exact `IndexFlatIP` (behind `IndexIDMap2` for ids) is cheap up to a few
hundred thousand vectors and has perfect recall; above `flat_max` an IVF index with 8-bit
scalar-quantized vectors (`IndexIVFScalarQuantizer`, a quarter of the flat index's memory) and
nlist ~ sqrt(n) is trained on a sample and searched with `nprobe` lists. HNSW is not offered:
it cannot remove vectors. A flat index that grows past the bound is rebuilt as IVF from its own
stored vectors, so callers never choose.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

FLAT = "flat"
IVF = "ivf"
DEFAULT_FLAT_MAX = 200_000
DEFAULT_NPROBE = 16
# Query batch for neighbors_as_pairs: bounds the (batch, k) result arrays, not the index.
_QUERY_BATCH = 8192
_INDEX_FILE = "index.faiss"
_ID_MAP_FILE = "id_map.parquet"
_META_FILE = "meta.json"
_FORMAT_VERSION = 1


def _as_unit_float32(vectors: np.ndarray, dim: int) -> np.ndarray:
    """A C-contiguous float32 copy with unit rows; Faiss needs the layout, cosine needs the norm."""
    out = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if out.ndim != 2 or out.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (n, {dim}), got {out.shape}")
    if len(out):
        faiss.normalize_L2(out)
    return out


def ivf_nlist(n: int) -> int:
    """Number of IVF lists for n vectors: ~sqrt(n), the usual balance of list scan vs centroids."""
    return max(1, int(round(math.sqrt(max(n, 1)))))


class FaissCandidateIndex:
    """Cosine nearest neighbors over unit vectors, addressed by string record id.

    `flat_max` is the largest size kept exact; `nprobe` is how many IVF lists a query scans
    (ignored for flat). Re-adding a record id replaces its vector, since a changed profile must
    not leave its old embedding findable.
    """

    def __init__(
        self,
        dim: int = 384,
        flat_max: int = DEFAULT_FLAT_MAX,
        nprobe: int = DEFAULT_NPROBE,
        seed: int = 1234,
    ) -> None:
        self.dim = int(dim)
        self.flat_max = int(flat_max)
        self.nprobe = int(nprobe)
        self.seed = int(seed)
        self.kind = FLAT
        self._index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self._next_id = 0
        self._id_of: dict[str, int] = {}
        self._record_of: dict[int, str] = {}

    # -- size and ids ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._id_of

    @property
    def index(self) -> faiss.Index:
        """The underlying Faiss index, for inspection (type, ntotal, nlist)."""
        return self._index

    def _assign_ids(self, record_ids: Sequence[str]) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + len(record_ids), dtype=np.int64)
        self._next_id += len(record_ids)
        numbers = ids.tolist()
        self._id_of.update(zip(record_ids, numbers, strict=True))
        self._record_of.update(zip(numbers, record_ids, strict=True))
        return ids

    # -- building -------------------------------------------------------------------------------

    def _build_ivf(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Replace the index with a trained IVF holding exactly these vectors."""
        n = len(vectors)
        nlist = min(ivf_nlist(n), n)
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        # 64 points per centroid (above Faiss's 39-point floor) and 10 k-means iterations keep
        # training a small part of building the index; more of either moves recall little.
        rng = np.random.default_rng(self.seed)
        sample_size = min(n, 64 * nlist)
        sample = vectors if sample_size == n else vectors[rng.choice(n, sample_size, replace=False)]
        ivf.cp.seed = self.seed
        ivf.cp.niter = 10
        ivf.train(np.ascontiguousarray(sample))
        ivf.nprobe = self.nprobe
        ivf.add_with_ids(vectors, ids)
        self._index = ivf
        self.kind = IVF

    def _flat_contents(self) -> tuple[np.ndarray, np.ndarray]:
        inner = faiss.downcast_index(self._index.index)
        vectors = inner.reconstruct_n(0, inner.ntotal) if inner.ntotal else np.zeros((0, self.dim), "f4")
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return np.ascontiguousarray(vectors, dtype=np.float32), ids

    def add(self, record_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add (or replace) vectors; switches to IVF once the total passes `flat_max`."""
        record_ids = [str(r) for r in record_ids]
        if len(set(record_ids)) != len(record_ids):
            raise ValueError("record_ids must be unique within one add")
        vectors = _as_unit_float32(vectors, self.dim)
        if len(vectors) != len(record_ids):
            raise ValueError(f"{len(record_ids)} record ids for {len(vectors)} vectors")
        if not record_ids:
            return
        self.remove([r for r in record_ids if r in self._id_of])
        ids = self._assign_ids(record_ids)
        if self.kind == FLAT and len(self) + len(ids) > self.flat_max:
            if len(self) == 0:  # a first build: nothing to carry over, and no copy of the vectors
                self._build_ivf(vectors, ids)
                return
            old_vectors, old_ids = self._flat_contents()
            self._build_ivf(np.concatenate([old_vectors, vectors]), np.concatenate([old_ids, ids]))
            return
        self._index.add_with_ids(vectors, ids)

    def remove(self, record_ids: Sequence[str]) -> int:
        """Take these records' vectors out of the index; returns how many were removed.

        Unknown record ids are ignored (erasure must be idempotent). The count comes from Faiss,
        not from the id map, so a mismatch between the two would show up here.
        """
        ids = [self._id_of[r] for r in dict.fromkeys(str(r) for r in record_ids) if r in self._id_of]
        if not ids:
            return 0
        selector = faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))
        removed = int(self._index.remove_ids(selector))
        for i in ids:
            del self._id_of[self._record_of.pop(i)]
        return removed

    # -- queries --------------------------------------------------------------------------------

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k record ids (object array, None past the end) and cosines (NaN past the end)."""
        queries = _as_unit_float32(vectors, self.dim)
        n = len(queries)
        if n == 0 or k <= 0 or len(self) == 0:
            return np.full((n, max(k, 0)), None, dtype=object), np.full((n, max(k, 0)), np.nan, "f4")
        if self.kind == IVF:
            self._index.nprobe = self.nprobe
        scores, ids = self._index.search(queries, k)
        lookup = self._record_of
        names = np.array([lookup.get(i) for i in ids.ravel().tolist()], dtype=object).reshape(ids.shape)
        scores = np.where(ids < 0, np.nan, scores).astype(np.float32)
        return names, scores

    def neighbors_as_pairs(
        self,
        record_ids: Sequence[str],
        vectors: np.ndarray,
        k: int = 10,
        min_cosine: float = 0.0,
    ) -> pd.DataFrame:
        """Pairs frame (`record_id_l < record_id_r`, `cosine`) from each query's k neighbors.

        Searches k+1 so that a query already in the index still gets k others after its own
        hit is dropped. A pair found from both ends appears once (with the higher cosine, which
        only differs through IVF approximation).
        """
        record_ids = [str(r) for r in record_ids]
        if len(record_ids) != len(vectors):
            raise ValueError(f"{len(record_ids)} record ids for {len(vectors)} vectors")
        frames: list[pd.DataFrame] = []
        for start in range(0, len(record_ids), _QUERY_BATCH):
            stop = start + _QUERY_BATCH
            names, scores = self.search(vectors[start:stop], k + 1)
            left = np.repeat(np.asarray(record_ids[start:stop], dtype=object), names.shape[1])
            right, cos = names.ravel(), scores.ravel()
            keep = (right != None) & (right != left) & (cos >= min_cosine)  # noqa: E711
            left, right, cos = left[keep], right[keep].astype(object), cos[keep]
            swap = left > right
            frames.append(
                pd.DataFrame(
                    {
                        "record_id_l": np.where(swap, right, left),
                        "record_id_r": np.where(swap, left, right),
                        "cosine": cos.astype(np.float64),
                    }
                )
            )
        if not frames:
            return pd.DataFrame(
                {
                    "record_id_l": pd.Series(dtype=object),
                    "record_id_r": pd.Series(dtype=object),
                    "cosine": pd.Series(dtype=np.float64),
                }
            )
        pairs = pd.concat(frames, ignore_index=True)
        pairs = pairs.sort_values("cosine", ascending=False, kind="stable")
        pairs = pairs.drop_duplicates(["record_id_l", "record_id_r"], keep="first")
        return pairs.sort_values(["record_id_l", "record_id_r"], kind="stable").reset_index(drop=True)

    # -- persistence ----------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write index, id map and settings; each file is written aside then renamed into place."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        id_map = pd.DataFrame(
            {
                "id": np.fromiter(self._record_of.keys(), dtype=np.int64, count=len(self._record_of)),
                "record_id": pd.Series(list(self._record_of.values()), dtype=object),
            }
        )
        meta = {
            "format_version": _FORMAT_VERSION,
            "kind": self.kind,
            "dim": self.dim,
            "flat_max": self.flat_max,
            "nprobe": self.nprobe,
            "seed": self.seed,
            "next_id": self._next_id,
            "ntotal": len(self),
        }
        faiss.write_index(self._index, str(out / f".{_INDEX_FILE}.tmp"))
        id_map.to_parquet(out / f".{_ID_MAP_FILE}.tmp", index=False)
        (out / f".{_META_FILE}.tmp").write_text(json.dumps(meta, indent=2))
        for name in (_INDEX_FILE, _ID_MAP_FILE, _META_FILE):
            os.replace(out / f".{name}.tmp", out / name)
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> FaissCandidateIndex:
        """Read what `save` wrote; refuses an index whose size disagrees with its id map."""
        src = Path(directory)
        meta = json.loads((src / _META_FILE).read_text())
        if meta.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"unsupported index format {meta.get('format_version')!r} in {src}")
        self = cls(dim=meta["dim"], flat_max=meta["flat_max"], nprobe=meta["nprobe"], seed=meta["seed"])
        self.kind = meta["kind"]
        self._index = faiss.read_index(str(src / _INDEX_FILE))
        if self.kind == IVF:
            # read_index already returns the concrete class; downcasting its result again would
            # hand back a non-owning wrapper of a freed index.
            self._index.nprobe = self.nprobe
        id_map = pd.read_parquet(src / _ID_MAP_FILE)
        ids = id_map["id"].astype(np.int64).tolist()
        rids = id_map["record_id"].astype(str).tolist()
        self._record_of = dict(zip(ids, rids, strict=True))
        self._id_of = dict(zip(rids, ids, strict=True))
        self._next_id = int(meta["next_id"])
        if len(self._record_of) != self._index.ntotal:
            raise ValueError(
                f"{src}: index holds {self._index.ntotal} vectors but the id map has {len(self._record_of)}"
            )
        return self
