"""The publish path (``publish_identities``) on both backends: bounded transactions that never
split an identity's rows of a table, and readers that keep getting answers while it runs.

Each test publishes through one connection and reads through another, as the API reads while
``served_identities`` publishes; the MariaDB run gets a fresh database of its own.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from idr_pipeline.store import IdentityStore, open_store
from idr_pipeline.store.base import commit_batches
from idr_pipeline.store.publish import publish_identities
from idr_pipeline_tests.services_fixtures import throwaway_database

IDS = [f"ID-{n}" for n in range(6)]


@pytest.fixture(params=["sqlite", "mariadb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store with its schema created: a fresh SQLite file or a fresh server database."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'store.db'}"
        else:
            url = stack.enter_context(throwaway_database(request.getfixturevalue("mariadb_url")))
        with open_store(url) as store:
            store.ensure_schema()
        yield url


def _tables(version: int, on_identifier: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """One publish of IDS at ``version``: each identity's row, golden profile and two identifiers
    (the second names the version), in identity order; ``on_identifier`` runs as each identity's
    first identifier row is handed over, so a test can look at the store mid-publish."""

    def identifiers() -> Iterator[dict[str, Any]]:
        for identity_id in IDS:
            on_identifier(identity_id)
            yield {"id_type": "email", "id_value": f"{identity_id}@example.com", "identity_id": identity_id}
            yield {
                "id_type": "device_id",
                "id_value": f"{identity_id}-v{version}",
                "identity_id": identity_id,
            }

    return {
        "identities": [{"identity_id": i, "status": "active", "record_count": version} for i in IDS],
        "golden_profiles": [
            {"identity_id": i, "first_name": f"v{version}", "record_count": version} for i in IDS
        ],
        "identifiers": identifiers(),
    }


def _devices(reader: IdentityStore, identity_id: str) -> list[str]:
    identity = reader.get_identity(identity_id)
    assert identity is not None
    return [i["id_value"] for i in identity["identifiers"] if i["id_type"] == "device_id"]


def test_a_reader_sees_committed_batches_while_the_publish_runs_never_half_an_identity(
    store_url: str,
) -> None:
    with open_store(store_url) as publisher, open_store(store_url) as reader:
        publish_identities(publisher, _tables(1), commit_rows=0)
        seen: dict[str, list[list[str]]] = {}

        def look(identity_id: str) -> None:
            # Handing over this identity's first row: the batches before it are committed.
            seen[identity_id] = [_devices(reader, i) for i in IDS]

        # Batches of at least 3 rows that end only between identities: two identities each
        # (4 rows), so the third and fifth identities' rows start new transactions.
        changed = publish_identities(publisher, _tables(2, look), commit_rows=3)

        assert changed["identities"] == 6 and changed["identifiers"] == 6
        old, new = ["ID-{}-v1"], ["ID-{}-v1", "ID-{}-v2"]

        def expect(done: int) -> list[list[str]]:
            return [[d.format(n) for d in (new if n < done else old)] for n in range(6)]

        # A batch commits once the next identity's first row arrives, so when the publish
        # asks for the fourth identity's rows the first two identities' identifiers are
        # committed, whole, and at the sixth the first four; never one of an identity's two.
        assert seen["ID-0"] == seen["ID-1"] == seen["ID-2"] == expect(0)
        assert seen["ID-3"] == seen["ID-4"] == expect(2)
        assert seen["ID-5"] == expect(4)
        assert [_devices(reader, i) for i in IDS] == expect(6)


def test_a_reader_gets_answers_while_a_publish_transaction_is_open(store_url: str) -> None:
    """The publisher holds an open write transaction with rows written but not committed (one
    transaction for the whole table, rows written two at a time); a reader on its own
    connection answers at once, with the last committed version."""
    with open_store(store_url) as publisher, open_store(store_url) as reader:
        publish_identities(publisher, _tables(1), commit_rows=0)
        publisher.chunk_size = 2  # the first identities' rows are written before the pause
        paused, resume = threading.Event(), threading.Event()
        answers: list[Any] = []

        def pause(identity_id: str) -> None:
            if identity_id == "ID-3":
                paused.set()
                assert resume.wait(30), "the reader never finished"

        def read() -> None:
            assert paused.wait(30), "the publish never reached its pause"
            answers.extend([_devices(reader, "ID-0"), reader.lookup("device_id", "ID-0-v2")])
            resume.set()

        thread = threading.Thread(target=read)
        thread.start()
        try:
            publish_identities(publisher, _tables(2, pause), commit_rows=0)
        finally:
            resume.set()
            thread.join(30)
        # The reader answered while the transaction was open (else the publish would still
        # wait for it), from the committed rows: no dirty read of the uncommitted ones.
        assert answers == [["ID-0-v1"], []]
        assert _devices(reader, "ID-0") == ["ID-0-v1", "ID-0-v2"]


def test_a_merge_published_in_batches_leaves_one_owner_per_identifier(store_url: str) -> None:
    with open_store(store_url) as store:
        publish_identities(store, _tables(1), commit_rows=0)
        merge = _tables(2)
        merge["identities"][1] |= {"status": "merged", "merged_into": "ID-0", "record_count": 0}
        merge["golden_profiles"] = [p for p in merge["golden_profiles"] if p["identity_id"] != "ID-1"]
        merge["identifiers"] = [
            {"id_type": "email", "id_value": "ID-1@example.com", "identity_id": "ID-0"},
        ]
        merge["merge_history"] = [{"merged_id": "ID-1", "survivor_id": "ID-0", "reason": "shared email"}]
        changed = publish_identities(store, merge, commit_rows=1)
        assert changed["pruned_identifiers"] == 2 and changed["pruned_golden_profiles"] == 1
        assert store.lookup("email", "ID-1@example.com") == ["ID-0"]
        assert [m["merged_id"] for m in store.get_identity("ID-0")["merges"]] == ["ID-1"]
        # A rerun of the same load changes nothing, bounded or not.
        again = publish_identities(store, merge, commit_rows=1)
        assert not any(again.values())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_the_publish_runs_at_lower_cpu_priority_and_the_callers_stays(store_url: str) -> None:
    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    seen: list[int] = []

    def identities() -> Iterator[dict[str, Any]]:
        seen.append(priority())  # on the thread the publish runs on
        yield {"identity_id": "ID-0", "status": "active", "record_count": 1}

    mine = priority()
    with open_store(store_url) as store:
        assert (
            publish_identities(store, {"identities": identities()}, commit_rows=10, nice=5)["identities"] == 1
        )
        assert seen == [min(19, mine + 5)]
        assert priority() == mine
        publish_identities(store, {"identities": identities()}, commit_rows=10, nice=0)
        assert seen[-1] == mine


def test_publish_refuses_what_it_does_not_write(store_url: str) -> None:
    with open_store(store_url) as store:
        with pytest.raises(ValueError, match="api_keys"):
            publish_identities(store, {"api_keys": []}, commit_rows=10)
        with pytest.raises(ValueError, match="commit_rows"):
            publish_identities(store, {}, commit_rows=-1)


def test_batches_end_only_between_groups() -> None:
    rows = [{"g": g} for g in "aabbbcdd"]
    assert [[r["g"] for r in b] for b in commit_batches(rows, 2, "g")] == [
        ["a", "a"],
        ["b", "b", "b"],
        ["c", "d", "d"],
    ]
    assert [len(b) for b in commit_batches(rows, 3, None)] == [3, 3, 2]
    with pytest.raises(ValueError):
        list(commit_batches(rows, 0, "g"))
