"""MinHash: shingles, stable signatures, the s-curve optimizer and LSH pairs."""

from __future__ import annotations

import random
import string
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from idr_pipeline.candidates.minhash import (
    EMPTY,
    band_keys,
    choose_bands,
    estimate_jaccard,
    lsh_candidates,
    lsh_pairs,
    minhash_signatures,
    profile_shingle_hashes,
    profile_shingles,
    profile_signatures,
    s_curve,
    s_curve_png,
    shingle_hash,
)


def _profile(record_id: str, **values: str | None) -> dict:
    row = dict.fromkeys(
        ["first_name", "last_name", "email", "email_key", "phone", "street", "postcode", "dob"]
    )
    row.update(values, record_id=record_id)
    return row


PROFILES = pd.DataFrame(
    [
        _profile("a1", first_name="Jonathan", last_name="Perry", email="jperry357@yahoo.com",
                 email_key="jperry357@yahoo.com", phone="+12037063849", street="12 oak st",
                 postcode="06510", dob="1985-03-12"),
        _profile("a2", first_name="Jonathon", last_name="Perry", email="jperry357@yahoo.com",
                 email_key="jperry357@yahoo.com", phone="+12037063849", street="12 oak st",
                 postcode="06510", dob="1985-03-21"),
        _profile("b1", first_name="Al", last_name="Ng"),
        _profile("c1"),
    ]
)  # fmt: skip


# --- shingles -----------------------------------------------------------------------------
def test_shingles_are_prefixed_padded_and_normalized():
    sets = profile_shingles(PROFILES)
    assert {"fn:^jo", "fn:jon", "fn:an$", "ln:^pe", "em:357", "ph:063", "pc:065", "db:985"} <= sets[0]
    assert not any(s.startswith("em:") and "yahoo" in s for s in sets[0])  # no domain
    assert not any(s.startswith("ph:") and "120" in s for s in sets[0])  # last 7 digits only
    assert sets[2] == {"fn:^al", "fn:al$", "ln:^ng", "ln:ng$"}  # short values still count
    assert sets[3] == set()
    # The same letters in different fields stay different shingles.
    same = profile_shingles(pd.DataFrame([_profile("x", first_name="Ann", last_name="Ann")]))[0]
    assert "fn:ann" in same and "ln:ann" in same


def test_vectorized_hashes_equal_crc_of_the_readable_shingles():
    rows = [PROFILES.iloc[i].to_dict() for i in range(len(PROFILES))]
    rows.append(_profile("u", first_name="Zoë Élodie", street="Straße 5", email="x@y.z"))
    df = pd.DataFrame(rows)
    fast = profile_shingle_hashes(df)
    for i, shingles in enumerate(profile_shingles(df)):
        got = set(fast.hashes[fast.indptr[i] : fast.indptr[i + 1]].tolist())
        assert got == {shingle_hash(s) for s in shingles}


# --- signatures ---------------------------------------------------------------------------
def _random_sets(rng: random.Random, n: int) -> list[tuple[set[str], set[str], float]]:
    """Pairs of sets with a spread of known Jaccard similarities."""
    out = []
    for _ in range(n):
        common = {"".join(rng.choices(string.ascii_lowercase, k=6)) for _ in range(rng.randint(5, 80))}
        a = common | {f"a{rng.random()}" for _ in range(rng.randint(0, 60))}
        b = common | {f"b{rng.random()}" for _ in range(rng.randint(0, 60))}
        out.append((a, b, len(a & b) / len(a | b)))
    return out


def test_jaccard_estimate_is_close_to_true_jaccard():
    num_perm = 256
    cases = _random_sets(random.Random(7), 60)
    sig = minhash_signatures([s for a, b, _ in cases for s in (a, b)], num_perm, seed=3)
    errors = [abs(estimate_jaccard(sig[2 * i], sig[2 * i + 1]) - j) for i, (_, _, j) in enumerate(cases)]
    # Standard error is sqrt(J(1-J)/k) <= 0.031 for k=256: allow ~4 sigma for each pair.
    assert max(errors) < 0.13
    assert np.mean(errors) < 0.04


