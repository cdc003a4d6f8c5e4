"""The two Kafka streams as data: topic, partitions definition, asset keys, parser, raw dataset.

The sensors, assets and checks are built from these descriptions, so the events and the
profiles streams cannot drift apart in how they plan, read, land and account for messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import dagster as dg

from idr_pipeline.core.catalog import RAW_EVENTS, RAW_PROFILE_STREAM
from idr_pipeline.settings import IdrSettings, get_settings
from idr_pipeline.stream.consume import RawMessage
from idr_pipeline.stream.parse import ParsedBatch, parse_events, parse_profiles

Parser = Callable[[str, int, Sequence[RawMessage], datetime | None], ParsedBatch]


@dataclass(frozen=True)
class Stream:
    name: str
    topic_setting: str  # the IdrSettings field that names the topic
    partitions_def: dg.DynamicPartitionsDefinition
    source_key: dg.AssetKey  # the external Kafka topic asset
    raw_key: dg.AssetKey
    dead_key: dg.AssetKey
    raw_dataset: str
    parse: Parser
    job_name: str
    sensor_name: str

    def topic(self, settings: IdrSettings | None = None) -> str:
        return getattr(settings or get_settings(), self.topic_setting)


events_ranges = dg.DynamicPartitionsDefinition(name="idr_events_ranges")
profiles_ranges = dg.DynamicPartitionsDefinition(name="idr_profiles_ranges")

EVENTS = Stream(
    name="events",
    topic_setting="events_topic",
    partitions_def=events_ranges,
    source_key=dg.AssetKey("kafka_idr_events"),
    raw_key=dg.AssetKey("raw_events"),
    dead_key=dg.AssetKey("dead_letter_events"),
    raw_dataset=RAW_EVENTS,
    parse=parse_events,
    job_name="stream_ingest_events_job",
    sensor_name="idr_events_sensor",
)
PROFILES = Stream(
    name="profiles",
    topic_setting="profiles_topic",
    partitions_def=profiles_ranges,
    source_key=dg.AssetKey("kafka_idr_profiles"),
    raw_key=dg.AssetKey("raw_profile_stream"),
    dead_key=dg.AssetKey("dead_letter_profiles"),
    raw_dataset=RAW_PROFILE_STREAM,
    parse=parse_profiles,
    job_name="stream_ingest_profiles_job",
    sensor_name="idr_profiles_sensor",
)
STREAMS: tuple[Stream, ...] = (EVENTS, PROFILES)
