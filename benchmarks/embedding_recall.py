"""Do MiniLM embeddings add recall over exact blocking keys, and what does encoding cost?

    .venv/bin/python benchmarks/embedding_recall.py --people 5000 --work-dir /tmp/embbench

Generates people (or reuses `--work-dir` when it already holds them), runs `idr resolve` to get
the standardized profiles from the lake, then:

1. encode throughput (rows/s) for each model variant on a sample of profile texts: 1 vs 2 torch
   threads, length caps 256/64/32 tokens, dynamic int8 quantization of the Linear layers;
2. how far the quantized (and 32-token) embeddings drift from the full ones: row cosine between
   the two embeddings of a profile, and the overlap of each profile's top-k neighbor sets;
3. pair completeness of the top-k embedding pairs against truth.csv, and the number that
   matters: true pairs the embeddings find that share NO exact key (email key, phone,
   national id, device id, last name + dob, postcode + first initial), and of those, how many
   are not even connected through a chain of key-sharing records (the ones connected components
   over key edges could never recover).

Numbers depend on the machine's load; the run prints the load average next to the timings.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from idr_pipeline.candidates.embedding import encode, load_model, profile_text  # noqa: E402
from idr_pipeline.candidates.faiss_index import FaissCandidateIndex  # noqa: E402
from idr_pipeline.devtools.synthetic import generate_dataset  # noqa: E402
from idr_pipeline.settings import get_settings  # noqa: E402

SOURCE_FILES = ["crm_customers.csv", "pos_customers.csv", "web_signups.jsonl", "app_users.parquet"]


def standardized_profiles(people: int, seed: int, work: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean profiles and truth, generating and resolving only what `work` does not hold yet."""
    landing = work / "landing"
    if not (landing / "truth.csv").exists():
        generate_dataset(people, landing, seed=seed)
    profiles_dir = work / "W" / "lake" / "clean" / "profiles"
    if not (profiles_dir / "_LATEST").exists():
        idr = Path(sys.executable).with_name("idr")
        cmd = [str(idr), "resolve"]
        for name in SOURCE_FILES:
            cmd += ["-i", str(landing / name)]
        cmd += ["--mapping", str(landing / "sources.yaml"), "-o", str(work / "out.csv")]
        cmd += ["--work-dir", str(work / "W")]
        subprocess.run(cmd, check=True)
    version = (profiles_dir / "_LATEST").read_text().strip()
    version = version if version.startswith("v=") else f"v={version}"
    profiles = pd.read_parquet(profiles_dir / version)
    truth = pd.read_csv(landing / "truth.csv", dtype=str)
    return profiles.sort_values("record_id").reset_index(drop=True), truth


def true_pairs(profiles: pd.DataFrame, truth: pd.DataFrame) -> set[tuple[str, str]]:
    person = profiles[["record_id"]].merge(truth, on="record_id", how="inner")
    out: set[tuple[str, str]] = set()
    for ids in person.groupby("person_id")["record_id"].agg(sorted):
        out.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    return out


def blocking_keys(profiles: pd.DataFrame) -> pd.DataFrame:
    """One column per exact key the deterministic generator could block on (None = no key)."""

    def col(name: str) -> pd.Series:
        return profiles[name].where(profiles[name].notna(), None).astype(object)

    def lower(name: str) -> pd.Series:
        return profiles[name].str.lower()

    keys = pd.DataFrame(
        {
            "email_key": col("email_key"),
            "phone": col("phone"),
            "national_id": col("national_id"),
            "device_id": col("device_id"),
            "last_name+dob": lower("last_name") + "|" + profiles["dob"],
            "postcode+initial": profiles["postcode"] + "|" + lower("first_name").str[:1],
        },
    )
    # Built on the frame's own index (so the columns align), then keyed by record id.
    keys.index = profiles["record_id"].astype(str).to_numpy()
    return keys.astype(object).where(keys.notna(), None)


