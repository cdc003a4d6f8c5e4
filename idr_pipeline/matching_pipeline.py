"""The probabilistic stages over the lake: embeddings, index, candidates, model, scores, clusters.

Each function reads its inputs from the lake, calls the pure functions in ``probabilistic`` /
``candidates`` / ``matching``, writes a new version of its output and returns the figures its
Dagster asset reports. Profiles are brought to the driver as pandas: the comparison and
clustering code is vectorised numpy, and a million profiles fit comfortably in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import SparkSession

from idr_pipeline.candidates.minhash import BandChoice
from idr_pipeline.identity.clustering import CLUSTERING_COLUMNS, rows_clustering_reads, strong_components
from idr_pipeline.lake import Lake
from idr_pipeline.matching.fellegi_sunter import MatchModel
from idr_pipeline.pipeline import CLEAN, EDGES
from idr_pipeline.probabilistic import (
    PAIR_KEYS,
    WEIGHT_PREFIX,
    MatchConfig,
    arrow_positions,
    cluster,
    generate_candidates,
    mask_shared_identifiers,
    policy_of,
    score_position_chunks,
    train_on_positions,
    weight_names,
    weights_json,
)

EMBEDDINGS = ("matching", "profile_embeddings")
CANDIDATES = ("matching", "candidate_pairs")
# The EM sample, written with the candidates: it includes pairs of training-only rules.
TRAINING_PAIRS = ("matching", "training_pairs")
MODEL = ("matching", "match_model")
SCORED = ("matching", "scored_pairs")
KEPT_LINKS = ("resolution", "match_links")
REFUSED_LINKS = ("resolution", "refused_links")

PROFILE_COLUMNS = [
    "record_id", "source", "source_customer_id", "first_name", "last_name", "email", "email_key", "phone",
    "street", "city", "state", "postcode", "country", "dob", "national_id", "ip_address", "device_id",
    "anonymous_id", "updated_at",
]  # fmt: skip
# Identifiers one person owns. A phone is left to the model: landlines are shared by households
# in ways the per-identifier limit cannot see when a record carries no first name.
PERSONAL_IDENTIFIERS = ("email_key", "national_id", "device_id", "source_customer_key")
EMBEDDING_NEIGHBOURS = 10
EMBEDDING_MIN_COSINE = 0.80


_profile_memo: ContextVar[dict[tuple, object] | None] = ContextVar("profile_memo", default=None)


@contextmanager
def reusing_profiles() -> Iterator[None]:
    """Within it, the clean profiles (and their masked form) are read once per lake version.

    ``idr resolve`` runs four matching steps on one version of the profiles, and each re-read
    and re-masked them: 3.3 s and 2.8 s a time at a million records. Each caller still gets its
    own copy (0.3 s: the column arrays are copied, the strings are shared), so no step sees
    another's edits. The Dagster assets run as separate steps and read as before.
    """
    token = _profile_memo.set({})
    try:
        yield
    finally:
        _profile_memo.reset(token)


def _reused(key: tuple, read: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    memo = _profile_memo.get()
    if memo is None:
        return read()
    if key not in memo:
        memo[key] = read()
    return memo[key].copy()


def comparison_cache(lake: Lake, config: MatchConfig) -> dict:
    """The ``Sides`` cache of the masked profiles (their factorised and cleaned columns): within
    ``reusing_profiles`` training and scoring share it (3.3 s to build at a million records),
    outside each call starts empty."""
    memo = _profile_memo.get()
    if memo is None:
        return {}
    return memo.setdefault(("comparison_cache", *_profiles_key(lake), config.max_people_per_identifier), {})


def _profiles_key(lake: Lake) -> tuple:
    return (lake.path(*CLEAN), lake.latest_version(*CLEAN))


def read_profiles(lake: Lake, columns: Sequence[str] = PROFILE_COLUMNS) -> pd.DataFrame:
    """The clean profiles in record id order, whatever order the cleaning job wrote them in.

    The matching samples pairs by position (EM, u) and breaks ties by position, so without a
    fixed order the identities would shift with Spark's partitioning: at a million records,
    a change of the cleaning job's shuffle key alone moved 0.9% of the records. Any subset of
    ``columns`` gives the same rows in the same order.
    """
    wanted = ["record_id", *(c for c in columns if c != "record_id")]
    return _reused(
        ("profiles", *_profiles_key(lake), tuple(wanted)),
        lambda: (
            lake.read_latest_arrow(*CLEAN, columns=wanted)
            .sort_by("record_id")
            .to_pandas()
            .drop_duplicates("record_id")
        ),
    )


def records_to_embed(profiles: pd.DataFrame, linked: set[str], policy: str, limit: int) -> pd.DataFrame:
    """Which profiles get an embedding.

    MiniLM costs milliseconds per record on a laptop CPU, so by default only records that no
    shared strong identifier links ("unlinked") are embedded: they are where a fuzzy, typo- and
    nickname-tolerant neighbour search can still find a match the cheap generators missed.
    """
    if policy == "none":
        return profiles.iloc[0:0]
    chosen = profiles if policy == "all" else profiles[~profiles["record_id"].isin(linked)]
    return chosen.sort_values("record_id").head(limit)


@dataclass
class EmbeddingStats:
    embedded: int
    eligible: int
    seconds: float
    policy: str


def run_embeddings(
    spark: SparkSession, lake: Lake, policy: str, limit: int, model_path: str, quantize: bool
) -> EmbeddingStats:
    import time

    from idr_pipeline.candidates.embedding import encode, profile_text

    # With embeddings off nothing is chosen: skip reading every profile and edge to say so.
    off = policy == "none"
    profiles = pd.DataFrame(columns=PROFILE_COLUMNS, dtype=object) if off else read_profiles(lake)
    linked: set[str] = set()
    if not off and lake.has_dataset(*EDGES):
        edges = lake.read_latest_pandas(*EDGES, columns=["src", "dst"])
        linked = set(edges["src"]) | set(edges["dst"])
    chosen = records_to_embed(profiles, linked, policy, limit)
    started = time.perf_counter()
    vectors = encode(profile_text(chosen), model_path, quantize=quantize)
    seconds = time.perf_counter() - started
    dim = vectors.shape[1] if vectors.ndim == 2 else 384
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    table = pa.table(
        {
            "record_id": pa.array(chosen["record_id"].to_numpy(), pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, dim).cast(pa.list_(pa.float32())),
        }
    )
    lake.write_pandas_version(table, *EMBEDDINGS)
    eligible = len(profiles) if policy == "all" else int((~profiles["record_id"].isin(linked)).sum())
    return EmbeddingStats(embedded=len(chosen), eligible=eligible, seconds=seconds, policy=policy)


def read_embeddings(lake: Lake) -> tuple[list[str], np.ndarray]:
    if not lake.has_dataset(*EMBEDDINGS):
        return [], np.zeros((0, 384), dtype=np.float32)
    pdf = lake.read_latest_pandas(*EMBEDDINGS)
    if pdf.empty:
        return [], np.zeros((0, 384), dtype=np.float32)
    return pdf["record_id"].tolist(), np.vstack(pdf["vector"].to_numpy()).astype(np.float32)


def run_faiss_index(lake: Lake, index_dir: str) -> dict[str, object]:
    from idr_pipeline.candidates.faiss_index import FaissCandidateIndex

    record_ids, vectors = read_embeddings(lake)
    index = FaissCandidateIndex(dim=vectors.shape[1] if len(vectors) else 384)
    if record_ids:
        index.add(record_ids, vectors)
    path = index.save(index_dir)
    return {"vectors": len(index), "index_type": index.kind, "path": str(path)}


@dataclass
class CandidateStats:
    counts: pd.DataFrame  # generator, pairs
    band_choice: BandChoice
    stats: dict[str, int]
    report: pd.DataFrame | None


def run_candidates(
    spark: SparkSession, lake: Lake, index_dir: str, config: MatchConfig, truth_path: Path | None = None
) -> CandidateStats:
    from idr_pipeline.candidates.faiss_index import FaissCandidateIndex

    profiles = read_profiles(lake)
    extra = {}
    record_ids, vectors = read_embeddings(lake)
    if record_ids and Path(index_dir).exists():
        index = FaissCandidateIndex.load(index_dir)
        extra["embedding"] = index.neighbours_as_pairs(
            record_ids, vectors, k=EMBEDDING_NEIGHBOURS, min_cosine=EMBEDDING_MIN_COSINE
        )
    cands = generate_candidates(profiles, config, extra)
    by_generator, table = cands.by_generator, cands.table
    # Without embeddings (the default) every cosine is NaN and the ids need not become pandas.
    cosine = (
        pair_cosines(table.select(PAIR_KEYS).to_pandas(), record_ids, vectors)
        if record_ids
        else np.full(table.num_rows, np.nan)
    )
    lake.write_pandas_version(
        table.append_column("cosine", pa.array(cosine, type=pa.float64(), from_pandas=True)), *CANDIDATES
    )
    keys = pa.schema([(c, pa.string()) for c in PAIR_KEYS])
    lake.write_pandas_version(cands.training[PAIR_KEYS], *TRAINING_PAIRS, schema=keys)
    counts = pd.DataFrame(
        [{"generator": name, "pairs": by_generator.size(name)} for name in by_generator]
        + [{"generator": "union", "pairs": table.num_rows}]
    )
    report = None
    if truth_path is not None and truth_path.exists():
        from idr_pipeline.candidates.report import blocking_report

        truth = pd.read_csv(truth_path, dtype=str, keep_default_na=False)
        truth = truth[truth["record_id"].isin(profiles["record_id"])]
        report = blocking_report(by_generator, truth, n_records=len(profiles))
    return CandidateStats(counts=counts, band_choice=cands.band_choice, stats=cands.stats, report=report)


def pair_cosines(pairs: pd.DataFrame, record_ids: list[str], vectors: np.ndarray) -> np.ndarray:
    """Cosine for every pair whose two records are both embedded; NaN otherwise."""
    out = np.full(len(pairs), np.nan)
    if not record_ids or pairs.empty:
        return out
    position = pd.Series(np.arange(len(record_ids)), index=record_ids)
    left = pairs["record_id_l"].map(position)
    right = pairs["record_id_r"].map(position)
    both = (left.notna() & right.notna()).to_numpy()
    li = left[both].astype(int).to_numpy()
    ri = right[both].astype(int).to_numpy()
    out[both] = np.einsum("ij,ij->i", vectors[li], vectors[ri])
    return out


def read_masked_profiles(lake: Lake, config: MatchConfig) -> pd.DataFrame:
    """The profiles as the model sees them: household-shared identifier values blanked."""
    return _reused(
        ("masked", *_profiles_key(lake), config.max_people_per_identifier),
        lambda: mask_shared_identifiers(read_profiles(lake), config.max_people_per_identifier)[0],
    )


def run_match_model(spark: SparkSession, lake: Lake, config: MatchConfig) -> MatchModel:
    masked = read_masked_profiles(lake, config)
    pairs = lake.read_latest_arrow(*TRAINING_PAIRS, columns=PAIR_KEYS)
    left, right = arrow_positions(masked["record_id"], pairs["record_id_l"], pairs["record_id_r"])
    model = train_on_positions(masked, left, right, config, cache=comparison_cache(lake, config))
    # One row: written by Arrow, not through a Spark job.
    lake.write_pandas_version(pa.table({"model_json": [model.to_json()]}), *MODEL)
    return model


def read_model(lake: Lake) -> MatchModel:
    return MatchModel.from_json(
        lake.read_latest_arrow(*MODEL, columns=["model_json"])["model_json"][0].as_py()
    )


@dataclass
class ScoreStats:
    pairs: int
    above_threshold: int
    histogram: pd.DataFrame  # bucket, pairs


def run_scoring(spark: SparkSession, lake: Lake, config: MatchConfig) -> ScoreStats:
    masked = read_masked_profiles(lake, config)
    # Candidate ids stay Arrow strings: as pandas objects they were GBs and slow to look up.
    candidates = lake.read_latest_arrow(*CANDIDATES)
    left, right = arrow_positions(masked["record_id"], candidates["record_id_l"], candidates["record_id_r"])
    model = read_model(lake)
    weights = weight_names(model)
    columns = [*PAIR_KEYS, "probability", *weights, "generators"]
    types = {"probability": pa.float64(), "generators": pa.string()} | {c: pa.float32() for c in weights}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in columns])
    probabilities: list[np.ndarray] = []

    def parts():
        # Each scored chunk is written as it comes: held together, the pairs and their
        # weights were the run's peak memory at a million records.
        start = 0
        cosine = candidates["cosine"].to_numpy()
        parts = score_position_chunks(
            masked,
            left,
            right,
            model,
            cosine=cosine,
            workers=config.workers,
            cache=comparison_cache(lake, config),
        )
        for part in parts:
            ids = candidates.slice(start, len(part))
            start += len(part)
            probabilities.append(part["probability"].to_numpy())
            arrays = {c: ids[c] for c in (*PAIR_KEYS, "generators")} | {
                c: part[c].to_numpy() for c in part.columns
            }
            yield pa.Table.from_arrays([arrays[c] for c in columns], schema=schema)

    lake.write_pandas_parts(parts(), *SCORED, schema=schema)
    probability = pd.Series(np.concatenate(probabilities) if probabilities else np.zeros(0))
    buckets = pd.cut(probability, [0, 0.1, 0.5, 0.9, 0.99, 1.0], include_lowest=True)
    histogram = buckets.value_counts(sort=False).rename_axis("probability").reset_index(name="pairs")
    histogram["probability"] = histogram["probability"].astype(str)
    return ScoreStats(
        pairs=len(probability),
        above_threshold=int((probability >= config.threshold).sum()),
        histogram=histogram,
    )


@dataclass
class ClusterOutput:
    components: pd.DataFrame  # node, component
    kept: pd.DataFrame  # record_id_l, record_id_r, probability, weights
    refused_counts: dict[str, int]


@dataclass
class LinkedPairs:
    """The scored pairs plus the deterministic links, as row positions into the profiles.

    Rows 0..scored-1 are the scored pairs in their order; after them come the deterministic
    links nobody scored. Positions, not ids: at a million records, looking up tens of millions
    of id strings and holding them as Python objects was most of the clustering step, and the
    clustering reads only a small share of the rows.
    """

    left: np.ndarray
    right: np.ndarray
    probability: np.ndarray
    id_type: np.ndarray  # object: comma-joined identifier types of a deterministic link, or None
    scored: int  # how many of the rows are scored pairs

    def frame(self, rows: np.ndarray, record_ids: np.ndarray) -> pd.DataFrame:
        """The chosen rows as the clustering reads them, labelled by row number; ``scored_row``
        is missing for an added link."""
        return pd.DataFrame(
            {
                "record_id_l": record_ids[self.left[rows]],
                "record_id_r": record_ids[self.right[rows]],
                "probability": self.probability[rows],
                "scored_row": np.where(rows < self.scored, rows, np.nan),
                "id_type": self.id_type[rows],
            },
            index=rows,
        )


def deterministic_link_positions(
    src: np.ndarray, dst: np.ndarray, id_type: np.ndarray, profiles: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared strong identifiers (identity_edges: not blocklisted, not shared by several people)
    are links in their own right, whatever the model's score on the other attributes; the
    clustering constraints still apply to them. A shared phone counts only between two records
    that both name the same first name: a landline is a household's, and a record without a
    first name cannot show whose it is.

    ``src`` and ``dst`` are the edges' row positions in ``profiles``. Returns one row per
    linked pair, ordered by (lower position, higher position): the positions of record_id_l and
    record_id_r (record_id_l < record_id_r), and the pair's identifier types, sorted and
    comma-joined. All in positions and integer codes: the
    same done on id strings (a join on the first names, drop_duplicates, a group-by on pairs)
    took 2.4 s of the clustering step at a million records.
    """
    n = np.int64(max(len(profiles), 1))
    id_type = np.asarray(id_type, dtype=object)
    personal = np.isin(id_type, PERSONAL_IDENTIFIERS)
    phone = id_type == "phone"
    if phone.any():
        # The first two letters of the first name, lower-cased, as a code per distinct name;
        # -1 where there is no name.
        name_of_row, names = pd.factorize(profiles["first_name"])
        heads = np.array([n.lower()[:2] if isinstance(n, str) else "" for n in names], dtype=object)
        head_of_name = np.where(heads == "", -1, pd.factorize(heads)[0]) if len(heads) else heads
        head = np.append(head_of_name, -1).astype(np.int64)[name_of_row]
        personal |= phone & (head[src] >= 0) & (head[src] == head[dst])
    src, dst, types = np.asarray(src)[personal], np.asarray(dst)[personal], id_type[personal]
    if not len(src):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, dtype=object)
    pairs, of_pair = np.unique(
        np.minimum(src, dst).astype(np.int64) * n + np.maximum(src, dst), return_inverse=True
    )
    type_names, type_code = np.unique(types, return_inverse=True)
    sets = np.zeros(len(pairs), dtype=np.int64)
    np.bitwise_or.at(sets, of_pair.reshape(-1), np.left_shift(1, type_code.reshape(-1).astype(np.int64)))
    distinct, which = np.unique(sets, return_inverse=True)
    spelt = np.array(
        [",".join(t for i, t in enumerate(type_names) if int(b) >> i & 1) for b in distinct], dtype=object
    )
    lo, hi = pairs // n, pairs % n
    record_ids = profiles["record_id"].to_numpy(dtype=object)
    swap = record_ids[lo] > record_ids[hi]
    return np.where(swap, hi, lo), np.where(swap, lo, hi), spelt[which.reshape(-1)]


