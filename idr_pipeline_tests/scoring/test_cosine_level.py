"""The embedding cosine as a comparison: weightless unless the model trains on the vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from idr_pipeline.candidates import chargram_embedding
from idr_pipeline.candidates.embedding import profile_text
from idr_pipeline.scoring.train import pair_cosines, train_on_positions
from idr_pipeline.settings import MatchConfig
from idr_pipeline.standardize.profiles import PROFILE_COLUMNS

FIRSTS = np.array(["ANNA", "BORIS", "CHEN", "DALIA", "EMEKA", "FARAH", "GORAN", "HILDE", "IVO", "JANA"])
LASTS = np.array(["NOVAK", "OKAFOR", "PETROV", "QUISPE", "ROSSI", "SATO", "TANAKA", "UMAR", "VARGA", "WEISS"])


def _two_records_per_person(people: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    rows = []
    for p in range(people):
        first, last = FIRSTS[p % 10], LASTS[(p // 10) % 10]
        street = f"{p + 1} {['HARBOUR', 'MILL', 'STATION'][p % 3]} ROAD"
        dob = f"19{40 + p % 60:02d}-{1 + p % 12:02d}-{1 + p % 28:02d}"
        for copy in range(2):
            typo = copy and rng.random() < 0.5
            rows.append(
                {"record_id": f"r{p:04d}-{copy}", "source": "crm", "first_name": first,
                 "last_name": last[:-1] + "X" if typo else last, "dob": dob, "street": street,
                 "city": "DUNMORE", "postcode": f"{3000 + p % 50}"}
            )  # fmt: skip
    frame = pd.DataFrame(rows)
    for c in PROFILE_COLUMNS:
        if c not in frame:
            frame[c] = None
    return frame[PROFILE_COLUMNS]


def test_pair_cosines_are_row_inner_products_and_nan_without_a_vector() -> None:
    vectors = np.array([[1, 0], [0.6, 0.8], [np.nan, np.nan]], dtype=np.float32)
    got = pair_cosines(vectors, np.array([0, 0, 2]), np.array([1, 0, 1]))
    np.testing.assert_allclose(got[:2], [0.6, 1.0], atol=1e-6)
    assert np.isnan(got[2])
    assert pair_cosines(None, np.array([0]), np.array([1])) is None


def test_the_cosine_comparison_weighs_only_when_trained_on_vectors() -> None:
    profiles = _two_records_per_person()
    # Candidates: every pair sharing a given name and a postcode (true pairs and strangers).
    keys = profiles["first_name"] + "|" + profiles["postcode"]
    positions = pd.Series(np.arange(len(profiles))).groupby(keys.to_numpy()).agg(list)
    pairs = np.array([(a, b) for group in positions for i, a in enumerate(group) for b in group[i + 1 :]])
    left, right = pairs[:, 0], pairs[:, 1]
    config = MatchConfig(random_pairs=5_000, workers=1, seed=3)
    vectors = chargram_embedding.encode(profile_text(profiles))

    without = train_on_positions(profiles, left, right, config)
    assert np.allclose(without.weight_table("embedding"), 0.0)
    trained = train_on_positions(profiles, left, right, config, vectors=vectors)
    weights = trained.weight_table("embedding")
    assert weights[-1] > 1.0 and weights[-1] > weights[0]  # a near-identical profile is evidence
