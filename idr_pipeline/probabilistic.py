"""Probabilistic resolution of a frame of clean profiles: candidates, model, scores, clusters.

The stages are separate functions because the Dagster assets persist each one (candidate
pairs, the trained model, scored pairs) while ``idr resolve`` runs them back to back; both
paths therefore compute exactly the same thing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from idr_pipeline.candidates._buckets import (
    BucketStats,
    code_pairs_frame,
    frame_codes,
    record_ranks,
    sorted_unique,
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
from idr_pipeline.forked import Forked
from idr_pipeline.identity.clustering import (
    ClusteringPolicy,
    ClusteringResult,
    cluster_pairs,
    merge_clusterings,
)
from idr_pipeline.matching.comparisons import Sides, compare_sides, compare_sides_with_tf, term_frequencies
from idr_pipeline.matching.fellegi_sunter import MatchModel, prior_weight, score, train

PAIR_KEYS = ["record_id_l", "record_id_r"]
# Evidence a whole household shares: agreeing on all three is barely more likely for one person
# than agreeing on one, so together they count as much as the strongest of them.
HOUSEHOLD_COMPARISONS = ("address", "phone", "ip_address")
HOUSEHOLD_COLUMN = "household_dependency"
# Identifier columns whose values households share; see mask_shared_identifiers.
SHARED_IDENTIFIER_COLUMNS = {
    "email_key": ("email", "email_key"),
    "phone": ("phone",),
    "ip_address": ("ip_address",),
}


@dataclass(frozen=True)
class MatchConfig:
    threshold: float = 0.9
    min_avg_linkage: float = 0.8
    max_cluster_size: int = 50
    lsh_threshold: float = 0.6
    lsh_max_hashes: int = 128
    lsh_max_bucket: int = 200
    use_minhash: bool = True
    seed: int = 17
    random_pairs: int = 300_000
    em_max_pairs: int = 2_000_000
    # An identifier carried by more than this many distinct first names is a household value.
    max_people_per_identifier: int = 1
    # Processes for the pandas matching steps (see idr_pipeline.forked); 1 runs them inline.
    workers: int = 1


class PairsByGenerator(Mapping[str, pd.DataFrame]):
    """Each generator's own pairs (record_id_l, record_id_r), spelt out as ids only when read.

    ``idr resolve`` needs only their counts; the frames are for the blocking report. At a
    million records the deterministic and MinHash frames were 2-3 s of id strings nobody read.
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
    # since they go straight to Parquet (10M pairs as pandas strings took 4.7 s at 1M records)
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


