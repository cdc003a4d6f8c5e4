"""Settings of the Kafka side, read from ``IDR_*`` variables like the rest of the product.

Kept apart from :mod:`idr_pipeline.settings` so the streaming knobs travel with the streaming
code; the broker address itself stays there (``IDR_KAFKA_BOOTSTRAP_SERVERS``) because the
producers of the API use it too.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from idr_pipeline.stream.contracts import TOPIC_EVENTS, TOPIC_PROFILES


class StreamSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IDR_", env_file=".env", extra="ignore")

    # Topic names are settings so tests (and a staging cluster) can use their own.
    events_topic: str = TOPIC_EVENTS
    profiles_topic: str = TOPIC_PROFILES
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


@lru_cache(maxsize=1)
def get_stream_settings() -> StreamSettings:
    return StreamSettings()
