"""MinHash LSH candidate pairs: records whose attribute shingles are similar enough.

Deterministic identifiers only find a person's records when they share an exact value. Most
duplicates that matter for probabilistic matching share none (a typo in the e-mail, a new
phone), but still look alike as text. MinHash estimates the Jaccard similarity of two
records' shingle sets, and banding (r rows per band, b bands) turns that estimate into buckets:
two records become a candidate pair with probability ``1 - (1 - s**r)**b`` for similarity s,
so the pipeline chooses (r, b) for the similarity it cares about instead of comparing n^2 pairs.

Shingles
    Character 3-grams of each standardized attribute, each value padded with ``^`` and ``$`` so
    first and last letters weigh as much as inner ones and a one- or two-character value still
    yields a shingle. Every shingle is prefixed with its field (``fn:``, ``ln:``, ``em:``, ``ph:``,
    ``st:``, ``pc:``, ``db:``) so "ann" in a first name and "ann" in a street are different
    evidence; without the prefix, a first name equal to someone's street would count as overlap.
    The fields are the ones that identify a person and survive typos as partial overlap: names,
    the e-mail local part (of the match key, so gmail dots and +tags don't matter; the domain is
    shared by millions and says nothing), the last 7 phone digits (country and area codes are
    formatted inconsistently between sources and shared by whole regions), street, postcode and
    date of birth. City/state/country are left out: they're shared by too many people to help.

Hashing
    A shingle string s hashes to ``zlib.crc32(s.encode("utf-32-le"))``: stable across processes
    and machines (Python's ``hash()`` is salted per process, which would make signatures differ
    between Spark workers). The vectorized path computes the same CRC with numpy over the code
    points, so ``profile_shingles`` (readable, for tests) and ``profile_shingle_hashes`` (fast)
    agree exactly. Permutations are multiply-add-shift hashes ``((a*x + b) mod 2^64) >> 32`` of
    the 32-bit shingle hash, with a, b < 2^64 from a seeded PCG64 generator: a strongly
    universal family (Dietzfelbinger) computed with uint64 arithmetic that wraps, and no
    division: a ``(a*x + b) mod p`` family would spend most of the signing time in the 64-bit
    modulo.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import re
import zlib
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql import types as T

from idr_pipeline.candidates.buckets import (
    BucketStats,
    bucket_pairs,
    code_pairs_frame,
    ragged_arange,
    record_ranks,
    sorted_unique,
    unique_pairs,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

SHINGLE_SIZE = 3
PAD_START, PAD_END = "^", "$"
# Longer values add shingles but no discrimination; capping also bounds the dense arrays.
MAX_FIELD_CHARS = 48
FIELD_PREFIXES: tuple[str, ...] = ("fn", "ln", "em", "ph", "st", "pc", "db")
# Columns of the profiles frame the shingles read.
SHINGLE_COLUMNS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "email",
    "email_key",
    "phone",
    "street",
    "postcode",
    "dob",
)

_SHIFT = np.uint64(32)
MAX_SIGNATURE = np.uint32(0xFFFFFFFE)
# Signature value of a record with no shingles at all; such records never enter a bucket.
EMPTY = np.uint32(0xFFFFFFFF)
DEFAULT_NUM_PERM = 128
DEFAULT_MAX_BUCKET = 200
_ROW_CHUNK = 50_000


# --- shingles -----------------------------------------------------------------------------
_NON_DIGITS = re.compile(r"\D")


def _norm_text(v: object) -> str | None:
    if v is None or (isinstance(v, float) and v != v):  # None, NaN
        return None
    # Trimmed, lower-cased, every whitespace run one space: str.split() splits on exactly the
    # characters re's \s matches (str.isspace), and is cheaper than re.sub("\s+", " ", ...).
    t = " ".join(str(v).lower().split())
    return t[:MAX_FIELD_CHARS] or None


def _local_part(v: str | None) -> str | None:
    return v.split("@", 1)[0][:MAX_FIELD_CHARS] or None if v is not None else None


def _phone_tail(v: str | None) -> str | None:
    return _NON_DIGITS.sub("", v)[-7:] or None if v is not None else None


def _postcode(v: str | None) -> str | None:
    return v.replace(" ", "") or None if v is not None else None


def _field_values(profiles: pd.DataFrame) -> dict[str, list[str | None]]:
    """Per field prefix, the normalized value that is shingled (None when missing), row by row.

    The readable definition, kept for ``profile_shingles`` and the tests; ``_field_codes``
    computes the same values once per distinct value.
    """

    def col(name: str) -> list[str | None]:
        if name not in profiles.columns:
            return [None] * len(profiles)
        return [None if pd.isna(v) else _norm_text(v) for v in profiles[name]]

    email = [k if k is not None else e for k, e in zip(col("email_key"), col("email"), strict=True)]
    return {
        "fn": col("first_name"),
        "ln": col("last_name"),
        "em": [_local_part(v) for v in email],
        "ph": [_phone_tail(v) for v in col("phone")],
        "st": col("street"),
        "pc": [_postcode(v) for v in col("postcode")],
        "db": col("dob"),
    }


# Per row, an index into the distinct values (-1 when missing); and the distinct values.
FieldCodes = tuple[np.ndarray, list[str]]


def _recode(codes: np.ndarray, values: Sequence[object], fn: Callable[[object], str | None]) -> FieldCodes:
    """Codes into the distinct non-None ``fn(v)`` of ``values``; ``fn`` runs once per value."""
    derived = np.array([*(fn(v) for v in values), None], dtype=object)  # code -1 takes the None
    inner, uniques = pd.factorize(derived)
    return inner[codes], uniques.tolist()


def _normalized(column: pd.Series | np.ndarray) -> FieldCodes:
    codes, uniques = pd.factorize(column)  # missing values (None, NaN, NA) take code -1
    return _recode(codes, uniques, _norm_text)


def _field_codes(profiles: pd.DataFrame) -> dict[str, FieldCodes]:
    """``_field_values`` as codes over distinct values, every normalizer called once per value.

    Names, postcodes and birth dates repeat (far fewer distinct values than records), so the
    normalizers run once per distinct value rather than once per row.
    """
    n = len(profiles)

    def col(name: str) -> FieldCodes:
        return _normalized(profiles[name]) if name in profiles.columns else (np.full(n, -1, np.intp), [])

    key_codes, keys = col("email_key")
    email_codes = key_codes.copy()
    mails: list[str] = []
    fallback = key_codes < 0
    if "email" in profiles.columns and fallback.any():  # the e-mail is read only without a key
        mail_codes, mails = _normalized(profiles["email"].to_numpy()[fallback])
        email_codes[fallback] = np.where(mail_codes < 0, -1, mail_codes + len(keys))
    return {
        "fn": col("first_name"),
        "ln": col("last_name"),
        "em": _recode(email_codes, keys + mails, _local_part),
        "ph": _recode(*col("phone"), _phone_tail),
        "st": col("street"),
        "pc": _recode(*col("postcode"), _postcode),
        "db": col("dob"),
    }


def _padded(value: str) -> str:
    return PAD_START + value + PAD_END


def profile_shingles(profiles: pd.DataFrame) -> list[set[str]]:
    """Readable shingle sets (``"fn:^an"``...), one per row; the reference for the fast path."""
    fields = _field_values(profiles)
    out: list[set[str]] = [set() for _ in range(len(profiles))]
    for prefix, values in fields.items():
        for i, v in enumerate(values):
            if v is None:
                continue
            p = _padded(v)
            out[i].update(f"{prefix}:{p[j : j + SHINGLE_SIZE]}" for j in range(len(p) - SHINGLE_SIZE + 1))
    return out


def shingle_hash(shingle: str) -> int:
    """The stable 32-bit hash of one shingle string."""
    return zlib.crc32(shingle.encode("utf-32-le"))


def _crc_table() -> np.ndarray:
    table = np.empty(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table[i] = c
    return table


_CRC_TABLE = _crc_table()


@dataclass(frozen=True)
class ShingleSets:
    """Hashed shingle sets as CSR: row i's hashes are ``hashes[indptr[i]:indptr[i+1]]``.

    A flat array rather than Python sets keeps four bytes a shingle, not an object, and lets
    the signature step run as whole-array numpy operations. Repeats within a row are allowed:
    the minimum of a multiset equals the minimum of the set.
    """

    indptr: np.ndarray  # int64, n + 1
    hashes: np.ndarray  # uint32

    def __len__(self) -> int:
        return len(self.indptr) - 1


def _field_hashes(prefix: str, values: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(n, G) CRC of every 3-gram of the padded values, and which positions are real grams."""
    n = len(values)
    padded = [_padded(v) if v is not None else "" for v in values]
    width = max((len(p) for p in padded), default=0)
    if width < SHINGLE_SIZE:
        return np.zeros((n, 0), dtype=np.uint32), np.zeros((n, 0), dtype=bool)
    arr = np.array(padded, dtype=f"<U{width}")
    codes = arr.view(np.uint32).reshape(n, width)
    lengths = np.char.str_len(arr)
    grams = width - SHINGLE_SIZE + 1
    valid = np.arange(grams)[None, :] <= (lengths[:, None] - SHINGLE_SIZE)
    # CRC state after the prefix bytes is a constant; continue it over the gram's 12 bytes.
    crc = np.full((n, grams), zlib.crc32(f"{prefix}:".encode("utf-32-le")) ^ 0xFFFFFFFF, dtype=np.uint32)
    for k in range(SHINGLE_SIZE):
        cp = codes[:, k : k + grams]
        for shift in (0, 8, 16, 24):
            byte = (cp >> np.uint32(shift)) & np.uint32(0xFF)
            crc = _CRC_TABLE[(crc ^ byte) & np.uint32(0xFF)] ^ (crc >> np.uint32(8))
    return crc ^ np.uint32(0xFFFFFFFF), valid


