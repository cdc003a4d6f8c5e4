"""A small world for the stream service: fresh topics on the real broker, a lake, a store.

The store is SQLite or a throwaway MariaDB database (both backends for every test that takes
``world``). The service reads a catalog of rule segments written here and runs on a clock the
test moves, so windows and midnights are the test's to choose.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from idr_pipeline.live.service import ServiceConfig, StreamService
from idr_pipeline.store import open_store
from idr_pipeline.stream.producer import ensure_topics, publish_events
from idr_pipeline_tests.services_fixtures import throwaway_database

CATALOG = {
    "segments": [
        {
            "id": "luxury_buyers",
            "kind": "rule",
            "name": "Luxury buyers",
            "rule": {"purchased": {"category": "luxury", "within_days": 30, "min_total": 500}},
        },
        {
            "id": "black_friday_clickers",
            "kind": "rule",
            "name": "Black Friday clickers",
            "rule": {"clicked": {"campaign": "black_friday", "within_days": 7}},
        },
        {
            "id": "lapsed_purchasers",
            "kind": "rule",
            "name": "Lapsed",
            "rule": {
                "all": [{"purchased": {"within_days": 90}}, {"not": {"purchased": {"within_days": 30}}}]
            },
        },
        {
            "id": "us_young_adults",
            "kind": "rule",
            "name": "US 25-34",
            "rule": {
                "all": [{"attribute": {"field": "country", "in": ["US"]}}, {"age": {"min": 25, "max": 34}}]
            },
        },
        {
            "id": "us_luxury",
            "kind": "rule",
            "name": "US luxury buyers",
            "rule": {
                "all": [{"in_segment": "luxury_buyers"}, {"attribute": {"field": "country", "in": ["us"]}}]
            },
        },
    ]
}

#: Identity -> (country, dob); each holds the cookie anon-<identity>.
PEOPLE = {
    "id_a": ("US", "1995-06-01"),
    "id_b": ("US", "1960-01-01"),
    "id_c": ("CA", "1990-01-01"),
    "id_d": ("US", "1980-03-03"),
}


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    bootstrap: str
    config: ServiceConfig
    clock: Clock
    tmp: Path

    def service(self) -> StreamService:
        return StreamService(self.config, clock=self.clock).open()

    def publish(self, events: list[dict]) -> None:
        publish_events(self.bootstrap, events, topic=self.config.events_topic)

    def store(self):
        return open_store(self.config.store_url)


def event(kind: str, who: str, ago: timedelta, event_id: str | None = None, **props) -> dict:
    base = datetime.now(UTC)
    return {
        "event_id": event_id or f"e-{uuid.uuid4().hex[:12]}",
        "type": kind,
        "ts": (base - ago).isoformat(),
        "anonymous_id": who,
        "properties": props,
    }


def drain(service: StreamService, messages: int, timeout_s: float = 60.0) -> None:
    """Step the service until it has landed ``messages`` messages of both topics in all."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        total = service.totals["events_messages"] + service.totals["profiles_messages"]
        if total >= messages:
            return
        service.step()
    raise AssertionError(f"landed {dict(service.totals)} of {messages} messages within {timeout_s:.0f} s")


def seed(store_url: str) -> None:
    with open_store(store_url) as store:
        store.ensure_schema()
        store.upsert_identities({"identity_id": p, "status": "active", "record_count": 1} for p in PEOPLE)
        store.upsert_identifiers(
            {"id_type": "anonymous_id", "id_value": f"anon-{p[3:]}", "identity_id": p} for p in PEOPLE
        )
        store.upsert_identifiers(
            [{"id_type": "email_key", "id_value": "erin@example.com", "identity_id": "id_c"}]
        )
        store.upsert_golden_profiles(
            {"identity_id": p, "country": c, "dob": dob, "record_count": 1} for p, (c, dob) in PEOPLE.items()
        )


@pytest.fixture(params=["sqlite", "mariadb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with throwaway_database(request.getfixturevalue("mariadb_url"), "idr_live") as url:
        yield url


@pytest.fixture
def world(kafka_bootstrap: str, store_url: str, tmp_path: Path) -> World:
    suffix = uuid.uuid4().hex[:10]
    catalog = tmp_path / "segments.yaml"
    catalog.write_text(yaml.safe_dump(CATALOG))
    config = ServiceConfig(
        bootstrap=kafka_bootstrap,
        store_url=store_url,
        lake_uri=(tmp_path / "lake").as_uri(),
        events_topic=f"live.events.{suffix}",
        profiles_topic=f"live.profiles.{suffix}",
        segments_path=str(catalog),
        batch_seconds=0.5,
        check_seconds=3600,
    )
    ensure_topics(kafka_bootstrap, [config.events_topic, config.profiles_topic], partitions=2)
    seed(store_url)
    return World(kafka_bootstrap, config, Clock(), tmp_path)
