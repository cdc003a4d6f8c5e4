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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    known: Mapping[str, int],
    known_vectors: np.ndarray,
) -> tuple[list[str], np.ndarray, int]:
    """(hashes, vectors, how many texts were encoded): vectors for ``texts``, reusing cached ones.

    ``known`` maps a text hash to its row in ``known_vectors`` (what the previous run stored).
    Only texts whose hash is unknown are encoded, once per distinct text; the result equals
    ``encoder.encode(texts)`` row for row.
    """
    hashes = text_hashes(texts, encoder.key)
    out = np.empty((len(hashes), encoder.dim), dtype=np.float32)
    if len(known) and (known_vectors.ndim != 2 or known_vectors.shape[1] != encoder.dim):
        raise ValueError(f"known_vectors must have shape (n, {encoder.dim}), got {known_vectors.shape}")
    rows = np.fromiter((known.get(h, -1) for h in hashes), dtype=np.int64, count=len(hashes))
    cached = rows >= 0
    if cached.any():
        out[cached] = known_vectors[rows[cached]]
    missing = np.flatnonzero(~cached)
    first_of: dict[str, int] = {}
    for i in missing.tolist():
        first_of.setdefault(hashes[i], i)
    if first_of:
        fresh = np.asarray(encoder.encode([texts[i] for i in first_of.values()]), dtype=np.float32)
        slot = {h: j for j, h in enumerate(first_of)}
        out[missing] = fresh[[slot[hashes[i]] for i in missing.tolist()]]
    return hashes, out, len(first_of)
