"""The cleaning job's per-partition rules (duplicates, versions, erasure, raw JSON), and the
Spark plan around them: one shuffle by a whitespace-free record id, then sorted runs."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from pyspark.sql import functions as F

from idr_pipeline.core.schema import CANONICAL_COLUMNS, EXTRAS_COLUMN
from idr_pipeline.ingest.readers import META_ERROR, META_LINE, META_RAW
from idr_pipeline.standardize.batches import (
    CLEAN,
    DUPLICATE_COUNT,
    ERASED,
    JAVA_WHITESPACE_CLASS,
    OUTCOME,
    PARTITION_KEY,
    QUARANTINED,
    STAGED_RAW,
    STAGED_REASON,
    clean_rows,
    clean_sorted_partition,
    collapse_exact_duplicates,
    erased_mask,
    raw_json,
    staged,
    superseded_reasons,
    without_whitespace,
)
from idr_pipeline.standardize.job import clean_profiles
from idr_pipeline.standardize.whitespace import WHITESPACE_CODEPOINTS


def _raw(rows: list[dict]) -> pd.DataFrame:
    """Raw rows as the Spark job hands them over: every column, sorted by the partition key."""
    records = []
    for line, row in enumerate(rows, start=1):
        record = {c: row.get(c) for c in CANONICAL_COLUMNS}
        record[EXTRAS_COLUMN] = row.get(EXTRAS_COLUMN)
        record["_batch_id"] = row.get("_batch_id", "b1")
        record["_ingested_at"] = row.get("_ingested_at", "2025-01-01T00:00:00Z")
        record[META_LINE] = row.get(META_LINE, line)
        record["_trust"] = 1
        rid = record["record_id"]
        record[PARTITION_KEY] = None if rid is None else without_whitespace(rid)
        records.append(record)
    frame = pd.DataFrame(records).astype(object).where(lambda df: df.notna(), None)
    frame[META_LINE] = frame[META_LINE].astype("int64")
    return frame.sort_values(PARTITION_KEY, kind="stable", na_position="first").reset_index(drop=True)


ALICE = {"record_id": "crm-1", "source": "crm", "first_name": "Alice", "email": "alice@example.com"}


def test_whitespace_class_is_exactly_pythons_isspace() -> None:
    assert set(WHITESPACE_CODEPOINTS) == {c for c in range(0x110000) if chr(c).isspace()}


def test_partition_key_in_the_jvm_matches_python(spark) -> None:
    ids = [" a\u00a0 1\t", "a1", "b\u2003\u2003c", "\u001cx\u3000", "plain", ""]
    df = spark.createDataFrame([(i,) for i in ids], "record_id string")
    got = [r[0] for r in df.select(F.regexp_replace("record_id", JAVA_WHITESPACE_CLASS, "")).collect()]
    assert got == [without_whitespace(i) for i in ids]


def test_exact_duplicates_keep_the_first_arrival_and_count_copies() -> None:
    raw = _raw(
        [
            {**ALICE, "_batch_id": "b2", "_ingested_at": "2025-02-01T00:00:00Z", META_LINE: 1},
            {**ALICE, "_batch_id": "b1", "_ingested_at": "2025-01-01T00:00:00Z", META_LINE: 9},
            {**ALICE, "_batch_id": "b1", "_ingested_at": "2025-01-01T00:00:00Z", META_LINE: 4},
            # Same record id, different content: a version, not a duplicate.
            {**ALICE, "phone": "+14155552671"},
            # Missing values compare equal.
            {"record_id": None, "source": "web", "city": "X"},
            {"record_id": None, "source": "web", "city": "X"},
            {"record_id": "solo", "source": "pos", "email": "s@example.com"},
        ]
    )
    out = collapse_exact_duplicates(raw)
    assert len(out) == 4 and out[DUPLICATE_COUNT].sum() == len(raw)
    alice = out[(out["record_id"] == "crm-1") & out["phone"].isna()]
    assert alice[["_batch_id", META_LINE, DUPLICATE_COUNT]].values.tolist() == [["b1", 4, 3]]
    assert out[out["record_id"].isna()][DUPLICATE_COUNT].tolist() == [2]
    assert out[out["record_id"] == "solo"][DUPLICATE_COUNT].tolist() == [1]


def _usable(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column, default in [("_ingested_at", "2025-01-01T00:00:00Z"), (META_LINE, 1), ("updated_at", None)]:
        if column not in frame:
            frame[column] = default
    return frame


def test_latest_version_wins_and_missing_updated_at_counts_as_oldest() -> None:
    usable = _usable(
        [
            {"record_id": "r1", "source": "crm", "updated_at": "2024-01-01T00:00:00Z"},
            {"record_id": "r1", "source": "crm", "updated_at": "2024-06-01T00:00:00Z"},
            {"record_id": "r1", "source": "crm", "updated_at": None},
            {"record_id": "r2", "source": "pos"},
        ]
    )
    assert superseded_reasons(usable).tolist() == [
        "superseded_by_newer_version",
        None,
        "superseded_by_newer_version",
        None,
    ]


def test_ties_go_to_the_later_arrival_then_the_later_line() -> None:
    usable = _usable(
        [
            {"record_id": "r1", "source": "crm", "_ingested_at": "2025-01-02T00:00:00Z", META_LINE: 1},
            {"record_id": "r1", "source": "crm", "_ingested_at": "2025-01-01T00:00:00Z", META_LINE: 7},
            {"record_id": "r2", "source": "crm", META_LINE: 3},
            {"record_id": "r2", "source": "crm", META_LINE: 5},
        ]
    )
    assert superseded_reasons(usable).isna().tolist() == [True, False, False, True]


def test_an_id_reused_by_another_source_is_a_named_collision() -> None:
    usable = _usable(
        [
            {"record_id": "7", "source": "crm", "updated_at": "2024-01-01T00:00:00Z"},
            {"record_id": "7", "source": "pos", "updated_at": "2023-01-01T00:00:00Z"},
        ]
    )
    assert superseded_reasons(usable).tolist() == [None, "record_id_collision_with_source:crm"]


def test_erasure_hashes_the_normalized_identifiers() -> None:
    clean = pd.DataFrame(
        {
            "source": ["crm", "pos", "web"],
            "source_customer_id": ["C1", "C1", None],
            "email": [None, None, "a@b.com"],
            "email_key": [None, None, "a@b.com"],
            "phone": [None, None, None],
            "national_id": [None, None, None],
            "device_id": [None, None, None],
            "anonymous_id": [None, None, None],
        }
    )

    def sha(v: str) -> str:
        return hashlib.sha256(v.encode()).hexdigest()

    assert erased_mask(clean, {"source_customer_key": {sha("crm:C1")}}).tolist() == [True, False, False]
    assert erased_mask(clean, {"email": {sha("a@b.com")}}).tolist() == [False, False, True]
    # A type tombstones never name is not looked at.
    assert not erased_mask(clean, {"source": {sha("crm")}}).any()


def test_an_erased_newer_version_neither_hides_nor_supersedes_the_older() -> None:
    raw = _raw(
        [
            {**ALICE, "email": "gone@example.com", "updated_at": "2025-01-01T00:00:00Z"},
            {**ALICE, "updated_at": "2024-01-01T00:00:00Z"},
        ]
    )
    tombstones = {"email": {hashlib.sha256(b"gone@example.com").hexdigest()}}
    out = clean_rows(raw, "US", tombstones)
    assert sorted(out[OUTCOME]) == [CLEAN, ERASED]
    assert out.loc[out[OUTCOME] == CLEAN, "email"].tolist() == ["alice@example.com"]


def test_quarantined_rows_carry_their_raw_fields_as_json() -> None:
    awkward = 'Quote " and \\ and \n and \x01 and é'
    raw = _raw(
        [
            {"record_id": " w-1 ", "source": "web", "city": awkward},
            {**ALICE, "updated_at": "2024-01-01T00:00:00Z"},
            {**ALICE, "first_name": "Alicia", "updated_at": "2025-01-01T00:00:00Z"},
        ]
    )
    out = clean_rows(raw, "US").set_index("first_name", drop=False)
    assert out[OUTCOME].tolist().count(QUARANTINED) == 2
    rejected = out[out["source"] == "web"].iloc[0]
    assert json.loads(rejected["_raw"]) == {"record_id": " w-1 ", "source": "web", "city": awkward}
    superseded = out.loc["Alice"]
    assert superseded["_quarantine_reason"] == "superseded_by_newer_version"
    assert json.loads(superseded["_raw"])["updated_at"] == "2024-01-01T00:00:00Z"
    assert out.loc["Alicia", "_raw"] is None


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 100])
def test_runs_straddling_batches_are_cleaned_whole(batch_size: int) -> None:
    rows = [
        {**ALICE, "updated_at": f"2024-01-0{day}T00:00:00Z"} for day in (1, 2, 3)
    ] + [
        ALICE,
        {"record_id": "crm-2", "source": "crm", "email": "b@example.com"},
        {"record_id": "crm-2 ", "source": "pos", "email": "b@example.com", "updated_at": "2025-01-01T00:00:00Z"},
        {"record_id": "crm-3", "source": "crm", "email": "c@example.com"},
    ]  # fmt: skip
    raw = _raw(rows)
    batches = [raw.iloc[i : i + batch_size].reset_index(drop=True) for i in range(0, len(raw), batch_size)]
    whole = clean_rows(raw, "US")
    pieces = pd.concat(list(clean_sorted_partition(iter(batches), "US")), ignore_index=True)
    columns = ["record_id", "source", "updated_at", OUTCOME, "_quarantine_reason", DUPLICATE_COUNT]
    key = ["record_id", "source", "updated_at"]
    assert pieces[columns].sort_values(key).values.tolist() == whole[columns].sort_values(key).values.tolist()
    assert pieces[OUTCOME].value_counts().to_dict() == {QUARANTINED: 4, CLEAN: 3}
    assert set(pieces["_quarantine_reason"].dropna()) == {
        "superseded_by_newer_version",
        "record_id_collision_with_source:pos",
    }


def test_raw_json_reads_like_sparks_to_json(spark) -> None:
    raw = _raw([{"record_id": "r\u00e9 1", "source": 'a"b\\c', "city": "line\nbreak\ttab\x01", "dob": "/ok"}])
    schema = ", ".join(f"{c} string" for c in CANONICAL_COLUMNS)
    df = spark.createDataFrame(raw[CANONICAL_COLUMNS], schema)
    from_spark = df.select(F.to_json(F.struct(*CANONICAL_COLUMNS))).first()[0]
    assert json.loads(raw_json(raw)[0]) == json.loads(from_spark)


def _spark_raw(spark, rows: list[dict]):
    raw = _raw(rows).drop(columns=[PARTITION_KEY])
    raw[META_ERROR] = None
    raw[META_RAW] = None
    schema = ", ".join(
        [f"{c} string" for c in [*CANONICAL_COLUMNS, EXTRAS_COLUMN, "_batch_id", "_ingested_at"]]
        + [f"{META_LINE} long", "_trust int", f"{META_ERROR} string", f"{META_RAW} string"]
    )
    columns = [
        *CANONICAL_COLUMNS,
        EXTRAS_COLUMN,
        "_batch_id",
        "_ingested_at",
        META_LINE,
        "_trust",
        META_ERROR,
        META_RAW,
    ]
    return spark.createDataFrame(raw[columns], schema).repartition(3)


def test_spark_job_ranks_whitespace_variants_of_one_id_together_and_balances(spark, tmp_path) -> None:
    rows = [
        {"record_id": "crm-1", "source": "crm", "email": "a@example.com", "updated_at": "2024-01-01T00:00:00Z"},
        {"record_id": " crm-1", "source": "crm", "email": "a@example.com", "updated_at": "2025-01-01T00:00:00Z"},
        {"record_id": "crm-1\u00a0", "source": "pos", "email": "a@example.com", "updated_at": "2023-01-01T00:00:00Z"},
        {"record_id": "crm-2", "source": "crm", "email": "b@example.com"},
        {"record_id": "crm-2", "source": "crm", "email": "b@example.com", "_batch_id": "b0", "_ingested_at": "2024-12-31T00:00:00Z"},
        {"record_id": "web-1", "source": "web", "city": "Nowhere"},
    ]  # fmt: skip
    result = clean_profiles(_spark_raw(spark, rows), "US", {}, (tmp_path / "staging").as_uri())
    clean = result.clean.toPandas()
    quarantined = result.quarantined.toPandas()
    assert sorted(clean["record_id"]) == ["crm-1", "crm-2"]
    assert clean.set_index("record_id").loc["crm-1", "updated_at"] == "2025-01-01T00:00:00Z"
    assert sorted(quarantined["_reason"]) == [
        "no_usable_fields",
        "record_id_collision_with_source:crm",
        "superseded_by_newer_version",
    ]
    assert result.collapsed_duplicates == 1
    assert result.raw_rows == len(clean) + len(quarantined) + result.collapsed_duplicates
    assert clean.set_index("record_id").loc["crm-2", "_batch_id"] == "b0"  # the earlier arrival is kept


def test_staged_rows_carry_their_quarantine_reason_and_raw_json_in_the_clean_columns() -> None:
    out = clean_rows(
        _raw(
            [
                {"record_id": "a", "source": "crm", "email": "A@Example.com", "phone": "call me"},
                {"record_id": "b", "source": "crm", "city": "Nowhere", EXTRAS_COLUMN: '{"tier":"gold"}'},
            ]
        ),
        "US",
    )
    staged_out = staged(out)
    by_id = staged_out.set_index("record_id")
    assert by_id.loc["a", OUTCOME] == CLEAN
    # A clean row keeps its field reasons and extras.
    assert by_id.loc["a", STAGED_REASON] == out.set_index("record_id").loc["a", STAGED_REASON]
    assert by_id.loc["a", STAGED_REASON].startswith("phone:")
    assert by_id.loc["b", OUTCOME] == QUARANTINED
    assert by_id.loc["b", STAGED_REASON] == out.set_index("record_id").loc["b", "_quarantine_reason"]
    assert json.loads(by_id.loc["b", STAGED_RAW]) == {"record_id": "b", "source": "crm", "city": "Nowhere"}
    # The input is not changed in place.
    assert out.set_index("record_id").loc["b", EXTRAS_COLUMN] == '{"tier":"gold"}'


def test_run_cleaning_adopts_the_staged_clean_rows_and_leaves_no_staging(spark, tmp_path) -> None:
    from idr_pipeline.core.catalog import CLEAN as CLEAN_DATASET
    from idr_pipeline.core.catalog import CLEANING_STAGING, QUARANTINE
    from idr_pipeline.core.lake import Lake
    from idr_pipeline.ingest.landing import land_batch, read_batch
    from idr_pipeline.ingest.mapping import identity_mapping
    from idr_pipeline.standardize.job import CLEAN_COLUMNS
    from idr_pipeline.standardize.steps import run_cleaning

    path = tmp_path / "crm.csv"
    path.write_text(
        "record_id,source,first_name,email,city\n"
        "c1,crm,Ann,ann@example.com,Boston\n"
        "c1,crm,Ann,ann@example.com,Boston\n"  # an exact duplicate, collapsed
        "c2,crm,,,Nowhere\n"  # nothing to link on: quarantined
        'c3,crm,"unterminated,x@example.com,Boston\n'  # a parse error
        "c4,crm,Bo,bo@example.com,Salem\n"
    )
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    mapping = identity_mapping("crm", path.name, "csv")
    land_batch(lake, read_batch(mapping, path))
    stats = run_cleaning(spark, lake, {"crm": mapping}, "US", tombstones={})

    clean = lake.read_latest(*CLEAN_DATASET)
    assert clean.columns == CLEAN_COLUMNS
    assert sorted(r["record_id"] for r in clean.collect()) == ["c1", "c4"]
    quarantine = lake.read_latest(*QUARANTINE).toPandas().set_index("record_id")
    assert quarantine.loc["c2", "_reason"].startswith("no_usable_fields")
    assert json.loads(quarantine.loc["c2", "_raw"]) == {"record_id": "c2", "source": "crm", "city": "Nowhere"}
    assert stats.raw_rows == 5 and stats.collapsed_duplicates == 1 and stats.balanced
    assert stats.quarantined_rows == len(quarantine) == 2
    assert lake.list_dirs(lake.path(*CLEANING_STAGING)) == []


def test_unique_like_columns_are_written_without_a_dictionary(spark, tmp_path) -> None:
    """One e-mail and one city on 300 records: a dictionary would take both; the e-mail column,
    nearly unique on real data, is written plain without trying one."""
    from idr_pipeline.core.catalog import CLEAN as CLEAN_DATASET
    from idr_pipeline.core.lake import Lake
    from idr_pipeline.ingest.landing import land_batch, read_batch
    from idr_pipeline.ingest.mapping import identity_mapping
    from idr_pipeline.standardize.steps import run_cleaning

    path = tmp_path / "crm.csv"
    rows = "".join(f"c{i},crm,Ann,ann@example.com,Boston\n" for i in range(300))
    path.write_text("record_id,source,first_name,email,city\n" + rows)
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    mapping = identity_mapping("crm", path.name, "csv")
    land_batch(lake, read_batch(mapping, path))
    run_cleaning(spark, lake, {"crm": mapping}, "US", tombstones={})

    encodings = _column_encodings(lake.latest_dataset(*CLEAN_DATASET))
    assert "PLAIN_DICTIONARY" not in encodings["email"]
    assert "PLAIN_DICTIONARY" in encodings["city"]


def _column_encodings(dataset) -> dict[str, tuple[str, ...]]:
    """Each column's encodings over the dataset's files."""
    import pyarrow.parquet as pq

    found: dict[str, tuple[str, ...]] = {}
    for fragment in dataset.get_fragments():
        with dataset.filesystem.open_input_file(fragment.path) as handle:
            metadata = pq.ParquetFile(handle).metadata
        for group in range(metadata.num_row_groups):
            for i in range(metadata.num_columns):
                column = metadata.row_group(group).column(i)
                found[column.path_in_schema] = found.get(column.path_in_schema, ()) + column.encodings
    return found
