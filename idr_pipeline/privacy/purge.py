"""The lake purge after an erasure: every dataset rewritten without the erased people's rows.

An erasure removes a person from the store at once (``api/erasure.py``) and leaves tombstones
that keep the person out of every later cleaning run. The lake still holds them: the raw
batches (kept as landed, for replay), the clean profiles and quarantine, the matching outputs,
the identity graph's datasets, the golden records, the event zone and the features, each in
up to ``KEEP_VERSIONS`` versions. This module rewrites every Parquet file of the lake that
holds a row of an erased person, file by file, without those rows:

1. Rows that carry the person's values: raw profile batches (mapped to the canonical columns
   by their source's mapping and standardized as cleaning does), the profile stream, clean
   profiles, events (cookie, account and e-mail keys, as stitching reads them), and free text
   (a quarantined row's raw JSON, an unparsable line, a dead letter's message), matched with
   the tombstones (keyed digests: the values are never needed) and by the erased record ids.
2. Rows that name the person's records or identities: every other dataset, by its record-id
   columns (``record_id``, pairs, edges, graph node keys), identity columns, and identifier
   columns (``id_type``/``id_value``, normalized identifier columns, golden identifier maps).
   Identities are the erased ones the purge requests name, and any identity in the lake's
   links all of whose records were purged.
3. The match model's term-frequency tables lose the purged rows' name, postcode, city and
   birth-date values (those values then score as the rarest do, until the model is retrained).

A file is rewritten beside itself and renamed over the original (its Hadoop checksum file, if
any, is removed), so a reader sees the old file or the new one. Files are rewritten with Arrow,
one at a time: the layout of the dataset (its files, versions and pointers) stays as it was,
no JVM is needed, and memory is bounded by the largest file. Re-running the purge finds
nothing more to drop. A plain SHA-256 tombstone whose value is found in the lake is reported
in ``legacy_found`` so the caller can re-key it (see ``tombstones.py``).

Outside the lake, and not purged here: the landing folder (the sources' own drop; a changed
file lands again and cleaning drops the person's rows by their tombstones), Kafka topics (until
their retention passes, re-landing an old offset range brings raw stream rows back, which the
next purge removes again), and the Faiss index (the erasure removes the vectors itself).
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from idr_pipeline.core.schema import CANONICAL_COLUMNS
from idr_pipeline.core.tombstones import Tombstones
from idr_pipeline.ingest.mapping import SourceMapping
from idr_pipeline.ingest.readers import META_RAW
from idr_pipeline.standardize import (
    email_match_key,
    normalize_email,
    normalize_identifier,
    normalize_national_id,
    normalize_phone,
    standardize_frame,
)
from idr_pipeline.standardize.batches import erased_mask
from idr_pipeline.stream.stitch import event_keys

log = logging.getLogger(__name__)

RECORD_COLUMNS = ("record_id", "record_id_l", "record_id_r", "src", "dst")
IDENTITY_COLUMNS = ("identity_id", "survivor_id", "merged_id", "merged_into")
#: Columns holding normalized identifier values in the derived datasets.
IDENTIFIER_COLUMNS = ("email", "email_key", "phone", "national_id", "device_id", "anonymous_id")
#: Graph node keys (``<type>:<value>``, ``record:<record_id>``) of the incremental graph.
NODE_KEY_COLUMNS = ("a", "b", "key", "node")
#: Free text that may hold a person's values: quarantined raw JSON, unparsable lines, messages.
TEXT_COLUMNS = ("_raw", META_RAW, "value")
#: The term-frequency tables of the match model, by the clean profile column they count.
TF_COLUMNS = ("first_name", "last_name", "postcode", "city", "dob")
RECORD_NODE = "record"
MODEL_DATASET = "matching/match_model"

_SPLIT = re.compile(r"[,;\t|\"\s]+")


@dataclass
class Subjects:
    """Who is purged: the tombstones, and the record and identity ids found so far."""

    tombstones: Tombstones
    record_ids: set[str] = field(default_factory=set)
    identity_ids: set[str] = field(default_factory=set)
    default_region: str = "US"
    #: (id_type, value) of plain SHA-256 tombstones whose value the purge came across.
    legacy_found: set[tuple[str, str]] = field(default_factory=set)
    #: Clean-profile values of purged rows, per TF column, to drop from the model's tables.
    tf_values: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def hits(self, id_type: str, values: Iterable[Any]) -> np.ndarray:
        """One bool per value (None never hits): tombstoned, or an erased record id."""
        array = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=object)
        if not len(array):
            return np.zeros(0, dtype=bool)
        present = pd.notna(array)
        codes, uniques = pd.factorize(np.where(present, array, None))
        texts = [str(u) for u in uniques]
        found = self.tombstones.matches(id_type, texts)
        legacy = self.tombstones.legacy_matches(id_type, texts)
        if legacy.any():
            self.legacy_found.update((id_type, v) for v, hit in zip(texts, legacy, strict=True) if hit)
        if id_type == "record_id" and self.record_ids:
            found |= np.fromiter((t in self.record_ids for t in texts), dtype=bool, count=len(texts))
        return np.append(found, False)[codes] & present

    def node_hits(self, keys: Iterable[Any]) -> np.ndarray:
        """Graph node keys ``<type>:<value>``: records by id, identifiers by tombstone."""
        array = np.asarray(list(keys), dtype=object)
        out = np.zeros(len(array), dtype=bool)
        by_type: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for n, key in enumerate(array):
            if isinstance(key, str) and ":" in key:
                kind, _, value = key.partition(":")
                by_type["record_id" if kind == RECORD_NODE else kind].append((n, value))
        for kind, items in by_type.items():
            positions = np.array([n for n, _ in items], dtype=np.int64)
            out[positions] = self.hits(kind, [v for _, v in items])
        return out

    def text_hits(self, texts: Iterable[Any]) -> np.ndarray:
        """Free text holding any tombstoned value: JSON values, else delimited tokens, each
        read as an e-mail, phone, national id or plain identifier."""
        array = list(texts)
        out = np.zeros(len(array), dtype=bool)
        for n, text in enumerate(array):
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            if isinstance(text, str) and text:
                out[n] = any(self._token_hits(token) for token in _tokens(text))
        return out

    def _token_hits(self, token: str) -> bool:
        candidates: list[tuple[str, str]] = []
        if "@" in token:
            email = normalize_email(token).value
            if email:
                candidates += [("email", email), ("email_key", email_match_key(email) or email)]
        digits = sum(ch.isdigit() for ch in token)
        if digits >= 7:
            phone = normalize_phone(token, self.default_region).value
            if phone:
                candidates.append(("phone", phone))
            nid = normalize_national_id(token).value
            if nid:
                candidates.append(("national_id", nid))
        plain = normalize_identifier(token).value
        if plain:
            candidates += [(t, plain) for t in ("device_id", "anonymous_id", "record_id")]
        return any(self.hits(t, [v])[0] for t, v in candidates)


def _tokens(text: str) -> Iterator[str]:
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict | list):
        yield from _json_strings(decoded)
        return
    for token in _SPLIT.split(text):
        if token:
            yield token


def _json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _json_strings(v)
    elif isinstance(value, str | int) and not isinstance(value, bool):
        yield str(value)


# ---------------------------------------------------------------------- row rules


def canonical_frame(table: pa.Table, mapping: SourceMapping | None) -> pd.DataFrame:
    """A raw batch's rows in the canonical columns (as strings), as cleaning maps them."""
    frame = table.to_pandas()
    out = pd.DataFrame(index=frame.index)
    for column in CANONICAL_COLUMNS:
        if mapping is None or mapping.canonical:
            source = column if column in frame.columns else None
        else:
            source = mapping.source_column_for(column)
        if (
            column == "source"
            and mapping is not None
            and not (mapping.canonical and "source" in frame.columns)
        ):
            out[column] = mapping.name
        elif source is not None and source in frame.columns:
            values = frame[source]
            out[column] = (
                values.astype(object)
                .where(values.notna(), None)
                .map(lambda v: v if v is None or isinstance(v, str) else str(v))
            )
        else:
            out[column] = None
    return out


