"""Blocking report on generated data: pair completeness, candidates and time per generator.

    .venv/bin/python benchmarks/blocking_report.py --people 10000 100000

For each size: generate the sample (seed 42), run ``idr resolve`` on it with a kept work dir,
read the latest clean profiles from its lake, and block them with the deterministic rules and
MinHash LSH at each threshold (bands from ``choose_bands(threshold, num_perm)``); with
``--field-groups``, also MinHash over narrower field groups (name + one other field, records
having both). Tables: every deterministic rule alone (completeness, pairs, seconds, and what it
adds over the other rules), then per generator and the union. Recall is
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

from idr_pipeline.candidates.deterministic import DEFAULT_RULES, deterministic_pairs
from idr_pipeline.candidates.minhash import SHINGLE_COLUMNS, choose_bands, lsh_candidates, profile_signatures
from idr_pipeline.candidates.report import blocking_report
from idr_pipeline.devtools.synthetic import generate_dataset

LATEST = "_LATEST"
NAME = ("first_name", "last_name")
# Fields sources fill together with a name; each group gets its own MinHash index.
FIELD_GROUPS: dict[str, tuple[str, ...]] = {
    "name_dob": ("dob",),
    "name_email": ("email", "email_key"),
    "name_phone": ("phone",),
    "name_address": ("street", "postcode"),
}


def prepare(people: int, root: Path, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(clean profiles, truth) for a generated sample, resolving it once."""
    base = root / f"p{people}"
    data, work = base / "data", base / "W"
    profiles_dir = work / "lake" / "clean" / "profiles"
    if not (profiles_dir / LATEST).exists():
        t0 = time.perf_counter()
        result = generate_dataset(people, data, seed=seed)
        cmd = [sys.executable, "-m", "idr_pipeline.cli.app", "resolve"]
        for path in result.paths.values():
            cmd += ["-i", str(path)]
        cmd += ["--mapping", str(result.sources_path), "-o", str(base / "out.csv"), "--work-dir", str(work)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        print(f"prepared {people:,} people in {time.perf_counter() - t0:.0f} s")
    version = (profiles_dir / LATEST).read_text().strip()
    profiles = pd.read_parquet(profiles_dir / f"v={version}")
    truth = pd.read_csv(data / "truth.csv", dtype=str)
    return profiles, truth


def field_group_pairs(
    profiles: pd.DataFrame, fields: tuple[str, ...], threshold: float, num_perm: int, max_bucket: int
) -> pd.DataFrame:
    """MinHash over a name plus one field group, on the records that have both.

    Records lacking the group's field are left out: with only the name shingled, every two
    records of a common name would have Jaccard 1 and fill the buckets.
    """
    keep = profiles[list(NAME)].notna().any(axis=1) & profiles[
        [c for c in fields if c in profiles]
    ].notna().any(axis=1)
    sub = profiles.loc[keep].copy()
    for c in SHINGLE_COLUMNS:
        if c not in NAME and c not in fields and c in sub:
            sub[c] = None
    choice = choose_bands(threshold, num_perm)
    sig = profile_signatures(sub, choice.r * choice.b, seed=1)
    return lsh_candidates(sub["record_id"], sig, choice.r, choice.b, max_bucket).pairs


def rule_table(profiles: pd.DataFrame, truth: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """Each rule alone and what it adds over all the other rules (drop candidates have ~0)."""
    per_rule = {r.name: deterministic_pairs(profiles, (r,)).pairs for r in DEFAULT_RULES}
    alone = blocking_report(per_rule, truth, n_records=len(profiles)).set_index("generator")
    union_found = alone.loc["union", "true_pairs_found"]
    rows = []
    for name in per_rule:
        others = {k: v for k, v in per_rule.items() if k != name}
        without = blocking_report(others, truth, n_records=len(profiles)).set_index("generator")
        rows.append(
            {
                "rule": name,
                "pairs": int(alone.loc[name, "candidate_pairs"]),
                "completeness": alone.loc[name, "pair_completeness"],
                "adds_completeness": (union_found - without.loc["union", "true_pairs_found"])
                / alone.loc[name, "true_pairs"],
                "adds_pairs": int(
                    alone.loc["union", "candidate_pairs"] - without.loc["union", "candidate_pairs"]
                ),
            }
        )
    out = pd.DataFrame(rows).merge(counts[["rule", "seconds", "skipped_buckets"]], on="rule")
    return out


def run(
    people: int,
    root: Path,
    seed: int,
    thresholds: list[float],
    num_perm: int,
    max_bucket: int,
    field_groups: list[float],
    per_rule: bool,
) -> None:
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
    if per_rule:
        print("\neach rule alone, and what it adds over all other rules:")
        table = rule_table(profiles, in_clean, det.counts)
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))

    generators: dict[str, pd.DataFrame] = {"deterministic": det.pairs}
    seconds: dict[str, float] = {"deterministic": det_s}
    t0 = time.perf_counter()
    sig = profile_signatures(profiles, num_perm, seed=1)
    sig_s = time.perf_counter() - t0
    print(f"\nMinHash signatures: {num_perm} permutations, {sig_s:.1f} s")
    for threshold in thresholds:
        choice = choose_bands(threshold, num_perm)
        t0 = time.perf_counter()
        lsh = lsh_candidates(profiles["record_id"], sig, choice.r, choice.b, max_bucket)
        name = f"minhash@{threshold:g}"
        seconds[name] = sig_s + time.perf_counter() - t0
        generators[name] = lsh.pairs
        print(
            f"{name}: r={choice.r} b={choice.b} t_eff={choice.effective_threshold:.3f} "
            f"P(t)={choice.p_at_threshold:.3f} {lsh.stats()}"
        )
    for threshold in field_groups:
        for group, fields in FIELD_GROUPS.items():
            t0 = time.perf_counter()
            name = f"mh_{group}@{threshold:g}"
            generators[name] = field_group_pairs(profiles, fields, threshold, num_perm, max_bucket)
            seconds[name] = time.perf_counter() - t0

    print("\nper generator (each alone), and unions:")
    rows = [blocking_report({g: p}, in_clean, n_records=n).iloc[:1] for g, p in generators.items()]
    combos = {"union (deterministic only)": ["deterministic"]}
    for g in generators:
        if g != "deterministic":
            combos[f"union deterministic + {g}"] = ["deterministic", g]
    for label, members in combos.items():
        row = blocking_report({g: generators[g] for g in members}, in_clean, n_records=n).iloc[-1:].copy()
        row["generator"] = label
        rows.append(row)
    report = pd.concat(rows, ignore_index=True)
    report["pairs_per_record"] = report["candidate_pairs"] / n
    report["seconds"] = [seconds.get(g, 0.0) for g in generators] + [
        sum(seconds[g] for g in members) for members in combos.values()
    ]
    cols = [
        "generator",
        "candidate_pairs",
        "pairs_per_record",
        "pair_completeness",
        "pair_quality",
        "seconds",
    ]
    print(report[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--root", type=Path, default=Path("/tmp/idr-blocking-bench"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--thresholds", type=float, nargs="*", default=[0.5, 0.6])
    parser.add_argument(
        "--field-groups",
        type=float,
        nargs="*",
        default=[],
        help="thresholds for the name + field MinHash indexes",
    )
    parser.add_argument("--per-rule", action="store_true", help="each rule alone and its marginal gain")
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--max-bucket", type=int, default=200)
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    for people in args.people:
        run(
            people,
            args.root,
            args.seed,
            args.thresholds,
            args.num_perm,
            args.max_bucket,
            args.field_groups,
            args.per_rule,
        )


if __name__ == "__main__":
    main()
