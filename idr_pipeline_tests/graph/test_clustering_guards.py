"""The merge guards as the loop runs them, held to their pairwise definitions.

``cluster_pairs`` keeps each cluster's national ids and (name, dob) entries as it grows and
``_conflict`` reads those, instead of pairing every member of one side with every member of the
other. These tests pin the per-cluster version to the pairwise definition, and the
Arrow sort of the strong pairs to pandas' stable sort.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from idr_pipeline.graph.clustering import (
    REFUSED_DOB,
    REFUSED_NATIONAL_ID,
    _Cluster,
    _conflict,
    _strongest_first,
    clearly_different_dob,
    different_national_ids,
)

NATIONAL_IDS = ["AB12345", "AB12346", "ZZ99999", "Q1"]
NAMES = ["ann|lee", "bo|ng", "ann|leé"]
DOBS = ["1980-02-03", "1980-03-02", "1981-02-03", "2008-02-03", "1980-02-04"]


def _pairwise_conflict(
    a: list[str], b: list[str], direct: tuple[str, str], nid_of: dict, person_of: dict
) -> str | None:
    """The definition: every cross pair of members, the linking pair aside."""
    linking = set(direct)
    cross_ids = [(x, y) for x in a if x in nid_of for y in b if y in nid_of]
    if any({x, y} != linking for x, y in cross_ids):
        if different_national_ids(
            {nid_of[x] for x in a if x in nid_of}, {nid_of[y] for y in b if y in nid_of}
        ):
            return REFUSED_NATIONAL_ID
    namesakes = [
        (person_of[x][1], person_of[y][1])
        for x in a
        if x in person_of
        for y in b
        if y in person_of and person_of[x][0] == person_of[y][0] and {x, y} != linking
    ]
    if namesakes and all(clearly_different_dob(x, y) for x, y in namesakes):
        return REFUSED_DOB
    return None


member = st.tuples(
    st.one_of(st.none(), st.sampled_from(NATIONAL_IDS)),
    st.one_of(st.none(), st.tuples(st.sampled_from(NAMES), st.sampled_from(DOBS))),
)


def _grown(members: list[str], nid_of: dict, person_of: dict) -> _Cluster:
    """A cluster built the way the loop builds it: singletons absorbed one by one."""
    clusters = []
    for rid in members:
        single = _Cluster([rid])
        if rid in nid_of:
            single.national_ids = [(rid, nid_of[rid])]
        if rid in person_of:
            single.people = {person_of[rid][0]: [(rid, person_of[rid][1])]}
        clusters.append(single)
    grown = clusters[0]
    for other in clusters[1:]:
        grown.absorb(other)
    return grown


@settings(max_examples=400, deadline=None)
@given(
    st.lists(member, min_size=1, max_size=6),
    st.lists(member, min_size=1, max_size=6),
    st.integers(0, 5),
    st.integers(0, 5),
    st.booleans(),
)
def test_conflict_equals_the_pairwise_definition(side_a, side_b, i, j, flipped):
    a = [f"a{k}" for k in range(len(side_a))]
    b = [f"b{k}" for k in range(len(side_b))]
    nid_of, person_of = {}, {}
    for rid, (nid, person) in zip(a + b, side_a + side_b, strict=True):
        if nid is not None:
            nid_of[rid] = nid
        if person is not None:
            person_of[rid] = person
    direct = (a[i % len(a)], b[j % len(b)])
    if flipped:
        direct = direct[::-1]
    expected = _pairwise_conflict(a, b, direct, nid_of, person_of)
    assert _conflict(_grown(a, nid_of, person_of), _grown(b, nid_of, person_of), direct) == expected


def test_conflict_ignores_the_linking_pair_only():
    nid_of = {"a0": "AB12345", "b0": "ZZ99999"}
    a, b = _grown(["a0"], nid_of, {}), _grown(["b0"], nid_of, {})
    assert _conflict(a, b, ("a0", "b0")) is None
    c = _grown(["b0", "b1"], {**nid_of, "b1": "ZZ99999"}, {})
    assert _conflict(_grown(["a0"], nid_of, {}), c, ("a0", "b0")) == REFUSED_NATIONAL_ID


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["r1", "r10", "r2", "é", "Z", "a"]),
            st.sampled_from(["r1", "r10", "r2", "é", "Z", "a"]),
            st.sampled_from([0.9, 0.95, 1.0, 0.9500001]),
        ),
        max_size=30,
    )
)
def test_strongest_first_is_pandas_stable_sort(rows):
    pairs = pd.DataFrame(rows, columns=["record_id_l", "record_id_r", "probability"], dtype=object)
    pairs["probability"] = pairs["probability"].astype(np.float64)
    pairs.index = np.arange(len(pairs))[::-1] * 3  # labels that are not positions
    expected = pairs.sort_values(
        ["probability", "record_id_l", "record_id_r"], ascending=[False, True, True], kind="stable"
    )
    pd.testing.assert_frame_equal(_strongest_first(pairs), expected)
