"""``cluster_pairs`` with the matching configuration, optionally in two processes: strong
components never interact, so half of them can be clustered in a forked child.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from idr_pipeline.core.forked import Forked
from idr_pipeline.core.schema import PAIR_KEYS
from idr_pipeline.graph.clustering import ClusteringPolicy, ClusteringResult, cluster_pairs, merge_clusterings
from idr_pipeline.settings import MatchConfig


def policy_of(config: MatchConfig) -> ClusteringPolicy:
    return ClusteringPolicy(
        threshold=config.threshold,
        min_avg_linkage=config.min_avg_linkage,
        max_cluster_size=config.max_cluster_size,
        ambiguity_margin=config.ambiguity_margin,
    )


def cluster(
    profiles: pd.DataFrame,
    scored: pd.DataFrame,
    config: MatchConfig = MatchConfig(),
    part: np.ndarray | None = None,
) -> ClusteringResult:
    """``cluster_pairs`` with this config. ``part`` (bool per row of ``scored``, one value for
    all the rows of a strong component; see ``strong_components``) lets a forked child cluster
    the rows marked True while this process clusters the rest: components never interact, so
    ``merge_clusterings`` gives the same result as one call."""
    record_ids = profiles["record_id"].tolist()
    policy = policy_of(config)
    if part is None or config.workers <= 1 or part.all() or not part.any():
        return cluster_pairs(record_ids, scored, profiles, policy)
    unknown = pd.Index(pd.unique(scored[PAIR_KEYS].to_numpy().ravel())).difference(pd.Index(record_ids))
    if len(unknown):
        raise ValueError(f"pairs name records that are not among the record ids, e.g. {list(unknown[:3])}")

    def clustered(rows: pd.DataFrame, slim: bool) -> ClusteringResult:
        ids = pd.unique(rows[PAIR_KEYS].to_numpy().ravel())
        result = cluster_pairs(ids, rows, profiles, policy)
        if slim:  # only what travels back: the records that joined someone
            result = replace(result, labels={k: v for k, v in result.labels.items() if k != v})
        return result

    theirs = Forked(lambda: clustered(scored[part], slim=True))
    try:
        mine = clustered(scored[~part], slim=False)
        return merge_clusterings(record_ids, [mine, theirs.result()])
    finally:
        theirs.cancel()
