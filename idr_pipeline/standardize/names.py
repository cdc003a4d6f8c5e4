"""Person names: one display spelling per name, and a letters-only key for matching.

Sources disagree on accents ('José'/'Jose'), case ('SMITH'), honorifics ('Dr. Smith') and
punctuation ('Smith, Jr.'); none of these change who the person is, so they are folded away.
Generational suffixes *do* tell a father from his son, so they are kept, in one spelling, at
the end of the name.
"""

from __future__ import annotations

import re
from functools import lru_cache

from idr_pipeline.standardize.base import (
    EMPTY,
    INVALID_NAME,
    PLACEHOLDER,
    Normalized,
    collapse_whitespace,
    display_case,
    fold,
    is_placeholder,
)

TITLES: frozenset[str] = frozenset(
    {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "rev", "mister", "doctor", "professor"}
)
SUFFIXES: dict[str, str] = {
    "jr": "Jr",
    "junior": "Jr",
    "sr": "Sr",
    "senior": "Sr",
    "ii": "II",
    "2nd": "II",
    "iii": "III",
    "3rd": "III",
    "iv": "IV",
    "4th": "IV",
}
# Strings that fill a mandatory name box without naming anyone.
NAME_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "test",
        "testing",
        "tester",
        "asdf",
        "qwerty",
        "name",
        "first",
        "last",
        "firstname",
        "lastname",
        "first name",
        "last name",
        "fname",
        "lname",
        "no name",
        "noname",
        "anonymous",
        "customer",
        "user",
        "x",
        "xx",
    }
)

_SEPARATORS = re.compile(r"[.,/_&+;:()\[\]{}\"]")
_NOT_NAME_CHAR = re.compile(r"[^A-Za-z'\-]")
_REPEATED_PUNCT = re.compile(r"([-'])[-']+")
_NON_LETTER = re.compile(r"[^a-z]")


def normalize_name(value: str | None) -> Normalized:
    """Display form of a first or last name, or why the value is not a name."""
    if value is None:
        return EMPTY
    return _normalize_name(value)


@lru_cache(maxsize=65536)
def _normalize_name(value: str) -> Normalized:
    text = collapse_whitespace(value)
    if not text:
        return EMPTY
    if is_placeholder(text) or fold(text).lower() in NAME_PLACEHOLDERS:
        return Normalized(None, PLACEHOLDER)
    names, suffixes = _tokens(fold(text).replace("`", "'"))
    while names and names[0].lower() in TITLES:
        names.pop(0)
    if not names:
        return Normalized(None, INVALID_NAME)
    letters = _NON_LETTER.sub("", "".join(names).lower())
    if " ".join(names).lower() in NAME_PLACEHOLDERS or (len(letters) >= 3 and len(set(letters)) == 1):
        return Normalized(None, PLACEHOLDER)
    return Normalized(" ".join([display_case(n) for n in names] + suffixes), None)


def _tokens(text: str) -> tuple[list[str], list[str]]:
    """Split into name words and (de-duplicated, canonical) generational suffixes."""
    names: list[str] = []
    suffixes: list[str] = []
    for raw in _SEPARATORS.sub(" ", text).split():
        word = _REPEATED_PUNCT.sub(r"\1", _NOT_NAME_CHAR.sub("", raw)).strip("-'")
        # Looked up before and after cleaning: '3rd' needs its digit, while 'ii6' only becomes
        # a suffix once the stray digit is gone (and would turn into one on a second pass).
        suffix = SUFFIXES.get(raw.lower()) or SUFFIXES.get(word.lower())
        if suffix is not None:
            if suffix not in suffixes:
                suffixes.append(suffix)
            continue
        if any(c.isalpha() for c in word):
            names.append(word)
    return names, suffixes


def name_match_key(name: str | None) -> str | None:
    """Lower-case letters only, so 'Mary-Jane O'Neil' and 'MARYJANE ONEIL' collide."""
    normalized = normalize_name(name).value
    if normalized is None:
        return None
    return _NON_LETTER.sub("", normalized.lower()) or None
