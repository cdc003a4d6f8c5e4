"""Keyed JSON producers for the two topics, shared by ``idr generate-events`` and the API.

Every send is confirmed: a message the broker refused raises after the flush rather than
vanishing, so "published N" always means N messages are in the log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from idr_pipeline.settings import get_settings
from idr_pipeline.stream.contracts import Event, ProfileMessage


@dataclass(frozen=True)
class Message:
    """One message as it goes on the wire; ``value`` is bytes so malformed ones can be sent too."""

    key: str | None
    value: bytes


@dataclass(frozen=True)
class PublishStats:
    topic: str
    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def ensure_topics(
    bootstrap: str, topics: Iterable[str], partitions: int | None = None, **admin_config: Any
) -> None:
    """Create the topics that do not exist yet (several partitions, so ranges run side by side);
    ``admin_config`` goes to the admin client (timeouts, for callers that must not wait long)."""
    n = partitions or get_settings().topic_partitions
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), **admin_config)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(t, num_partitions=n, replication_factor=1) for t in topics if t not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:  # created by someone else in between
                pass
    finally:
        admin.close()


def _producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        linger_ms=20,
        batch_size=256 * 1024,
        max_request_size=8 * 1024 * 1024,
        retries=5,
    )


def publish(bootstrap: str, topic: str, messages: Iterable[Message], rate: float = 0.0) -> PublishStats:
    """Send every message, at most ``rate`` per second (0: as fast as the broker takes them)."""
    ensure_topics(bootstrap, [topic])
    producer = _producer(bootstrap)
    failures: list[BaseException] = []
    sent = 0
    started = time.monotonic()
    try:
        for msg in messages:
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            future = producer.send(topic, key=msg.key.encode() if msg.key else None, value=msg.value)
            future.add_errback(failures.append)
            sent += 1
        producer.flush()
    finally:
        producer.close()
    if failures:
        raise RuntimeError(f"{len(failures)} of {sent} messages to {topic} were refused: {failures[0]!r}")
    return PublishStats(topic, sent, time.monotonic() - started)


def event_message(event: Event | Mapping[str, Any]) -> Message:
    """Keyed by anonymous_id, else user_id: one visitor's events stay in order on one partition."""
    e = event if isinstance(event, Event) else Event.model_validate(event)
    return Message(e.key(), e.model_dump_json(exclude_none=True).encode())


def profile_message(record: ProfileMessage | Mapping[str, Any]) -> Message:
    """Keyed by source:record_id: successive versions of a record stay in order."""
    p = record if isinstance(record, ProfileMessage) else ProfileMessage.model_validate(dict(record))
    return Message(p.key(), p.model_dump_json(exclude_none=True).encode())


def publish_events(
    bootstrap: str, events: Iterable[Event | Mapping[str, Any]], topic: str | None = None, rate: float = 0.0
) -> PublishStats:
    """Validate and publish events; an invalid one raises before anything is sent after it."""
    return publish(bootstrap, topic or get_settings().events_topic, map(event_message, events), rate)


def publish_profiles(
    bootstrap: str,
    records: Iterable[ProfileMessage | Mapping[str, Any]],
    topic: str | None = None,
    rate: float = 0.0,
) -> PublishStats:
    """Validate and publish canonical profile records (real-time sign-ups and updates)."""
    return publish(bootstrap, topic or get_settings().profiles_topic, map(profile_message, records), rate)


def dumps(obj: Any) -> bytes:
    """Compact JSON, the wire format of both topics."""
    return json.dumps(obj, separators=(",", ":"), default=str).encode()
