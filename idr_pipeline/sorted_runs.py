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
