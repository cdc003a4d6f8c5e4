"""From landed Parquet to store members: identity resolution of events, user features, and the
whole catalog evaluated twice (the second run changes nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from idr_pipeline.core.catalog import GOLDEN, IDENTIFIERS
from idr_pipeline.core.lake import Lake
from idr_pipeline.segments.behavior import behavior_texts
from idr_pipeline.segments.dsl import SegmentCatalog
from idr_pipeline.segments.features import build_user_features
from idr_pipeline.segments.resolved_events import (
    as_of_end,
    read_events,
    resolve_event_identities,
    stitch_report,
)
from idr_pipeline.segments.steps import evaluate_segments
from idr_pipeline.store import open_store
from idr_pipeline_tests.segments.helpers import AS_OF, END, days, ev, write_landed

IDENTIFIERS_ROWS = [
    ("source_customer_key", "web:u1", "id_ann"),
    ("email_key", "bobsmith@gmail.com", "id_bob"),
    ("anonymous_id", "anon-ann", "id_ann"),
    ("anonymous_id", "anon-cat", "id_cat"),
    ("anonymous_id", "anon-shared", "id_ann"),  # a cookie two identities hold resolves nobody
    ("anonymous_id", "anon-shared", "id_cat"),
    ("email_key", "dan@example.com", "id_dan"),
    ("anonymous_id", "9f1c2b3a-0000-4000-8000-00000000000b", "id_bob"),
]
PROFILES = [
    ("id_ann", "US", "1995-01-01"),
    ("id_bob", "US", "1960-01-01"),
    ("id_cat", "CA", "1990-01-01"),
    ("id_dan", "US", "1990-06-01"),
]


def _make_events() -> list[dict]:
    return [
        # user_id beats the cookie (anon-cat is Cat's, but Ann signed in on that device)
        ev("purchase", days(2), "anon-cat", user_id="u1", category="luxury", price=700.0),
        ev("purchase", days(40), "anon-ann", category="luxury", price=100.0),
        ev("page_view", days(1), "anon-ann", category="luxury"),
        ev("ad_click", days(3), "anon-ann", campaign="black_friday"),
        # a Gmail address with dots and a +tag resolves through the e-mail key
        ev("purchase", days(5), "anon-new", email="Bob.Smith+shop@gmail.com", category="sports", price=40.0),
        ev("page_view", days(6), "anon-cat", category="sports"),
        ev("purchase", days(50), "anon-cat", category="books", price=15.0),
        # an identify event ties an unknown cookie to Dan's e-mail; its other events follow
        ev("identify", days(4), "anon-dan2", email="dan@example.com"),
        ev("purchase", days(4), "anon-dan2", category="sports", price=60.0),
        ev("page_view", days(1), "anon-shared", category="luxury"),  # ambiguous cookie
        ev("page_view", days(1), "anon-stranger", category="toys"),  # nobody
        ev("page_view", days(400), "anon-ann", category="luxury"),  # outside every window
        # cookies are normalized like the batch's: an upper-case UUID is Bob's lower-case one
        ev("page_view", days(1), "9F1C2B3A-0000-4000-8000-00000000000B"),
    ]


EVENTS = _make_events()


@pytest.fixture(scope="module")
def world(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, Path]:
    root = tmp_path_factory.mktemp("segments")
    lake = Lake((root / "lake").as_uri(), spark)
    events = EVENTS
    write_landed(root / "lake", "p0-0-9", events[:6])
    write_landed(root / "lake", "p1-0-9", events[6:] + [events[0]])  # a replayed duplicate
    lake.write_version(
        spark.createDataFrame(IDENTIFIERS_ROWS, "id_type string, id_value string, identity_id string"),
        *IDENTIFIERS,
    )
    golden = spark.createDataFrame(
        [(i, c, None, None, None, d) for i, c, d in PROFILES],
        "identity_id string, country string, state string, city string, postcode string, dob string",
    )
    lake.write_version(golden, *GOLDEN)
    return lake, root


def test_events_resolve_by_priority_and_unresolved_are_kept(
    world: tuple[Lake, Path], spark: SparkSession
) -> None:
    lake, _ = world
    events = read_events(spark, lake, END, 365)
    identifiers = lake.read_latest(*IDENTIFIERS)
    resolved = {
        r["event_id"]: (r["identity_id"], r["resolved_by"])
        for r in resolve_event_identities(events, identifiers).collect()
    }
    ordered = [resolved.get(e["event_id"]) for e in EVENTS]
    assert ordered == [
        ("id_ann", "user_id"),
        ("id_ann", "anonymous_id"),
        ("id_ann", "anonymous_id"),
        ("id_ann", "anonymous_id"),
        ("id_bob", "email_key"),
        ("id_cat", "anonymous_id"),
        ("id_cat", "anonymous_id"),
        ("id_dan", "email_key"),
        ("id_dan", "identify"),
        (None, None),
        (None, None),
        None,  # older than the look-back: not read at all
        ("id_bob", "anonymous_id"),
    ]
    report = stitch_report(resolve_event_identities(events, identifiers))
    assert report.events == 12 and report.unresolved == 2  # the replayed duplicate counted once
    assert report.by_rung == {"user_id": 1, "anonymous_id": 6, "email_key": 2, "identify": 1}


def test_user_features(world: tuple[Lake, Path], spark: SparkSession) -> None:
    lake, _ = world
    resolved = resolve_event_identities(read_events(spark, lake), lake.read_latest(*IDENTIFIERS))
    rows = {r["identity_id"]: r for r in build_user_features(resolved, END).collect()}
    assert set(rows) == {"id_ann", "id_bob", "id_cat", "id_dan"}
    ann = rows["id_ann"]
    assert (ann["views_7d"], ann["clicks_7d"], ann["purchases_7d"], ann["purchases_90d"]) == (1, 1, 1, 2)
    assert ann["purchases_90d_by_category"] == {"luxury": 2} and ann["clicks_7d_by_category"] == {}
    assert (ann["spend_30d"], ann["spend_90d"]) == (700.0, 800.0)
    assert (ann["days_since_last_event"], ann["days_since_last_purchase"]) == (0, 1)  # calendar days
    assert ann["top_categories"] == ["luxury"]
    cat = rows["id_cat"]
    assert cat["top_categories"] == ["books", "sports"]  # a purchase outweighs a view
    assert cat["days_since_last_purchase"] == 49 and str(cat["as_of"]) == AS_OF.isoformat()


def test_behavior_texts_newest_first(world: tuple[Lake, Path], spark: SparkSession) -> None:
    lake, _ = world
    resolved = resolve_event_identities(read_events(spark, lake), lake.read_latest(*IDENTIFIERS))
    texts = {r["identity_id"]: r["text"] for r in behavior_texts(resolved, END).collect()}
    assert texts["id_ann"] == "viewed luxury, purchased luxury, clicked black friday, purchased luxury"
    assert texts["id_cat"] == "viewed sports, purchased books"
    assert set(texts) == {"id_ann", "id_bob", "id_cat", "id_dan"}  # unresolved events render nobody


CATALOG = SegmentCatalog.model_validate(
    {
        "segments": [
            {
                "id": "luxury_buyers",
                "kind": "rule",
                "name": "Luxury buyers",
                "rule": {"purchased": {"category": "luxury", "within_days": 30, "min_total": 500}},
                "expected_size": {"min_share": 0.1, "max_share": 0.5},
            },
            {
                "id": "sporty",
                "kind": "prototype",
                "name": "Sports",
                "description": "sports enthusiast",
                "examples": ["purchased sports, viewed sports"],
                "threshold": 0.5,
            },
            {
                "id": "sporty_non_luxury",
                "kind": "rule",
                "name": "Sporty, not luxury",
                "rule": {"all": [{"in_segment": "sporty"}, {"not": {"in_segment": "luxury_buyers"}}]},
            },
        ]
    }
)


def test_evaluate_segments_writes_store_and_second_run_changes_nothing(
    world: tuple[Lake, Path], spark: SparkSession
) -> None:
    lake, root = world
    with open_store(f"sqlite:///{root / 'store.db'}") as store:
        store.ensure_schema()
        store.upsert("segments", [{"segment_id": "dropped", "name": "gone", "kind": "rule"}])
        store.upsert("segment_members", [{"segment_id": "dropped", "identity_id": "id_bob"}])
        first = evaluate_segments(spark, lake, store, AS_OF, catalog=CATALOG)
        assert first.universe == 4 and first.retired == ["dropped"]
        assert first.sizes == {"luxury_buyers": 1, "sporty": 3, "sporty_non_luxury": 3}
        members = {
            (m["segment_id"], m["identity_id"]): m["score"] for m in store.select_rows("segment_members")
        }
        assert members[("luxury_buyers", "id_ann")] == 1.0
        assert {i for s, i in members if s == "sporty"} == {"id_bob", "id_cat", "id_dan"}
        assert 0.5 <= members[("sporty", "id_bob")] <= 1.0
        counts = store.table_counts()

        second = evaluate_segments(spark, lake, store, as_of_end(AS_OF), catalog=CATALOG)
        assert second.sizes == first.sizes and sum(second.joined.values()) == sum(second.left.values()) == 0
        assert store.table_counts() == counts

        # Four weeks later Ann's luxury purchase has left the 30-day window: she leaves, with history.
        later = evaluate_segments(
            spark, lake, store, as_of_end(AS_OF) + days(29), catalog=CATALOG, write=True
        )
        assert later.sizes["luxury_buyers"] == 0 and later.left["luxury_buyers"] == 1
        history = store.select_rows(
            "segment_membership_history", {"segment_id": "luxury_buyers"}, order_by=["changed_at"]
        )
        assert [h["change_type"] for h in history] == ["joined", "left"]
