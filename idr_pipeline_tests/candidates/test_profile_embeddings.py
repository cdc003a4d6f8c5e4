"""Every profile embedded by the real chargram encoder, re-runs encoding only what changed, the
real Faiss index over them, and embedding neighbors for the records no other generator pairs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from idr_pipeline.candidates import chargram_embedding
from idr_pipeline.candidates.embedding import profile_text
from idr_pipeline.candidates.embedding_lake import (
    read_embedded_ids,
    read_embeddings,
    reusing_embeddings,
    vectors_from_arrow,
    vectors_to_arrow,
)
from idr_pipeline.candidates.faiss_index import FaissCandidateIndex
from idr_pipeline.candidates.profile_encoders import encode_reusing, profile_encoder, text_hashes
from idr_pipeline.candidates.steps import (
    neighbor_search,
    run_candidates,
    run_embeddings,
    run_faiss_index,
)
from idr_pipeline.candidates.union import generate_candidates, orphan_ids
from idr_pipeline.core.catalog import CANDIDATES, CLEAN, EMBEDDINGS
from idr_pipeline.core.lake import Lake
from idr_pipeline.settings import IdrSettings, MatchConfig
from idr_pipeline.standardize.profiles import PROFILE_COLUMNS

FIRSTS = ["Anna", "Boris", "Chen", "Dalia", "Emeka", "Farah", "Goran", "Hilde", "Ivo", "Jana"]
LASTS = ["Novak", "Okafor", "Petrov", "Quispe", "Rossi", "Sato", "Tanaka", "Umar", "Varga", "Weiss"]


def _profiles(n: int = 40) -> pd.DataFrame:
    """n distinct people, one record each, with e-mail, birth date and address."""
    rows = []
    for i in range(n):
        first, last = FIRSTS[i % 10], LASTS[(i // 10 + i) % 10]
        rows.append(
            {"record_id": f"r{i:03d}", "source": "crm", "first_name": first, "last_name": last,
             "email": f"{first}.{last}{i}@example.com".lower(), "dob": f"19{50 + i}-0{1 + i % 9}-1{i % 10}",
             "street": f"{i + 1} Harbour Road", "city": "Dunmore", "postcode": f"{3000 + i}"}
        )  # fmt: skip
    frame = pd.DataFrame(rows)
    for c in PROFILE_COLUMNS:
        if c not in frame:
            frame[c] = None
    frame["email_key"] = frame["email"]
    return frame[PROFILE_COLUMNS]


def _write_profiles(lake: Lake, profiles: pd.DataFrame) -> None:
    schema = pa.schema([(c, pa.string()) for c in PROFILE_COLUMNS])
    lake.write_pandas_version(profiles.reset_index(drop=True), *CLEAN, schema=schema)


def test_the_default_settings_embed_every_profile_with_chargram_and_search_orphans() -> None:
    settings = IdrSettings()
    assert (settings.embed_policy, settings.embed_encoder, settings.embed_max_records) == (
        "all",
        "chargram",
        0,
    )
    assert settings.embed_neighbors == "orphans"
    assert settings.match_config().embed_neighbors == "orphans"


def test_encode_reusing_encodes_only_unseen_texts_and_equals_a_fresh_encode() -> None:
    calls: list[list[str]] = []
    real = profile_encoder("chargram")
    counting = replace(real, encode=lambda texts: calls.append(list(texts)) or real.encode(texts))
    texts = ["anna novak, 1 harbour road", "boris okafor", "anna novak, 1 harbour road"]
    hashes, vectors, encoded = encode_reusing(counting, texts, [], np.zeros((0, real.dim), "f4"))
    assert encoded == 2 and calls == [texts[:2]]  # the repeated text is encoded once
    np.testing.assert_array_equal(vectors, chargram_embedding.encode(texts))
    more = [*texts, "chen petrov"]
    _, again, encoded = encode_reusing(counting, more, hashes, vectors)  # a cache with a repeated hash
    assert encoded == 1 and calls[-1] == ["chen petrov"]
    np.testing.assert_array_equal(again, chargram_embedding.encode(more))
    # Cached rows come from the cache (here all 7s), in the texts' order; only the unknown is encoded.
    _, cached, encoded = encode_reusing(counting, more[::-1], hashes[:2], vectors[:2] * 0 + 7)
    assert encoded == 1 and calls[-1] == ["chen petrov"] and len(calls) == 3
    np.testing.assert_array_equal(cached[1:], np.full((3, real.dim), 7, "f4"))
    _, none, encoded = encode_reusing(counting, [], hashes, vectors)
    assert encoded == 0 and none.shape == (0, real.dim) and len(calls) == 3
    # Another encoder key (another encoder, version or dimension) never shares a cache key.
    assert text_hashes(texts, real.key) != text_hashes(texts, "minilm/x/int8/64")


def test_run_embeddings_embeds_all_then_only_new_and_changed_profiles(tmp_path: Path, spark) -> None:
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    encoder = profile_encoder("chargram")
    profiles = _profiles()
    _write_profiles(lake, profiles)
    first = run_embeddings(spark, lake, "all", 0, encoder)
    assert (first.embedded, first.encoded, first.eligible) == (40, 40, 40)

    changed = profiles.copy()
    changed.loc[3, "street"] = "99 Quay Street"  # changed text: encoded again
    added = changed.iloc[[0]].assign(record_id="r999", first_name="Zora")
    _write_profiles(lake, pd.concat([changed, added]))
    second = run_embeddings(spark, lake, "all", 0, encoder)
    assert (second.embedded, second.encoded) == (41, 2)
    ids, vectors = read_embeddings(lake)
    expected = pd.concat([changed, added]).set_index("record_id").loc[ids].reset_index()
    np.testing.assert_allclose(vectors, chargram_embedding.encode(profile_text(expected)), atol=1e-6)

    info = run_faiss_index(lake, str(tmp_path / "faiss"))
    assert info["vectors"] == 41
    index = FaissCandidateIndex.load(tmp_path / "faiss")
    names, scores = index.search(vectors[:1], 1)
    assert names[0, 0] == ids[0] and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_vectors_round_trip_the_lake_and_older_list_versions_are_reused(tmp_path: Path, spark) -> None:
    vectors = np.random.default_rng(3).standard_normal((5, 7)).astype(np.float32)
    column = vectors_to_arrow(vectors)
    assert column.type == pa.binary(28)
    np.testing.assert_array_equal(vectors_from_arrow(column), vectors)
    np.testing.assert_array_equal(vectors_from_arrow(column.slice(2, 2)), vectors[2:4])
    with pytest.raises(ValueError, match="1 missing vectors"):
        vectors_from_arrow(pa.array([b"\0" * 28, None], pa.binary(28)))

    # A version written with list<float> vectors (the earlier format) is read and reused.
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    encoder = profile_encoder("chargram")
    profiles = _profiles(6)
    _write_profiles(lake, profiles)
    fresh = chargram_embedding.encode(profile_text(profiles))
    listed = pa.FixedSizeListArray.from_arrays(pa.array(fresh.reshape(-1)), encoder.dim)
    older = pa.table(
        {
            "record_id": pa.array(profiles["record_id"].tolist(), pa.string()),
            "text_hash": pa.array(text_hashes(profile_text(profiles), encoder.key), pa.string()),
            "vector": listed.cast(pa.list_(pa.float32())),
        }
    )
    lake.write_pandas_version(older, *EMBEDDINGS)
    stats = run_embeddings(spark, lake, "all", 0, encoder)
    assert (stats.embedded, stats.encoded) == (6, 0)
    assert lake.read_latest_arrow(*EMBEDDINGS).schema.field("vector").type == pa.binary(4 * encoder.dim)
    ids, stored = read_embeddings(lake)
    assert ids == profiles["record_id"].tolist()
    np.testing.assert_array_equal(stored, fresh)


def test_within_reusing_embeddings_the_written_version_is_not_read_back(tmp_path: Path, spark) -> None:
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    _write_profiles(lake, _profiles(8))
    encoder = profile_encoder("chargram")
    with reusing_embeddings():
        run_embeddings(spark, lake, "all", 0, encoder)
        ids, vectors = read_embeddings(lake)
        some_ids, some = read_embeddings(lake, ["r005", "r002", "r999"])
        assert some_ids == ["r002", "r005"] and np.array_equal(some, vectors[[2, 5]])
        assert read_embedded_ids(lake) == ids
        files = list((tmp_path / "lake").glob("matching/profile_embeddings/v=*/*.parquet"))
        assert len(files) == 1
        files[0].rename(tmp_path / "moved.parquet")  # the lake's copy is gone; memory answers
        again_ids, again = read_embeddings(lake)
        assert again_ids == ids and np.array_equal(again, vectors) and not again.flags.writeable
        # A version written behind its back is read from the lake, not mistaken for the held one.
        newer = pa.table({"record_id": ["r900"], "text_hash": ["h"], "vector": vectors_to_arrow(vectors[:1])})
        lake.write_pandas_version(newer, *EMBEDDINGS)
        assert read_embeddings(lake)[0] == ["r900"]
    (tmp_path / "moved.parquet").rename(files[0])
    lake.write_text(lake.path(*EMBEDDINGS, "_LATEST"), files[0].parent.name.removeprefix("v="))
    assert read_embeddings(lake)[0] == ids  # outside the block the lake answers again
    from_lake_ids, from_lake = read_embeddings(lake, ["r005", "r002", "r999"])
    assert from_lake_ids == ["r002", "r005"] and np.array_equal(from_lake, vectors[[2, 5]])
    assert read_embedded_ids(lake) == ids
    files[0].unlink()
    assert read_embeddings(lake)[0] == []  # and it is the lake: its version lost its only file


def test_orphans_alone_search_the_index_and_find_their_typo_twin(tmp_path: Path) -> None:
    profiles = _profiles()
    # r040 is r007 with typos everywhere and no shared key: the rules and MinHash miss it.
    twin = profiles.iloc[[7]].copy()
    twin["record_id"] = "r040"
    twin["first_name"], twin["last_name"] = "Hildee", "Tannaka"
    twin["email"] = twin["email_key"] = None
    twin["dob"], twin["postcode"], twin["street"] = None, None, "8 Harbur Road"
    profiles = pd.concat([profiles, twin], ignore_index=True)
    # r041/r042 share an e-mail: paired by the rules, so they do not query.
    pair = profiles.iloc[[20, 20]].copy()
    pair["record_id"] = ["r041", "r042"]
    pair["email"] = pair["email_key"] = "shared.person@example.com"
    profiles = pd.concat([profiles, pair], ignore_index=True)

    ids = profiles["record_id"].tolist()
    vectors = chargram_embedding.encode(profile_text(profiles))
    index = FaissCandidateIndex(dim=vectors.shape[1])
    index.add(ids, vectors)
    asked: list[list[str] | None] = []
    loaded: list[list[str] | None] = []

    def load(only: list[str] | None) -> tuple[list[str], np.ndarray]:
        loaded.append(only)
        rows = [i for i, rid in enumerate(ids) if only is None or rid in set(only)]
        return [ids[i] for i in rows], vectors[rows]

    def load_index() -> FaissCandidateIndex:
        loaded.append(["index"])
        return index

    search = neighbor_search(load_index, lambda: ids, load, profile_encoder("chargram").neighbor_floor)
    assert loaded == []  # nothing is loaded before the search runs

    def recording(queries):
        asked.append(None if queries is None else list(queries))
        return search(queries)

    config = MatchConfig(workers=1)
    cands = generate_candidates(profiles, config, neighbors=recording)
    pairs = cands.pairs
    found = pairs[(pairs.record_id_l == "r007") & (pairs.record_id_r == "r040")]
    assert found["generators"].tolist() == ["embedding"]
    assert asked and asked[0] is not None
    assert "r040" in asked[0] and not {"r041", "r042"} & set(asked[0])
    assert cands.stats["embedding_queries"] == len(asked[0])
    assert loaded == [["index"], asked[0]]  # the index, then only the queried records' vectors

    without = generate_candidates(profiles, replace(config, embed_neighbors="none"), neighbors=recording)
    assert "embedding" not in without.by_generator and len(asked) == 1
    assert not ((without.pairs.record_id_l == "r007") & (without.pairs.record_id_r == "r040")).any()


def test_orphan_ids_are_the_records_in_no_pair() -> None:
    ids = np.array(["a", "b", "c", "d"], dtype=object)
    codes = [np.array([0 * 4 + 2]), np.array([2 * 4 + 3])]  # a-c, c-d
    assert orphan_ids(codes, ids) == ["b"]


def test_run_candidates_writes_cosines_only_when_the_model_uses_them(tmp_path: Path, spark) -> None:
    lake = Lake((tmp_path / "lake").as_uri(), spark)
    profiles = _profiles()
    _write_profiles(lake, profiles)
    run_embeddings(spark, lake, "all", 0, profile_encoder("chargram"))
    run_faiss_index(lake, str(tmp_path / "faiss"))
    for level, has_cosines in ((False, False), (True, True)):
        run_candidates(spark, lake, str(tmp_path / "faiss"), MatchConfig(workers=1, embed_cosine_level=level))
        cosine = lake.read_latest_pandas(*CANDIDATES)["cosine"]
        assert len(cosine) and cosine.notna().all() == has_cosines
