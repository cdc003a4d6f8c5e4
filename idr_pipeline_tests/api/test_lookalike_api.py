"""POST /segments/{id}/lookalike on SQLite and MariaDB, over a real Faiss behavior index."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from idr_pipeline.segments.behavior import BehaviorVectors, token_vectors
from idr_pipeline.segments.behavior_index import BehaviorIndex, behavior_index_dir
from idr_pipeline_tests.api.conftest import Api

TEXTS = {
    # the seed: segment "vip" holds id-001 and id-002
    "id-001": "purchased luxury, viewed luxury",
    "id-002": "purchased luxury, viewed apparel",
    "id-003": "purchased luxury, viewed luxury, viewed apparel",
    "id-004": "viewed luxury, viewed apparel",
    "id-100": "viewed luxury",
    "id-101": "purchased apparel, viewed luxury",
    "id-102": "purchased toys",
    "id-103": "viewed books, purchased books",
    # close to the seed but not active in the store: merged, and never served
    "id-old": "purchased luxury, viewed luxury, viewed apparel",
    "id-gone": "purchased luxury, viewed luxury, viewed apparel",
}
SEED = ["id-001", "id-002"]
INACTIVE = {"id-old", "id-gone"}


def vectors() -> BehaviorVectors:
    ids = sorted(TEXTS)
    return BehaviorVectors(ids, [TEXTS[i] for i in ids], token_vectors([TEXTS[i] for i in ids]), "tokens")


def expected(size: int, min_similarity: float, leave_out: set[str] = frozenset()) -> list[str]:
    """The answer worked out from the sparse vectors directly, without Faiss."""
    v = vectors()
    dense = v.vectors.toarray()
    centroid = dense[[v.ids.index(s) for s in SEED]].mean(axis=0)
    centroid /= np.linalg.norm(centroid)
    scores = {i: round(float(dense[n] @ centroid), 4) for n, i in enumerate(v.ids)}
    pool = [i for i in v.ids if i not in set(SEED) | INACTIVE | leave_out and scores[i] >= min_similarity]
    return sorted(pool, key=lambda i: (-scores[i], i))[:size]


def write_index(api: Api, day: date = date(2025, 3, 31)) -> None:
    BehaviorIndex.build(vectors()).save(behavior_index_dir(api.settings.index_dir, day.isoformat()))


def lookalike(api: Api, body: dict, segment: str = "vip", scope: str = "export"):
    return api.client.post(f"/segments/{segment}/lookalike", json=body, headers=api.h(scope))


@pytest.fixture(params=["sqlite", "mariadb"])
def any_api(request: pytest.FixtureRequest) -> Api:
    return request.getfixturevalue("api" if request.param == "sqlite" else "mariadb_api")


def test_expansion_excludes_the_seed_and_inactive_and_respects_size_and_bound(any_api: Api) -> None:
    api = any_api
    empty = lookalike(api, {"size": {"count": 3}})
    assert empty.status_code == 200, empty.text
    assert empty.json()["members"] == [] and empty.json()["behavior_as_of"] is None

    write_index(api)
    body = lookalike(api, {"size": {"count": 3}, "min_similarity": 0.1}).json()
    ids = [m["identity_id"] for m in body["members"]]
    assert ids == expected(3, 0.1) and len(ids) == 3
    assert not set(ids) & (set(SEED) | INACTIVE)
    scores = [m["score"] for m in body["members"]]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.1
    assert (body["seed_members"], body["seed_with_behavior"], body["size"]) == (2, 2, 3)
    assert body["behavior_as_of"] == "2025-03-31"

    # A share of the active identities (40 in the fixture): 5% is 2.
    shared = lookalike(api, {"size": {"share": 0.05}}).json()
    assert shared["size"] == 2 and [m["identity_id"] for m in shared["members"]] == expected(2, -1.0)
    bounded = lookalike(api, {"size": {"count": 100}, "min_similarity": 0.5}).json()
    assert [m["identity_id"] for m in bounded["members"]] == expected(100, 0.5)
    assert 0 < len(bounded["members"]) < len(expected(100, -1.0))

    # A newer day's index is picked up without a restart.
    write_index(api, date(2025, 4, 1))
    assert lookalike(api, {"size": {"count": 1}}).json()["behavior_as_of"] == "2025-04-01"


def test_erased_identity_is_never_in_the_expansion(any_api: Api) -> None:
    api = any_api
    write_index(api)
    top = [m["identity_id"] for m in lookalike(api, {"size": {"count": 2}}).json()["members"]]
    assert top[0] == "id-003"
    erased = api.client.post(
        "/subjects/erase",
        json={"id_type": "email", "value": "carla.diaz@example.org"},
        headers=api.h("admin"),
    )
    assert erased.status_code == 200 and erased.json()["identities"] == ["id-003"]
    assert erased.json()["behavior_vectors_removed"] == 1
    kept = BehaviorIndex.load(behavior_index_dir(api.settings.index_dir, "2025-03-31"))
    assert "id-003" not in kept and len(kept) == len(TEXTS) - 1
    after = [m["identity_id"] for m in lookalike(api, {"size": {"count": 2}}).json()["members"]]
    assert "id-003" not in after and after == expected(2, -1.0, {"id-003"})


def test_scope_unknown_segment_and_bad_sizes(api: Api) -> None:
    write_index(api)
    assert lookalike(api, {"size": {"count": 3}}, scope="read").status_code == 403
    assert lookalike(api, {"size": {"count": 3}}, segment="nope").status_code == 404
    too_big = lookalike(api, {"size": {"count": 10_001}})
    assert too_big.status_code == 422 and "segment catalog" in too_big.json()["detail"]
    for bad in ({"size": {}}, {"size": {"share": 2}}, {"size": {"count": 1}, "min_similarity": 3}, {"x": 1}):
        assert lookalike(api, bad).status_code == 422
