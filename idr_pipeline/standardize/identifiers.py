"""Opaque identifiers: national ids, device ids, anonymous (cookie) ids and source customer ids.

These are strong linking keys: two records that share one are merged. So the normalizers here
are strict about fillers, because a filler shared by thousands of records ('000-00-0000', the
all-zero advertising id iOS reports when tracking is off) would collapse strangers into one
identity. Everything else is only tidied up, never reinterpreted.
"""

from __future__ import annotations

import re
from functools import lru_cache

from idr_pipeline.standardize.base import (
    EMPTY,
    INVALID_ID,
    INVALID_NATIONAL_ID,
    PLACEHOLDER,
    Normalized,
    collapse_whitespace,
    is_placeholder,
)

MAX_ID_LENGTH = 128
# SSNs published as examples (the 'Woolworth wallet' card, advertising samples), typed by many.
PLACEHOLDER_SSNS: frozenset[str] = frozenset({"123456789", "078051120", "219099999", "987654321"})
# Fillers for ids that are not caught by the generic list or the repeated-character rule.
PLACEHOLDER_IDS: frozenset[str] = frozenset({"0", "-1", "default", "anonymous", "guest", "test", "dummy"})

_SSN_SEPARATORS = re.compile(r"[\s.\-/]")
_SSN = re.compile(r"^[0-9]{9}$")
_DIGITS_OR_MASK = re.compile(r"^[0-9X]+$")
_FOREIGN_NATIONAL_ID = re.compile(r"^(?=.*\d)(?=.*[A-Z])[A-Z0-9]{6,20}$")
# Digit-only ids of another length are other countries' schemes (Australia's 7-8 digit ids,
# Sweden's 10-12 digit personnummer ...): kept as keys, without SSN rules.
_OTHER_DIGIT_ID = re.compile(r"^[0-9]{5,8}$|^[0-9]{10,20}$")
UUID_PATTERN = re.compile(
    r"^(?:urn:uuid:)?\{?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})\}?$",
    re.IGNORECASE,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_national_id(value: str | None) -> Normalized:
    """US SSN as nine bare digits ('123-45-6789' style input); other national ids upper-cased,
    digit-only ids of other lengths kept as digits.

    Digits-only rather than the dashed display form because sources disagree on punctuation
    and the key must be identical across them (and it matches the blocklist's spelling).
    """
    if value is None:
        return EMPTY
    return _normalize_national_id(value)


@lru_cache(maxsize=65536)
def _normalize_national_id(value: str) -> Normalized:
    text = collapse_whitespace(value)
    if not text:
        return EMPTY
    if is_placeholder(text):
        return Normalized(None, PLACEHOLDER)
    compact = _SSN_SEPARATORS.sub("", text).upper()
    if _OTHER_DIGIT_ID.match(compact):
        if len(set(compact)) == 1:
            return Normalized(None, PLACEHOLDER)
        return Normalized(compact, None)
    if _DIGITS_OR_MASK.match(compact):
        return _ssn(compact)
    if _FOREIGN_NATIONAL_ID.match(compact):
        # Letters and digits ('AB123456C', a UK National Insurance number): another country's
        # scheme, whose rules we do not know; kept as a key in one spelling.
        return Normalized(compact, None)
    return Normalized(None, INVALID_NATIONAL_ID)


def _ssn(digits: str) -> Normalized:
    """Structural SSN rules from the SSA: area 001-665/667-899, group 01-99, serial 0001-9999."""
    if not _SSN.match(digits):
        # Wrong length, or masked ('XXX-XX-1234'): not a usable key either way.
        return Normalized(None, INVALID_NATIONAL_ID)
    if len(set(digits)) == 1 or digits in PLACEHOLDER_SSNS:
        return Normalized(None, PLACEHOLDER)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        # 9xx areas are ITINs and test numbers, never issued as SSNs.
        return Normalized(None, INVALID_NATIONAL_ID)
    return Normalized(digits, None)


def normalize_identifier(value: str | None) -> Normalized:
    """Trimmed id; UUIDs in lower-case hyphenated form so iOS and Android spellings agree.

    Used for device ids, anonymous ids and source customer ids. Case is kept for non-UUIDs
    because a source system may well treat 'ab12' and 'AB12' as different customers.
    """
    if value is None:
        return EMPTY
    return _normalize_identifier(value)


@lru_cache(maxsize=65536)
def _normalize_identifier(value: str) -> Normalized:
    text = collapse_whitespace(value)
    if not text:
        return EMPTY
    if is_placeholder(text) or text.lower() in PLACEHOLDER_IDS:
        return Normalized(None, PLACEHOLDER)
    if len(text) > MAX_ID_LENGTH or _CONTROL.search(text):
        # Longer than any id scheme we ingest: a concatenated field or a pasted blob.
        return Normalized(None, INVALID_ID)
    if match := UUID_PATTERN.match(text):
        text = "-".join(match.groups()).lower()
    if len(text) >= 3 and len(set(text.replace("-", ""))) == 1:
        # '0000', 'xxxxxx', the nil UUID, 'ffffffff-ffff-...': fillers, not ids.
        return Normalized(None, PLACEHOLDER)
    return Normalized(text, None)
