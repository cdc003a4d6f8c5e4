"""Lookalike expansion over a real Faiss behavior index: the seed, the size, the bound, erasure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from idr_pipeline.segments.behavior import BehaviorVectors, token_vectors
from idr_pipeline.segments.behavior_index import (
    EXACT,
    PROJECTED,
    BehaviorIndex,
    behavior_index_dir,
    latest_behavior_index_dir,
    remove_from_behavior_indexes,
)
from idr_pipeline.segments.dsl import LookalikeSegment, LookalikeSize, SegmentCatalog
from idr_pipeline.segments.lookalike import expand, seed_centroid
from idr_pipeline.segments.steps import evaluation_order

TEXTS = {
    # the seed: luxury buyers
    "s1": "purchased luxury, purchased luxury, viewed luxury",
    "s2": "purchased luxury, viewed apparel",
    "s3": "purchased luxury, clicked retarget cart",
    # close to the seed, closest first
    "c1": "purchased luxury, viewed luxury, viewed apparel",
    "c2": "viewed luxury, viewed luxury",
    "c3": "viewed luxury, purchased apparel",
    "c4": "viewed apparel, clicked retarget cart",
    # nothing in common with the seed
    "f1": "purchased toys, viewed toys",
    "f2": "purchased books",
    "f3": "clicked spring sale, viewed sports",
}
SEED = ["s1", "s2", "s3"]


def behavior(texts: dict[str, str] = TEXTS) -> BehaviorVectors:
    ids = sorted(texts)
    return BehaviorVectors(ids, [texts[i] for i in ids], token_vectors([texts[i] for i in ids]), "tokens")


def exact_scores(vectors: BehaviorVectors, seed: list[str]) -> dict[str, float]:
    """Cosine of every identity to the seed's centroid, straight from the sparse vectors."""
    dense = vectors.vectors.toarray()
    rows = [vectors.ids.index(s) for s in seed]
    centroid = dense[rows].mean(axis=0)
    centroid /= np.linalg.norm(centroid)
    return {i: float(dense[n] @ centroid) for n, i in enumerate(vectors.ids)}


def test_expansion_is_the_nearest_outside_the_seed_with_exact_cosines() -> None:
    vectors = behavior()
    index = BehaviorIndex.build(vectors)
    assert index.how == EXACT and index.kind == "flat" and len(index) == len(TEXTS)
    out = expand(index, SEED, size=3)
    truth = exact_scores(vectors, SEED)
    outside = sorted((i for i in truth if i not in SEED), key=lambda i: (-truth[i], i))
    assert out["identity_id"].tolist() == outside[:3]
    assert not set(out["identity_id"]) & set(SEED)
    for i, score in zip(out["identity_id"], out["score"], strict=True):
        assert score == pytest.approx(truth[i], abs=1e-4)
    assert out["score"].is_monotonic_decreasing


def test_size_and_min_similarity_bound_the_expansion() -> None:
    index = BehaviorIndex.build(behavior())
    everyone = expand(index, SEED, size=100)
    assert len(everyone) == len(TEXTS) - len(SEED)  # never more than there are non-seed identities
    assert len(expand(index, SEED, size=2)) == 2
    bounded = expand(index, SEED, size=100, min_similarity=0.2)
    assert set(bounded["identity_id"]) == {"c1", "c2", "c3", "c4"}  # the strangers score 0
    assert (bounded["score"] >= 0.2).all()
    assert expand(index, SEED, size=100, min_similarity=0.99).empty


def test_erased_and_ineligible_identities_are_never_members() -> None:
    index = BehaviorIndex.build(behavior())
    best = expand(index, SEED, size=1)["identity_id"].tolist()
    assert best == ["c1"]
    out = expand(index, SEED, size=3, exclude=["c1"], eligible=lambda ids: [i for i in ids if i != "c2"])
    assert "c1" not in set(out["identity_id"]) and "c2" not in set(out["identity_id"])
    assert len(out) == 3  # the query widened past the excluded ones


