"""The candidates stage over the lake: profile embeddings, their Faiss index and the candidate
pairs (with the EM training sample), as the Dagster assets and ``idr resolve`` run them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import SparkSession

from idr_pipeline.candidates.embedding import profile_text
from idr_pipeline.candidates.embedding_lake import (
    read_embedded_ids,
    read_embeddings,
    read_keyed_vectors,
    write_embeddings,
)
from idr_pipeline.candidates.faiss_index import FaissCandidateIndex
from idr_pipeline.candidates.minhash import BandChoice
from idr_pipeline.candidates.profile_encoders import ProfileEncoder, encode_reusing
from idr_pipeline.candidates.report import blocking_report
from idr_pipeline.candidates.union import generate_candidates
from idr_pipeline.core.catalog import CANDIDATES, EDGES, EMBEDDINGS, TRAINING_PAIRS
from idr_pipeline.core.lake import Lake
from idr_pipeline.core.schema import PAIR_KEYS
from idr_pipeline.settings import MatchConfig
from idr_pipeline.standardize.profiles import PROFILE_COLUMNS, read_profiles

# Each query record's nearest neighbors kept as candidates (above the encoder's cosine floor).
EMBEDDING_NEIGHBORS = 10


def records_to_embed(profiles: pd.DataFrame, linked: set[str], policy: str, limit: int) -> pd.DataFrame:
    """Which profiles get an embedding: all of them, those no shared strong identifier links
    ("unlinked"), or none; in record-id order, at most ``limit`` of them when ``limit`` > 0."""
    if policy == "none":
        return profiles.iloc[0:0]
    chosen = profiles if policy == "all" else profiles[~profiles["record_id"].isin(linked)]
    if not chosen["record_id"].is_monotonic_increasing:  # read_profiles' frames already are
        chosen = chosen.sort_values("record_id")
    return chosen.head(limit) if limit > 0 else chosen


@dataclass
class EmbeddingStats:
    embedded: int  # records with a vector in this version
    encoded: int  # distinct texts encoded by this run (the rest reused the previous version's)
    eligible: int
    seconds: float  # rendering, hashing and encoding
    policy: str
    encoder: str

    @property
    def profiles_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0


def run_embeddings(
    spark: SparkSession, lake: Lake, policy: str, limit: int, encoder: ProfileEncoder
) -> EmbeddingStats:
    """Write ``profile_embeddings`` (record_id, text_hash, vector) for the chosen profiles.

    A profile whose text the previous version already embedded under the same encoder (same
    ``text_hash``) gets that vector back instead of being encoded again, so a re-run costs the
    new and changed profiles only.
    """
    # With embeddings off nothing is chosen: skip reading every profile and edge to say so.
    off = policy == "none"
    profiles = pd.DataFrame(columns=PROFILE_COLUMNS, dtype=object) if off else read_profiles(lake)
    linked: set[str] = set()
    if policy == "unlinked" and lake.has_dataset(*EDGES):
        edges = lake.read_latest_pandas(*EDGES, columns=["src", "dst"])
        linked = set(edges["src"]) | set(edges["dst"])
    chosen = records_to_embed(profiles, linked, policy, limit)
    known_hashes, known_vectors = read_keyed_vectors(lake, "text_hash", encoder.dim)
    started = time.perf_counter()
    hashes, vectors, encoded = encode_reusing(encoder, profile_text(chosen), known_hashes, known_vectors)
    seconds = time.perf_counter() - started
    write_embeddings(lake, chosen["record_id"].to_numpy(), hashes, vectors)
    eligible = len(profiles) if policy != "unlinked" else int((~profiles["record_id"].isin(linked)).sum())
    return EmbeddingStats(
        embedded=len(chosen),
        encoded=encoded,
        eligible=0 if off else eligible,
        seconds=seconds,
        policy=policy,
        encoder=encoder.name,
    )


def run_faiss_index(lake: Lake, index_dir: str) -> dict[str, object]:
    """Build the Faiss index over every vector of ``profile_embeddings`` and save it in ``index_dir``."""
    started = time.perf_counter()
    record_ids, vectors = read_embeddings(lake)
    index = FaissCandidateIndex(dim=vectors.shape[1] if len(record_ids) else 384)
    if record_ids:
        index.add(record_ids, vectors)
    path = index.save(index_dir)
    return {
        "vectors": len(index),
        "index_type": index.kind,
        "path": str(path),
        "seconds": time.perf_counter() - started,
    }


VectorLoader = Callable[[Sequence[str] | None], tuple[list[str], np.ndarray]]


def neighbor_search(
    load_index: Callable[[], FaissCandidateIndex],
    load_embedded_ids: Callable[[], Sequence[str]],
    load_vectors: VectorLoader,
    floor: float,
) -> Callable[[Sequence[str] | None], pd.DataFrame]:
    """The ``NeighborSearch`` of ``generate_candidates`` over an index of the embedded records.

    Everything is loaded when the search runs, not before, so none of it is held while the
    other generators run: the index, the ids of the records with a vector, and
    ``load_vectors(ids)``, the (ids, vectors) of those of ``ids`` that have one (all of them
    for None), for the queried records only. A queried record without a vector has no
    neighbors; a neighbor without one (an index older than the embeddings) is left out rather
    than proposed.
    """

    def search(queries: Sequence[str] | None) -> pd.DataFrame:
        index, known = load_index(), set(load_embedded_ids())
        wanted = None if queries is None else [q for q in queries if q in known]
        if wanted is None or wanted:
            ids, rows = load_vectors(wanted)
        else:
            ids, rows = [], np.zeros((0, index.dim), np.float32)
        pairs = index.neighbors_as_pairs(ids, rows, k=EMBEDDING_NEIGHBORS, min_cosine=floor)
        keep = pairs["record_id_l"].isin(known) & pairs["record_id_r"].isin(known)
        return pairs[keep].reset_index(drop=True)

    return search


@dataclass
class CandidateStats:
    counts: pd.DataFrame  # generator, pairs
    band_choice: BandChoice
    stats: dict[str, int]
    report: pd.DataFrame | None


def run_candidates(
    spark: SparkSession,
    lake: Lake,
    index_dir: str,
    config: MatchConfig,
    truth_path: Path | None = None,
    neighbor_floor: float = 0.47,
) -> CandidateStats:
    """Candidate pairs (with each pair's embedding cosine) and the EM sample, into the lake.

    ``neighbor_floor`` is the encoder's cosine floor for embedding neighbors
    (``ProfileEncoder.neighbor_floor``).
    """
    profiles = read_profiles(lake)
    search = None
    embedded = lake.has_dataset(*EMBEDDINGS) and lake.latest_dataset(*EMBEDDINGS).count_rows() > 0
    if embedded and (Path(index_dir) / "meta.json").exists():
        search = neighbor_search(
            lambda: FaissCandidateIndex.load(index_dir),
            lambda: read_embedded_ids(lake),
            lambda only: read_embeddings(lake, only),
            neighbor_floor,
        )
    cands = generate_candidates(profiles, config, neighbors=search)
    by_generator, table = cands.by_generator, cands.table
    # The cosine column feeds the embedding comparison only when the model trains on it;
    # otherwise it stays NaN and neither the vectors nor the ids need be read.
    cosine = (
        pair_cosines(table.select(PAIR_KEYS).to_pandas(), *read_embeddings(lake))
        if embedded and config.embed_cosine_level
        else np.full(table.num_rows, np.nan)
    )
    lake.write_pandas_version(
        table.append_column("cosine", pa.array(cosine, type=pa.float64(), from_pandas=True)), *CANDIDATES
    )
    keys = pa.schema([(c, pa.string()) for c in PAIR_KEYS])
    lake.write_pandas_version(cands.training[PAIR_KEYS], *TRAINING_PAIRS, schema=keys)
    counts = pd.DataFrame(
        [{"generator": name, "pairs": by_generator.size(name)} for name in by_generator]
        + [{"generator": "union", "pairs": table.num_rows}]
    )
    report = None
    if truth_path is not None and truth_path.exists():
        truth = pd.read_csv(truth_path, dtype=str, keep_default_na=False)
        truth = truth[truth["record_id"].isin(profiles["record_id"])]
        report = blocking_report(by_generator, truth, n_records=len(profiles))
    return CandidateStats(counts=counts, band_choice=cands.band_choice, stats=cands.stats, report=report)


# Pairs per step of row_cosines: bounds the two gathered (pairs, dim) blocks, which for millions
# of pairs would otherwise be gigabytes each.
_COSINE_CHUNK = 65_536


def row_cosines(vectors: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Inner product of unit rows ``vectors[left[i]]`` and ``vectors[right[i]]``, in bounded chunks
    (NaN where a row is NaN)."""
    out = np.empty(len(left), dtype=np.float64)
    for start in range(0, len(left), _COSINE_CHUNK):
        lo, hi = left[start : start + _COSINE_CHUNK], right[start : start + _COSINE_CHUNK]
        out[start : start + len(lo)] = np.einsum("ij,ij->i", vectors[lo], vectors[hi])
    return out


def pair_cosines(pairs: pd.DataFrame, record_ids: list[str], vectors: np.ndarray) -> np.ndarray:
    """Cosine for every pair whose two records are both embedded; NaN otherwise."""
    out = np.full(len(pairs), np.nan)
    if not record_ids or pairs.empty:
        return out
    position = pd.Series(np.arange(len(record_ids)), index=record_ids)
    left = pairs["record_id_l"].map(position)
    right = pairs["record_id_r"].map(position)
    both = (left.notna() & right.notna()).to_numpy()
    li = left[both].astype(int).to_numpy()
    ri = right[both].astype(int).to_numpy()
    out[both] = row_cosines(vectors, li, ri)
    return out
