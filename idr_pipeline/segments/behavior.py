"""Behavior vectors: what an identity did lately, as text and as one unit vector.

The text is the common ground of two vectorizers and of the prototypes: an identity's recent
events rendered newest first as short phrases ("purchased luxury, clicked spring sale, viewed
sports"), and a prototype's description and example behaviors written the same way. Either
vectorizer turns both into unit vectors, so prototype membership is one matrix product and a
threshold on cosine.

* ``tokens`` (the default): sparse counts of category/campaign words and of verb+object
  phrases, log-damped, hashed into 2^18 sparse dims and L2-normalized. No fitting, so vectors
  of two runs are comparable and a prototype needs no population to be vectorized.
* ``minilm``: the project's offline all-MiniLM-L6-v2 (``idr_pipeline.candidates.embedding``).

Which one is the default is measured, not argued: ``benchmarks/behavior_vectors.py`` scores
the ``luxury_affinity`` prototype against the generator's planted luxury buyers, and at their
best thresholds ``tokens`` finds them far more precisely than MiniLM, with no model to load and
in a fraction of the time (docs/performance.md has the figures). MiniLM's cosines between short
behavior lists are dominated by their shared form ("purchased x, viewed y"), so one luxury
purchase among many others moves the vector little; the token vectorizer weighs exactly the
words that differ.
So ``tokens`` is the default (``IDR_BEHAVIOR_VECTORIZER``) and the catalog's thresholds
(0.3) are set for it; MiniLM stays available for free-text prototypes the tokens cannot match.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from scipy import sparse

from idr_pipeline.candidates.embedding import encode
from idr_pipeline.segments.dsl import PrototypeSegment
from idr_pipeline.segments.resolved_events import in_window

VECTORIZERS: tuple[str, ...] = ("tokens", "minilm")
BEHAVIOR_DAYS = 90
#: Newest events kept per identity: enough to show a taste, short enough for MiniLM's cap.
MAX_EVENTS = 30
TOKEN_DIM = 1 << 18
#: Words that say what happened, not to what: they join their object into a phrase token but
#: are no token of their own (everyone "viewed" something, so the word would only add
#: similarity between strangers).
VERBS = frozenset({"purchased", "bought", "viewed", "clicked", "campaign"})
_STOP = frozenset({"and", "or", "the", "a", "an", "of", "who", "with", "in", "on", "for", "at", "to", "s"})
_WORD = re.compile(r"[a-z0-9]+")
#: Scores are stored rounded so that an unchanged vector gives an unchanged row.
SCORE_DECIMALS = 4


def _words(value: Column) -> Column:
    return F.trim(F.regexp_replace(F.lower(value), r"[^a-z0-9]+", " "))


def _phrase() -> Column:
    """One event as words; null for events that say nothing about taste (a bare page view)."""
    category, campaign = _words(F.col("category")), _words(F.col("campaign"))
    has_category = F.col("category").isNotNull() & (category != "")
    has_campaign = F.col("campaign").isNotNull() & (campaign != "")
    return (
        F.when((F.col("type") == "purchase") & has_category, F.concat_ws(" ", F.lit("purchased"), category))
        .when((F.col("type") == "ad_click") & has_campaign, F.concat_ws(" ", F.lit("clicked"), campaign))
        .when((F.col("type") == "ad_click") & has_category, F.concat_ws(" ", F.lit("clicked"), category))
        .when((F.col("type") == "page_view") & has_category, F.concat_ws(" ", F.lit("viewed"), category))
    )


def behavior_texts(
    events: DataFrame, end: datetime, within_days: int = BEHAVIOR_DAYS, max_events: int = MAX_EVENTS
) -> DataFrame:
    """``identity_id, text, events``: each identity's recent telling events, newest first."""
    phrased = events.where(F.col("identity_id").isNotNull() & in_window(end, within_days)).select(
        "identity_id", "ts", "event_id", _phrase().alias("phrase")
    )
    newest = F.array_sort(
        F.collect_list(F.struct((-F.unix_micros("ts")).alias("t"), F.col("event_id"), F.col("phrase")))
    )
    return (
        phrased.where(F.col("phrase").isNotNull())
        .groupBy("identity_id")
        .agg(newest.alias("_seq"))
        .select(
            "identity_id",
            F.concat_ws(", ", F.transform(F.slice("_seq", 1, max_events), lambda s: s["phrase"])).alias(
                "text"
            ),
            F.size("_seq").alias("events"),
        )
    )


# ----------------------------------------------------------------------------- vectorizers


def text_tokens(text: str) -> list[str]:
    """Content words and verb+object phrases of a behavior text or a free description."""
    tokens: list[str] = []
    for clause in text.lower().replace(";", ",").split(","):
        words = [w for w in _WORD.findall(clause) if w not in _STOP]
        content = [w for w in words if w not in VERBS]
        tokens.extend(content)
        if words and words[0] in VERBS and content:
            verb = "purchased" if words[0] == "bought" else words[0]
            tokens.append(f"{verb}:{' '.join(content)}")
    return tokens


def _bucket(token: str) -> int:
    return zlib.crc32(token.encode()) % TOKEN_DIM


def token_vectors(texts: Sequence[str]) -> sparse.csr_matrix:
    """Hashed, log-damped token counts with unit rows (an empty text stays a zero row).

    Sparse in ``TOKEN_DIM`` = 2^18 dims: a few hundred distinct tokens never collide there
    (at 1,024 dense dims "clicked black friday" landed on "purchased luxury").
    """
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for i, text in enumerate(texts):
        buckets: Counter = Counter()
        for token, n in Counter(text_tokens(text)).items():
            buckets[_bucket(token)] += 1.0 + float(np.log(n))
        norm = float(np.sqrt(sum(v * v for v in buckets.values())))
        for col, value in sorted(buckets.items()):
            rows.append(i)
            cols.append(col)
            vals.append(value / norm)
    return sparse.csr_matrix(
        (np.asarray(vals, np.float32), (rows, cols)), shape=(len(texts), TOKEN_DIM), dtype=np.float32
    )


