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
