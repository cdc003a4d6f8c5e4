"""The per-partition half of the cleaning job, in pandas: duplicates, standardizing, erasure and
each record id's current version, over one Spark partition sorted by :data:`PARTITION_KEY`.

Spark shuffles the raw rows once, by a key that keeps every spelling of a record id in one
partition, and sorts each partition by it. The rest would otherwise be three more Spark passes (a
group-by over every column for the exact duplicates, JSON of every row for the quarantine, and a
window over the standardized record ids, evaluated once for the clean rows and again for the
quarantine); here each is a step over rows that already sit together. Only the rows that share a
key with another row need the duplicate and version steps at all, and only quarantined rows need
their raw JSON.

Pure functions of pandas frames, so the rules are tested without Spark.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

from idr_pipeline.core.schema import CANONICAL_COLUMNS, EXTRAS_COLUMN
from idr_pipeline.core.sorted_runs import run_starts, whole_runs
from idr_pipeline.core.tombstones import Tombstones
from idr_pipeline.ingest.readers import META_LINE
from idr_pipeline.standardize import standardize_frame, validate_clean
from idr_pipeline.standardize.frame import QUARANTINE_REASON, REASONS
from idr_pipeline.standardize.whitespace import WHITESPACE_ESCAPES

#: The shuffle and sort key: the raw record id without any whitespace. Standardizing a record
#: id trims it and collapses its whitespace, so two raw ids that standardize alike always share
#: this key, and the versions of one record meet in one partition and one sorted run.
PARTITION_KEY = "_partition_key"
#: ``standardize.whitespace.WHITESPACE_CODEPOINTS`` as a Java regular expression class, for ``regexp_replace``.
JAVA_WHITESPACE_CLASS = f"[{WHITESPACE_ESCAPES}]"

OUTCOME = "_outcome"
CLEAN, QUARANTINED, ERASED = "clean", "quarantined", "erased"
DUPLICATE_COUNT = "_duplicate_count"
RAW_JSON = "_raw"
#: Where a row that is not clean keeps its quarantine reason and raw JSON once staged: see
#: :func:`staged`.
STAGED_REASON = REASONS
STAGED_RAW = EXTRAS_COLUMN
SUPERSEDED = "superseded_by_newer_version"
COLLISION = "record_id_collision_with_source:"

#: What makes two raw rows exact duplicates: the same content, whichever batch brought them.
CONTENT_COLUMNS = [*CANONICAL_COLUMNS, EXTRAS_COLUMN]
#: Among exact duplicates the first copy to arrive is kept (and its batch and line reported).
ARRIVAL_ORDER = ["_ingested_at", META_LINE, "_batch_id", "_trust"]


def without_whitespace(text: str) -> str:
    """Python's reading of :data:`PARTITION_KEY`, for tests and for callers outside Spark."""
    return "".join(text.split())


