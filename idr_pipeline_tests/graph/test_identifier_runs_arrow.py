"""The Arrow classification against readable per-value definitions, on awkward occurrences.

``classify_runs``, ``blocked_values`` and ``whole_tables`` work on whole Arrow columns; the
definitions here walk the rows one value at a time in plain Python, with the blocklist rule
itself (``is_blocked``), so a vectorized shortcut that drifts from them fails here.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pyarrow as pa
import pytest

from idr_pipeline.core.sorted_runs import whole_runs, whole_tables
from idr_pipeline.graph.blocklist import is_blocked
from idr_pipeline.graph.identifier_runs import (
    MAX_RECORDS_PER_IDENTIFIER,
    SHARED_COLUMNS,
    VALUE_KEY,
    blocked_values,
    classify_runs,
)
from idr_pipeline.scoring.person import canonical_order, people_among, person_key

COLUMNS = [
    "id_type",
    "id_value",
    "record_id",
    "person_first",
    "person_dob",
    "person_last",
    "person_national_id",
    "person_email",
]
SCHEMA = pa.schema([(c, pa.string()) for c in COLUMNS])
BLOCKLIST = {
    "email_key": {"test@test.com", "ünï@code.de"},
    "phone_digits": {"1234567890", "5550000"},
    "national_id": {"000-00-0000"},
    "device_id": set(),
    "any": {"unknown", "n/a"},
}
# Values whose normal form differs between Python and ASCII-only or Unicode-aware engines:
# case, whitespace Python strips (\x1c, U+00A0, U+2003), the Kelvin sign, dotted capital I,
# digits str.isdigit accepts beyond 0-9 (superscripts, Arabic-Indic), separators in phones.
AWKWARD_VALUES = [
    "test@test.com", " TEST@test.com\t", "\x1ctest@test.com\x1f", "\u00a0test@test.com\u2003",
    "test@test.com\u200b", "ÜNÏ@code.de", "ünï@code.de ", "\u212a@k.com", "İ@i.com", "unknown",
    "UNKNOWN ", "n/a", "N/A", "+11234567890", "+1 (123) 456-7890", "1234567890", "11234567890",
    "+21234567890", "+1²34567890", "+١٢٣٤٥٦٧٨٩٠", "555-0000", "+1555 0000", "000-00-0000",
    " 000-00-0000 ", "", " ", "+", "x", "ß@s.de", "SS@s.de", "a\nb", "\x00",
]  # fmt: skip
TYPES = ["email_key", "phone", "national_id", "device_id", "source_customer_key", "phone_digits"]


def reference_classify(
    rows: list[tuple], max_people: int, blocklist: dict[str, set[str]]
) -> tuple[list, list]:
    """(shared rows, edges) of rows sorted so each value's carriers are together, value by value."""
    shared, edges = [], []
    for (id_type, id_value), run in itertools.groupby(rows, key=lambda r: (r[0], r[1])):
        carriers = list(run)
        records = len(carriers)
        # A national id value is judged on its carriers' other attributes.
        nid = (lambda r: None) if id_type == "national_id" else (lambda r: r[6])
        keys = sorted({person_key(r[3], r[5], r[4], nid(r), r[7]) for r in carriers}, key=canonical_order)
        people, conflict = people_among(keys)
        blocked = is_blocked(id_type, id_value, blocklist)
        if blocked:
            reason = "blocklisted"
        elif records > MAX_RECORDS_PER_IDENTIFIER:
            reason = "too_many_records"
        elif people > max_people:
            reason = f"shared_by_{people}_people"
        else:
            reason = None
        if reason is not None:
            conflict = conflict if people > 1 else None
            shared.append((id_type, id_value, records, int(blocked), people, conflict, reason))
        elif records > 1:
            hub = carriers[0][2]
            for previous, row in itertools.pairwise(carriers):
                if row[2] != previous[2] and row[2] != hub:
                    edges.append((hub, row[2], id_type, id_value))
    return shared, edges


def _sorted_rows(rng: random.Random, count: int) -> list[tuple]:
    values = AWKWARD_VALUES + [f"v{i}" for i in range(6)]
    record_ids = [None, "r1", "r10", "r2", "é", "R2", "r3", "r4", "r5"]
    names = [None, "Ann", "Bob", "ANN", "Çe", "A"]
    dobs = [None, "1990-01-01", "1991-02-03", "1970-05-06"]
    rows = {
        (
            rng.choice(TYPES),
            rng.choice(values),
            rng.choice(record_ids),
            rng.choice(names),
            rng.choice(dobs),
            "Smith",
            rng.choice([None, "123456789"]),
            # handles that name a record without a given name ('ann', 'b'), and ones that do not
            rng.choice([None, "ann.smith@x.com", "bsmith7@y.com", "smith@z.com", "bob.jones@w.com"]),
        )
        for _ in range(count)
    }
    listed = list(rows) + list(rows)[: count // 10]  # and some rows twice
    # Spark's order: ascending strings by their bytes, a missing value first.
    return sorted(listed, key=lambda r: tuple((v is not None, (v or "").encode()) for v in r[:3]))


def _table(rows: list[tuple]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(COLUMNS, r, strict=True)) for r in rows], schema=SCHEMA)


