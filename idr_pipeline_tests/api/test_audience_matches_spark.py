"""The API's behavioral answers equal the Spark segment evaluator's on the same landed events.

One lake (landed events, the batch's identifiers and golden profiles) feeds both sides: the
feature step publishes the event aggregates to the store as of an instant in the middle of a
day, and every expression is answered by ``evaluate_rule`` on the resolved events as of that
instant and by ``POST /audiences/query``. Events sit on the window edges (exactly N days
before, a microsecond more, at the instant itself), differ by case and trailing spaces, lack
values, resolve by e-mail or not at all, and one belongs to an identity the store does not
hold; the publish's accounts must balance with each of them counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyspark.sql import SparkSession

from idr_pipeline.api import create_app
from idr_pipeline.api.auth import create_key
from idr_pipeline.core.catalog import GOLDEN, IDENTIFIERS
from idr_pipeline.core.lake import Lake
from idr_pipeline.segments.aggregates import AGGREGATE_DAYS
from idr_pipeline.segments.dsl import parse_expression
from idr_pipeline.segments.rules_spark import RuleInputs, evaluate_rule
from idr_pipeline.segments.steps import MEMBER_SCHEMA, build_features, load_inputs
from idr_pipeline.store import open_store
from idr_pipeline_tests.api.conftest import make_settings
from idr_pipeline_tests.segments.helpers import LANDED_SCHEMA, write_landed
from idr_pipeline_tests.services_fixtures import throwaway_database

#: An instant in the middle of a day: windows count whole 24-hour periods back from it.
AT = datetime(2025, 3, 31, 15, 30, 12, 345678, tzinfo=UTC)
US = timedelta(microseconds=1)
LONG = "x" * 129  # longer than any value the DSL can name

_seq = iter(range(10**6))


def ev(kind: str | None, ago: timedelta, anon: str | None, event_id: str | None = None, **props: Any) -> dict:
    row = {name: None for name in LANDED_SCHEMA.names}
    row.update(event_id=event_id or f"m{next(_seq)}", type=kind, ts=AT - ago, anonymous_id=anon, **props)
    return row


def d(n: float) -> timedelta:
    return timedelta(days=n)


EVENTS = [
    ev("purchase", d(10), "anon-a", category="luxury", product_id="P-1", price=600.0),
    ev("purchase", d(30), "anon-a", category="Luxury", price=300.0),  # exactly 30 days: inside
    ev("purchase", d(30) + US, "anon-a", category="luxury", price=900.0),  # a microsecond older: out
    ev("purchase", d(1), "anon-b", category="luxury ", price=700.0),  # trailing space: another category
    ev("purchase", d(2), "anon-b"),  # no category, no price
    ev("purchase", d(3), "anon-b", category="books", product_id="p-1", price=250.5),
    ev("Purchase", d(3), "anon-b", category="books", price=99.0),  # another type to Spark
    ev("ad_click", d(7), "anon-c", campaign="Black_Friday"),
    ev("ad_click", US, "anon-c", category="apparel"),
    ev("ad_click", timedelta(0), "anon-c", campaign="black_friday"),  # at the instant: not yet
    ev("ad_click", d(2), "anon-c", campaign=LONG, category=LONG),
    ev("page_view", d(5), "anon-d", category="sports"),
    ev("page_view", d(5), "anon-d", category="SPORTS"),
    ev("page_view", d(6), "anon-d", category="sports"),
    ev("page_view", d(366), "anon-d", category="sports"),  # the widest window's edge: inside
    ev("page_view", d(366) + US, "anon-d", category="sports"),  # outside every window
    ev("identify", d(4), "anon-e2", email="Erin@Example.com"),
    ev("purchase", d(4), "anon-e2", category="toys", price=40.0),  # resolved through the identify
    ev("purchase", d(12), "anon-new", email="erin@example.com", category="toys", price=1000.0),
    ev("page_view", d(1), "anon-nobody", category="toys"),  # unresolved
    ev("purchase", d(1), "anon-shared", category="luxury", price=5000.0),  # two holders: unresolved
    ev("purchase", d(2), "anon-ghost", category="luxury", price=800.0),  # not in the store
    ev("page_view", d(8), "anon-f", category="books", event_id="dup-1"),
]
REPLAYED = [ev("page_view", d(8), "anon-f", category="books", event_id="dup-1")]  # landed twice

PEOPLE = {
    "id_a": "US",
    "id_b": "US",
    "id_c": "CA",
    "id_d": "US",
    "id_e": "GB",
    "id_f": "US",
    "id_quiet": "US",
}
IDENTIFIERS_ROWS = [
    *[("anonymous_id", f"anon-{p[3:]}", p) for p in PEOPLE],
    ("email_key", "erin@example.com", "id_e"),
    ("anonymous_id", "anon-shared", "id_a"),
    ("anonymous_id", "anon-shared", "id_b"),
    ("anonymous_id", "anon-ghost", "id_ghost"),  # e.g. erased from the store, not yet re-resolved
]
VIP = ["id_a", "id_d", "id_quiet"]

EXPRESSIONS: list[dict] = [
    {"purchased": {}},
    {"purchased": {"within_days": 30}},
    {"purchased": {"within_days": 29}},
    {"purchased": {"category": "LUXURY", "within_days": 30}},
    {"purchased": {"category": "luxury ", "within_days": 30}},
    {"purchased": {"category": "luxury", "within_days": 31, "min_total": 900}},
    {"purchased": {"within_days": 30, "min_total": 950.5}},
    {"purchased": {"within_days": 30, "min_total": 950.0}},
    {"purchased": {"within_days": 30, "min_total": 0}},
    {"purchased": {"product_id": "P-1"}},
    {"purchased": {"product_id": "p-1", "category": "books"}},
    {"purchased": {"min_count": 3, "within_days": 3}},
    {"purchased": {"min_count": 2, "within_days": 12, "category": "toys"}},
    {"purchased": {"within_days": 366, "min_count": 2, "min_total": 1000}},
    {"clicked": {"campaign": "black_friday", "within_days": 7}},
    {"clicked": {"campaign": "black_friday", "within_days": 6}},
    {"clicked": {"category": "apparel", "within_days": 1}},
    {"clicked": {"campaign": LONG[:128]}},
    {"clicked": {"min_count": 3, "within_days": 7}},
    {"viewed": {"category": "sports", "min_count": 3, "within_days": 6}},
    {"viewed": {"category": "sports", "min_count": 3, "within_days": 5}},
    {"viewed": {"within_days": 366, "min_count": 4}},
    {"viewed": {"within_days": 365, "min_count": 4}},
    {"not": {"viewed": {"within_days": 366}}},
    {"all": [{"attribute": {"field": "country", "in": ["us"]}}, {"not": {"purchased": {"within_days": 30}}}]},
    {"any": [{"clicked": {}}, {"viewed": {"category": "books"}}, {"in_segment": "vip"}]},
    {"all": [{"in_segment": "vip"}, {"not": {"any": [{"purchased": {"min_total": 500}}, {"viewed": {}}]}}]},
    {"not": {"all": [{"purchased": {"within_days": 366}}, {"not": {"clicked": {"within_days": 366}}}]}},
]


@pytest.fixture(scope="module")
def lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("audience_spark")
    lake = Lake((root / "lake").as_uri(), spark)
    write_landed(root / "lake", "p0-0-9", EVENTS[:12])
    write_landed(root / "lake", "p1-0-9", EVENTS[12:] + REPLAYED)
    schema = "id_type string, id_value string, identity_id string"
    lake.write_version(spark.createDataFrame(IDENTIFIERS_ROWS, schema), *IDENTIFIERS)
    golden = [(p, c, None, None, None, "1990-01-01") for p, c in PEOPLE.items()]
    schema = "identity_id string, country string, state string, city string, postcode string, dob string"
    lake.write_version(spark.createDataFrame(golden, schema), *GOLDEN)
    return lake


@pytest.fixture(scope="module")
def spark_answers(spark: SparkSession, lake: Lake) -> dict[int, set[str]]:
    """What the Spark segment evaluator selects for each expression, as of AT."""
    inputs = load_inputs(spark, lake, AT, AGGREGATE_DAYS)
    vip = spark.createDataFrame([(i, 1.0) for i in VIP], MEMBER_SCHEMA)
    rules = RuleInputs(inputs.events, inputs.profiles, inputs.universe, inputs.end, {"vip": vip})
    try:
        return {
            n: {r["identity_id"] for r in evaluate_rule(parse_expression(e), rules).collect()}
            for n, e in enumerate(EXPRESSIONS)
        }
    finally:
        inputs.release()


@pytest.fixture(params=["sqlite", "mariadb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with throwaway_database(request.getfixturevalue("mariadb_url"), "idr_agg") as url:
        yield url


def test_api_answers_equal_the_spark_segment_evaluator(
    spark: SparkSession, lake: Lake, spark_answers: dict[int, set[str]], store_url: str, tmp_path: Path
) -> None:
    with open_store(store_url) as store:
        store.ensure_schema()
        store.upsert_identities([{"identity_id": p} for p in PEOPLE])
        store.upsert_golden_profiles(
            [{"identity_id": p, "country": c, "dob": "1990-01-01"} for p, c in PEOPLE.items()]
        )
        store.upsert("segments", [{"segment_id": "vip", "name": "VIP"}])
        store.upsert("segment_members", [{"segment_id": "vip", "identity_id": i} for i in VIP])
        stats = build_features(spark, lake, AT, store)
        key = create_key(store, "exporter", ["read", "export"])[1]
    run = stats.aggregates
    assert run is not None
    # 21 distinct events in the window: the replay counts once; the click at the instant itself
    # and the view 366 days + 1 us old are outside. Unresolved: the stranger's and the shared
    # cookie's; other types: the identify and the "Purchase"; unknown identity: the ghost's.
    assert (run["events"], run["unresolved"], run["other_types"], run["unknown_identity"]) == (21, 2, 2, 1)
    assert run["aggregated"] == 16
    assert stats.stitch.unresolved == 2

    with TestClient(create_app(make_settings(tmp_path, store_url))) as client:
        for n, expression in enumerate(EXPRESSIONS):
            r = client.post(
                "/audiences/query", json={"expression": expression, "limit": 1000}, headers={"X-API-Key": key}
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert set(body["identities"]) == spark_answers[n], expression
            assert body["count"] == len(spark_answers[n])
            assert datetime.fromisoformat(body["events_as_of"]) == AT.replace(tzinfo=None)
    # The edges decide: case folds but a trailing space does not, 7 days reach the click 7
    # days back but 6 do not, 366 days reach the view 366 days back but 365 do not.
    answer = {str(e): spark_answers[n] for n, e in enumerate(EXPRESSIONS)}
    assert answer[str({"purchased": {"category": "LUXURY", "within_days": 30}})] == {"id_a"}
    assert answer[str({"purchased": {"category": "luxury ", "within_days": 30}})] == {"id_b"}
    assert answer[str({"clicked": {"campaign": "black_friday", "within_days": 7}})] == {"id_c"}
    assert answer[str({"clicked": {"campaign": "black_friday", "within_days": 6}})] == set()
    assert answer[str({"viewed": {"within_days": 366, "min_count": 4}})] == {"id_d"}
    assert answer[str({"viewed": {"within_days": 365, "min_count": 4}})] == set()
    # The cases are not vacuous: most select someone, and not everyone.
    assert sum(0 < len(a) < len(PEOPLE) for a in spark_answers.values()) >= len(EXPRESSIONS) - 6
