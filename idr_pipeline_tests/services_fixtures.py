"""Session fixtures for the real dev/test services: the Tansu broker and MariaDB.

Tests never skip for want of a service: when ``IDR_TEST_KAFKA_BOOTSTRAP`` /
``IDR_TEST_SINGLESTORE_URL`` are unset and the run dir has no healthy services, the fixtures
start them with :func:`idr_pipeline.services.up` (and leave them running for the next run,
the way ``make test`` expects). Import both names from the top-level ``conftest.py``.
"""

from __future__ import annotations

from functools import cache

import pytest

from idr_pipeline.services import service_endpoints


@cache
def _endpoints() -> dict[str, str]:
    # A plain cached function rather than a third fixture, so importing the two public
    # fixture names is all a conftest needs; one up()/health check serves both.
    return service_endpoints(start=True)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """``host:port`` of a Kafka-protocol broker that answers metadata requests."""
    return _endpoints()["kafka_bootstrap"]


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """``singlestoredb://idr:idr@127.0.0.1:PORT/idr``; the user may create other databases."""
    return _endpoints()["store_url"]
