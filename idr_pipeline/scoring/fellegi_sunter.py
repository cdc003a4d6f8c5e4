"""Fellegi-Sunter match model: m/u per comparison level, EM without labels, scoring and explanations.

u (how often a level occurs between two *different* people) is measured directly on random
record pairs, which are almost all non-matches; only m and the prior λ are left to EM on the
candidate pairs. Fixing u anchors the non-match component, which is what keeps unsupervised EM
from drifting into "same household vs not" instead of "same person vs not".

Weights are log2 Bayes factors, so a pair's evidence is a sum that can be read and charted per
comparison; the posterior is calibrated through λ (the share of candidate pairs that match),
not an arbitrary score.

EM runs on distinct gamma patterns with counts: a few million candidate pairs typically collapse
to a few thousand patterns, so each iteration is cheap and the result is identical.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from idr_pipeline.scoring.comparisons import COMPARISONS, Comparison

MODEL_FORMAT = 1
_M_FLOOR = 1e-6  # a level never seen among matches is strong, not infinite, evidence against


@dataclass
class MatchModel:
    """Parameters of a trained model; everything scoring needs, JSON-serializable."""

    comparisons: list[Comparison]
    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    prior: float
    tf: dict[str, pd.Series] = field(default_factory=dict)
    tf_min: float = 1e-4
    version: str = ""
    iterations: int = 0
    converged: bool = False

    def __post_init__(self) -> None:
        if not self.version:
            self.version = self._fingerprint()

    def _fingerprint(self) -> str:
        """Content hash of the parameters, so a scored pair can name the exact model that scored it."""
        payload = json.dumps(
            {
                "m": {k: np.round(v, 10).tolist() for k, v in self.m.items()},
                "u": {k: np.round(v, 10).tolist() for k, v in self.u.items()},
                "prior": round(self.prior, 12),
                "tf_min": self.tf_min,
                "levels": [c.to_dict() for c in self.comparisons],
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def weight_table(self, name: str) -> np.ndarray:
        """log2(m/u) per level of one comparison."""
        return np.log2(self.m[name] / self.u[name])

    def summary_frame(self) -> pd.DataFrame:
        """One row per comparison level (comparison, level, level_label, m, u, weight) for charts."""
        rows = []
        for comparison in self.comparisons:
            weights = self.weight_table(comparison.name)
            for level, label in enumerate(comparison.levels):
                rows.append(
                    {
                        "comparison": comparison.name,
                        "level": level,
                        "level_label": label,
                        "m": float(self.m[comparison.name][level]),
                        "u": float(self.u[comparison.name][level]),
                        "weight": float(weights[level]),
                        "tf_adjusted": level in comparison.tf_levels,
                    }
                )
        return pd.DataFrame(rows)

    def to_json(self) -> str:
        """Values rarer than tf_min are dropped from the TF tables: they score as tf_min anyway."""
        return json.dumps(
            {
                "format": MODEL_FORMAT,
                "version": self.version,
                "prior": self.prior,
                "tf_min": self.tf_min,
                "iterations": self.iterations,
                "converged": self.converged,
                "comparisons": [c.to_dict() for c in self.comparisons],
                "m": {k: v.tolist() for k, v in self.m.items()},
                "u": {k: v.tolist() for k, v in self.u.items()},
                "tf": {
                    column: {str(k): float(v) for k, v in table[table > self.tf_min].items()}
                    for column, table in self.tf.items()
                },
            }
        )

    @classmethod
    def from_json(cls, text: str) -> MatchModel:
        data = json.loads(text)
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"unsupported model format {data.get('format')!r}")
        return cls(
            comparisons=[Comparison.from_dict(c) for c in data["comparisons"]],
            m={k: np.asarray(v, dtype=np.float64) for k, v in data["m"].items()},
            u={k: np.asarray(v, dtype=np.float64) for k, v in data["u"].items()},
            prior=float(data["prior"]),
            tf={k: pd.Series(v, dtype=np.float64) for k, v in data["tf"].items()},
            tf_min=float(data["tf_min"]),
            version=data["version"],
            iterations=int(data["iterations"]),
            converged=bool(data["converged"]),
        )


def _comparisons_for(gamma: pd.DataFrame, comparisons: Sequence[Comparison] | None) -> list[Comparison]:
    if comparisons is None:
        comparisons = [c for c in COMPARISONS if c.name in gamma.columns]
    missing = [c.name for c in comparisons if c.name not in gamma.columns]
    if missing:
        raise ValueError(f"gamma has no column for {missing}")
    return list(comparisons)


def _level_counts(levels: np.ndarray, n_levels: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted count per level, missing (-1) ignored."""
    levels = np.asarray(levels, dtype=np.int64)
    if levels.size and (levels.max() >= n_levels or levels.min() < -1):
        raise ValueError(f"levels outside -1..{n_levels - 1}")
    return np.bincount(levels + 1, weights=weights, minlength=n_levels + 1)[1:]


