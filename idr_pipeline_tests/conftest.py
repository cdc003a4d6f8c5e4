"""Shared fixtures: one Spark session per test run, isolated lake/store folders per test.

Tests use the real parts (local Spark, the Tansu broker, MariaDB, the MiniLM model); the
services fixtures start the broker and the database when they are not already running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

# Small Spark footprint for a 2-core CI box; set before anything reads the settings.
os.environ.setdefault("IDR_SPARK_SHUFFLE_PARTITIONS", "4")
os.environ.setdefault("IDR_SPARK_DRIVER_MEMORY", "2g")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from idr_pipeline.settings import get_settings  # noqa: E402
from idr_pipeline.store import IdentityStore, open_store  # noqa: E402
from idr_pipeline_tests.services_fixtures import kafka_bootstrap, mariadb_url, throwaway_database  # noqa: E402,F401


@pytest.fixture(scope="session")
def spark():
    from idr_pipeline.core.spark import get_spark

    return get_spark()


@pytest.fixture
def idr_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point landing folder, lake, Faiss index and SQLite store at a fresh temp folder for one test."""
    monkeypatch.setenv("IDR_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("IDR_INDEX_DIR", str(tmp_path / "faiss"))
    monkeypatch.setenv("IDR_LAKE_URI", (tmp_path / "lake").as_uri())
    monkeypatch.setenv("IDR_STORE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture(params=["sqlite", "mariadb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IdentityStore]:
    """A store with its schema created, on a fresh SQLite file or a fresh server database."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'store.db'}"
        else:
            url = stack.enter_context(throwaway_database(request.getfixturevalue("mariadb_url")))
        opened = stack.enter_context(open_store(url))
        opened.ensure_schema()
        yield opened
