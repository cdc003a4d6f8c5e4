"""Blocking report arithmetic on a hand-made example."""

from __future__ import annotations

import pandas as pd
import pytest

from idr_pipeline.candidates.report import blocking_report


def _pairs(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_id_l", "record_id_r"])


def test_report_per_generator_and_union():
    # Persons: P = {a, b, c} (3 true pairs), Q = {d, e} (1), R = {f}; g is garbage.
    truth = pd.DataFrame(
        {
            "record_id": ["a", "b", "c", "d", "e", "f", "g"],
            "person_id": ["P", "P", "P", "Q", "Q", "R", None],
        }
    )
    gens = {
        "det": _pairs([("a", "b"), ("d", "e"), ("a", "f")]),
        "lsh": _pairs([("b", "a"), ("b", "c"), ("f", "g"), ("b", "c")]),  # reversed + duplicate
    }
    rep = blocking_report(gens, truth, n_records=7).set_index("generator")
    assert rep.index.tolist() == ["det", "lsh", "union"]
    assert rep.loc["det", ["candidate_pairs", "true_pairs_found", "true_pairs"]].tolist() == [3, 2, 4]
    assert rep.loc["lsh", ["candidate_pairs", "true_pairs_found"]].tolist() == [3, 2]
    # union: ab, de, af, bc, fg
    assert rep.loc["union", ["candidate_pairs", "true_pairs_found"]].tolist() == [5, 3]
    assert rep.loc["union", "pair_completeness"] == pytest.approx(3 / 4)
    assert rep.loc["det", "pair_quality"] == pytest.approx(2 / 3)
    assert rep.loc["union", "reduction_ratio"] == pytest.approx(1 - 5 / 21)


def test_report_defaults_n_to_truth_records_and_handles_empty_generators():
    truth = pd.DataFrame({"record_id": ["a", "b", "c"], "person_id": ["P", "P", "Q"]})
    rep = blocking_report({"none": _pairs([])}, truth).set_index("generator")
    assert rep.loc["none", "candidate_pairs"] == 0
    assert rep.loc["none", "pair_completeness"] == 0.0
    assert rep.loc["none", "reduction_ratio"] == 1.0
    assert rep.loc["union", "true_pairs"] == 1
