"""Training the Fellegi-Sunter model without labels: EM on candidate pairs, u from random pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idr_pipeline.candidates.steps import row_cosines
from idr_pipeline.core.forked import Forked
from idr_pipeline.scoring.comparisons import Sides, compare_sides, term_frequencies
from idr_pipeline.scoring.fellegi_sunter import MatchModel, train
from idr_pipeline.settings import MatchConfig


def random_positions(size: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of up to ``n`` uniformly random pairs of two different rows."""
    if size < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, size, n)
    j = rng.integers(0, size, n)
    keep = i != j
    return i[keep], j[keep]


# Below this many EM pairs a fork costs more than the comparing it would share.
FORK_MIN_TRAINING_PAIRS = 200_000


CACHE_FILL_PAIRS = 10_000


def pair_cosines(vectors: np.ndarray | None, left: np.ndarray, right: np.ndarray) -> np.ndarray | None:
    """Inner product of unit rows ``left[i]`` and ``right[i]`` of ``vectors`` (NaN where a row is
    NaN, i.e. the record has no embedding); None without vectors."""
    return None if vectors is None else row_cosines(vectors, left, right)


def train_on_positions(
    profiles: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    config: MatchConfig = MatchConfig(),
    cache: dict | None = None,
    vectors: np.ndarray | None = None,
) -> MatchModel:
    """EM on candidate pairs given as row positions into ``profiles``, u from random pairs;
    labels are never used. ``cache``: a ``Sides`` cache of these profiles to fill or reuse.
    ``vectors``: one embedding row per profile row (NaN rows for records without one), for the
    embedding comparison; without them that comparison is missing and weighs nothing."""
    gamma, gamma_random = training_comparisons(profiles, left, right, config, cache, vectors=vectors)
    return train(gamma, gamma_random, tf=term_frequencies(profiles))


def training_comparisons(
    profiles: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    config: MatchConfig = MatchConfig(),
    cache: dict | None = None,
    fork_min_pairs: int = FORK_MIN_TRAINING_PAIRS,
    vectors: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(comparison levels of the EM pairs, of ``config.random_pairs`` random pairs).

    Comparing is per pair, so with ``config.workers`` > 1 and at least ``fork_min_pairs`` EM
    pairs a forked child compares the tail of them while this process compares the rest and
    the random pairs (an even split of the work). A first slice fills the factorized-column
    cache the child then inherits. The frames are the same either way.
    """
    frame = profiles.reset_index(drop=True)
    cache = {} if cache is None else cache
    random_left, random_right = random_positions(len(profiles), config.random_pairs, config.seed)

    def gamma_of(lo: np.ndarray, hi: np.ndarray) -> pd.DataFrame:
        return compare_sides(Sides(frame, lo, hi, cache), pair_cosines(vectors, lo, hi))

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
