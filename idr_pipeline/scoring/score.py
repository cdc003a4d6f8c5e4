"""Match probability and per-comparison weights of candidate pairs under a trained model."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from idr_pipeline.core.forked import Forked
from idr_pipeline.scoring.comparisons import (
    DEVICE_ID,
    DOB,
    EMAIL,
    FIRST_NAME,
    NATIONAL_ID,
    PHONE,
    Comparison,
    Sides,
    compare_sides_with_tf,
)
from idr_pipeline.scoring.fellegi_sunter import MatchModel, prior_weight, score

# Evidence a whole household shares: agreeing on all three is barely more likely for one person
# than agreeing on one, so together they count as much as the strongest of them.
HOUSEHOLD_COMPARISONS = ("address", "phone", "ip_address")


HOUSEHOLD_COLUMN = "household_dependency"
#: Comparisons of what one person has and a household does not share. Identifier values that
#: several people carry are masked before scoring (``scoring.masking``), so an e-mail, phone or
#: device that still agrees here is a personal one.
PERSON_COMPARISONS = ("first_name", "name_suffix", "dob", "national_id", "email", "phone", "device_id")
PERSON_WEIGHT = "person_weight"
PERSON_EVIDENCE = "person_evidence"

WEIGHT_PREFIX = "w_"


def _from(comparison: Comparison, label: str) -> int:
    """The level of ``label`` in ``comparison``: levels are ordered, so "at least this" is ``>=``."""
    return comparison.levels.index(label)


# Given names that agree as one person's would: a close spelling, a nickname, exact or swapped.
_SAME_GIVEN_NAME = _from(FIRST_NAME, "jaro-winkler >= 0.92")
# Birth dates that are one date, allowing the slips of data entry.
_SAME_BIRTHDAY = _from(DOB, "one character typo")


def person_evidence(gamma: pd.DataFrame) -> np.ndarray:
    """Per pair: does it carry person-level evidence, the kind that may join two groups of records
    into one identity? A given name with a date of birth, a national id (up to a typo), or an
    e-mail, device or phone (with the given name) that is personal by the data."""
    first = gamma["first_name"].to_numpy()
    same_given = first >= _SAME_GIVEN_NAME
    evidence = same_given & (gamma["dob"].to_numpy() >= _SAME_BIRTHDAY)
    evidence |= gamma["national_id"].to_numpy() >= _from(NATIONAL_ID, "one edit")
    evidence |= gamma["email"].to_numpy() == _from(EMAIL, "exact email key")
    evidence |= gamma["device_id"].to_numpy() == _from(DEVICE_ID, "exact")
    evidence |= same_given & (gamma["phone"].to_numpy() == _from(PHONE, "exact"))
    return evidence


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
    """Probability, ``w_<comparison>`` weights, the person-level weight (the sum of the
    :data:`PERSON_COMPARISONS` weights) and :func:`person_evidence` of the pairs of rows
    ``left_pos[i]``, ``right_pos[i]`` of ``profiles``, in chunks; the caller brings the pairs' ids (the batch
    keeps them as Arrow strings, since a Python string per candidate id is slow and large).

    With ``workers`` > 1 a forked child scores the second half of the chunks while this process
    scores (and the caller writes) the first; the chunks come out in the same order either way.
    ``cache``: a ``Sides`` cache of these profiles to fill or reuse.
    """
    frame = profiles.reset_index(drop=True)
    # The profiles' factorized columns, shared by every chunk (and by training, when given).
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
        person = [c for c in PERSON_COMPARISONS if c in weights.columns]
        out[PERSON_WEIGHT] = np.nansum(weights[person].to_numpy(dtype=np.float64), axis=1).astype(np.float32)
        out[PERSON_EVIDENCE] = person_evidence(gamma)
        return out

    starts = list(range(0, len(left_pos), chunk))
    if workers <= 1 or len(starts) < 3:
        yield from (scored(start) for start in starts)
        return
    # The first chunk fills the factorized-column cache, which the child then inherits.
    yield scored(starts[0])
    half = (len(starts) + 1) // 2
    child = Forked(lambda: [scored(start) for start in starts[half:]])
    try:
        for start in starts[1:half]:
            yield scored(start)
        yield from child.result()
    finally:
        child.cancel()


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
