"""The vectorized fast accepts: whatever one accepts, its normalizer returns unchanged with no reason.

That one-way promise is all ``standardize_frame`` relies on to skip the normalizer for accepted
values, so it is checked on text built from the traps: Unicode spaces RE2's ``\\s`` misses,
placeholders in any case, fillers, over-long ids, control characters, UUID spellings, padded or
out-of-range IPv4, ports, IPv6 and non-ASCII letters whose lower case differs from ASCII's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from idr_pipeline.standardize import frame, normalize_identifier, normalize_ip, standardize_frame
from idr_pipeline.standardize.base import GENERIC_PLACEHOLDERS, Normalized
from idr_pipeline.standardize.canonical import canonical_identifiers, canonical_ips, tidy_keys
from idr_pipeline.standardize.identifiers import MAX_ID_LENGTH, PLACEHOLDER_IDS

FAST_PATHS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[str], Normalized]]] = {
    "key": (tidy_keys, frame._key_text),
    "identifier": (canonical_identifiers, normalize_identifier),
    "ip": (canonical_ips, normalize_ip),
}

_SPACES = [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u1680"]
_SPACES += ["\u2000", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
# Not spaces, but close: zero-width space and BOM are not str.isspace.
_NEAR_SPACES = ["\u200b", "\ufeff"]
_CONTROLS = ["\x00", "\x01", "\x1b", "\x7f"]
# Non-ASCII characters close to ASCII ones: dotted and dotless i, Kelvin sign, long s, fullwidth
# A, sharp s, a titlecase digraph, an Arabic-Indic digit.
_UNICODE = ["é", "\u0130", "\u0131", "\u212a", "\u017f", "\uff21", "ß", "ǅ", "٣"]
_PUNCTUATION = ["-", "--", ".", ":", "/", "{", "}", "[", "]", "?", "#", "_", "urn:uuid:"]


# Non-ASCII characters that str.lower() turns into ASCII ones: the Kelvin sign alone, 'UN\u212a'
# lowers to the placeholder 'unk' where Arrow's ascii_lower leaves it alone.
_LOWERING_TO_ASCII = {
    chr(c).lower(): chr(c) for c in range(0x80, sys.maxunicode + 1) if chr(c).lower().isascii()
}


@st.composite
def _any_case(draw: st.DrawFn, text: str) -> str:
    spellings = [sorted({c, c.upper(), _LOWERING_TO_ASCII.get(c, c)}) for c in text]
    return "".join(draw(st.sampled_from(options)) for options in spellings)


def _placeholders() -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(GENERIC_PLACEHOLDERS | PLACEHOLDER_IDS)).flatmap(_any_case)


@st.composite
def _uuids(draw: st.DrawFn) -> str:
    hex_ = draw(st.uuids()).hex
    if draw(st.booleans()):
        hex_ = draw(st.sampled_from("0fa")) * 32  # the nil UUID and other fillers
    groups = [hex_[:8], hex_[8:12], hex_[12:16], hex_[16:20], hex_[20:]]
    groups = [group.upper() if draw(st.booleans()) else group for group in groups]
    text = draw(st.sampled_from(["-", ""])).join(groups)
    text = draw(st.sampled_from([text, "{" + text + "}", "{" + text, "urn:uuid:" + text]))
    return draw(_any_case(text)) if draw(st.booleans()) else text


@st.composite
def _ipv4(draw: st.DrawFn) -> str:
    octet = st.integers(0, 255) | st.sampled_from([0, 255, 256, 999])
    octets = draw(st.lists(octet, min_size=4, max_size=4) | st.lists(octet, min_size=3, max_size=5))
    text = ".".join(str(o).zfill(draw(st.sampled_from([1, 1, 1, 2, 3]))) for o in octets)
    if draw(st.booleans()):
        text += f":{draw(st.integers(0, 99999))}"
    return text


_IPS = (
    _ipv4()
    | st.ip_addresses().map(str)
    | st.ip_addresses(v=6).map(lambda a: f"[{a}]:443")
    | st.sampled_from(["0.0.0.0", "255.255.255.255", "127.0.0.1", "::", "::1", "::ffff:1.2.3.4", "localhost"])
)
_FILLERS = st.builds(
    lambda char, n, hyphens: "-".join([char * n] * hyphens),
    st.sampled_from("0x9-?.aZ"),
    st.integers(1, 8),
    st.integers(1, 4),
)
_WORDS = st.text(alphabet="aZ09-_.@:", min_size=1, max_size=6)
_PIECES = st.one_of(
    _WORDS,
    st.sampled_from(_SPACES + _NEAR_SPACES + _CONTROLS + _UNICODE + _PUNCTUATION),
    _placeholders(),
    _uuids(),
    _IPS,
    _FILLERS,
)
# Separators and padding: often nothing or one plain space, else any (near-)space.
_GAP = st.sampled_from(["", " "]) | st.sampled_from(_SPACES + _NEAR_SPACES)
_LONG = st.integers(MAX_ID_LENGTH - 2, MAX_ID_LENGTH + 2).flatmap(
    lambda n: st.text(alphabet="ab1-", min_size=n, max_size=n)
)
_EDITS = st.sampled_from(["0", "00", "256", ":80", "{", "}", "-", *_CONTROLS, *_UNICODE]) | _GAP


@st.composite
def _near_canonical(draw: st.DrawFn) -> str:
    """A value the fast paths should accept, after up to two small edits: where a lax one slips."""
    text = draw(_WORDS | st.uuids().map(str) | st.ip_addresses(v=4).map(str))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.sampled_from([0, len(text)]) | st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "upper head", "upper tail", "any case"]))
        if edit == "insert":
            text = text[:at] + draw(_EDITS) + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + 1 :]
        elif edit == "upper head":
            text = text[:at].upper() + text[at:]
        elif edit == "upper tail":
            text = text[:at] + text[at:].upper()
        else:
            text = draw(_any_case(text))
    return text


#: One value: near canonical, a trap alone, padded, two of them with a gap between, several
#: glued together, an over-long id, or any text at all.
VALUES = st.one_of(
    _near_canonical(),
    _PIECES,
    st.builds(lambda before, piece, after: before + piece + after, _GAP, _PIECES, _GAP),
    st.builds(lambda first, gap, second: first + gap + second, _PIECES, _GAP, _PIECES),
    st.lists(_PIECES, min_size=2, max_size=4).map("".join),
    _LONG,
    st.text(max_size=20),
)


@pytest.mark.parametrize("path", sorted(FAST_PATHS))
@settings(max_examples=400, deadline=None)
@given(values=st.lists(VALUES, min_size=1, max_size=30))
@example(values=["n/a", "NULL", "Unknown", "UN\u212a", "0000", "xxx", "---", "0-0-0", "a\x01b", "a" * 129])
@example(values=["a\u00a0b", "a\u2028b", "a\x1cb", " a", "a ", "a  b", "a\tb", "a\nb"])
@example(
    values=[
        "ABCDEF01-2345-4789-8ABC-DEF012345678",
        "abcdef01-2345-4789-8abc-DEF012345678",
        "abcdef01234547898abcdef012345678",
        "{abcdef01-2345-4789-8abc-def012345678}",
        "00000000-0000-0000-0000-000000000000",
    ]
)
@example(values=["010.0.0.1", "01.2.3.4", "1.2.3.256", "1.2.3.4:80", "0.0.0.0", "255.255.255.255"])
@example(values=["127.0.0.1", "::ffff:1.2.3.4", "::1", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "1.2.3"])
def test_accepted_values_are_kept_by_the_normalizer(path: str, values: list[str]) -> None:
    accept, normalize = FAST_PATHS[path]
    accepted = accept(np.array(values, dtype=object))
    assert accepted.dtype == bool and accepted.shape == (len(values),)
    for value in np.array(values, dtype=object)[accepted]:
        assert normalize(value) == Normalized(value, None), f"{path} accepted {value!r}"


def test_the_common_canonical_spellings_are_accepted() -> None:
    assert tidy_keys(np.array(["crm-1", "app 000003", "Zoë"], dtype=object)).all()
    ids = [
        "C-001",
        "1109674627",
        "2488626a-1ebe-46f8-8e88-c9c1945011d1",
        "ab-cd",
        "ab" * (MAX_ID_LENGTH // 2),
    ]
    assert canonical_identifiers(np.array(ids, dtype=object)).all()
    assert canonical_ips(np.array(["8.8.8.8", "94.131.189.41", "10.0.0.255", "1.0.0.0"], dtype=object)).all()


@pytest.mark.parametrize("path", sorted(FAST_PATHS))
@pytest.mark.parametrize("values", [["ok", 7], ["ok", None], ["ok", "\ud800"], []])
def test_nothing_is_accepted_unless_every_value_is_a_utf8_string(path: str, values: list) -> None:
    accept, _ = FAST_PATHS[path]
    assert not accept(np.array(values, dtype=object)).any()


def _never(values: np.ndarray) -> np.ndarray:
    return np.zeros(len(values), dtype=bool)


FAST_FIELDS = ["record_id", "source", "source_customer_id", "device_id", "anonymous_id", "ip_address"]


_MIXED_ROWS = [
    dict(zip(FAST_FIELDS, row, strict=True))
    for row in [
        ("crm-1", "crm", "C-001", "abcdef01-2345-4789-8abc-def012345678", "N/A", "8.8.8.8"),
        (
            " crm-1 ",
            "crm\u00a0",
            "c-001 ",
            "ABCDEF01-2345-4789-8ABC-DEF012345678",
            "Unknown",
            "008.008.008.008",
        ),
        ("crm  2", "CRM", "0000", "{abcdef01-2345-4789-8abc-def012345678}", "null", "8.8.8.8:443"),
        ("crm\u20283", "web", "x" * 129, "00000000-0000-0000-0000-000000000000", "xxx", "0.0.0.0"),
        ("crm-4", "web", "a\x01b", "abcdef01234547898abcdef012345678", "UN\u212a", "::ffff:1.2.3.4"),
        ("\t", None, "---", None, "0-0-0", "127.0.0.1"),
    ]
]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries({field: st.none() | VALUES for field in FAST_FIELDS}), min_size=1, max_size=25
    )
)
@example(rows=_MIXED_ROWS)
def test_standardize_frame_is_the_same_with_and_without_the_fast_paths(rows: list[dict]) -> None:
    pdf = pd.DataFrame(rows, columns=FAST_FIELDS)
    # Repeats, so factorizing and broadcasting back matter too.
    pdf = pd.concat([pdf, pdf.iloc[::-1]], ignore_index=True)
    fast = standardize_frame(pdf, "US")
    with pytest.MonkeyPatch.context() as patch:
        for field in frame.FAST_ACCEPT:
            patch.setitem(frame.FAST_ACCEPT, field, _never)
        slow = standardize_frame(pdf, "US")
    pd.testing.assert_frame_equal(fast, slow)


def test_the_id_like_fields_take_the_fast_paths() -> None:
    assert sorted(frame.FAST_ACCEPT) == sorted(FAST_FIELDS)
