"""Fellegi-Sunter model: EM recovers a known model, TF adjustment, scoring, explanations, JSON."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idr_pipeline.scoring.comparisons import Comparison
from idr_pipeline.scoring.fellegi_sunter import MatchModel, TrainingSession, estimate_u, explain, score, train

# A small known model: three comparisons with different level counts.
TRUE_COMPARISONS = [
    Comparison("first_name", ("else", "fuzzy", "exact"), {2: "first_name"}),
    Comparison("last_name", ("else", "fuzzy", "exact"), {2: "last_name"}),
    Comparison("dob", ("else", "partial", "exact")),
    Comparison("address", ("else", "city", "postcode", "street")),
]
TRUE_M = {
    "first_name": np.array([0.08, 0.12, 0.80]),
    "last_name": np.array([0.05, 0.15, 0.80]),
    "dob": np.array([0.05, 0.05, 0.90]),
    "address": np.array([0.15, 0.05, 0.10, 0.70]),
}
TRUE_U = {
    "first_name": np.array([0.95, 0.04, 0.01]),
    "last_name": np.array([0.97, 0.02, 0.01]),
    "dob": np.array([0.90, 0.098, 0.002]),
    "address": np.array([0.80, 0.15, 0.04, 0.01]),
}
MISSING_RATE = {"first_name": 0.05, "last_name": 0.02, "dob": 0.2, "address": 0.1}


def draw(n: int, prior: float, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """Gamma rows from the known model (independent levels given match status, some missing)."""
    is_match = rng.random(n) < prior
    out = {}
    for comparison in TRUE_COMPARISONS:
        name = comparison.name
        levels = np.where(
            is_match,
            rng.choice(comparison.n_levels, n, p=TRUE_M[name]),
            rng.choice(comparison.n_levels, n, p=TRUE_U[name]),
        )
        levels[rng.random(n) < MISSING_RATE[name]] = -1
        out[name] = levels.astype(np.int8)
    return pd.DataFrame(out), is_match


def test_estimate_u_is_smoothed_level_frequency() -> None:
    gamma = pd.DataFrame({"dob": np.array([0, 0, 0, 1, -1], dtype=np.int8)})
    u = estimate_u(gamma, [TRUE_COMPARISONS[2]], alpha=1.0)["dob"]
    assert u == pytest.approx(np.array([4, 2, 1]) / 7)


def test_em_recovers_known_model_on_unbiased_sample() -> None:
    rng = np.random.default_rng(7)
    candidates, _ = draw(60_000, 0.2, rng)
    random, _ = draw(200_000, 0.0, rng)
    model = train(candidates, random, sessions=None, comparisons=TRUE_COMPARISONS, max_iter=200, tol=1e-8)
    assert model.converged
    assert model.prior == pytest.approx(0.2, abs=0.01)
    for name, m in TRUE_M.items():
        np.testing.assert_allclose(model.m[name], m, atol=0.02, err_msg=name)
        np.testing.assert_allclose(model.u[name], TRUE_U[name], atol=0.005, err_msg=name)


def test_em_with_blocking_sessions_recovers_population_prior() -> None:
    """Candidates from blocking 'exact dob OR exact last name'; λ is for random pairs."""
    rng = np.random.default_rng(11)
    population, _ = draw(2_000_000, 0.005, rng)
    blocked = population[(population["dob"] == 2) | (population["last_name"] == 2)]
    random = population.sample(200_000, random_state=3)
    sessions = [TrainingSession("dob", (2,)), TrainingSession("last_name", (2,))]
    model = train(blocked, random, sessions=sessions, comparisons=TRUE_COMPARISONS, max_iter=200, tol=1e-8)
    assert model.prior == pytest.approx(0.005, rel=0.15)
    for name, m in TRUE_M.items():
        np.testing.assert_allclose(model.m[name], m, atol=0.03, err_msg=name)

    # and the naive alternative really is wrong: fixed random-pair u cannot explain blocked pairs
    naive = train(blocked, random, sessions=None, comparisons=TRUE_COMPARISONS, max_iter=200)
    assert naive.prior > 0.5


def trained_model() -> MatchModel:
    rng = np.random.default_rng(5)
    candidates, _ = draw(20_000, 0.3, rng)
    random, _ = draw(50_000, 0.0, rng)
    tf = {
        "last_name": pd.Series({"Smith": 0.05, "Zbikowski": 0.00001}),
        "first_name": pd.Series({"John": 0.03}),
    }
    return train(candidates, random, sessions=None, comparisons=TRUE_COMPARISONS, tf=tf, tf_min=1e-4)


def test_tf_adjustment_common_surname_weighs_less_than_rare() -> None:
    model = trained_model()
    gamma = pd.DataFrame([{"first_name": -1, "last_name": 2, "dob": -1, "address": -1}] * 4)
    tf_values = pd.DataFrame({"last_name": ["Smith", "Zbikowski", None, "Unseen"], "first_name": [None] * 4})
    probability, weights = score(model, gamma, tf_values)
    smith, rare, plain, unseen = weights["last_name"]
    assert smith < plain < rare
    assert smith == pytest.approx(np.log2(model.m["last_name"][2] / 0.05))
    # rarer than tf_min is floored: Zbikowski and an unseen value both score as tf_min
    assert rare == pytest.approx(unseen)
    assert rare == pytest.approx(np.log2(model.m["last_name"][2] / 1e-4))
    assert probability[0] < probability[2] < probability[1]


def test_score_is_monotonic_in_evidence() -> None:
    model = trained_model()
    base = {c.name: -1 for c in TRUE_COMPARISONS}
    rows = [dict(base)]
    for comparison in TRUE_COMPARISONS:
        for level in range(comparison.n_levels):
            rows.append({**base, comparison.name: level})
    probability, _ = score(model, pd.DataFrame(rows))
    nothing = probability[0]
    i = 1
    for comparison in TRUE_COMPARISONS:
        per_level = probability[i : i + comparison.n_levels]
        i += comparison.n_levels
        assert per_level[0] < nothing < per_level[-1], comparison.name
        assert np.all(np.diff(per_level) > 0), comparison.name  # this model's levels are ordered

    # adding agreeing comparisons one at a time only ever raises the probability
    cumulative = [dict(base)]
    for comparison in TRUE_COMPARISONS:
        cumulative.append({**cumulative[-1], comparison.name: comparison.n_levels - 1})
    probability, _ = score(model, pd.DataFrame(cumulative))
    assert np.all(np.diff(probability) > 0)
    assert probability[-1] > 0.99


def test_probability_is_posterior_from_prior_and_weights() -> None:
    model = trained_model()
    gamma = pd.DataFrame([{"first_name": 2, "last_name": 0, "dob": 1, "address": -1}])
    probability, weights = score(model, gamma)
    log_odds = np.log2(model.prior / (1 - model.prior)) + weights.iloc[0].sum()
    assert probability[0] == pytest.approx(1 / (1 + 2**-log_odds))
    assert weights.loc[0, "address"] == 0.0  # missing contributes nothing


def test_explain_matches_score() -> None:
    model = trained_model()
    row = {"first_name": 2, "last_name": 2, "dob": 0, "address": -1}
    tf_row = {"last_name": "Smith", "first_name": None}
    rows = explain(model, row, tf_row)
    assert [r["comparison"] for r in rows] == ["prior", "first_name", "last_name", "dob", "address"]
    assert rows[2]["level_label"] == "exact" and rows[4]["level_label"] == "missing"
    probability, _ = score(model, pd.DataFrame([row]), pd.DataFrame([tf_row]))
    total = sum(r["weight"] for r in rows)
    assert probability[0] == pytest.approx(1 / (1 + 2**-total))


def test_json_round_trip() -> None:
    model = trained_model()
    again = MatchModel.from_json(model.to_json())
    assert again.version == model.version
    assert again.prior == model.prior
    assert again.comparisons == model.comparisons
    for name in model.m:
        np.testing.assert_array_equal(again.m[name], model.m[name])
        np.testing.assert_array_equal(again.u[name], model.u[name])
    pd.testing.assert_frame_equal(again.summary_frame(), model.summary_frame())
    gamma, _ = draw(500, 0.3, np.random.default_rng(1))
    tf_values = pd.DataFrame({"last_name": ["Smith"] * 500, "first_name": ["John"] * 500})
    np.testing.assert_array_equal(score(again, gamma, tf_values)[0], score(model, gamma, tf_values)[0])


def test_summary_frame() -> None:
    summary = trained_model().summary_frame()
    assert list(summary.columns[:6]) == ["comparison", "level", "level_label", "m", "u", "weight"]
    assert len(summary) == sum(c.n_levels for c in TRUE_COMPARISONS)
    assert summary.groupby("comparison")["m"].sum().to_numpy() == pytest.approx(1.0)


def test_comparison_never_observed_has_zero_weight() -> None:
    rng = np.random.default_rng(2)
    candidates, _ = draw(5_000, 0.3, rng)
    candidates["dob"] = -1
    random, _ = draw(20_000, 0.0, rng)
    model = train(candidates, random, sessions=None, comparisons=TRUE_COMPARISONS)
    np.testing.assert_array_equal(model.weight_table("dob"), np.zeros(3))


def test_end_to_end_common_surname_scores_below_rare_surname() -> None:
    """compare_with_tf + term_frequencies + score on real profile columns."""
    from idr_pipeline.scoring.comparisons import COMPARISONS, compare_with_tf, term_frequencies

    profiles = pd.DataFrame({"last_name": ["Smith"] * 50 + [f"Rare{i}" for i in range(50)]})
    left = pd.DataFrame(
        [{"first_name": "Ann", "last_name": "Smith"}, {"first_name": "Ann", "last_name": "Rare7"}]
    )
    right = pd.DataFrame(
        [{"first_name": "Ann", "last_name": "Smith"}, {"first_name": "Ann", "last_name": "Rare7"}]
    )
    gamma, tf = compare_with_tf(left, right)
    model = MatchModel(
        comparisons=COMPARISONS,
        m={c.name: np.linspace(1, 3, c.n_levels) / np.linspace(1, 3, c.n_levels).sum() for c in COMPARISONS},
        u={c.name: np.full(c.n_levels, 1 / c.n_levels) for c in COMPARISONS},
        prior=0.01,
        tf=term_frequencies(profiles),
        tf_min=1e-3,
    )
    probability, weights = score(model, gamma, tf)
    assert weights.loc[0, "last_name"] < weights.loc[1, "last_name"]
    assert weights.loc[0, "first_name"] == weights.loc[1, "first_name"]
    assert probability[0] < probability[1]
