"""What the API sets up before its first request: threads, connections, a frozen heap."""

from __future__ import annotations

import gc
from pathlib import Path

import anyio.to_thread
from fastapi.testclient import TestClient

from idr_pipeline.api import create_app
from idr_pipeline_tests.api.conftest import make_settings


def test_startup_sizes_the_thread_pool_and_opens_its_connections(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'store.db'}", api_threads=3, api_read_threads=2
    )
    with TestClient(create_app(settings)) as client:
        tokens = client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)
        assert tokens == 3
        assert client.app.state.idr.read_limiter.total_tokens == 2
        pool = client.app.state.idr.pool
        # One connection for the start-up thread, five idle for the workers and the readers.
        assert pool.size == 6 and pool.idle == 5
        assert client.get("/health").status_code == 200
        assert pool.size == 6  # a worker thread borrowed an idle one; nothing new opened


def test_freeze_gc_freezes_what_startup_loaded(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    gc.unfreeze()
    try:
        with TestClient(create_app(settings)):
            assert gc.get_freeze_count() == 0  # off unless asked: tests build many apps
        with TestClient(create_app(settings, freeze_gc=True)):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