def shares_key(keys: pd.DataFrame, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The pairs that agree on at least one non-missing key."""
    rows = {rid: row for rid, row in zip(keys.index, keys.itertuples(index=False), strict=True)}
    out = set()
    for a, b in pairs:
        ra, rb = rows[a], rows[b]
        if any(x is not None and x == y for x, y in zip(ra, rb, strict=True)):
            out.add((a, b))
    return out


def key_components(keys: pd.DataFrame) -> dict[str, str]:
    """Union-find over records sharing any key: what connected components on key edges yield."""
    parent = {rid: rid for rid in keys.index}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for column in keys.columns:
        groups = keys[column].dropna()
        if groups.empty:
            continue
        for members in groups.groupby(groups).groups.values():
            members = list(members)
            root = find(members[0])
            for m in members[1:]:
                parent[find(m)] = root
    return {rid: find(rid) for rid in keys.index}


def cached_encode(work: Path, name: str, texts: list[str], *args: object, **kwargs: object) -> np.ndarray:
    """Encode once per work dir: a rerun to tweak the report should not pay minutes of MiniLM."""
    path = work / f"embeddings_{name}_{len(texts)}.npy"
    if path.exists():
        return np.load(path)
    vectors = encode(texts, *args, **kwargs)
    np.save(path, vectors)
    return vectors


def rows_per_second(texts: list[str], **kwargs: object) -> float:
    encode(texts[:64], **kwargs)  # warm-up: first call pays model load and allocator growth
    t0 = time.perf_counter()
    encode(texts, **kwargs)
    return len(texts) / (time.perf_counter() - t0)


def topk_sets(vectors: np.ndarray, k: int) -> np.ndarray:
    index = FaissCandidateIndex(dim=vectors.shape[1], flat_max=10**9)
    ids = [str(i) for i in range(len(vectors))]
    index.add(ids, vectors)
    names, _ = index.search(vectors, k + 1)
    return names[:, 1:]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b, strict=True)]))


def table(rows: list[list[object]], headers: list[str]) -> str:
    cells = [
        [f"{c:,.3f}" if isinstance(c, float) else f"{c:,}" if isinstance(c, int) else str(c) for c in r]
        for r in rows
    ]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    body = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, "-" * len(line), *body])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work-dir", type=Path, default=Path("data/bench_embedding"))
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--timing-rows", type=int, default=1000, help="texts per throughput run")
    parser.add_argument("--part", choices=["all", "timing", "recall"], default="all")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for the bulk encodes (1 wins on a busy box)"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    profiles, truth = standardized_profiles(args.people, args.seed, args.work_dir)
    texts = profile_text(profiles)
    model_path = get_settings().embedding_model_path
    load_model(model_path)  # model load is not part of any timing
    print(f"{len(profiles):,} profiles, {truth['person_id'].nunique():,} people; example texts:")
    for t in texts[:: max(1, len(texts) // 5)][:5]:
        print(f"  {t!r}")

    if args.part in ("all", "timing"):
        throughput(texts[: args.timing_rows], model_path, args.batch_size)
    if args.part in ("all", "recall"):
        recall(profiles, truth, texts, model_path, args)


def throughput(sample: list[str], model_path: str, batch_size: int) -> None:
    """Rows/s per variant, each after a warm-up call, on the same sample."""
    variants = [
        ("full, 1 thread, cap 256", dict(num_threads=1, max_seq_length=256)),
        ("full, 2 threads, cap 256", dict(num_threads=2, max_seq_length=256)),
        ("full, 2 threads, cap 64", dict(num_threads=2, max_seq_length=64)),
        ("full, 2 threads, cap 32", dict(num_threads=2, max_seq_length=32)),
        ("int8, 1 thread, cap 64", dict(num_threads=1, max_seq_length=64, quantize=True)),
        ("int8, 2 threads, cap 64", dict(num_threads=2, max_seq_length=64, quantize=True)),
        ("full, 2 threads, cap 64, batch 32", dict(num_threads=2, max_seq_length=64, batch_size=32)),
        ("int8, 2 threads, cap 32", dict(num_threads=2, max_seq_length=32, quantize=True)),
    ]
    speed_rows = []
    for name, kw in variants:
        kw = {"batch_size": batch_size, **kw}
        rate = rows_per_second(sample, model_path=model_path, **kw)
        speed_rows.append([name, int(kw["batch_size"]), round(rate, 1)])
        print(f"  {name}: {rate:,.0f} rows/s", flush=True)
    print(
        f"\nEncode throughput on {len(sample):,} texts (load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cpus)"
    )
    print(table(speed_rows, ["variant", "batch", "rows/s"]))


def recall(
    profiles: pd.DataFrame, truth: pd.DataFrame, texts: list[str], model_path: str, args: argparse.Namespace
) -> None:
    """Drift of the cheap variants, then what the top-k pairs recover that keys cannot."""
    record_ids = profiles["record_id"].astype(str).tolist()
    torch.set_num_threads(args.threads)
    full = cached_encode(args.work_dir, "full64", texts, model_path, args.batch_size, max_seq_length=64)
    int8 = cached_encode(
        args.work_dir, "int8_64", texts, model_path, args.batch_size, max_seq_length=64, quantize=True
    )
    # A 32-token cap only changes texts longer than 32 word pieces; encode just those.
    tokenizer = load_model(model_path).tokenizer
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    long_rows = [i for i, n in enumerate(lengths) if n > 32]
    cap32 = full.copy()
    if long_rows:
        cap32[long_rows] = encode(
            [texts[i] for i in long_rows], model_path, args.batch_size, max_seq_length=32
        )
    print(f"\n{len(long_rows):,} of {len(texts):,} texts exceed 32 word pieces (longest {max(lengths)})")
    cheap = {"int8, cap 64": int8, "full, cap 32": cap32}
    full_top = topk_sets(full, 10)
    drift_rows = []
    for name, vec in cheap.items():
        cos = np.einsum("ij,ij->i", full, vec)
        drift_rows.append(
            [
                name,
                float(cos.mean()),
                float(np.percentile(cos, 1)),
                float(cos.min()),
                overlap(full_top, topk_sets(vec, 10)),
            ]
        )
    print("\nAgreement with the full model (cap 64, fp32)")
    print(table(drift_rows, ["variant", "mean cos", "p1 cos", "min cos", "top-10 overlap"]))

    # 3. recall
    truth_set = true_pairs(profiles, truth)
    keys = blocking_keys(profiles)
    keyed = shares_key(keys, truth_set)
    keyless = truth_set - keyed
    component = key_components(keys)
    unreachable = {(a, b) for a, b in keyless if component[a] != component[b]}
    print(
        f"\nTrue pairs: {len(truth_set):,}; sharing an exact key: {len(keyed):,}; "
        f"sharing none: {len(keyless):,}; of those not even chained through key-sharing records: {len(unreachable):,}"
    )
    recall_rows = []
    examples: list[tuple[str, str]] = []
    for variant, vectors in (("full", full), ("int8", int8)):
        index = FaissCandidateIndex(dim=vectors.shape[1])
        index.add(record_ids, vectors)
        for k in args.k:
            pairs = index.neighbors_as_pairs(record_ids, vectors, k=k)
            found = set(zip(pairs["record_id_l"], pairs["record_id_r"], strict=True))
            hits = found & truth_set
            recall_rows.append(
                [
                    variant,
                    k,
                    len(found),
                    len(hits) / max(len(truth_set), 1),
                    len(hits) / max(len(found), 1),
                    len(hits & keyless),
                    len(hits & keyless) / max(len(keyless), 1),
                    len(hits & unreachable),
                ]
            )
            if variant == "full" and k == 10:
                examples = sorted(hits & unreachable)[:5]
    print("\nEmbedding top-k pairs against truth")
    print(
        table(
            recall_rows,
            [
                "model",
                "k",
                "pairs",
                "completeness",
                "precision",
                "keyless found",
                "of keyless",
                "unchained found",
            ],
        )
    )
    text_of = dict(zip(record_ids, texts, strict=True))
    if examples:
        print("\nExamples of true pairs found only by embeddings (no key, no key chain):")
        for a, b in examples:
            print(f"  {text_of[a]!r}  <->  {text_of[b]!r}")


if __name__ == "__main__":
    main()
