"""Connected components of an integer-coded edge list, in C (scipy), for in-memory graphs.

Kept apart from ``components`` (Spark label propagation) so the pandas-side clustering and the
incremental step can use it without importing Spark.
"""

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph


def component_labels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Component label per vertex 0..n-1 (scipy's union-find-equivalent labeling, in C)."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    # int32 weights: duplicate edges are summed by tocsr, and a narrow type could wrap to 0.
    graph = sparse.coo_matrix((np.ones(len(a), dtype=np.int32), (a, b)), shape=(n, n)).tocsr()
    _, labels = csgraph.connected_components(graph, directed=True, connection="weak")
    return labels.astype(np.int64)
