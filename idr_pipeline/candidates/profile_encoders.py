"""The profile encoders the pipeline can run, and re-encoding only texts whose vector is not cached.

Two encoders render the same profile text (`embedding.profile_text`) as unit vectors:

* ``chargram``: hashed character 3-grams (`chargram_embedding`), the default. No model, one
  numpy pass, typo-tolerant; docs/performance.md compares it with MiniLM for speed and for the
  true pairs it proposes.
* ``minilm``: the sentence-transformers model at ``IDR_EMBEDDING_MODEL_PATH`` (fp32 or dynamic
  int8), for whoever wants semantic similarity and can afford CPU minutes per 100k profiles.

Each encoder has a ``key`` naming everything that changes its vectors (encoder, version,
dimension, model folder, quantization). A vector is cached under the hash of that key and the
text (`text_hashes`), so `encode_reusing` encodes only texts it has not seen under the same
encoder, and a change of encoder never reuses a stale vector.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from idr_pipeline.candidates import chargram_embedding, embedding

__all__ = ["ENCODERS", "ProfileEncoder", "encode_reusing", "profile_encoder", "text_hashes"]

ENCODERS = ("chargram", "minilm")


@dataclass(frozen=True)
class ProfileEncoder:
    """An encoder as the pipeline uses it.

    ``neighbor_floor`` is the cosine below which an index neighbor is not a candidate pair: the
    encoders' cosines live on different scales (a 3-gram cosine of 0.5 is a close match, a
    MiniLM cosine of 0.5 is not), so the floor belongs to the encoder. ``benchmarks/
    embedding_speed.py`` calibrates both on generated data.
    """

    name: str
    key: str
    dim: int
    neighbor_floor: float
    encode: Callable[[Sequence[str]], np.ndarray]


def profile_encoder(
    name: str, model_path: str = "", quantize: bool = True, threads: int = 1
) -> ProfileEncoder:
    """The encoder called ``name`` ("chargram" or "minilm"); ValueError for anything else.

    ``threads`` is how many chunks the chargram encoder encodes at once (see
    ``chargram_embedding.encode``): the driver's core count where the driver encodes every
    profile, 1 for a single query (the API).
    """
    if name == "chargram":
        dim = chargram_embedding.DEFAULT_DIM
        return ProfileEncoder(
            name=name,
            key=f"{chargram_embedding.ENCODER_ID}/{dim}",
            dim=dim,
            neighbor_floor=0.47,
            encode=lambda texts: chargram_embedding.encode(texts, dim, threads),
        )
    if name == "minilm":
        if not model_path:
            raise ValueError("the minilm encoder needs IDR_EMBEDDING_MODEL_PATH")
        variant = "int8" if quantize else "fp32"
        return ProfileEncoder(
            name=name,
            key=f"minilm/{Path(model_path).name}/{variant}/{embedding.DEFAULT_MAX_SEQ_LENGTH}",
            dim=embedding.EMBEDDING_DIM,
            neighbor_floor=0.80,
            encode=lambda texts: embedding.encode(texts, model_path, quantize=quantize),
        )
    raise ValueError(f"unknown profile encoder {name!r}; use one of {ENCODERS}")


def text_hashes(texts: Sequence[str], key: str) -> list[str]:
    """BLAKE2b (128-bit) of the encoder key and each UTF-8 text: the cache key of its vector."""
    prefix = f"{key}\x00".encode()
    return [hashlib.blake2b(prefix + t.encode("utf-8"), digest_size=16).hexdigest() for t in texts]


def encode_reusing(
    encoder: ProfileEncoder,
    texts: Sequence[str],
    known_hashes: Sequence[str],
    known_vectors: np.ndarray,
) -> tuple[list[str], np.ndarray, int]:
    """(hashes, vectors, how many texts were encoded): vectors for ``texts``, reusing cached ones.

    ``known_hashes[i]`` is the text hash of ``known_vectors[i]`` (what the previous run stored;
    a hash may appear more than once). Only texts whose hash is unknown are encoded, once per
    distinct text; the result equals ``encoder.encode(texts)`` row for row.
    """
    if len(known_hashes) != len(known_vectors):
        raise ValueError(f"{len(known_hashes)} known hashes for {len(known_vectors)} known vectors")
    if len(known_hashes) and (known_vectors.ndim != 2 or known_vectors.shape[1] != encoder.dim):
        raise ValueError(f"known_vectors must have shape (n, {encoder.dim}), got {known_vectors.shape}")
    hashes = text_hashes(texts, encoder.key)
    # codes[i] is the distinct hash of text i, numbered in order of first appearance.
    codes, distinct = pd.factorize(np.asarray(hashes, dtype=object))
    first_position = np.unique(codes, return_index=True)[1]
    known_row = _rows_of(distinct, known_hashes)
    missing = np.flatnonzero(known_row < 0)
    fresh = (
        np.asarray(encoder.encode([texts[i] for i in first_position[missing].tolist()]), dtype=np.float32)
        if len(missing)
        else np.zeros((0, encoder.dim), dtype=np.float32)
    )
    if len(missing) == len(distinct):
        distinct_vectors = fresh  # nothing cached: no copy of the fresh vectors
    else:
        distinct_vectors = np.empty((len(distinct), encoder.dim), dtype=np.float32)
        hit = np.flatnonzero(known_row >= 0)
        distinct_vectors[hit] = known_vectors[known_row[hit]]
        distinct_vectors[missing] = fresh
    # With every text distinct, codes are 0..n-1 and the distinct vectors are the answer.
    vectors = distinct_vectors if len(distinct) == len(hashes) else distinct_vectors[codes]
    return hashes, vectors, len(missing)


def _rows_of(wanted: np.ndarray, known_hashes: Sequence[str]) -> np.ndarray:
    """For each hash in ``wanted``, its first row in ``known_hashes``, or -1 where it has none."""
    if not len(known_hashes) or not len(wanted):
        return np.full(len(wanted), -1, dtype=np.int64)
    known = pd.Index(np.asarray(known_hashes, dtype=object))
    if known.is_unique:
        return known.get_indexer(wanted).astype(np.int64)
    first = ~known.duplicated()
    rows = known[first].get_indexer(wanted)
    return np.where(rows >= 0, np.flatnonzero(first)[rows], -1).astype(np.int64)