def mask_shared_identifiers(profiles: pd.DataFrame, max_people: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Blank identifier values that several people carry, for comparison purposes only.

    A landline, a family e-mail or a home IP agreeing between two records says "same household",
    not "same person"; Segment-style per-identifier limits treat such values as non-identifying.
    Blanked values score as missing (weight 0) instead of as strong agreement. Returns the
    masked frame and a report of what was masked.
    """
    out = profiles.copy()
    first = out.get("first_name", pd.Series(index=out.index, dtype=object)).fillna("")
    # Who carries a value: the first two letters of the first name, as codes computed per distinct
    # name. Counting distinct (value, name) code pairs replaced a string group-by (1.6 s at 1M).
    name_codes, names = pd.factorize(first)
    prefixes = pd.Series(names, dtype=object).str.lower().str[:2].to_numpy(dtype=object)
    prefix_codes, prefix_values = pd.factorize(np.append(prefixes, ""))
    named = prefix_codes[:-1][name_codes]
    named_present = named != prefix_codes[-1]  # the empty prefix is no name
    report = []
    for key, columns in SHARED_IDENTIFIER_COLUMNS.items():
        if key not in out.columns:
            continue
        values = out[key]
        value_codes, uniques = pd.factorize(values)
        present = (value_codes >= 0) & named_present
        pairs = sorted_unique(value_codes[present].astype(np.int64) * len(prefix_values) + named[present])
        people = np.bincount(pairs // len(prefix_values), minlength=len(uniques))  # '' is always there
        shared = set(uniques[people > max_people])
        if not shared:
            continue
        hit = values.isin(shared)
        for column in columns:
            if column in out.columns:
                out.loc[hit, column] = None
        report.append({"identifier": key, "shared_values": len(shared), "records_masked": int(hit.sum())})
    return out, pd.DataFrame(report, columns=["identifier", "shared_values", "records_masked"])


def generate_candidates(
    profiles: pd.DataFrame,
    config: MatchConfig = MatchConfig(),
    extra: dict[str, pd.DataFrame] | None = None,
) -> Candidates:
    """Exact-key rules (the recall) plus MinHash over all fields (the typo safety net).

    The rules carry nearly all pair completeness (0.96 at 10k and 100k generated people, see
    benchmarks/blocking_report.py); MinHash at a high threshold costs few pairs and catches
    near-duplicates whose every key has a typo. ``config.use_minhash=False`` drops it.
    ``extra`` adds pairs found elsewhere (the Faiss neighbours) to the one union.
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

    Only the sample is spelt out as ids: the pool holds every training-only pair as well as the
    scored ones, which at a million records is millions of pairs nobody else reads.
    """
    pool, _ = union_codes(codes)
    rows = em_sample_rows(len(pool), config)
    chosen = pool if rows is None else pool[rows]
    return code_pairs_frame(chosen, ids_by_rank), len(pool)


def _union_in_rank_space(codes: dict[str, np.ndarray], ids_by_rank: np.ndarray) -> pa.Table:
    """`union_pairs` over integer pair codes, spelt out by Arrow: the generators' pairs are never
    re-hashed as text, and the ids are taken from one Arrow array of the record ids."""
    names = sorted(codes)
    union, bits = union_codes([codes[name] for name in names])
    n = max(len(ids_by_rank), 1)
    ids = pa.array(ids_by_rank, type=pa.string())
    # The bit sets are small integers (below 2 ** generators): counted, not sorted as
    # np.unique(return_inverse=True) would, which took 2.2 s over the 1M run's 10.9M pairs.
    counts = np.bincount(bits)
    sets = np.flatnonzero(counts)
    which = np.zeros(len(counts), dtype=np.int64)
    which[sets] = np.arange(len(sets))
    spelt = pa.array(
        [",".join(name for i, name in enumerate(names) if int(b) >> i & 1) for b in sets], type=pa.string()
    )
    return pa.table(
        {
            "record_id_l": ids.take(pa.array(union // n)),
            "record_id_r": ids.take(pa.array(union % n)),
            "generators": spelt.take(pa.array(which[bits])),
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


def random_positions(size: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of up to ``n`` uniformly random pairs of two different rows."""
    if size < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, size, n)
    j = rng.integers(0, size, n)
    keep = i != j
    return i[keep], j[keep]


def em_sample_rows(n_pairs: int, config: MatchConfig = MatchConfig()) -> np.ndarray | None:
    """Rows of the candidate pairs that EM trains on; None for all of them. They are the rows
    ``DataFrame.sample(config.em_max_pairs, random_state=config.seed)`` picked when the pairs
    were pandas, so the pairs can stay Arrow and the trained model is unchanged."""
    if n_pairs <= config.em_max_pairs:
        return None
    return np.random.RandomState(config.seed).choice(n_pairs, size=config.em_max_pairs, replace=False)


# Below this many EM pairs a fork costs more than the comparing it would share.
FORK_MIN_TRAINING_PAIRS = 200_000
CACHE_FILL_PAIRS = 10_000


def train_on_positions(
    profiles: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    config: MatchConfig = MatchConfig(),
    cache: dict | None = None,
) -> MatchModel:
    """EM on candidate pairs given as row positions into ``profiles``, u from random pairs;
    labels are never used. ``cache``: a ``Sides`` cache of these profiles to fill or reuse."""
    gamma, gamma_random = training_comparisons(profiles, left, right, config, cache)
    return train(gamma, gamma_random, tf=term_frequencies(profiles))


