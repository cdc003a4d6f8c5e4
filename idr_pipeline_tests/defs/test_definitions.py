"""The code location loads with every asset, check, job, sensor and schedule the UI should show."""

from __future__ import annotations

import dagster as dg

from idr_pipeline.definitions import defs, load_idr_definitions


def test_code_location_has_the_foundation_graph():
    d = load_idr_definitions()
    graph = d.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys >= {
        "raw_profiles",
        "clean_profiles",
        "quarantined_profiles",
        "identity_edges",
        "identity_graph",
        "resolved_profiles",
        "served_identities",
        "profile_embeddings",
        "faiss_index",
        "candidate_pairs",
        "match_model",
        "scored_pairs",
    }
    checks = {k.name for k in graph.asset_check_keys}
    assert checks >= {
        "row_accounting",
        "quarantine_rate_under_threshold",
        "largest_cluster_under_cap",
        "every_record_has_identity",
    }
    # Lineage: each step reads the one before it.
    parents = {
        k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
        for k in graph.get_all_asset_keys()
    }
    assert parents["clean_profiles"] == {"raw_profiles"}
    assert "identity_edges" in parents["candidate_pairs"] and "faiss_index" in parents["candidate_pairs"]
    assert parents["faiss_index"] == {"profile_embeddings"}
    assert "candidate_pairs" in parents["match_model"]
    assert "match_model" in parents["scored_pairs"]
    assert "scored_pairs" in parents["identity_graph"]
    assert "identity_graph" in parents["resolved_profiles"]
    assert "resolved_profiles" in parents["served_identities"]
    assert d.resolve_job_def("ingest_job") and d.resolve_job_def("resolve_job")
    assert d.resolve_sensor_def("landing_folder_sensor")
    assert d.resolve_schedule_def("daily_resolve_schedule")
    assert set(d.resources) >= {"pyspark", "lake", "store", "kafka", "pipeline_config"}


def test_module_level_defs_is_the_same_location():
    assert isinstance(defs(), dg.Definitions)
