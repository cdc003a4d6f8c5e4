"""Household guards: shared identifiers are masked, household evidence counts once, and a family
e-mail cannot chain two people's identities together."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from idr_pipeline.settings import MatchConfig


def test_reusing_profiles_reads_each_version_once_and_hands_out_copies(tmp_path, spark, monkeypatch):
    from idr_pipeline.core.catalog import CLEAN
    from idr_pipeline.core.lake import Lake
    from idr_pipeline.scoring.steps import comparison_cache, read_masked_profiles
    from idr_pipeline.standardize.profiles import PROFILE_COLUMNS, read_profiles, reusing_profiles

    lake = Lake((tmp_path / "lake").as_uri(), spark)

    def write(first_names: list[str]) -> None:
        rows = {c: [None] * len(first_names) for c in PROFILE_COLUMNS}
        rows |= {
            "record_id": [f"r{i}" for i in range(len(first_names))],
            "first_name": first_names,
            "phone": ["+14155552671"] * len(first_names),  # shared by everyone: masked
        }
        schema = pa.schema([(c, pa.string()) for c in PROFILE_COLUMNS])
        lake.write_pandas_version(pd.DataFrame(rows), *CLEAN, schema=schema)

    reads = []
    real_read = Lake.read_latest_arrow
    # A spy, not a stand-in: every read still goes to the lake on disk.
    monkeypatch.setattr(
        Lake, "read_latest_arrow", lambda self, *a, **k: reads.append(a) or real_read(self, *a, **k)
    )
    write(["ANN", "BOB"])
    config = MatchConfig()
    with reusing_profiles():
        first = read_profiles(lake)
        first.loc[0, "first_name"] = "EDITED"
        second = read_profiles(lake)
        masked = read_masked_profiles(lake, config)
        read_masked_profiles(lake, config)
        assert len(reads) == 1
        assert comparison_cache(lake, config) is comparison_cache(lake, config)
        assert second["first_name"].tolist() == ["ANN", "BOB"]
        assert masked["phone"].isna().all() and second["phone"].notna().all()
        write(["CY"])  # a new version is read afresh
        assert read_profiles(lake)["first_name"].tolist() == ["CY"]
        assert len(reads) == 2
    read_profiles(lake)
    read_profiles(lake)
    assert len(reads) == 4  # outside the block nothing is kept
    assert comparison_cache(lake, config) is not comparison_cache(lake, config)


def test_reading_some_profile_columns_gives_the_same_rows_in_the_same_order(tmp_path, spark):
    """Clustering reads only the columns its guards need; the rows, their order and which copy
    of a duplicated record id is kept must be those of the full read."""
    from idr_pipeline.core.catalog import CLEAN
    from idr_pipeline.core.lake import Lake
    from idr_pipeline.graph.clustering import CLUSTERING_COLUMNS
    from idr_pipeline.standardize.profiles import PROFILE_COLUMNS, read_profiles

    rng = np.random.default_rng(11)
    ids = [f"r{i:03d}" for i in rng.integers(0, 150, 300)]  # shuffled, with repeats
    profiles = pd.DataFrame({c: [None] * len(ids) for c in PROFILE_COLUMNS})
    profiles["record_id"] = ids
    profiles["first_name"] = [f"N{k}" for k in range(len(ids))]  # tells the copies apart
    profiles["dob"] = [f"1980-01-{1 + k % 28:02d}" for k in range(len(ids))]
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    lake.write_pandas_version(profiles, *CLEAN, schema=pa.schema([(c, pa.string()) for c in PROFILE_COLUMNS]))

    full = read_profiles(lake)
    some = read_profiles(lake, CLUSTERING_COLUMNS)
    assert list(some.columns) == CLUSTERING_COLUMNS
    assert full["record_id"].is_monotonic_increasing and full["record_id"].is_unique
    pd.testing.assert_frame_equal(some, full[CLUSTERING_COLUMNS])
    first_copy = profiles.drop_duplicates("record_id").set_index("record_id")["first_name"]
    assert some.set_index("record_id")["first_name"].equals(first_copy.loc[some["record_id"]])
