"""What profile embeddings add to matching, and what they cost in ``idr resolve``'s time.

    .venv/bin/python benchmarks/embedding_matching.py --part matching \\
        --work-dir /work/wt/eval/data/benchmarks --datasets febrl1,febrl2,febrl3,febrl4,rldata10000
    .venv/bin/python benchmarks/embedding_matching.py --part time \\
        --work-dir /work/wt/eval/data/benchmarks --datasets gen100k --rounds 2

``--part matching`` resolves each prepared dataset (``benchmarks/datasets.py`` layout: ``ours/``
inputs and ``truth.csv``; prepare them with ``benchmarks/accuracy.py``) in this process, once
per variant, and prints per variant the candidate pairs (all, and those only the embedding
neighbors proposed), the pair completeness of the union with and without the embedding
neighbors, the true pairs only they found, and pairwise / B-cubed F1 of the identities:

* ``off``: no embeddings (``IDR_EMBED_POLICY=none``);
* ``orphans``: the defaults: every profile embedded, neighbors searched for the records the
  blocking rules and MinHash leave without a candidate, cosine not a comparison;
* ``orphans+cosine``: as ``orphans``, with the cosine comparison trained and scored;
* ``all``: every record searches its neighbors (the cost of not restricting to orphans).

``--part time`` runs ``.venv/bin/idr resolve`` as a child process on each dataset with
embeddings off and on (the defaults), interleaved for ``--rounds`` rounds, and prints each run's
wall time and the time of its embedding and indexing steps (from the step log ``idr resolve``
writes), so both figures come from one script run on the same machine state.
Lakes and outputs go under ``--out`` (default ``data/bench_embedding_matching``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import REPO, Prepared, prepare  # noqa: E402
from step_log import EMBED_STEPS, done_seconds, parse_step_log, seconds_of, step_seconds  # noqa: E402

from idr_pipeline.candidates.report import blocking_report  # noqa: E402
from idr_pipeline.cli.resolve import resolve_files  # noqa: E402
from idr_pipeline.core.catalog import CANDIDATES, EMBEDDINGS  # noqa: E402
from idr_pipeline.core.lake import Lake  # noqa: E402
from idr_pipeline.core.spark import get_spark  # noqa: E402
from idr_pipeline.quality.accuracy import score_clusters  # noqa: E402
from idr_pipeline.settings import get_settings  # noqa: E402

VARIANTS: dict[str, dict[str, object]] = {
    "off": {"embed_policy": "none"},
    "orphans": {},
    "orphans+cosine": {"embed_cosine_level": True},
    "all": {"embed_neighbors": "all"},
}


def matching_row(prepared: Prepared, variant: str, out: Path) -> dict[str, object]:
    settings = get_settings().model_copy(update={**VARIANTS[variant]})
    work = out / prepared.name / variant.replace("+", "_")
    output = work / "identities.csv"
    marks: list[tuple[float, str]] = []
    started = time.perf_counter()
    resolve_files(
        prepared.ours_inputs,
        output,
        mapping_path=prepared.ours_mapping,
        work_dir=work,
        settings=settings,
        on_step=lambda msg: marks.append((time.perf_counter(), msg)),
    )
    wall = time.perf_counter() - started
    steps = step_seconds(marks, started + wall)
    lake = Lake((work / "lake").resolve().as_uri(), get_spark(settings))
    cands = lake.read_latest_pandas(*CANDIDATES, columns=["record_id_l", "record_id_r", "generators"])
    embedded = lake.read_latest_arrow(*EMBEDDINGS, columns=["record_id"]).num_rows
    gens = cands["generators"].str.split(",")
    has_emb = gens.map(lambda g: "embedding" in g)
    only_emb = gens.map(lambda g: g == ["embedding"])
    truth = prepared.truth[["record_id", "person_id"]]
    n_records = int(pd.read_csv(output, dtype=str)["record_id"].nunique())
    report = blocking_report(
        {"without embedding": cands[~only_emb], "union": cands, "embedding only": cands[only_emb]},
        truth,
        n_records=n_records,
    ).set_index("generator")
    scores = score_clusters(pd.read_csv(output, dtype=str), truth)
    return {
        "dataset": prepared.name,
        "variant": variant,
        "records": n_records,
        "embedded": embedded,
        "pairs": len(cands),
        "emb pairs": int(has_emb.sum()),
        "emb-only pairs": int(only_emb.sum()),
        "emb-only true": int(round(report.loc["embedding only", "pair_completeness"] * _true_pairs(truth))),
        "PC w/o emb": round(float(report.loc["without embedding", "pair_completeness"]), 4),
        "PC union": round(float(report.loc["union", "pair_completeness"]), 4),
        "pairwise F1": round(scores.f1, 4),
        "B3 F1": round(scores.bcubed_f1, 4),
        "embed+index s": round(seconds_of(steps, *EMBED_STEPS), 2),
        "wall s": round(wall, 1),
    }


def _true_pairs(truth: pd.DataFrame) -> int:
    t = truth.dropna(subset=["person_id"])
    sizes = t[t["person_id"].astype(str) != ""].drop_duplicates("record_id").groupby("person_id").size()
    return int((sizes * (sizes - 1) // 2).sum())


def timed_resolve(prepared: Prepared, variant: str, out: Path, round_no: int) -> dict[str, object]:
    work = out / "time" / prepared.name / f"{variant}-{round_no}"
    output = work / "identities.csv"
    env = {**os.environ, "COLUMNS": "200"}
    env |= {f"IDR_{k.upper()}": str(v).lower() for k, v in VARIANTS[variant].items()}
    cmd = [str(REPO / ".venv" / "bin" / "idr"), "resolve"]
    for path in prepared.ours_inputs:
        cmd += ["--input", str(path)]
    if prepared.ours_mapping is not None:
        cmd += ["--mapping", str(prepared.ours_mapping)]
    cmd += ["--output", str(output), "--work-dir", str(work / "lake-work")]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"idr resolve failed ({variant}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    (work / "resolve.log").write_text(done.stdout)
    marks = parse_step_log(done.stdout)
    end = done_seconds(done.stdout)
    if end is None:
        raise RuntimeError(f"idr resolve ({variant}) printed no total:\n{done.stdout[-3000:]}")
    steps = step_seconds(marks, end)
    emb = seconds_of(steps, *EMBED_STEPS)
    return {
        "dataset": prepared.name,
        "round": round_no,
        "variant": variant,
        "idr resolve s (in-process)": round(end, 1),
        "wall s (with start-up)": round(wall, 1),
        "embedding s": round(seconds_of(steps, EMBED_STEPS[0]), 2),
        "indexing s": round(seconds_of(steps, EMBED_STEPS[1]), 2),
        "candidates s": round(seconds_of(steps, "generating candidate"), 2),
        "embed+index share": f"{emb / end:.1%}",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["matching", "time"], required=True)
    parser.add_argument("--work-dir", type=Path, default=REPO / "data" / "benchmarks")
    parser.add_argument("--datasets", default="febrl1,febrl2,febrl3,febrl4,rldata10000")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "data" / "bench_embedding_matching")
    args = parser.parse_args(argv)
    names = [d for d in args.datasets.split(",") if d]
    variants = [v for v in args.variants.split(",") if v]
    rows = []
    for name in names:
        prepared = prepare(name, args.work_dir)
        if args.part == "matching":
            for variant in variants:
                rows.append(matching_row(prepared, variant, args.out))
                print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
        else:
            for round_no in range(1, args.rounds + 1):
                for variant in ("off", "orphans") if round_no % 2 else ("orphans", "off"):
                    rows.append(timed_resolve(prepared, variant, args.out, round_no))
                    print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    print()
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
