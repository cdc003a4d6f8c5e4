"""Candidate pairs from every generator, as one union: the blocking rules (the recall), MinHash-LSH
over all fields (the typo safety net), the embedding neighbors of the records those two leave
without a candidate, and any extra pairs, plus the EM training sample drawn from them. Pure
functions over a frame of clean profiles.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from idr_pipeline.candidates.buckets import (
    BucketStats,
    code_pairs_frame,
    frame_codes,
    record_ranks,
    union_codes,
)
from idr_pipeline.candidates.deterministic import deterministic_pairs
from idr_pipeline.candidates.minhash import (
    BandChoice,
    choose_bands,
    lsh_codes,
    lsh_result,
    profile_signatures,
)
from idr_pipeline.core.forked import Forked
from idr_pipeline.core.schema import PAIR_KEYS
from idr_pipeline.settings import MatchConfig

#: Embedding neighbors as candidate pairs (record_id_l < record_id_r, cosine) of the given record
#: ids, or of every record for None.
NeighborSearch = Callable[[Sequence[str] | None], pd.DataFrame]


class PairsByGenerator(Mapping[str, pd.DataFrame]):
    """Each generator's own pairs (record_id_l, record_id_r), spelled out as ids only when read.

    ``idr resolve`` needs only their counts; the frames are for the blocking report, and
    spelling millions of pairs out as id strings is work nobody else needs.
    """

    def __init__(self) -> None:
        self._sizes: dict[str, int] = {}
        self._build: dict[str, Callable[[], pd.DataFrame]] = {}
        self._built: dict[str, pd.DataFrame] = {}

    def add(self, name: str, size: int, build: Callable[[], pd.DataFrame]) -> None:
        self._sizes[name], self._build[name] = size, build

    def size(self, name: str) -> int:
        return self._sizes[name]

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._built:
            self._built[name] = self._build[name]()[PAIR_KEYS]
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sizes)

    def __len__(self) -> int:
        return len(self._sizes)


@dataclass
class Candidates:
    # record_id_l, record_id_r, generators (comma-separated): the pairs to score, as Arrow,
    # since they go straight to Parquet (millions of pairs as pandas strings are slow and large)
    table: pa.Table
    by_generator: PairsByGenerator
    band_choice: BandChoice
    stats: dict[str, int] = field(default_factory=dict)
    # record_id_l, record_id_r: the EM sample, drawn from the scored pairs and the pairs of the
    # training-only rules together (see BlockingRule.predicts)
    training: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIR_KEYS))

    @functools.cached_property
    def pairs(self) -> pd.DataFrame:
        """``table`` as pandas, for callers that read the pairs rather than store them."""
        return self.table.to_pandas()


def generate_candidates(
    profiles: pd.DataFrame,
    config: MatchConfig = MatchConfig(),
    extra: dict[str, pd.DataFrame] | None = None,
    neighbors: NeighborSearch | None = None,
) -> Candidates:
    """Exact-key rules (the recall), MinHash over all fields (the typo safety net) and embedding
    neighbors.

    The rules carry nearly all pair completeness (``benchmarks/blocking_report.py`` measures it,
    docs/performance.md has the figures); MinHash at a high threshold costs few pairs and catches
    near-duplicates whose every key has a typo. ``config.use_minhash=False`` drops it.
    ``neighbors`` searches the embedding index: with ``config.embed_neighbors`` "orphans" only
    for the records the rules and MinHash left without any candidate pair (the generator
    ``embedding``), with "all" for every record, with "none" not at all.
    ``extra`` adds pairs found elsewhere to the one union.
    """
    choice = choose_bands(config.lsh_threshold, config.lsh_max_hashes)
    # MinHash needs nothing from the rules, so it runs beside them in a second process.
    minhash = (
        Forked(lambda: _minhash_codes(profiles, choice, config), fork=config.workers > 1)
        if config.use_minhash
        else None
    )
    try:
        det = deterministic_pairs(profiles)
    except BaseException:
        if minhash is not None:
            minhash.cancel()
        raise
    by_generator = PairsByGenerator()
    by_generator.add("deterministic", len(det.codes), lambda: det.pairs)
    stats: dict[str, int] = {}
    if minhash is not None:
        lsh = lsh_result(*minhash.result(), det.ids_by_rank)
        by_generator.add("minhash", len(lsh.codes), lambda: lsh.pairs)
        stats |= {f"minhash_{k}": v for k, v in lsh.stats().items() if k != "pairs"}
    codes = {"deterministic": det.codes}
    if config.use_minhash:
        codes["minhash"] = lsh.codes
    if neighbors is not None and config.embed_neighbors != "none":
        queries = (
            None if config.embed_neighbors == "all" else orphan_ids(list(codes.values()), det.ids_by_rank)
        )
        found = neighbors(queries) if queries is None or len(queries) else _no_pairs()
        by_generator.add("embedding", len(found), lambda found=found: found)
        codes["embedding"] = frame_codes(found, det.ids_by_rank)
        stats["embedding_queries"] = len(det.ids_by_rank) if queries is None else len(queries)
    for name, frame in (extra or {}).items():
        by_generator.add(name, len(frame), lambda frame=frame: frame)
        codes[name] = frame_codes(frame, det.ids_by_rank)
    table = _union_in_rank_space(codes, det.ids_by_rank)
    training, pool = em_sample_pairs(
        [det.training_codes, *(c for name, c in codes.items() if name != "deterministic")],
        det.ids_by_rank,
        config,
    )
    stats |= {f"{name}_pairs": by_generator.size(name) for name in by_generator} | {
        "union_pairs": table.num_rows
    }
    stats |= {f"rule_{r.rule}_pairs": int(r.pairs) for r in det.counts.itertuples()}
    stats |= {"training_pool_pairs": pool, "training_pairs": len(training)}
    return Candidates(
        table=table, by_generator=by_generator, band_choice=choice, stats=stats, training=training
    )


def orphan_ids(codes: list[np.ndarray], ids_by_rank: np.ndarray) -> list[str]:
    """The record ids (in rank order) that appear in none of the pair codes."""
    n = max(len(ids_by_rank), 1)
    paired = np.zeros(len(ids_by_rank), dtype=bool)
    for c in codes:
        paired[c // n] = True
        paired[c % n] = True
    return ids_by_rank[~paired].astype(str).tolist()


def _no_pairs() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in PAIR_KEYS})


def _minhash_codes(
    profiles: pd.DataFrame, choice: BandChoice, config: MatchConfig
) -> tuple[np.ndarray, list[BucketStats], int]:
    """MinHash-LSH pairs as codes over ``record_ranks`` (the ranks ``deterministic_pairs`` uses)."""
    signatures = profile_signatures(profiles, num_perm=choice.r * choice.b, seed=config.seed)
    ranks, _ = record_ranks(profiles["record_id"])
    return lsh_codes(ranks, signatures, choice.r, choice.b, config.lsh_max_bucket)


def em_sample_pairs(
    codes: list[np.ndarray], ids_by_rank: np.ndarray, config: MatchConfig
) -> tuple[pd.DataFrame, int]:
    """(the EM sample of the union of ``codes`` as record-id pairs, the union's size).

    Only the sample is spelled out as ids: the pool holds every training-only pair as well as the
    scored ones, which on a large run is millions of pairs nobody else reads.
    """
    pool, _ = union_codes(codes)
    rows = em_sample_rows(len(pool), config)
    chosen = pool if rows is None else pool[rows]
    return code_pairs_frame(chosen, ids_by_rank), len(pool)


def _union_in_rank_space(codes: dict[str, np.ndarray], ids_by_rank: np.ndarray) -> pa.Table:
    """`union_pairs` over integer pair codes, spelled out by Arrow: the generators' pairs are never
    re-hashed as text, and the ids are taken from one Arrow array of the record ids."""
    names = sorted(codes)
    union, bits = union_codes([codes[name] for name in names])
    n = max(len(ids_by_rank), 1)
    ids = pa.array(ids_by_rank, type=pa.string())
    # The bit sets are small integers (below 2 ** generators): counted in one pass, not sorted
    # as np.unique(return_inverse=True) would.
    counts = np.bincount(bits)
    sets = np.flatnonzero(counts)
    which = np.zeros(len(counts), dtype=np.int64)
    which[sets] = np.arange(len(sets))
    spelled = pa.array(
        [",".join(name for i, name in enumerate(names) if int(b) >> i & 1) for b in sets], type=pa.string()
    )
    return pa.table(
        {
            "record_id_l": ids.take(pa.array(union // n)),
            "record_id_r": ids.take(pa.array(union % n)),
            "generators": spelled.take(pa.array(which[bits])),
        }
    )


def union_pairs(by_generator: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per pair, sorted, with the generators that proposed it (comma-separated)."""
    frames = {name: p[PAIR_KEYS] for name, p in by_generator.items() if len(p)}
    if not frames:
        return pd.DataFrame(columns=[*PAIR_KEYS, "generators"])
    ids = pd.unique(np.concatenate([f[c].to_numpy(dtype=object) for f in frames.values() for c in PAIR_KEYS]))
    _, ids_by_rank = record_ranks(ids)
    return _union_in_rank_space(
        {n: frame_codes(f, ids_by_rank) for n, f in frames.items()}, ids_by_rank
    ).to_pandas()


def em_sample_rows(n_pairs: int, config: MatchConfig = MatchConfig()) -> np.ndarray | None:
    """Rows of the candidate pairs that EM trains on; None for all of them. They are the rows
    ``DataFrame.sample(config.em_max_pairs, random_state=config.seed)`` picked when the pairs
    were pandas, so the pairs can stay Arrow and the trained model is unchanged."""
    if n_pairs <= config.em_max_pairs:
        return None
    return np.random.RandomState(config.seed).choice(n_pairs, size=config.em_max_pairs, replace=False)