def profile_rows_mask(table: pa.Table, subjects: Subjects, mapping: SourceMapping | None) -> np.ndarray:
    """Raw or streamed profile rows of erased people: standardized, then tombstones and ids."""
    if table.num_rows == 0:
        return np.zeros(0, dtype=bool)
    standardized = standardize_frame(canonical_frame(table, mapping), subjects.default_region)
    hit = erased_mask(standardized, subjects.tombstones)
    hit |= subjects.hits("record_id", standardized["record_id"].to_numpy(dtype=object))
    if META_RAW in table.column_names:
        hit |= subjects.text_hits(table.column(META_RAW).to_pylist())
    return hit


def events_mask(table: pa.Table, subjects: Subjects) -> np.ndarray:
    """Events of erased people: their cookie, account or e-mail key, as stitching reads them."""
    if table.num_rows == 0:
        return np.zeros(0, dtype=bool)
    columns = [c for c in ("anonymous_id", "user_id", "email") if c in table.column_names]
    keys = event_keys(table.select(columns).to_pandas())
    hit = np.zeros(table.num_rows, dtype=bool)
    for column in keys.columns:
        hit |= subjects.node_hits(keys[column].to_numpy(dtype=object))
    return hit


def derived_rows_mask(table: pa.Table, subjects: Subjects, *, by_identity: bool = True) -> np.ndarray:
    """Rows of any other dataset naming an erased record, identity or identifier."""
    names = set(table.column_names)
    hit = np.zeros(table.num_rows, dtype=bool)
    if table.num_rows == 0:
        return hit

    def column(name: str) -> np.ndarray:
        return table.column(name).to_numpy(zero_copy_only=False).astype(object)

    for name in RECORD_COLUMNS:
        if name in names:
            hit |= subjects.hits("record_id", column(name))
    if by_identity and subjects.identity_ids:
        erased = subjects.identity_ids
        for name in IDENTITY_COLUMNS:
            if name in names:
                hit |= np.fromiter((v in erased for v in column(name)), dtype=bool, count=table.num_rows)
    for name in IDENTIFIER_COLUMNS:
        if name in names:
            hit |= subjects.hits(name, column(name))
    if {"source", "source_customer_id"} <= names:
        sources, ids = column("source"), column("source_customer_id")
        keys = [
            None if i is None else (i if s is None else f"{s}:{i}") for s, i in zip(sources, ids, strict=True)
        ]
        hit |= subjects.hits("source_customer_key", keys)
    if {"id_type", "id_value"} <= names:
        types, values = column("id_type"), column("id_value")
        for id_type in {t for t in types if isinstance(t, str)}:
            rows = np.flatnonzero(types == id_type)
            hit[rows] |= subjects.hits(id_type, values[rows])
    for name in NODE_KEY_COLUMNS:
        if name in names and pa.types.is_string(table.schema.field(name).type):
            hit |= subjects.node_hits(column(name))
    if "identifiers" in names:
        hit |= np.array([_identifier_map_hits(v, subjects) for v in column("identifiers")], dtype=bool)
    for name in TEXT_COLUMNS:
        if name in names and _textual(table.schema.field(name).type):
            hit |= subjects.text_hits(column(name))
    return hit


