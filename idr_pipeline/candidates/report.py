"""How good is a blocking? Pair completeness and reduction ratio per generator and for the union.

Blocking can only lose matches: a true pair that no generator proposes is never scored, so
pair completeness (true pairs proposed / all true pairs) bounds the recall of everything
downstream. The reduction ratio (1 - candidates / all n(n-1)/2 pairs) is what the blocking
saves. The union row answers the question that matters when choosing generators: what each
one adds on top of the others.

Works at a million records: true pairs are counted from person group sizes, never
enumerated, and candidate pairs are compared as int64 codes of factorized record ids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from idr_pipeline.candidates.buckets import sorted_unique

UNION = "union"
REPORT_COLUMNS = [
    "generator",
    "candidate_pairs",
    "true_pairs_found",
    "true_pairs",
    "pair_completeness",
    "pair_quality",
    "reduction_ratio",
]


def blocking_report(
    generators: dict[str, pd.DataFrame], truth: pd.DataFrame, n_records: int | None = None
) -> pd.DataFrame:
    """One row per generator and one for their union.

    truth: record_id, person_id; records without a person (garbage) are not in any true pair.
    n_records: the number of records blocked (the profiles), for the reduction ratio;
    defaults to the records in truth. Pass truth restricted to the blocked records when
    recall should ignore records that never reached blocking (quarantined ones).
    pair_quality is the share of candidates that are true pairs (blocking precision).
    """
    t = truth.dropna(subset=["person_id"])
    t = t[t["person_id"].astype(str) != ""].drop_duplicates("record_id")
    sizes = t.groupby("person_id").size().to_numpy(dtype=np.int64)
    true_pairs = int((sizes * (sizes - 1) // 2).sum())
    n = int(n_records if n_records is not None else t["record_id"].nunique())
    all_pairs = n * (n - 1) // 2

    # One id space for truth and every generator, so pairs become (int, int) codes.
    names = list(generators)
    frames = [generators[g] for g in names]
    ids = pd.concat(
        [t["record_id"].astype(str)]
        + [f[c].astype(str) for f in frames for c in ("record_id_l", "record_id_r")],
        ignore_index=True,
    )
    codes, uniques = pd.factorize(ids)
    m = max(len(uniques), 1)
    person = np.full(len(uniques), -1, dtype=np.int64)
    person[codes[: len(t)]] = pd.factorize(t["person_id"].astype(str))[0]

    pos = len(t)
    pair_codes: dict[str, np.ndarray] = {}
    for g, f in zip(names, frames, strict=True):
        k = len(f)
        lo, hi = codes[pos : pos + k], codes[pos + k : pos + 2 * k]
        pos += 2 * k
        a, b = np.minimum(lo, hi), np.maximum(lo, hi)
        pair_codes[g] = sorted_unique(a[a != b].astype(np.int64) * m + b[a != b])
    if names:
        pair_codes[UNION] = sorted_unique(np.concatenate(list(pair_codes.values())))

    rows = []
    for g, pc in pair_codes.items():
        pl, pr = person[pc // m], person[pc % m]
        found = int(((pl == pr) & (pl >= 0)).sum())
        rows.append(
            {
                "generator": g,
                "candidate_pairs": len(pc),
                "true_pairs_found": found,
                "true_pairs": true_pairs,
                "pair_completeness": found / true_pairs if true_pairs else 1.0,
                "pair_quality": found / len(pc) if len(pc) else 0.0,
                "reduction_ratio": 1.0 - len(pc) / all_pairs if all_pairs else 0.0,
            }
        )
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)
