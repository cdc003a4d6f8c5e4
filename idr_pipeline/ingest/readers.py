"""Tolerant readers: every physical record of a source file becomes one row.

A line that cannot be parsed is not skipped: it becomes a row with ``_parse_error`` and the raw
text in ``_raw_line`` so that it reaches quarantine with its reason and the counts add up.
All values are kept as strings; typing them is standardization's job, not the reader's.
"""

from __future__ import annotations

import csv
import gc
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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


def _columns_frame(columns: dict[str, np.ndarray], lines: np.ndarray, problems: list[dict]) -> pd.DataFrame:
    """Parsed rows (one object array per column, with their line numbers) and the lines that
    did not parse, in one frame in line order."""
    problem_lines = np.array([p[META_LINE] for p in problems], dtype=np.int64)
    every_line = np.sort(np.concatenate([lines, problem_lines]))
    parsed_at = np.searchsorted(every_line, lines)
    problem_at = np.searchsorted(every_line, problem_lines)
    total = len(every_line)

    def spread(values: np.ndarray | list, at: np.ndarray) -> np.ndarray:
        out = np.full(total, None, dtype=object)
        out[at] = values
        return out

    frame = {name: spread(column, parsed_at) for name, column in columns.items()}
    frame[META_LINE] = every_line
    frame[META_ERROR] = spread([p[META_ERROR] for p in problems], problem_at)
    frame[META_RAW] = spread([p[META_RAW] for p in problems], problem_at)
    return pd.DataFrame(frame)


def read_csv_tolerant(path: str | Path) -> pd.DataFrame:
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    if not lines:
        return _columns_frame({}, np.zeros(0, dtype=np.int64), [])
    header = next(csv.reader([lines[0]]))
    width = len(header)
    body = lines[1:]
    # Most lines hold no quote character, and the csv module reads such a line exactly as a
    # split on commas (a property test holds the two together). Those with the right number of
    # fields are rows as they stand; only the rest are read one by one below.
    fields: list[list[str] | None] = [None if '"' in line else line.split(",") for line in body]
    careful = [
        i
        for i, (f, line) in enumerate(zip(fields, body, strict=True))
        if f is None or len(f) != width or not line.strip()
    ]
    problems: list[dict] = []
    joined_into_previous: set[int] = set()
    for i in careful:
        if i in joined_into_previous:
            continue
        line_no = i + 2
        line = body[i]
        fields[i] = None
        if not line.strip():
            problems.append({META_LINE: line_no, META_ERROR: "blank_line", META_RAW: line})
            continue
        parsed = _parse_line(line)
        # A quoted field may legitimately span lines; join the next line only when that yields
        # a well-formed row, otherwise the line stands alone as malformed.
        if (parsed is None or len(parsed) < width) and i + 1 < len(body):
            joined = _parse_line(line + "\n" + body[i + 1])
            if joined is not None and len(joined) == width:
                parsed, line = joined, line + "\n" + body[i + 1]
                joined_into_previous.add(i + 1)
                fields[i + 1] = None
        if parsed is None:
            problems.append(
                {META_LINE: line_no, META_ERROR: "malformed_csv: unbalanced quote", META_RAW: line}
            )
        elif len(parsed) != width:
            problems.append(
                {
                    META_LINE: line_no,
                    META_ERROR: f"malformed_csv: expected {width} fields, got {len(parsed)}",
                    META_RAW: line,
                }
            )
        else:
            fields[i] = parsed
    kept = [i for i, f in enumerate(fields) if f is not None]
    rows = [fields[i] for i in kept]
    columns = {}
    for name, values in zip(header, zip(*rows, strict=True) if rows else [()] * width, strict=True):
        column = np.array(values, dtype=object)
        column[column == ""] = None
        columns[name] = column
    return _columns_frame(columns, np.array(kept, dtype=np.int64) + 2, problems)


def _parse_line(line: str) -> list[str] | None:
    try:
        return next(csv.reader(io.StringIO(line), strict=True))
    except (csv.Error, StopIteration):
        return None


def read_jsonl_tolerant(path: str | Path) -> pd.DataFrame:
    rows: list[dict] = []
    line_numbers: list[int] = []
    problems: list[dict] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            stripped = line.strip()
            if not stripped:
                problems.append({META_LINE: line_no, META_ERROR: "blank_line", META_RAW: line.rstrip("\n")})
                continue
            try:
                obj = json.loads(stripped)
            except json.JSONDecodeError as exc:
                problems.append(
                    {META_LINE: line_no, META_ERROR: f"invalid_json: {exc.msg}", META_RAW: stripped}
                )
                continue
            if not isinstance(obj, dict):
                problems.append(
                    {
                        META_LINE: line_no,
                        META_ERROR: f"not_an_object: {type(obj).__name__}",
                        META_RAW: stripped,
                    }
                )
                continue
            rows.append(obj)
            line_numbers.append(line_no)
    # Columns in order of first appearance; ``object`` keeps every value as parsed (no numeric
    # inference), and values are made text a column at a time.
    parsed = pd.DataFrame(rows, dtype=object) if rows else pd.DataFrame()
    texts = {str(name): _texts(parsed[name].to_numpy()) for name in parsed.columns}
    return _columns_frame(texts, np.array(line_numbers, dtype=np.int64), problems)


def _texts(column: np.ndarray) -> np.ndarray:
    """A column of parsed values as text (:func:`_to_text`); a column of strings and gaps, the
    usual case, only has its gaps made ``None``."""
    if pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
        missing = pd.isna(column)
        if missing.any():
            column = column.copy()
            column[missing] = None
        return column
    return np.array([_to_text(v) for v in column], dtype=object)


def read_parquet_as_text(path: str | Path) -> pd.DataFrame:
    table = pq.read_table(path)
    columns = {}
    for name, chunked in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type):
            columns[name] = chunked.to_numpy(zero_copy_only=False).astype(object)
        elif pa.types.is_integer(chunked.type):
            # As text by Arrow, so a column with gaps does not become floats ("12.0") first.
            columns[name] = pc.cast(chunked, pa.string()).to_numpy(zero_copy_only=False).astype(object)
        else:
            columns[name] = _texts(chunked.to_pandas().to_numpy(dtype=object))
    return _columns_frame(columns, np.arange(1, table.num_rows + 1, dtype=np.int64), [])


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Reading builds a list per row, and the cyclic garbage collector walks them all again
    and again as they pile up, a large share of the reading time. They hold no cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_source_file(path: str | Path, fmt: str) -> pd.DataFrame:
    if not Path(path).exists():
        raise FileNotFoundError(f"source file {path} does not exist")
    readers = {"csv": read_csv_tolerant, "jsonl": read_jsonl_tolerant, "parquet": read_parquet_as_text}
    if fmt not in readers:
        raise ValueError(f"unsupported format {fmt!r}")
    with _collector_paused():
        return readers[fmt](path)


# Relative cost of reading one byte of each format, from timing read_batch on the generated
# files of each format (docs/performance.md). Only the ratios matter: they decide which files
# share a core.
READ_COST_PER_BYTE = {"csv": 1.0, "jsonl": 0.6, "parquet": 0.4}


def read_cost(path: str | Path, fmt: str) -> float:
    """A guess at how long a file takes to read, in the same units for every format."""
    return Path(path).stat().st_size * READ_COST_PER_BYTE.get(fmt, 1.0)
