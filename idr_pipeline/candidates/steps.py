"""The candidates stage over the lake: profile embeddings, their Faiss index and the candidate
pairs (with the EM training sample), as the Dagster assets and ``idr resolve`` run them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import SparkSession

from idr_pipeline.candidates.embedding import encode, profile_text
from idr_pipeline.candidates.faiss_index import FaissCandidateIndex
from idr_pipeline.candidates.minhash import BandChoice
from idr_pipeline.candidates.report import blocking_report
from idr_pipeline.candidates.union import generate_candidates
from idr_pipeline.core.catalog import CANDIDATES, EDGES, EMBEDDINGS, TRAINING_PAIRS
from idr_pipeline.core.lake import Lake
from idr_pipeline.core.schema import PAIR_KEYS
from idr_pipeline.settings import MatchConfig
from idr_pipeline.standardize.profiles import PROFILE_COLUMNS, read_profiles

EMBEDDING_NEIGHBORS = 10


EMBEDDING_MIN_COSINE = 0.80


def records_to_embed(profiles: pd.DataFrame, linked: set[str], policy: str, limit: int) -> pd.DataFrame:
    """Which profiles get an embedding.

    MiniLM costs milliseconds per record on a laptop CPU, so by default only records that no
    shared strong identifier links ("unlinked") are embedded: they are where a fuzzy, typo- and
    nickname-tolerant neighbor search can still find a match the cheap generators missed.
    """
    if policy == "none":
        return profiles.iloc[0:0]
    chosen = profiles if policy == "all" else profiles[~profiles["record_id"].isin(linked)]
    return chosen.sort_values("record_id").head(limit)


@dataclass
class EmbeddingStats:
    embedded: int
    eligible: int
    seconds: float
    policy: str


def run_embeddings(
    spark: SparkSession, lake: Lake, policy: str, limit: int, model_path: str, quantize: bool
) -> EmbeddingStats:

    # With embeddings off nothing is chosen: skip reading every profile and edge to say so.
    off = policy == "none"
    profiles = pd.DataFrame(columns=PROFILE_COLUMNS, dtype=object) if off else read_profiles(lake)
    linked: set[str] = set()
    if not off and lake.has_dataset(*EDGES):
        edges = lake.read_latest_pandas(*EDGES, columns=["src", "dst"])
        linked = set(edges["src"]) | set(edges["dst"])
    chosen = records_to_embed(profiles, linked, policy, limit)
    started = time.perf_counter()
    vectors = encode(profile_text(chosen), model_path, quantize=quantize)
    seconds = time.perf_counter() - started
    dim = vectors.shape[1] if vectors.ndim == 2 else 384
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    table = pa.table(
        {
            "record_id": pa.array(chosen["record_id"].to_numpy(), pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, dim).cast(pa.list_(pa.float32())),
        }
    )
    lake.write_pandas_version(table, *EMBEDDINGS)
    eligible = len(profiles) if policy == "all" else int((~profiles["record_id"].isin(linked)).sum())
    return EmbeddingStats(embedded=len(chosen), eligible=eligible, seconds=seconds, policy=policy)


def read_embeddings(lake: Lake) -> tuple[list[str], np.ndarray]:
    if not lake.has_dataset(*EMBEDDINGS):
        return [], np.zeros((0, 384), dtype=np.float32)
    pdf = lake.read_latest_pandas(*EMBEDDINGS)
    if pdf.empty:
        return [], np.zeros((0, 384), dtype=np.float32)
    return pdf["record_id"].tolist(), np.vstack(pdf["vector"].to_numpy()).astype(np.float32)


def run_faiss_index(lake: Lake, index_dir: str) -> dict[str, object]:

    record_ids, vectors = read_embeddings(lake)
    index = FaissCandidateIndex(dim=vectors.shape[1] if len(vectors) else 384)
    if record_ids:
        index.add(record_ids, vectors)
    path = index.save(index_dir)
    return {"vectors": len(index), "index_type": index.kind, "path": str(path)}


@dataclass
class CandidateStats:
    counts: pd.DataFrame  # generator, pairs
    band_choice: BandChoice
    stats: dict[str, int]
    report: pd.DataFrame | None


def run_candidates(
    spark: SparkSession, lake: Lake, index_dir: str, config: MatchConfig, truth_path: Path | None = None
) -> CandidateStats:

    profiles = read_profiles(lake)
    extra = {}
    record_ids, vectors = read_embeddings(lake)
    if record_ids and Path(index_dir).exists():
        index = FaissCandidateIndex.load(index_dir)
        extra["embedding"] = index.neighbors_as_pairs(
            record_ids, vectors, k=EMBEDDING_NEIGHBORS, min_cosine=EMBEDDING_MIN_COSINE
        )
    cands = generate_candidates(profiles, config, extra)
    by_generator, table = cands.by_generator, cands.table
    # Without embeddings (the default) every cosine is NaN and the ids need not become pandas.
    cosine = (
        pair_cosines(table.select(PAIR_KEYS).to_pandas(), record_ids, vectors)
        if record_ids
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
    out[both] = np.einsum("ij,ij->i", vectors[li], vectors[ri])
    return out