def _textual(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)


def _identifier_map_hits(value: Any, subjects: Subjects) -> bool:
    if not isinstance(value, str) or not value.startswith("{"):
        return False
    try:
        mapping = json.loads(value)
    except ValueError:
        return False
    return any(
        bool(subjects.hits(t, [str(v) for v in values]).any())
        for t, values in mapping.items()
        if isinstance(values, list) and values
    )


def purge_model_tf(model_json: str, values: Mapping[str, set[str]]) -> tuple[str, int]:
    """The model with the given values removed from its term-frequency tables; how many went."""
    model = json.loads(model_json)
    removed = 0
    for column, table in (model.get("tf") or {}).items():
        gone = values.get(column) or set()
        for value in [v for v in table if v in gone]:
            del table[value]
            removed += 1
    return json.dumps(model), removed


# ---------------------------------------------------------------------- the walk


@dataclass
class PurgeReport:
    files_scanned: int = 0
    files_rewritten: int = 0
    rows_removed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    tf_values_removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "files_scanned": self.files_scanned,
            "files_rewritten": self.files_rewritten,
            "rows_removed": dict(sorted(self.rows_removed.items())),
            "rows_removed_total": sum(self.rows_removed.values()),
            "tf_values_removed": self.tf_values_removed,
        }