def _value_shingles(prefix: str, values: Sequence[str | None]) -> ShingleSets:
    """The hashed shingles of each value, in chunks that bound the dense (chunk, grams) arrays."""
    indptrs, flats = [np.zeros(1, dtype=np.int64)], [np.zeros(0, dtype=np.uint32)]
    offset = 0
    for start in range(0, len(values), _ROW_CHUNK):
        hashes, valid = _field_hashes(prefix, list(values[start : start + _ROW_CHUNK]))
        flats.append(hashes[valid])  # row-major: each value's shingles stay contiguous
        counts = valid.sum(axis=1, dtype=np.int64)
        indptrs.append(offset + np.cumsum(counts))
        offset += int(counts.sum())
    return ShingleSets(np.concatenate(indptrs), np.concatenate(flats))


def profile_shingle_hashes(profiles: pd.DataFrame) -> ShingleSets:
    """Vectorized ``[{shingle_hash(s) for s in row} for row in profile_shingles(profiles)]``.

    Each distinct value is shingled once; a row's hashes are its values' hashes, field by field.
    """
    n = len(profiles)
    rows, hashes = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.uint32)]
    for prefix, (codes, values) in _field_codes(profiles).items():
        sets = _value_shingles(prefix, values)
        present = np.flatnonzero(codes >= 0)
        value = codes[present]
        counts = np.diff(sets.indptr)[value]
        rows.append(np.repeat(present, counts))
        hashes.append(sets.hashes[np.repeat(sets.indptr[:-1][value], counts) + ragged_arange(counts)])
    row = np.concatenate(rows)
    order = np.argsort(row, kind="stable")
    indptr = np.r_[np.int64(0), np.cumsum(np.bincount(row, minlength=n), dtype=np.int64)]
    return ShingleSets(indptr, np.concatenate(hashes)[order])


