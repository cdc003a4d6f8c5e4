"""The daily batch and the stream service agree on the same events.

One lake and two stores. Store A starts as the batch leaves a day without events (rule
memberships evaluated on Spark, e.g. "never viewed anything" holds for everyone), then the
stream service consumes the published events: it lands them in the lake and updates A
incrementally. Store B gets the batch alone over the events the service landed
(``build_features`` + ``evaluate_segments`` on Spark, as of the same day). The event
aggregates, their publish record and every rule segment's members must be equal.

The events are the API agreement test's world: window edges, case and spacing, missing values,
an e-mail and an identify rung, a shared cookie, an identity the store does not hold, a replay.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession

from idr_pipeline.core.catalog import GOLDEN, IDENTIFIERS
from idr_pipeline.core.lake import Lake
from idr_pipeline.live.service import ServiceConfig, StreamService
from idr_pipeline.segments.dsl import load_segments
from idr_pipeline.segments.steps import build_features, evaluate_segments
from idr_pipeline.store import open_store
from idr_pipeline.stream.producer import Message, dumps, ensure_topics, publish
from idr_pipeline_tests.api.test_audience_matches_spark import AT, EVENTS, IDENTIFIERS_ROWS, PEOPLE, REPLAYED
from idr_pipeline_tests.live.conftest import Clock, drain
from idr_pipeline_tests.services_fixtures import throwaway_database

DAY = date(2025, 3, 31)  # AT's day: both sides count whole days back from the following midnight
RULES = {
    "lux30": {"purchased": {"category": "LUXURY", "within_days": 30}},
    "lux_total": {"purchased": {"category": "luxury", "within_days": 31, "min_total": 900}},
    "spend": {"purchased": {"within_days": 30, "min_total": 950.0}},
    "product": {"purchased": {"product_id": "P-1"}},
    "toys2": {"purchased": {"min_count": 2, "within_days": 12, "category": "toys"}},
    "bf7": {"clicked": {"campaign": "black_friday", "within_days": 7}},
    "sports3": {"viewed": {"category": "sports", "min_count": 3, "within_days": 6}},
    "viewers366": {"viewed": {"within_days": 366, "min_count": 4}},
    "never_viewed": {"not": {"viewed": {"within_days": 366}}},
    "us_not_recent": {
        "all": [
            {"attribute": {"field": "country", "in": ["us"]}},
            {"not": {"purchased": {"within_days": 30}}},
        ]
    },
    "nested": {"any": [{"in_segment": "bf7"}, {"all": [{"in_segment": "lux30"}, {"age": {"min": 30}}]}]},
}


def _message(row: dict) -> Message:
    props = {
        k: row[k]
        for k in ("url", "campaign", "product_id", "category", "price", "currency")
        if row.get(k) is not None
    }
    body = {
        k: row[k] for k in ("event_id", "type", "anonymous_id", "user_id", "email") if row.get(k) is not None
    }
    body.update(ts=row["ts"].isoformat(), properties=props)
    return Message(row["anonymous_id"], dumps(body))


def _seed(url: str) -> None:
    with open_store(url) as store:
        store.ensure_schema()
        store.upsert_identities({"identity_id": p, "status": "active"} for p in PEOPLE)
        store.upsert_identifiers(
            {"id_type": t, "id_value": v, "identity_id": i} for t, v, i in IDENTIFIERS_ROWS
        )
        store.upsert_golden_profiles(
            {"identity_id": p, "country": c, "dob": "1990-01-01"} for p, c in PEOPLE.items()
        )


@pytest.fixture(params=["sqlite", "mariadb"])
def stores(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
        return
    base = request.getfixturevalue("mariadb_url")
    with throwaway_database(base, "idr_agree_a") as a, throwaway_database(base, "idr_agree_b") as b:
        yield a, b


def _aggregates(url: str) -> list[tuple]:
    with open_store(url) as store:
        rows = store.select_rows("event_aggregates")
    return sorted(
        (
            r["event_type"],
            r["category"],
            r["days_ago"],
            r["identity_id"],
            r["product_id"],
            r["campaign"],
            r["events"],
            round(r["amount"], 6),
        )
        for r in rows
    )


def _members(url: str) -> dict[str, set[str]]:
    with open_store(url) as store:
        rows = store.select_rows("segment_members")
    out: dict[str, set[str]] = {s: set() for s in RULES}
    for r in rows:
        out[r["segment_id"]].add(r["identity_id"])
    return out


def test_batch_and_stream_agree_on_the_same_events(
    spark: SparkSession, kafka_bootstrap: str, stores: tuple[str, str], tmp_path: Path
) -> None:
    store_a, store_b = stores
    catalog_path = tmp_path / "rules.yaml"
    catalog_path.write_text(
        yaml.safe_dump(
            {"segments": [{"id": k, "kind": "rule", "name": k, "rule": v} for k, v in RULES.items()]}
        )
    )
    catalog = load_segments(catalog_path)
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    schema = "id_type string, id_value string, identity_id string"
    lake.write_version(spark.createDataFrame(IDENTIFIERS_ROWS, schema), *IDENTIFIERS)
    golden = [(p, c, None, None, None, "1990-01-01") for p, c in PEOPLE.items()]
    schema = "identity_id string, country string, state string, city string, postcode string, dob string"
    lake.write_version(spark.createDataFrame(golden, schema), *GOLDEN)
    for url in stores:
        _seed(url)

    with open_store(store_a) as a:  # the batch's day before any event
        evaluate_segments(spark, lake, a, DAY, catalog=catalog, write=True)
    suffix = uuid.uuid4().hex[:8]
    config = ServiceConfig(
        bootstrap=kafka_bootstrap,
        store_url=store_a,
        lake_uri=lake.uri,
        events_topic=f"agree.events.{suffix}",
        profiles_topic=f"agree.profiles.{suffix}",
        segments_path=str(catalog_path),
        batch_seconds=0.5,
        check_seconds=3600,
    )
    ensure_topics(kafka_bootstrap, [config.events_topic, config.profiles_topic], partitions=2)
    messages = [_message(r) for r in EVENTS + REPLAYED]
    publish(kafka_bootstrap, config.events_topic, messages)
    with StreamService(config, clock=Clock(AT), catalog=catalog).open() as service:
        drain(service, len(messages))
        assert service.totals["events_dead"] == 1  # "Purchase" is not an event type

    with open_store(store_b) as b:
        stats = build_features(spark, lake, DAY, b)
        evaluate_segments(spark, lake, b, DAY, catalog=catalog, write=True)

    assert _aggregates(store_a) == _aggregates(store_b)
    with open_store(store_a) as a, open_store(store_b) as b:
        (run_a,) = a.select_rows("event_aggregate_runs")
        (run_b,) = b.select_rows("event_aggregate_runs")
    counts = (
        "as_of",
        "events",
        "aggregated",
        "unresolved",
        "other_types",
        "unknown_identity",
        "aggregate_rows",
    )
    assert {k: run_a[k] for k in counts} == {k: run_b[k] for k in counts}
    assert run_b["events"] == stats.aggregates["events"] > 0
    members_a, members_b = _members(store_a), _members(store_b)
    assert members_a == members_b
    assert (
        members_b["never_viewed"] and members_b["lux30"] and members_b["nested"]
    )  # the test means something
