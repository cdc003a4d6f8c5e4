"""The lake: Parquet datasets under one filesystem URI (a local folder or ``hdfs://``).

All file-system calls go through Spark's own Hadoop client so the same code serves a laptop
folder and an HDFS namenode without a second filesystem library.

Derived datasets are written as immutable versions (``<dataset>/v=<version>/``) with a small
``_LATEST`` pointer beside them, replaced atomically once the version is complete (a temporary
file renamed over it, see ``write_text``). Readers never see a half-written dataset, a job can read the
previous version of the dataset it is about to replace (the identity graph needs exactly
that for stable ids), and older versions stay available for audit until pruned.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs as pafs

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as ds
    from pyspark.sql import DataFrame, SparkSession

LATEST_POINTER = "_LATEST"
KEEP_VERSIONS = 3


@dataclass
class Lake:
    uri: str
    spark: SparkSession

    # --- paths -------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return "/".join([self.uri.rstrip("/"), *[p.strip("/") for p in parts]])

    def _fs_path(self, path: str):
        jvm = self.spark._jvm
        hpath = jvm.org.apache.hadoop.fs.Path(path)
        fs = hpath.getFileSystem(self.spark._jsc.hadoopConfiguration())
        return fs, hpath

    def exists(self, path: str) -> bool:
        fs, hpath = self._fs_path(path)
        return bool(fs.exists(hpath))

    def list_dirs(self, path: str) -> list[str]:
        fs, hpath = self._fs_path(path)
        if not fs.exists(hpath):
            return []
        return sorted(st.getPath().getName() for st in fs.listStatus(hpath) if st.isDirectory())

    def delete(self, path: str) -> None:
        fs, hpath = self._fs_path(path)
        if fs.exists(hpath):
            fs.delete(hpath, True)

    def write_text(self, path: str, text: str) -> None:
        """Replace the small text file ``path`` (a ``_LATEST`` pointer, a ledger) atomically: the
        text goes to a hidden temporary file beside it, which is then renamed over it. A reader
        sees the old text or the new one, never an empty or partial file, even when the writer
        dies between the two steps (the temporary file is then left over, and ignored)."""
        fs, target = self._text_fs(path)
        tmp = self.spark._jvm.org.apache.hadoop.fs.Path(
            target.getParent(), f".{target.getName()}.{uuid.uuid4().hex}.tmp"
        )
        out = fs.create(tmp, True)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()
        self._rename_over(fs, tmp, target)
        if fs.getScheme() == "file":  # a checksum an older writer left beside it no longer matches
            jvm = self.spark._jvm
            fs.delete(jvm.org.apache.hadoop.fs.Path(target.getParent(), f".{target.getName()}.crc"), False)

    def read_text(self, path: str) -> str | None:
        fs, hpath = self._text_fs(path)
        if not fs.exists(hpath):
            return None
        stream = fs.open(hpath)
        try:
            jvm = self.spark._jvm
            return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()

    def _text_fs(self, path: str):
        """The filesystem for the small text files, and the path. For a local folder that is the
        raw local filesystem: Hadoop's default one keeps a ``.crc`` file beside each file and
        renames the two one after the other, so a reader in between would fail its checksum."""
        fs, hpath = self._fs_path(path)
        if fs.getClass().getName() == "org.apache.hadoop.fs.LocalFileSystem":
            fs = fs.getRawFileSystem()
        return fs, hpath

    def _rename_over(self, fs, source, target) -> None:
        """Rename ``source`` to ``target``, replacing it in one step. Hadoop's FileSystem.rename
        refuses an existing target, so: in a local folder, rename(2) (``os.replace``); elsewhere
        (HDFS) Hadoop's FileContext rename with OVERWRITE, which HDFS performs atomically."""
        jvm = self.spark._jvm
        if fs.getScheme() == "file":
            os.replace(source.toUri().getPath(), target.toUri().getPath())
            return
        overwrite = self.spark.sparkContext._gateway.new_array(jvm.org.apache.hadoop.fs.Options.Rename, 1)
        overwrite[0] = jvm.org.apache.hadoop.fs.Options.Rename.OVERWRITE
        context = jvm.org.apache.hadoop.fs.FileContext.getFileContext(
            target.toUri(), self.spark._jsc.hadoopConfiguration()
        )
        context.rename(source, target, overwrite)

    # --- versioned datasets ----------------------------------------------------------------
    def latest_version(self, zone: str, name: str) -> str | None:
        pointer = self.read_text(self.path(zone, name, LATEST_POINTER))
        return pointer.strip() if pointer else None

    def has_dataset(self, zone: str, name: str) -> bool:
        return self.latest_version(zone, name) is not None

    def read_latest(self, zone: str, name: str) -> DataFrame:
        version = self.latest_version(zone, name)
        if version is None:
            raise FileNotFoundError(f"lake dataset {zone}/{name} has no version yet; materialize it first")
        return self.spark.read.parquet(self.path(zone, name, f"v={version}"))

    def write_version(self, df: DataFrame, zone: str, name: str, version: str | None = None) -> str:
        """Write a new immutable version, then flip the pointer; returns the version id."""
        version = version or _new_version()
        target = self.path(zone, name, f"v={version}")
        df.write.mode("overwrite").parquet(target)
        self._publish(zone, name, version)
        return version

    def adopt_version(self, folder: str, zone: str, name: str) -> str:
        """Move a finished Parquet folder in as the new version, then flip the pointer.

        For a dataset that a job wrote as one partition of a larger output: writing it again
        would encode every row a second time. A rename within one filesystem moves no data, and
        on HDFS it is atomic.
        """
        version = _new_version()
        fs, source = self._fs_path(folder)
        _, target = self._fs_path(self.path(zone, name, f"v={version}"))
        fs.mkdirs(target.getParent())
        if not fs.rename(source, target):
            raise OSError(f"could not move {folder} to {target} as a new version of {zone}/{name}")
        self._publish(zone, name, version)
        return version

    def _publish(self, zone: str, name: str, version: str) -> None:
        self.write_text(self.path(zone, name, LATEST_POINTER), version)
        self._prune(zone, name, keep=version)

    # --- pandas in and out, without the JVM --------------------------------------------------
    # The matcher works on pandas frames in the driver process. Handing a frame of millions of
    # pairs to Spark (createDataFrame) or back (toPandas) copies it through the JVM heap, which
    # holds a second copy of every row at once; Arrow reads and writes the same Parquet
    # directly, through pyarrow's filesystem layer (local folders, and HDFS through libhdfs).

    def _arrow_fs(self, path: str):

        return pafs.FileSystem.from_uri(path)

    def write_pandas_version(
        self, pdf: pd.DataFrame | pa.Table, zone: str, name: str, schema: pa.Schema | None = None
    ) -> str:
        """``write_version`` for a pandas frame (or Arrow table): one Parquet file, then the pointer flip."""

        table = (
            pdf
            if isinstance(pdf, pa.Table)
            else pa.Table.from_pandas(pdf, schema=schema, preserve_index=False)
        )
        return self.write_pandas_parts([table], zone, name, table.schema)

    def write_pandas_parts(
        self, parts: Iterable[pd.DataFrame | pa.Table], zone: str, name: str, schema: pa.Schema
    ) -> str:
        """``write_pandas_version`` for a frame produced in parts: each part is written as it
        comes, so the whole frame never has to be held (scored pairs on a large run do not fit
        comfortably in memory as pandas). The pointer flips only after the last part."""

        version = _new_version()
        filesystem, root = self._arrow_fs(self.path(zone, name, f"v={version}"))
        filesystem.create_dir(root, recursive=True)
        with pq.ParquetWriter(f"{root}/part-00000.parquet", schema, filesystem=filesystem) as writer:
            for part in parts:
                table = (
                    part
                    if isinstance(part, pa.Table)
                    else pa.Table.from_pandas(part, schema=schema, preserve_index=False)
                )
                writer.write_table(table, row_group_size=1 << 20)
        self._publish(zone, name, version)
        return version

    def write_parquet_folder(self, table: pa.Table, path: str) -> None:
        """One Parquet file and a ``_SUCCESS`` marker in ``path``, replacing what was there, the
        layout a Spark ``coalesce(1).write`` leaves; written by Arrow because the rows are
        already in the driver (sending them through the JVM cost more than writing them)."""

        self.delete(path)
        filesystem, root = self._arrow_fs(path)
        filesystem.create_dir(root, recursive=True)
        pq.write_table(table, f"{root}/part-00000.parquet", filesystem=filesystem, row_group_size=1 << 20)
        self.write_text(f"{path}/_SUCCESS", "")

    def read_latest_pandas(self, zone: str, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The latest version as pandas, read by Arrow (files named ``_*``/``.*`` are skipped)."""
        return self.read_latest_arrow(zone, name, columns).to_pandas()

    def read_latest_arrow(self, zone: str, name: str, columns: list[str] | None = None) -> pa.Table:
        """The latest version as an Arrow table: for columns too big to hold as Python objects."""
        return self.latest_dataset(zone, name).to_table(columns=columns)

    def latest_columns(self, zone: str, name: str) -> list[str]:
        """Column names of the latest version, from the Parquet footers only."""
        return self.latest_dataset(zone, name).schema.names

    def latest_dataset(self, zone: str, name: str) -> ds.Dataset:
        """The latest version as an Arrow dataset, for callers that read part of it (some
        columns, some rows) more than once without listing its files each time."""

        version = self.latest_version(zone, name)
        if version is None:
            raise FileNotFoundError(f"lake dataset {zone}/{name} has no version yet; materialize it first")
        filesystem, root = self._arrow_fs(self.path(zone, name, f"v={version}"))
        return ds.dataset(root, format="parquet", filesystem=filesystem)

    def _prune(self, zone: str, name: str, keep: str) -> None:
        versions = [d[2:] for d in self.list_dirs(self.path(zone, name)) if d.startswith("v=")]
        stale = [v for v in sorted(versions) if v != keep][: max(0, len(versions) - KEEP_VERSIONS)]
        for v in stale:
            self.delete(self.path(zone, name, f"v={v}"))


def _new_version() -> str:
    """A version id that sorts by time: the second, then nanoseconds so two writes in one second differ."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time_ns() % 10**9:09d}"
