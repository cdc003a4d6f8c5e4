"""Countries as ISO 3166-1 alpha-2 codes, from whatever name or code a source used.

The ISO names and codes come from the vendored :mod:`iso3166` table; the alias table adds the everyday names ISO does
not use ('UK', 'Russia', 'Holland'). A value we cannot place is rejected rather than guessed,
because the country drives how phone numbers and postcodes of the same row are read.
"""

from __future__ import annotations

import re
from functools import lru_cache

from idr_pipeline.standardize.base import (
    EMPTY,
    PLACEHOLDER,
    UNKNOWN_COUNTRY,
    Normalized,
    collapse_whitespace,
    fold,
    is_placeholder,
)
from idr_pipeline.standardize.iso3166 import COUNTRIES

COUNTRY_ALIASES: dict[str, str] = {
    "UK": "GB",
    "GREAT BRITAIN": "GB",
    "BRITAIN": "GB",
    "ENGLAND": "GB",
    "SCOTLAND": "GB",
    "WALES": "GB",
    "NORTHERN IRELAND": "GB",
    "AMERICA": "US",
    "UNITED STATES": "US",
    "UNITED STATES OF AMERICA": "US",
    "US OF A": "US",
    "DEUTSCHLAND": "DE",
    "ESPANA": "ES",
    "HOLLAND": "NL",
    "RUSSIA": "RU",
    "TURKEY": "TR",
    "MACEDONIA": "MK",
    "SWAZILAND": "SZ",
    "VATICAN": "VA",
    "VATICAN CITY": "VA",
    "IVORY COAST": "CI",
    "CAPE VERDE": "CV",
    "MICRONESIA": "FM",
    "PALESTINE": "PS",
    "BRUNEI": "BN",
    "BURMA": "MM",
    "EAST TIMOR": "TL",
    "SOUTH KOREA": "KR",
    "KOREA SOUTH": "KR",
    "NORTH KOREA": "KP",
    "CZECH REPUBLIC": "CZ",
    "UAE": "AE",
}

_NON_WORD = re.compile(r"[^A-Z0-9 ]")
_SPACED_INITIALS = re.compile(r"^(?:[A-Z] )+[A-Z]$")


def _key(text: str) -> str:
    """Comparable form: ASCII, upper, no punctuation, 'U S A' -> 'USA', no leading 'THE'."""
    key = collapse_whitespace(_NON_WORD.sub(" ", fold(text).upper().replace(".", "")))
    if _SPACED_INITIALS.match(key):
        key = key.replace(" ", "")
    return key.removeprefix("THE ")


def _build_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for alpha_2, _, names in COUNTRIES:
        for name in names:
            index[_key(name)] = alpha_2
    for alpha_2, alpha_3, _ in COUNTRIES:  # codes win over names when they collide
        index[alpha_3] = alpha_2
        index[alpha_2] = alpha_2
    index.update(COUNTRY_ALIASES)
    return index


_INDEX: dict[str, str] = _build_index()


def normalize_country(value: str | None) -> Normalized:
    """ISO alpha-2 code ('United States', 'USA', 'u.s.' -> 'US'), or ``unknown_country``."""
    if value is None:
        return EMPTY
    return _normalize_country(value)


@lru_cache(maxsize=4096)
def _normalize_country(value: str) -> Normalized:
    text = collapse_whitespace(value)
    if not text:
        return EMPTY
    if is_placeholder(text):
        return Normalized(None, PLACEHOLDER)
    code = _INDEX.get(_key(text))
    return Normalized(code, None) if code else Normalized(None, UNKNOWN_COUNTRY)
