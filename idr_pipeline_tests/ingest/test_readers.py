"""The tolerant readers: every physical record becomes a row, parsed or with its reason."""

from __future__ import annotations

import csv
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import assume, given
from hypothesis import strategies as st

from idr_pipeline.ingest.readers import META_ERROR, META_LINE, META_RAW, read_source_file

CSV = (
    "id,name,note\n"
    "1,Ann,plain\n"
    '2,"Bob, Jr","a ""quoted"" word"\n'
    "\n"
    '3,Cy,"spans\n'
    'two lines"\n'
    "4,Dee\n"
    '5,"unbalanced,x\n'
    "6,,empty name\n"
    "7,Eve,x,extra\n"
    "8,Nul\x00byte,ok\n"
)


def test_csv_rows_and_every_unreadable_line_in_line_order(tmp_path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(CSV)
    df = read_source_file(path, "csv")
    assert df[META_LINE].tolist() == [2, 3, 4, 5, 7, 8, 9, 10, 11]
    parsed = df[df[META_ERROR].isna()].set_index("id")
    assert parsed.loc["2", "name"] == "Bob, Jr" and parsed.loc["2", "note"] == 'a "quoted" word'
    assert parsed.loc["3", "note"] == "spans\ntwo lines"
    assert parsed.loc["6", "name"] is None  # an empty field is missing, not ""
    assert parsed.loc["8", "name"] == "Nul\x00byte"
    errors = dict(zip(df[META_LINE], df[META_ERROR], strict=True))
    assert errors[4] == "blank_line"
    assert errors[7] == "malformed_csv: expected 3 fields, got 2"
    # An unbalanced quote joined with the next line still is not a row: both stand alone.
    assert errors[8] == "malformed_csv: unbalanced quote"
    assert errors[10] == "malformed_csv: expected 3 fields, got 4"
    assert df.loc[df[META_LINE] == 7, META_RAW].tolist() == ["4,Dee"]
    assert df[df[META_ERROR].notna()][["id", "name", "note"]].isna().all().all()


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_characters='"\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029')),
        min_size=1,
    )
)
def test_a_line_without_quotes_reads_as_a_split_on_commas(fields: list[str]) -> None:
    """What the CSV reader's fast path relies on, for any text splitlines() leaves in a line."""
    line = ",".join(fields)
    assume(line.strip())  # a blank line is never read as a row
    assert line.split(",") == next(csv.reader([line], strict=True))


def test_jsonl_values_become_text_and_bad_lines_are_kept(tmp_path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"id": "1", "n": 12, "f": 1.5, "ok": true, "tags": ["b", "a"], "addr": {"z": 1, "a": 2}}\n'
        '{"id": "2", "extra": "late column"}\n'
        "\n"
        "{not json\n"
        "[1, 2]\n"
        '{"id": "3", "n": null}\n'
    )
    df = read_source_file(path, "jsonl")
    assert list(df.columns[:7]) == ["id", "n", "f", "ok", "tags", "addr", "extra"]
    first = df.iloc[0]
    assert (first["n"], first["f"], first["ok"]) == ("12", "1.5", "true")
    assert first["tags"] == '["b", "a"]' and first["addr"] == '{"a": 2, "z": 1}'
    assert df.iloc[1]["n"] is None and df.iloc[1]["extra"] == "late column"
    assert df[META_ERROR].tolist()[2:5] == [
        "blank_line",
        "invalid_json: Expecting property name enclosed in double quotes",
        "not_an_object: list",
    ]
    assert df[META_LINE].tolist() == [1, 2, 3, 4, 5, 6]
    assert df.iloc[5]["n"] is None and df.iloc[5][META_ERROR] is None


def test_parquet_values_become_text_whatever_their_type(tmp_path) -> None:
    path = tmp_path / "in.parquet"
    table = pa.table(
        {
            "id": pa.array(["a", None, "c"]),
            # An integer column with a gap stays integral ("12", not "12.0").
            "phone": pa.array([4155552671, None, 12], pa.int64()),
            "score": pa.array([1.5, 2.0, None]),
            "vip": pa.array([True, False, None]),
            "seen": pa.array([datetime(2024, 1, 2, 3, 4, 5), None, datetime(2024, 1, 1)], pa.timestamp("us")),
        }
    )
    pq.write_table(table, path)
    df = read_source_file(path, "parquet")
    assert df["id"].tolist() == ["a", None, "c"]
    assert df["phone"].tolist() == ["4155552671", None, "12"]
    assert df["score"].tolist() == ["1.5", "2.0", None]
    assert df["vip"].tolist() == ["true", "false", None]
    assert df["seen"].tolist()[0] == "2024-01-02T03:04:05"
    assert df[META_LINE].tolist() == [1, 2, 3] and df[META_ERROR].isna().all()