def training_comparisons(
    profiles: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    config: MatchConfig = MatchConfig(),
    cache: dict | None = None,
    fork_min_pairs: int = FORK_MIN_TRAINING_PAIRS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(comparison levels of the EM pairs, of ``config.random_pairs`` random pairs).

    Comparing is per pair, so with ``config.workers`` > 1 and at least ``fork_min_pairs`` EM
    pairs a forked child compares the tail of them while this process compares the rest and
    the random pairs (an even split of the work). A first slice fills the factorised-column
    cache the child then inherits. The frames are the same either way.
    """
    frame = profiles.reset_index(drop=True)
    cache = {} if cache is None else cache
    random_left, random_right = random_positions(len(profiles), config.random_pairs, config.seed)

    def gamma_of(lo: np.ndarray, hi: np.ndarray) -> pd.DataFrame:
        return compare_sides(Sides(frame, lo, hi, cache))

    if config.workers <= 1 or len(left) < max(fork_min_pairs, 2):
        return gamma_of(left, right), gamma_of(random_left, random_right)
    first = min(CACHE_FILL_PAIRS, len(left) // 4)
    split = max(first, (len(left) - len(random_left)) // 2)
    head = gamma_of(left[:first], right[:first])
    child = Forked(lambda: gamma_of(left[split:], right[split:]))
    try:
        middle = gamma_of(left[first:split], right[first:split])
        gamma_random = gamma_of(random_left, random_right)
        return pd.concat([head, middle, child.result()], ignore_index=True), gamma_random
    finally:
        child.cancel()


WEIGHT_PREFIX = "w_"


def weight_names(model: MatchModel) -> list[str]:
    """The ``w_<comparison>`` columns that scoring gives every pair, in order."""
    return [WEIGHT_PREFIX + c for c in [*(c.name for c in model.comparisons), HOUSEHOLD_COLUMN]]


def score_position_chunks(
    profiles: pd.DataFrame,
    left_pos: np.ndarray,
    right_pos: np.ndarray,
    model: MatchModel,
    cosine: np.ndarray | None = None,
    chunk: int = 500_000,
    workers: int = 1,
    cache: dict | None = None,
) -> Iterator[pd.DataFrame]:
    """Probability and ``w_<comparison>`` weights of the pairs of rows ``left_pos[i]``,
    ``right_pos[i]`` of ``profiles``, in chunks; the caller brings the pairs' ids (the batch
    keeps them as Arrow strings: a million records' candidate ids as Python strings were GBs).

    With ``workers`` > 1 a forked child scores the second half of the chunks while this process
    scores (and the caller writes) the first; the chunks come out in the same order either way.
    ``cache``: a ``Sides`` cache of these profiles to fill or reuse.
    """
    frame = profiles.reset_index(drop=True)
    # The profiles' factorised columns, shared by every chunk (and by training, when given).
    cache = {} if cache is None else cache

    def scored(start: int) -> pd.DataFrame:
        stop = start + chunk
        sides = Sides(frame, left_pos[start:stop], right_pos[start:stop], cache)
        part_cosine = None if cosine is None else np.asarray(cosine[start:stop], dtype=float)
        gamma, tf = compare_sides_with_tf(sides, part_cosine)
        _, weights = score(model, gamma, tf)
        weights[HOUSEHOLD_COLUMN] = household_dependency(weights)
        total = prior_weight(model) + np.nansum(weights.to_numpy(dtype=np.float64), axis=1)
        out = pd.DataFrame({"probability": 1.0 / (1.0 + np.exp2(-np.clip(total, -1000, 1000)))})
        for name in weights.columns:
            out[WEIGHT_PREFIX + name] = weights[name].to_numpy(dtype=np.float32)
        return out

    starts = list(range(0, len(left_pos), chunk))
    if workers <= 1 or len(starts) < 3:
        yield from (scored(start) for start in starts)
        return
    # The first chunk fills the factorised-column cache, which the child then inherits.
    yield scored(starts[0])
    half = (len(starts) + 1) // 2
    child = Forked(lambda: [scored(start) for start in starts[half:]])
    try:
        for start in starts[1:half]:
            yield scored(start)
        yield from child.result()
    finally:
        child.cancel()


def arrow_positions(
    record_ids: pd.Series, left: pa.ChunkedArray, right: pa.ChunkedArray
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in ``record_ids`` of each pair's two records, for pair ids held as Arrow
    strings: Arrow hashes its contiguous buffers, where a pandas index chases one Python object
    per id (6.6 s for the unsorted right-hand ids of 17.9M candidate pairs, against 3.6 s through
    Arrow even after converting them). Both sides go through one lookup, so the record ids are
    hashed once (scored pairs at a million: 2.6-2.7 -> 1.7-2.3 s). An id that is not a record is
    an error."""
    value_set = pa.array(record_ids.to_numpy(dtype=object), pa.string())
    sides = pa.chunked_array([*left.chunks, *right.chunks], type=pa.string())
    pos = pc.index_in(sides, value_set=value_set)
    if pos.null_count:
        unknown = pc.filter(sides, pc.is_null(pos)).slice(0, 3).to_pylist()
        raise KeyError(f"pairs name records that are not in the profiles, e.g. {unknown}")
    both = pos.to_numpy().astype(np.int64)
    return both[: len(left)], both[len(left) :]


def weight_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(WEIGHT_PREFIX)]


