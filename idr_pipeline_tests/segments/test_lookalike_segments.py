"""A lookalike segment evaluated with the catalog on Spark: members in the store, the kept
behavior index, and erased identities left out."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from idr_pipeline.core.catalog import GOLDEN, IDENTIFIERS
from idr_pipeline.core.lake import Lake
from idr_pipeline.segments.dsl import LookalikeSegment, SegmentCatalog
from idr_pipeline.segments.lookalike_lift import measure_lift
from idr_pipeline.segments.resolved_events import read_events, resolve_event_identities
from idr_pipeline.segments.steps import build_behavior_embeddings, evaluate_segments, read_behavior_index
from idr_pipeline.store import open_store
from idr_pipeline_tests.segments.helpers import AS_OF, END, days, ev, write_landed

PEOPLE = ["id_a", "id_b", "id_c", "id_d", "id_e", "id_f", "id_g", "id_x"]


def _events() -> list[dict]:
    return [
        # the seed: luxury purchases of 500+ in the last 30 days
        ev("purchase", days(2), "anon-id_a", category="luxury", price=900.0),
        ev("page_view", days(3), "anon-id_a", category="luxury"),
        ev("purchase", days(5), "anon-id_b", category="luxury", price=600.0),
        ev("page_view", days(1), "anon-id_b", category="apparel"),
        # lookalikes: luxury taste, no big purchase (yet)
        ev("purchase", days(4), "anon-id_c", category="luxury", price=80.0),
        ev("page_view", days(4), "anon-id_c", category="luxury"),
        ev("page_view", days(2), "anon-id_d", category="luxury"),
        ev("page_view", days(3), "anon-id_d", category="apparel"),
        # the closest of all, but erased
        ev("purchase", days(3), "anon-id_x", category="luxury", price=90.0),
        ev("page_view", days(3), "anon-id_x", category="luxury"),
        # luxury taste twelve days ago, a big luxury purchase yesterday: joins the seed late
        ev("purchase", days(12), "anon-id_g", category="luxury", price=80.0),
        ev("page_view", days(12), "anon-id_g", category="luxury"),
        ev("purchase", days(1), "anon-id_g", category="luxury", price=900.0),
        # strangers
        ev("purchase", days(6), "anon-id_e", category="toys", price=20.0),
        ev("page_view", days(6), "anon-id_f", category="books"),
    ]


CATALOG = SegmentCatalog.model_validate(
    {
        "segments": [
            {
                "id": "luxury_lookalike",
                "kind": "lookalike",
                "name": "Luxury lookalike",
                "seed": "luxury_buyers",
                "size": {"count": 3},
                "min_similarity": 0.2,
            },
            {
                "id": "luxury_buyers",
                "kind": "rule",
                "name": "Luxury buyers",
                "rule": {"purchased": {"category": "luxury", "within_days": 30, "min_total": 500}},
            },
        ]
    }
)


@pytest.fixture(scope="module")
def world(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, Path]:
    root = tmp_path_factory.mktemp("lookalike")
    lake = Lake((root / "lake").as_uri(), spark)
    write_landed(root / "lake", "p0-0-99", _events())
    lake.write_version(
        spark.createDataFrame(
            [("anonymous_id", f"anon-{p}", p) for p in PEOPLE],
            "id_type string, id_value string, identity_id string",
        ),
        *IDENTIFIERS,
    )
    lake.write_version(
        spark.createDataFrame(
            [(p, "US", None, None, None, "1990-01-01") for p in PEOPLE],
            "identity_id string, country string, state string, city string, postcode string, dob string",
        ),
        *GOLDEN,
    )
    return lake, root


def test_lookalike_segment_has_the_nearest_non_seed_members_and_never_an_erased_one(
    world: tuple[Lake, Path], spark: SparkSession
) -> None:
    lake, root = world
    built = build_behavior_embeddings(spark, lake, AS_OF, index_dir=str(root / "faiss"))
    assert len(built.index) == len(PEOPLE) and Path(built.index_path).name == AS_OF.isoformat()
    kept = read_behavior_index(AS_OF, index_dir=str(root / "faiss"))
    assert kept is not None and sorted(kept.identities()) == sorted(PEOPLE)

    with open_store(f"sqlite:///{root / 'store.db'}") as store:
        store.ensure_schema()
        before = evaluate_segments(spark, lake, store, AS_OF, catalog=CATALOG, behavior_index=kept)
        members = {
            m["identity_id"]: m["score"]
            for m in store.select_rows("segment_members", {"segment_id": "luxury_lookalike"})
        }
        assert before.kinds["luxury_lookalike"] == "lookalike"
        assert set(members) == {"id_x", "id_c", "id_d"}  # size 3; strangers are under 0.2
        assert all(s >= 0.2 for s in members.values())
        assert members["id_x"] >= members["id_d"]

        store.upsert(
            "purge_requests",
            [{"request_id": "r1", "status": "pending", "identity_ids": ["id_x"], "record_ids": []}],
        )
        after = evaluate_segments(spark, lake, store, AS_OF, catalog=CATALOG)  # index built in memory
        members = {
            m["identity_id"] for m in store.select_rows("segment_members", {"segment_id": "luxury_lookalike"})
        }
        assert "id_x" not in members and {"id_c", "id_d"} <= members
        assert not members & {"id_a", "id_b"}
        assert after.left["luxury_lookalike"] == 1
        (row,) = store.select_rows("segments", {"segment_id": "luxury_lookalike"})
        assert row["kind"] == "lookalike" and row["threshold"] == 0.2
        assert row["definition"]["seed"] == "luxury_buyers" and row["definition"]["size"] == {"count": 3}


def test_lift_counts_later_joiners_in_the_expansion_against_the_pool(
    world: tuple[Lake, Path], spark: SparkSession
) -> None:
    """As of 3.5 days before the end only id_b is a luxury buyer; id_a and id_g join later.
    The expansion (id_c, id_g: the strangers score under 0.2) holds id_g; id_a had no behavior
    then, so the pool (c, e, f, g) holds one joiner: precision 1/2 over a base rate of 1/4."""
    lake, _ = world
    events = resolve_event_identities(read_events(spark, lake), lake.read_latest(*IDENTIFIERS))
    profiles = lake.read_latest(*GOLDEN)
    segment = CATALOG.by_id()["luxury_lookalike"]
    assert isinstance(segment, LookalikeSegment)
    report = measure_lift(
        events, profiles, profiles.select("identity_id"), segment, CATALOG, END - days(3.5), END
    )
    assert (report.seed_at_start, report.joiners, report.pool, report.joiners_in_pool) == (1, 2, 4, 1)
    assert (report.expansion, report.hits) == (2, 1)
    assert report.precision == 0.5 and report.base_rate == 0.25 and report.lift == 2.0
    assert report.recall == 0.5 and report.random_hits == pytest.approx(0.5, abs=0.15)
    assert "lift 2.0x" in report.summary()
