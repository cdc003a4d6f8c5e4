"""Probabilistic resolution of a frame of clean profiles: candidates, model, scores, clusters.

The stages are separate functions because the Dagster assets persist each one (candidate
pairs, the trained model, scored pairs) while ``idr resolve`` runs them back to back; both
paths therefore compute exactly the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from idr_pipeline.candidates.deterministic import deterministic_pairs
from idr_pipeline.candidates.minhash import BandChoice, choose_bands, lsh_candidates, profile_signatures
from idr_pipeline.identity.clustering import ClusteringPolicy, ClusteringResult, cluster_pairs
from idr_pipeline.matching.comparisons import compare, compare_with_tf, term_frequencies
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


@dataclass
class Candidates:
    pairs: pd.DataFrame  # record_id_l, record_id_r, generators (comma-separated)
    by_generator: dict[str, pd.DataFrame]
    band_choice: BandChoice
    stats: dict[str, int] = field(default_factory=dict)


def mask_shared_identifiers(profiles: pd.DataFrame, max_people: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Blank identifier values that several people carry, for comparison purposes only.

    A landline, a family e-mail or a home IP agreeing between two records says "same household",
    not "same person"; Segment-style per-identifier limits treat such values as non-identifying.
    Blanked values score as missing (weight 0) instead of as strong agreement. Returns the
    masked frame and a report of what was masked.
    """
    out = profiles.copy()
    first = out.get("first_name", pd.Series(index=out.index, dtype=object)).fillna("").str.lower().str[:2]
    report = []
    for key, columns in SHARED_IDENTIFIER_COLUMNS.items():
        if key not in out.columns:
            continue
        values = out[key]
        present = values.notna() & (first != "")
        people = pd.DataFrame({"v": values[present], "f": first[present]}).groupby("v")["f"].nunique()
        shared = set(people[people > max_people].index)
        if not shared:
            continue
        hit = values.isin(shared)
        for column in columns:
            if column in out.columns:
                out.loc[hit, column] = None
        report.append({"identifier": key, "shared_values": len(shared), "records_masked": int(hit.sum())})
    return out, pd.DataFrame(report, columns=["identifier", "shared_values", "records_masked"])


def generate_candidates(profiles: pd.DataFrame, config: MatchConfig = MatchConfig()) -> Candidates:
    """Exact-key rules (the recall) plus MinHash over all fields (the typo safety net).

    The rules carry nearly all pair completeness (0.96 at 10k and 100k generated people, see
    benchmarks/blocking_report.py); MinHash at a high threshold costs few pairs and catches
    near-duplicates whose every key has a typo. ``config.use_minhash=False`` drops it.
    """
    det = deterministic_pairs(profiles)
    choice = choose_bands(config.lsh_threshold, config.lsh_max_hashes)
    by_generator = {"deterministic": det.pairs[PAIR_KEYS]}
    stats: dict[str, int] = {}
    if config.use_minhash:
        signatures = profile_signatures(profiles, num_perm=choice.r * choice.b, seed=config.seed)
        lsh = lsh_candidates(profiles["record_id"], signatures, choice.r, choice.b, config.lsh_max_bucket)
        by_generator["minhash"] = lsh.pairs[PAIR_KEYS]
        stats |= {f"minhash_{k}": v for k, v in lsh.stats().items() if k != "pairs"}
    pairs = union_pairs(by_generator)
    stats |= {f"{name}_pairs": len(p) for name, p in by_generator.items()} | {"union_pairs": len(pairs)}
    stats |= {f"rule_{r.rule}_pairs": int(r.pairs) for r in det.counts.itertuples()}
    return Candidates(pairs=pairs, by_generator=by_generator, band_choice=choice, stats=stats)


def union_pairs(by_generator: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per pair with the generators that proposed it."""
    tagged = [p[PAIR_KEYS].assign(generator=name) for name, p in by_generator.items() if len(p)]
    if not tagged:
        return pd.DataFrame(columns=[*PAIR_KEYS, "generators"])
    return (
        pd.concat(tagged, ignore_index=True)
        .groupby(PAIR_KEYS, sort=True)["generator"]
        .agg(lambda g: ",".join(sorted(set(g))))
        .rename("generators")
        .reset_index()
    )


def _aligned(profiles: pd.DataFrame, pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    indexed = profiles.set_index("record_id", drop=False)
    left = indexed.loc[pairs["record_id_l"].to_numpy()].reset_index(drop=True)
    right = indexed.loc[pairs["record_id_r"].to_numpy()].reset_index(drop=True)
    return left, right


def random_pairs(profiles: pd.DataFrame, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Uniformly random record pairs: almost all non-matches, hence the u probabilities."""
    rng = np.random.default_rng(seed)
    size = len(profiles)
    if size < 2:
        empty = profiles.iloc[0:0].reset_index(drop=True)
        return empty, empty
    i = rng.integers(0, size, n)
    j = rng.integers(0, size, n)
    keep = i != j
    return profiles.iloc[i[keep]].reset_index(drop=True), profiles.iloc[j[keep]].reset_index(drop=True)


def train_model(
    profiles: pd.DataFrame, pairs: pd.DataFrame, config: MatchConfig = MatchConfig()
) -> MatchModel:
    """EM on (a sample of) the candidate pairs, u from random pairs; labels are never used."""
    sample = pairs
    if len(pairs) > config.em_max_pairs:
        sample = pairs.sample(config.em_max_pairs, random_state=config.seed)
    left, right = _aligned(profiles, sample)
    gamma = compare(left, right)
    rl, rr = random_pairs(profiles, config.random_pairs, config.seed)
    gamma_random = compare(rl, rr)
    return train(gamma, gamma_random, tf=term_frequencies(profiles))


def score_pairs(
    profiles: pd.DataFrame,
    pairs: pd.DataFrame,
    model: MatchModel,
    cosine: np.ndarray | None = None,
    chunk: int = 500_000,
) -> pd.DataFrame:
    """Probability per candidate pair plus its per-comparison weights (as JSON, for "why merged")."""
    parts = []
    for start in range(0, len(pairs), chunk):
        part = pairs.iloc[start : start + chunk].reset_index(drop=True)
        left, right = _aligned(profiles, part)
        part_cosine = None if cosine is None else np.asarray(cosine[start : start + chunk], dtype=float)
        gamma, tf = compare_with_tf(left, right, part_cosine)
        _, weights = score(model, gamma, tf)
        weights[HOUSEHOLD_COLUMN] = household_dependency(weights)
        total = prior_weight(model) + weights.sum(axis=1).to_numpy()
        probability = 1.0 / (1.0 + np.exp2(-np.clip(total, -1000, 1000)))
        out = part[PAIR_KEYS].copy()
        out["probability"] = probability
        out["weights"] = (
            weights.round(3).to_json(orient="records", lines=True).splitlines() if len(part) else []
        )
        parts.append(out)
    if not parts:
        return pd.DataFrame(columns=[*PAIR_KEYS, "probability", "weights"])
    return pd.concat(parts, ignore_index=True)


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


def cluster(
    profiles: pd.DataFrame, scored: pd.DataFrame, config: MatchConfig = MatchConfig()
) -> ClusteringResult:
    policy = ClusteringPolicy(
        threshold=config.threshold,
        min_avg_linkage=config.min_avg_linkage,
        max_cluster_size=config.max_cluster_size,
    )
    return cluster_pairs(profiles["record_id"].tolist(), scored, profiles, policy)
