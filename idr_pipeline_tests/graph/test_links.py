"""Household guards: shared identifiers are masked, household evidence counts once, and a family
e-mail cannot chain two people's identities together."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def test_deterministic_links_join_the_scored_pairs():
    from idr_pipeline.graph.links import link_positions

    scored = pd.DataFrame(
        {
            "record_id_l": ["a", "a", "c"],
            "record_id_r": ["b", "c", "d"],
            "probability": [0.3, 0.95, 0.2],
        }
    )
    edges = pd.DataFrame(
        [
            ("b", "a", "email_key"),
            ("a", "b", "national_id"),
            ("d", "e", "device_id"),  # not scored: becomes a pair of its own
            ("c", "d", "phone"),  # Ann and Bob: a household line, not a link
            ("a", "e", "phone"),  # two records of Ann
            ("a", "c", "ip_address"),  # not a personal identifier
        ],
        columns=["src", "dst", "id_type"],
    )
    profiles = pd.DataFrame({"record_id": list("abcde"), "first_name": ["Ann", None, "Ann", "Bob", "ann"]})
    position = pd.Index(profiles["record_id"])
    links = link_positions(
        position.get_indexer(scored["record_id_l"]),
        position.get_indexer(scored["record_id_r"]),
        scored["probability"].to_numpy(),
        (position.get_indexer(edges["src"]), position.get_indexer(edges["dst"]), edges["id_type"].to_numpy()),
        profiles,
    )
    out = links.frame(np.arange(len(links.probability)), profiles["record_id"].to_numpy(dtype=object))
    rows = {
        (r.record_id_l, r.record_id_r): (
            r.probability,
            r.id_type,
            None if pd.isna(r.scored_row) else r.scored_row,
        )
        for r in out.itertuples()
    }
    assert rows == {
        ("a", "b"): (1.0, "email_key,national_id", 0),
        ("a", "c"): (0.95, None, 1),
        ("c", "d"): (0.2, None, 2),
        ("d", "e"): (1.0, "device_id", None),
        ("a", "e"): (1.0, "phone", None),
    }


def _links_by_ids(edges: pd.DataFrame, profiles: pd.DataFrame) -> dict[tuple[str, str], str]:
    """The deterministic links spelled out on id strings, the plain way, for comparison."""
    from idr_pipeline.graph.links import PERSONAL_IDENTIFIERS

    first = dict(zip(profiles["record_id"], profiles["first_name"], strict=True))
    head = {k: (v.lower()[:2] if isinstance(v, str) else "") for k, v in first.items()}
    types: dict[tuple[str, str], set[str]] = {}
    for src, dst, id_type in edges.itertuples(index=False):
        personal = id_type in PERSONAL_IDENTIFIERS or (
            id_type == "phone" and head[src] != "" and head[src] == head[dst]
        )
        if personal:
            types.setdefault((min(src, dst), max(src, dst)), set()).add(id_type)
    return {pair: ",".join(sorted(t)) for pair, t in types.items()}


@pytest.mark.parametrize("seed", range(5))
def test_link_positions_match_the_links_spelled_on_ids(seed: int) -> None:
    from idr_pipeline.graph.links import link_positions

    rng = np.random.default_rng(seed)
    ids = [f"r{i:03d}" for i in range(40)]
    # Profiles in no particular order: positions and id order disagree.
    profiles = pd.DataFrame(
        {"record_id": rng.permutation(ids), "first_name": rng.choice(["Ann", "anna", "Bob", None, "Al"], 40)}
    )
    edges = pd.DataFrame(
        {
            "src": rng.choice(ids, 120),
            "dst": rng.choice(ids, 120),
            "id_type": rng.choice(["email_key", "phone", "national_id", "ip_address", "device_id"], 120),
        }
    )
    edges = edges[edges["src"] != edges["dst"]]
    position = pd.Index(profiles["record_id"])
    left = rng.integers(0, 40, 60)
    right = (left + rng.integers(1, 40, 60)) % 40
    links = link_positions(
        left,
        right,
        rng.random(60),
        (position.get_indexer(edges["src"]), position.get_indexer(edges["dst"]), edges["id_type"].to_numpy()),
        profiles,
    )
    record_ids = profiles["record_id"].to_numpy(dtype=object)
    expected = _links_by_ids(edges, profiles)
    got: dict[tuple[str, str], str] = {}
    for row in range(len(links.probability)):
        a, b = record_ids[links.left[row]], record_ids[links.right[row]]
        if links.id_type[row] is not None:
            assert links.probability[row] == 1.0
            got[(min(a, b), max(a, b))] = links.id_type[row]
        if row >= links.scored:
            assert a < b  # an added link is oriented record_id_l < record_id_r
    assert got == expected
    # The scored rows come first, unchanged apart from the links among them.
    assert links.scored == 60 and (links.left[:60] == left).all() and (links.right[:60] == right).all()
