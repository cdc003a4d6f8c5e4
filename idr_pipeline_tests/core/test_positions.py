"""Household guards: shared identifiers are masked, household evidence counts once, and a family
e-mail cannot chain two people's identities together."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from idr_pipeline.core.positions import arrow_positions


def test_arrow_positions_are_row_positions_and_refuse_unknown_records():
    profiles = pd.DataFrame({"record_id": ["r3", "r1", "r2"]}, index=[10, 11, 12])
    pairs = pd.DataFrame({"record_id_l": ["r1", "r3", "r2"], "record_id_r": ["r2", "r1", "r3"]})
    left, right = arrow_positions(
        profiles["record_id"],
        pa.chunked_array([["r1"], ["r3", "r2"]]),  # several chunks, as a dataset read gives
        pa.chunked_array([pairs["record_id_r"].tolist()]),
    )
    assert left.tolist() == [1, 0, 2] and right.tolist() == [2, 1, 0]
    assert left.dtype == np.int64
    with pytest.raises(KeyError, match="r9"):
        arrow_positions(profiles["record_id"], pa.chunked_array([["r1"]]), pa.chunked_array([["r9"]]))
