"""Phone numbers: one E.164 string per line, whatever punctuation the source used.

Parsing and validity come from ``phonenumbers`` (Google's libphonenumber metadata), which knows
each country's numbering plan; a hand-written regex would accept impossible numbers such as
'0000000000' or reject legitimate foreign ones. Extensions are dropped because they identify a
desk on a switchboard, not a person, and E.164 has no place for them.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat

from idr_pipeline.standardize.base import EMPTY, INVALID_NUMBER, PLACEHOLDER, Normalized, is_placeholder
from idr_pipeline.standardize.canonical import arrow_strings, true_where

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
    """``is_valid_number_for_region(number, region)``: the region's country code, the general
    pattern, then any type's."""
    general, types = _region_descs(region)
    nsn = phonenumbers.national_significant_number(number)
    return (
        general is not None
        and number.country_code == _country_code(region)
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
def _country_code(region: str) -> int:
    return phonenumbers.country_code_for_valid_region(region)


@cache
def _main_region(country_code: int) -> str | None:
    """The region ``region_code_for_number`` tries first, when it is decided by full validation."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return None
    metadata = PhoneMetadata.metadata_for_region(regions[0], None)
    return regions[0] if metadata is not None and metadata.leading_digits is None else None


# What ``_cache_key`` reads as punctuated digits, in ASCII only: a subset of _PUNCTUATED_DIGITS
# (no leading space, no Unicode space), so the two readings of such a value cannot differ.
_ASCII_PUNCTUATED = r"^\+?[ ().\-]*[0-9][0-9 ().\-]*$"
_ASCII_PUNCTUATION = r"[ ().\-]"


def fast_e164(values: np.ndarray, default_region: str) -> tuple[np.ndarray, np.ndarray]:
    """(done, E.164) for the values that ``normalize_phone`` reads as a valid +1 number.

    Nearly every phone of a North American customer file is ten digits in one of a handful of
    punctuations, nearly all distinct, and the Python path (cache key, parse, validity regexes,
    formatting) is a chain of Python calls for each. Here all of a batch's distinct values take
    the same steps as Arrow kernels: the cache key of ``_cache_key`` (for a value of ASCII
    digits and punctuation it is the value without punctuation, with '+1' for ten national
    digits in a North American region), then the main region's validity patterns of
    ``_valid_in`` (RE2 and Python's ``re`` agree on whether these plain regular patterns match a
    string of ASCII digits). For such a key ``_normalize_phone`` returns ``'+1' + nsn``, which
    is the key itself, because the E.164 format of a +1 number is '+1' and its national number.
    Only values found valid are marked done; every other value is left for ``normalize_phone``,
    which then decides alone.
    """
    done = np.zeros(len(values), dtype=bool)
    main = _main_region(1)
    text = arrow_strings(values) if main is not None else None
    if text is None:
        return done, values
    digits = pc.replace_substring_regex(text, _ASCII_PUNCTUATION, "")
    e164 = pc.match_substring_regex(digits, r"^\+1[2-9][0-9]{9}$")
    keys = digits
    if _region(default_region) in _NANP_REGIONS:
        national = pc.match_substring_regex(digits, r"^1?[2-9][0-9]{9}$")
        plus_one = pc.binary_join_element_wise("+1", pc.utf8_slice_codeunits(digits, -10), "")
        keys = pc.if_else(national, plus_one, digits)
        e164 = pc.or_(e164, national)
    candidate = pc.and_(pc.match_substring_regex(text, _ASCII_PUNCTUATED), e164)
    valid = pc.and_(candidate, _valid_nsn_in(pc.utf8_slice_codeunits(keys, 2), main))
    done = true_where(valid)
    return done, np.asarray(keys.to_numpy(zero_copy_only=False), dtype=object)


def _valid_nsn_in(nsn: pa.Array, region: str) -> pa.Array:
    """``_valid_in`` over national significant numbers of ASCII digits, with RE2."""
    general, types = _region_descs(region)
    if general is None:
        return pa.array([False] * len(nsn), type=pa.bool_())
    matches = [_matches_desc_re2(nsn, desc) for desc in types]
    any_type = matches[0] if matches else pa.array([False] * len(nsn), type=pa.bool_())
    for found in matches[1:]:
        any_type = pc.or_(any_type, found)
    return pc.and_(_matches_desc_re2(nsn, general), any_type)


def _matches_desc_re2(nsn: pa.Array, desc: _Desc) -> pa.Array:
    lengths, pattern = desc
    matched = pc.match_substring_regex(nsn, f"^(?:{pattern.pattern})$")
    if not lengths:
        return matched
    return pc.and_(pc.is_in(pc.utf8_length(nsn), value_set=pa.array(sorted(lengths), pa.int32())), matched)