def _as_rows(table: pa.Table, columns: list[str]) -> list[tuple]:
    return sorted(zip(*(table.column(c).to_pylist() for c in columns), strict=True), key=repr)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("max_people", [1, 2])
def test_classify_runs_equals_the_per_value_definition(seed: int, max_people: int) -> None:
    rows = _sorted_rows(random.Random(seed), 300)
    want_shared, want_edges = reference_classify(rows, max_people, BLOCKLIST)
    batches = _table(rows).to_batches(max_chunksize=random.Random(seed).choice([1, 7, 64, 1000]))
    got_shared, got_edges = [], []
    for run in whole_tables(iter(batches), VALUE_KEY):
        shared, edges = classify_runs(run, max_people, BLOCKLIST)
        got_shared += _as_rows(shared, SHARED_COLUMNS)
        got_edges += _as_rows(edges, ["src", "dst", "id_type", "id_value"])
    assert sorted(got_shared, key=repr) == sorted(want_shared, key=repr)
    assert sorted(got_edges, key=repr) == sorted(want_edges, key=repr)
    assert want_edges and want_shared  # the frames exercise both outcomes


def test_a_crowd_of_one_value_is_too_many_records_and_the_output_types_are_spark_s() -> None:
    rows = [
        ("device_id", "dev", f"r{i:04d}", "Jo", None, "Smith", None, None)
        for i in range(MAX_RECORDS_PER_IDENTIFIER + 1)
    ]
    shared, edges = classify_runs(_table(rows), 5, BLOCKLIST)
    assert shared.column("not_identity_reason").to_pylist() == ["too_many_records"]
    assert edges.num_rows == 0
    assert [f.type for f in shared.schema] == [
        pa.string(),
        pa.string(),
        pa.int64(),
        pa.int32(),
        pa.int64(),
        pa.string(),
        pa.string(),
    ]
    assert [f.type for f in edges.schema] == [pa.string()] * 4


def test_an_empty_run_table_classifies_to_nothing() -> None:
    shared, edges = classify_runs(_table([]), 1, BLOCKLIST)
    assert (shared.num_rows, edges.num_rows) == (0, 0)
    assert shared.column_names == SHARED_COLUMNS and edges.column_names == [
        "src",
        "dst",
        "id_type",
        "id_value",
    ]


def test_blocked_values_equal_is_blocked_on_awkward_strings() -> None:
    pairs = [(t, v) for t in [*TYPES, None] for v in AWKWARD_VALUES]
    types = pa.array([t for t, _ in pairs], pa.string())
    values = pa.array([v for _, v in pairs], pa.string())
    want = np.array([is_blocked(t, v, BLOCKLIST) for t, v in pairs])
    got = blocked_values(types, values, BLOCKLIST)
    assert got.tolist() == want.tolist()
    assert want.sum() >= 10  # placeholders are found through each of the normalizations


def test_blocked_values_with_an_empty_or_partial_blocklist() -> None:
    types = pa.array(["phone", "email_key"], pa.string())
    values = pa.array(["+11234567890", "unknown"], pa.string())
    assert blocked_values(types, values, {}).tolist() == [False, False]
    assert blocked_values(types, values, {"any": {"unknown"}}).tolist() == [False, True]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 100])
def test_whole_tables_cut_where_whole_runs_cuts(batch_size: int) -> None:
    keys = [None, None, "a", "a", "a", "a", "b", "c", "c", None]
    table = pa.table({"k": pa.array(keys, pa.string()), "i": pa.array(range(len(keys)), pa.int64())})
    batches = table.to_batches(max_chunksize=batch_size)
    got = [piece.column("i").to_pylist() for piece in whole_tables(iter(batches), ["k"])]
    frames = [b.to_pandas().astype({"k": object}) for b in batches]
    frames = [f.where(f.notna(), None) for f in frames]
    want = [piece["i"].tolist() for piece in whole_runs(iter(frames), ["k"])]
    assert got == want
    assert sum(got, []) == list(range(len(keys)))
