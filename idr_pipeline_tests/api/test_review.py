"""Possible matches, stewards' decisions and ambiguous /resolve answers (issue 20), on both stores."""

from __future__ import annotations

import pytest

from idr_pipeline_tests.api.conftest import Api


@pytest.fixture(params=["sqlite", "mariadb"])
def any_api(request: pytest.FixtureRequest) -> Api:
    return request.getfixturevalue("api" if request.param == "sqlite" else "mariadb_api")


def test_possible_matches_are_served_from_either_side(any_api: Api) -> None:
    any_api.store.replace_rows(
        "possible_matches",
        [
            {"record_id_l": "crm-id-001-0", "record_id_r": "crm-id-002-0", "identity_id_l": "id-001",
             "identity_id_r": "id-002", "probability": 0.7, "person_weight": 1.5, "reason": "grey_band"},
            {"record_id_l": "crm-id-003-0", "record_id_r": "web-id-001-1", "identity_id_l": "id-003",
             "identity_id_r": "id-001", "probability": 0.97, "person_weight": 2.0, "reason": "ambiguous"},
        ],
    )  # fmt: skip
    body = any_api.client.get("/identities/id-001/possible-matches", headers=any_api.h("read")).json()
    assert [(m["record_id"], m["other_identity_id"], m["reason"]) for m in body["possible_matches"]] == [
        ("web-id-001-1", "id-003", "ambiguous"),
        ("crm-id-001-0", "id-002", "grey_band"),
    ]
    missing = any_api.client.get("/identities/id-nope/possible-matches", headers=any_api.h("read"))
    assert missing.status_code == 404


def test_replace_rows_keeps_exactly_the_last_runs_rows(any_api: Api) -> None:
    row = {"record_id_l": "a", "record_id_r": "b", "identity_id_l": "i1", "identity_id_r": "i2",
           "probability": 0.6, "person_weight": None, "reason": "grey_band"}  # fmt: skip
    other = {**row, "record_id_r": "c"}
    assert any_api.store.replace_rows("possible_matches", [row, other]) == (2, 0)
    assert any_api.store.replace_rows("possible_matches", [row, other]) == (0, 0)
    assert any_api.store.replace_rows("possible_matches", [row]) == (0, 1)
    assert [r["record_id_r"] for r in any_api.store.select_rows("possible_matches")] == ["b"]


def test_decisions_are_recorded_listed_and_withdrawn(any_api: Api) -> None:
    h = any_api.h("steward")
    decision = {
        "record_id_a": "web-id-002-1",
        "record_id_b": "crm-id-001-0",
        "decision": "split",
        "reason": "twins",
    }
    made = any_api.client.post("/decisions", json=decision, headers=h).json()
    assert (made["record_id_l"], made["record_id_r"], made["decision"]) == (
        "crm-id-001-0",
        "web-id-002-1",
        "split",
    )
    assert made["decided_by"].startswith("key:") and made["changed"] is True
    assert any_api.client.post("/decisions", json=decision, headers=h).json()["changed"] is False
    listed = any_api.client.get("/decisions?record_id=web-id-002-1", headers=h).json()
    assert [d["reason"] for d in listed] == ["twins"]
    same = {**decision, "record_id_b": decision["record_id_a"]}
    assert any_api.client.post("/decisions", json=same, headers=h).status_code == 422
    wrong = {**decision, "decision": "link"}
    assert any_api.client.post("/decisions/remove", json=wrong, headers=h).status_code == 404
    assert any_api.client.post("/decisions/remove", json=decision, headers=h).status_code == 200
    assert any_api.client.get("/decisions", headers=h).json() == []
    assert any_api.client.post("/decisions", json=decision, headers=any_api.h("read")).status_code == 403


def test_resolve_is_ambiguous_between_two_people_who_fit_alike(any_api: Api) -> None:
    """With one Bob Jones the query matches him; with two alike it names both and claims none."""
    query = {"first_name": "Bob", "last_name": "Jones", "street": "2 Oak Ave", "postcode": "62702"}
    one = any_api.client.post("/resolve", json=query, headers=any_api.h("read")).json()
    assert one["matched"] is True and one["identity_id"] == "id-002" and one["ambiguous"] is False
    any_api.store.upsert_identities([{"identity_id": "id-twin", "status": "active", "record_count": 1}])
    any_api.store.upsert_golden_profiles(
        [{"identity_id": "id-twin", "first_name": "Bob", "last_name": "Jones", "street": "2 Oak Ave",
          "city": "Springfield", "state": "IL", "postcode": "62702", "country": "US", "dob": "1975-06-07",
          "identifiers": {}, "sources": ["pos"], "record_count": 1}]
    )  # fmt: skip
    state = any_api.client.app.state.idr
    state.resolver.refresh(state.store())
    two = any_api.client.post("/resolve", json=query, headers=any_api.h("read")).json()
    assert two["matched"] is False and two["ambiguous"] is True and two["method"] == "ambiguous"
    assert {c["identity_id"] for c in two["candidates"]} == {"id-002", "id-twin"}
    assert two["identity_id"] is None and two["probability"] is None
