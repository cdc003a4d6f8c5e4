"""Resources: Spark, the lake, the store, Kafka and pipeline settings, configured from IDR_* env."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster_pyspark import PySparkResource
from kafka import KafkaConsumer, KafkaProducer

from idr_pipeline.core.lake import Lake
from idr_pipeline.core.spark import spark_conf
from idr_pipeline.graph.blocklist import load_blocklist
from idr_pipeline.ingest.mapping import SourceMapping, load_mappings
from idr_pipeline.settings import MatchConfig, get_settings
from idr_pipeline.store import open_store


class LakeResource(dg.ConfigurableResource):
    """The Parquet lake; a local folder on a laptop, hdfs:// in production."""

    uri: str

    def lake(self, spark) -> Lake:
        return Lake(self.uri, spark)


class StoreResource(dg.ConfigurableResource):
    """The serving store: SQLite embedded by default, SingleStore in production."""

    url: str

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
    """Matching policy and thresholds that operators tune without code changes."""

    landing_dir: str
    source_mapping_path: str
    blocklist_path: str
    default_phone_region: str
    max_people_per_identifier: int
    driver_workers: int = 2
    max_quarantine_rate: float
    max_cluster_size: int
    match_threshold: float
    min_avg_linkage: float
    embed_policy: str
    embed_max_records: int
    embed_quantize: bool
    embedding_model_path: str
    index_dir: str

    def match_config(self):

        return MatchConfig(
            threshold=self.match_threshold,
            min_avg_linkage=self.min_avg_linkage,
            max_cluster_size=self.max_cluster_size,
            max_people_per_identifier=self.max_people_per_identifier,
            workers=self.driver_workers,
        )

    def mappings(self) -> dict[str, SourceMapping]:
        return load_mappings(self.source_mapping_path)

    def blocklist(self) -> dict[str, set[str]]:
        return load_blocklist(self.blocklist_path)


def build_resources() -> dict[str, object]:
    s = get_settings()
    return {
        "pyspark": PySparkResource(spark_config=spark_conf(s)),
        "lake": LakeResource(uri=s.lake_uri),
        "store": StoreResource(url=s.store_url),
        "kafka": KafkaResource(bootstrap_servers=s.kafka_bootstrap_servers),
        "pipeline_config": PipelineConfig(
            landing_dir=s.landing_dir,
            source_mapping_path=s.source_mapping_path,
            blocklist_path=s.blocklist_path,
            default_phone_region=s.default_phone_region,
            max_people_per_identifier=s.max_people_per_identifier,
            driver_workers=s.driver_workers,
            max_quarantine_rate=s.max_quarantine_rate,
            max_cluster_size=s.max_cluster_size,
            match_threshold=s.match_threshold,
            min_avg_linkage=s.min_avg_linkage,
            embed_policy=s.embed_policy,
            embed_max_records=s.embed_max_records,
            embed_quantize=s.embed_quantize,
            embedding_model_path=s.embedding_model_path,
            index_dir=s.index_dir,
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
