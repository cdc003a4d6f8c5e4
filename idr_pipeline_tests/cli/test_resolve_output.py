"""``idr resolve`` writes its CSVs by Arrow when nothing needs quoting, else by pandas: both paths
must give the bytes pandas' ``to_csv`` gives, which is what users have been reading."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from idr_pipeline.cli.resolve import _plain_strings, write_table

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
# Mostly values that need no quotes, so the Arrow path is taken often.
_PLAIN = st.text(alphabet="ab -_.é\t", max_size=6)


def _pandas_bytes(table: pa.Table, path: Path) -> bytes:
    table.to_pandas().to_csv(path, index=False)
    return path.read_bytes()


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.one_of(st.none(), _PLAIN, _TEXT), st.one_of(st.none(), _PLAIN)), max_size=8),
)
def test_csv_bytes_are_pandas_bytes(rows: list[tuple[str | None, str | None]], tmp_path_factory) -> None:
    tmp = tmp_path_factory.mktemp("csv")
    table = pa.table(
        {"record_id": [r[0] for r in rows], "identity_id": [r[1] for r in rows]},
        schema=pa.schema([("record_id", pa.string()), ("identity_id", pa.string())]),
    )
    write_table(table, tmp / "ours.csv")
    assert (tmp / "ours.csv").read_bytes() == _pandas_bytes(table, tmp / "pandas.csv")


def test_plain_strings_decides_the_path(tmp_path: Path) -> None:
    plain = pa.table({"record_id": ["a", None, " b ", "é"], "identity_id": ["x", "y", "", "z"]})
    assert _plain_strings(plain)
    for awkward in ("a,b", 'a"b', "a\nb", "a\rb"):
        assert not _plain_strings(pa.table({"record_id": [awkward]}))
    assert not _plain_strings(pa.table({"n": pa.array([1, None], pa.int64())}))  # pandas writes 1.0
    mixed = pa.table({"record_id": ["a", "b"], "_line": pa.array([3, None], pa.int64())})
    write_table(mixed, tmp_path / "mixed.csv")
    assert (tmp_path / "mixed.csv").read_text() == "record_id,_line\na,3.0\nb,\n"