def link_positions(
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    profiles: pd.DataFrame,
) -> LinkedPairs:
    """The scored pairs (row positions into ``profiles``) with the deterministic links joined in:
    a scored pair that is also a link gets probability 1 and its identifier types; a link
    nobody scored is added after the scored rows. ``edges`` is (src, dst, id_type) of
    identity_edges, the records as row positions."""
    n = np.int64(max(len(profiles), 1))
    dl, dr, det_type = deterministic_link_positions(*edges, profiles)
    det_code = np.minimum(dl, dr) * n + np.maximum(dl, dr)  # sorted: the links come in this order
    probability = np.asarray(probability, dtype=np.float64).copy()
    id_type = np.full(len(left), None, dtype=object)
    found = np.zeros(len(det_code), dtype=bool)
    if len(det_code) and len(left):
        # Only a pair of two linked records can be a link: look those few up, not every pair.
        in_det = np.zeros(int(n), dtype=bool)
        in_det[dl] = in_det[dr] = True
        maybe = np.flatnonzero(in_det[left] & in_det[right])
        lo, hi = left[maybe], right[maybe]
        code = np.minimum(lo, hi).astype(np.int64) * n + np.maximum(lo, hi)
        at = np.minimum(np.searchsorted(det_code, code), len(det_code) - 1)
        is_link = det_code[at] == code
        hit, at = maybe[is_link], at[is_link]
        id_type[hit] = det_type[at]
        probability[hit] = 1.0
        found[at] = True
    extra = ~found
    if not extra.any():  # usual: the blocking rules propose every deterministic link
        return LinkedPairs(
            np.asarray(left, np.int64), np.asarray(right, np.int64), probability, id_type, len(left)
        )
    return LinkedPairs(
        left=np.concatenate([left, dl[extra]]).astype(np.int64, copy=False),
        right=np.concatenate([right, dr[extra]]).astype(np.int64, copy=False),
        probability=np.concatenate([probability, np.ones(int(extra.sum()))]),
        id_type=np.concatenate([id_type, det_type[extra]]),
        scored=len(left),
    )


