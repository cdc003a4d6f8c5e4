"""Session fixtures for the real dev/test services: the Tansu broker and MariaDB.

Tests never skip for want of a service: when ``IDR_TEST_KAFKA_BOOTSTRAP`` /
``IDR_TEST_SINGLESTORE_URL`` are unset and the run dir has no healthy services, the fixtures
start them with :func:`idr_pipeline.services.up` (and leave them running for the next run,
the way ``make test`` expects). Import both names from the top-level ``conftest.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest

from idr_pipeline.devtools.services import service_endpoints


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


def server_url_with_database(url: str, database: str) -> str:
    """The same MariaDB server and user, another database."""
    from idr_pipeline.store import parse_store_url

    parsed = parse_store_url(url)
    return f"singlestoredb://{parsed.user}:{parsed.password}@{parsed.host}:{parsed.port}/{database}"


def admin_sql(url: str, sql: str) -> None:
    """One statement on ``url``'s own database with autocommit (CREATE/DROP DATABASE)."""
    import singlestoredb as s2

    from idr_pipeline.store import parse_store_url

    conn = s2.connect(server_url_with_database(url, parse_store_url(url).database), autocommit=True)
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


@contextmanager
def throwaway_database(base_url: str, prefix: str = "idr_test") -> Iterator[str]:
    """A fresh database on the test server for one test: yields its URL, drops it afterwards,
    so tests neither see each other's rows nor depend on their order."""
    database = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin_sql(base_url, f"CREATE DATABASE {database} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield server_url_with_database(base_url, database)
    finally:
        admin_sql(base_url, f"DROP DATABASE IF EXISTS {database}")
