"""The project's dagster.yaml, as Dagster 1.13 reads it: the instance `make dev` starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    shutil.copyfile(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as opened:
        yield opened


def test_the_ui_opens_without_the_onboarding_prompt(instance):
    # The webserver's `shouldShowNux` is `instance.nux_enabled and not seen`: a modal asking
    # for an e-mail address over the first screen of a fresh instance.
    assert instance.nux_enabled is False
    assert instance.telemetry_enabled is False


def test_runs_and_spark_runs_are_limited_with_the_current_keys(instance):
    config = instance.get_concurrency_config()
    assert config.run_queue_config.max_concurrent_runs == 2
    assert config.pool_config.pool_granularity.value == "run"
    assert config.pool_config.default_pool_limit == 1
    assert instance.run_coordinator.dequeue_interval_seconds == 1