def test_signatures_are_deterministic_across_processes():
    sets = [{"fn:^jo", "fn:jon", "ln:per"}, {"x"}, set()]
    here = minhash_signatures(sets, 16, seed=5)
    code = (
        "import sys; from idr_pipeline.candidates.minhash import minhash_signatures as m;"
        "sys.stdout.write(repr(m([{'fn:^jo','fn:jon','ln:per'},{'x'},set()],16,seed=5).tolist()))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert eval(other.stdout) == here.tolist()  # a different hash() salt changes nothing
    assert (here[2] == EMPTY).all() and not (here[:2] == EMPTY).any()
    assert not np.array_equal(here, minhash_signatures(sets, 16, seed=6))


def test_signature_is_the_minimum_of_the_universal_hashes():
    from idr_pipeline.candidates.minhash import permutation_params

    s = {"a", "bb", "ccc"}
    a, b = permutation_params(4, seed=9)
    x = np.array([shingle_hash(v) for v in s], dtype=np.uint64)
    # Python integers: the reference does not rely on numpy's uint64 wrap-around.
    want = [min(((int(a[k]) * int(v) + int(b[k])) % 2**64) >> 32 for v in x) for k in range(4)]
    assert minhash_signatures([s], 4, seed=9)[0].tolist() == want


def test_profile_signatures_match_string_path():
    assert np.array_equal(
        profile_signatures(PROFILES, 32, seed=1), minhash_signatures(profile_shingles(PROFILES), 32, seed=1)
    )


# --- s-curve ------------------------------------------------------------------------------
def test_s_curve_is_monotone_from_zero_to_one():
    s = np.linspace(0, 1, 201)
    for r, b in [(1, 1), (4, 16), (8, 16), (3, 40)]:
        p = s_curve(s, r, b)
        assert p[0] == 0.0 and p[-1] == pytest.approx(1.0)
        assert np.all(np.diff(p) >= 0)
    assert s_curve(0.5, 1, 1) == pytest.approx(0.5)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.85])
def test_choose_bands_respects_budget_and_centers_the_curve(threshold: float):
    c = choose_bands(threshold, 128)
    assert c.r * c.b <= 128
    assert c.threshold_error == pytest.approx(abs((1 / c.b) ** (1 / c.r) - threshold))
    assert c.threshold_error < 0.05
    # At the threshold the curve is on its steep part, not flat at 0 or 1.
    assert 0.35 < s_curve(threshold, c.r, c.b) < 0.8
    assert c.p_at_threshold == pytest.approx(s_curve(threshold, c.r, c.b))
    # The areas are what the curve says.
    s = np.linspace(0, threshold, 4001)
    assert c.fp_area == pytest.approx(np.trapezoid(s_curve(s, c.r, c.b), s), abs=1e-4)
    s = np.linspace(threshold, 1, 4001)
    assert c.fn_area == pytest.approx(np.trapezoid(1 - s_curve(s, c.r, c.b), s), abs=1e-4)


def test_higher_threshold_needs_longer_bands():
    rs = [choose_bands(t, 128).r for t in (0.2, 0.4, 0.6, 0.8, 0.9)]
    assert rs == sorted(rs) and rs[0] < rs[-1]


def test_threshold_05_budget_128():
    c = choose_bands(0.5, 128)
    assert (c.r, c.b) == (4, 16)  # (1/16)^(1/4) = 0.5 exactly
    assert c.threshold_error == pytest.approx(0.0)


def test_fp_weight_moves_the_curve_right():
    cheap = choose_bands(0.5, 128)
    strict = choose_bands(0.5, 128, fp_weight=10.0)
    assert strict.fp_area <= cheap.fp_area
    assert strict.effective_threshold >= cheap.effective_threshold


def test_choose_bands_rejects_nonsense():
    with pytest.raises(ValueError):
        choose_bands(1.0, 128)
    with pytest.raises(ValueError):
        choose_bands(0.5, 0)


def test_s_curve_png_is_a_png():
    png = s_curve_png(choose_bands(0.5, 128), 0.5)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


# --- banding and pairs --------------------------------------------------------------------
def test_band_keys_depend_on_every_value_of_the_band():
    sig = np.arange(24, dtype=np.uint32).reshape(2, 12)
    keys = band_keys(sig, 3, 4)
    assert keys.shape == (2, 4) and keys.dtype == np.uint64
    changed = sig.copy()
    changed[0, 4] += 1  # second value of band 1
    k2 = band_keys(changed, 3, 4)
    assert k2[0, 1] != keys[0, 1] and np.array_equal(np.delete(k2, 1, axis=1), np.delete(keys, 1, axis=1))
    with pytest.raises(ValueError):
        band_keys(sig, 5, 3)


