"""The API keeps answering while an identity read waits for the store.

A publish makes store reads slower (the store server busy writing, SQLite's writer on the
same cores); a read that waits on the event loop holds up every other request. Here a read is
made to wait for as long as the test likes, by MariaDB's ``LOCK TABLES ... WRITE`` in another
session (readers queue behind it); meanwhile the liveness route, which needs no store, must
answer. SQLite has no such case: in WAL mode nothing another connection does while the API's
connections are open makes a reader wait (``store/test_publish.py`` checks that a reader
answers while a publish transaction is open, on both stores).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from idr_pipeline.store import open_store
from idr_pipeline_tests.api.conftest import Api


@contextmanager
def _mariadb_lock(url: str) -> Iterator[Callable[[], bool]]:
    """LOCK TABLES golden_profiles WRITE; yields a probe: a session is waiting for the table."""
    locker, watcher = open_store(url), open_store(url)
    try:
        locker._execute("LOCK TABLES golden_profiles WRITE")
        yield lambda: bool(
            watcher.query(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE state LIKE 'Waiting for table%'"
            )[0][0]
        )
    finally:
        locker.close()  # ends the lock
        watcher.close()


def test_the_api_answers_while_an_identity_read_waits_for_the_store(mariadb_api: Api) -> None:
    api = mariadb_api
    url = api.settings.store_url.get_secret_value()
    api.client.get("/identities/id-001", headers=api.h("read"))  # the key is cached now
    with ThreadPoolExecutor(max_workers=2) as pool:
        with _mariadb_lock(url) as read_is_waiting:
            waiting = pool.submit(api.client.get, "/identities/id-002", headers=api.h("read"))
            deadline = time.monotonic() + 30
            while not read_is_waiting():
                assert time.monotonic() < deadline, "the identity read never reached the lock"
                time.sleep(0.05)
            assert not waiting.done()
            alive = pool.submit(api.client.get, "/health")
            # With the read on the event loop, /health would wait for the lock to go.
            assert alive.result(timeout=10).status_code == 200
            assert not waiting.done()
        answer = waiting.result(timeout=60)
    assert answer.status_code == 200
    assert answer.json()["identity_id"] == "id-002"