def run_clustering(spark: SparkSession, lake: Lake, config: MatchConfig) -> ClusterOutput:
    # Only the columns the guards read: all of them cost 3.8 s at a million records, these 1.5.
    profiles = read_profiles(lake, CLUSTERING_COLUMNS)
    scored = lake.read_latest_arrow(*SCORED, columns=[*PAIR_KEYS, "probability"])
    edges = lake.read_latest_arrow(*EDGES, columns=["src", "dst", "id_type"])
    # One lookup for the pairs and the edges, so the record ids are hashed once.
    left, right = arrow_positions(
        profiles["record_id"],
        pa.chunked_array([*scored["record_id_l"].chunks, *edges["src"].chunks], pa.string()),
        pa.chunked_array([*scored["record_id_r"].chunks, *edges["dst"].chunks], pa.string()),
    )
    pairs = scored.num_rows
    links = link_positions(
        left[:pairs],
        right[:pairs],
        scored["probability"].to_numpy(),
        (left[pairs:], right[pairs:], edges["id_type"].to_numpy(zero_copy_only=False)),
        profiles,
    )
    # Only the rows the clustering can read become id strings: the strong pairs and the pairs
    # inside a strong component it guards. The result is the same as clustering every row.
    policy = policy_of(config)
    component = strong_components(links.left, links.right, links.probability, len(profiles), policy)
    rows = np.flatnonzero(
        rows_clustering_reads(links.left, links.right, links.probability, len(profiles), policy, component)
    )
    linked = links.frame(rows, profiles["record_id"].to_numpy(dtype=object))
    # Every row read lies inside one strong component: half of the components (by label parity)
    # go to a forked child.
    result = cluster(profiles, linked, config, part=(component[links.left[rows]] % 2 == 1))
    kept = linked.loc[result.kept.index].reset_index(drop=True)
    kept["weights"] = kept_weights(lake, kept)
    for frame, with_reason, dataset in ((kept, False, KEPT_LINKS), (result.refused, True, REFUSED_LINKS)):
        pdf, schema = _pairs_frame(frame, with_reason)
        lake.write_pandas_version(pdf, *dataset, schema=schema)
    components = pd.DataFrame({"node": list(result.labels), "component": list(result.labels.values())})
    return ClusterOutput(components=components, kept=kept, refused_counts=result.refused_counts())


