"""Pairs from buckets, shared by every blocking generator.

Generators differ in how they put records into buckets (an exact key, a MinHash band); they
agree on what a bucket means: every two records in it are a candidate pair, and a bucket too
big to enumerate is skipped and counted rather than silently truncated, because a truncated
bucket would drop pairs in an order-dependent way that no report could explain.

Records are handled as integer ranks in record-id string order, so a pair is two int64s and
``l < r`` in rank order is ``record_id_l < record_id_r`` in string order, as the pairs contract
requires, and deduplication is one ``np.unique`` over ``l * n + r`` instead of tuples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PAIR_COLUMNS = ["record_id_l", "record_id_r"]


@dataclass(frozen=True)
class BucketStats:
    """What one bucketing produced, for per-rule / per-band reporting."""

    buckets: int  # buckets with at least two records
    pairs: int  # pairs enumerated (before deduplication across rules or bands)
    skipped_buckets: int  # buckets above max_bucket
    skipped_records: int  # record memberships in skipped buckets
    largest_bucket: int  # largest bucket seen, skipped or not


def record_ranks(record_ids: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rank per input row, ids in rank order): ranks follow string order of the ids."""
    ids = np.asarray(pd.Series(record_ids).astype(str), dtype=object)
    order = np.argsort(ids, kind="stable")
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[order] = np.arange(len(ids), dtype=np.int64)
    return ranks, ids[order]


def bucket_pairs(
    keys: np.ndarray, ranks: np.ndarray, max_bucket: int
) -> tuple[np.ndarray, np.ndarray, BucketStats]:
    """All rank pairs (lo, hi) sharing a key, skipping buckets larger than max_bucket.

    ``keys`` is one integer key per row (rows without a key must be filtered out before).
    Pairs are enumerated fully vectorized: each member at offset o of a bucket of size s pairs
    with the s - 1 - o members after it.
    """
    empty = np.empty(0, dtype=np.int64)
    if len(keys) < 2:
        return empty, empty, BucketStats(0, 0, 0, 0, int(len(keys)))
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    sr = ranks[order]
    starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
    sizes = np.diff(np.r_[starts, len(sk)])
    largest = int(sizes.max())
    too_big = sizes > max_bucket
    keep = (sizes >= 2) & ~too_big
    stats_skipped = int(too_big.sum()), int(sizes[too_big].sum())
    starts, sizes = starts[keep], sizes[keep]
    if len(sizes) == 0:
        return empty, empty, BucketStats(0, 0, *stats_skipped, largest)
    # Position of every member inside kept buckets, and how many partners follow it.
    member_pos = np.repeat(starts, sizes) + ragged_arange(sizes)
    partners = np.repeat(sizes, sizes) - 1 - ragged_arange(sizes)
    left = np.repeat(member_pos, partners)
    right = left + 1 + ragged_arange(partners)
    a, b = sr[left], sr[right]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    distinct = lo != hi  # a record listed twice under one key is not a pair with itself
    lo, hi = lo[distinct], hi[distinct]
    return lo, hi, BucketStats(int(len(sizes)), int(len(lo)), *stats_skipped, largest)


def ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """concat(arange(k) for k in lengths) without a Python loop."""
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total, dtype=np.int64) - offsets


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by sort and compare-adjacent.

    numpy 2's ``np.unique`` goes through a hash table first; on millions of distinct int64 pair
    codes that is much slower than sorting, and a sorted result is wanted anyway.
    """
    out = np.sort(values, kind="quicksort")
    if len(out) < 2:
        return out
    keep = np.empty(len(out), dtype=bool)
    keep[0] = True
    np.not_equal(out[1:], out[:-1], out=keep[1:])
    return out[keep]


def unique_pairs(lo: np.ndarray, hi: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Deduplicate rank pairs, sorted by (lo, hi)."""
    if len(lo) == 0:
        return lo, hi
    code = sorted_unique(lo.astype(np.int64) * np.int64(n) + hi.astype(np.int64))
    return code // n, code % n


