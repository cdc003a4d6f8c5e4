"""A failed check that protects the store stops the publish: the store keeps the last good run.

Real parts: ``resolve_job`` run in-process through the code location's definitions, on local
Spark, a lake folder and the SQLite store. The first run resolves three sources and
publishes; then a fourth source lands and the quarantine threshold drops to zero, which the
sample (it has unreadable and unusable rows) cannot meet, so the second run's
``quarantine_rate_under_threshold`` fails. The cluster-size cap is no way to fail a check
here: clustering itself refuses merges past the same cap.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import dagster as dg

from idr_pipeline.core.catalog import CLEAN
from idr_pipeline.core.lake import Lake
from idr_pipeline.definitions import load_idr_definitions
from idr_pipeline.devtools.dagster_runs import check_evaluations
from idr_pipeline.devtools.synthetic import generate_dataset
from idr_pipeline.settings import get_settings
from idr_pipeline.store import parse_store_url

PEOPLE = 150
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _land(instance: dg.DagsterInstance, *sources: str) -> None:
    ingest = load_idr_definitions().resolve_job_def("ingest_job")
    for source in sources:
        assert ingest.execute_in_process(partition_key=source, instance=instance, run_config=QUIET).success


def _resolve(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = load_idr_definitions().resolve_job_def("resolve_job")
    return job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)


def _store_rows(path: str) -> dict[str, list[tuple]]:
    """Every row of every table of the SQLite store, in a stable order."""
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {
        event.asset_key.to_user_string()
        for event in result.all_events
        if event.event_type_value == "ASSET_MATERIALIZATION"
    }


def test_a_failed_blocking_check_stops_the_publish_and_the_store_keeps_the_last_good_run(
    idr_env: Path, spark, monkeypatch
):
    generate_dataset(people=PEOPLE, out_dir=idr_env / "landing", seed=11)
    instance = dg.DagsterInstance.ephemeral()
    _land(instance, "app", "crm", "pos")
    good = _resolve(instance)
    assert good.success
    assert "served_identities" in _materialized(good)
    store_path = parse_store_url(get_settings().store_url).path
    published = _store_rows(store_path)
    assert published["record_links"]

    _land(instance, "web")
    monkeypatch.setenv("IDR_MAX_QUARANTINE_RATE", "0")
    get_settings.cache_clear()
    blocked = _resolve(instance)

    assert not blocked.success
    check = check_evaluations(blocked)["clean_profiles:quarantine_rate_under_threshold"]
    assert not check.passed and check.blocking
    assert "above IDR_MAX_QUARANTINE_RATE 0.0%: publishing stopped" in (check.description or "")
    materialized = _materialized(blocked)
    assert "clean_profiles" in materialized
    assert not materialized & {"identity_graph", "resolved_profiles", "served_identities"}
    assert _store_rows(store_path) == published

    # The blocked run cleaned the new source's records: publishing would have changed the store.
    clean = Lake(get_settings().lake_uri, spark).read_latest_arrow(*CLEAN, columns=["record_id"])
    assert clean.num_rows > len(published["record_links"])
