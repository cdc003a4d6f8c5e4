"""classify_runs without Spark: counting people per value, refusing, and star edges."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from idr_pipeline.core.sorted_runs import whole_runs, whole_tables
from idr_pipeline.graph.identifier_runs import (
    MAX_RECORDS_PER_IDENTIFIER,
    SORT_ORDER,
    VALUE_KEY,
    classify_runs,
)

NO_BLOCKLIST: dict[str, set[str]] = {"any": set()}


OCCURRENCE_SCHEMA = pa.schema(
    [(c, pa.string()) for c in ["record_id", "id_type", "id_value", "person_first", "person_dob"]]
    + [("person_last", pa.string()), ("person_national_id", pa.string()), ("person_email", pa.string())]
)


def _occ(rows: list[tuple]) -> pa.Table:
    """Rows of (record, type, value, first name, dob); every carrier is a Smith without an id."""
    frame = pd.DataFrame([(*r, "Smith", None, None) for r in rows], columns=OCCURRENCE_SCHEMA.names)
    frame = frame.astype(object).where(frame.notna(), None).sort_values(SORT_ORDER).reset_index(drop=True)
    return pa.Table.from_pandas(frame, schema=OCCURRENCE_SCHEMA, preserve_index=False)


def _classify(
    occ: pa.Table, max_people: int, blocklist: dict[str, set[str]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    shared, edges = classify_runs(occ, max_people, blocklist)
    return shared.to_pandas(), edges.to_pandas()


def test_people_are_carriers_told_apart_by_person_level_attributes() -> None:
    occ = _occ(
        [
            ("a", "phone", "+1", "John", None),
            ("b", "phone", "+1", "Johnny", "1990-01-01"),  # a nickname: no conflict with a
            ("c", "phone", "+1", "John", "1990-01-10"),  # a birth-date typo of b's
            ("d", "phone", "+1", "John", "1962-07-30"),  # John's father
            ("e", "email_key", "x@y.z", "Ann", None),
            ("f", "email_key", "x@y.z", "Bob", None),
            ("g", "email_key", "m@y.z", "Mary", "1980-02-03"),
            ("h", "email_key", "m@y.z", "M", "1980-02-03"),  # an initial
        ]
    )
    shared, edges = _classify(occ, max_people=1, blocklist=NO_BLOCKLIST)
    by_value = shared.set_index("id_value")
    assert (by_value.loc["+1", "records"], by_value.loc["+1", "people"]) == (4, 2)
    assert by_value.loc["+1", "not_identity_reason"] == "shared_by_2_people"
    assert by_value.loc["+1", "conflict"] == "conflicting_dob"
    assert by_value.loc["x@y.z", "conflict"] == "conflicting_first_name"
    assert "m@y.z" not in by_value.index
    assert edges.values.tolist() == [["g", "h", "email_key", "m@y.z"]]
    shared, edges = _classify(occ, max_people=2, blocklist=NO_BLOCKLIST)
    assert shared.empty and len(edges) == 5  # two people each are within this limit


def test_a_value_on_too_many_records_never_links_whoever_carries_it() -> None:
    rows = [
        (f"r{i:04d}", "device_id", "dev", "John", "1990-01-01") for i in range(MAX_RECORDS_PER_IDENTIFIER + 1)
    ]
    shared, edges = _classify(_occ(rows), max_people=2, blocklist=NO_BLOCKLIST)
    assert shared["not_identity_reason"].tolist() == ["too_many_records"] and edges.empty


def test_blocklisted_wins_over_other_reasons_and_blocked_is_flagged() -> None:
    occ = _occ(
        [("a", "email_key", "test@test.com", "Ann", None), ("b", "email_key", "test@test.com", "Bob", None)]
    )
    shared, _ = _classify(occ, max_people=1, blocklist={"email_key": {"test@test.com"}})
    assert shared[["not_identity_reason", "blocked"]].values.tolist() == [["blocklisted", 1]]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 50])
def test_star_edges_are_the_same_however_the_partition_is_batched(batch_size: int) -> None:
    rows = [(f"r{i}", "email_key", f"v{i % 3}", "John", None) for i in range(10)]
    rows += [("r1", "phone", "+1555", "John", None), ("r2", "phone", "+1555", "John", None)]
    occ = _occ(rows)
    whole_shared, whole_edges = _classify(occ, max_people=1, blocklist=NO_BLOCKLIST)
    batches = occ.to_batches(max_chunksize=batch_size)
    parts = [_classify(run, 1, NO_BLOCKLIST) for run in whole_tables(iter(batches), VALUE_KEY)]
    edges = pd.concat([e for _s, e in parts], ignore_index=True)
    assert sorted(map(tuple, edges.values.tolist())) == sorted(map(tuple, whole_edges.values.tolist()))
    # n - 1 edges per value, all from its smallest record id.
    assert len(whole_edges) == (4 - 1) + (3 - 1) + (3 - 1) + 1
    hubs = whole_edges.groupby("id_value")["src"].unique().map(list).to_dict()
    assert hubs == {"v0": ["r0"], "v1": ["r1"], "v2": ["r2"], "+1555": ["r1"]}
    assert whole_shared.empty


def test_whole_runs_hold_a_run_longer_than_a_batch_and_group_missing_keys() -> None:
    frame = pd.DataFrame({"k": [None, None, "a", "a", "a", "a", "b"], "i": range(7)})
    batches = [frame.iloc[i : i + 2] for i in range(0, 7, 2)]
    pieces = [piece["i"].tolist() for piece in whole_runs(iter(batches), ["k"])]
    assert pieces == [[0, 1], [2, 3, 4, 5], [6]]
