"""The ``profile_embeddings`` dataset: its vector column format, writing and reading it, and
handing a just-written version to the next steps of the same run without reading it back.

Columns: ``record_id``, ``text_hash`` (the cache key of ``profile_encoders.text_hashes``) and
``vector``, each row's float32 values, little-endian, as one fixed-size binary value of
4 × dim bytes. A fixed-size binary column is written and read back as one buffer, with no list
offsets or repetition levels to encode and decode per value. Versions written with a
``list<float>`` vector column are still read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from idr_pipeline.core.catalog import EMBEDDINGS
from idr_pipeline.core.lake import Lake

__all__ = [
    "read_embedded_ids",
    "read_embeddings",
    "read_keyed_vectors",
    "reusing_embeddings",
    "vectors_from_arrow",
    "vectors_to_arrow",
    "write_embeddings",
]

# (dataset path, version) -> the table written as that version, within reusing_embeddings().
_written: ContextVar[dict[tuple[str, str], pa.Table] | None] = ContextVar("embeddings_written", default=None)


@contextmanager
def reusing_embeddings() -> Iterator[None]:
    """Within it, a version ``write_embeddings`` wrote is read from memory, not from the lake.

    ``idr resolve`` indexes the vectors right after writing them; handing over the written
    table saves reading a gigabyte back at a million profiles. Arrow tables
    are immutable and the vectors read from them are read-only, so no step sees another's
    edits. The table is held until the block ends, so the caller scopes it to the steps that
    read the vectors. The Dagster assets run as separate steps and read the lake each.
    """
    token = _written.set({})
    try:
        yield
    finally:
        _written.reset(token)


def vectors_to_arrow(vectors: np.ndarray) -> pa.Array:
    """The ``vector`` column for these (rows, dim) vectors; ``vectors_from_arrow`` is its inverse."""
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    width = 4 * rows.shape[1]
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(rows), [None, pa.py_buffer(rows)])


def vectors_from_arrow(column: pa.Array) -> np.ndarray:
    """(rows, dim) float32 vectors of a ``vector`` column, fixed-size binary or a list of floats.
    Missing vectors are refused: every embedded profile has one."""
    if column.null_count:
        raise ValueError(f"profile_embeddings has {column.null_count} missing vectors")
    if pa.types.is_fixed_size_binary(column.type):
        width = column.type.byte_width
        values = np.frombuffer(
            column.buffers()[1], dtype="<f4", count=len(column) * width // 4, offset=column.offset * width
        )
        vectors = values.astype(np.float32, copy=False).reshape(len(column), width // 4)
        vectors.flags.writeable = False  # a view of the column's buffer, which others may share
        return vectors
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(values, dtype=np.float32).reshape(len(column), -1)


def write_embeddings(
    lake: Lake, record_ids: Sequence[str], text_hashes: Sequence[str], vectors: np.ndarray
) -> str:
    """Write a new version of ``profile_embeddings``; returns the version."""
    table = pa.table(
        {
            "record_id": pa.array(record_ids, pa.string()),
            "text_hash": pa.array(text_hashes, pa.string()),
            "vector": vectors_to_arrow(vectors),
        }
    )
    version = lake.write_pandas_version(table, *EMBEDDINGS)
    written = _written.get()
    if written is not None:
        written[(lake.path(*EMBEDDINGS), version)] = table
    return version


def read_embeddings(lake: Lake, only: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """(record ids, float32 vectors) of the latest ``profile_embeddings``, of the records in
    ``only`` when given (in the dataset's order); empty without one."""
    return read_keyed_vectors(lake, "record_id", only=only)


def read_embedded_ids(lake: Lake) -> list[str]:
    """The record ids the latest ``profile_embeddings`` holds a vector for, without the vectors."""
    table = _latest_table(lake, ["record_id"])
    return [] if table is None else table.column("record_id").to_pylist()


def read_keyed_vectors(
    lake: Lake, key: str, dim: int | None = None, only: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """(``key`` column, vectors) of the latest ``profile_embeddings``; empty when there is none,
    when it has no such column (written before the column existed) or when its vectors are not
    ``dim`` wide (another encoder's). ``only`` keeps the rows of those record ids. The vectors
    are read-only."""
    empty: tuple[list[str], np.ndarray] = ([], np.zeros((0, dim or 0), dtype=np.float32))
    table = _latest_table(lake, [key, "vector"], only)
    if table is None or table.num_rows == 0:
        return empty
    vectors = vectors_from_arrow(table.column("vector").combine_chunks())
    if dim is not None and vectors.shape[1] != dim:
        return empty
    return table.column(key).to_pylist(), vectors


def _latest_table(lake: Lake, columns: list[str], only: Sequence[str] | None = None) -> pa.Table | None:
    """These columns of the latest version (the rows of the record ids in ``only``), from what
    ``write_embeddings`` left inside ``reusing_embeddings`` or else from the lake; None when
    there is no version or it lacks a column."""
    version = lake.latest_version(*EMBEDDINGS)
    if version is None:
        return None
    wanted = None if only is None else pa.array(list(only), pa.string())
    held = (_written.get() or {}).get((lake.path(*EMBEDDINGS), version))
    if held is not None:
        if wanted is not None:
            held = held.filter(pc.is_in(held.column("record_id"), value_set=wanted))
        return held.select(columns)
    dataset = lake.latest_dataset(*EMBEDDINGS)
    if not set(columns) <= set(dataset.schema.names):
        return None
    row_filter = None if wanted is None else pc.field("record_id").isin(wanted)
    return dataset.to_table(columns=columns, filter=row_filter)
