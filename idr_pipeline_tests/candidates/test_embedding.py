"""Embedding candidates with the real MiniLM model and real Faiss indexes (no mocks).

The index tests run both index types because erasure relies on `remove` taking vectors out of
whichever one the size picked; a small `flat_max` forces IVF on a couple of thousand vectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from idr_pipeline.candidates.embedding import embedding_pairs, encode, profile_text
from idr_pipeline.candidates.faiss_index import FLAT, IVF, FaissCandidateIndex

PROFILE_COLUMNS = [
    "record_id",
    "first_name",
    "last_name",
    "email",
    "street",
    "city",
    "state",
    "postcode",
    "dob",
]


def _profiles(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    return _profiles(
        [
            (
                "a1",
                "Katherine",
                "Thompson",
                "kate.thompson@gmail.com",
                "12 Oak St",
                "Springfield",
                "IL",
                "62704",
                "1985-03-14",
            ),
            (
                "a2",
                "Kathrine",
                "Tompson",
                "kthompson85@yahoo.com",
                "12 Oak Street",
                "Springfeld",
                "IL",
                "62704",
                None,
            ),
            (
                "b1",
                "Rajesh",
                "Venkataraman",
                "rajv@outlook.com",
                "880 Pine Ave",
                "Tucson",
                "AZ",
                "85701",
                "1962-11-02",
            ),
            (
                "c1",
                "Maria",
                "Gonzalez",
                "maria.g@hotmail.com",
                "4 Elm Rd",
                "Miami",
                "FL",
                "33101",
                "1990-07-21",
            ),
        ]
    )


def test_profile_text_drops_missing_fields_and_email_domain(people: pd.DataFrame) -> None:
    texts = profile_text(people)
    assert texts[0] == "Katherine Thompson, kate thompson, 1985-03-14, 12 Oak St, Springfield IL 62704"
    assert "None" not in texts[1] and "yahoo" not in texts[1]
    assert "kthompson 85" in texts[1]
    # Frames with only some columns render too (absent columns count as missing).
    assert profile_text(pd.DataFrame({"record_id": ["x"], "first_name": ["Ann"]})) == ["Ann"]


def test_same_person_with_typos_is_nearer_than_strangers(people: pd.DataFrame) -> None:
    vectors = encode(profile_text(people))
    assert vectors.dtype == np.float32 and vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cos = vectors @ vectors.T
    assert cos[0, 1] > cos[0, 2] and cos[0, 1] > cos[0, 3]
    assert cos[1, 0] > cos[1, 2] and cos[1, 0] > cos[1, 3]


def test_quantized_model_keeps_the_neighbors(people: pd.DataFrame) -> None:
    # int8 moves each vector noticeably (row cosine ~0.9 to the full model on these texts), so
    # what must hold is the ranking, not closeness to the fp32 vectors.
    texts = profile_text(people)
    full = encode(texts)
    quant = encode(texts, quantize=True)
    assert np.einsum("ij,ij->i", full, quant).min() > 0.8
    cos = quant @ quant.T
    assert cos[0, 1] > cos[0, 2] and cos[0, 1] > cos[0, 3]


def test_embedding_pairs_finds_the_typo_pair(people: pd.DataFrame) -> None:
    pairs = embedding_pairs(people, k=1)
    assert list(pairs.columns) == ["record_id_l", "record_id_r", "cosine"]
    assert ("a1", "a2") in set(zip(pairs["record_id_l"], pairs["record_id_r"], strict=True))
    assert (pairs["record_id_l"] < pairs["record_id_r"]).all()


def _random_unit(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_first_add_above_the_bound_builds_ivf_over_exactly_those_vectors() -> None:
    n, dim = 1200, 32
    vectors = _random_unit(n, dim, seed=11)
    ids = [f"rec-{i:05d}" for i in range(n)]
    index = FaissCandidateIndex(dim=dim, flat_max=500, nprobe=1_000)
    index.add(ids, vectors)
    assert index.kind == IVF and len(index) == n
    names, scores = index.search(vectors, 1)
    assert names[:, 0].tolist() == ids
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=5e-3)
    # The caller's vectors are left as they were (the index normalizes its own copy).
    np.testing.assert_array_equal(vectors, _random_unit(n, dim, seed=11))


@pytest.mark.parametrize(("flat_max", "kind"), [(1_000_000, FLAT), (500, IVF)])
def test_index_add_search_remove_save_load(tmp_path: Path, flat_max: int, kind: str) -> None:
    n, dim = 2000, 32
    vectors = _random_unit(n, dim, seed=7)
    ids = [f"rec-{i:05d}" for i in range(n)]
    # nprobe = nlist makes IVF exhaustive, so its answers can be checked exactly.
    index = FaissCandidateIndex(dim=dim, flat_max=flat_max, nprobe=1_000)
    index.add(ids[:300], vectors[:300])  # below the bound: flat so far
    index.add(ids[300:], vectors[300:])  # crosses it when flat_max is small: rebuilt as IVF
    assert index.kind == kind and len(index) == n

    names, scores = index.search(vectors[:5], 3)
    assert names[:, 0].tolist() == ids[:5]
    # IVF stores 8-bit scalar-quantized vectors: its cosines are within a few thousandths.
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5 if kind == FLAT else 5e-3)
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert kind == FLAT or "ScalarQuantizer" in type(index.index).__name__

    gone = ids[:50]
    assert index.remove(gone + ["no-such-record", ids[0]]) == 50
    assert index.remove(gone) == 0  # idempotent: erasure may be replayed
    assert len(index) == n - 50
    names, _ = index.search(vectors, 5)
    assert not set(gone) & set(names.ravel().tolist())

    # Re-adding a record replaces its vector instead of leaving the old one findable.
    index.add([ids[60]], vectors[61:62])
    assert len(index) == n - 50
    names, _ = index.search(vectors[61:62], 2)
    assert set(names[0].tolist()) == {ids[60], ids[61]}

    index.save(tmp_path / "idx")
    loaded = FaissCandidateIndex.load(tmp_path / "idx")
    assert loaded.kind == kind and len(loaded) == n - 50
    assert ids[100] in loaded and ids[10] not in loaded
    np.testing.assert_array_equal(loaded.search(vectors[100:110], 4)[0], index.search(vectors[100:110], 4)[0])
    # Removal after a reload goes through the persisted id map.
    assert loaded.remove(ids[100:110]) == 10 and len(loaded) == n - 60
    assert not set(ids[100:110]) & set(loaded.search(vectors[100:110], 3)[0].ravel().tolist())
    loaded.add(["new-record"], vectors[100:101])
    assert loaded.search(vectors[100:101], 1)[0][0, 0] == "new-record"


def test_neighbors_as_pairs_are_deduped_ordered_and_exclude_self() -> None:
    n, dim = 400, 16
    vectors = _random_unit(n, dim, seed=3)
    # Ids in reverse string order of position, so l<r needs real swapping.
    ids = [f"r{n - i:04d}" for i in range(n)]
    index = FaissCandidateIndex(dim=dim)
    index.add(ids, vectors)
    pairs = index.neighbors_as_pairs(ids, vectors, k=5, min_cosine=-1.0)
    assert (pairs["record_id_l"] < pairs["record_id_r"]).all()
    assert not pairs.duplicated(["record_id_l", "record_id_r"]).any()
    assert len(pairs) >= n * 5 / 2  # every record contributes 5 neighbors, each pair counted once
    lookup = dict(zip(ids, vectors, strict=True))
    expected = [
        float(lookup[a] @ lookup[b]) for a, b in zip(pairs["record_id_l"], pairs["record_id_r"], strict=True)
    ]
    np.testing.assert_allclose(pairs["cosine"], expected, atol=1e-5)

    strict = index.neighbors_as_pairs(ids, vectors, k=5, min_cosine=0.5)
    assert (strict["cosine"] >= 0.5).all() and len(strict) < len(pairs)
    empty = index.neighbors_as_pairs([], np.zeros((0, dim), np.float32), k=5)
    assert list(empty.columns) == ["record_id_l", "record_id_r", "cosine"] and empty.empty
