"""Head-to-head accuracy benchmark: ``idr resolve`` against Splink 5 (DuckDB), same data, same run.

    .venv-bench/bin/python benchmarks/accuracy.py                       # FEBRL1-4, gen10k, gen100k
    .venv-bench/bin/python benchmarks/accuracy.py --datasets febrl4,gen1m --systems splink

Runs under the benchmark venv (see benchmarks/README.md for the one-line install); ours runs
as ``.venv/bin/idr resolve`` and Splink as ``benchmarks/splink_runner.py``, each in a child
process, so both are timed from process start to output file and their peak memory is the
peak summed RSS of the whole process tree (for ours that includes Spark's JVM), sampled every
0.2 s with psutil. Sampling can miss a spike shorter than the interval; both systems are
measured the same way, so the ratio is fair even where the absolute figure is a little low.

Prints, per dataset, pairwise precision / recall / F1, B-cubed F1, wall seconds and peak GB per
system, then ours/Splink ratios for time and memory and the F1 differences; ``--out`` also
writes the tables as markdown. Prepared data and each system's output and log stay under
``--work-dir`` (default ``data/benchmarks``, git-ignored) for inspection.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import record  # noqa: E402
from datasets import DATASETS, REPO, Prepared, describe, prepare  # noqa: E402

from idr_pipeline.quality.accuracy import PairwiseScores, score_clusters  # noqa: E402

SYSTEMS = ["ours", "splink"]
DEFAULT_DATASETS = [d for d in DATASETS if d != "gen1m"]  # the million is opt-in: it takes long
SAMPLE_SECONDS = 0.2
PSS_EVERY = 10  # samples: PSS every 2 s
GB = 1024**3


@dataclass(frozen=True)
class Measured:
    wall_s: float
    peak_bytes: int
    returncode: int
    peak_pss_bytes: int = 0


@dataclass(frozen=True)
class Result:
    dataset: str
    system: str
    scores: PairwiseScores | None
    wall_s: float
    peak_gb: float
    error: str | None = None
    label: str = ""
    peak_pss_gb: float = 0.0


def run_measured(cmd: list[str], log: Path) -> Measured:
    """Run ``cmd`` to completion; wall time and peak RSS (and PSS) summed over its process tree.

    The tree is walked at every sample because Spark's JVM is a grandchild started after the
    driver, and a Python child's own maxrss would miss it entirely. Summed RSS counts a page
    every process maps, so it overstates a tree whose children are forked (ours: the driver's
    forked steps share its profiles copy-on-write); summed PSS splits each shared page among
    its sharers and adds up to the memory the tree holds.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        root = psutil.Process(proc.pid)
        peak = peak_pss = 0
        samples = 0
        while proc.poll() is None:
            # PSS makes the kernel walk every page a process maps (a gigabyte-sized JVM heap
            # included): read five times a second it slowed a million-record run by ~20%, so it
            # is read every PSS_EVERY-th sample; RSS, which costs nothing, every sample.
            rss, pss = _tree_memory(root, with_pss=samples % PSS_EVERY == 0)
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            samples += 1
            time.sleep(SAMPLE_SECONDS)
        wall = time.perf_counter() - started
    return Measured(wall, peak, proc.returncode, peak_pss)


def _tree_memory(root: psutil.Process, with_pss: bool = True) -> tuple[int, int]:
    """(summed RSS, summed PSS) of the tree; PSS falls back to RSS where the OS has none, and
    is 0 when not asked for."""
    rss = pss = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for p in procs:
        try:
            if not with_pss:
                rss += p.memory_info().rss
                continue
            full = p.memory_full_info()
            rss += full.rss
            pss += getattr(full, "pss", full.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return rss, pss


def ours_command(prepared: Prepared, output: Path) -> list[str]:
    cmd = [str(REPO / ".venv" / "bin" / "idr"), "resolve"]
    for path in prepared.ours_inputs:
        cmd += ["--input", str(path)]
    if prepared.ours_mapping is not None:
        cmd += ["--mapping", str(prepared.ours_mapping)]
    return [*cmd, "--output", str(output)]


def splink_command(prepared: Prepared, output: Path, threshold: float | None) -> list[str]:
    cmd = [sys.executable, str(REPO / "benchmarks" / "splink_runner.py"), str(prepared.folder), str(output)]
    return cmd if threshold is None else [*cmd, "--threshold", str(threshold)]


def run_system(prepared: Prepared, system: str, splink_threshold: float | None) -> Result:
    results = prepared.folder / "results"
    output = results / f"{system}.csv"
    output.unlink(missing_ok=True)
    if system == "ours":
        # The tree is edited while benchmarks run; the commit says which pipeline was measured.
        label = f"ours @ {_git_head()}"
        cmd = ours_command(prepared, output)
    else:
        label = f"splink {version('splink')}"
        cmd = splink_command(prepared, output, splink_threshold)
    measured = run_measured(cmd, results / f"{system}.log")
    peak_gb, pss_gb = measured.peak_bytes / GB, measured.peak_pss_bytes / GB
    if measured.returncode != 0 or not output.exists():
        error = f"exit {measured.returncode}, see {results / f'{system}.log'}"
        return Result(prepared.name, system, None, measured.wall_s, peak_gb, error, label, pss_gb)
    predicted = pd.read_csv(output, dtype=str)
    if "cluster_id" in predicted.columns:
        predicted = predicted.rename(columns={"cluster_id": "identity_id"})
    scores = score_clusters(predicted, prepared.truth)
    return Result(prepared.name, system, scores, measured.wall_s, peak_gb, label=label, peak_pss_gb=pss_gb)


# --- reporting ---------------------------------------------------------------------------


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}f}"


