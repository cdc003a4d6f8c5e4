"""Property-based calls generated from the app's own OpenAPI schema: no 5xx, whatever is sent.

Each operation is called with an admin key (so calls get past auth and reach the handlers) and a
few generated examples; the seeded store gives look-ups something to find.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from idr_pipeline.api import create_app
from idr_pipeline.api.auth import create_key
from idr_pipeline.store import open_store
from idr_pipeline_tests.api.conftest import make_settings, seed, seed_index

ADMIN: dict[str, str] = {}
TEST_TOPIC = "test-schemathesis"


@pytest.fixture
def api_app(tmp_path: Path, kafka_bootstrap: str) -> Iterator[FastAPI]:
    app_settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'store.db'}", kafka_bootstrap_servers=kafka_bootstrap
    )
    store = open_store(app_settings.store_url)
    store.ensure_schema()
    seed(store)
    seed_index(Path(app_settings.index_dir))
    ADMIN["X-API-Key"] = create_key(store, "fuzz", ["admin"])[1]
    store.close()
    app = create_app(app_settings)
    with TestClient(app):  # runs the lifespan, so app.state holds the loaded state
        # register=true publishes here, not to the shared idr.profiles topic of the dev broker.
        app.state.idr.publisher.topic = TEST_TOPIC
        yield app


def test_no_server_errors(api_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: schemathesis.Case) -> None:
            if isinstance(case.body, dict) and case.body.get("destination") == "kafka":
                case.body["target"] = TEST_TOPIC  # generated topic names would litter the broker
            response = case.call(headers=ADMIN)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
                )

        call()
    assert not failures, failures
