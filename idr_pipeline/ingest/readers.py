"""Tolerant readers: every physical record of a source file becomes one row.

A line that cannot be parsed is not skipped: it becomes a row with ``_parse_error`` and the raw
text in ``_raw_line`` so that it reaches quarantine with its reason and the counts add up.
All values are kept as strings; typing them is standardisation's job, not the reader's.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

META_LINE = "_line_number"
META_ERROR = "_parse_error"
META_RAW = "_raw_line"


def _to_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    cols = [*columns, META_LINE, META_ERROR, META_RAW]
    df = pd.DataFrame.from_records(rows, columns=cols)
    for c in cols:
        if c != META_LINE:
            df[c] = df[c].astype("object").where(df[c].notna(), None)
    df[META_LINE] = df[META_LINE].astype("int64")
    return df


def read_csv_tolerant(path: str | Path) -> pd.DataFrame:
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    if not lines:
        return _frame([], [])
    header = next(csv.reader([lines[0]]))
    width = len(header)
    rows: list[dict] = []
    i = 1
    while i < len(lines):
        line_no = i + 1
        line = lines[i]
        i += 1
        if not line.strip():
            rows.append({META_LINE: line_no, META_ERROR: "blank_line", META_RAW: line})
            continue
        fields = _parse_line(line)
        # A quoted field may legitimately span lines; join the next line only when that yields
        # a well-formed row, otherwise the line stands alone as malformed.
        if (fields is None or len(fields) < width) and i < len(lines):
            joined = _parse_line(line + "\n" + lines[i])
            if joined is not None and len(joined) == width:
                fields, line, i = joined, line + "\n" + lines[i], i + 1
        if fields is None:
            rows.append({META_LINE: line_no, META_ERROR: "malformed_csv: unbalanced quote", META_RAW: line})
        elif len(fields) != width:
            rows.append(
                {
                    META_LINE: line_no,
                    META_ERROR: f"malformed_csv: expected {width} fields, got {len(fields)}",
                    META_RAW: line,
                }
            )
        else:
            row = {h: (v if v != "" else None) for h, v in zip(header, fields, strict=True)}
            row[META_LINE] = line_no
            rows.append(row)
    return _frame(rows, header)


def _parse_line(line: str) -> list[str] | None:
    try:
        return next(csv.reader(io.StringIO(line), strict=True))
    except (csv.Error, StopIteration):
        return None


def read_jsonl_tolerant(path: str | Path) -> pd.DataFrame:
    rows: list[dict] = []
    columns: dict[str, None] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            stripped = line.strip()
            if not stripped:
                rows.append({META_LINE: line_no, META_ERROR: "blank_line", META_RAW: line.rstrip("\n")})
                continue
            try:
                obj = json.loads(stripped)
            except json.JSONDecodeError as exc:
                rows.append({META_LINE: line_no, META_ERROR: f"invalid_json: {exc.msg}", META_RAW: stripped})
                continue
            if not isinstance(obj, dict):
                rows.append(
                    {
                        META_LINE: line_no,
                        META_ERROR: f"not_an_object: {type(obj).__name__}",
                        META_RAW: stripped,
                    }
                )
                continue
            row = {str(k): _to_text(v) for k, v in obj.items()}
            columns.update(dict.fromkeys(row))
            row[META_LINE] = line_no
            rows.append(row)
    return _frame(rows, list(columns))


def read_parquet_as_text(path: str | Path) -> pd.DataFrame:
    table = pq.read_table(path)
    df = table.to_pandas()
    rows = df.to_dict("records")
    out = [{k: _to_text(v) for k, v in r.items()} | {META_LINE: n} for n, r in enumerate(rows, start=1)]
    return _frame(out, list(df.columns))


def read_source_file(path: str | Path, fmt: str) -> pd.DataFrame:
    if not Path(path).exists():
        raise FileNotFoundError(f"source file {path} does not exist")
    if fmt == "csv":
        return read_csv_tolerant(path)
    if fmt == "jsonl":
        return read_jsonl_tolerant(path)
    if fmt == "parquet":
        return read_parquet_as_text(path)
    raise ValueError(f"unsupported format {fmt!r}")
