"""The API's store pool on a real MariaDB: connections follow threads and outlive them."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from idr_pipeline.api.state import StorePool
from idr_pipeline_tests.services_fixtures import throwaway_database


@pytest.fixture
def pool(mariadb_url: str) -> Iterator[StorePool]:
    with throwaway_database(mariadb_url, "idr_pool") as url:
        pool = StorePool(url)
        try:
            yield pool
        finally:
            pool.close()


def _in_thread(fn: object) -> object:
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(fn()))  # type: ignore[operator]
    thread.start()
    thread.join()
    del thread
    gc.collect()
    return out[0]


def _connection_id(pool: StorePool) -> int:
    return int(pool.get().query("SELECT CONNECTION_ID()")[0][0])


def test_a_thread_keeps_its_connection_and_a_retired_threads_connection_is_reused(pool: StorePool) -> None:
    pool.prewarm(2)
    assert pool.size == 2 and pool.idle == 2
    mine = _connection_id(pool)
    assert _connection_id(pool) == mine  # same thread, same connection
    assert pool.size == 2 and pool.idle == 1
    # Ten short-lived threads one after another: each borrows the idle connection and gives
    # it back when it ends, so nothing new is opened and nothing leaks.
    seen = {_in_thread(lambda: _connection_id(pool)) for _ in range(10)}
    assert len(seen) == 1 and mine not in seen
    assert pool.size == 2 and pool.idle == 1


def test_concurrent_threads_get_distinct_connections(pool: StorePool) -> None:
    barrier = threading.Barrier(4)
    ids: list[int] = []

    def work() -> None:
        ids.append(_connection_id(pool))
        barrier.wait(timeout=10)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    del threads, t
    gc.collect()
    assert len(set(ids)) == 4
    assert pool.size == 4 and pool.idle == 4


def test_a_dead_idle_connection_is_replaced(pool: StorePool, monkeypatch: pytest.MonkeyPatch) -> None:
    pool.prewarm(1)
    victim = _in_thread(lambda: _connection_id(pool))
    killer = pool.open_unpooled()
    killer.query("SELECT 1")
    killer._execute(f"KILL {int(victim)}")  # what a server restart or wait_timeout does
    killer.close()
    monkeypatch.setattr(StorePool, "STALE_AFTER_SECONDS", 0.0)
    fresh = _in_thread(lambda: _connection_id(pool))
    assert fresh != victim
    assert pool.size == 1
