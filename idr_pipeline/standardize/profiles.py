"""The clean profiles as pandas, in record id order, read once per lake version within a run."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import pandas as pd

from idr_pipeline.core.catalog import CLEAN
from idr_pipeline.core.lake import Lake

PROFILE_COLUMNS = [
    "record_id", "source", "source_customer_id", "first_name", "last_name", "email", "email_key", "phone",
    "street", "city", "state", "postcode", "country", "dob", "national_id", "ip_address", "device_id",
    "anonymous_id", "updated_at",
]  # fmt: skip


_profile_memo: ContextVar[dict[tuple, object] | None] = ContextVar("profile_memo", default=None)


@contextmanager
def reusing_profiles() -> Iterator[None]:
    """Within it, the clean profiles (and their masked form) are read once per lake version.

    ``idr resolve`` runs four matching steps on one version of the profiles; reading and
    masking them once instead of once per step removes the largest cost the steps share. Each
    caller still gets its own copy (the column arrays are copied, the strings are shared), so no
    step sees another's edits. The Dagster assets run as separate steps and read the lake each.
    """
    token = _profile_memo.set({})
    try:
        yield
    finally:
        _profile_memo.reset(token)


def current_memo() -> dict[tuple, object] | None:
    """The memo of the enclosing ``reusing_profiles``, or None outside one."""
    return _profile_memo.get()


def memoized(key: tuple, read: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    memo = _profile_memo.get()
    if memo is None:
        return read()
    if key not in memo:
        memo[key] = read()
    return memo[key].copy()


def profiles_version(lake: Lake) -> tuple:
    return (lake.path(*CLEAN), lake.latest_version(*CLEAN))


def read_profiles(lake: Lake, columns: Sequence[str] = PROFILE_COLUMNS) -> pd.DataFrame:
    """The clean profiles in record id order, whatever order the cleaning job wrote them in.

    The matching samples pairs by position (EM, u) and breaks ties by position, so without a
    fixed order the identities would shift with Spark's partitioning: a change of the cleaning
    job's shuffle key alone would move records between identities. Any subset of
    ``columns`` gives the same rows in the same order.
    """
    wanted = ["record_id", *(c for c in columns if c != "record_id")]
    return memoized(
        ("profiles", *profiles_version(lake), tuple(wanted)),
        lambda: (
            lake.read_latest_arrow(*CLEAN, columns=wanted)
            .sort_by("record_id")
            .to_pandas()
            .drop_duplicates("record_id")
        ),
    )