def estimate_u(
    random_gamma: pd.DataFrame, comparisons: Sequence[Comparison] | None = None, alpha: float = 1.0
) -> dict[str, np.ndarray]:
    """u per level: level frequencies among random pairs, Laplace-smoothed.

    Random pairs are non-matches except for a negligible share (about 1/N), so their level
    frequencies estimate u directly; smoothing keeps levels never seen at random (exact
    national id) finite and strongly positive rather than infinite.
    """
    comparisons = _comparisons_for(random_gamma, comparisons)
    out = {}
    for comparison in comparisons:
        counts = _level_counts(random_gamma[comparison.name].to_numpy(), comparison.n_levels)
        out[comparison.name] = (counts + alpha) / (counts.sum() + alpha * comparison.n_levels)
    return out


def _default_m(n_levels: int) -> np.ndarray:
    """m rising with agreement (∝ 2^level), so EM starts from 'matches agree'."""
    m = 2.0 ** np.arange(n_levels)
    return m / m.sum()


def _log_table(p: np.ndarray) -> np.ndarray:
    """log(p) per level with a leading 0 for missing, indexed by level + 1."""
    return np.concatenate([[0.0], np.log(p)])


def _trained_m(expected: np.ndarray, u: np.ndarray) -> np.ndarray:
    """m per level from the expected match counts of one EM step.

    A level no pair of the sample shows cannot be estimated from it: it gets m = u, evidence
    neither for nor against, and the observed levels share the rest of the mass. A floor
    near 0 would make an agreement the sample happened not to contain into crushing evidence
    against a match.
    """
    seen = expected > 0
    out = np.array(u, dtype=np.float64, copy=True)
    unseen_mass = float(out[~seen].sum())
    out[seen] = expected[seen] / expected[seen].sum() * (1.0 - unseen_mass)
    out = np.maximum(out, _M_FLOOR)
    return out / out.sum()


