"""Write one range partition's Parquet file: the whole folder is replaced, never appended to.

Re-running a partition therefore leaves exactly what a single run leaves. The new file is
written next to the target first and swapped in at the end, so a run that dies half-way
leaves the previous content (or nothing) rather than a torn file. pyarrow's filesystem layer
resolves file:// on a laptop and hdfs:// in production from the same lake URI.
"""

from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

from idr_pipeline.core.catalog import raw_zone_path

PART_FILE = "part-00000.parquet"


def _resolve(uri: str) -> tuple[fs.FileSystem, str]:
    filesystem, path = fs.FileSystem.from_uri(uri)
    return filesystem, path


def write_partition(lake_uri: str, dataset: str, partition_key: str, table: pa.Table) -> str:
    """Replace ``raw/<dataset>/<partition_key>/`` with one Parquet file holding ``table``.

    An empty table is still written (schema, no rows), so every planned range has a folder and
    a reader can tell "landed, nothing valid" from "not landed yet".
    """
    target_uri = raw_zone_path(lake_uri, dataset, partition_key)
    filesystem, target = _resolve(target_uri)
    parent = target.rsplit("/", 1)[0]
    staging = f"{parent}/.{partition_key}.tmp-{uuid.uuid4().hex[:12]}"
    filesystem.create_dir(staging, recursive=True)
    try:
        pq.write_table(table, f"{staging}/{PART_FILE}", filesystem=filesystem, compression="snappy")
        if filesystem.get_file_info(target).type != fs.FileType.NotFound:
            filesystem.delete_dir(target)
        filesystem.move(staging, target)
    except BaseException:
        if filesystem.get_file_info(staging).type != fs.FileType.NotFound:
            filesystem.delete_dir(staging)
        raise
    return target_uri


def delete_partition(lake_uri: str, dataset: str, partition_key: str) -> None:
    """Remove one partition's folder (a range that must be landed again from the broker)."""
    filesystem, target = _resolve(raw_zone_path(lake_uri, dataset, partition_key))
    if filesystem.get_file_info(target).type != fs.FileType.NotFound:
        filesystem.delete_dir(target)


def read_partition(lake_uri: str, dataset: str, partition_key: str) -> pa.Table:
    """The landed table of one partition (for tests, checks and downstream readers)."""
    filesystem, target = _resolve(raw_zone_path(lake_uri, dataset, partition_key))
    return pq.read_table(f"{target}/{PART_FILE}", filesystem=filesystem)


def landed_partitions(lake_uri: str, dataset: str) -> list[str]:
    """Keys of the partitions of a dataset that have landed (staging folders excluded)."""
    filesystem, root = _resolve("/".join([lake_uri.rstrip("/"), "raw", dataset]))
    if filesystem.get_file_info(root).type == fs.FileType.NotFound:
        return []
    found = filesystem.get_file_info(fs.FileSelector(root, recursive=False))
    keys = [
        i.base_name
        for i in found
        if i.type == fs.FileType.Directory and not i.base_name.startswith((".", "_"))
    ]
    return sorted(k for k in keys if filesystem.get_file_info(f"{root}/{k}/{PART_FILE}").is_file)


def read_dataset(lake_uri: str, dataset: str) -> pa.Table | None:
    """Every landed partition of a dataset, or None when nothing has landed yet."""
    filesystem, root = _resolve("/".join([lake_uri.rstrip("/"), "raw", dataset]))
    if filesystem.get_file_info(root).type == fs.FileType.NotFound:
        return None
    selector = fs.FileSelector(root, recursive=True)
    files = sorted(
        i.path
        for i in filesystem.get_file_info(selector)
        if i.is_file and i.base_name == PART_FILE and "/." not in i.path
    )
    if not files:
        return None
    return pa.concat_tables([pq.read_table(f, filesystem=filesystem) for f in files])
