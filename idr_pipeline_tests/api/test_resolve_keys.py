"""The online blocking keys and normalizer path agree with the batch's pandas definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idr_pipeline.api.resolve import (
    ONLINE_RULES,
    BlockingIndex,
    _hash_keys,
    _rule_keys,
    normalize_input,
    profile_frame,
    query_keys,
)
from idr_pipeline.standardize import standardize_frame

ROWS = [
    {"first_name": "Bobby", "last_name": "Jones Jr", "dob": "06/07/1975", "street": "2  Oak   Ave", "postcode": "627-02"},
    {"email": "Sara.ONeill+x@gmail.com", "first_name": "Sara", "last_name": "O'Neill", "phone": "(415) 555-2671"},
    {"email": "saraoneill@example.com", "first_name": "Sara", "last_name": "Oneill", "national_id": "512 34 7788"},
    {"device_id": " DEV-1 ", "anonymous_id": "anon-9", "dob": "1980"},
    {"last_name": "Smith"},
]  # fmt: skip


@pytest.mark.parametrize("fields", ROWS)
def test_normalize_input_matches_standardize_frame(fields: dict) -> None:
    fast = normalize_input(fields, "US")
    frame = standardize_frame(
        pd.DataFrame([{**fields, "record_id": "api-query", "source": "api"}], dtype=object)
    )
    slow = {k: (None if pd.isna(v) else v) for k, v in frame.iloc[0].items()}
    for column in [
        "first_name",
        "last_name",
        "email",
        "email_key",
        "phone",
        "dob",
        "street",
        "postcode",
        "national_id",
        "device_id",
    ]:
        assert fast.get(column) == slow.get(column), column


@pytest.mark.parametrize("fields", ROWS)
def test_query_keys_match_the_batch_rules(fields: dict) -> None:
    query = normalize_input(fields, "US")
    frame = profile_frame([{**query, "identity_id": "q", "identifiers": {}}])
    batch = {(rule.name, key) for rule in ONLINE_RULES for key in _rule_keys(rule, frame)[1]}
    assert set(query_keys(query)) == batch


@pytest.mark.parametrize("fields", ROWS)
def test_query_hashes_equal_the_index_hashes(fields: dict) -> None:
    """The query's keys, hashed in one call, hash as the index hashed them rule by rule."""
    query = normalize_input(fields, "US")
    frame = profile_frame([{**query, "identity_id": "q", "identifiers": {}}])
    index = BlockingIndex.build(frame)
    assert index.candidates(query) == (["q"] if query_keys(query) else [])
    keys = query_keys(query)
    one_call = pd.util.hash_array(
        np.array([f"{rule}\x1f{key}" for rule, key in keys], dtype=object), categorize=False
    ).astype(np.int64)
    per_rule = [_hash_keys(np.array([key], dtype=object), rule)[0] for rule, key in keys]
    assert one_call.tolist() == per_rule