@dataclass(frozen=True)
class TrainingSession:
    """The candidate pairs produced by one blocking rule, described as levels of comparisons.

    Blocked pairs are not random: every pair from 'same postcode' agrees on postcode, so with u
    fixed from random pairs the non-match class cannot explain them and EM collapses to λ = 1.
    Within the pairs of one rule, the rule's own comparisons are left out (their m comes from
    the other sessions) and the remaining comparisons behave as in the population. The session
    must select *every* pair meeting the condition, i.e. the condition must be one of the
    blocking rules (or imply one: exact surname implies same surname soundex). ``also`` adds
    conditions on further comparisons, all of which a pair must meet.
    """

    comparison: str
    levels: tuple[int, ...]
    also: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def conditions(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return ((self.comparison, self.levels), *self.also)

    def covers(self, comparison: str) -> bool:
        return any(name == comparison for name, _ in self.conditions)


# Each condition implies one of candidates.deterministic.DEFAULT_RULES, so every pair meeting
# it is a candidate: exact dob -> "dob", same street and postcode -> "street", exact given name
# and surname -> "full_name", exact e-mail key / phone / national id / device id -> the
# identifier rules. Surname alone and postcode alone are not blocking keys (far too many
# pairs), so they are not sessions.
DEFAULT_SESSIONS: tuple[TrainingSession, ...] = (
    TrainingSession("dob", (5,)),
    TrainingSession("address", (5,)),
    TrainingSession("first_name", (6,), also=(("last_name", (3,)),)),
    TrainingSession("email", (4,)),
    TrainingSession("phone", (2,)),
    TrainingSession("national_id", (2,)),
    TrainingSession("device_id", (1,)),
)


@dataclass
class _EmResult:
    m: dict[str, np.ndarray]
    prior: float
    expected_matches: dict[str, float]
    iterations: int
    converged: bool
    u: dict[str, np.ndarray]


def _em(
    matrix: np.ndarray,
    comparisons: list[Comparison],
    m: dict[str, np.ndarray],
    u: dict[str, np.ndarray],
    prior: float,
    max_iter: int,
    tol: float,
    fix_u: bool,
    fix_prior: bool = False,
) -> _EmResult:
    """EM on a gamma matrix (columns in `comparisons` order) over distinct patterns with counts;
    with ``fix_prior`` the match share stays ``prior`` and only m (and u) are estimated."""
    names = [c.name for c in comparisons]
    m = {k: v.copy() for k, v in m.items()}
    u = {k: v.copy() for k, v in u.items()}
    radix = np.array([c.n_levels + 1 for c in comparisons], dtype=np.int64)
    if np.prod(radix.astype(float)) < 2**62:
        keys = (matrix + 1) @ np.cumprod(np.concatenate([[1], radix[:-1]]))
        _, first, counts = np.unique(keys, return_index=True, return_counts=True)
        patterns = matrix[first]
    else:
        patterns, counts = np.unique(matrix, axis=0, return_counts=True)
    counts = counts.astype(np.float64)
    total = counts.sum()
    converged = False
    iteration = 0
    expected: dict[str, float] = {}
    for iteration in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        log_m = np.zeros(len(patterns))
        log_u = np.zeros(len(patterns))
        for k, name in enumerate(names):
            log_m += _log_table(m[name])[patterns[:, k] + 1]
            log_u += _log_table(u[name])[patterns[:, k] + 1]
        log_odds = np.log(prior) - np.log1p(-prior) + log_m - log_u
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))

        new_prior = (
            prior if fix_prior else float(np.clip((counts * posterior).sum() / total, 1e-12, 1 - 1e-12))
        )
        change = abs(new_prior - prior)
        for k, comparison in enumerate(comparisons):
            name = comparison.name
            weighted = _level_counts(patterns[:, k], comparison.n_levels, counts * posterior)
            expected[name] = float(weighted.sum())
            if weighted.sum() > 0:
                new_m = _trained_m(weighted, u[name])
                change = max(change, float(np.abs(new_m - m[name]).max()))
                m[name] = new_m
            if not fix_u:
                weighted_u = _level_counts(patterns[:, k], comparison.n_levels, counts * (1 - posterior))
                if weighted_u.sum() > 0:
                    new_u = np.maximum(weighted_u / weighted_u.sum(), _M_FLOOR)
                    u[name] = new_u / new_u.sum()
        prior = new_prior
        if change < tol:
            converged = True
            break
    return _EmResult(m, prior, expected, iteration, converged, u)


def _exact_at_least_as_strong(
    m: dict[str, np.ndarray], u: dict[str, np.ndarray], comparisons: list[Comparison]
) -> None:
    """Exact agreement is never weaker evidence than a partial agreement of the same comparison.

    EM sessions condition on some comparisons agreeing exactly, and when one record's errors
    avoid each other (a duplicate with exactly one mistyped field), the pairs of such a session
    show the other comparisons mistyped far more often than matches do at large: m of "exact"
    comes out near zero and an exact birth date would count against a match. Where the exact
    level's weight falls below a partial level's (before "exact" in the level order, "else"
    aside), its m is raised to match the strongest partial level, and the levels renormalized.
    """
    for comparison in comparisons:
        if "exact" not in comparison.levels:
            continue
        exact = comparison.levels.index("exact")
        name = comparison.name
        partial = range(1, exact)
        if not len(partial):
            continue
        ratios = m[name] / u[name]
        best = max(ratios[level] for level in partial)
        if ratios[exact] >= best:
            continue
        raised = m[name].copy()
        raised[exact] = best * u[name][exact]
        m[name] = raised / raised.sum()


