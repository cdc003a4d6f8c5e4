"""Shared vocabulary for the field normalizers: the result type, reason codes, text helpers.

Every normalizer answers with the same small result so that the frame layer can treat all
fields alike and so a rejected value always says *why* it was rejected (the quarantine report
is built from these reasons, not from log lines).
"""

from __future__ import annotations

from typing import NamedTuple

from unidecode import unidecode


class Normalized(NamedTuple):
    """A normalized value, or the reason a present value could not be used.

    ``(None, None)`` means the input was empty: missing data is normal and not worth a reason,
    whereas garbage in a populated field is a data-quality signal worth reporting.
    """

    value: str | None
    reason: str | None = None


EMPTY = Normalized(None, None)

# Reason codes. Short and snake_case because they end up concatenated in `_reasons` strings.
PLACEHOLDER = "placeholder"
WRONG_TYPE = "wrong_type"
INVALID_SYNTAX = "invalid_syntax"
INVALID_NUMBER = "invalid_number"
INVALID_NAME = "invalid_name"
INVALID_STREET = "invalid_street"
INVALID_CITY = "invalid_city"
INVALID_STATE = "invalid_state"
INVALID_POSTCODE = "invalid_postcode"
UNKNOWN_COUNTRY = "unknown_country"
UNPARSEABLE_DATE = "unparseable_date"
FUTURE_DATE = "future_date"
BEFORE_1900 = "before_1900"
UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
IMPLAUSIBLE_TIMESTAMP = "implausible_timestamp"
INVALID_IP = "invalid_ip"
INVALID_NATIONAL_ID = "invalid_national_id"
INVALID_ID = "invalid_id"

ALL_REASONS: frozenset[str] = frozenset(
    {
        PLACEHOLDER,
        WRONG_TYPE,
        INVALID_SYNTAX,
        INVALID_NUMBER,
        INVALID_NAME,
        INVALID_STREET,
        INVALID_CITY,
        INVALID_STATE,
        INVALID_POSTCODE,
        UNKNOWN_COUNTRY,
        UNPARSEABLE_DATE,
        FUTURE_DATE,
        BEFORE_1900,
        UNPARSEABLE_TIMESTAMP,
        IMPLAUSIBLE_TIMESTAMP,
        INVALID_IP,
        INVALID_NATIONAL_ID,
        INVALID_ID,
    }
)

# Values people type when a form field is mandatory but they have nothing to give. Kept
# deliberately narrow ("na" is a Korean surname and Namibia's country code, so it is not here).
GENERIC_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "unknown",
        "unk",
        "null",
        "none",
        "nil",
        "nan",
        "n/a",
        "n.a.",
        "#n/a",
        "-",
        "--",
        "---",
        "?",
        "??",
        "???",
        ".",
        "undefined",
        "not available",
        "not applicable",
        "not provided",
        "not given",
        "unspecified",
        "tbd",
        "tba",
    }
)


def collapse_whitespace(text: str) -> str:
    """Trim and turn any run of whitespace (tabs, NBSP, newlines) into one space.

    ``str.split()`` splits on exactly the characters ``str.isspace`` accepts, which is what
    ``\\s`` matches in a ``str`` pattern, at a twentieth of the regex's cost: this runs on
    every distinct record id of every batch.
    """
    return " ".join(text.split())


def fold(text: str) -> str:
    """Transliterate to ASCII so 'José' and 'Jose' compare equal across sources."""
    return unidecode(text)


def is_placeholder(text: str) -> bool:
    """True for the generic 'nothing to say' tokens, whatever the field."""
    return collapse_whitespace(text).lower() in GENERIC_PLACEHOLDERS


def display_case(word: str) -> str:
    """Title case per hyphen part, capitalizing after an apostrophe only for O'/D'-style prefixes.

    ``str.title`` would give "O'neil" or "Mike'S"; a one-letter prefix before the apostrophe is
    the reliable sign of an Irish/French/Italian particle.
    """
    parts = []
    for part in word.split("-"):
        head, apostrophe, tail = part.lower().partition("'")
        if apostrophe and len(head) == 1 and head.isalpha():
            parts.append(f"{head.upper()}'{tail.capitalize()}")
        else:
            parts.append(part.capitalize())
    return "-".join(parts)
