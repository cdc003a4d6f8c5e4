"""The scoring stage over the lake: train the match model on the EM sample, score every candidate
pair, as the Dagster assets and ``idr resolve`` run them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import SparkSession

from idr_pipeline.candidates.embedding_lake import read_embeddings
from idr_pipeline.core.catalog import CANDIDATES, MODEL, SCORED, TRAINING_PAIRS
from idr_pipeline.core.lake import Lake
from idr_pipeline.core.positions import arrow_positions
from idr_pipeline.core.schema import PAIR_KEYS
from idr_pipeline.scoring.fellegi_sunter import MatchModel
from idr_pipeline.scoring.masking import mask_shared_identifiers
from idr_pipeline.scoring.score import PERSON_EVIDENCE, PERSON_WEIGHT, score_position_chunks, weight_names
from idr_pipeline.scoring.train import train_on_positions
from idr_pipeline.settings import MatchConfig
from idr_pipeline.standardize.profiles import current_memo, memoized, profiles_version, read_profiles


def comparison_cache(lake: Lake, config: MatchConfig) -> dict:
    """The ``Sides`` cache of the masked profiles (their factorized and cleaned columns): within
    ``reusing_profiles`` training and scoring share it (it is costly to build), outside each
    call starts empty."""
    memo = current_memo()
    if memo is None:
        return {}
    return memo.setdefault(
        ("comparison_cache", *profiles_version(lake), config.max_people_per_identifier), {}
    )


def read_masked_profiles(lake: Lake, config: MatchConfig) -> pd.DataFrame:
    """The profiles as the model sees them: household-shared identifier values blanked."""
    return memoized(
        ("masked", *profiles_version(lake), config.max_people_per_identifier),
        lambda: mask_shared_identifiers(read_profiles(lake), config.max_people_per_identifier)[0],
    )


def run_match_model(spark: SparkSession, lake: Lake, config: MatchConfig) -> MatchModel:
    masked = read_masked_profiles(lake, config)
    pairs = lake.read_latest_arrow(*TRAINING_PAIRS, columns=PAIR_KEYS)
    left, right = arrow_positions(masked["record_id"], pairs["record_id_l"], pairs["record_id_r"])
    vectors = profile_vectors(lake, masked["record_id"]) if config.embed_cosine_level else None
    model = train_on_positions(
        masked, left, right, config, cache=comparison_cache(lake, config), vectors=vectors
    )
    # One row: written by Arrow, not through a Spark job.
    lake.write_pandas_version(pa.table({"model_json": [model.to_json()]}), *MODEL)
    return model


def profile_vectors(lake: Lake, record_ids: pd.Series) -> np.ndarray | None:
    """The profile embeddings aligned with ``record_ids`` (NaN rows where a record has none);
    None when no record has one."""
    ids, vectors = read_embeddings(lake)
    if not ids:
        return None
    out = np.full((len(record_ids), vectors.shape[1]), np.nan, dtype=np.float32)
    rows = pd.Index(ids).get_indexer(record_ids)
    found = rows >= 0
    out[found] = vectors[rows[found]]
    return out


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
    # Candidate ids stay Arrow strings: as pandas objects they would be large and slow to look up.
    candidates = lake.read_latest_arrow(*CANDIDATES)
    left, right = arrow_positions(masked["record_id"], candidates["record_id_l"], candidates["record_id_r"])
    model = read_model(lake)
    weights = weight_names(model)
    columns = [*PAIR_KEYS, "probability", *weights, PERSON_WEIGHT, PERSON_EVIDENCE, "generators"]
    types = {
        "probability": pa.float64(),
        "generators": pa.string(),
        PERSON_WEIGHT: pa.float32(),
        PERSON_EVIDENCE: pa.bool_(),
    } | {c: pa.float32() for c in weights}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in columns])
    probabilities: list[np.ndarray] = []

    def parts():
        # Each scored chunk is written as it comes: held together, the pairs and their
        # weights would set the run's peak memory.
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
