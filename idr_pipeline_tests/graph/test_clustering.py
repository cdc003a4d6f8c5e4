"""Constrained clustering: strong links merge, conflicts and weak bridges do not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idr_pipeline.graph.clustering import (
    REFUSED_SIZE,
    REFUSED_WEAK_BRIDGE,
    ClusteringPolicy,
    cluster_pairs,
    link_path,
    rows_clustering_reads,
    strong_components,
)
from idr_pipeline.scoring.person import CONFLICTING_DOB as REFUSED_DOB
from idr_pipeline.scoring.person import CONFLICTING_NATIONAL_ID as REFUSED_NATIONAL_ID
from idr_pipeline.scoring.person import clearly_different_dob


def _profiles(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_id", "national_id", "first_name", "last_name", "dob"])


def _pairs(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_id_l", "record_id_r", "probability"])


def test_dob_typos_are_not_conflicts():
    assert not clearly_different_dob("1980-02-03", "1980-02-03")
    assert not clearly_different_dob("1980-02-03", "1980-03-02")
    assert not clearly_different_dob("1980-02-03", "1981-02-03")
    assert clearly_different_dob("1980-02-03", "2008-02-03")


def test_strong_pairs_merge_and_weak_pairs_do_not():
    profiles = _profiles(
        [("a", None, "Ann", "Lee", None), ("b", None, "Ann", "Lee", None), ("c", None, "Bo", "Ng", None)]
    )
    result = cluster_pairs(["a", "b", "c"], _pairs([("a", "b", 0.99), ("b", "c", 0.4)]), profiles)
    assert result.labels == {"a": "a", "b": "a", "c": "c"}
    assert result.kept.shape[0] == 1 and result.refused.empty


def test_junior_and_senior_stay_apart_even_through_a_shared_record():
    profiles = _profiles(
        [
            ("sr", None, "John", "Smith", "1950-04-01"),
            ("jr", None, "John", "Smith", "1978-09-12"),
            ("x", None, "John", "Smith", None),  # a record with no dob, linked to both
        ]
    )
    # The model itself scores Jr against Sr low (their birthdays disagree); x is the bridge.
    pairs = _pairs([("sr", "x", 0.99), ("jr", "x", 0.98), ("jr", "sr", 0.2)])
    result = cluster_pairs(["sr", "jr", "x"], pairs, profiles)
    assert result.labels["sr"] != result.labels["jr"]
    assert set(result.refused.reason) == {REFUSED_DOB}


def test_two_national_ids_never_share_an_identity_through_a_third_record():
    profiles = _profiles(
        [("a", "111", "A", "B", None), ("b", "222", "A", "B", None), ("x", None, "A", "B", None)]
    )
    result = cluster_pairs(["a", "b", "x"], _pairs([("a", "x", 0.999), ("b", "x", 0.99)]), profiles)
    assert result.labels["a"] != result.labels["b"]
    assert result.refused_counts() == {REFUSED_NATIONAL_ID: 1}


def test_the_model_judges_a_direct_pair_itself():
    """A pair scored above the threshold despite its own id mismatch (a corrupted copy) merges."""
    profiles = _profiles([("a", "111", "A", "B", "1980-01-01"), ("b", "222", "A", "B", "1990-05-05")])
    result = cluster_pairs(["a", "b"], _pairs([("a", "b", 0.999)]), profiles)
    assert result.labels["a"] == result.labels["b"]


def test_one_link_cannot_bridge_two_dense_groups():
    ids = ["a1", "a2", "a3", "b1", "b2", "b3"]
    profiles = _profiles([(i, None, None, None, None) for i in ids])
    dense = [
        ("a1", "a2", 0.99),
        ("a1", "a3", 0.99),
        ("a2", "a3", 0.99),
        ("b1", "b2", 0.99),
        ("b1", "b3", 0.99),
        ("b2", "b3", 0.99),
    ]
    result = cluster_pairs(ids, _pairs([*dense, ("a3", "b1", 0.97)]), profiles)
    assert len(set(result.labels.values())) == 2
    assert result.refused_counts() == {REFUSED_WEAK_BRIDGE: 1}
    # With most cross pairs strong too, the groups are one person after all.
    cross = [(a, b, 0.95) for a in ids[:3] for b in ids[3:]]
    result = cluster_pairs(ids, _pairs([*dense, *cross]), profiles)
    assert len(set(result.labels.values())) == 1


def test_size_cap_is_enforced_and_reported():
    ids = [f"r{i}" for i in range(5)]
    profiles = _profiles([(i, None, None, None, None) for i in ids])
    chain = [(ids[i], ids[i + 1], 0.99) for i in range(4)]
    result = cluster_pairs(
        ids, _pairs(chain), profiles, ClusteringPolicy(max_cluster_size=3, min_avg_linkage=0.0)
    )
    assert max(pd.Series(result.labels).value_counts()) == 3
    assert result.refused_counts().get(REFUSED_SIZE, 0) >= 1


def test_link_path_explains_the_chain():
    profiles = _profiles([(i, None, None, None, None) for i in "abc"])
    result = cluster_pairs(list("abc"), _pairs([("a", "b", 0.99), ("b", "c", 0.98)]), profiles)
    assert link_path(result.kept, "a", "c") == [("a", "b"), ("b", "c")]
    assert link_path(result.kept, "a", "zzz") is None


def test_typos_in_national_id_or_dob_are_not_conflicts():
    assert not clearly_different_dob("1980-02-03", "1980-02-08")
    profiles = _profiles(
        [("a", "4190723", "Al", "Ng", "1980-02-03"), ("b", "4190732", "Al", "Ng", "1980-02-08")]
    )
    result = cluster_pairs(["a", "b"], _pairs([("a", "b", 0.99)]), profiles)
    assert result.labels["a"] == result.labels["b"]


def test_one_corrupted_copy_cannot_veto_an_id_the_model_matched_against_most_copies():
    # FEBRL-style: four copies share an id, a fifth was re-keyed; the model matched the
    # re-keyed copy with three of the four directly and missed the fourth (heavily corrupted).
    people = [(f"c{i}", "8539119", "Robin", "Morris", "1925-01-24") for i in range(4)]
    profiles = _profiles([*people, ("k", "1191533", "Robin", "Morris", "1925-01-24")])
    same = [(f"c{i}", f"c{j}", 0.999) for i in range(4) for j in range(i + 1, 4)]
    pairs = _pairs([*same, ("c0", "k", 0.999), ("c1", "k", 0.999), ("c2", "k", 0.998), ("c3", "k", 1e-5)])
    result = cluster_pairs([r[0] for r in profiles.itertuples(index=False)], pairs, profiles)
    assert len(set(result.labels.values())) == 1 and result.refused.empty
    # With only one of the four conflicting pairs matched, the conflict stands.
    pairs = _pairs([*same, ("c0", "k", 0.999), ("c1", "k", 0.2)])
    result = cluster_pairs([r[0] for r in profiles.itertuples(index=False)], pairs, profiles)
    assert result.labels["k"] != result.labels["c0"]
    assert set(result.refused.reason) == {REFUSED_NATIONAL_ID}


def test_two_record_components_and_guarded_ones_keep_links_strongest_first():
    """Pairs alone in their component merge without the guarded loop; the kept links still come
    back strongest first across both kinds, duplicates of a taken pair are skipped, and every
    label is the smallest record id of its cluster."""
    profiles = _profiles(
        [
            ("p2", None, "Al", "Ray", None),
            ("p1", None, "Al", "Ray", None),
            ("sr", None, "John", "Smith", "1950-04-01"),
            ("jr", None, "John", "Smith", "1978-09-12"),
            ("x", None, "John", "Smith", None),
            ("q1", None, "Cy", "Oz", None),
            ("q2", None, "Cy", "Oz", None),
        ]
    )
    pairs = _pairs(
        [
            ("q1", "q2", 0.95),
            ("sr", "x", 0.99),
            ("p2", "p1", 0.97),
            ("p1", "p2", 0.96),  # the same two records again: no second link
            ("jr", "x", 0.98),
        ]
    )
    result = cluster_pairs([r for r, *_ in profiles.itertuples(index=False)], pairs, profiles)
    # x (John Smith, no birth date) fits Sr and Jr alike: it joins neither and is ambiguous.
    assert result.kept[["record_id_l", "record_id_r"]].apply(tuple, axis=1).tolist() == [
        ("p2", "p1"),
        ("q1", "q2"),
    ]
    assert result.labels == {
        "p1": "p1",
        "p2": "p1",
        "q1": "q1",
        "q2": "q1",
        "sr": "sr",
        "x": "x",
        "jr": "jr",
    }
    assert result.refused[["record_id_l", "record_id_r", "reason"]].values.tolist() == [
        ["jr", "x", REFUSED_DOB]
    ]
    assert result.ambiguous[["record_id", "candidate_record_id"]].values.tolist() == [
        ["x", "sr"],
        ["x", "jr"],
    ]


def test_a_cap_below_two_refuses_even_a_lone_pair():
    profiles = _profiles([("a", None, "A", "B", None), ("b", None, "A", "B", None)])
    result = cluster_pairs(
        ["a", "b"], _pairs([("a", "b", 0.99)]), profiles, ClusteringPolicy(max_cluster_size=1)
    )
    assert result.labels == {"a": "a", "b": "b"}
    assert result.refused["reason"].tolist() == [REFUSED_SIZE]


def _random_profiles(rng: np.random.Generator, ids: list[str]) -> pd.DataFrame:
    """One "Ann" per id with a random national id, surname and birth date (some missing): the
    conflicts the guards look at, at random."""
    return _profiles(
        [
            (
                rid,
                rng.choice([None, "111", "222"]),
                "Ann",
                rng.choice(["Lee", "Ng"]),
                rng.choice(["1980-01-02", "2001-05-06", None]),
            )
            for rid in ids
        ]
    )


def test_clustering_only_the_rows_it_reads_gives_the_same_result():
    """run_clustering spells out ids only for rows_clustering_reads; on random graphs with
    conflicting ids, dates and weak bridges, that must change nothing."""
    rng = np.random.default_rng(3)
    for policy in (
        ClusteringPolicy(),
        ClusteringPolicy(max_cluster_size=4),
        ClusteringPolicy(max_cluster_size=1),
    ):
        n = 80
        ids = [f"r{i:03d}" for i in range(n)]
        profiles = _random_profiles(rng, ids)
        left = rng.integers(0, n, 300)
        right = rng.integers(0, n, 300)
        keep = left < right
        pairs = pd.DataFrame({"l": left[keep], "r": right[keep]}).drop_duplicates()
        left, right = pairs["l"].to_numpy(), pairs["r"].to_numpy()
        probability = rng.choice([0.2, 0.5, 0.85, 0.95, 0.99], len(left))
        frame = _pairs(list(zip([ids[i] for i in left], [ids[i] for i in right], probability, strict=True)))
        rows = rows_clustering_reads(left, right, probability, n, policy)
        assert 0 < rows.sum() < len(rows)
        everything = cluster_pairs(ids, frame, profiles, policy)
        read = cluster_pairs(ids, frame[rows], profiles, policy)
        assert read.labels == everything.labels
        assert read.kept.equals(everything.kept)
        assert read.refused.equals(everything.refused)


@pytest.mark.parametrize("workers", [1, 2])
def test_clustering_components_apart_and_merging_gives_the_same_result(workers):
    """run_clustering hands half of the strong components to a forked child; with conflicts,
    weak bridges, size caps and many tied probabilities, the merged result must be the one
    a single call gives, down to the order of the kept and refused links."""
    from idr_pipeline.graph.cluster import cluster
    from idr_pipeline.settings import MatchConfig

    rng = np.random.default_rng(5)
    for policy in (
        ClusteringPolicy(),
        ClusteringPolicy(max_cluster_size=4),
        ClusteringPolicy(max_cluster_size=1),
    ):
        n = 300
        ids = [f"r{i:03d}" for i in rng.permutation(n)]  # ids out of row order
        profiles = _random_profiles(rng, ids)
        left = rng.integers(0, n, 500)
        right = rng.integers(0, n, 500)
        keep = left != right
        pairs = pd.DataFrame({"l": np.minimum(left, right)[keep], "r": np.maximum(left, right)[keep]})
        pairs = pairs.drop_duplicates()
        left, right = pairs["l"].to_numpy(), pairs["r"].to_numpy()
        probability = rng.choice([0.2, 0.5, 0.85, 0.95, 0.99], len(left))
        frame = _pairs(list(zip([ids[i] for i in left], [ids[i] for i in right], probability, strict=True)))
        component = strong_components(left, right, probability, n, policy)
        rows = rows_clustering_reads(left, right, probability, n, policy, component)
        part = component[left[rows]] % 2 == 1
        assert part.any() and not part.all()
        config = MatchConfig(
            threshold=policy.threshold,
            min_avg_linkage=policy.min_avg_linkage,
            max_cluster_size=policy.max_cluster_size,
            workers=workers,
        )
        one = cluster_pairs(ids, frame, profiles, policy)
        apart = cluster(profiles, frame[rows], config, part=part)
        assert apart.labels == one.labels
        # some records merged (none may under a size cap of one)
        assert (len(set(apart.labels.values())) < n) == (policy.max_cluster_size > 1)
        pd.testing.assert_frame_equal(apart.kept, one.kept)
        pd.testing.assert_frame_equal(apart.refused, one.refused)
        assert len(one.refused) > 0
