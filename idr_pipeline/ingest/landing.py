"""Landing: copy one source file into the raw zone as Parquet, exactly once.

The batch id is a hash of the file's bytes, so landing the same file again is a no-op and a
landed batch is never rewritten: the raw zone is an immutable record of what arrived.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from idr_pipeline.core.catalog import RAW_PROFILES, RAW_ZONE
from idr_pipeline.ingest.mapping import SourceMapping
from idr_pipeline.ingest.readers import META_ERROR, META_LINE, META_RAW, read_source_file

if TYPE_CHECKING:  # pragma: no cover
    from idr_pipeline.core.lake import Lake


@dataclass(frozen=True)
class LandingResult:
    source: str
    batch_id: str
    path: str
    rows: int
    parse_errors: int
    already_landed: bool
    preview: pd.DataFrame


def file_batch_id(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def raw_batch_path(lake: Lake, source: str, batch_id: str) -> str:
    return lake.path(RAW_ZONE, RAW_PROFILES, f"source={source}", f"batch_id={batch_id}")


def raw_source_path(lake: Lake, source: str) -> str:
    return lake.path(RAW_ZONE, RAW_PROFILES, f"source={source}")


def _arrow_schema(columns: list[str]) -> pa.Schema:
    return pa.schema([(c, pa.int64() if c == META_LINE else pa.string()) for c in columns])


@dataclass(frozen=True)
class ReadBatch:
    """A source file read and checked against its mapping, not yet in the lake.

    Reading touches no lake or Spark connection, so several files can be read in forked
    children at once (see ``idr_pipeline.core.forked``); the table travels back as Arrow buffers.
    """

    source: str
    batch_id: str
    table: pa.Table  # the rows as strings, with _source and _batch_id; _ingested_at comes at landing
    parse_errors: int
    preview: pd.DataFrame


def read_batch(mapping: SourceMapping, path: Path) -> ReadBatch:
    if not path.exists():
        raise FileNotFoundError(f"source '{mapping.name}': no file at {path}")
    batch_id = file_batch_id(path)
    df = read_source_file(path, mapping.format)
    data_columns = [c for c in df.columns if c not in (META_LINE, META_ERROR, META_RAW)]
    parsed = df[df[META_ERROR].isna()]
    if len(parsed):
        mapping.check_columns(data_columns)
    out = df.assign(_source=mapping.name, _batch_id=batch_id)
    table = pa.Table.from_pandas(out, schema=_arrow_schema(list(out.columns)), preserve_index=False)
    return ReadBatch(mapping.name, batch_id, table, int(df[META_ERROR].notna().sum()), df.head(5))


def land_batch(lake: Lake, batch: ReadBatch) -> LandingResult:
    target = raw_batch_path(lake, batch.source, batch.batch_id)
    rows = batch.table.num_rows
    if lake.exists(target + "/_SUCCESS"):
        return LandingResult(
            batch.source, batch.batch_id, target, rows, batch.parse_errors, True, batch.preview
        )
    ingested_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Partition columns (source, batch_id) live in the path; the _source/_batch_id copies keep
    # the metadata when a single batch folder is read on its own.
    table = batch.table.append_column(
        pa.field("_ingested_at", pa.string()), pa.array([ingested_at] * rows, pa.string())
    )
    lake.write_parquet_folder(table, target)
    return LandingResult(batch.source, batch.batch_id, target, rows, batch.parse_errors, False, batch.preview)


def land_source(
    lake: Lake, mapping: SourceMapping, landing_dir: str | Path, file: str | None = None
) -> LandingResult:
    path = Path(file) if file else Path(landing_dir) / mapping.file
    return land_batch(lake, read_batch(mapping, path))
