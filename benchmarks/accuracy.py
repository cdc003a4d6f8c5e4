"""Head-to-head accuracy benchmark: ``idr resolve`` against Splink 5 (DuckDB), same data, same run.

    .venv-bench/bin/python benchmarks/accuracy.py        # FEBRL1-4, RLdata, PatentsView, gen10k, gen100k
    .venv-bench/bin/python benchmarks/accuracy.py --datasets febrl4,gen1m --systems splink

Runs under the benchmark venv (see benchmarks/README.md for the one-line install); ours runs
as ``.venv/bin/idr resolve`` and Splink as ``benchmarks/splink_runner.py``, each in a child
process, so both are timed from process start to output file and their peak memory is the
peak summed RSS of the whole process tree (for ours that includes Spark's JVM), sampled every
0.2 s with psutil. Sampling can miss a spike shorter than the interval; both systems are
measured the same way, so the ratio is fair even where the absolute figure is a little low.

Prints, per dataset, pairwise and B-cubed precision / recall / F1, wall seconds and peak GB per
system, then ours/Splink ratios for time and memory and the F1 differences; ``--out`` also
writes the tables as markdown. Splink is scored twice: at its model's clustering threshold (its
default), and at the threshold of ``SWEEP`` that scores best against the truth (best in
hindsight, which no user can pick without labels; from the scored pairs the runner exports, so
it costs Splink's measured run nothing but the export, which is taken off its wall time). For
PatentsView, whose truth is a size-weighted sample of inventors, the er-evaluation design
estimates over all mentions are printed as well, and the hindsight threshold is chosen on them.
Prepared data and each system's output and log stay under ``--work-dir`` (default
``data/benchmarks``, git-ignored) for inspection.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from er_evaluation import estimators
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

sys.path.insert(0, str(Path(__file__).resolve().parent))

import record  # noqa: E402
from datasets import DATASETS, NOT_TUNED_ON, REPO, TUNED_ON, Prepared, describe, prepare, spec  # noqa: E402

from idr_pipeline.quality.accuracy import PairwiseScores, score_clusters  # noqa: E402

SYSTEMS = ["ours", "splink"]
DEFAULT_DATASETS = [d for d in DATASETS if d != "gen1m"]  # the million is opt-in: it takes long
# Match-probability thresholds Splink's clusters are scored at for the best one in hindsight.
SWEEP = [0.5, 0.8, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 0.99999]
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
class Estimates:
    """er-evaluation design estimates over every mention, each (estimate, standard deviation)."""

    precision: tuple[float, float]
    recall: tuple[float, float]
    f1: tuple[float, float]
    bcubed_precision: tuple[float, float]
    bcubed_recall: tuple[float, float]


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
    threshold: str = "default"
    estimates: Estimates | None = None
    timed: bool = True  # False for the hindsight row: not a run of its own


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


def splink_command(
    prepared: Prepared, output: Path, threshold: float | None, pairs: Path, model: str
) -> list[str]:
    cmd = [sys.executable, str(REPO / "benchmarks" / "splink_runner.py"), str(prepared.folder), str(output)]
    cmd += ["--pairs", str(pairs), "--synthetic-model", model]
    return cmd if threshold is None else [*cmd, "--threshold", str(threshold)]


def run_system(
    prepared: Prepared, system: str, splink_threshold: float | None, splink_model: str
) -> list[Result]:
    """One measured run; for Splink also its best threshold in hindsight (a second, untimed row)."""
    results = prepared.folder / "results"
    output = results / f"{system}.csv"
    pairs = results / f"{system}.pairs.parquet"
    output.unlink(missing_ok=True)
    pairs.unlink(missing_ok=True)
    the_spec = spec(prepared)
    if system == "ours":
        # The tree is edited while benchmarks run; the commit says which pipeline was measured.
        label = f"ours @ {_git_head()}"
        cmd = ours_command(prepared, output)
    else:
        model = (
            "synthetic_tutorial"
            if the_spec["model"] == "synthetic" and splink_model == "tutorial"
            else the_spec["model"]
        )
        label = f"splink {version('splink')} {model}"
        cmd = splink_command(prepared, output, splink_threshold, pairs, splink_model)
    measured = run_measured(cmd, results / f"{system}.log")
    peak_gb, pss_gb = measured.peak_bytes / GB, measured.peak_pss_bytes / GB
    if measured.returncode != 0 or not output.exists():
        error = f"exit {measured.returncode}, see {results / f'{system}.log'}"
        return [Result(prepared.name, system, None, measured.wall_s, peak_gb, error, label, pss_gb)]
    predicted = _identities(output)
    sample = the_spec.get("truth") == "cluster_sample"
    wall = measured.wall_s
    threshold = "default"
    if system == "splink":
        wall -= json.loads(pairs.with_suffix(".json").read_text())["export_seconds"]
        threshold = (
            f"{the_spec['threshold']} (default)" if splink_threshold is None else f"{splink_threshold} (set)"
        )
    row = Result(
        prepared.name,
        system,
        score_clusters(predicted, prepared.truth),
        wall,
        peak_gb,
        label=label,
        peak_pss_gb=pss_gb,
        threshold=threshold,
        estimates=design_estimates(predicted, prepared) if sample else None,
    )
    if system != "splink":
        return [row]
    best_t, best, best_estimates = best_in_hindsight(
        predicted.record_id, pd.read_parquet(pairs), prepared, sample
    )
    hindsight = Result(
        prepared.name,
        "splink-hindsight",
        best,
        0.0,
        0.0,
        label=f"{label}, best threshold in hindsight (chosen with the truth)",
        threshold=f"{best_t}",
        estimates=best_estimates,
        timed=False,
    )
    return [row, hindsight]


def _identities(output: Path) -> pd.DataFrame:
    predicted = pd.read_csv(output, dtype=str)
    return predicted.rename(columns={"cluster_id": "identity_id"}) if "cluster_id" in predicted else predicted


def clusters_at(record_ids: pd.Series, pairs: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Connected components of the pairs at match probability >= threshold (Splink's clustering)."""
    ids = pd.Index(record_ids.unique())
    kept = pairs[pairs.match_probability >= threshold]
    left, right = ids.get_indexer(kept.record_id_l), ids.get_indexer(kept.record_id_r)
    graph = coo_matrix((np.ones(len(kept)), (left, right)), shape=(len(ids), len(ids)))
    _, labels = connected_components(graph, directed=False)
    return pd.DataFrame({"record_id": ids, "identity_id": labels.astype(str)})


