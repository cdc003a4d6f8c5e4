"""Household guards: shared identifiers are masked, household evidence counts once, and a family
e-mail cannot chain two people's identities together."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from idr_pipeline.identity.clustering import REFUSED_WEAK_BRIDGE
from idr_pipeline.probabilistic import (
    HOUSEHOLD_COLUMN,
    MatchConfig,
    arrow_positions,
    cluster,
    em_sample_rows,
    household_dependency,
    mask_shared_identifiers,
    union_pairs,
)

HOUSEHOLD = pd.DataFrame(
    [
        # Ann's two records and Bob's two records; they share landline, address and a family e-mail.
        ("a1", "Ann", "Lee", "1980-02-03", "+14155550100", "lees@example.com", "lees@example.com"),
        ("a2", "Ann", "Lee", "1980-02-03", "+14155550100", "ann.lee@example.com", "annlee@example.com"),
        ("b1", "Bob", "Lee", "1975-07-09", "+14155550100", "lees@example.com", "lees@example.com"),
        ("b2", "Bob", "Lee", "1975-07-09", None, "bob@example.com", "bob@example.com"),
    ],
    columns=["record_id", "first_name", "last_name", "dob", "phone", "email", "email_key"],
).assign(national_id=None, ip_address=None)


def test_identifiers_shared_by_several_people_are_masked():
    masked, report = mask_shared_identifiers(HOUSEHOLD, max_people=1)
    assert masked.phone.isna().all()  # Ann and Bob both carry the landline
    assert masked.set_index("record_id").loc[["a1", "b1"], "email_key"].isna().all()
    assert masked.set_index("record_id").loc["b2", "email_key"] == "bob@example.com"
    assert set(report.identifier) == {"email_key", "phone"}


def test_household_evidence_counts_once():
    weights = pd.DataFrame(
        {"address": [12.0, 12.0], "phone": [13.0, -2.0], "ip_address": [11.0, 0.0], "first_name": [-4.0, 6.0]}
    )
    correction = household_dependency(weights)
    assert correction.tolist() == [pytest.approx(-23.0), pytest.approx(0.0)]
    assert HOUSEHOLD_COLUMN == "household_dependency"


def test_a_family_email_link_does_not_chain_two_people():
    scored = pd.DataFrame(
        [("a1", "a2", 0.999), ("b1", "b2", 0.999), ("a1", "b1", 0.97)],
        columns=["record_id_l", "record_id_r", "probability"],
    )
    result = cluster(HOUSEHOLD, scored, MatchConfig())
    assert result.labels["a1"] == result.labels["a2"] != result.labels["b1"] == result.labels["b2"]
    # The two groups are joined by one pair out of four: average linkage 0.24, under 0.8.
    assert result.refused_counts() == {REFUSED_WEAK_BRIDGE: 1}


def test_union_pairs_tags_every_generator():
    out = union_pairs(
        {
            "deterministic": pd.DataFrame({"record_id_l": ["a", "a"], "record_id_r": ["b", "c"]}),
            "minhash": pd.DataFrame({"record_id_l": ["a"], "record_id_r": ["b"]}),
        }
    )
    assert out.to_dict("records") == [
        {"record_id_l": "a", "record_id_r": "b", "generators": "deterministic,minhash"},
        {"record_id_l": "a", "record_id_r": "c", "generators": "deterministic"},
    ]


@given(
    pairs=st.dictionaries(
        st.sampled_from(["deterministic", "minhash", "embedding"]),
        st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)).filter(lambda p: p[0] < p[1]), max_size=12),
    )
)
def test_union_pairs_names_each_pair_with_the_generators_that_proposed_it(pairs: dict) -> None:
    out = union_pairs(
        {
            name: pd.DataFrame(
                {"record_id_l": [f"r{a}" for a, _ in found], "record_id_r": [f"r{b}" for _, b in found]},
                dtype=object,
            )
            for name, found in pairs.items()
        }
    )
    want: dict[tuple[str, str], set[str]] = {}
    for name, found in pairs.items():
        for a, b in found:
            want.setdefault((f"r{a}", f"r{b}"), set()).add(name)
    got = {(r.record_id_l, r.record_id_r): r.generators for r in out.itertuples()}
    assert got == {pair: ",".join(sorted(names)) for pair, names in want.items()}
    assert len(out) == len(got)


def test_deterministic_links_join_the_scored_pairs():
    from idr_pipeline.matching_pipeline import link_positions

    scored = pd.DataFrame(
        {
            "record_id_l": ["a", "a", "c"],
            "record_id_r": ["b", "c", "d"],
            "probability": [0.3, 0.95, 0.2],
        }
    )
    edges = pd.DataFrame(
        [
            ("b", "a", "email_key"),
            ("a", "b", "national_id"),
            ("d", "e", "device_id"),  # not scored: becomes a pair of its own
            ("c", "d", "phone"),  # Ann and Bob: a household line, not a link
            ("a", "e", "phone"),  # two records of Ann
            ("a", "c", "ip_address"),  # not a personal identifier
        ],
        columns=["src", "dst", "id_type"],
    )
    profiles = pd.DataFrame({"record_id": list("abcde"), "first_name": ["Ann", None, "Ann", "Bob", "ann"]})
    position = pd.Index(profiles["record_id"])
    links = link_positions(
        position.get_indexer(scored["record_id_l"]),
        position.get_indexer(scored["record_id_r"]),
        scored["probability"].to_numpy(),
        (position.get_indexer(edges["src"]), position.get_indexer(edges["dst"]), edges["id_type"].to_numpy()),
        profiles,
    )
    out = links.frame(np.arange(len(links.probability)), profiles["record_id"].to_numpy(dtype=object))
    rows = {
        (r.record_id_l, r.record_id_r): (
            r.probability,
            r.id_type,
            None if pd.isna(r.scored_row) else r.scored_row,
        )
        for r in out.itertuples()
    }
    assert rows == {
        ("a", "b"): (1.0, "email_key,national_id", 0),
        ("a", "c"): (0.95, None, 1),
        ("c", "d"): (0.2, None, 2),
        ("d", "e"): (1.0, "device_id", None),
        ("a", "e"): (1.0, "phone", None),
    }


def test_arrow_positions_are_row_positions_and_refuse_unknown_records():
    profiles = pd.DataFrame({"record_id": ["r3", "r1", "r2"]}, index=[10, 11, 12])
    pairs = pd.DataFrame({"record_id_l": ["r1", "r3", "r2"], "record_id_r": ["r2", "r1", "r3"]})
    left, right = arrow_positions(
        profiles["record_id"],
        pa.chunked_array([["r1"], ["r3", "r2"]]),  # several chunks, as a dataset read gives
        pa.chunked_array([pairs["record_id_r"].tolist()]),
    )
    assert left.tolist() == [1, 0, 2] and right.tolist() == [2, 1, 0]
    assert left.dtype == np.int64
    with pytest.raises(KeyError, match="r9"):
        arrow_positions(profiles["record_id"], pa.chunked_array([["r1"]]), pa.chunked_array([["r9"]]))


def test_em_sample_rows_are_the_rows_pandas_sample_picks():
    """The EM sample is drawn by position so the pairs can stay Arrow; it must be the sample the
    pandas path drew, or the trained model (and every score) would change."""
    config = MatchConfig(em_max_pairs=50, seed=5)
    pairs = pd.DataFrame({"n": np.arange(400)})
    assert em_sample_rows(50, config) is None
    rows = em_sample_rows(len(pairs), config)
    assert rows.tolist() == pairs.sample(config.em_max_pairs, random_state=config.seed)["n"].tolist()


def test_reusing_profiles_reads_each_version_once_and_hands_out_copies(tmp_path, spark, monkeypatch):
    from idr_pipeline.lake import Lake
    from idr_pipeline.matching_pipeline import (
        PROFILE_COLUMNS,
        comparison_cache,
        read_masked_profiles,
        read_profiles,
        reusing_profiles,
    )
    from idr_pipeline.pipeline import CLEAN

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


def test_the_trained_model_does_not_depend_on_the_profiles_file_order(tmp_path, spark):
    """EM and u sample pairs by position; the profiles are read in record id order, so a lake
    written in another order (another Spark partitioning, say) trains the same model."""
    from idr_pipeline.lake import Lake
    from idr_pipeline.matching_pipeline import PROFILE_COLUMNS, read_model, run_candidates, run_match_model
    from idr_pipeline.pipeline import CLEAN

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


def test_reading_some_profile_columns_gives_the_same_rows_in_the_same_order(tmp_path, spark):
    """Clustering reads only the columns its guards need; the rows, their order and which copy
    of a duplicated record id is kept must be those of the full read."""
    from idr_pipeline.identity.clustering import CLUSTERING_COLUMNS
    from idr_pipeline.lake import Lake
    from idr_pipeline.matching_pipeline import PROFILE_COLUMNS, read_profiles
    from idr_pipeline.pipeline import CLEAN

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


def _links_by_ids(edges: pd.DataFrame, profiles: pd.DataFrame) -> dict[tuple[str, str], str]:
    """The deterministic links spelt out on id strings, the plain way, for comparison."""
    from idr_pipeline.matching_pipeline import PERSONAL_IDENTIFIERS

    first = dict(zip(profiles["record_id"], profiles["first_name"], strict=True))
    head = {k: (v.lower()[:2] if isinstance(v, str) else "") for k, v in first.items()}
    types: dict[tuple[str, str], set[str]] = {}
    for src, dst, id_type in edges.itertuples(index=False):
        personal = id_type in PERSONAL_IDENTIFIERS or (
            id_type == "phone" and head[src] != "" and head[src] == head[dst]
        )
        if personal:
            types.setdefault((min(src, dst), max(src, dst)), set()).add(id_type)
    return {pair: ",".join(sorted(t)) for pair, t in types.items()}


@pytest.mark.parametrize("seed", range(5))
def test_link_positions_match_the_links_spelt_on_ids(seed: int) -> None:
    from idr_pipeline.matching_pipeline import link_positions

    rng = np.random.default_rng(seed)
    ids = [f"r{i:03d}" for i in range(40)]
    # Profiles in no particular order: positions and id order disagree.
    profiles = pd.DataFrame(
        {"record_id": rng.permutation(ids), "first_name": rng.choice(["Ann", "anna", "Bob", None, "Al"], 40)}
    )
    edges = pd.DataFrame(
        {
            "src": rng.choice(ids, 120),
            "dst": rng.choice(ids, 120),
            "id_type": rng.choice(["email_key", "phone", "national_id", "ip_address", "device_id"], 120),
        }
    )
    edges = edges[edges["src"] != edges["dst"]]
    position = pd.Index(profiles["record_id"])
    left = rng.integers(0, 40, 60)
    right = (left + rng.integers(1, 40, 60)) % 40
    links = link_positions(
        left,
        right,
        rng.random(60),
        (position.get_indexer(edges["src"]), position.get_indexer(edges["dst"]), edges["id_type"].to_numpy()),
        profiles,
    )
    record_ids = profiles["record_id"].to_numpy(dtype=object)
    expected = _links_by_ids(edges, profiles)
    got: dict[tuple[str, str], str] = {}
    for row in range(len(links.probability)):
        a, b = record_ids[links.left[row]], record_ids[links.right[row]]
        if links.id_type[row] is not None:
            assert links.probability[row] == 1.0
            got[(min(a, b), max(a, b))] = links.id_type[row]
        if row >= links.scored:
            assert a < b  # an added link is oriented record_id_l < record_id_r
    assert got == expected
    # The scored rows come first, unchanged apart from the links among them.
    assert links.scored == 60 and (links.left[:60] == left).all() and (links.right[:60] == right).all()
