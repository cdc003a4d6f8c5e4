"""Blocking report on generated data: pair completeness, candidates and time per generator.

    .venv/bin/python benchmarks/blocking_report.py --people 10000 100000

For each size: generate the sample (seed 42), run ``idr resolve`` on it with a kept work dir,
read the latest clean profiles from its lake, and block them with the deterministic rules and
MinHash LSH at each threshold (bands from ``choose_bands(threshold, num_perm)``). Recall is
measured against truth.csv restricted to the clean records: a quarantined record never reaches
blocking, so it would only make every generator look equally worse. Prepared samples are kept
under --root and reused, so a second run only times the blocking.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from idr_pipeline.candidates.deterministic import deterministic_pairs
from idr_pipeline.candidates.minhash import choose_bands, lsh_candidates, profile_signatures
from idr_pipeline.candidates.report import blocking_report
from idr_pipeline.generate import generate_dataset

LATEST = "_LATEST"


def prepare(people: int, root: Path, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(clean profiles, truth) for a generated sample, resolving it once."""
    base = root / f"p{people}"
    data, work = base / "data", base / "W"
    profiles_dir = work / "lake" / "clean" / "profiles"
    if not (profiles_dir / LATEST).exists():
        t0 = time.perf_counter()
        result = generate_dataset(people, data, seed=seed)
        cmd = [sys.executable, "-m", "idr_pipeline.cli", "resolve"]
        for path in result.paths.values():
            cmd += ["-i", str(path)]
        cmd += ["--mapping", str(result.sources_path), "-o", str(base / "out.csv"), "--work-dir", str(work)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        print(f"prepared {people:,} people in {time.perf_counter() - t0:.0f} s")
    version = (profiles_dir / LATEST).read_text().strip()
    profiles = pd.read_parquet(profiles_dir / f"v={version}")
    truth = pd.read_csv(data / "truth.csv", dtype=str)
    return profiles, truth


def run(people: int, root: Path, seed: int, thresholds: list[float], num_perm: int, max_bucket: int) -> None:
    profiles, truth = prepare(people, root, seed)
    n = len(profiles)
    in_clean = truth[truth["record_id"].isin(profiles["record_id"])]
    print(
        f"\n=== {people:,} people: {n:,} clean profiles ({len(truth) - len(in_clean):,} truth records not clean)"
    )

    t0 = time.perf_counter()
    det = deterministic_pairs(profiles)
    det_s = time.perf_counter() - t0
    print(f"\ndeterministic rules ({det_s:.1f} s):")
    print(det.counts.to_string(index=False))

    t0 = time.perf_counter()
    sig = profile_signatures(profiles, num_perm, seed=1)
    sig_s = time.perf_counter() - t0
    print(f"\nMinHash signatures: {num_perm} permutations, {sig_s:.1f} s")

    for threshold in thresholds:
        choice = choose_bands(threshold, num_perm)
        t0 = time.perf_counter()
        lsh = lsh_candidates(profiles["record_id"], sig, choice.r, choice.b, max_bucket)
        lsh_s = time.perf_counter() - t0
        name = f"minhash@{threshold:g}"
        print(
            f"\n--- threshold {threshold:g}: r={choice.r} b={choice.b} t_eff={choice.effective_threshold:.3f} "
            f"fp_area={choice.fp_area:.4f} fn_area={choice.fn_area:.4f} P(t)={choice.p_at_threshold:.3f}"
        )
        print(f"LSH {lsh_s:.1f} s: {lsh.stats()}")
        t0 = time.perf_counter()
        report = blocking_report({"deterministic": det.pairs, name: lsh.pairs}, in_clean, n_records=n)
        report_s = time.perf_counter() - t0
        report["seconds"] = [det_s, sig_s + lsh_s, det_s + sig_s + lsh_s]
        print(report.to_string(index=False, float_format=lambda x: f"{x:.6f}"))
        print(f"(report computed in {report_s:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--root", type=Path, default=Path("/tmp/idr-blocking-bench"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5])
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--max-bucket", type=int, default=200)
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    for people in args.people:
        run(people, args.root, args.seed, args.thresholds, args.num_perm, args.max_bucket)


if __name__ == "__main__":
    main()
