"""Household guards: shared identifiers are masked, household evidence counts once, and a family
e-mail cannot chain two people's identities together."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from idr_pipeline.settings import MatchConfig


def test_the_trained_model_does_not_depend_on_the_profiles_file_order(tmp_path, spark):
    """EM and u sample pairs by position; the profiles are read in record id order, so a lake
    written in another order (another Spark partitioning, say) trains the same model."""
    from idr_pipeline.candidates.steps import run_candidates
    from idr_pipeline.core.catalog import CLEAN
    from idr_pipeline.core.lake import Lake
    from idr_pipeline.scoring.steps import read_model, run_match_model
    from idr_pipeline.standardize.profiles import PROFILE_COLUMNS

    rng = np.random.default_rng(3)
    people = rng.integers(0, 150, 500)
    firsts = np.array(["ANN", "BOB", "CY", "DAN", "EVE", "FAY", "GUS", "HAL", "IDA", "JO"])
    lasts = np.array(["SMITH", "JONES", "BROWN", "TAYLOR", "WILSON", "DAVIES", "EVANS", "KING"])
    profiles = pd.DataFrame({c: [None] * len(people) for c in PROFILE_COLUMNS})
    profiles["record_id"] = [f"r{i:04d}" for i in range(len(people))]
    profiles["source"] = "crm"
    profiles["first_name"] = firsts[people % len(firsts)]
    profiles["last_name"] = lasts[(people // len(firsts)) % len(lasts)]
    profiles["dob"] = [f"19{50 + p % 40}-0{1 + p % 9}-1{p % 10}" for p in people]
    profiles["email"] = profiles["email_key"] = [
        f"p{p}@example.com" if keep else None
        for p, keep in zip(people, rng.random(len(people)) < 0.5, strict=True)
    ]
    schema = pa.schema([(c, pa.string()) for c in PROFILE_COLUMNS])
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    config = MatchConfig(random_pairs=2_000, em_max_pairs=300, seed=5)
    models = []
    for order in (np.arange(len(people)), rng.permutation(len(people))):
        lake.write_pandas_version(profiles.iloc[order].reset_index(drop=True), *CLEAN, schema=schema)
        run_candidates(spark, lake, str(tmp_path / "no-index"), config)
        run_match_model(spark, lake, config)
        models.append(read_model(lake).to_json())
    assert models[0] == models[1]
