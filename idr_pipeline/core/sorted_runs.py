"""Whole runs of a sort key from a Spark partition's Arrow batches, for ``mapInPandas``.

Spark hands a sorted partition to Python in batches of a fixed row count, so the rows that
share a key (one record id's versions, one identifier's carriers) may straddle two batches. A
job that shuffles by the key and sorts within partitions can then treat each yielded frame as
complete groups, which is what lets one pandas pass replace a group-by, a join or a window.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def whole_runs(batches: Iterable[pd.DataFrame], key: Sequence[str]) -> Iterator[pd.DataFrame]:
    """The batches re-cut so that no run of equal ``key`` values is split between frames.

    Each batch's trailing run waits for the next batch (or the end of the partition). Missing
    values compare equal, as in a SQL group-by. A run longer than a batch is held until it ends.
    """
    carry: pd.DataFrame | None = None
    for batch in batches:
        pdf = batch if carry is None else pd.concat([carry, batch], ignore_index=True)
        if pdf.empty:
            continue
        tail = np.ones(len(pdf), dtype=bool)
        for column in key:
            values = pdf[column].to_numpy(dtype=object)
            tail &= equal_values(values, values[-1])
        start = len(pdf) - int(np.count_nonzero(tail))
        carry = pdf.iloc[start:].reset_index(drop=True)
        if start:
            yield pdf.iloc[:start].reset_index(drop=True)
    if carry is not None and len(carry):
        yield carry


def run_starts(frame: pd.DataFrame, key: Sequence[str]) -> np.ndarray:
    """True on the first row of each run of equal ``key`` values (rows sorted by ``key``)."""
    starts = np.ones(len(frame), dtype=bool)
    if len(frame) > 1:
        same = np.ones(len(frame) - 1, dtype=bool)
        for column in key:
            values = frame[column].to_numpy(dtype=object)
            same &= equal_values(values[1:], values[:-1])
        starts[1:] = ~same
    return starts


def equal_values(a: np.ndarray, b: np.ndarray | object) -> np.ndarray:
    """Element-wise equality in which two missing values are equal."""
    return (a == b) | (pd.isna(a) & pd.isna(b))


# --- The same on Arrow, for ``mapInArrow``: a sorted partition's strings stay in Arrow buffers,
# where building one Python object per value was most of the Python workers' time.


def whole_tables(batches: Iterable[pa.RecordBatch], key: Sequence[str]) -> Iterator[pa.Table]:
    """:func:`whole_runs` for Arrow record batches: tables that each hold only whole runs."""
    carry: pa.Table | None = None
    for batch in batches:
        table = pa.Table.from_batches([batch])
        if carry is not None:
            table = pa.concat_tables([carry, table])
        if table.num_rows == 0:
            continue
        tail = np.ones(table.num_rows, dtype=bool)
        for column in key:
            values = table.column(column)
            tail &= arrow_equal_values(values, values[-1])
        start = table.num_rows - int(np.count_nonzero(tail))
        carry = table.slice(start)
        if start:
            yield table.slice(0, start)
    if carry is not None and carry.num_rows:
        yield carry


def arrow_run_starts(table: pa.Table, key: Sequence[str]) -> np.ndarray:
    """:func:`run_starts` for an Arrow table (rows sorted by ``key``)."""
    rows = table.num_rows
    starts = np.ones(rows, dtype=bool)
    if rows > 1:
        same = np.ones(rows - 1, dtype=bool)
        for column in key:
            values = table.column(column)
            same &= arrow_equal_values(values.slice(1), values.slice(0, rows - 1))
        starts[1:] = ~same
    return starts


def arrow_equal_values(
    a: pa.Array | pa.ChunkedArray, b: pa.Array | pa.ChunkedArray | pa.Scalar
) -> np.ndarray:
    """:func:`equal_values` for Arrow: element-wise equality in which two missing values are equal."""
    equal = pc.fill_null(pc.equal(a, b), False)
    return as_bools(pc.or_(equal, pc.and_(pc.is_null(a), pc.is_null(b))))


def as_bools(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A null-free Arrow boolean array as numpy."""
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)
