"""/resolve scores candidates as the batch does: same levels, weights, TF adjustment, household.

``Resolver`` compares the query once against every candidate in one frame and scores with
``CandidateScorer`` instead of the batch's ``compare_with_tf`` + ``score`` +
``household_dependency`` (too slow per request); these tests hold the two paths equal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idr_pipeline.api.resolve import CandidateScorer, Resolver, profile_frame
from idr_pipeline.scoring.comparisons import COMPARISONS, Sides, compare_sides_with_tf, compare_with_tf
from idr_pipeline.scoring.fellegi_sunter import MatchModel, prior_weight, score
from idr_pipeline.scoring.score import HOUSEHOLD_COLUMN, household_dependency
from idr_pipeline.store import open_store

QUERY = {
    "first_name": "bob", "last_name": "jones", "dob": "1975-06-07", "street": "2 oak ave",
    "city": "springfield", "postcode": "62702", "phone": "+14152000001", "email": "bob.jones@example.com",
}  # fmt: skip
CANDIDATES = [
    # exact on most fields (TF hits on names, city, postcode, dob)
    {"identity_id": "c1", "first_name": "bob", "last_name": "jones", "dob": "1975-06-07", "street": "2 oak ave",
     "city": "springfield", "postcode": "62702", "phone": "+14152000001"},
    # nickname, typo'd surname, same household (street, phone), different dob
    {"identity_id": "c2", "first_name": "Robert", "last_name": "Jones", "dob": "1950-01-01", "street": "2 Oak Ave",
     "city": "Springfield", "postcode": "62702", "phone": "+14152000001", "email": "rob.jones@example.com"},
    # values missing from the TF tables, suffix, transposed dob
    {"identity_id": "c3", "first_name": "bob", "last_name": "jones jr", "dob": "1975-07-06", "city": "Austin",
     "postcode": "73301"},
    # same postcode, another street
    {"identity_id": "c6", "first_name": "alice", "street": "9 elm st", "postcode": "62702"},
    # almost nothing
    {"identity_id": "c4", "last_name": "Smith"},
    # a value whose share is below tf_min, and swapped names
    {"identity_id": "c5", "first_name": "jones", "last_name": "bob", "dob": "1975-06-07", "city": "springfield"},
]  # fmt: skip


def tf_model(prior: float = 1e-3) -> MatchModel:
    """m rising and u falling with the level, and TF tables holding some values but not all."""
    m = {c.name: (w := 2.0 ** np.arange(c.n_levels)) / w.sum() for c in COMPARISONS}
    u = {c.name: (w := 2.0 ** -np.arange(c.n_levels, dtype=float) * 3) / w.sum() for c in COMPARISONS}
    tf = {
        "first_name": pd.Series({"bob": 0.02, "robert": 0.01}),
        "last_name": pd.Series({"jones": 0.015}),
        "city": pd.Series({"springfield": 1e-6}),  # below tf_min: tf_min is used
        "postcode": pd.Series({"62702": np.nan, "73301": 0.001}),  # NaN share: tf_min
        "dob": pd.Series({"1975-06-07": 0.0004}),
    }
    return MatchModel(comparisons=list(COMPARISONS), m=m, u=u, prior=prior, tf=tf, tf_min=1e-4)


def batch_scores(
    model: MatchModel, query: dict, rows: list[dict]
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Levels, total log2 odds and weights the way the batch computes them."""
    query_frame = profile_frame([{**query, "identity_id": "api-query", "identifiers": {}}])
    candidates = profile_frame(rows)
    left = pd.concat([query_frame] * len(candidates), ignore_index=True)
    gamma, tf = compare_with_tf(left, candidates)
    _, weights = score(model, gamma, tf)
    weights[HOUSEHOLD_COLUMN] = household_dependency(weights)
    return gamma, prior_weight(model) + weights.sum(axis=1).to_numpy(), weights


def test_one_frame_comparison_equals_the_aligned_one() -> None:
    query_frame = profile_frame([{**QUERY, "identity_id": "api-query", "identifiers": {}}])
    left = pd.concat([query_frame] * len(CANDIDATES), ignore_index=True)
    gamma, tf = compare_with_tf(left, profile_frame(CANDIDATES))
    frame = profile_frame([{**QUERY, "identity_id": "api-query", "identifiers": {}}, *CANDIDATES])
    n = len(CANDIDATES)
    fast_gamma, fast_tf = compare_sides_with_tf(
        Sides(frame, np.zeros(n, dtype=np.int64), np.arange(1, n + 1))
    )
    pd.testing.assert_frame_equal(fast_gamma, gamma)
    pd.testing.assert_frame_equal(fast_tf, tf)
    assert fast_tf["first_name"].tolist()[:2] == ["bob", None]


def test_scorer_equals_score_and_household_dependency() -> None:
    model = tf_model()
    gamma, total, weights = batch_scores(model, QUERY, CANDIDATES)
    frame = profile_frame([{**QUERY, "identity_id": "api-query", "identifiers": {}}, *CANDIDATES])
    n = len(CANDIDATES)
    fast_gamma, fast_tf = compare_sides_with_tf(
        Sides(frame, np.zeros(n, dtype=np.int64), np.arange(1, n + 1))
    )
    scorer = CandidateScorer(model)
    fast = scorer.weights(fast_gamma, fast_tf)
    expected = weights[[c.name for c in model.comparisons] + [HOUSEHOLD_COLUMN]].to_numpy()
    np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scorer.prior + fast.sum(axis=1), total, rtol=0, atol=1e-9)
    # the data reaches every TF level (a share in the table, one below tf_min, a NaN share, a
    # value not in the table) and the household correction
    for name, level in [("first_name", 6), ("last_name", 3), ("dob", 5), ("address", 2), ("address", 1)]:
        assert (gamma[name] == level).any(), (name, level)
    assert (fast[:, -1] < 0).any()


@pytest.mark.parametrize("threshold", [0.5, 0.999999])
def test_resolver_answers_as_the_batch_scores(tmp_path, threshold: float) -> None:
    model = tf_model(prior=1e-2)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    store.ensure_schema()
    store.upsert_identities(
        {"identity_id": r["identity_id"], "status": "active", "record_count": 1} for r in CANDIDATES
    )
    store.upsert_golden_profiles(
        {**r, "identifiers": {}, "sources": ["crm"], "record_count": 1} for r in CANDIDATES
    )
    # Margin 0: the best candidate always answers, so its score can be held against the batch's
    # (the ambiguous answer has its own tests in test_review.py).
    resolver = Resolver(model, threshold, "US", ambiguity_margin=0.0)
    resolver.refresh(store)
    query = {k: v for k, v in QUERY.items() if k not in ("phone", "email")}  # no deterministic hit
    result = resolver.resolve(store, query)
    normalized = result.normalized
    assert resolver.blocking is not None
    rows = store.select_rows("golden_profiles", {"identity_id": resolver.blocking.candidates(normalized)})
    _, total, weights = batch_scores(model, normalized, rows)
    probability = 1.0 / (1.0 + np.exp2(-total))
    best = int(np.argmax(probability))
    assert result.candidates_scored == len(rows)
    assert result.probability == pytest.approx(float(probability[best]), abs=1e-12)
    assert result.identity_id == (rows[best]["identity_id"] if probability[best] >= threshold else None)
    explained = {e["comparison"]: e["weight"] for e in result.explanation}
    for name in [c.name for c in model.comparisons] + [HOUSEHOLD_COLUMN]:
        assert explained[name] == round(float(weights[name].iloc[best]), 4), name
    store.close()