def _parquet_files(filesystem: pafs.FileSystem, root: str) -> list[str]:
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    out = []
    for info in filesystem.get_file_info(selector):
        if info.type != pafs.FileType.File or not info.path.endswith(".parquet"):
            continue
        relative = info.path[len(root) :].lstrip("/")
        if any(part.startswith(("_", ".")) for part in relative.split("/")):
            continue  # staging folders, temporary files
        out.append(info.path)
    return sorted(out)


def _dataset_of(relative: str) -> str:
    """``raw/profiles/source=crm/batch_id=x/part.parquet`` -> ``raw/profiles``; versioned and
    partitioned folders fold into their dataset."""
    parts = relative.split("/")[:-1]
    kept = []
    for part in parts:
        if part.startswith(("v=", "source=", "batch_id=")) or re.fullmatch(r"p\d+-\d+-\d+", part):
            break
        kept.append(part)
    return "/".join(kept)


def _source_of(relative: str) -> str | None:
    match = re.search(r"(?:^|/)source=([^/]+)/", relative)
    return match.group(1) if match else None


def _rewrite(filesystem: pafs.FileSystem, path: str, table: pa.Table) -> None:
    """Write ``table`` beside ``path`` and rename it over ``path``; drop the Hadoop checksum."""
    directory, _, name = path.rpartition("/")
    temporary = f"{directory}/.{name}.purge"
    pq.write_table(table, temporary, filesystem=filesystem)
    try:
        filesystem.move(temporary, path)
    except OSError:  # filesystems that will not rename over a file (HDFS)
        filesystem.delete_file(path)
        filesystem.move(temporary, path)
    checksum = f"{directory}/.{name}.crc"
    if filesystem.get_file_info(checksum).type == pafs.FileType.File:
        filesystem.delete_file(checksum)


def purge_lake(
    lake_uri: str, subjects: Subjects, mappings: Mapping[str, SourceMapping], dry_run: bool = False
) -> PurgeReport:
    """Rewrite every Parquet file of the lake without the subjects' rows (see the module doc).

    ``subjects.record_ids`` and ``identity_ids`` grow as the walk finds more of them.
    """
    filesystem, root = pafs.FileSystem.from_uri(lake_uri.rstrip("/"))
    files = _parquet_files(filesystem, root)
    report = PurgeReport()

    def relative(path: str) -> str:
        return path[len(root) :].lstrip("/")

    first = [
        p
        for p in files
        if _dataset_of(relative(p)) in ("raw/profiles", "raw/profile_stream", "clean/profiles")
    ]
    first_set = set(first)
    # 1. Rows carrying the people's values; their record ids join the erased ones.
    for path in first:
        rel = relative(path)
        table = pq.read_table(path, filesystem=filesystem)
        dataset = _dataset_of(rel)
        if dataset == "clean/profiles":
            hit = derived_rows_mask(table, subjects, by_identity=False)
            _collect_tf_values(table, hit, subjects)
        else:
            source = _source_of(rel)
            mapping = mappings.get(source) if source else None
            if dataset == "raw/profiles" and mapping is None:
                raise ValueError(f"raw batch {rel} is of source {source!r}, which the mapping does not name")
            hit = profile_rows_mask(table, subjects, mapping)
        subjects.record_ids.update(
            _record_ids(table, hit, mapping if dataset == "raw/profiles" else None, subjects.default_region)
        )
        report.files_scanned += 1
        _apply(filesystem, path, table, hit, dataset, report, dry_run)
    # Identities all of whose records are gone, from every version of the links.
    _complete_identities(filesystem, root, files, subjects)
    # 2. Everything else.
    for path in files:
        if path in first_set:
            continue
        rel = relative(path)
        dataset = _dataset_of(rel)
        table = pq.read_table(path, filesystem=filesystem)
        report.files_scanned += 1
        if dataset == MODEL_DATASET and "model_json" in table.column_names:
            _purge_model_file(filesystem, path, table, subjects, report, dry_run)
            continue
        if dataset == "raw/events":
            hit = events_mask(table, subjects)
        else:
            hit = derived_rows_mask(table, subjects)
        _apply(filesystem, path, table, hit, dataset, report, dry_run)
    return report


