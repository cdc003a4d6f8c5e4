"""Rows per second of the standardization functions on generated data, one core, no Spark.

    .venv/bin/python benchmarks/standardize_throughput.py --people 100000

Prints per-source and total rows/s for standardize_frame alone and with the pandera contract,
on batches the size Spark hands to mapInPandas (spark.sql.execution.arrow.maxRecordsPerBatch).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import record

from idr_pipeline.core.schema import CANONICAL_COLUMNS, EXTRAS_COLUMN
from idr_pipeline.devtools.synthetic import generate_dataset
from idr_pipeline.ingest.mapping import load_mappings
from idr_pipeline.ingest.readers import META_ERROR, read_source_file
from idr_pipeline.standardize import standardize_frame, validate_clean

BATCH = 20_000


def canonical_frame(path: Path, fmt: str, columns: dict[str, str], source: str) -> pd.DataFrame:
    raw = read_source_file(path, fmt)
    raw = raw[raw[META_ERROR].isna()]
    out = pd.DataFrame({c: raw[columns[c]] if c in columns else None for c in CANONICAL_COLUMNS})
    out["source"] = source
    out[EXTRAS_COLUMN] = None
    return out.reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--record", action="store_true", help="write the table into docs/performance.md")
    args = parser.parse_args()
    if args.record:
        record.check(["standardize-throughput"])
    with tempfile.TemporaryDirectory() as tmp:
        result = generate_dataset(args.people, Path(tmp), seed=args.seed)
        mappings = load_mappings(result.sources_path)
        frames = {
            name: canonical_frame(result.paths[name], m.format, m.columns, name)
            for name, m in mappings.items()
        }
    total_rows, total_std, total_both = 0, 0.0, 0.0
    table = ["| source | rows | standardize rows/s | + contract rows/s |", "|---|---:|---:|---:|"]
    print(f"{'source':<8}{'rows':>10}{'standardize rows/s':>22}{'+ contract rows/s':>20}")
    for name, frame in frames.items():
        std_s = both_s = 0.0
        for start in range(0, len(frame), BATCH):
            batch = frame.iloc[start : start + BATCH]
            t0 = time.perf_counter()
            out = standardize_frame(batch)
            t1 = time.perf_counter()
            validate_clean(out[out["_quarantine_reason"].isna()])
            t2 = time.perf_counter()
            std_s += t1 - t0
            both_s += t2 - t0
        total_rows += len(frame)
        total_std += std_s
        total_both += both_s
        print(f"{name:<8}{len(frame):>10,}{len(frame) / std_s:>22,.0f}{len(frame) / both_s:>20,.0f}")
        table.append(f"| {name} | {len(frame):,} | {len(frame) / std_s:,.0f} | {len(frame) / both_s:,.0f} |")
    print(f"{'total':<8}{total_rows:>10,}{total_rows / total_std:>22,.0f}{total_rows / total_both:>20,.0f}")
    table.append(
        f"| total | {total_rows:,} | {total_rows / total_std:,.0f} | {total_rows / total_both:,.0f} |"
    )
    if args.record:
        record.record("standardize-throughput", table)


if __name__ == "__main__":
    main()
