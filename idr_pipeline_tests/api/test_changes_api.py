"""GET /changes, and the `erased` change an erasure records and sends to the real Tansu broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from idr_pipeline.store.change_log import commit_pending, record_changes
from idr_pipeline.store.changes import IdentityChange
from idr_pipeline_tests.api.conftest import Api, _open_api
from idr_pipeline_tests.services_fixtures import throwaway_database
from idr_pipeline_tests.stream.test_change_feed import read_all


@pytest.fixture(params=["sqlite", "mariadb"])
def feed_api(request: pytest.FixtureRequest, tmp_path: Path, kafka_bootstrap: str) -> Iterator[Api]:
    """The app on a fresh store of either backend, publishing changes to a topic of its own."""
    topic = f"idr.identity_changes.{uuid.uuid4().hex[:8]}"
    overrides = {"kafka_bootstrap_servers": kafka_bootstrap, "identity_changes_topic": topic}
    if request.param == "sqlite":
        yield from _open_api(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", **overrides)
    else:
        with throwaway_database(request.getfixturevalue("mariadb_url"), "idr_api") as url:
            yield from _open_api(tmp_path, url, **overrides)


def _commit(api: Api, run: str, *ids: str) -> None:
    record_changes(api.store, [IdentityChange(run, i, "created", (), (f"r-{i}",)) for i in ids])
    commit_pending(api.store)


def test_changes_are_paged_by_cursor_and_a_poll_continues_where_it_stopped(feed_api: Api) -> None:
    api = feed_api
    assert api.client.get("/changes").status_code == 401
    # It lists identities and record ids the server chose: a read key may not page through them.
    assert api.client.get("/changes", headers=api.h("read")).status_code == 403
    empty = api.client.get("/changes", headers=api.h("export")).json()
    assert empty["changes"] == [] and not empty["has_more"]

    _commit(api, "run-1", "C", "A", "B")
    first = api.client.get("/changes", params={"limit": 2}, headers=api.h("export")).json()
    assert [c["identity_id"] for c in first["changes"]] == ["A", "B"] and first["has_more"]
    assert first["changes"][0]["kind"] == "created" and first["changes"][0]["record_ids"] == ["r-A"]
    assert first["changes"][0]["run_id"] == "run-1" and first["changes"][0]["published_at"] is None
    rest = api.client.get("/changes", params={"since": first["next_cursor"]}, headers=api.h("export")).json()
    assert [c["identity_id"] for c in rest["changes"]] == ["C"] and not rest["has_more"]

    # Nothing new: the same cursor comes back, and a later change is found from it.
    idle = api.client.get("/changes", params={"since": rest["next_cursor"]}, headers=api.h("export")).json()
    assert idle == {"changes": [], "next_cursor": rest["next_cursor"], "has_more": False}
    _commit(api, "run-2", "D")
    later = api.client.get("/changes", params={"since": idle["next_cursor"]}, headers=api.h("export")).json()
    assert [c["identity_id"] for c in later["changes"]] == ["D"]

    # A cursor this API did not hand out.
    assert (
        api.client.get("/changes", params={"since": "bm90LWEtY3Vyc29y"}, headers=api.h("export")).status_code
        == 422
    )
    assert api.client.get("/changes", params={"limit": 0}, headers=api.h("export")).status_code == 422


def test_an_erasure_records_an_erased_change_per_identity_and_sends_it(
    feed_api: Api, kafka_bootstrap: str
) -> None:
    api = feed_api
    r = api.client.post(
        "/subjects/erase",
        json={"id_type": "email", "value": "alice.smith@gmail.com", "include_merged": True},
        headers=api.h("admin"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changes_recorded"] == 2 and body["changes_published"] is True
    changes = api.client.get("/changes", headers=api.h("export")).json()["changes"]
    assert [(c["identity_id"], c["kind"], c["run_id"]) for c in changes] == [
        ("id-001", "erased", body["request_id"]),
        ("id-old", "erased", body["request_id"]),
    ]
    assert changes[0]["record_ids"] == ["crm-id-001-0", "web-id-001-1"] and changes[1]["record_ids"] == []
    assert all(c["published_at"] is not None for c in changes)
    messages = read_all(kafka_bootstrap, api.settings.identity_changes_topic)
    assert sorted((key, value["kind"], value["event_id"]) for key, value in messages) == sorted(
        (c["identity_id"], "erased", c["event_id"]) for c in changes
    )


def test_an_erasure_stands_when_the_broker_is_down_and_its_change_waits(tmp_path: Path) -> None:
    # A port nothing listens on: the broker is unreachable.
    overrides = {"kafka_bootstrap_servers": "127.0.0.1:9", "identity_changes_topic": "idr.identity_changes"}
    for api in _open_api(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", **overrides):
        r = api.client.post(
            "/subjects/erase",
            json={"id_type": "email", "value": "bob.jones@example.com"},
            headers=api.h("admin"),
        )
        assert r.status_code == 200, r.text
        assert r.json()["changes_recorded"] == 1 and r.json()["changes_published"] is False
        (change,) = api.client.get("/changes", headers=api.h("export")).json()["changes"]
        assert (change["identity_id"], change["kind"], change["published_at"]) == ("id-002", "erased", None)