Matrix = np.ndarray | sparse.csr_matrix


def vectorize(texts: Sequence[str], vectorizer: str = "tokens", **minilm: object) -> Matrix:
    """Unit rows, one per text, by the named vectorizer (``minilm`` kwargs go to ``encode``)."""
    if vectorizer == "tokens":
        return token_vectors(texts)
    if vectorizer == "minilm":
        return encode(list(texts), **{"num_threads": 1, **minilm})  # type: ignore[arg-type]
    raise ValueError(f"unknown behavior vectorizer {vectorizer!r}; choose from {VECTORIZERS}")


def _dense(matrix: Matrix) -> np.ndarray:
    return matrix.toarray() if sparse.issparse(matrix) else np.asarray(matrix)


# ----------------------------------------------------------------------------- prototypes


def prototype_texts(segment: PrototypeSegment) -> list[str]:
    return [t for t in [segment.description, *segment.examples] if t.strip()]


def prototype_vector(segment: PrototypeSegment, vectorizer: str = "tokens", **minilm: object) -> np.ndarray:
    """The normalized mean of the description's and the examples' vectors (dense)."""
    mean = _dense(vectorize(prototype_texts(segment), vectorizer, **minilm)).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm else mean).astype(np.float32)


@dataclass
class BehaviorVectors:
    """Identity ids with their texts and unit vectors (row i of ``vectors`` is ``ids[i]``)."""

    ids: list[str]
    texts: list[str]
    vectors: Matrix
    vectorizer: str
    #: The behavior window the texts cover; a prototype with another window needs its own.
    within_days: int = BEHAVIOR_DAYS

    def scores(self, prototype: np.ndarray) -> np.ndarray:
        """Cosine of every identity to a unit prototype vector, rounded for stable storage."""
        raw = np.asarray(self.vectors @ prototype, dtype=np.float64).ravel()
        return np.round(raw, SCORE_DECIMALS)

    def to_frame(self) -> pd.DataFrame:
        """One row per identity; sparse vectors as (indices, values), dense ones as values only."""
        if sparse.issparse(self.vectors):
            csr = self.vectors.tocsr()
            indices = [
                csr.indices[a:b].astype(np.int32)
                for a, b in zip(csr.indptr[:-1], csr.indptr[1:], strict=True)
            ]
            values = [
                csr.data[a:b].astype(np.float32) for a, b in zip(csr.indptr[:-1], csr.indptr[1:], strict=True)
            ]
        else:
            indices = [None] * len(self.ids)
            values = list(np.asarray(self.vectors, dtype=np.float32))
        return pd.DataFrame(
            {
                "identity_id": self.ids,
                "text": self.texts,
                "vectorizer": self.vectorizer,
                "within_days": self.within_days,
                "indices": indices,
                "values": values,
            }
        )

    @classmethod
    def from_frame(cls, pdf: pd.DataFrame) -> BehaviorVectors:
        ids = pdf["identity_id"].astype(str).tolist()
        vectorizer = str(pdf["vectorizer"].iloc[0]) if len(pdf) else "tokens"
        if vectorizer == "tokens":
            indptr = np.concatenate([[0], np.cumsum([len(v) for v in pdf["values"]])]).astype(np.int64)
            flat = [np.asarray(v, np.float32) for v in pdf["values"]]
            flat_idx = [np.asarray(i, np.int32) for i in pdf["indices"]]
            data = np.concatenate(flat) if flat else np.zeros(0, np.float32)
            cols = np.concatenate(flat_idx) if flat_idx else np.zeros(0, np.int32)
            vectors: Matrix = sparse.csr_matrix((data, cols, indptr), shape=(len(ids), TOKEN_DIM))
        else:
            vectors = (
                np.stack([np.asarray(v, np.float32) for v in pdf["values"]]) if len(ids) else np.zeros((0, 0))
            )
        within = int(pdf["within_days"].iloc[0]) if len(pdf) else BEHAVIOR_DAYS
        texts = pdf["text"].astype(str).tolist()
        return cls(ids=ids, texts=texts, vectors=vectors, vectorizer=vectorizer, within_days=within)


def embed_texts(
    texts: pd.DataFrame, vectorizer: str = "tokens", within_days: int = BEHAVIOR_DAYS, **minilm: object
) -> BehaviorVectors:
    """Vectors of an ``identity_id, text`` frame (as ``behavior_texts(...).toPandas()``)."""
    ordered = texts.sort_values("identity_id", kind="stable")
    text_list = ordered["text"].astype(str).tolist()
    return BehaviorVectors(
        ids=ordered["identity_id"].astype(str).tolist(),
        texts=text_list,
        vectors=vectorize(text_list, vectorizer, **minilm),
        vectorizer=vectorizer,
        within_days=within_days,
    )


def assign_prototype(behavior: BehaviorVectors, segment: PrototypeSegment, **minilm: object) -> pd.DataFrame:
    """``identity_id, score`` of identities whose cosine to the prototype is >= its threshold."""
    if not behavior.ids:
        return pd.DataFrame({"identity_id": pd.Series(dtype=object), "score": pd.Series(dtype=float)})
    scores = behavior.scores(prototype_vector(segment, behavior.vectorizer, **minilm))
    keep = scores >= segment.threshold
    return pd.DataFrame(
        {"identity_id": np.asarray(behavior.ids, dtype=object)[keep], "score": scores[keep].astype(float)}
    )