def best_in_hindsight(
    record_ids: pd.Series, pairs: pd.DataFrame, prepared: Prepared, sample: bool
) -> tuple[float, PairwiseScores, Estimates | None]:
    """The SWEEP threshold whose clusters score the best pairwise F1 against the truth (the
    design-estimated F1 when the truth is a cluster sample)."""
    best: tuple[float, PairwiseScores, Estimates | None] | None = None
    for threshold in SWEEP:
        clusters = clusters_at(record_ids, pairs, threshold)
        scores = score_clusters(clusters, prepared.truth)
        est = design_estimates(clusters, prepared) if sample else None
        f1 = est.f1[0] if est is not None else scores.f1
        if best is None or f1 > (best[2].f1[0] if best[2] is not None else best[1].f1):
            best = (threshold, scores, est)
    assert best is not None
    return best


def design_estimates(predicted: pd.DataFrame, prepared: Prepared) -> Estimates:
    """er-evaluation's estimators for a truth that samples clusters with probability
    proportional to their size (``weights="cluster_size"``), over every record of the data."""
    every = pd.read_csv(prepared.splink_dir / spec(prepared)["inputs"][0], dtype=str, usecols=["record_id"])
    prediction = every.merge(predicted[["record_id", "identity_id"]].drop_duplicates("record_id"), how="left")
    prediction = prediction.identity_id.fillna("__single__" + prediction.record_id).set_axis(
        prediction.record_id
    )
    reference = prepared.truth.set_index("record_id").person_id

    def estimate(fn) -> tuple[float, float]:
        value, std = fn(prediction, reference, "cluster_size")
        return float(value), float(std)

    return Estimates(
        precision=estimate(estimators.pairwise_precision_estimator),
        recall=estimate(estimators.pairwise_recall_estimator),
        f1=estimate(estimators.pairwise_f_estimator),
        bcubed_precision=estimate(estimators.b_cubed_precision_estimator),
        bcubed_recall=estimate(estimators.b_cubed_recall_estimator),
    )