def _noisy_people(rng: random.Random, n: int) -> tuple[list[str], list[str]]:
    """Pairs of near-duplicate strings (one typo) and unrelated random strings."""
    letters = string.ascii_lowercase
    base = ["".join(rng.choices(letters, k=30)) for _ in range(n)]
    dup = []
    for s in base:
        i = rng.randrange(len(s))
        dup.append(s[:i] + rng.choice(letters) + s[i + 1 :])
    return base, dup


def test_lsh_pairs_finds_near_duplicates_not_random_strings():
    rng = random.Random(11)
    base, dup = _noisy_people(rng, 300)
    noise = ["".join(rng.choices(string.ascii_lowercase, k=30)) for _ in range(300)]
    texts = base + dup + noise
    ids = (
        [f"b{i:04d}" for i in range(300)]
        + [f"d{i:04d}" for i in range(300)]
        + [f"n{i:04d}" for i in range(300)]
    )
    sets = [{t[j : j + 3] for j in range(len(t) - 2)} for t in texts]
    c = choose_bands(0.5, 128)
    sig = minhash_signatures(sets, 128, seed=2)
    pairs = lsh_pairs(pd.Series(ids), sig, c.r, c.b)
    found = set(zip(pairs.record_id_l, pairs.record_id_r, strict=True))
    true = {(f"b{i:04d}", f"d{i:04d}") for i in range(300)}
    assert len(found & true) / len(true) > 0.97  # one typo in 30 chars: Jaccard ~0.8
    assert len(found - true) < 10  # random 30-char strings share almost no 3-grams
    assert (pairs.record_id_l < pairs.record_id_r).all()
    assert not pairs.duplicated().any()
    assert pairs.attrs["lsh"]["pairs"] == len(pairs)


def test_lsh_skips_and_counts_oversized_buckets_and_empty_records():
    sets = [{"same", "thing"}] * 5 + [{"other", "x"}, {"other", "x"}, set(), set()]
    ids = pd.Series([f"r{i}" for i in range(len(sets))])
    sig = minhash_signatures(sets, 8, seed=1)
    res = lsh_candidates(ids, sig, 2, 4, max_bucket=4)
    assert set(zip(res.pairs.record_id_l, res.pairs.record_id_r, strict=True)) == {("r5", "r6")}
    assert res.skipped_buckets == 4 and res.skipped_records == 20 and res.largest_bucket == 5
    assert res.empty_records == 2  # empty signatures would all share one bucket otherwise
    res = lsh_candidates(ids, sig, 2, 4, max_bucket=5)
    assert len(res.pairs) == 10 + 1 and res.skipped_buckets == 0


def test_lsh_pairs_on_profiles():
    sig = profile_signatures(PROFILES, 128, seed=1)
    pairs = lsh_pairs(PROFILES.record_id, sig, 4, 16)
    assert list(zip(pairs.record_id_l, pairs.record_id_r, strict=True)) == [("a1", "a2")]


@pytest.mark.parametrize(("threshold", "budget"), [(0.5, 128), (0.7, 64), (0.3, 100)])
def test_fp_area_equals_the_closed_form(threshold: float, budget: int):
    """∫_0^t 1-(1-s^r)^b ds = Σ_k C(b,k) (-1)^(k+1) t^(rk+1) / (rk+1), by the binomial theorem."""
    from math import comb

    c = choose_bands(threshold, budget)
    closed = sum(
        comb(c.b, k) * (-1) ** (k + 1) * threshold ** (c.r * k + 1) / (c.r * k + 1) for k in range(1, c.b + 1)
    )
    assert c.fp_area == pytest.approx(closed, abs=1e-6)
    assert c.effective_threshold == pytest.approx((1 / c.b) ** (1 / c.r))


