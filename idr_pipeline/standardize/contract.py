"""The contract a clean profile row satisfies, checked on every batch the Spark job emits.

The normalisers are meant to guarantee these shapes already; the schema is the independent
second opinion, so a regression in one normaliser fails the job loudly instead of quietly
seeding the identity graph with keys that can never match (a phone without '+', an upper-case
email). The patterns are deliberately simpler than the normalisers: they state the output
shape, not how to get there.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import pandera.pandas as pa

from idr_pipeline.standardize.identifiers import MAX_ID_LENGTH

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
E164_PATTERN = r"^\+[1-9]\d{6,14}$"
ISO_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
ISO_TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
NAME_PATTERN = r"^[A-Za-z][A-Za-z'-]*(?: [A-Za-z][A-Za-z'-]*)*$"
# One space between words, none at the ends: what collapse_whitespace leaves behind.
TIDY_TEXT_PATTERN = r"^\S+(?: \S+)*$"
STATE_PATTERN = r"^[A-Z0-9]+(?: [A-Z0-9]+)*$"
POSTCODE_PATTERN = r"^[A-Z0-9][A-Z0-9 -]*$"
NATIONAL_ID_PATTERN = r"^[A-Z0-9]{6,20}$"
UUID_LIKE_UPPER = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"


def _on_distinct(test: Callable[[str], bool], name: str) -> pa.Check:
    """An element-wise check run once per distinct value and broadcast back to the rows.

    The contract runs on every clean row of every batch, and most columns repeat a few values
    (cities, states, names, dates); per row, the checks cost as much as standardising itself.
    A value that is not a ``str`` fails every such check, which is why the columns are declared
    ``object``: pandera's own ``str`` test is a per-row ``isinstance`` over every column.
    """

    def check(series: pd.Series) -> pd.Series:
        codes, uniques = pd.factorize(series)
        ok = np.fromiter(
            (isinstance(u, str) and bool(test(u)) for u in uniques), dtype=bool, count=len(uniques)
        )
        return pd.Series(np.append(ok, True)[codes], index=series.index)  # code -1: missing

    return pa.Check(check, error=name)


def _matches(pattern: str) -> pa.Check:
    return _on_distinct(re.compile(pattern).match, f"str_matches('{pattern}')")


def _is_lower(text: str) -> bool:
    return text == text.lower()


def _parses_as_date(text: str) -> bool:
    try:
        return date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def _canonical_ip(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).compressed == text
    except ValueError:
        return False


_UUID_LIKE = re.compile(UUID_LIKE_UPPER)


def _uuid_is_lower(text: str) -> bool:
    """A UUID-shaped id must be lower-case, or iOS and Android spellings would not join."""
    return not _UUID_LIKE.match(text) or _is_lower(text)


def _text(pattern: str = TIDY_TEXT_PATTERN, *checks: pa.Check) -> pa.Column:
    return pa.Column(object, nullable=True, checks=[_matches(pattern), *checks])


def _identifier() -> pa.Column:
    return _text(
        TIDY_TEXT_PATTERN,
        _on_distinct(lambda v: 1 <= len(v) <= MAX_ID_LENGTH, f"str_length(1, {MAX_ID_LENGTH})"),
        _on_distinct(_uuid_is_lower, "uuid_is_lower_case"),
    )


_EMAIL_CHECKS = (_on_distinct(_is_lower, "is_lower_case"),)

CLEAN_PROFILE_SCHEMA = pa.DataFrameSchema(
    {
        "record_id": pa.Column(object, nullable=False, checks=_matches(TIDY_TEXT_PATTERN)),
        "source": pa.Column(object, nullable=False, checks=_matches(TIDY_TEXT_PATTERN)),
        "source_customer_id": _identifier(),
        "first_name": _text(NAME_PATTERN),
        "last_name": _text(NAME_PATTERN),
        "email": _text(EMAIL_PATTERN, *_EMAIL_CHECKS),
        "email_key": _text(EMAIL_PATTERN, *_EMAIL_CHECKS),
        "phone": _text(E164_PATTERN),
        "street": _text(),
        "city": _text(),
        "state": _text(STATE_PATTERN),
        "postcode": _text(POSTCODE_PATTERN),
        "country": _text(COUNTRY_PATTERN),
        "dob": _text(ISO_DATE_PATTERN, _on_distinct(_parses_as_date, "is_calendar_date")),
        "national_id": _text(NATIONAL_ID_PATTERN),
        "ip_address": pa.Column(
            object, nullable=True, checks=_on_distinct(_canonical_ip, "is_compressed_ip_address")
        ),
        "device_id": _identifier(),
        "anonymous_id": _identifier(),
        "updated_at": _text(ISO_TIMESTAMP_PATTERN),
        "_reasons": pa.Column(str, nullable=True, required=False),
        "_quarantine_reason": pa.Column(
            object,
            nullable=True,
            required=False,
            checks=pa.Check(lambda s: s.isna(), ignore_na=False, error="row_is_not_quarantined"),
        ),
    },
    strict=False,
    name="clean_profile",
)


def validate_clean(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` unchanged if every row meets the contract, else ``SchemaErrors`` naming every failure.

    Lazy validation so that one run reports all broken columns and values at once, which is
    what you need to fix a normaliser, rather than only the first.
    """
    return CLEAN_PROFILE_SCHEMA.validate(df, lazy=True)
