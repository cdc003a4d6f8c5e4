"""Phone numbers: one E.164 string per line, whatever punctuation the source used.

Parsing and validity come from ``phonenumbers`` (Google's libphonenumber metadata), which knows
each country's numbering plan; a hand-written regex would accept impossible numbers such as
'0000000000' or reject legitimate foreign ones. Extensions are dropped because they identify a
desk on a switchboard, not a person, and E.164 has no place for them.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat

from idr_pipeline.standardize.base import EMPTY, INVALID_NUMBER, PLACEHOLDER, Normalized, is_placeholder

E164_PATTERN = re.compile(r"^\+[1-9]\d{6,14}$")
_LEADING_00 = re.compile(r"^[\s(]*00\D*")
_UNKNOWN_REGION = "ZZ"
_PUNCTUATED_DIGITS = re.compile(r"^\s*\+?[\s().\-]*[0-9][0-9\s().\-]*$")
_NUMBER_PUNCTUATION = re.compile(r"[\s().\-]")
_NANP_NATIONAL = re.compile(r"^1?([2-9][0-9]{9})$")
_E164_NANP = re.compile(r"^\+1[2-9][0-9]{9}$")
_NANP_REGIONS: frozenset[str] = frozenset(
    r for r in phonenumbers.SUPPORTED_REGIONS if phonenumbers.country_code_for_region(r) == 1
)


def normalize_phone(value: str | None, default_region: str = "US") -> Normalized:
    """E.164 form of ``value``; numbers without a country code are read as ``default_region``."""
    if value is None:
        return EMPTY
    region = _region(default_region)
    return _normalize_phone(_cache_key(value, region), region)


def _cache_key(text: str, region: str) -> str:
    """One spelling per number before the (slow) parse, so each number is parsed once per worker.

    '(415) 555-2671', '1-415-555-2671' and '+1 415 555 2671' all become '+14155552671'. Only
    spaces, dots, dashes and brackets are dropped (libphonenumber ignores them anyway), whereas
    letters (extensions, vanity numbers) and '/' (a second number) change the reading. A bare
    ten-digit number in a North American region is exactly what libphonenumber reads as +1.
    """
    if not _PUNCTUATED_DIGITS.match(text):
        return text
    digits = _NUMBER_PUNCTUATION.sub("", text)
    if digits.startswith("00") and not _LEADING_00.match(text):
        return text  # squeezing '0.0...' would wrongly trigger the '00' international reading
    if region in _NANP_REGIONS and (national := _NANP_NATIONAL.match(digits)):
        return "+1" + national[1]
    return digits


def _region(region: str | None) -> str:
    """An unknown region would make phonenumbers raise; fall back to 'international only'."""
    code = (region or "").strip().upper()
    return code if code in phonenumbers.SUPPORTED_REGIONS else _UNKNOWN_REGION


@lru_cache(maxsize=65536)
def _normalize_phone(value: str, region: str) -> Normalized:
    text = value.strip()
    if not text:
        return EMPTY
    if is_placeholder(text):
        return Normalized(None, PLACEHOLDER)
    number = _parse_valid(text, region)
    if number is None and _LEADING_00.match(text):
        # '00' is the international prefix almost everywhere except North America (011), so
        # '001-415-...' written by a European agent is still a +1 number for a US default region.
        number = _parse_valid("+" + _LEADING_00.sub("", text, count=1), region)
    if number is None:
        return Normalized(None, INVALID_NUMBER)
    return Normalized(phonenumbers.format_number(number, PhoneNumberFormat.E164), None)


def _parse_valid(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    if _E164_NANP.match(text):
        # What parse makes of '+1' and ten digits starting 2-9 (no prefix to strip, no leading
        # zero, no extension), without its regex passes: half the time of a US number.
        number = phonenumbers.PhoneNumber(country_code=1, national_number=int(text[2:]))
        return number if _is_valid(number) else None
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    return number if _is_valid(number) else None


def _is_valid(number: phonenumbers.PhoneNumber) -> bool:
    """``phonenumbers.is_valid_number``, answered from the country code's main region first.

    For a shared country code (+1 covers 25 regions) ``is_valid_number`` first finds the region
    by testing the number against each region's patterns, main region first, then tests it again
    against the region found: a valid US number was matched twice. When the main region has no
    leading-digits rule, a number valid there is exactly a number ``is_valid_number`` accepts;
    any other number gets the full test.
    """
    main = _main_region(number.country_code)
    if main is not None and _valid_in(number, main):
        return True
    return phonenumbers.is_valid_number(number)


# Number types in the order a customer file's numbers meet them: libphonenumber tries premium
# rate, toll free and six rarer types before fixed line (eight regex tests for a US landline),
# because it wants the type; validity only needs to know that some type matches.
_TYPE_ORDER = (
    "fixed_line", "mobile", "toll_free", "voip", "premium_rate", "shared_cost",
    "personal_number", "pager", "uan", "voicemail",
)  # fmt: skip

_Desc = tuple[frozenset[int], re.Pattern[str]]


def _valid_in(number: phonenumbers.PhoneNumber, region: str) -> bool:
    """``is_valid_number_for_region(number, region)``: the general pattern, then any type's."""
    general, types = _region_descs(region)
    nsn = phonenumbers.national_significant_number(number)
    return (
        general is not None
        and _matches_desc(nsn, general)
        and any(_matches_desc(nsn, desc) for desc in types)
    )


def _matches_desc(nsn: str, desc: _Desc) -> bool:
    lengths, pattern = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


@cache
def _region_descs(region: str) -> tuple[_Desc | None, tuple[_Desc, ...]]:
    """The region's general description and its number types', patterns compiled once."""
    metadata = PhoneMetadata.metadata_for_region(region, None)

    def desc(name: str) -> _Desc | None:
        found = getattr(metadata, name, None)
        if found is None or not found.national_number_pattern:
            return None  # libphonenumber: an empty pattern matches nothing
        return frozenset(found.possible_length), re.compile(found.national_number_pattern)

    types = tuple(d for d in map(desc, _TYPE_ORDER) if d is not None)
    return (desc("general_desc") if metadata is not None else None), types


@cache
def _main_region(country_code: int) -> str | None:
    """The region ``region_code_for_number`` tries first, when it is decided by full validation."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return None
    metadata = PhoneMetadata.metadata_for_region(regions[0], None)
    return regions[0] if metadata is not None and metadata.leading_digits is None else None