def _apply(
    filesystem: pafs.FileSystem,
    path: str,
    table: pa.Table,
    hit: np.ndarray,
    dataset: str,
    report: PurgeReport,
    dry_run: bool,
) -> None:
    removed = int(hit.sum())
    if not removed:
        return
    report.rows_removed[dataset] += removed
    report.files_rewritten += 1
    if not dry_run:
        _rewrite(filesystem, path, table.filter(pa.array(~hit)))


def _record_ids(table: pa.Table, hit: np.ndarray, mapping: SourceMapping | None, region: str) -> set[str]:
    if not hit.any():
        return set()
    if mapping is not None:
        ids = standardize_frame(canonical_frame(table.filter(pa.array(hit)), mapping), region)["record_id"]
        return {str(v) for v in ids.dropna()}
    if "record_id" not in table.column_names:
        return set()
    values = table.filter(pa.array(hit)).column("record_id").to_pylist()
    return {str(v) for v in values if v is not None}


def _collect_tf_values(table: pa.Table, hit: np.ndarray, subjects: Subjects) -> None:
    if not hit.any():
        return
    rows = table.filter(pa.array(hit))
    for column in TF_COLUMNS:
        if column in rows.column_names:
            subjects.tf_values[column].update(
                str(v) for v in rows.column(column).to_pylist() if v is not None
            )


def _complete_identities(
    filesystem: pafs.FileSystem, root: str, files: list[str], subjects: Subjects
) -> None:
    """Add identities of the lake's links all of whose records are purged."""
    records: dict[str, set[str]] = defaultdict(set)
    for path in files:
        if _dataset_of(path[len(root) :].lstrip("/")) != "resolution/identity_links":
            continue
        table = pq.read_table(path, columns=["record_id", "identity_id"], filesystem=filesystem)
        for record_id, identity_id in zip(
            table.column("record_id").to_pylist(), table.column("identity_id").to_pylist(), strict=True
        ):
            if record_id is not None and identity_id is not None:
                records[identity_id].add(record_id)
    subjects.identity_ids.update(
        identity for identity, ids in records.items() if ids and ids <= subjects.record_ids
    )


def _purge_model_file(
    filesystem: pafs.FileSystem,
    path: str,
    table: pa.Table,
    subjects: Subjects,
    report: PurgeReport,
    dry_run: bool,
) -> None:
    texts = table.column("model_json").to_pylist()
    purged, removed = [], 0
    for text in texts:
        if text is None:
            purged.append(text)
            continue
        new_text, n = purge_model_tf(text, subjects.tf_values)
        purged.append(new_text if n else text)
        removed += n
    if not removed:
        return
    report.tf_values_removed += removed
    report.files_rewritten += 1
    if not dry_run:
        index = table.column_names.index("model_json")
        _rewrite(
            filesystem,
            path,
            table.set_column(index, table.schema.field(index), pa.array(purged, pa.string())),
        )
