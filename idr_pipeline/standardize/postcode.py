"""Postal codes, read according to the row's country.

The same string means different things per country ('94105-1234' is a US ZIP+4 whose first five
digits locate the person; 'SW1A1AA' is a UK code that needs its space back to compare equal to
'SW1A 1AA'), so the caller passes the country (or the default region when the row has none).
"""

from __future__ import annotations

import re
from functools import lru_cache

from idr_pipeline.standardize.base import (
    EMPTY,
    INVALID_POSTCODE,
    PLACEHOLDER,
    Normalized,
    collapse_whitespace,
    fold,
    is_placeholder,
)

# Countries and territories that use US ZIP codes.
ZIP_COUNTRIES: frozenset[str] = frozenset({"US", "PR", "GU", "VI", "AS", "MP", "UM"})

_ZIP = re.compile(r"^(\d{5})(?:-?\d{4})?$")
_ZIP_LOST_ZERO = re.compile(r"^\d{4}$")
_GB = re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?)(\d[A-Z]{2})$")
_CA = re.compile(r"^([A-Z]\d[A-Z])(\d[A-Z]\d)$")
_GENERIC = re.compile(r"^[A-Z0-9][A-Z0-9 -]{1,11}$")
_NOT_POSTCODE_CHAR = re.compile(r"[^A-Z0-9 -]")


def normalize_postcode(value: str | None, country: str | None = "US") -> Normalized:
    """Canonical postcode for ``country`` (ISO alpha-2); ZIP+4 is cut to the 5-digit ZIP."""
    if value is None:
        return EMPTY
    return _normalize_postcode(value, (country or "").strip().upper())


@lru_cache(maxsize=65536)
def _normalize_postcode(value: str, country: str) -> Normalized:
    text = collapse_whitespace(value)
    if not text:
        return EMPTY
    if is_placeholder(text):
        return Normalized(None, PLACEHOLDER)
    text = collapse_whitespace(_NOT_POSTCODE_CHAR.sub("", fold(text).upper()))
    if country in ZIP_COUNTRIES:
        return _us_zip(text.replace(" ", ""))
    compact = text.replace(" ", "").replace("-", "")
    if country == "GB":
        match = _GB.match(compact)
        return Normalized(f"{match[1]} {match[2]}", None) if match else Normalized(None, INVALID_POSTCODE)
    if country == "CA":
        match = _CA.match(compact)
        return Normalized(f"{match[1]} {match[2]}", None) if match else Normalized(None, INVALID_POSTCODE)
    # Nearly every national postcode system uses digits; letters-only strings are typos or names.
    if not _GENERIC.match(text) or not any(c.isdigit() for c in text) or set(compact) == {"0"}:
        return Normalized(None, INVALID_POSTCODE)
    return Normalized(text, None)


def _us_zip(text: str) -> Normalized:
    if _ZIP_LOST_ZERO.match(text):
        # New England ZIPs start with 0; spreadsheets and JSON integers drop it ('2134').
        text = "0" + text
    match = _ZIP.match(text)
    if match is None or match[1] == "00000":
        return Normalized(None, INVALID_POSTCODE)
    return Normalized(match[1], None)
