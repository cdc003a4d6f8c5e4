"""Behavioral audience leaves over published event aggregates, on SQLite and MariaDB: every leaf
option, windows at their edge, NOT/AND/OR mixed with profile and segment leaves, pagination,
erasure, the cost limit, and SQL text that carries no client value."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from idr_pipeline.api.audience_sql import MAX_BEHAVIOR_LEAVES, compile_audience
from idr_pipeline.segments.dsl import parse_expression
from idr_pipeline_tests.api.conftest import EXTRA, Api, _open_api
from idr_pipeline_tests.services_fixtures import throwaway_database

AS_OF = datetime(2025, 3, 31, 15, 30)
FILLERS = [f"id-1{n:02d}" for n in range(EXTRA)]


def _agg(identity_id: str, event_type: str, days_ago: int, **values: Any) -> dict[str, Any]:
    return {"identity_id": identity_id, "event_type": event_type, "days_ago": days_ago, **values}


AGGREGATES = [
    _agg("id-001", "purchase", 2, category="luxury", product_id="P1", events=1, amount=600.0),
    _agg("id-001", "purchase", 40, category="luxury", events=1, amount=100.0),
    _agg("id-002", "purchase", 29, category="luxury", events=1, amount=300.0),
    _agg("id-002", "purchase", 10, category="luxury", product_id="P2", events=1, amount=250.0),
    _agg("id-003", "ad_click", 6, campaign="black_friday", events=2),
    _agg("id-003", "ad_click", 0, category="apparel", campaign="spring_sale", events=1),
    _agg("id-004", "page_view", 0, category="sports", events=3),
    _agg("id-old", "purchase", 1, category="luxury", events=1, amount=900.0),  # merged: never served
    *[_agg(f, "page_view", 30 + n, category="books", events=1 + n % 5) for n, f in enumerate(FILLERS)],
]
#: Two unresolved events besides the aggregated ones: the publish checks the accounts balance.
RUN = {"as_of": AS_OF, "events": sum(a["events"] for a in AGGREGATES) + 2, "unresolved": 2, "other_types": 0}


@pytest.fixture(params=["sqlite", "mariadb"])
def behavior_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The seeded app on either backend, with the aggregates above published."""
    if request.param == "sqlite":
        apis = _open_api(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
        api = next(apis)
        api.store.publish_event_aggregates(AGGREGATES, RUN)
        yield api
        apis.close()
        return
    with throwaway_database(request.getfixturevalue("mariadb_url"), "idr_api") as url:
        apis = _open_api(tmp_path, url)
        api = next(apis)
        api.store.publish_event_aggregates(AGGREGATES, RUN)
        yield api
        apis.close()


def _query(api: Api, expression: dict, **extra: Any) -> dict[str, Any]:
    r = api.client.post("/audiences/query", json={"expression": expression, **extra}, headers=api.h("export"))
    assert r.status_code == 200, r.text
    return r.json()


def _ids(api: Api, expression: dict) -> set[str]:
    body = _query(api, expression, limit=1000)
    assert body["count"] == len(body["identities"])
    return set(body["identities"])


US = {"attribute": {"field": "country", "in": ["US"]}}
US_IDS = {"id-001", "id-002", "id-004"} | {f for n, f in enumerate(FILLERS) if n % 2}

CASES: dict[str, tuple[dict, set[str]]] = {
    "min_total": (
        {"purchased": {"category": "luxury", "within_days": 30, "min_total": 500}},
        {"id-001", "id-002"},
    ),
    "min_total_above_both": ({"purchased": {"within_days": 30, "min_total": 600.5}}, set()),
    "min_total_window_edge": ({"purchased": {"within_days": 41, "min_total": 700}}, {"id-001"}),
    "category_any_case": ({"purchased": {"category": "LuXuRy", "within_days": 30}}, {"id-001", "id-002"}),
    "category_other": ({"purchased": {"category": "books"}}, set()),
    "window_edge_in": ({"purchased": {"within_days": 3}}, {"id-001"}),
    "window_edge_out": ({"purchased": {"within_days": 2}}, set()),
    "product_exact": ({"purchased": {"product_id": "P2", "within_days": 30}}, {"id-002"}),
    "product_case_matters": ({"purchased": {"product_id": "p2", "within_days": 30}}, set()),
    "min_count": ({"purchased": {"within_days": 30, "min_count": 2}}, {"id-002"}),
    "min_count_wide": ({"purchased": {"within_days": 366, "min_count": 2}}, {"id-001", "id-002"}),
    "campaign_any_case": ({"clicked": {"campaign": "Black_Friday", "within_days": 7}}, {"id-003"}),
    "campaign_out_of_window": ({"clicked": {"campaign": "black_friday", "within_days": 6}}, set()),
    "click_min_count": ({"clicked": {"within_days": 7, "min_count": 3}}, {"id-003"}),
    "click_category": ({"clicked": {"category": "apparel"}}, {"id-003"}),
    "click_category_and_campaign": ({"clicked": {"category": "apparel", "campaign": "black_friday"}}, set()),
    "viewed_default_window": ({"viewed": {"category": "sports"}}, {"id-004"}),
    "viewed_min_count": ({"viewed": {"within_days": 33, "min_count": 3}}, {"id-004", "id-102"}),
    "not_behavior": (
        {"all": [US, {"not": {"purchased": {"within_days": 30}}}]},
        US_IDS - {"id-001", "id-002"},
    ),
    "or_behavior_and_segment": (
        {
            "any": [
                {"clicked": {"campaign": "black_friday"}},
                {"viewed": {"category": "sports"}},
                {"in_segment": "vip"},
            ]
        },
        {"id-001", "id-002", "id-003", "id-004"},
    ),
    "and_segment_total_not_product": (
        {
            "all": [
                {"in_segment": "vip"},
                {"purchased": {"min_total": 500, "within_days": 30}},
                {"not": {"purchased": {"product_id": "P2"}}},
            ]
        },
        {"id-001"},
    ),
    "not_of_or": (
        {
            "all": [
                {"age": {"min": 0}},
                {"not": {"any": [{"purchased": {}}, {"viewed": {"within_days": 40}}]}},
            ]
        },
        {"id-003"} | set(FILLERS[10:]),  # fillers viewed 30-39 days ago
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_behavioral_leaf_options(behavior_api: Api, name: str) -> None:
    expression, expected = CASES[name]
    assert _ids(behavior_api, expression) == expected


def test_behavioral_answers_say_as_of_when(behavior_api: Api) -> None:
    body = _query(behavior_api, {"viewed": {"within_days": 366}}, limit=5)
    assert datetime.fromisoformat(body["events_as_of"]) == AS_OF
    assert _query(behavior_api, US)["events_as_of"] is None


def test_behavioral_pages_are_keyset_ordered(behavior_api: Api) -> None:
    expression = {"viewed": {"within_days": 366}}
    first = _query(behavior_api, expression, limit=5)
    assert first["count"] == 1 + EXTRA
    seen, cursor = list(first["identities"]), first["next_cursor"]
    while cursor:
        page = _query(behavior_api, expression, limit=5, cursor=cursor)
        seen += page["identities"]
        cursor = page["next_cursor"]
    assert seen == sorted(set(seen)) and len(seen) == 1 + EXTRA


def test_erased_person_leaves_behavioral_audiences(behavior_api: Api) -> None:
    api = behavior_api
    r = api.client.request(
        "DELETE",
        "/subjects",
        json={"id_type": "email", "value": "alice.smith@gmail.com", "include_merged": True},
        headers=api.h("admin"),
    )
    assert r.status_code == 200 and r.json()["rows_deleted"]["event_aggregates"] == 3  # id-001 and id-old
    assert api.store.count_rows("event_aggregates", {"identity_id": ["id-001", "id-old"]}) == 0
    assert _ids(api, {"purchased": {"within_days": 366}}) == {"id-002"}


def test_too_many_behavioral_leaves_is_422(behavior_api: Api) -> None:
    leaves = [{"purchased": {"within_days": d}} for d in range(1, MAX_BEHAVIOR_LEAVES + 2)]
    r = behavior_api.client.post(
        "/audiences/query", json={"expression": {"any": leaves}}, headers=behavior_api.h("export")
    )
    assert r.status_code == 422 and "behavioral" in r.text
    assert _ids(behavior_api, {"any": leaves[:MAX_BEHAVIOR_LEAVES]}) == {"id-001"}


def test_behavioral_sql_binds_every_value() -> None:
    hostile = "x' OR 1=1 --"
    expression = parse_expression(
        {
            "all": [
                {
                    "purchased": {
                        "category": hostile,
                        "product_id": hostile,
                        "within_days": 17,
                        "min_total": 12.5,
                    }
                },
                {"clicked": {"campaign": hostile, "min_count": 4}},
            ]
        }
    )
    compiled = compile_audience(expression, "%s")
    assert (
        "x'" not in compiled.predicate and "17" not in compiled.predicate and "12.5" not in compiled.predicate
    )
    assert "GROUP BY identity_id HAVING SUM(events) >= %s AND SUM(amount) >= %s" in compiled.predicate
    assert compiled.predicate.count("%s") == len(compiled.params)
    assert compiled.params == [
        "active",
        "purchase",
        17,
        hostile.lower(),
        hostile,
        1,
        12.5,
        "ad_click",
        30,
        hostile.lower(),
        4,
    ]
