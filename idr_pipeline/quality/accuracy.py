"""Accuracy against a truth file: pairwise and B-cubed precision/recall/F1.

Pairs are counted from cluster sizes (n choose 2 summed over the contingency table), so
evaluation of a million records needs no pair enumeration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class PairwiseScores:
    records: int
    true_pairs: int
    predicted_pairs: int
    true_positive_pairs: int
    precision: float
    recall: float
    f1: float
    bcubed_f1: float
    bcubed_precision: float
    bcubed_recall: float


def _pairs(sizes: np.ndarray) -> int:
    sizes = sizes.astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def score_clusters(predicted: pd.DataFrame, truth: pd.DataFrame) -> PairwiseScores:
    """predicted: record_id, identity_id; truth: record_id, person_id.

    Only records with a true person are scored. A truth record missing from the prediction
    (quarantined, say) counts as its own singleton, so losing it costs recall.
    """
    t = truth.dropna(subset=["person_id"])
    t = t[t.person_id.astype(str) != ""][["record_id", "person_id"]].drop_duplicates("record_id")
    df = t.merge(
        predicted[["record_id", "identity_id"]].drop_duplicates("record_id"), on="record_id", how="left"
    )
    df["identity_id"] = df["identity_id"].fillna("__singleton__" + df["record_id"].astype(str))
    true_pairs = _pairs(df.groupby("person_id").size().to_numpy())
    pred_pairs = _pairs(df.groupby("identity_id").size().to_numpy())
    cell = df.groupby(["person_id", "identity_id"]).size()
    tp = _pairs(cell.to_numpy())
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    # B-cubed: per record, |cluster ∩ class| / |cluster| and / |class|.
    cell_df = cell.rename("n").reset_index()
    df = df.merge(cell_df, on=["person_id", "identity_id"])
    df = df.merge(df.groupby("identity_id").size().rename("pred_n").reset_index(), on="identity_id")
    df = df.merge(df.groupby("person_id").size().rename("true_n").reset_index(), on="person_id")
    bp = float((df.n / df.pred_n).mean()) if len(df) else 1.0
    br = float((df.n / df.true_n).mean()) if len(df) else 1.0
    bf1 = 2 * bp * br / (bp + br) if bp + br else 0.0
    return PairwiseScores(len(df), true_pairs, pred_pairs, tp, precision, recall, f1, bf1, bp, br)
