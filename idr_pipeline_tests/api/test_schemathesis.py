"""Property-based calls generated from the app's own OpenAPI schema: no 5xx, whatever is sent,
on the SQLite store and on MariaDB.

Each operation is called with an admin key (so calls get past auth and reach the handlers) and
``IDR_FUZZ_EXAMPLES`` generated examples (12 by default); the seeded store gives look-ups
something to find. The run prints its figures (operations, cases, responses by status).
"""

from __future__ import annotations

import os
from collections import Counter
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
from idr_pipeline_tests.services_fixtures import throwaway_database

ADMIN: dict[str, str] = {}
TEST_TOPIC = "idr-activation.test-schemathesis"
EXAMPLES = int(os.environ.get("IDR_FUZZ_EXAMPLES", "12"))


@pytest.fixture(params=["sqlite", "mariadb"])
def api_app(request: pytest.FixtureRequest, tmp_path: Path, kafka_bootstrap: str) -> Iterator[FastAPI]:
    if request.param == "sqlite":
        yield from _app(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", kafka_bootstrap)
    else:
        with throwaway_database(request.getfixturevalue("mariadb_url"), "idr_fuzz") as url:
            yield from _app(tmp_path, url, kafka_bootstrap)


def _app(tmp_path: Path, store_url: str, kafka_bootstrap: str) -> Iterator[FastAPI]:
    app_settings = make_settings(
        tmp_path,
        store_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        # One key makes every call: budgets that a fuzz run does not exhaust.
        api_rate_limit="100000/second",
        api_rate_limit_resolve="100000/second",
        api_rate_limit_activations="100000/second",
        api_rate_limit_erasure="100000/second",
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
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def call(case: schemathesis.Case) -> None:
            if isinstance(case.body, dict) and case.body.get("destination") == "kafka":
                case.body["target"] = TEST_TOPIC  # generated topic names would litter the broker
            response = case.call(headers=ADMIN)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
                )

        call()
    backend = api_app.state.idr.store().backend_name
    print(
        f"\nschemathesis on {backend}: {len(operations)} operations, {sum(statuses.values())} cases, "
        f"{len(failures)} server errors; statuses {dict(sorted(statuses.items()))}"
    )
    assert not failures, failures