def kept_weights(lake: Lake, kept: pd.DataFrame) -> list[str]:
    """The "why merged" JSON of each kept link: the model's weights where the pair was scored,
    else the identifier types it shares."""
    # A handful of identifier types over hundreds of thousands of links: one dumps per type.
    types = kept["id_type"].dropna().unique()
    out = kept["id_type"].map({t: json.dumps({"shared_identifier": t}) for t in types}).to_numpy(dtype=object)
    rows = kept["scored_row"]
    scored = rows.notna().to_numpy()
    if scored.any():
        columns = [c for c in lake.latest_columns(*SCORED) if c.startswith(WEIGHT_PREFIX)]
        # Taken in Arrow before pandas: the kept links are a twentieth of the scored pairs, and
        # all of their weights as pandas were most of this (3.2 s at a million records).
        weights = lake.read_latest_arrow(*SCORED, columns=columns)
        # Set in numpy: a pandas Series' masked __setitem__ of the JSON list took 0.8 s.
        out[scored] = weights_json(weights.take(rows[scored].astype(np.int64).to_numpy()).to_pandas())
    return out.tolist()


def _pairs_frame(pdf: pd.DataFrame, with_reason: bool) -> tuple[pd.DataFrame, pa.Schema]:
    schema = pa.schema(
        [
            ("record_id_l", pa.string()),
            ("record_id_r", pa.string()),
            ("probability", pa.float64()),
            ("reason" if with_reason else "weights", pa.string()),
        ]
    )
    return pdf[schema.names], schema