def pairs_frame(lo: np.ndarray, hi: np.ndarray, ids_by_rank: np.ndarray) -> pd.DataFrame:
    """Rank pairs back to the contract's record id columns."""
    return pd.DataFrame(
        {"record_id_l": ids_by_rank[lo].astype(object), "record_id_r": ids_by_rank[hi].astype(object)}
    )


def code_pairs_frame(codes: np.ndarray, ids_by_rank: np.ndarray) -> pd.DataFrame:
    """Pair codes (lo * n + hi over the ranks of ``ids_by_rank``) back to record id columns."""
    n = max(len(ids_by_rank), 1)
    return pairs_frame(codes // n, codes % n, ids_by_rank)


def cross_bucket_pairs(
    keys_a: np.ndarray,
    ranks_a: np.ndarray,
    keys_b: np.ndarray,
    ranks_b: np.ndarray,
    max_bucket: int,
) -> tuple[np.ndarray, np.ndarray, BucketStats]:
    """Rank pairs (lo, hi) of an A member and a B member sharing a key; no A-A or B-B pairs.

    For keys whose two sides mean different things (an e-mail handle 'jsmith' on one side, the
    initial and surname of a name on the other), the same-side pairs are what makes the key
    expensive (every J. Smith with every other) and are already proposed by other rules, so
    only the cross pairs are enumerated. A bucket is skipped when its B side exceeds
    max_bucket: that side is the common name, the A side is one handle.
    """
    empty = np.empty(0, dtype=np.int64)
    if len(keys_a) == 0 or len(keys_b) == 0:
        return empty, empty, BucketStats(0, 0, 0, 0, 0)
    order = np.argsort(keys_b, kind="stable")
    sk, sr = keys_b[order], ranks_b[order]
    start = np.searchsorted(sk, keys_a, "left")
    count = np.searchsorted(sk, keys_a, "right") - start
    largest = int(count.max())
    too_big = count > max_bucket
    skipped_keys = sorted_unique(keys_a[too_big])
    skipped_records = int(np.isin(keys_b, skipped_keys).sum() + too_big.sum())
    count = np.where(too_big, 0, count)
    left = np.repeat(ranks_a, count)
    right = sr[np.repeat(start, count) + ragged_arange(count)]
    lo, hi = np.minimum(left, right), np.maximum(left, right)
    distinct = lo != hi
    lo, hi = lo[distinct], hi[distinct]
    buckets = len(sorted_unique(keys_a[count > 0]))
    return lo, hi, BucketStats(buckets, int(len(lo)), len(skipped_keys), skipped_records, largest)


def frame_codes(pairs: pd.DataFrame, ids_by_rank: np.ndarray) -> np.ndarray:
    """Pair codes (``lo * n + hi`` in rank space) of a contract pairs frame; ids must be known."""
    index = pd.Index(ids_by_rank)
    lo = index.get_indexer(pairs["record_id_l"]).astype(np.int64)
    hi = index.get_indexer(pairs["record_id_r"]).astype(np.int64)
    unknown = (lo < 0) | (hi < 0)
    if unknown.any():
        raise KeyError(f"{int(unknown.sum())} pairs name records that are not among the profiles")
    return lo * len(ids_by_rank) + hi


def union_codes(codes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct codes, bit set per code): bit i is set when ``codes[i]`` holds the code."""
    flat = np.concatenate([np.zeros(0, dtype=np.int64), *codes])
    if len(flat) == 0:
        return flat, flat.copy()
    bits = np.concatenate([np.full(len(c), 1 << i, dtype=np.int64) for i, c in enumerate(codes)])
    order = np.argsort(flat, kind="stable")
    flat, bits = flat[order], bits[order]
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    return flat[starts], np.bitwise_or.reduceat(bits, starts)