def test_seed_without_behavior_gives_nothing() -> None:
    index = BehaviorIndex.build(behavior())
    assert seed_centroid(index, ["nobody"]) is None
    assert expand(index, ["nobody"], size=5).empty


def test_ivf_and_projection_keep_the_order_and_removal_and_persistence_work(tmp_path: Path) -> None:
    vectors = behavior()
    exact = expand(BehaviorIndex.build(vectors), SEED, size=4)
    ivf = BehaviorIndex.build(vectors, flat_max=4, nprobe=64)
    assert ivf.kind == "ivf"
    assert expand(ivf, SEED, size=4)["identity_id"].tolist() == exact["identity_id"].tolist()
    projected = BehaviorIndex.build(vectors, max_dims=3)
    assert projected.how == PROJECTED and projected.dim == 3

    for index in (BehaviorIndex.build(vectors), ivf):
        assert index.remove(["c1", "unknown"]) == 1 and "c1" not in index
        assert "c1" not in set(expand(index, SEED, size=9)["identity_id"])
        folder = index.save(behavior_index_dir(tmp_path / index.kind, "2025-03-31"))
        loaded = BehaviorIndex.load(folder)
        assert len(loaded) == len(TEXTS) - 1 and "c1" not in loaded
        assert np.allclose(loaded.vectors_of(["c2"]), index.vectors_of(["c2"]))
        assert expand(loaded, SEED, size=3).equals(expand(index, SEED, size=3))
    index.save(behavior_index_dir(tmp_path / "ivf", "2025-04-01"))
    assert latest_behavior_index_dir(tmp_path / "ivf").name == "2025-04-01"


def test_lookalike_definitions_are_validated_and_ordered_after_their_seed() -> None:
    assert LookalikeSize(share=0.01).members(12_291) == 123
    assert LookalikeSize(count=50).members(10) == 50
    for bad in ({}, {"share": 0.01, "count": 5}, {"share": 0}, {"share": 1.5}, {"count": 0}):
        with pytest.raises(ValidationError):
            LookalikeSize.model_validate(bad)
    look = {"id": "look", "kind": "lookalike", "name": "L", "seed": "base", "size": {"share": 0.01}}
    base = {"id": "base", "kind": "rule", "name": "B", "rule": {"purchased": {"category": "luxury"}}}
    on_look = {"id": "on_look", "kind": "rule", "name": "R", "rule": {"in_segment": "look"}}
    catalog = SegmentCatalog.model_validate({"segments": [on_look, look, base]})
    assert [s.id for s in evaluation_order(catalog)] == ["base", "look", "on_look"]
    assert isinstance(catalog.by_id()["look"], LookalikeSegment)
    with pytest.raises(ValidationError, match="unknown segments"):
        SegmentCatalog.model_validate({"segments": [look]})
    with pytest.raises(ValidationError, match="own seed"):
        LookalikeSegment.model_validate({**look, "seed": "look"})
    with pytest.raises(ValidationError):
        LookalikeSegment.model_validate({**look, "min_similarity": 2})
    cyclic = {**base, "rule": {"in_segment": "look"}}
    with pytest.raises(ValueError, match="cycle"):
        evaluation_order(SegmentCatalog.model_validate({"segments": [look, cyclic]}))


def test_erasure_takes_an_identity_out_of_every_days_index(tmp_path: Path) -> None:
    for day in ("2025-03-30", "2025-03-31"):
        BehaviorIndex.build(behavior()).save(behavior_index_dir(tmp_path, day))
    assert remove_from_behavior_indexes(tmp_path, ["c1", "nobody"]) == 2
    for day in ("2025-03-30", "2025-03-31"):
        assert "c1" not in BehaviorIndex.load(behavior_index_dir(tmp_path, day))
    assert remove_from_behavior_indexes(tmp_path, ["c1"]) == 0
    assert remove_from_behavior_indexes(tmp_path / "none", ["c2"]) == 0
