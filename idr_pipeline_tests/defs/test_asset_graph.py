"""The whole asset graph, materialized with dagster.materialize() on a small generated sample.

Real parts throughout: local Spark, a local lake folder and the SQLite store. The floors on
precision and recall are deliberately below what the deterministic linker reaches on this
data, so the test fails on a real regression (a broken normalizer, a lost source) and not on
noise.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from idr_pipeline.candidates.faiss_index import FaissCandidateIndex
from idr_pipeline.core.catalog import EMBEDDINGS, KEPT_LINKS, LINKS
from idr_pipeline.core.lake import Lake
from idr_pipeline.definitions import load_idr_definitions
from idr_pipeline.defs.platform.resources import build_resources
from idr_pipeline.defs.serving.schedules import resolve_job
from idr_pipeline.devtools.synthetic import Phenomena, generate_dataset
from idr_pipeline.graph.steps import read_links
from idr_pipeline.quality.accounting import row_account
from idr_pipeline.quality.accuracy import score_clusters
from idr_pipeline.settings import get_settings
from idr_pipeline.store import open_store

PEOPLE = 400
MIN_PRECISION = 0.97
MIN_RECALL = 0.55


def _materialize_all(instance: dg.DagsterInstance) -> dict[str, bool]:
    defs = load_idr_definitions()
    assets = list(defs.assets or [])
    checks = list(defs.asset_checks or [])
    resources = build_resources()
    for source in ("app", "crm", "pos", "web"):
        result = dg.materialize(
            assets, selection=["raw_profiles"], partition_key=source, resources=resources, instance=instance
        )
        assert result.success
    downstream = resolve_job.selection  # the batch lineage; streams and segments are partitioned apart
    result = dg.materialize([*assets, *checks], selection=downstream, resources=resources, instance=instance)
    assert result.success
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_materialize_everything_accounts_for_every_row_and_finds_people(idr_env, spark, monkeypatch):
    # The defaults embed every profile (the real chargram encoder and Faiss).
    get_settings.cache_clear()
    settings = get_settings()
    # The base generator: the hard cases (Jr/Sr, family tablets, initial-only names, withheld
    # dobs) are measured by benchmarks/accuracy.py; this test holds the asset graph's accounting
    # and a precision floor on data without them.
    generated = generate_dataset(
        people=PEOPLE, out_dir=idr_env / "landing", seed=7, phenomena=Phenomena.none()
    )
    instance = dg.DagsterInstance.ephemeral()

    checks = _materialize_all(instance)
    assert checks == {
        "row_accounting": True,
        "quarantine_rate_under_threshold": True,
        "largest_cluster_under_cap": True,
        "every_record_has_identity": True,
    }

    lake = Lake(settings.lake_uri, spark)
    account = row_account(lake)
    assert account.raw == sum(generated.records_by_source.values()) + generated.unreadable_rows
    assert account.raw == account.clean + account.quarantined + account.collapsed
    assert account.quarantined > 0 and account.collapsed > 0

    links = read_links(lake)
    truth = pd.read_csv(idr_env / "landing" / "truth.csv", dtype=str, keep_default_na=False)
    scores = score_clusters(links, truth)
    assert scores.precision >= MIN_PRECISION, scores
    assert scores.recall >= MIN_RECALL, scores

    with open_store(settings.store_url) as store:
        counts = store.table_counts()
        assert counts["record_links"] == account.clean
        some = links.iloc[0]
        assert store.get_identity(some.identity_id) is not None

        # The store explains a kept link: the path between its two records and the weights.
        kept = lake.read_latest(*KEPT_LINKS).orderBy("record_id_l").first()
        answer = store.why_merged(kept.record_id_l, kept.record_id_r)
        assert answer["same_identity"] and len(answer["path"]) >= 1
        assert isinstance(answer["path"][0]["weights"], dict) and answer["path"][0]["weights"]

    # The first publish names every identity it served as created, in the feed and in its metadata.
    first = instance.get_latest_materialization_event(dg.AssetKey("served_identities")).asset_materialization
    assert first.metadata["identity_changes_created"].value == counts["identities"]
    assert first.metadata["identity_changes_committed"].value == counts["identities"]

    # A second run over the same data renames nothing and leaves the store untouched.
    before = links.set_index("record_id").identity_id
    _materialize_all(instance)
    after = read_links(lake).set_index("record_id").identity_id
    assert after.sort_index().equals(before.sort_index())
    served = instance.get_latest_materialization_event(dg.AssetKey("served_identities"))
    changed = {
        k: v.value for k, v in served.asset_materialization.metadata.items() if k.startswith("changed_")
    }
    assert changed and all(v == 0 for v in changed.values()), changed
    feed = {
        k: v.value
        for k, v in served.asset_materialization.metadata.items()
        if k.startswith("identity_changes_")
    }
    assert feed and all(v == 0 for v in feed.values()), feed
    assert lake.has_dataset(*LINKS)
    embedded = lake.read_latest(*EMBEDDINGS).count()
    assert embedded == account.clean
    assert len(FaissCandidateIndex.load(settings.index_dir)) == account.clean

    def metadata(asset: str) -> dict[str, object]:
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}

    # The second run found every profile text unchanged: nothing was encoded again.
    assert metadata("profile_embeddings")["encoded_records"] == 0
    assert metadata("profile_embeddings")["reused_records"] == account.clean
    assert metadata("faiss_index")["dagster/row_count"] == account.clean
    # People with one record are left without a candidate by the rules and MinHash: they query.
    assert metadata("candidate_pairs")["embedding_queries"] > 0