# --- reporting ---------------------------------------------------------------------------


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}f}"


def dataset_table(results: list[Result]) -> list[str]:
    lines = [
        "| system | clusters at | pairwise P | pairwise R | pairwise F1 | B-cubed P | B-cubed R | B-cubed F1 "
        "| wall s | peak GB | peak PSS GB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cost = f"{r.wall_s:.1f} | {r.peak_gb:.2f} | {r.peak_pss_gb:.2f}" if r.timed else "| |"
        if r.scores is None:
            lines.append(f"| {r.label} | | failed: {r.error} | | | | | | {cost} |")
            continue
        s = r.scores
        figures = [s.precision, s.recall, s.f1, s.bcubed_precision, s.bcubed_recall, s.bcubed_f1]
        lines.append(
            f"| {r.label} | {r.threshold} | " + " | ".join(_fmt(x) for x in figures) + f" | {cost} |"
        )
    return lines


def estimates_table(results: list[Result]) -> list[str]:
    """The er-evaluation design estimates, each with its standard deviation."""
    rows = [r for r in results if r.estimates is not None]
    if not rows:
        return []
    lines = [
        "Design estimates over every mention (er-evaluation, inventors sampled with probability "
        'proportional to size, `weights="cluster_size"`; estimate ± standard deviation). The table '
        "above scores the labeled mentions only and cannot see a labeled mention merged with an "
        "unlabeled one, so its precision is optimiztic.",
        "",
        "| system | clusters at | pairwise P | pairwise R | pairwise F1 | B-cubed P | B-cubed R |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        e = r.estimates
        assert e is not None
        figures = [e.precision, e.recall, e.f1, e.bcubed_precision, e.bcubed_recall]
        lines.append(
            f"| {r.label} | {r.threshold} | " + " | ".join(_estimate(v, sd) for v, sd in figures) + " |"
        )
    return ["", *lines]


def _estimate(value: float, sd: float) -> str:
    """An estimate ± its standard deviation; n/a where there was nothing to estimate from (no
    predicted pair among the sampled records leaves precision undefined)."""
    return "n/a" if np.isnan(sd) else f"{value:.4f} ± {sd:.4f}"


def ratio_table(results: list[Result]) -> list[str]:
    """ours/Splink for cost (below 1 means ours is cheaper); ours minus Splink (at its default
    threshold) for accuracy."""
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
        "- Splink: FEBRL models are Splink's own examples; the others are configured from Splink's documentation "
        "as a competent user would (benchmarks/splink_runner.py); its wall time leaves out the export of scored "
        "pairs for the hindsight row",
        f"- not tuned on: {', '.join(NOT_TUNED_ON)}. Ours had never run on them; Splink's models for them "
        "follow its documentation, with no threshold or parameter chosen from scores (the RLdata deterministic "
        "rules allow one fuzzy field because exact-only rules found no pair in RLdata500 and stopped the run)",
        *(f"- {name}: {note}" for name, note in TUNED_ON.items()),
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
    parser.add_argument("--record", action="store_true", help="write the tables into docs/performance.md")
    parser.add_argument("--splink-threshold", type=float, help="override the models' clustering threshold")
    parser.add_argument(
        "--splink-model",
        choices=["competent", "tutorial"],
        default="competent",
        help="Splink's model for the generator: competent (default) or the earlier tutorial-configured one",
    )
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
            mine += run_system(prepared, system, args.splink_threshold, args.splink_model)
        section += dataset_table(mine) + estimates_table(mine)
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
