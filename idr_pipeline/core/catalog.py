"""Every dataset of the lake, by name: the one place a stage looks up where another stage's
output lives.

A derived dataset is a ``(zone, name)`` pair that :class:`~idr_pipeline.core.lake.Lake` writes
as immutable versions under ``<zone>/<name>/v=<version>/`` with a ``_LATEST`` pointer. The raw
zone is different: landed batches and offset ranges are immutable folders of their own, named
here by their dataset and partition.
"""

from __future__ import annotations

# ------------------------------------------------------------------ raw zone
RAW_ZONE = "raw"
#: Landed source files: ``raw/profiles/source=<s>/batch_id=<sha256>/``.
RAW_PROFILES = "profiles"
#: Landed Kafka offset ranges: ``raw/<dataset>/<range key>/``.
RAW_EVENTS = "events"
RAW_PROFILE_STREAM = "profile_stream"
RAW_DEAD_LETTERS = "dead_letters"


def raw_zone_path(lake_uri: str, dataset: str, partition_key: str) -> str:
    """Where one offset-range partition lands; rewriting a partition replaces this folder."""
    return "/".join([lake_uri.rstrip("/"), RAW_ZONE, dataset, partition_key])


def dead_letter_dataset(raw_dataset: str) -> str:
    """Dead letters of each stream in their own folder: both streams' range keys start at p0-0."""
    return f"{RAW_DEAD_LETTERS}/{raw_dataset}"


# ------------------------------------------------------------------ standardize
CLEAN = ("clean", "profiles")
QUARANTINE = ("clean", "quarantine")
#: Rows the last cleaning run dropped for erasure tombstones: a count only, for the accounting.
ERASED = ("clean", "erased_counts")
#: Where the cleaning job writes every row once, split by outcome, before the clean rows' folder
#: becomes the clean profiles; one folder per run, deleted when the run ends.
CLEANING_STAGING = ("clean", "_staging")

# ------------------------------------------------------------------ candidates
EMBEDDINGS = ("matching", "profile_embeddings")
CANDIDATES = ("matching", "candidate_pairs")
#: The EM sample, written with the candidates: it includes pairs of training-only rules.
TRAINING_PAIRS = ("matching", "training_pairs")

# ------------------------------------------------------------------ scoring
MODEL = ("matching", "match_model")
SCORED = ("matching", "scored_pairs")

# ------------------------------------------------------------------ graph
EDGES = ("resolution", "identity_edges")
SHARED_IDENTIFIERS = ("resolution", "shared_identifiers")
KEPT_LINKS = ("resolution", "match_links")
REFUSED_LINKS = ("resolution", "refused_links")
#: Pairs a steward may want to review: refused merges, ambiguous records' candidates, and the
#: grey band of probabilities below the threshold, each with its reason.
POSSIBLE_MATCHES = ("resolution", "possible_matches")
LINKS = ("resolution", "identity_links")
REGISTRY = ("resolution", "identity_registry")
MERGES = ("resolution", "identity_merges")
#: The streaming path's incremental identity graph.
INCREMENTAL_GRAPH = ("resolution", "incremental_graph")

# ------------------------------------------------------------------ golden
GOLDEN = ("serving", "golden_profiles")
IDENTIFIERS = ("serving", "identifiers")


# ------------------------------------------------------------------ segments
def feature_dataset(partition_key: str) -> tuple[str, str]:
    """One daily partition of ``user_features``."""
    return ("features", f"user_features/{partition_key}")


def embeddings_dataset(partition_key: str) -> tuple[str, str]:
    """One daily partition of ``behavior_embeddings``."""
    return ("features", f"behavior_embeddings/{partition_key}")
