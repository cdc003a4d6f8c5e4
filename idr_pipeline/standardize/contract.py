"""The contract a clean profile row satisfies, checked on every batch the Spark job emits.

The normalisers are meant to guarantee these shapes already; the schema is the independent
second opinion, so a regression in one normaliser fails the job loudly instead of quietly
seeding the identity graph with keys that can never match (a phone without '+', an upper-case
email). The patterns are deliberately simpler than the normalisers: they state the output
shape, not how to get there.
"""

from __future__ import annotations

import ipaddress
from datetime import date

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


def _is_lower(series: pd.Series) -> pd.Series:
    return series == series.str.lower()


def _is_iso_date(series: pd.Series) -> pd.Series:
    return series.map(_parses_as_date)


def _parses_as_date(text: str) -> bool:
    try:
        return date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def _is_canonical_ip(series: pd.Series) -> pd.Series:
    return series.map(_canonical_ip)


def _canonical_ip(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).compressed == text
    except ValueError:
        return False


def _uuid_is_lower(series: pd.Series) -> pd.Series:
    """A UUID-shaped id must be lower-case, or iOS and Android spellings would not join."""
    return ~series.str.match(UUID_LIKE_UPPER) | _is_lower(series)


def _text(pattern: str = TIDY_TEXT_PATTERN, *checks: pa.Check) -> pa.Column:
    return pa.Column(str, nullable=True, checks=[pa.Check.str_matches(pattern), *checks])


def _identifier() -> pa.Column:
    return _text(
        TIDY_TEXT_PATTERN,
        pa.Check.str_length(1, MAX_ID_LENGTH),
        pa.Check(_uuid_is_lower, error="uuid_is_lower_case"),
    )


_EMAIL_CHECKS = (pa.Check(_is_lower, error="is_lower_case"),)

CLEAN_PROFILE_SCHEMA = pa.DataFrameSchema(
    {
        "record_id": pa.Column(str, nullable=False, checks=pa.Check.str_matches(TIDY_TEXT_PATTERN)),
        "source": pa.Column(str, nullable=False, checks=pa.Check.str_matches(TIDY_TEXT_PATTERN)),
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
        "dob": _text(ISO_DATE_PATTERN, pa.Check(_is_iso_date, error="is_calendar_date")),
        "national_id": _text(NATIONAL_ID_PATTERN),
        "ip_address": pa.Column(
            str, nullable=True, checks=pa.Check(_is_canonical_ip, error="is_compressed_ip_address")
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