def _neutralise_unobserved(
    m: dict[str, np.ndarray], u: dict[str, np.ndarray], names: list[str], matrix: np.ndarray
) -> None:
    """A comparison never observed on candidates (no e-mails in FEBRL) keeps m = u: weight 0.

    Otherwise its m would stay at the initial guess and show up in charts as invented evidence.
    """
    for k, name in enumerate(names):
        if not (matrix[:, k] >= 0).any():
            m[name] = u[name].copy()


def train(
    gamma_candidates: pd.DataFrame,
    gamma_random: pd.DataFrame,
    max_iter: int = 50,
    tol: float = 1e-6,
    fix_u: bool = True,
    *,
    sessions: Sequence[TrainingSession] | None = DEFAULT_SESSIONS,
    comparisons: Sequence[Comparison] | None = None,
    tf: Mapping[str, pd.Series] | None = None,
    tf_min: float = 1e-4,
    prior_init: float = 0.1,
    m_init: Mapping[str, np.ndarray] | None = None,
    u_alpha: float = 1.0,
    min_session_pairs: int = 20,
) -> MatchModel:
    """EM for m and λ with u fixed from random pairs; no labels.

    With sessions (the default), EM runs once per blocking condition on the candidate pairs
    meeting it, with that condition's comparisons left out; m per comparison is the average over
    the sessions that saw it, weighted by their expected matches, and λ is the probability that
    two *random* records match, λ_s · u(condition) / m(condition), median over sessions. Scoring
    candidate pairs with that λ and all comparisons is the population posterior, which is what
    a blocked pair's match probability is, since blocking only looks at the compared values.

    `sessions=None` runs one EM over all given pairs with every comparison and λ = their match
    share: right when the gammas are an unbiased sample (all pairs, or synthetic data).
    Missing levels (-1) contribute nothing. `fix_u=False` also re-estimates u from the
    non-match posterior (textbook EM), less stable when candidates are near-duplicates.
    """
    comparisons = _comparisons_for(gamma_candidates, comparisons)
    names = [c.name for c in comparisons]
    u = estimate_u(gamma_random, comparisons, alpha=u_alpha)
    m0 = {
        c.name: np.asarray(m_init[c.name], dtype=np.float64)
        if m_init and c.name in m_init
        else _default_m(c.n_levels)
        for c in comparisons
    }
    matrix = gamma_candidates[names].to_numpy(dtype=np.int64)

    usable = []
    for session in sessions or ():
        if not all(name in names for name, _ in session.conditions):
            continue
        columns = [names.index(name) for name, _ in session.conditions]
        mask = np.logical_and.reduce(
            [
                np.isin(matrix[:, column], levels)
                for column, (_, levels) in zip(columns, session.conditions, strict=True)
            ]
        )
        if mask.sum() >= min_session_pairs:
            usable.append((session, columns, mask))

    if not usable:
        result = _em(matrix, comparisons, m0, u, prior_init, max_iter, tol, fix_u)
        _exact_at_least_as_strong(result.m, result.u, comparisons)
        _neutralise_unobserved(result.m, result.u, names, matrix)
        return MatchModel(
            comparisons=comparisons,
            m=result.m,
            u=result.u,
            prior=result.prior,
            tf=dict(tf or {}),
            tf_min=tf_min,
            iterations=result.iterations,
            converged=result.converged,
        )

    results = []
    for _session, columns, mask in usable:
        sub = matrix[mask].copy()
        sub[:, columns] = -1  # the blocking comparisons say nothing inside their own block
        results.append(_em(sub, comparisons, m0, u, prior_init, max_iter, tol, fix_u=True))

    m: dict[str, np.ndarray] = {}
    for comparison in comparisons:
        name = comparison.name
        pieces = [
            (r.m[name], r.expected_matches.get(name, 0.0))
            for (session, _, _), r in zip(usable, results, strict=True)
            if not session.covers(name) and r.expected_matches.get(name, 0.0) > 0
        ]
        total_weight = sum(w for _, w in pieces)
        m[name] = sum(p * w for p, w in pieces) / total_weight if total_weight > 0 else m0[name]

    priors = []
    for (session, _, _), result in zip(usable, results, strict=True):
        m_cond = float(np.prod([m[name][list(levels)].sum() for name, levels in session.conditions]))
        u_cond = float(np.prod([u[name][list(levels)].sum() for name, levels in session.conditions]))
        if m_cond > 1e-3:
            priors.append(np.log(result.prior) + np.log(u_cond) - np.log(m_cond))
    prior = float(np.exp(np.median(priors))) if priors else float(np.mean([r.prior for r in results]))
    _exact_at_least_as_strong(m, u, comparisons)
    _neutralise_unobserved(m, u, names, matrix)
    return MatchModel(
        comparisons=comparisons,
        m=m,
        u=u,
        prior=min(prior, 0.5),
        tf=dict(tf or {}),
        tf_min=tf_min,
        iterations=max(r.iterations for r in results),
        converged=all(r.converged for r in results),
    )


