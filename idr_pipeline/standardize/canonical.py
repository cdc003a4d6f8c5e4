"""Vectorized *fast accept* for values a normalizer would return unchanged, with no reason.

Record ids, customer, device and anonymous ids and IP addresses are nearly all distinct, so
factorizing a batch saves nothing there, and nearly all of them are already in canonical form:
the per-value Python call was the whole cost. Each predicate here tests all distinct values of
a column at once with Arrow's RE2 kernels and may only accept a value ``v`` when the field's
normalizer gives ``Normalized(v, None)`` (the property tests hold them to that); whatever it
does not accept still goes through the normalizer, so refusing too much costs only time.

The identifier and IP tests accept only ASCII, where Python's Unicode ``str.lower`` and
``re.IGNORECASE`` agree with Arrow's ASCII-only ``ascii_lower`` and RE2 (the Kelvin sign lowers to
'k' in Python, so 'UN\\u212a' is the placeholder 'unk'). The key test accepts any text whose only
whitespace is single ASCII spaces between words, spelled out code point by code point since RE2's
``\\s`` misses the Unicode spaces ``str.split`` honors.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from idr_pipeline.standardize.base import GENERIC_PLACEHOLDERS
from idr_pipeline.standardize.identifiers import (
    MAX_ID_LENGTH,
    PLACEHOLDER_IDS,
    PLACEHOLDER_SSNS,
    UUID_PATTERN,
)
from idr_pipeline.standardize.ip import PLACEHOLDER_IPS
from idr_pipeline.standardize.whitespace import WHITESPACE_ESCAPES

# What collapse_whitespace leaves alone: words joined by single ASCII spaces, nothing at the ends.
_TIDY = f"^[^{WHITESPACE_ESCAPES}]+(?: [^{WHITESPACE_ESCAPES}]+)*$"
_CONTROL = r"[\x00-\x1f\x7f]"
# The only spelling of a UUID that _normalize_identifier returns as it was given.
_CANONICAL_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_ID_PLACEHOLDERS = pa.array(sorted(GENERIC_PLACEHOLDERS | PLACEHOLDER_IDS))
# Octets without leading zeros, as ipaddress writes them back.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: A dotted quad without leading zeros, which is how ``ipaddress`` writes every IPv4 address
#: (RE2 syntax; the contract's fast accept uses it too).
DOTTED_QUAD = rf"^{_OCTET}(?:\.{_OCTET}){{3}}$"
_PLACEHOLDER_V4 = pa.array(sorted(str(address) for address in PLACEHOLDER_IPS if address.version == 4))


def tidy_keys(values: np.ndarray) -> np.ndarray:
    """Values ``_key_text`` (record_id, source) keeps as they are: non-empty and whitespace-tidy."""
    return _accepted(values, lambda text: [pc.match_substring_regex(text, _TIDY)])


def canonical_identifiers(values: np.ndarray) -> np.ndarray:
    """Values ``normalize_identifier`` keeps as they are (source customer, device, anonymous ids)."""
    return _accepted(values, _identifier_rules)


def _identifier_rules(text: pa.Array) -> list[pa.Array]:
    # One mask per rule of _normalize_identifier; on ASCII text that collapse_whitespace keeps,
    # each is exactly the normalizer's own test.
    uuid_like = pc.match_substring_regex(text, UUID_PATTERN.pattern, ignore_case=True)
    return [
        pc.string_is_ascii(text),
        pc.match_substring_regex(text, _TIDY),
        pc.invert(pc.is_in(pc.ascii_lower(text), value_set=_ID_PLACEHOLDERS)),
        pc.less_equal(pc.utf8_length(text), MAX_ID_LENGTH),
        pc.invert(pc.match_substring_regex(text, _CONTROL)),
        pc.or_(pc.invert(uuid_like), pc.match_substring_regex(text, _CANONICAL_UUID)),
        pc.invert(_filler(text)),
    ]


def canonical_ips(values: np.ndarray) -> np.ndarray:
    """Values ``normalize_ip`` keeps as they are, among the common case: plain dotted-quad IPv4.

    Anything else (padding, ports, brackets, IPv6, surrounding space) is left to the normalizer.
    """
    return _accepted(
        values,
        lambda text: [
            pc.match_substring_regex(text, DOTTED_QUAD),
            pc.invert(pc.is_in(text, value_set=_PLACEHOLDER_V4)),
        ],
    )


# Nine ASCII digits with an issued SSN's area (001-665, 667-899), group (01-99) and serial
# (0001-9999): the structural rules of identifiers._ssn.
_ISSUED_SSN = r"^(?:00[1-9]|0[1-9][0-9]|[1-5][0-9]{2}|6[0-57-9][0-9]|66[0-57-9]|[78][0-9]{2})(?:0[1-9]|[1-9][0-9])(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})$"
_PLACEHOLDER_SSNS = pa.array(sorted(PLACEHOLDER_SSNS))


def canonical_ssns(values: np.ndarray) -> np.ndarray:
    """Values ``normalize_national_id`` keeps as they are, among the common case: bare SSNs.

    Nine digits without separators are read by the SSN rules alone (they are neither another
    scheme's digit-only length nor letters), so an issued-looking number that is not a filler
    comes back unchanged. Anything else (separators, masks, other schemes) takes the normalizer.
    """
    return _accepted(
        values,
        lambda text: [
            pc.match_substring_regex(text, _ISSUED_SSN),
            pc.invert(pc.is_in(text, value_set=_PLACEHOLDER_SSNS)),
            pc.invert(_filler(text)),
        ],
    )


def _filler(text: pa.Array) -> pa.Array:
    """The repeated-character rule: three or more characters, one character bar the hyphens."""
    bare = pc.replace_substring(text, "-", "")
    length = pc.utf8_length(bare)
    first_repeated = pc.binary_repeat(pc.utf8_slice_codeunits(bare, 0, 1), length)
    return _all(
        [pc.greater_equal(pc.utf8_length(text), 3), pc.greater(length, 0), pc.equal(first_repeated, bare)]
    )


def arrow_strings(values: np.ndarray) -> pa.Array | None:
    """The values as Arrow strings, or None when any is not a str or not encodable as UTF-8.

    A lone surrogate (which JSON can carry) has no UTF-8 form; then none of the batch is
    accepted and the normalizer sees every value, as it did before this module.
    """
    if pd.api.types.infer_dtype(values, skipna=False) != "string":
        return None
    try:
        return pa.array(values, type=pa.string())
    except (ValueError, pa.ArrowException):  # UnicodeEncodeError is a ValueError
        return None


def _accepted(values: np.ndarray, rules: Callable[[pa.Array], list[pa.Array]]) -> np.ndarray:
    """True where every rule's mask holds; nothing is accepted when the batch has no Arrow form."""
    text = arrow_strings(values)
    if text is None:
        return np.zeros(len(values), dtype=bool)
    return true_where(_all(rules(text)))


def _all(masks: list[pa.Array]) -> pa.Array:
    result = masks[0]
    for mask in masks[1:]:
        result = pc.and_(result, mask)
    return result


def true_where(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow boolean mask as numpy, a missing verdict read as False (not accepted)."""
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)
