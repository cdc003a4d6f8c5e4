"""Street lines in USPS Publication 28 style ('123 North Main Street, Apt. 4' -> '123 N Main St Apt 4').

Two sources rarely spell an address the same way; abbreviating suffixes, directionals and unit
designators the way the US Postal Service does makes equal addresses equal strings. A full
address parser (usaddress, libpostal) would be more thorough but costs a model call per row;
this positional rule set covers the spellings that actually differ between our sources.
"""

from __future__ import annotations

import re
from functools import lru_cache

from idr_pipeline.standardize.base import (
    EMPTY,
    INVALID_STREET,
    PLACEHOLDER,
    Normalized,
    collapse_whitespace,
    display_case,
    fold,
    is_placeholder,
)


def _table(groups: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Invert {abbreviation: spellings} into {lower-case spelling: abbreviation}."""
    table = {}
    for abbreviation, spellings in groups.items():
        for spelling in (abbreviation.lower(), *spellings):
            table[spelling] = abbreviation
    return table


# USPS Publication 28, appendix C1 (street suffixes), the commonly seen subset.
STREET_SUFFIXES: dict[str, str] = _table(
    {
        "Aly": ("alley", "allee", "ally"),
        "Ave": ("avenue", "av", "aven", "avenu", "avn", "avnue"),
        "Bch": ("beach",),
        "Blf": ("bluff",),
        "Blvd": ("boulevard", "boul", "boulv"),
        "Bnd": ("bend",),
        "Br": ("branch", "brnch"),
        "Brg": ("bridge", "brdge"),
        "Byp": ("bypass", "bypa", "bypas", "byps"),
        "Cir": ("circle", "circ", "circl", "crcl", "crcle"),
        "Cres": ("crescent", "crsent", "crsnt"),
        "Ct": ("court", "crt"),
        "Ctr": ("center", "center", "cent", "centr", "cntr", "cnter"),
        "Cv": ("cove",),
        "Cyn": ("canyon", "canyn", "cnyn"),
        "Dr": ("drive", "driv", "drv"),
        "Expy": ("expressway", "exp", "expr", "express", "expw"),
        "Fwy": ("freeway", "freewy", "frway", "frwy"),
        "Gdns": ("gardens", "gdn", "garden", "gardn", "grden", "grdn"),
        "Hts": ("heights", "ht"),
        "Hwy": ("highway", "highwy", "hiway", "hiwy", "hway"),
        "Jct": ("junction", "jction", "jctn", "junctn", "juncton"),
        "Ln": ("lane",),
        "Lndg": ("landing", "lndng"),
        "Loop": ("loops",),
        "Mnr": ("manor",),
        "Pkwy": ("parkway", "parkwy", "pkway", "pky", "parkways", "pkwys"),
        "Pl": ("place",),
        "Plz": ("plaza", "plza"),
        "Pt": ("point",),
        "Rd": ("road",),
        "Rdg": ("ridge", "rdge"),
        "Rte": ("route",),
        "Sq": ("square", "sqr", "sqre", "squ"),
        "St": ("street", "strt", "str", "stree"),
        "Ter": ("terrace", "terr"),
        "Tpke": ("turnpike", "trnpk", "turnpk"),
        "Trl": ("trail", "trails", "trls"),
        "Way": ("wy",),
        "Xing": ("crossing", "crssng"),
    }
)
DIRECTIONALS: dict[str, str] = _table(
    {
        "N": ("north",),
        "S": ("south",),
        "E": ("east",),
        "W": ("west",),
        "NE": ("northeast", "north-east"),
        "NW": ("northwest", "north-west"),
        "SE": ("southeast", "south-east"),
        "SW": ("southwest", "south-west"),
    }
)
# USPS Publication 28, appendix C2 (secondary unit designators).
UNIT_DESIGNATORS: dict[str, str] = _table(
    {
        "Apt": ("apartment", "#"),
        "Bldg": ("building",),
        "Dept": ("department",),
        "Fl": ("floor", "flr"),
        "Lot": (),
        "Ofc": ("office",),
        "Ph": ("penthouse",),
        "Rm": ("room",),
        "Spc": ("space",),
        "Ste": ("suite",),
        "Trlr": ("trailer",),
        "Unit": (),
    }
)

_PO_BOX = re.compile(r"\b(?:p\s*o|post\s+office)\s+box\b", re.IGNORECASE)
_SEPARATORS = re.compile(r"[.,;:]")
_HASH = re.compile(r"#")
_NOT_STREET_CHAR = re.compile(r"[^A-Za-z0-9 '#/&-]")
_ORDINAL = re.compile(r"^\d+(st|nd|rd|th)$", re.IGNORECASE)
# After _NOT_STREET_CHAR the text is ASCII, where these are str.isalnum and str.isdigit.
_ALNUM = re.compile(r"[A-Za-z0-9]")
_DIGIT = re.compile(r"[0-9]")


def normalize_street(value: str | None) -> Normalized:
    """USPS-style street line, or why the value is not an address."""
    if value is None:
        return EMPTY
    return _normalize_street(value)


@lru_cache(maxsize=65536)
def _normalize_street(value: str) -> Normalized:
    text = collapse_whitespace(value)
    if not text:
        return EMPTY
    if is_placeholder(text):
        return Normalized(None, PLACEHOLDER)
    text = _PO_BOX.sub(" PO Box ", _SEPARATORS.sub(" ", fold(text)))
    text = _NOT_STREET_CHAR.sub("", _HASH.sub(" # ", text))
    tokens = text.split()
    if not _ALNUM.search(text):
        return Normalized(None, INVALID_STREET)
    street, unit = _split_unit(tokens)
    words = _street_words(street) + _unit_words(unit)
    return Normalized(" ".join(words), None) if words else Normalized(None, INVALID_STREET)


def _split_unit(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Cut at the first unit designator that follows some street text."""
    for i, token in enumerate(tokens):
        if i > 0 and token.lower() in UNIT_DESIGNATORS:
            return tokens[:i], tokens[i:]
    return tokens, []


def _street_words(tokens: list[str]) -> list[str]:
    """Abbreviate suffix and directionals only where USPS would: around the street name.

    'North Street' keeps 'North' because it *is* the name; 'North Main Street' becomes
    'N Main St'. Positions never move, so running this twice changes nothing.
    """
    words = [_case(t) for t in tokens]
    start = 1 if words and _DIGIT.search(words[0]) else 0
    end = len(words)  # exclusive end of the core name
    if end - start >= 2 and words[end - 1].lower() in DIRECTIONALS:
        words[end - 1] = DIRECTIONALS[words[end - 1].lower()]
        end -= 1
    if end - start >= 2 and words[end - 1].lower() in STREET_SUFFIXES:
        words[end - 1] = STREET_SUFFIXES[words[end - 1].lower()]
        end -= 1
    if end - start >= 2 and words[start].lower() in DIRECTIONALS:
        words[start] = DIRECTIONALS[words[start].lower()]
    for i in range(len(words) - 1):
        if words[i].lower() == "po" and words[i + 1].lower() == "box":
            words[i] = "PO"
    return words


def _unit_words(tokens: list[str]) -> list[str]:
    """Designators abbreviated; a '#' right after a designator ('Apt # 4') is noise."""
    words: list[str] = []
    for token in tokens:
        designator = UNIT_DESIGNATORS.get(token.lower())
        if designator is not None:
            if not (token == "#" and words and words[-1] in UNIT_DESIGNATORS.values()):
                words.append(designator)
        else:
            words.append(_case(token))
    return words


def _case(token: str) -> str:
    """'1ST' -> '1st', '4b' -> '4B', 'MAIN' -> 'Main'.

    House numbers are most of the distinct tokens and keep their spelling; the words repeat
    across streets (names, suffixes), so each is cased once per worker.
    """
    if token.isdigit():  # ASCII digits only here: upper-casing leaves them as they are
        return token
    return _case_word(token)


@lru_cache(maxsize=65536)
def _case_word(token: str) -> str:
    if _ORDINAL.match(token):
        return token.lower()
    if any(c.isdigit() for c in token):
        return token.upper()
    return display_case(token)
