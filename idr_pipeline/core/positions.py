"""Record ids to row positions, for pair tables whose ids are held as Arrow strings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def arrow_positions(
    record_ids: pd.Series, left: pa.ChunkedArray, right: pa.ChunkedArray
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in ``record_ids`` of each pair's two records, for pair ids held as Arrow
    strings: Arrow hashes its contiguous buffers, where a pandas index chases one Python object
    per id. Both sides go through one lookup, so the record ids are hashed once. An id that is
    not a record is an error."""
    value_set = pa.array(record_ids.to_numpy(dtype=object), pa.string())
    sides = pa.chunked_array([*left.chunks, *right.chunks], type=pa.string())
    pos = pc.index_in(sides, value_set=value_set)
    if pos.null_count:
        unknown = pc.filter(sides, pc.is_null(pos)).slice(0, 3).to_pylist()
        raise KeyError(f"pairs name records that are not in the profiles, e.g. {unknown}")
    both = pos.to_numpy().astype(np.int64)
    return both[: len(left)], both[len(left) :]
