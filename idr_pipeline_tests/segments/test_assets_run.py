"""The three segment assets and their check, materialized for today's partition on a tiny lake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path

import dagster as dg
import pytest
from dagster_pyspark import PySparkResource
from pyspark.sql import SparkSession

from idr_pipeline.core.catalog import GOLDEN, IDENTIFIERS
from idr_pipeline.core.lake import Lake
from idr_pipeline.core.spark import spark_conf
from idr_pipeline.defs.platform.resources import LakeResource, StoreResource
from idr_pipeline.defs.segments.assets import audience_segments, behavior_embeddings, user_features
from idr_pipeline.defs.segments.checks import segment_sizes_within_bounds
from idr_pipeline.settings import get_settings
from idr_pipeline.store import open_store
from idr_pipeline_tests.segments.helpers import LANDED_SCHEMA, write_landed

NOW = datetime.now(UTC)


def _event(i: int, kind: str, share_of_today: float, anon: str, **props: object) -> dict:
    """An event at that share of the UTC day so far: today's partition holds it whatever the
    hour the test runs at (hours before now would be yesterday's shortly after midnight)."""
    midnight = datetime.combine(NOW.date(), time(0), UTC)
    row = {name: None for name in LANDED_SCHEMA.names}
    ts = midnight + (NOW - midnight) * share_of_today
    row.update(event_id=f"a{i}", type=kind, ts=ts, anonymous_id=anon, **props)
    return row


@pytest.fixture
def index_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """IDR_INDEX_DIR in the test's folder: behavior_embeddings writes its Faiss index there."""
    monkeypatch.setenv("IDR_INDEX_DIR", str(tmp_path / "faiss"))
    get_settings.cache_clear()
    yield tmp_path / "faiss"
    get_settings.cache_clear()


def test_assets_materialize_today_and_write_the_store(
    spark: SparkSession, tmp_path: Path, index_dir: Path
) -> None:
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    people = [f"id_{i}" for i in range(10)]
    ids = [("anonymous_id", f"anon-{p}", p) for p in people]
    lake.write_version(
        spark.createDataFrame(ids, "id_type string, id_value string, identity_id string"), *IDENTIFIERS
    )
    golden = [(p, "US", None, None, None, "1995-05-05") for p in people]
    schema = "identity_id string, country string, state string, city string, postcode string, dob string"
    lake.write_version(spark.createDataFrame(golden, schema), *GOLDEN)
    events = [
        _event(0, "purchase", 0.2, "anon-id_0", category="luxury", price=900.0),
        _event(1, "ad_click", 0.5, "anon-id_1", campaign="black_friday"),
        _event(2, "purchase", 0.8, "anon-id_2", category="sports", price=30.0),
    ]
    write_landed(tmp_path / "lake", "p0-0-2", events)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(store_url) as store:
        store.ensure_schema()
        store.upsert("identities", [{"identity_id": p} for p in people])

    today = NOW.date().isoformat()
    result = dg.materialize(
        [user_features, behavior_embeddings, audience_segments, segment_sizes_within_bounds],
        partition_key=today,
        resources={
            "pyspark": PySparkResource(spark_config=spark_conf()),
            "lake": LakeResource(uri=lake.uri),
            "store": StoreResource(url=store_url),
        },
    )
    assert result.success
    meta = result.asset_materializations_for_node("audience_segments")[0].metadata
    assert meta["store_written"].value is True and meta["stitched_share"].value == 1.0
    features = result.asset_materializations_for_node("user_features")[0].metadata
    assert features["dagster/row_count"].value == 3
    assert features["aggregates_published"].value is True
    assert features["aggregates_events"].value == features["aggregates_aggregated"].value == 3
    behavior = result.asset_materializations_for_node("behavior_embeddings")[0].metadata
    assert behavior["index_vectors"].value == 3 and behavior["index_dims_from"].value == "exact"
    assert (index_dir / "behavior" / today / "index.faiss").exists()
    with open_store(store_url) as store:
        members = {(m["segment_id"], m["identity_id"]) for m in store.select_rows("segment_members")}
        aggregates = {
            (a["identity_id"], a["event_type"], a["days_ago"]) for a in store.select_rows("event_aggregates")
        }
    assert aggregates == {("id_0", "purchase", 0), ("id_1", "ad_click", 0), ("id_2", "purchase", 0)}
    assert {
        ("luxury_buyers", "id_0"),
        ("black_friday_clickers", "id_1"),
        ("sports_enthusiast", "id_2"),
    } <= members
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "segment_sizes_within_bounds"  # 1 in 10 is far above most bounds
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