# --- the fast paths equal the straightforward definitions ----------------------------------
def _awkward_profiles() -> pd.DataFrame:
    """Missing values of every kind, Unicode, whitespace, 1-2 letter, empty and over-long values."""
    values = [
        None, np.nan, pd.NA, "", " ", "\u3000\t", "a", "Ab", "ab ", "AB", "Zoë", "ZOË", "İstanbul",
        "Straße  5", "x\u00a0y\u2028z", "ünï\x1ccødé", "日本", "🙂🙂", "o'neil-smith", "a" * 70,
        "jane.doe+tag@gmail.com", "@nodomain", "no-at-sign", "+1 (203) 706-3849", "call me",
        "06 510", "1985-03-12",
    ]  # fmt: skip
    rng = random.Random(11)
    cols = ["first_name", "last_name", "email", "email_key", "phone", "street", "postcode", "dob"]
    rows = [{"record_id": f"r{i:03d}", **{c: rng.choice(values) for c in cols}} for i in range(300)]
    rows.append({"record_id": "blank", **dict.fromkeys(cols)})
    return pd.DataFrame(rows).astype(object)


@pytest.mark.parametrize("drop", [[], ["email_key"], ["email", "street"]])
def test_fast_shingles_and_signatures_equal_the_readable_definition(drop: list[str]):
    from idr_pipeline.candidates.minhash import _field_codes, _field_values

    df = _awkward_profiles().drop(columns=drop)
    # Values normalized once per distinct value equal the row-by-row definition.
    for prefix, (codes, values) in _field_codes(df).items():
        decoded = [values[c] if c >= 0 else None for c in codes]
        assert decoded == _field_values(df)[prefix], prefix
    readable = profile_shingles(df)
    fast = profile_shingle_hashes(df)
    assert len(fast) == len(df)
    for i, shingles in enumerate(readable):
        assert set(fast.hashes[fast.indptr[i] : fast.indptr[i + 1]].tolist()) == {
            shingle_hash(s) for s in shingles
        }
    assert readable[-1] == set()
    for num_perm, seed in [(16, 1), (126, 17)]:
        assert np.array_equal(
            profile_signatures(df, num_perm, seed), minhash_signatures(readable, num_perm, seed)
        )


def test_norm_text_collapses_exactly_what_the_regex_did():
    import re
    import sys

    from idr_pipeline.candidates.minhash import _norm_text

    spaces = re.compile(r"\s+")
    space_chars = "".join(chr(c) for c in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(c)))
    rng = random.Random(5)
    alphabet = space_chars + "aAİẞΣßﬃx"
    for _ in range(20_000):
        v = "".join(rng.choices(alphabet, k=rng.randint(0, 60)))
        assert _norm_text(v) == (spaces.sub(" ", v.strip().lower())[:48] or None)


def _mix64(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _band_keys_reference(signatures: np.ndarray, r: int, b: int) -> np.ndarray:
    bands = signatures[:, : r * b].reshape(len(signatures), b, r).astype(np.uint64)
    key = np.full((len(signatures), b), np.uint64(0x243F6A8885A308D3), dtype=np.uint64)
    for j in range(r):
        key = _mix64(key * np.uint64(0x9E3779B97F4A7C15) + bands[:, :, j])
    return key


def test_blocked_band_keys_and_lsh_codes_equal_the_whole_array_definition():
    from idr_pipeline.candidates.buckets import bucket_pairs, sorted_unique, unique_pairs
    from idr_pipeline.candidates.minhash import lsh_codes

    rng = np.random.default_rng(3)
    n, r, b = 10_000, 3, 7
    # Few distinct values per column, so bands collide often; some buckets exceed max_bucket.
    sig = rng.integers(0, 6, size=(n, r * b + 2), dtype=np.uint32) * np.uint32(1_000_003)
    sig[rng.random(n) < 0.05] = EMPTY
    assert np.array_equal(band_keys(sig, r, b), _band_keys_reference(sig, r, b))
    ranks = rng.permutation(n).astype(np.int64)
    keys, nonempty = _band_keys_reference(sig, r, b), ~(sig == EMPTY).all(axis=1)
    want_codes, want_stats = [], []
    for band in range(b):
        lo, hi, st = bucket_pairs(keys[nonempty, band], ranks[nonempty], 60)
        lo, hi = unique_pairs(lo, hi, n)
        want_codes.append(lo * n + hi)
        want_stats.append(st)
    codes, stats, empty = lsh_codes(ranks, sig, r, b, max_bucket=60)
    assert np.array_equal(codes, sorted_unique(np.concatenate(want_codes)))
    assert stats == want_stats and empty == int((~nonempty).sum())
    assert any(st.skipped_buckets for st in stats) and len(codes) > 0