def dataset_table(results: list[Result]) -> list[str]:
    lines = [
        "| system | pairwise P | pairwise R | pairwise F1 | B-cubed F1 | wall s | peak GB | peak PSS GB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        memory = f"{r.peak_gb:.2f} | {r.peak_pss_gb:.2f}"
        if r.scores is None:
            lines.append(f"| {r.label} | failed: {r.error} | | | | {r.wall_s:.1f} | {memory} |")
            continue
        s = r.scores
        lines.append(
            f"| {r.label} | {_fmt(s.precision)} | {_fmt(s.recall)} | {_fmt(s.f1)} | "
            f"{_fmt(s.bcubed_f1)} | {r.wall_s:.1f} | {memory} |"
        )
    return lines


def ratio_table(results: list[Result]) -> list[str]:
    """ours/Splink for cost (below 1 means ours is cheaper); ours minus Splink for accuracy."""
    lines = [
        "| dataset | time ours/splink | memory ours/splink | pairwise F1 ours-splink | B-cubed F1 ours-splink |",
        "|---|---:|---:|---:|---:|",
    ]
    by_key = {(r.dataset, r.system): r for r in results}
    for dataset in dict.fromkeys(r.dataset for r in results):
        ours, splink = by_key.get((dataset, "ours")), by_key.get((dataset, "splink"))
        if ours is None or splink is None or ours.scores is None or splink.scores is None:
            continue
        lines.append(
            f"| {dataset} | {ours.wall_s / splink.wall_s:.2f} | {ours.peak_gb / splink.peak_gb:.2f} | "
            f"{ours.scores.f1 - splink.scores.f1:+.4f} | {ours.scores.bcubed_f1 - splink.scores.bcubed_f1:+.4f} |"
        )
    return lines


def header(argv: list[str]) -> list[str]:
    vm = psutil.virtual_memory()
    return [
        "# Accuracy benchmark: idr resolve vs Splink 5 (DuckDB)",
        "",
        f"- command: `.venv-bench/bin/python benchmarks/accuracy.py {' '.join(argv)}`".rstrip(),
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {psutil.cpu_count()} cores, {vm.total / GB:.0f} GB RAM, "
        f"Python {platform.python_version()}",
        f"- splink {version('splink')}, duckdb {version('duckdb')}; ours at git {_git_head()}",
        "- peak GB: peak summed RSS of the process tree (ours includes Spark's JVM), sampled every 0.2 s",
        "- peak PSS GB: the same for summed PSS (every 2 s), which counts a page shared by forked processes once",
        "- Splink models follow Splink's own examples; see benchmarks/splink_runner.py and benchmarks/README.md",
    ]


def _git_head() -> str:
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS), help=f"comma list of {DATASETS}")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma list of {SYSTEMS}")
    parser.add_argument("--out", type=Path, help="also write the report as markdown here")
    parser.add_argument("--work-dir", type=Path, default=REPO / "data" / "benchmarks")
    parser.add_argument("--splink-threshold", type=float, help="override the examples' clustering threshold")
    parser.add_argument("--record", action="store_true", help="write the tables into docs/performance.md")
    args = parser.parse_args(argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(datasets) - set(DATASETS)) + sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown dataset or system: {unknown}")

    if args.record:
        record.check(f"accuracy-{name}" for name in datasets)
    report = header(argv)
    results: list[Result] = []
    for name in datasets:
        print(f"preparing {name} ...", flush=True)
        prepared = prepare(name, args.work_dir)
        section = ["", f"## {name}", "", describe(prepared), ""]
        mine: list[Result] = []
        for system in systems:
            print(f"  running {system} on {name} ...", flush=True)
            mine.append(run_system(prepared, system, args.splink_threshold))
        section += dataset_table(mine)
        print("\n".join(section), flush=True)
        report += section
        results += mine
        if args.record:
            table = [describe(prepared), "", *dataset_table(mine)]
            record.record(f"accuracy-{name}", table, record.command_line([sys.argv[0], *argv]))
    ratios = ratio_table(results)
    if len(ratios) > 2:
        section = ["", "## Ratios", "", *ratios]
        print("\n".join(section))
        report += section
    if args.out:
        args.out.write_text("\n".join(report) + "\n")
        print(f"\nreport -> {args.out}")


if __name__ == "__main__":
    main()
