"""Behavior vectors and prototype assignment on a tiny planted population."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idr_pipeline.segments.behavior import (
    BehaviorVectors,
    assign_prototype,
    embed_texts,
    text_tokens,
    token_vectors,
)
from idr_pipeline.segments.dsl import PrototypeSegment

LUXURY = PrototypeSegment(
    id="lux",
    name="Luxury",
    description="luxury fashion shopper",
    examples=["purchased luxury, purchased luxury, viewed luxury"],
    threshold=0.5,
)
PLANTED = {
    "l1": "purchased luxury",
    "l2": "viewed luxury, purchased luxury, clicked spring sale",
    "l3": "purchased luxury, purchased apparel, purchased luxury",
    "l4": "clicked black friday, purchased luxury",
}
OTHERS = {
    "o1": "purchased books, purchased books",
    "o2": "clicked black friday, clicked spring sale",
    "o3": "purchased sports, viewed sports, purchased apparel",
    "o4": "purchased apparel, clicked retarget cart, purchased home, purchased toys, purchased luxury",
}


def _population() -> pd.DataFrame:
    texts = {**PLANTED, **OTHERS}
    return pd.DataFrame({"identity_id": list(texts), "text": list(texts.values())})


def test_tokens_keep_objects_and_verb_phrases_not_bare_verbs() -> None:
    assert text_tokens("Purchased Luxury, clicked black friday") == [
        "luxury",
        "purchased:luxury",
        "black",
        "friday",
        "clicked:black friday",
    ]
    assert text_tokens("luxury and fashion shopper") == ["luxury", "fashion", "shopper"]
    vectors = token_vectors(["purchased luxury", "", "viewed sports"]).toarray()
    assert np.allclose(np.linalg.norm(vectors, axis=1), [1.0, 0.0, 1.0], atol=1e-6)


def test_prototype_assignment_finds_the_planted_buyers_with_scores() -> None:
    members = assign_prototype(embed_texts(_population(), "tokens"), LUXURY)
    assert set(members["identity_id"]) == set(PLANTED)
    assert members["score"].between(LUXURY.threshold, 1.0).all()
    # One luxury purchase among four other categories is not a luxury taste.
    assert "o4" not in set(members["identity_id"])


def test_vectors_round_trip_through_their_stored_frame() -> None:
    vectors = embed_texts(_population(), "tokens")
    again = BehaviorVectors.from_frame(vectors.to_frame())
    assert again.ids == vectors.ids and again.vectorizer == "tokens"
    assert assign_prototype(again, LUXURY).equals(assign_prototype(vectors, LUXURY))


@pytest.mark.skipif(
    not __import__("idr_pipeline.settings", fromlist=["get_settings"]).get_settings().embedding_model_path,
    reason="MiniLM wheel not installed",
)
def test_minilm_ranks_planted_buyers_above_the_others() -> None:
    vectors = embed_texts(_population(), "minilm")
    scores = assign_prototype(vectors, LUXURY.model_copy(update={"threshold": -1.0})).set_index(
        "identity_id"
    )["score"]
    assert scores[list(PLANTED)].min() > scores[["o1", "o2", "o3"]].max()
