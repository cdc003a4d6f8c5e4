"""Resources: Spark, the lake, the store, Kafka and the pipeline's policy, built from the one
settings object (``IDR_*``); the store URL, which may hold a password, through ``dg.EnvVar``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster_pyspark import PySparkResource
from kafka import KafkaConsumer, KafkaProducer

from idr_pipeline.candidates.profile_encoders import ProfileEncoder, profile_encoder
from idr_pipeline.core.lake import Lake
from idr_pipeline.core.spark import spark_conf
from idr_pipeline.graph.blocklist import load_blocklist
from idr_pipeline.ingest.mapping import SourceMapping, load_mappings
from idr_pipeline.settings import (
    EmbedEncoder,
    EmbedNeighbors,
    EmbedPolicy,
    IdrSettings,
    MatchConfig,
    get_settings,
    match_config_of,
)
from idr_pipeline.store import open_store, parse_store_url, redact_store_url

#: The environment variable the store URL is read from when a run starts.
STORE_URL_VARIABLE = f"{IdrSettings.model_config['env_prefix']}STORE_URL"


class LakeResource(dg.ConfigurableResource):
    """The Parquet lake; a local folder on a laptop, hdfs:// in production."""

    uri: str

    def lake(self, spark) -> Lake:
        return Lake(self.uri, spark)


class StoreResource(dg.ConfigurableResource):
    """The serving store: SQLite embedded by default, SingleStore in production.

    ``url`` may hold a password, so ``build_resources`` configures it with
    ``dg.EnvVar("IDR_STORE_URL")``: Dagster resolves the variable when a run starts, and the UI's
    resource view, the launchpad and the runs' stored config show its name, never the URL.
    """

    url: str
    #: Rows per publish transaction (``IDR_STORE_PUBLISH_COMMIT_ROWS``; 0: one per table).
    publish_commit_rows: int = 5000
    #: How much lower the publish's CPU priority is (``IDR_STORE_PUBLISH_NICE``; 0: unchanged).
    publish_nice: int = 10

    def redacted_url(self) -> str:
        """The URL with its password masked: what metadata and logs may show."""
        return redact_store_url(self.url)

    @contextmanager
    def open(self) -> Iterator:

        store = open_store(self.url)
        try:
            store.ensure_schema()
            yield store
        finally:
            store.close()


class KafkaResource(dg.ConfigurableResource):
    """Kafka bootstrap servers; producers and offset-range consumers are built on demand."""

    bootstrap_servers: str

    def producer(self, **kwargs):

        return KafkaProducer(bootstrap_servers=self.bootstrap_servers.split(","), **kwargs)

    def consumer(self, **kwargs):
        # No group: offsets are owned by the sensor cursor, and group joins are slow on Tansu.

        return KafkaConsumer(bootstrap_servers=self.bootstrap_servers.split(","), group_id=None, **kwargs)


class PipelineConfig(dg.ConfigurableResource):
    """Matching policy, thresholds and paths that operators tune without code changes.

    Each field is the setting of the same name and type (``from_settings`` fills them by name,
    and a test holds the types equal), shown in the UI's resource view: none is a secret.
    """

    landing_dir: str
    source_mapping_path: str
    blocklist_path: str
    default_phone_region: str
    max_people_per_identifier: int
    driver_workers: int
    max_quarantine_rate: float
    max_cluster_size: int
    match_threshold: float
    min_avg_linkage: float
    ambiguity_margin_bits: float
    possible_match_threshold: float
    embed_policy: EmbedPolicy
    embed_encoder: EmbedEncoder
    embed_max_records: int
    embed_quantize: bool
    embed_neighbors: EmbedNeighbors
    embed_cosine_level: bool
    embedding_model_path: str
    index_dir: str

    @classmethod
    def from_settings(cls, settings: IdrSettings) -> PipelineConfig:
        return cls(**{name: getattr(settings, name) for name in cls.model_fields})

    def match_config(self) -> MatchConfig:
        return match_config_of(self)

    def profile_encoder(self) -> ProfileEncoder:
        return profile_encoder(
            self.embed_encoder, self.embedding_model_path, self.embed_quantize, self.driver_workers
        )

    def mappings(self) -> dict[str, SourceMapping]:
        return load_mappings(self.source_mapping_path)

    def blocklist(self) -> dict[str, set[str]]:
        return load_blocklist(self.blocklist_path)


def store_url_config(settings: IdrSettings) -> str:
    """What the store resource is configured with: ``dg.EnvVar("IDR_STORE_URL")`` when the URL
    comes from that variable, resolved at launch and shown by name only; otherwise the URL
    itself, which must then hold no password (the laptop's SQLite default holds none).
    """
    url = settings.store_url.get_secret_value()
    if os.environ.get(STORE_URL_VARIABLE) == url:
        return dg.EnvVar(STORE_URL_VARIABLE)
    if parse_store_url(url).password:
        raise ValueError(
            f"the store URL {redact_store_url(url)} holds a password but does not come from "
            f"{STORE_URL_VARIABLE} in the environment: set it there, so that Dagster reads it when "
            "a run starts and never shows it"
        )
    return url


def build_resources(settings: IdrSettings | None = None) -> dict[str, object]:
    """Every resource, built from the one settings object (``get_settings()`` by default)."""
    s = settings or get_settings()
    return {
        "pyspark": PySparkResource(spark_config=spark_conf(s)),
        "lake": LakeResource(uri=s.lake_uri),
        "store": StoreResource(
            url=store_url_config(s),
            publish_commit_rows=s.store_publish_commit_rows,
            publish_nice=s.store_publish_nice,
        ),
        "kafka": KafkaResource(bootstrap_servers=s.kafka_bootstrap_servers),
        "pipeline_config": PipelineConfig.from_settings(s),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