def weights_json(frame: pd.DataFrame) -> list[str]:
    """One JSON object of rounded weights per row (comparison -> log2 Bayes factor)."""
    columns = weight_columns(frame)
    if not len(frame):
        return []
    named = frame[columns].astype(np.float64).round(3)
    named.columns = [c[len(WEIGHT_PREFIX) :] for c in columns]
    return named.to_json(orient="records", lines=True).splitlines()


def household_dependency(weights: pd.DataFrame) -> pd.Series:
    """The correction that makes agreeing household evidence count once (a non-positive weight).

    Fellegi-Sunter assumes comparisons independent given match status; address, landline and
    home IP are not, among non-matches, because family members share all three. Without this,
    two relatives with nothing personal in common score as a near-certain match.
    """
    columns = [c for c in HOUSEHOLD_COMPARISONS if c in weights.columns]
    if not columns:
        return pd.Series(0.0, index=weights.index)
    positive = weights[columns].clip(lower=0)
    return -(positive.sum(axis=1) - positive.max(axis=1))


def policy_of(config: MatchConfig) -> ClusteringPolicy:
    return ClusteringPolicy(
        threshold=config.threshold,
        min_avg_linkage=config.min_avg_linkage,
        max_cluster_size=config.max_cluster_size,
    )


def cluster(
    profiles: pd.DataFrame,
    scored: pd.DataFrame,
    config: MatchConfig = MatchConfig(),
    part: np.ndarray | None = None,
) -> ClusteringResult:
    """``cluster_pairs`` with this config. ``part`` (bool per row of ``scored``, one value for
    all the rows of a strong component; see ``strong_components``) lets a forked child cluster
    the rows marked True while this process clusters the rest: components never interact, so
    ``merge_clusterings`` gives the same result as one call."""
    record_ids = profiles["record_id"].tolist()
    policy = policy_of(config)
    if part is None or config.workers <= 1 or part.all() or not part.any():
        return cluster_pairs(record_ids, scored, profiles, policy)
    unknown = pd.Index(pd.unique(scored[PAIR_KEYS].to_numpy().ravel())).difference(pd.Index(record_ids))
    if len(unknown):
        raise ValueError(f"pairs name records that are not among the record ids, e.g. {list(unknown[:3])}")

    def clustered(rows: pd.DataFrame, slim: bool) -> ClusteringResult:
        ids = pd.unique(rows[PAIR_KEYS].to_numpy().ravel())
        result = cluster_pairs(ids, rows, profiles, policy)
        if slim:  # only what travels back: the records that joined someone
            result = replace(result, labels={k: v for k, v in result.labels.items() if k != v})
        return result

    theirs = Forked(lambda: clustered(scored[part], slim=True))
    try:
        mine = clustered(scored[~part], slim=False)
        return merge_clusterings(record_ids, [mine, theirs.result()])
    finally:
        theirs.cancel()