def collapse_exact_duplicates(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct content, the first to arrive, with how many copies it stood for.

    ``raw`` is sorted by :data:`PARTITION_KEY` (a record id's rows are adjacent), and exact
    duplicates share their record id, so only rows in a run of two or more can collapse.
    Missing values compare equal, as in a SQL group-by.
    """
    counts = np.ones(len(raw), dtype=np.int64)
    starts = run_starts(raw, [PARTITION_KEY])
    # A row shares its key when it does not start a run, or the next row does not.
    shared = ~starts | np.append(~starts[1:], False)
    if not shared.any():
        return raw.assign(**{DUPLICATE_COUNT: counts})
    runs = raw[shared].sort_values(ARRIVAL_ORDER, kind="stable", na_position="first")
    group = runs.groupby(CONTENT_COLUMNS, dropna=False, sort=False).ngroup().to_numpy()
    first = ~pd.Series(group).duplicated().to_numpy()
    copies = np.bincount(group)[group]
    keep = np.ones(len(raw), dtype=bool)
    positions = raw.index.get_indexer(runs.index)
    keep[positions[~first]] = False
    counts[positions] = copies
    out = raw.assign(**{DUPLICATE_COUNT: counts})[keep]
    return out


#: Identifier types an erasure tombstone may name, checked on the normalized values.
#: ``record_id`` tombstones a record itself, so a record linked by name and birth date alone
#: (no identifier) stays out too.
TOMBSTONE_TYPES = (
    "email",
    "email_key",
    "phone",
    "national_id",
    "device_id",
    "anonymous_id",
    "source_customer_key",
    "record_id",
)


def erased_mask(clean: pd.DataFrame, tombstones: Tombstones | Mapping[str, set[str]]) -> np.ndarray:
    """Rows whose normalized identifier (or record id) is tombstoned.

    Tombstones hold keyed digests (and, from older stores, plain SHA-256), so each distinct
    value is digested rather than the tombstones reversed (see idr_pipeline.core.tombstones).
    ``source_customer_key`` is ``source:source_customer_id``, as the identity graph spells it.
    A plain mapping is read as id_type -> plain SHA-256 set.
    """
    tombstones = Tombstones.coerce(tombstones)
    hit = np.zeros(len(clean), dtype=bool)
    types = tombstones.types()
    for id_type in TOMBSTONE_TYPES:
        if id_type not in types:
            continue
        hit |= tombstoned(tombstones, id_type, _identifier_values(clean, id_type))
    return hit


def tombstoned(tombstones: Tombstones, id_type: str, values: np.ndarray | pd.Series) -> np.ndarray:
    """Per value (None where missing): is it tombstoned for ``id_type``? Each distinct value is
    digested once."""
    codes, uniques = pd.factorize(values)
    found = tombstones.matches(id_type, [str(u) for u in uniques])
    return np.append(found, False)[codes]


def _identifier_values(clean: pd.DataFrame, id_type: str) -> np.ndarray:
    if id_type != "source_customer_key":
        return clean[id_type].to_numpy(dtype=object)
    sources = clean["source"].to_numpy(dtype=object)
    ids = clean["source_customer_id"].to_numpy(dtype=object)
    return np.array(
        [None if i is None else (i if s is None else f"{s}:{i}") for s, i in zip(sources, ids, strict=True)],
        dtype=object,
    )


def superseded_reasons(usable: pd.DataFrame) -> pd.Series:
    """Why each usable row lost its record id to another (null for the one current version).

    The current version has the latest ``updated_at`` (missing counts as oldest), then the
    latest arrival, then the later line. A loser from the winner's own source is an older
    version; one from another source is a collision of ids between systems, named as such
    rather than merged blindly.
    """
    reasons = np.full(len(usable), None, dtype=object)
    contested = usable["record_id"].duplicated(keep=False).to_numpy()
    if contested.any():
        ranked = usable[contested].sort_values(
            ["record_id", "updated_at", "_ingested_at", META_LINE],
            ascending=[True, False, False, False],
            na_position="last",
            kind="stable",
        )
        winners = ranked.groupby("record_id", sort=False)["source"].transform("first")
        losing = ranked["record_id"].duplicated(keep="first").to_numpy()
        reasons[usable.index.get_indexer(ranked.index[losing])] = [
            SUPERSEDED if source == winner else f"{COLLISION}{winner}"
            for source, winner in zip(ranked["source"][losing], winners[losing], strict=True)
        ]
    return pd.Series(reasons, index=usable.index)


def raw_json(raw: pd.DataFrame) -> list[str]:
    """The row's canonical fields as they arrived, as JSON without the missing ones.

    Kept on quarantine rows so a fixed normalizer can replay them.
    """
    columns = [raw[c].to_numpy(dtype=object) for c in CANONICAL_COLUMNS]
    return [
        json.dumps(
            {c: v for c, v in zip(CANONICAL_COLUMNS, row, strict=True) if v is not None},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for row in zip(*columns, strict=True)
    ]


def clean_rows(
    raw: pd.DataFrame,
    default_region: str,
    tombstones: Tombstones | Mapping[str, set[str]] | None = None,
) -> pd.DataFrame:
    """Each distinct raw row once, standardized, with its :data:`OUTCOME`.

    ``raw`` holds whole runs of :data:`PARTITION_KEY`. Erased rows leave before the versions are
    ranked, so an erased newer version neither hides nor supersedes an older one; they keep only
    their copy count, for the accounting.
    """
    deduped = collapse_exact_duplicates(raw.reset_index(drop=True))
    out = standardize_frame(deduped, default_region=default_region)
    reason = out[QUARANTINE_REASON].copy()
    standardized = reason.isna().to_numpy()
    if standardized.any():
        validate_clean(out[standardized])
    erased = erased_mask(out, tombstones or {})
    usable = standardized & ~erased
    if usable.any():
        reason[usable] = superseded_reasons(out[usable])
    out[QUARANTINE_REASON] = reason
    outcome = np.where(erased, ERASED, np.where(reason.isna(), CLEAN, QUARANTINED)).astype(object)
    out[OUTCOME] = outcome
    raw_text = np.full(len(out), None, dtype=object)
    quarantined = outcome == QUARANTINED
    if quarantined.any():
        raw_text[quarantined] = raw_json(deduped[quarantined])
    out[RAW_JSON] = raw_text
    return out


def staged(out: pd.DataFrame) -> pd.DataFrame:
    """``clean_rows``' output in the clean profiles' own columns, for one write split by outcome.

    The Spark job writes every row once, partitioned by :data:`OUTCOME`, and the clean partition
    becomes the clean profiles as it is (see ``Lake.adopt_version``), so all outcomes share the
    clean columns. A row that is not clean has no use for its field reasons or extras, so those
    two columns carry its quarantine reason and raw JSON (:data:`STAGED_REASON`,
    :data:`STAGED_RAW`) to the quarantine, which is the only reader of those rows.
    """
    rejected = (out[OUTCOME] != CLEAN).to_numpy()
    if not rejected.any():
        return out
    return out.assign(
        **{
            STAGED_REASON: np.where(rejected, out[QUARANTINE_REASON], out[STAGED_REASON]),
            STAGED_RAW: np.where(rejected, out[RAW_JSON], out[STAGED_RAW]),
        }
    )


def clean_sorted_partition(
    batches: Iterable[pd.DataFrame],
    default_region: str,
    tombstones: Tombstones | Mapping[str, set[str]] | None = None,
) -> Iterator[pd.DataFrame]:
    """:func:`clean_rows` over a partition's Arrow batches, sorted by :data:`PARTITION_KEY`."""
    for rows in whole_runs(batches, [PARTITION_KEY]):
        yield clean_rows(rows, default_region, tombstones)
