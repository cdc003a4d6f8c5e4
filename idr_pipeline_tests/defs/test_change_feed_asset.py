"""identity_change_feed: follows every publish on its own, and sends what the store committed.

Real parts: the asset runs through Dagster with the SQLite store and the Tansu broker.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg

from idr_pipeline.definitions import load_idr_definitions
from idr_pipeline.defs.platform.resources import KafkaResource, StoreResource
from idr_pipeline.defs.serving.change_feed import identity_change_feed
from idr_pipeline.defs.serving.schedules import resolve_job
from idr_pipeline.settings import get_settings
from idr_pipeline.store import open_store
from idr_pipeline.store.change_log import changes_after, commit_pending, record_changes
from idr_pipeline.store.changes import IdentityChange
from idr_pipeline_tests.stream.test_change_feed import read_all


def test_the_feed_follows_served_identities_outside_resolve_job() -> None:
    graph = load_idr_definitions().resolve_asset_graph()
    key = dg.AssetKey("identity_change_feed")
    assert {p.to_user_string() for p in graph.get(key).parent_keys} == {
        "served_identities",
        "stitched_identities",
    }
    assert graph.get(key).automation_condition is not None
    selected = resolve_job.selection.resolve(graph)
    assert dg.AssetKey("served_identities") in selected and key not in selected


def test_the_feed_asset_sends_committed_changes_and_counts_them_by_kind(
    tmp_path: Path, kafka_bootstrap: str, monkeypatch
) -> None:
    topic = f"idr.identity_changes.{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("IDR_IDENTITY_CHANGES_TOPIC", topic)
    get_settings.cache_clear()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(url) as store:
        store.ensure_schema()
        record_changes(
            store,
            [
                IdentityChange("run-1", "A", "created", (), ("a1",)),
                IdentityChange("run-1", "B", "merged_into", ("A",), ("b1",)),
                IdentityChange("run-1", "C", "updated", (), ("c2",)),
            ],
        )
        commit_pending(store)
    resources = {"store": StoreResource(url=url), "kafka": KafkaResource(bootstrap_servers=kafka_bootstrap)}
    try:
        result = dg.materialize([identity_change_feed], resources=resources)
        assert result.success
        metadata = result.asset_materializations_for_node("identity_change_feed")[0].metadata
        assert metadata["published"].value == 3 and metadata["topic"].value == topic
        assert metadata["published_created"].value == 1 and metadata["published_merged_into"].value == 1
        assert metadata["published_updated"].value == 1 and metadata["published_erased"].value == 0
        assert sorted(k for k, _ in read_all(kafka_bootstrap, topic)) == ["A", "B", "C"]
        again = dg.materialize([identity_change_feed], resources=resources)
        assert (
            again.asset_materializations_for_node("identity_change_feed")[0].metadata["published"].value == 0
        )
        assert len(read_all(kafka_bootstrap, topic)) == 3
    finally:
        get_settings.cache_clear()
    with open_store(url) as store:
        assert all(r["published_at"] is not None for r in changes_after(store, 0, 10))
