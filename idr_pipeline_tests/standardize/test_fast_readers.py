"""The vectorized readers of whole columns give exactly what the per-value normalizer gives,
and the streets' faster casing what the readable one gives.

``standardize_frame`` trusts a reader's ``done`` values without calling the normalizer, so
each reader is held to the normalizer itself on values built from the traps of its field:
every punctuation the phone cache key drops or keeps, Unicode digits and spaces, too few or too
many digits, invalid area codes and exchanges, extensions, '00' prefixes, non-North-American
regions; impossible, future, pre-1900 and filler dates, two-digit years either side of the pivot,
mixed separators, either day order and parts above 12.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from idr_pipeline.standardize import frame, standardize_frame, street
from idr_pipeline.standardize.base import Normalized, display_case
from idr_pipeline.standardize.canonical import canonical_ssns
from idr_pipeline.standardize.dates import (
    _as_utc,
    _plain_iso_seconds,
    fast_dobs,
    normalize_dob,
    parse_timestamp,
    read_timestamps,
)
from idr_pipeline.standardize.email import (
    canonical_emails,
    fast_match_keys,
    match_key_of_normalized,
    normalize_email,
)
from idr_pipeline.standardize.identifiers import normalize_national_id
from idr_pipeline.standardize.phone import fast_e164, normalize_phone

_PHONE_PARTS = ["+", "1", "(", ")", " ", "-", ".", "\u00a0", "\t", "\n", "/", "x", "ext", "00", "0", "\u0663"]
_PHONE_PARTS += ["415", "555", "2671", "212", "201", "800", "911", "999", "123", "4567", "(415) ", "+1 "]
_PHONES = st.lists(st.sampled_from(_PHONE_PARTS), max_size=8).map("".join) | st.from_regex(
    r"\A\+?1?[ .\-(]{0,2}[0-9]{3}[ .\-)]{0,2}[0-9]{3}[ .\-]?[0-9]{3,5}\Z"
)
_REGIONS = st.sampled_from(["US", "CA", "PR", "GB", "DE", "ZZ", "XX", ""])

_TRICKY_PHONES = [
    "+14155552671", "(415) 555-2671", "415.555.2671", "1-415-555-2671", "+1 415 555 2671",
    "4155552671", "14155552671", "+11555552671", "(015) 555-2671", "415-555-267", "+1415555267",
    "415 555 2671 x12", "00 1 415 555 2671", "001-415-555-2671", " 4155552671", "4155552671\n",
    "\u0664155552671", "+1 (800) 555-0100", "+1 900 555 0100", "+44 20 7946 0958", "---", "",
    "2125550123", "+12125550123", "(212)555-0123", "212..555..0123", "+-14155552671", "++14155552671",
    "(+14155552671", "-+1 415 555 2671", "1+4155552671",
]  # fmt: skip


def _distinct(values: list[str]) -> np.ndarray:
    """The distinct values in first-seen order, as the batch readers receive them."""
    return np.array(list(dict.fromkeys(values)), dtype=object)


def _assert_normalizes_to(
    values: np.ndarray, done: np.ndarray, found: np.ndarray, normalize: Callable[[str], object]
) -> None:
    """Every value a fast reader takes gets the result the per-value normalizer gives it."""
    for value, is_done, result in zip(values, done, found, strict=True):
        if is_done:
            assert normalize(value) == (result, None), value


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_PHONES, min_size=1, max_size=30), region=_REGIONS)
@example(values=_TRICKY_PHONES, region="US")
@example(values=_TRICKY_PHONES, region="GB")
@example(values=_TRICKY_PHONES, region="ZZ")
def test_fast_e164_gives_what_normalize_phone_gives(values: list[str], region: str) -> None:
    uniques = _distinct(values)
    done, found = fast_e164(uniques, region)
    _assert_normalizes_to(uniques, done, found, lambda value: normalize_phone(value, region))


def test_fast_e164_reads_the_common_spellings() -> None:
    """The test above cannot fail if nothing is ever done; the usual spellings must be."""
    spellings = ["+14155552671", "(415) 555-2671", "415.555.2671", "1-415-555-2671", "4155552671"]
    done, found = fast_e164(np.array(spellings, dtype=object), "US")
    assert done.all()
    assert set(found) == {"+14155552671"}
    done, _ = fast_e164(np.array(spellings, dtype=object), "GB")
    assert done.tolist() == [True, False, False, False, False]


def test_fast_e164_without_arrow_text_does_nothing() -> None:
    values = np.array(["+14155552671", 4155552671, "\ud800"], dtype=object)
    assert not fast_e164(values, "US")[0].any()
    assert not fast_e164(np.array(["\ud800", "+14155552671"], dtype=object), "US")[0].any()
    assert len(fast_e164(np.array([], dtype=object), "US")[0]) == 0


_DOB_PARTS = [
    "1985",
    "2000",
    "1900",
    "2099",
    "0000",
    "85",
    "00",
    "25",
    "99",
    "3",
    "03",
    "7",
    "07",
    "12",
    "13",
]
_DOB_PARTS += [
    "29",
    "30",
    "31",
    "02",
    "1",
    "01",
    "-",
    "/",
    ".",
    " ",
    "  ",
    "\t",
    "Mar",
    "\u0663",
    "T10:00",
    "\n",
]
_DOBS = st.lists(st.sampled_from(_DOB_PARTS), max_size=6).map("".join) | st.from_regex(
    r"\A[0-9]{1,4}[-/. ][0-9]{1,2}[-/. ][0-9]{1,4}\Z"
)
_TRICKY_DOBS = [
    "03/07/1985", "1985-03-07", "19850307", "3/7/85", "13/07/1985", "07/13/1985", "1900-01-01", "01/01/1900",
    "2099-01-01", "02/29/2001", "02/29/2000", "02/29/1900", "29 02 2000", "1985.3.7", "1985-3/7", "20 Dec 2001",
    "12/31/25", "1/1/00", "19851307", "13071985", "0000-01-01", "1899-12-31", "31/12/99", "1985-02-29",
    "03/07/1985 ", " 03/07/1985", "03 / 07 / 1985", "03//07/1985", "1985-03-07T10:00", "\u0663/07/1985", "",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_DOBS, min_size=1, max_size=30), region=_REGIONS)
@example(values=_TRICKY_DOBS, region="US")
@example(values=_TRICKY_DOBS, region="GB")
def test_fast_dobs_gives_what_normalize_dob_gives(values: list[str], region: str) -> None:
    uniques = _distinct(values)
    done, found = fast_dobs(uniques, region)
    _assert_normalizes_to(uniques, done, found, lambda value: normalize_dob(value, region))


def test_fast_dobs_reads_the_numeric_spellings() -> None:
    spellings = ["03/07/1985", "1985-03-07", "19850307", "3/7/85", "7.3.1985", "03 07 1985"]
    done, found = fast_dobs(np.array(spellings, dtype=object), "US")
    assert done.all()
    assert found.tolist() == ["1985-03-07"] * 4 + ["1985-07-03", "1985-03-07"]
    assert fast_dobs(np.array(spellings[:1], dtype=object), "GB")[1].tolist() == ["1985-07-03"]
    assert not fast_dobs(np.array(["1985-03-07", 19850307], dtype=object), "US")[0].any()
    assert len(fast_dobs(np.array([], dtype=object), "US")[0]) == 0


def _reference_case(token: str) -> str:
    """street._case as it was written before house numbers and word caching."""
    if street._ORDINAL.match(token):
        return token.lower()
    if any(c.isdigit() for c in token):
        return token.upper()
    return display_case(token)


class _AnyChar:
    """Stands in for a compiled pattern's ``search`` with the readable ``any(...)`` test."""

    def __init__(self, test: Callable[[str], bool]) -> None:
        self.test = test

    def search(self, text: str) -> bool:
        return any(self.test(c) for c in text)


