"""Pairwise and B-cubed scores on hand-checked clusterings."""

from __future__ import annotations

import pandas as pd
import pytest

from idr_pipeline.quality.accuracy import score_clusters


def test_perfect_clustering_scores_one():
    truth = pd.DataFrame({"record_id": ["a", "b", "c"], "person_id": ["p", "p", "q"]})
    pred = pd.DataFrame({"record_id": ["a", "b", "c"], "identity_id": ["x", "x", "y"]})
    s = score_clusters(pred, truth)
    assert (s.precision, s.recall, s.f1, s.bcubed_f1) == (1.0, 1.0, 1.0, 1.0)


def test_over_merge_costs_precision_not_recall():
    truth = pd.DataFrame({"record_id": list("abcd"), "person_id": ["p", "p", "q", "q"]})
    pred = pd.DataFrame({"record_id": list("abcd"), "identity_id": ["x"] * 4})
    s = score_clusters(pred, truth)
    assert s.recall == 1.0
    assert s.precision == pytest.approx(2 / 6)
    assert s.true_pairs == 2 and s.predicted_pairs == 6


def test_bcubed_precision_and_recall_by_hand():
    # Truth {a,b,c} {d}; predicted {a,b} {c,d}. Per record precision: a 1, b 1, c 1/2, d 1/2;
    # recall: a 2/3, b 2/3, c 1/3, d 1.
    truth = pd.DataFrame({"record_id": list("abcd"), "person_id": ["p", "p", "p", "q"]})
    pred = pd.DataFrame({"record_id": list("abcd"), "identity_id": ["x", "x", "y", "y"]})
    s = score_clusters(pred, truth)
    assert s.bcubed_precision == pytest.approx(3 / 4)
    assert s.bcubed_recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1) / 4)
    p, r = s.bcubed_precision, s.bcubed_recall
    assert s.bcubed_f1 == pytest.approx(2 * p * r / (p + r))