# --- signatures ---------------------------------------------------------------------------
def _as_shingle_sets(shingle_sets: ShingleSets | Sequence[Collection[str]]) -> ShingleSets:
    if isinstance(shingle_sets, ShingleSets):
        return shingle_sets
    counts = np.fromiter((len(s) for s in shingle_sets), dtype=np.int64, count=len(shingle_sets))
    flat = np.fromiter(
        (shingle_hash(x) for s in shingle_sets for x in s), dtype=np.uint32, count=int(counts.sum())
    )
    return ShingleSets(np.r_[np.int64(0), np.cumsum(counts)], flat)


def permutation_params(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the universal hashes; PCG64 from a seed is the same on every machine."""
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(0, 2**64 - 1, size=num_perm, dtype=np.uint64, endpoint=True)
    b = rng.integers(0, 2**64 - 1, size=num_perm, dtype=np.uint64, endpoint=True)
    return a, b


def minhash_signatures(
    shingle_sets: ShingleSets | Sequence[Collection[str]], num_perm: int = DEFAULT_NUM_PERM, seed: int = 1
) -> np.ndarray:
    """uint32 (n, num_perm) MinHash signatures; rows without shingles are all ``EMPTY``.

    Accepts hashed CSR sets (fast path) or sets of shingle strings (hashed here). Values are
    capped at 2^32 - 2 so EMPTY stays distinct; the cap merges hash value 2^32 - 1 with
    2^32 - 2, which no estimate can notice.
    """
    sets = _as_shingle_sets(shingle_sets)
    n = len(sets)
    # Permutation-major while filling, so each permutation writes one contiguous row.
    sig = np.full((num_perm, n), EMPTY, dtype=np.uint32)
    counts = np.diff(sets.indptr)
    rows = np.flatnonzero(counts > 0)
    if len(rows) == 0:
        return np.ascontiguousarray(sig.T)
    starts = sets.indptr[:-1][rows]  # strictly increasing: empty rows own no elements
    x = sets.hashes.astype(np.uint64)
    a, b = permutation_params(num_perm, seed)

    def sign(ks: range) -> None:
        v = np.empty_like(x)  # one buffer per thread: no temporaries per permutation
        for k in ks:
            np.multiply(x, a[k], out=v)  # wraps mod 2^64, which is the hash's definition
            np.add(v, b[k], out=v)
            np.right_shift(v, _SHIFT, out=v)
            sig[k, rows] = np.minimum(np.minimum.reduceat(v, starts), MAX_SIGNATURE)

    # numpy releases the GIL in these whole-array steps, so permutations split across threads
    # run on every core; each writes its own rows.
    threads = max(1, min(num_perm, os.cpu_count() or 1))
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(sign, [range(i, num_perm, threads) for i in range(threads)]))
    return np.ascontiguousarray(sig.T)


def profile_signatures(profiles: pd.DataFrame, num_perm: int = DEFAULT_NUM_PERM, seed: int = 1) -> np.ndarray:
    """Sign each field's distinct values, then take each row's minimum over its fields' rows.

    Exact: a row's shingles are the union of its fields' shingle sets, and the minimum over a
    union is the minimum of the minima (a missing field contributes EMPTY, above every value).
    Field values repeat across profiles, so there are far fewer shingles to sign per distinct
    value than row by row.
    """
    out = np.full((len(profiles), num_perm), EMPTY, dtype=np.uint32)
    a, b = permutation_params(num_perm, seed)
    for prefix, (codes, values) in _field_codes(profiles).items():
        table, row_of = _value_signatures(prefix, values, a, b)
        _fold_min(out, table, row_of[codes])
    return out


# Shingles signed per step: the (grams, values) block and its work buffer stay in L2 across
# all permutations (whole arrays went through memory once per permutation and numpy step).
_SIGN_BLOCK = 65_536


def _value_signatures(
    prefix: str, values: list[str], a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(table, row_of): the signature of ``values[i]`` is ``table[row_of[i]]``; ``row_of[-1]``
    (code -1, a missing value) is an all-EMPTY row.

    Values are signed grouped by length: a value of g characters has exactly g 3-grams (padded),
    so a group is a dense (g, values) block of hashes, and a permutation's minimum is a
    ``minimum.reduce`` over axis 0 instead of a ``reduceat`` over ragged rows.
    """
    m = len(values)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=m)
    order = np.argsort(lengths, kind="stable")
    row_of = np.empty(m + 1, dtype=np.intp)
    row_of[order] = np.arange(m)
    row_of[m] = m
    table = np.empty((m + 1, len(a)), dtype=np.uint32)
    table[m] = EMPTY
    sorted_lengths = lengths[order]
    # Where each length begins, and the end: one group per length, signed in chunks.
    bounds = np.r_[np.flatnonzero(np.diff(sorted_lengths, prepend=-1)), m].tolist()
    jobs = [
        (start, min(start + _ROW_CHUNK, end))
        for begin, end in itertools.pairwise(bounds)
        for start in range(begin, end, _ROW_CHUNK)
    ]

    def sign(job: tuple[int, int]) -> None:
        start, stop = job
        hashes, _ = _field_hashes(prefix, [values[i] for i in order[start:stop]])
        x = np.ascontiguousarray(hashes.T, dtype=np.uint64)  # (g, values), every gram real
        step = max(1, _SIGN_BLOCK // len(x))
        for c in range(0, x.shape[1], step):
            block = x[:, c : c + step]
            table[start + c : start + c + block.shape[1]] = _dense_minhash(block, a, b)

    # numpy releases the GIL in the arithmetic, so the groups split across threads use every core.
    with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        list(pool.map(sign, jobs))
    return table, row_of


def _dense_minhash(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(values, num_perm) signatures of the columns of a (grams, values) block of hashes.

    The shift by 32 is monotone, so it moves after the minimum: one pass less per permutation.
    """
    work = np.empty_like(x)
    low = np.empty((len(a), x.shape[1]), dtype=np.uint64)
    for k in range(len(a)):
        np.multiply(x, a[k], out=work)  # wraps mod 2^64, which is the hash's definition
        np.add(work, b[k], out=work)
        np.minimum.reduce(work, axis=0, out=low[k])
    return np.minimum(low >> _SHIFT, MAX_SIGNATURE).astype(np.uint32).T


_FOLD_ROWS = 2048


def _fold_min(out: np.ndarray, table: np.ndarray, index: np.ndarray) -> None:
    """``out[i] = minimum(out[i], table[index[i]])`` in cache-sized blocks of rows, on every core."""

    def fold(starts: range) -> None:
        buf = np.empty((_FOLD_ROWS, out.shape[1]), dtype=out.dtype)
        for s in starts:
            part = index[s : s + _FOLD_ROWS]
            block, rows = buf[: len(part)], out[s : s + len(part)]
            np.take(table, part, axis=0, out=block)
            np.minimum(rows, block, out=rows)

    threads = max(1, os.cpu_count() or 1)
    step = _FOLD_ROWS * threads
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fold, [range(i * _FOLD_ROWS, len(out), step) for i in range(threads)]))


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of agreeing permutations: the unbiased MinHash estimate of Jaccard."""
    return float(np.mean(sig_a == sig_b))


# --- the s-curve and the choice of bands ---------------------------------------------------
def s_curve(s: np.ndarray | float, r: int, b: int) -> np.ndarray | float:
    """Probability that a pair of similarity s shares at least one of b bands of r rows."""
    return 1.0 - (1.0 - np.power(s, r)) ** b


@dataclass(frozen=True)
class BandChoice:
    """A banding and what its s-curve costs around the threshold."""

    r: int
    b: int
    threshold_error: float  # |t_eff - threshold|
    fp_area: float  # ∫_0^t P(s) ds: pairs below the threshold that still become candidates
    fn_area: float  # ∫_t^1 (1 - P(s)) ds: pairs above it that are missed (information only)
    effective_threshold: float = field(default=0.0)  # (1/b)^(1/r), where the curve is steepest
    p_at_threshold: float = field(default=0.0)  # P(threshold)


_GRID = 2001


def choose_bands(
    threshold: float, max_hashes: int, fp_weight: float = 1.0, fn_weight: float = 1.0
) -> BandChoice:
    """The (r, b) with r*b <= max_hashes minimizing fp_weight * fp_area + fn_weight * threshold_error.

    The false-positive area alone is minimized by pushing the curve far right (large r), which
    would miss the true pairs just above the threshold; the threshold error is what keeps the
    curve's steep part at the threshold, so it is the false-negative guard and takes fn_weight.
    The false-negative area is reported, not optimized: it's dominated by similarities near 1
    that every reasonable banding catches, and adding it would reward a curve left of t.
    Ties go to fewer hashes (cheaper signatures and fewer band rows).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be in (0, 1)")
    if max_hashes < 1:
        raise ValueError("max_hashes must be >= 1")
    rs, bs = [], []
    for r in range(1, max_hashes + 1):
        for b in range(1, max_hashes // r + 1):
            rs.append(r)
            bs.append(b)
    r_arr = np.array(rs, dtype=np.float64)[:, None]
    b_arr = np.array(bs, dtype=np.float64)[:, None]
    s_lo = np.linspace(0.0, threshold, _GRID)[None, :]
    s_hi = np.linspace(threshold, 1.0, _GRID)[None, :]
    fp = np.trapezoid(s_curve(s_lo, r_arr, b_arr), s_lo, axis=1)
    fn = np.trapezoid(1.0 - s_curve(s_hi, r_arr, b_arr), s_hi, axis=1)
    t_eff = (1.0 / b_arr[:, 0]) ** (1.0 / r_arr[:, 0])
    err = np.abs(t_eff - threshold)
    objective = fp_weight * fp + fn_weight * err
    cost = r_arr[:, 0] * b_arr[:, 0]
    best = int(np.lexsort((cost, np.round(objective, 12)))[0])
    r, b = rs[best], bs[best]
    return BandChoice(
        r=r,
        b=b,
        threshold_error=float(err[best]),
        fp_area=float(fp[best]),
        fn_area=float(fn[best]),
        effective_threshold=float(t_eff[best]),
        p_at_threshold=float(s_curve(threshold, r, b)),
    )


def s_curve_png(choice: BandChoice, threshold: float) -> bytes:
    """The chosen curve with the threshold, for Dagster asset metadata (MetadataValue.image)."""
    # Imported on use: matplotlib is heavy and only the asset metadata draws charts.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A bare Figure on the Agg canvas: no pyplot global state, safe in a threaded code server.
    fig = Figure(figsize=(5, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    s = np.linspace(0.0, 1.0, 501)
    p = s_curve(s, choice.r, choice.b)
    ax.plot(s, p, color="tab:blue", label=f"r={choice.r}, b={choice.b}")
    ax.fill_between(s, 0, p, where=s <= threshold, color="tab:red", alpha=0.25, label="false-positive area")
    ax.fill_between(s, p, 1, where=s >= threshold, color="tab:orange", alpha=0.2, label="false-negative area")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.axvline(choice.effective_threshold, color="tab:green", linestyle=":", linewidth=1, label="(1/b)^(1/r)")
    ax.set_xlabel("Jaccard similarity")
    ax.set_ylabel("P(candidate)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(
        f"r={choice.r} b={choice.b}: fp area {choice.fp_area:.3f}, fn area {choice.fn_area:.3f}", fontsize=9
    )
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# --- banding and pairs --------------------------------------------------------------------
_MIX_MUL = np.uint64(0x9E3779B97F4A7C15)
_MIX_C1, _MIX_C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def band_keys(signatures: np.ndarray, r: int, b: int) -> np.ndarray:
    """uint64 (n, b): one bucket key per band, a hash of the band's r signature values.

    64-bit keys instead of the r-tuples themselves keep grouping to one integer sort per band;
    a collision between different tuples only adds a candidate pair, which scoring rejects.
    """
    n, num_perm = signatures.shape
    if r * b > num_perm:
        raise ValueError(f"r*b = {r * b} exceeds the {num_perm} signature values")
    key = np.empty((n, b), dtype=np.uint64)
    for start in range(0, n, _KEY_ROWS):
        key[start : start + _KEY_ROWS] = _band_key_block(signatures[start : start + _KEY_ROWS], r, b)
    return key


# Rows hashed per step: the block's (rows, b) keys stay in cache through the 6 x 8 whole-array
# steps of the r mixing rounds, where whole (n, b) arrays would go through memory at every step.
_KEY_ROWS = 4096


def _band_key_block(signatures: np.ndarray, r: int, b: int) -> np.ndarray:
    """``band_keys`` of a block of rows, in place on one (rows, b) array."""
    bands = signatures[:, : r * b].reshape(len(signatures), b, r)  # a view, widened band by band
    key = np.full((len(signatures), b), np.uint64(0x243F6A8885A308D3), dtype=np.uint64)
    tmp = np.empty_like(key)
    for j in range(r):
        np.multiply(key, _MIX_MUL, out=key)  # uint64 arithmetic wraps, as the key's definition
        np.add(key, bands[:, :, j], out=key)
        # splitmix64 finalizer: spreads every input bit over the 64-bit key
        for shift, mul in ((30, _MIX_C1), (27, _MIX_C2)):
            np.right_shift(key, np.uint64(shift), out=tmp)
            np.bitwise_xor(key, tmp, out=key)
            np.multiply(key, mul, out=key)
        np.right_shift(key, np.uint64(31), out=tmp)
        np.bitwise_xor(key, tmp, out=key)
    return key


@dataclass(frozen=True)
class LshResult:
    """Pairs plus what banding skipped, so a report can say how much recall the cap cost."""

    bands: list[BucketStats]
    empty_records: int  # records without any shingle, never bucketed
    codes: np.ndarray  # the pairs as sorted lo * n + hi over record_ranks
    ids_by_rank: np.ndarray  # record ids in rank order, which ``codes`` index

    @functools.cached_property
    def pairs(self) -> pd.DataFrame:
        """record_id_l, record_id_r of ``codes``, spelled out only when read (see DeterministicResult)."""
        return code_pairs_frame(self.codes, self.ids_by_rank)

    @property
    def skipped_buckets(self) -> int:
        return sum(s.skipped_buckets for s in self.bands)

    @property
    def skipped_records(self) -> int:
        return sum(s.skipped_records for s in self.bands)

    @property
    def largest_bucket(self) -> int:
        return max((s.largest_bucket for s in self.bands), default=0)

    def stats(self) -> dict[str, int]:
        return {
            "pairs": len(self.codes),
            "band_pairs": sum(s.pairs for s in self.bands),
            "skipped_buckets": self.skipped_buckets,
            "skipped_records": self.skipped_records,
            "largest_bucket": self.largest_bucket,
            "empty_records": self.empty_records,
        }


def lsh_candidates(
    record_ids: pd.Series | np.ndarray,
    signatures: np.ndarray,
    r: int,
    b: int,
    max_bucket: int = DEFAULT_MAX_BUCKET,
) -> LshResult:
    """Pairs sharing any band bucket, with per-band statistics."""
    ranks, ids_by_rank = record_ranks(record_ids)
    return lsh_result(*lsh_codes(ranks, signatures, r, b, max_bucket), ids_by_rank)


def lsh_codes(
    ranks: np.ndarray, signatures: np.ndarray, r: int, b: int, max_bucket: int = DEFAULT_MAX_BUCKET
) -> tuple[np.ndarray, list[BucketStats], int]:
    """(sorted pair codes over ``ranks``, per-band statistics, records without shingles): the
    pairs as integers only, cheap to hand back from a forked child (see ``idr_pipeline.core.forked``)."""
    n = len(ranks)
    if r * b > signatures.shape[1]:
        raise ValueError(f"r*b = {r * b} exceeds the {signatures.shape[1]} signature values")
    rows = np.flatnonzero(~(signatures == EMPTY).all(axis=1))
    # Band-major keys of the records with shingles: each band's keys are one contiguous row.
    keys = np.empty((b, len(rows)), dtype=np.uint64)
    for start in range(0, len(rows), _KEY_ROWS):
        block = rows[start : start + _KEY_ROWS]
        keys[:, start : start + len(block)] = _band_key_block(signatures[block], r, b).T
    member_ranks = ranks[rows]

    def band_codes(band: int) -> tuple[np.ndarray, BucketStats]:
        order = _key_order(keys[band])
        lo, hi, st = bucket_pairs(keys[band][order], member_ranks[order], max_bucket)
        lo, hi = unique_pairs(lo, hi, n)
        return lo * n + hi, st

    # The sorts release the GIL: bands split across threads use every core.
    with ThreadPoolExecutor(max(1, min(b, os.cpu_count() or 1))) as pool:
        per_band = list(pool.map(band_codes, range(b)))
    stats = [st for _, st in per_band]
    code = (
        sorted_unique(np.concatenate([c for c, _ in per_band])) if per_band else np.zeros(0, dtype=np.int64)
    )
    return code, stats, n - len(rows)


def _key_order(keys: np.ndarray) -> np.ndarray:
    """An order that groups equal keys (almost always sorting them), from one plain sort.

    The record's index fills the low bits of its key, so ``np.sort`` of the packed values gives
    the order; keys equal above those bits but not below may interleave, which ``bucket_pairs``
    repairs: its stable argsort is exact in any case, and on nearly sorted input it is far
    cheaper than on unsorted keys.
    """
    bits = np.uint64(max(1, int(len(keys)).bit_length()))
    packed = (keys >> bits) << bits
    packed |= np.arange(len(keys), dtype=np.uint64)
    packed.sort()
    return (packed & ((np.uint64(1) << bits) - np.uint64(1))).astype(np.intp)


def lsh_result(code: np.ndarray, stats: list[BucketStats], empty: int, ids_by_rank: np.ndarray) -> LshResult:
    return LshResult(stats, empty, code, ids_by_rank)


def lsh_pairs(
    record_ids: pd.Series | np.ndarray,
    signatures: np.ndarray,
    r: int,
    b: int,
    max_bucket: int = DEFAULT_MAX_BUCKET,
) -> pd.DataFrame:
    """Contract pairs frame; the skipped-bucket counts are in ``.attrs["lsh"]``.

    Use ``lsh_candidates`` when the counts feed a report: attrs don't survive every pandas
    operation.
    """
    result = lsh_candidates(record_ids, signatures, r, b, max_bucket)
    pairs = result.pairs
    pairs.attrs["lsh"] = result.stats()
    return pairs


# --- Spark --------------------------------------------------------------------------------
def lsh_band_rows_spark(
    profiles_sdf: SparkDataFrame, r: int, b: int, num_perm: int, seed: int
) -> SparkDataFrame:
    """(record_id, band, bucket) per record with shingles, computed on the executors."""

    missing = [c for c in ("record_id", *SHINGLE_COLUMNS) if c not in profiles_sdf.columns]
    if missing:
        raise ValueError(f"profiles frame lacks columns {missing}")
    if r * b > num_perm:
        raise ValueError(f"r*b = {r * b} exceeds num_perm = {num_perm}")
    schema = T.StructType(
        [
            T.StructField("record_id", T.StringType(), False),
            T.StructField("band", T.IntegerType(), False),
            T.StructField("bucket", T.LongType(), False),
        ]
    )

    def band_rows(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            sig = profile_signatures(pdf, num_perm, seed)
            nonempty = ~(sig == EMPTY).all(axis=1)
            keys = band_keys(sig[nonempty], r, b).view(np.int64)
            ids = pdf["record_id"].astype(str).to_numpy()[nonempty]
            yield pd.DataFrame(
                {
                    "record_id": np.repeat(ids, b),
                    "band": np.tile(np.arange(b, dtype=np.int32), len(ids)),
                    "bucket": keys.ravel(),
                }
            )

    cols = ["record_id", *SHINGLE_COLUMNS]
    casted = profiles_sdf.select(*[profiles_sdf[c].cast("string").alias(c) for c in cols])
    return casted.mapInPandas(band_rows, schema)


def lsh_pairs_spark(
    profiles_sdf: SparkDataFrame,
    r: int,
    b: int,
    num_perm: int = DEFAULT_NUM_PERM,
    seed: int = 1,
    max_bucket: int = DEFAULT_MAX_BUCKET,
) -> SparkDataFrame:
    """The pandas ``lsh_pairs`` on Spark: same signatures, pairs by a self-join on (band, bucket).

    Buckets above max_bucket are dropped before the join, so the join never builds the
    quadratic pair set of a placeholder-like bucket; count them with ``oversized_buckets_spark``.
    """

    rows = lsh_band_rows_spark(profiles_sdf, r, b, num_perm, seed)
    sizes = rows.groupBy("band", "bucket").agg(F.count(F.lit(1)).alias("size"))
    kept = rows.join(
        sizes.where((F.col("size") >= 2) & (F.col("size") <= max_bucket)).select("band", "bucket"),
        ["band", "bucket"],
    )
    left = kept.select("band", "bucket", F.col("record_id").alias("record_id_l"))
    right = kept.select("band", "bucket", F.col("record_id").alias("record_id_r"))
    return (
        left.join(right, ["band", "bucket"])
        .where(F.col("record_id_l") < F.col("record_id_r"))
        .select("record_id_l", "record_id_r")
        .distinct()
    )


def oversized_buckets_spark(
    band_rows: SparkDataFrame, max_bucket: int = DEFAULT_MAX_BUCKET
) -> SparkDataFrame:
    """Buckets skipped by ``lsh_pairs_spark``: (band, bucket, size), largest first."""

    return (
        band_rows.groupBy("band", "bucket")
        .agg(F.count(F.lit(1)).alias("size"))
        .where(F.col("size") > max_bucket)
        .orderBy(F.col("size").desc())
    )
