"""Candidate pairs from exact blocking keys, in pandas.

Two families of keys. Shared identifiers are the same evidence ``identity/edges.py`` links on,
but here they only propose pairs: the probabilistic model scores them, so a household phone
becomes a pair to judge rather than a merge. Classic blocking rules then catch the duplicates
that share no identifier at all (new e-mail, new phone) from name and birth-date fragments
that survive the usual changes of a life: marriage changes a surname, a move changes a
postcode, a typo changes one digit, rarely all at once.

Every rule has a bucket cap. A key shared by more records than that is a placeholder, a
system default or a very common name in a big block; enumerating it would cost s^2/2 pairs
for little recall, so it's skipped and counted, and the report shows what the cap cost.
This module is for ``idr resolve`` on small data and for the blocking report; the pipeline
runs the same idea on Spark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from idr_pipeline.candidates._buckets import bucket_pairs, pairs_frame, record_ranks

KeyFunction = Callable[[pd.DataFrame], pd.Series]

IDENTIFIER_MAX_BUCKET = 100
BLOCK_MAX_BUCKET = 100


@dataclass(frozen=True)
class BlockingRule:
    name: str
    purpose: str
    key: KeyFunction  # profiles -> one key string per row, <NA> where the rule doesn't apply
    max_bucket: int


def _text(profiles: pd.DataFrame, col: str) -> pd.Series:
    if col not in profiles.columns:
        return pd.Series(pd.NA, index=profiles.index, dtype="string")
    s = profiles[col].astype("string").str.strip().str.lower()
    return s.mask(s == "")


def _first_initial(profiles: pd.DataFrame) -> pd.Series:
    s = _text(profiles, "first_name").str.replace(r"[^a-z]", "", regex=True).str[:1]
    return s.mask(s == "")


def _dob(profiles: pd.DataFrame) -> pd.Series:
    s = _text(profiles, "dob")
    return s.mask(s.str.len() < 10)  # only full ISO dates, so "year" below is a year


def _join(*parts: pd.Series) -> pd.Series:
    """Key of several parts; missing when any part is, so a rule never blocks on half a key."""
    out = parts[0]
    for p in parts[1:]:
        out = out + "\u241f" + p  # NA propagates through +
    return out


def _column(col: str) -> KeyFunction:
    return lambda df: _text(df, col)


DEFAULT_RULES: tuple[BlockingRule, ...] = (
    BlockingRule(
        "email_key",
        "same mailbox (gmail dots and +tags removed): the strongest personal identifier",
        _column("email_key"),
        IDENTIFIER_MAX_BUCKET,
    ),
    BlockingRule(
        "phone",
        "same E.164 number: one person, or a household the model must tell apart",
        _column("phone"),
        IDENTIFIER_MAX_BUCKET,
    ),
    BlockingRule(
        "national_id",
        "same government id: near certain, unless mistyped into someone else's",
        _column("national_id"),
        IDENTIFIER_MAX_BUCKET,
    ),
    BlockingRule(
        "device_id",
        "same device: one person, or a shared tablet",
        _column("device_id"),
        IDENTIFIER_MAX_BUCKET,
    ),
    BlockingRule(
        "source_customer",
        "same customer id in one source under two record ids: the source says one customer",
        lambda df: _join(_text(df, "source"), _text(df, "source_customer_id")),
        IDENTIFIER_MAX_BUCKET,
    ),
    BlockingRule(
        "last_name_dob_year",
        "no shared identifier (new e-mail and phone) but surname and birth year agree; "
        "tolerates nicknames and day/month typos",
        lambda df: _join(_text(df, "last_name"), _dob(df).str[:4]),
        BLOCK_MAX_BUCKET,
    ),
    BlockingRule(
        "first_initial_postcode",
        "same first initial at the same postcode: catches surname changes and surname typos "
        "of people who haven't moved",
        lambda df: _join(_first_initial(df), _text(df, "postcode").str.replace(" ", "", regex=False)),
        BLOCK_MAX_BUCKET,
    ),
    BlockingRule(
        "dob_first_initial",
        "same birth date and first initial: catches people who moved and changed surname",
        lambda df: _join(_dob(df), _first_initial(df)),
        BLOCK_MAX_BUCKET,
    ),
)


@dataclass(frozen=True)
class DeterministicResult:
    pairs: pd.DataFrame  # record_id_l, record_id_r: the union over rules
    counts: pd.DataFrame  # one row per rule, see deterministic_pairs


def deterministic_pairs(
    profiles: pd.DataFrame, rules: tuple[BlockingRule, ...] = DEFAULT_RULES
) -> DeterministicResult:
    """Union of the rules' pairs, and per rule what it contributed and what its cap skipped.

    counts columns: rule, keyed_records (rows the rule applies to), buckets (keys with two or
    more records), pairs (distinct pairs of this rule alone), new_pairs (not proposed by an
    earlier rule, so the order of ``rules`` reads as "what each rule adds"), skipped_buckets,
    skipped_records, largest_bucket, max_bucket.
    """
    ranks, ids_by_rank = record_ranks(profiles["record_id"])
    n = len(ranks)
    union = np.zeros(0, dtype=np.int64)
    rows = []
    for rule in rules:
        key = rule.key(profiles)
        codes, _ = pd.factorize(key, use_na_sentinel=True)
        has_key = codes >= 0
        lo, hi, st = bucket_pairs(codes[has_key].astype(np.int64), ranks[has_key], rule.max_bucket)
        code = np.unique(lo * n + hi)
        before = len(union)
        union = np.union1d(union, code)
        rows.append(
            {
                "rule": rule.name,
                "keyed_records": int(has_key.sum()),
                "buckets": st.buckets,
                "pairs": len(code),
                "new_pairs": len(union) - before,
                "skipped_buckets": st.skipped_buckets,
                "skipped_records": st.skipped_records,
                "largest_bucket": st.largest_bucket,
                "max_bucket": rule.max_bucket,
            }
        )
    pairs = pairs_frame(union // max(n, 1), union % max(n, 1), ids_by_rank)
    return DeterministicResult(pairs, pd.DataFrame(rows))
