"""Write a complete sample data set: the four source files, the truth and the mapping.

The output folder is self-describing: ``sources.yaml`` (a copy of the packaged mapping) says
how to read the four files, and ``truth.csv`` says which person each record depicts, so the
folder can be handed to the pipeline and to ``quality.accuracy`` without any other context.

truth.csv holds one row per distinct record id that depicts a person (``record_id,person_id``,
sorted by record id). An old version of a record and an exact duplicate row share their
record id and so appear once. Garbage (placeholder rows, blank and broken lines) depicts
nobody and is left out entirely rather than listed with an empty person: evaluation scores
only records that have a true person, and an empty-string person id would read as a person.

Same seed, same bytes: every random draw comes from generators seeded from ``seed`` in a fixed
order, timestamps are measured back from the fixed EPOCH, and no file records when it was made.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from idr_pipeline.devtools.synthetic import garbage
from idr_pipeline.devtools.synthetic.people import make_people
from idr_pipeline.devtools.synthetic.phenomena import DEFAULT_PHENOMENA, Phenomena
from idr_pipeline.devtools.synthetic.pools import build_pools
from idr_pipeline.devtools.synthetic.records import (
    SOURCES,
    SourceRows,
    generational_suffixes,
    plan_records,
    record_id,
    render_source,
)
from idr_pipeline.ingest.mapping import SourceMapping, load_mappings

ProgressCallback = Callable[[str, int], None]

TRUTH_FILE = "truth.csv"
SOURCES_FILE = "sources.yaml"

# The steps reported to `on_progress`, in order, so a progress bar can be sized up front.
GENERATION_STEPS: tuple[str, ...] = (
    "people",
    *(f"render:{s}" for s in SOURCES),
    *(f"write:{s}" for s in SOURCES),
    "truth",
)


@dataclass(frozen=True)
class GenerationResult:
    """What was written and how much of it, for the CLI summary and for tests.

    `record_counts` counts data rows per source file as written (header excluded), including
    old versions, exact duplicates and garbage lines. `garbage_rows` counts rows that depict
    nobody (placeholder rows plus blank/broken lines); `duplicate_rows` counts the extra copies
    of exactly duplicated rows. `truth_records` is the number of rows in truth.csv.
    """

    out_dir: Path
    seed: int
    n_people: int
    paths: dict[str, Path]
    truth_path: Path
    sources_path: Path
    record_counts: dict[str, int]
    garbage_rows: int
    duplicate_rows: int
    truth_records: int
    person_rows: int  # rows depicting a person, old versions included, exact duplicates not
    garbage_by_source: dict[str, int] = field(default_factory=dict)
    broken_lines: dict[str, int] = field(default_factory=dict)  # the unparseable part of garbage

    @property
    def total_rows(self) -> int:
        """Data rows in the four files, readable or not (what the raw zone will hold)."""
        return sum(self.record_counts.values())

    @property
    def records_by_source(self) -> dict[str, int]:
        """Rows per source that parse as records (garbage placeholders and duplicates included)."""
        return {s: n - self.broken_lines.get(s, 0) for s, n in self.record_counts.items()}

    @property
    def unreadable_rows(self) -> int:
        """Lines the tolerant readers report as parse errors; with records_by_source, every row."""
        return sum(self.broken_lines.values())

    @property
    def records_per_person(self) -> float:
        """Person-depicting rows per person (old versions count, exact duplicates do not)."""
        return self.person_rows / self.n_people if self.n_people else 0.0


def packaged_sources_yaml() -> Path:
    """The mapping shipped with the package; the generated files follow its column names."""
    return Path(str(resources.files("idr_pipeline") / "config" / SOURCES_FILE))


def generate_dataset(
    people: int,
    out_dir: Path,
    seed: int = 42,
    on_progress: ProgressCallback | None = None,
    phenomena: Phenomena = DEFAULT_PHENOMENA,
) -> GenerationResult:
    """Generate `people` ground-truth people and write their source records to `out_dir`.

    `phenomena` sets the rates of the hard cases (Jr/Sr, family tablets, initial-only names,
    withheld birth dates); `Phenomena.none()` switches them all off.

    `on_progress(step, total)` is called as each of GENERATION_STEPS starts, with the number
    of items (people or rows) the step will produce, so a caller can open one bar per step
    and close the previous one; the call after the last step is the caller's cue to finish.
    """
    if people < 0:
        raise ValueError("people must be >= 0")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = on_progress or (lambda step, count: None)
    mapping_path = packaged_sources_yaml()
    mappings = load_mappings(mapping_path)

    report("people", people)
    pools = build_pools(seed)
    folks = make_people(people, pools, np.random.default_rng([seed, 10]), phenomena)

    slots: dict[str, int] = {}
    plans = plan_records(folks, np.random.default_rng([seed, 20]), slots)
    suffix = generational_suffixes(folks, np.random.default_rng([seed, 21]))
    # Placeholder rows take the record ids after the real ones (ceil: at least one per
    # non-empty source, so even small samples carry some).
    extra_ids = {s: int(np.ceil(slots[s] * garbage.VALUE_GARBAGE_RATE)) for s in SOURCES}
    # Record ids get one width for the whole run so that they sort the way they were issued.
    width = max(6, len(str(max([slots[s] + extra_ids[s] for s in SOURCES], default=0))))

    rendered: dict[str, SourceRows] = {}
    duplicates: dict[str, int] = {}
    value_junk: dict[str, int] = {}
    for j, source in enumerate(SOURCES):
        report(f"render:{source}", len(plans[source].person))
        rng = np.random.default_rng([seed, 30, j])
        rows = render_source(plans[source], folks, pools, suffix, rng, width, phenomena)
        junk_ids = record_id(source, np.arange(slots[source], slots[source] + extra_ids[source]), width)
        junk = garbage.value_garbage(rows, junk_ids, rng) if len(rows) else None
        dup_idx = np.flatnonzero(rng.random(len(rows)) < garbage.DUPLICATE_ROW_RATE)
        parts = [rows, *([junk] if junk is not None else []), rows.take(dup_idx)]
        combined = SourceRows.concat(parts)
        rendered[source] = combined.take(rng.permutation(len(combined)))
        duplicates[source] = int(dup_idx.size)
        value_junk[source] = len(junk) if junk is not None else 0

    paths: dict[str, Path] = {}
    counts: dict[str, int] = {}
    garbage_by_source: dict[str, int] = {}
    broken_lines: dict[str, int] = {}
    for j, source in enumerate(SOURCES):
        mapping = mappings[source]
        path = out_dir / mapping.file
        report(f"write:{source}", len(rendered[source]))
        rng = np.random.default_rng([seed, 40, j])
        written, broken = _write_source(rendered[source], mapping, path, rng)
        paths[source], counts[source] = path, written
        garbage_by_source[source] = value_junk[source] + broken
        broken_lines[source] = broken

    truth_path = out_dir / TRUTH_FILE
    report("truth", sum(int((r.person_id != "").sum()) for r in rendered.values()))
    truth_records, person_rows = _write_truth(rendered, duplicates, truth_path)
    sources_path = out_dir / SOURCES_FILE
    shutil.copyfile(mapping_path, sources_path)

    return GenerationResult(
        out_dir=out_dir,
        seed=seed,
        n_people=len(folks),
        paths=paths,
        truth_path=truth_path,
        sources_path=sources_path,
        record_counts=counts,
        garbage_rows=sum(garbage_by_source.values()),
        duplicate_rows=sum(duplicates.values()),
        truth_records=truth_records,
        person_rows=person_rows,
        garbage_by_source=garbage_by_source,
        broken_lines=broken_lines,
    )


def _source_table(rows: SourceRows, mapping: SourceMapping) -> tuple[list[str], list[np.ndarray]]:
    """Column names and values in the source's own vocabulary.

    Mapped columns come first, in the mapping's order; a mapped column the generator does not
    render is written empty (so the mapping still finds it); rendered fields the mapping does
    not name are dropped, since the source would not have them. Extras follow.
    """
    blank = np.full(len(rows), "", dtype=object)
    names: list[str] = []
    values: list[np.ndarray] = []
    for canonical, column in mapping.columns.items():
        names.append(column)
        if canonical == "record_id":
            values.append(rows.record_id)
        else:
            values.append(rows.columns.get(canonical, blank))
    for column, vals in rows.extras.items():
        names.append(column)
        values.append(vals)
    return names, values


def _write_source(
    rows: SourceRows, mapping: SourceMapping, path: Path, rng: np.random.Generator
) -> tuple[int, int]:
    """Write one source file; returns (data rows written, structural garbage lines)."""
    names, values = _source_table(rows, mapping)
    if mapping.format == "parquet":
        table = pa.table(
            {
                n: pa.array([v if v != "" else None for v in col], type=pa.string())
                for n, col in zip(names, values, strict=True)
            }
        )
        pq.write_table(table, path, compression="snappy")
        return len(rows), 0

    n_broken = int(round(len(rows) * garbage.STRUCTURAL_GARBAGE_RATE))
    if mapping.format == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(zip(*values, strict=True))
        lines = buf.getvalue().split("\n")[:-1] if len(rows) else []
        junk = garbage.csv_garbage_lines(lines, len(names), n_broken, rng, mapping.name)
        header = _csv_line(names)
    elif mapping.format == "jsonl":
        lines = _json_lines(names, values, rng)
        junk = garbage.jsonl_garbage_lines(lines, n_broken, rng)
        header = None
    else:  # pragma: no cover - load_mappings only admits the three formats above
        raise ValueError(f"unsupported format {mapping.format!r}")

    # Broken lines land at random places, never first: a file that opens with garbage is a
    # different (and rarer) failure than one with a bad line in the middle.
    positions = (
        np.sort(rng.integers(1, len(lines) + 1, size=len(junk))) if lines else np.zeros(len(junk), np.int64)
    )
    merged: list[str] = []
    start = 0
    for pos, line in zip(positions, junk, strict=True):
        merged.extend(lines[start:pos])
        merged.append(line)
        start = pos
    merged.extend(lines[start:])
    with open(path, "w", encoding="utf-8", newline="") as fh:
        if header is not None:
            fh.write(header + "\n")
        fh.write("".join(line + "\n" for line in merged))
    return len(merged), len(junk)


def _csv_line(fields: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    return buf.getvalue()


def _json_lines(names: list[str], values: list[np.ndarray], rng: np.random.Generator) -> list[str]:
    """One JSON object per row; an absent field is usually left out, sometimes null."""
    n = len(values[0]) if values else 0
    as_null = rng.random(n) < 0.35
    lines: list[str] = []
    for i, row in enumerate(zip(*values, strict=True)):
        null = as_null[i]
        obj = {k: (v if v != "" else None) for k, v in zip(names, row, strict=True) if v != "" or null}
        lines.append(json.dumps(obj, ensure_ascii=False))
    return lines


def _write_truth(rendered: dict[str, SourceRows], duplicates: dict[str, int], path: Path) -> tuple[int, int]:
    """truth.csv: distinct (record_id, person_id) of person rows; returns (rows, person rows)."""
    pairs: dict[str, str] = {}
    person_rows = 0
    for source in SOURCES:
        rows = rendered[source]
        has_person = rows.person_id != ""
        person_rows += int(has_person.sum()) - duplicates[source]
        for rid, pid in zip(rows.record_id[has_person], rows.person_id[has_person], strict=True):
            pairs[rid] = pid
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("record_id,person_id\n")
        fh.write("".join(f"{rid},{pairs[rid]}\n" for rid in sorted(pairs)))
    return len(pairs), person_rows