def _weights(model: MatchModel, gamma: pd.DataFrame, tf_values: pd.DataFrame | None) -> pd.DataFrame:
    out = {}
    for comparison in model.comparisons:
        name = comparison.name
        levels = gamma[name].to_numpy(dtype=np.int64)
        table = np.concatenate([[0.0], model.weight_table(name)])
        weight = table[levels + 1]
        if tf_values is not None and name in tf_values.columns and comparison.tf_levels:
            values = tf_values[name].reset_index(drop=True)
            for level, column in comparison.tf_levels.items():
                hit = (levels == level) & values.notna().to_numpy()
                if not hit.any():
                    continue
                frequency = values[hit].map(model.tf.get(column, pd.Series(dtype=np.float64)))
                u_tf = np.maximum(frequency.fillna(model.tf_min).to_numpy(dtype=np.float64), model.tf_min)
                weight[hit] = np.log2(model.m[name][level] / u_tf)
        out[name] = weight
    return pd.DataFrame(out)


def prior_weight(model: MatchModel) -> float:
    """log2 prior odds λ/(1-λ): the starting point every pair's evidence is added to."""
    return float(np.log2(model.prior / (1.0 - model.prior)))


def score(
    model: MatchModel, gamma: pd.DataFrame, tf_values: pd.DataFrame | None = None
) -> tuple[np.ndarray, pd.DataFrame]:
    """Posterior match probability per pair and the per-comparison log2 Bayes factors behind it.

    For a TF level with a known value v, u is replaced by max(tf(v), tf_min): agreeing on a
    value that one customer in ten has is weaker evidence than agreeing on one in a million.
    Values missing from the TF table are treated as rare (tf_min).
    """
    gamma = gamma.reset_index(drop=True)
    weights = _weights(model, gamma, tf_values)
    total = prior_weight(model) + weights.sum(axis=1).to_numpy()
    probability = 1.0 / (1.0 + np.exp2(-np.clip(total, -1000, 1000)))
    return probability, weights


def explain(
    model: MatchModel, gamma_row: Mapping[str, int] | pd.Series, tf_row: Mapping[str, object] | None = None
) -> list[dict]:
    """Waterfall of one pair: the prior, then each comparison's level label and weight.

    The first entry is the prior (comparison 'prior'); the weights sum to the pair's log2 odds.
    """
    gamma = pd.DataFrame([{c.name: int(gamma_row[c.name]) for c in model.comparisons}])
    tf_frame = None
    if tf_row is not None:
        tf_frame = pd.DataFrame([{k: tf_row.get(k) for k in tf_row.keys()}], dtype=object)
    weights = _weights(model, gamma, tf_frame).iloc[0]
    rows = [{"comparison": "prior", "level_label": f"λ = {model.prior:.3g}", "weight": prior_weight(model)}]
    for comparison in model.comparisons:
        level = int(gamma.iloc[0][comparison.name])
        label = "missing" if level < 0 else comparison.levels[level]
        rows.append(
            {"comparison": comparison.name, "level_label": label, "weight": float(weights[comparison.name])}
        )
    return rows