def _reference_street(value: str) -> Normalized:
    """street._normalize_street with the readable character tests and the reference casing."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(street, "_case", _reference_case)
        patch.setattr(street, "_ALNUM", _AnyChar(str.isalnum))
        patch.setattr(street, "_DIGIT", _AnyChar(str.isdigit))
        return street._normalize_street.__wrapped__(value)


_STREET_PARTS = [
    "123",
    "1ST",
    "2nd",
    "4b",
    "\u00b2",
    "\u0663",
    "North",
    "MAIN",
    "main",
    "st",
    "Street",
    "Apt",
]
_STREET_PARTS += [
    "#",
    "4",
    " ",
    "\u00a0",
    ".",
    ",",
    "-",
    "'",
    "o'neil",
    "P.O.",
    "Box",
    "Ünter",
    "ß",
    "&",
    "/",
    "?",
]
_STREETS = st.lists(st.sampled_from(_STREET_PARTS), max_size=8).map(" ".join) | st.text(max_size=12)
_TRICKY_STREETS = [
    "123 North Main Street, Apt. 4", "21 n. barr rd. apt 33", "1ST AVE", "4b Elm st", "\u00b2 Main St", "-",
    "\u0663\u0663 Main", "P.O. Box 12", "###", "N/A", "", "12-14 O'NEIL-SMITH BLVD", "Ünter den Linden 7",
    "9 North Main Street", "B9 West Elm Road East",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_STREETS, min_size=1, max_size=20))
@example(values=_TRICKY_STREETS)
def test_normalize_street_equals_the_reference(values: list[str]) -> None:
    for value in values:
        assert street._normalize_street.__wrapped__(value) == _reference_street(value), value
        for token in value.split():
            assert street._case(token) == _reference_case(token), token


_ISO_TIMESTAMPS = st.from_regex(
    r"\A(?:19|20|21|00|99)[0-9]{2}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-6][0-9]:[0-6][0-9]"
    r"(?:\.[0-9]{1,7})?(?:Z|[+-][0-2][0-9]:[0-7][0-9])?\Z",
    fullmatch=True,
)
_TRICKY_TIMESTAMPS = [
    "2021-06-14T00:51:54Z", "2021-08-07T19:41:34+00:00", "2021-02-27 01:03:17", "2024-01-08T21:32:47.000Z",
    "2024-01-08T21:32:47.123456-05:30", "2024-01-08T21:32:47.12Z", "2024-02-29T23:59:59-23:59", "2023-02-29T00:00:00",
    "1900-01-01T00:30:00+01:00", "1899-12-31T23:30:00-01:00", "2100-12-31T23:30:00-01:00", "2101-01-01T00:00:00",
    "2024-01-01T24:00:00", "2024-01-01T10:60:00", "2024-01-01T10:00:60", "2024-01-01T10:00:00+24:00",
    "2024-01-01T10:00:00-00:00", "0000-01-01T00:00:00", "2024-13-01T00:00:00", "2024-01-01t10:00:00",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_ISO_TIMESTAMPS, min_size=1, max_size=30), region=st.sampled_from(["US", "GB"]))
@example(values=_TRICKY_TIMESTAMPS, region="US")
def test_read_timestamps_gives_what_parse_timestamp_gives(values: list[str], region: str) -> None:
    uniques = list(dict.fromkeys(values))
    found, why = read_timestamps(np.array(uniques, dtype=object), region)
    assert [(v, r) for v, r in zip(found, why, strict=True)] == [parse_timestamp(v, region) for v in uniques]


def test_the_plain_timestamps_are_read_as_arrays() -> None:
    """Not vacuous: the usual shapes take the array path, with the seconds ``fromisoformat`` gives."""
    done, seconds = _plain_iso_seconds(np.array(_TRICKY_TIMESTAMPS, dtype=object))
    read = [0, 1, 2, 3, 4, 6, 9, 16]
    assert np.flatnonzero(done).tolist() == read
    assert seconds[done].tolist() == [
        int(_as_utc(datetime.fromisoformat(_TRICKY_TIMESTAMPS[i])).timestamp()) for i in read
    ]


_EMAIL_PARTS = [
    "john",
    "J",
    ".",
    "..",
    "+",
    "+shop",
    "@",
    "gmail.com",
    "googlemail.com",
    "GMAIL.COM",
    "yahoo.com",
]
_EMAIL_PARTS += [
    "x-y.org",
    "-x.com",
    "b",
    "é",
    "\u212a",
    " ",
    "\t",
    "\n",
    '"q"',
    "mailto:",
    "MAILTO:",
    "!#$%&'*/=?^`{|}~",
]
_EMAIL_PARTS += [
    "xn--bcher-kva.de",
    "bücher.de",
    "a" * 64,
    "a" * 65,
    "n/a",
    "_",
    "1",
    "localhost",
    "[1.2.3.4]",
]
_EMAILS = st.lists(st.sampled_from(_EMAIL_PARTS), max_size=7).map("".join) | st.emails().map(str)
_TRICKY_EMAILS = [
    "john@gmail.com", "J.o+x@gmail.com", "j.o.h.n+shop@gmail.com", "+x@gmail.com", "a.b@googlemail.com",
    "@gmail.com", ".@gmail.com", "x@yahoo.com", " a@b.com", "a@B.com", "a@b", "a..b@x.com", ".a@x.com",
    '"q"@x.com', "a@-x.com", "mailto:a@x.com", "é@x.com", "a@x.com\n", "a@bücher.de", "a@xn--bcher-kva.de",
    "a" * 64 + "@x.com", "a" * 65 + "@x.com", "a@" + "b" * 250 + ".com", "a@x..com", "a@x.com.", "a@localhost",
    "a@b@gmail.com", "k@\u212a.com", "\u212aate@x.com", "n/a", "a@[1.2.3.4]", "!#$%&'*/=?^`{|}~@x.com",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_EMAILS, min_size=1, max_size=30))
@example(values=_TRICKY_EMAILS)
def test_canonical_emails_are_their_own_normal_form(values: list[str]) -> None:
    uniques = _distinct(values)
    _assert_normalizes_to(uniques, canonical_emails(uniques), uniques, normalize_email)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_EMAILS, min_size=1, max_size=30))
@example(values=_TRICKY_EMAILS)
def test_fast_match_keys_are_match_key_of_normalized(values: list[str]) -> None:
    uniques = _distinct(values)
    done, keys = fast_match_keys(uniques)
    for value, is_done, key in zip(uniques, done, keys, strict=True):
        if is_done:
            assert match_key_of_normalized(value) == key, value


def test_the_email_readers_take_the_usual_addresses() -> None:
    usual = np.array(
        ["john@gmail.com", "j.o.h.n+shop@gmail.com", "x@yahoo.com", "a.b@googlemail.com"], dtype=object
    )
    assert canonical_emails(usual).all()
    assert not canonical_emails(np.array([" a@b.com", "A@b.com", "a@b"], dtype=object)).any()
    done, keys = fast_match_keys(usual)
    assert done.all()
    assert keys.tolist() == ["john@gmail.com", "john@gmail.com", "x@yahoo.com", "ab@gmail.com"]
    assert not fast_match_keys(np.array(["\ud800@gmail.com"], dtype=object))[0].any()
    assert len(canonical_emails(np.array([], dtype=object))) == 0


_AREAS = [
    "000",
    "001",
    "009",
    "010",
    "099",
    "100",
    "599",
    "600",
    "659",
    "660",
    "665",
    "666",
    "667",
    "669",
    "670",
]
_AREAS += ["699", "700", "899", "900", "999", "078", "123", "219", "987"]
_GROUPS = ["00", "01", "09", "10", "99", "05", "45"]
_SERIALS = ["0000", "0001", "0009", "0010", "0099", "0100", "0999", "1000", "9999", "1120", "6789", "4321"]
_SSN_GRID = [a + g + s for a in _AREAS for g in _GROUPS for s in _SERIALS]
_SSN_GRID += ["111111111", "123456789", "078051120", "219099999", "987654321", "12345678", "1234567890"]
_SSN_GRID += [
    "123-45-6789",
    " 123456789",
    "123456789\n",
    "\u0661\u0662\u0663456789",
    "XXX451234",
    "AB123456C",
]
_NATIONAL_IDS = st.from_regex(r"\A[0-9]{9}\Z", fullmatch=True) | st.text("0123456789X- ", max_size=11)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_NATIONAL_IDS, min_size=1, max_size=30))
@example(values=_SSN_GRID)
def test_canonical_ssns_are_their_own_normal_form(values: list[str]) -> None:
    uniques = _distinct(values)
    _assert_normalizes_to(uniques, canonical_ssns(uniques), uniques, normalize_national_id)


def test_canonical_ssns_take_every_issued_looking_ssn() -> None:
    """Not vacuous, and not needlessly strict: every nine-digit SSN kept as it is is accepted."""
    grid = np.array([v for v in _SSN_GRID if len(v) == 9 and v.isascii() and v.isdigit()], dtype=object)
    kept = [normalize_national_id(v) == (v, None) for v in grid]
    assert canonical_ssns(grid).tolist() == kept
    assert sum(kept) > 1000


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "phone": st.none() | _PHONES,
                "dob": st.none() | _DOBS,
                "email": st.none() | _EMAILS,
                "national_id": st.none() | _NATIONAL_IDS,
                "country": st.none() | st.sampled_from(["US", "GB"]),
            }
        ),
        max_size=20,
    )
)
@example(
    rows=[
        {"phone": p, "dob": d, "email": e, "national_id": n, "country": c}
        for p, d, e, n in zip(_TRICKY_PHONES, _TRICKY_DOBS, _TRICKY_EMAILS, _SSN_GRID[::37], strict=False)
        for c in (None, "GB")
    ]
)
def test_standardize_frame_is_the_same_without_the_fast_readers(rows: list[dict]) -> None:
    pdf = pd.DataFrame(rows, columns=["phone", "dob", "email", "national_id", "country"], dtype=object)
    pdf = pd.concat([pdf, pdf.iloc[::-1]], ignore_index=True)  # repeats, so broadcasting matters
    fast = standardize_frame(pdf, "US")
    with pytest.MonkeyPatch.context() as patch:
        for readers in (frame.REGIONAL_FAST, frame.PLAIN_ACCEPT):
            for field in list(readers):
                patch.delitem(readers, field)
        patch.setattr(frame, "fast_match_keys", lambda uniques: (np.zeros(len(uniques), dtype=bool), uniques))
        slow = standardize_frame(pdf, "US")
    pd.testing.assert_frame_equal(fast, slow)
