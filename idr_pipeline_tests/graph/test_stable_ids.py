"""Stable identity ids: carried over, merged oldest-first, fresh ids deterministic."""

from __future__ import annotations

import pandas as pd

from idr_pipeline.graph.stable_ids import assign_identity_ids, new_identity_id


def _components(*labels: str) -> pd.DataFrame:
    return pd.DataFrame({"component": list(labels)})


def _overlaps(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["component", "identity_id", "created_at", "records"])


def test_first_run_ids_are_deterministic_and_unique():
    a = assign_identity_ids(_components("r1", "r2"), _overlaps([]), set(), "t0")
    b = assign_identity_ids(_components("r1", "r2"), _overlaps([]), set(), "t1")
    assert list(a.components.identity_id) == list(b.components.identity_id)
    assert a.components.identity_id.nunique() == 2
    assert a.merges.empty


def test_existing_identity_keeps_its_id_when_its_smallest_record_changes():
    comps = _components("r0")  # a new record r0 joined the identity that r5 founded
    out = assign_identity_ids(comps, _overlaps([("r0", "idr_old", "t0", 3)]), {"idr_old"}, "t1")
    assert out.components.set_index("component").identity_id["r0"] == "idr_old"


def test_joined_identities_keep_the_oldest_and_record_the_merge():
    overlaps = _overlaps([("r1", "idr_young", "2024-05-01", 4), ("r1", "idr_old", "2023-01-01", 1)])
    out = assign_identity_ids(_components("r1"), overlaps, {"idr_young", "idr_old"}, "t2")
    assert out.components.identity_id.tolist() == ["idr_old"]
    assert out.merges.to_dict("records") == [
        {"merged_id": "idr_young", "survivor_id": "idr_old", "reason": "components_joined"}
    ]


def test_split_identity_lives_on_in_its_larger_part():
    overlaps = _overlaps([("r1", "idr_a", "t0", 1), ("r2", "idr_a", "t0", 3)])
    out = assign_identity_ids(_components("r1", "r2"), overlaps, {"idr_a"}, "t1").components.set_index(
        "component"
    )
    assert out.identity_id["r2"] == "idr_a"
    assert out.identity_id["r1"] not in {"idr_a"}


def test_new_id_never_reuses_a_known_id():
    taken = {new_identity_id("r1", set())}
    assert new_identity_id("r1", taken) not in taken
