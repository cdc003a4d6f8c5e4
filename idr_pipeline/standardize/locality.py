"""City and state/province: the parts of an address people spell most inconsistently.

States are reduced to their two-letter postal codes because sources mix 'California', 'Calif.'
and 'CA'. Canadian provinces are included because their codes never collide with US ones.
Values we do not recognize are kept (upper-cased) rather than rejected: a foreign region name
is still useful evidence even if it has no US-style code.
"""

from __future__ import annotations

import re
from functools import lru_cache

from idr_pipeline.standardize.base import (
    EMPTY,
    INVALID_CITY,
    INVALID_STATE,
    PLACEHOLDER,
    Normalized,
    collapse_whitespace,
    display_case,
    fold,
    is_placeholder,
)

US_STATES: dict[str, str] = {
    "AL": "Alabama",
    "AK": "Alaska",
    "AZ": "Arizona",
    "AR": "Arkansas",
    "CA": "California",
    "CO": "Colorado",
    "CT": "Connecticut",
    "DE": "Delaware",
    "DC": "District of Columbia",
    "FL": "Florida",
    "GA": "Georgia",
    "HI": "Hawaii",
    "ID": "Idaho",
    "IL": "Illinois",
    "IN": "Indiana",
    "IA": "Iowa",
    "KS": "Kansas",
    "KY": "Kentucky",
    "LA": "Louisiana",
    "ME": "Maine",
    "MD": "Maryland",
    "MA": "Massachusetts",
    "MI": "Michigan",
    "MN": "Minnesota",
    "MS": "Mississippi",
    "MO": "Missouri",
    "MT": "Montana",
    "NE": "Nebraska",
    "NV": "Nevada",
    "NH": "New Hampshire",
    "NJ": "New Jersey",
    "NM": "New Mexico",
    "NY": "New York",
    "NC": "North Carolina",
    "ND": "North Dakota",
    "OH": "Ohio",
    "OK": "Oklahoma",
    "OR": "Oregon",
    "PA": "Pennsylvania",
    "RI": "Rhode Island",
    "SC": "South Carolina",
    "SD": "South Dakota",
    "TN": "Tennessee",
    "TX": "Texas",
    "UT": "Utah",
    "VT": "Vermont",
    "VA": "Virginia",
    "WA": "Washington",
    "WV": "West Virginia",
    "WI": "Wisconsin",
    "WY": "Wyoming",
    "AS": "American Samoa",
    "GU": "Guam",
    "MP": "Northern Mariana Islands",
    "PR": "Puerto Rico",
    "VI": "Virgin Islands",
    "AA": "Armed Forces Americas",
    "AE": "Armed Forces Europe",
    "AP": "Armed Forces Pacific",
}
CA_PROVINCES: dict[str, str] = {
    "AB": "Alberta",
    "BC": "British Columbia",
    "MB": "Manitoba",
    "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador",
    "NS": "Nova Scotia",
    "NT": "Northwest Territories",
    "NU": "Nunavut",
    "ON": "Ontario",
    "PE": "Prince Edward Island",
    "QC": "Quebec",
    "SK": "Saskatchewan",
    "YT": "Yukon",
}
# Spellings beyond the official names that show up in real data.
STATE_ALIASES: dict[str, str] = {
    "WASHINGTON DC": "DC",
    "WASHINGTON D C": "DC",
    "D C": "DC",
    "US VIRGIN ISLANDS": "VI",
    "NEWFOUNDLAND": "NL",
    "YUKON TERRITORY": "YT",
    "PQ": "QC",
    "CALIF": "CA",
    "MASS": "MA",
    "PENN": "PA",
    "FLA": "FL",
    "ILL": "IL",
    "WASH": "WA",
    "TENN": "TN",
    "TEX": "TX",
}

_NON_WORD = re.compile(r"[^A-Z0-9 ]")
_CITY_SEPARATORS = re.compile(r"[.,/_;:]")
_NOT_CITY_CHAR = re.compile(r"[^A-Za-z0-9 '-]")


def _state_key(text: str) -> str:
    return collapse_whitespace(_NON_WORD.sub(" ", fold(text).upper().replace(".", "")))


_STATE_INDEX: dict[str, str] = {
    **{code: code for code in (*US_STATES, *CA_PROVINCES)},
    **{_state_key(name): code for code, name in (*US_STATES.items(), *CA_PROVINCES.items())},
    **STATE_ALIASES,
}


def normalize_city(value: str | None) -> Normalized:
    """ASCII, title-cased city name ('SAN  FRANCISCO' -> 'San Francisco', 'St. Louis' -> 'St Louis')."""
    if value is None:
        return EMPTY
    return _normalize_city(value)


@lru_cache(maxsize=65536)
def _normalize_city(value: str) -> Normalized:
    text = collapse_whitespace(value)
    if not text:
        return EMPTY
    if is_placeholder(text):
        return Normalized(None, PLACEHOLDER)
    words = _NOT_CITY_CHAR.sub("", _CITY_SEPARATORS.sub(" ", fold(text))).split()
    words = [w for w in (w.strip("-'") for w in words) if w]
    if not any(c.isalpha() for w in words for c in w):
        return Normalized(None, INVALID_CITY)
    return Normalized(" ".join(display_case(w) for w in words), None)


def normalize_state(value: str | None) -> Normalized:
    """Two-letter code for US states and Canadian provinces; anything else upper-cased as is."""
    if value is None:
        return EMPTY
    return _normalize_state(value)


@lru_cache(maxsize=4096)
def _normalize_state(value: str) -> Normalized:
    text = collapse_whitespace(value)
    if not text:
        return EMPTY
    if is_placeholder(text):
        return Normalized(None, PLACEHOLDER)
    key = _state_key(text)
    if not key:
        return Normalized(None, INVALID_STATE)
    return Normalized(_STATE_INDEX.get(key, key), None)
