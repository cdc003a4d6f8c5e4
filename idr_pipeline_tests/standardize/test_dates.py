"""Dates of birth and timestamps: many spellings in, one ISO spelling out."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from idr_pipeline.standardize import normalize_dob, parse_timestamp
from idr_pipeline.standardize.base import (
    BEFORE_1900,
    FUTURE_DATE,
    IMPLAUSIBLE_TIMESTAMP,
    PLACEHOLDER,
    UNPARSEABLE_DATE,
    UNPARSEABLE_TIMESTAMP,
    Normalized,
)
from idr_pipeline.standardize.dates import read_timestamps

TODAY = date(2025, 6, 1)


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("1985-03-07", "US"),
        ("1985/3/7", "US"),
        ("03/07/1985", "US"),
        ("3-7-1985", "US"),
        ("03/07/85", "US"),
        ("07/03/1985", "GB"),
        ("07.03.1985", "DE"),
        ("7 March 1985", "US"),
        ("Mar 7, 1985", "GB"),
        ("Thursday, 7th of March 1985", "US"),
        ("07-Mar-85", "US"),
        ("19850307", "US"),
        ("1985-03-07T10:00:00Z", "US"),
    ],
)
def test_dob_formats(raw: str, region: str) -> None:
    assert normalize_dob(raw, region, today=TODAY) == Normalized("1985-03-07", None)


def test_day_above_twelve_overrides_region() -> None:
    assert normalize_dob("13/03/1985", "US", today=TODAY).value == "1985-03-13"
    assert normalize_dob("03/13/1985", "GB", today=TODAY).value == "1985-03-13"


def test_two_digit_year_is_never_in_the_future() -> None:
    assert normalize_dob("01/02/24", "US", today=TODAY).value == "2024-01-02"
    assert normalize_dob("01/02/30", "US", today=TODAY).value == "1930-01-02"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("2999-01-01", FUTURE_DATE),
        ("1850-01-01", BEFORE_1900),
        ("1900-01-01", PLACEHOLDER),
        ("02/30/1985", UNPARSEABLE_DATE),
        ("garbage", UNPARSEABLE_DATE),
        ("unknown", PLACEHOLDER),
    ],
)
def test_dob_rejections(raw: str, reason: str) -> None:
    assert normalize_dob(raw, "US", today=TODAY) == Normalized(None, reason)


@pytest.mark.parametrize(
    "raw",
    [
        "2024-01-02T03:04:05Z",
        "2024-01-02 03:04:05",
        "2024-01-02T05:04:05+02:00",
        "2024-01-01T22:04:05-0500",
        "1704164645",
        "1704164645000",
        "01/02/2024 3:04:05 AM",
    ],
)
def test_timestamps_to_utc(raw: str) -> None:
    assert parse_timestamp(raw, "US") == Normalized("2024-01-02T03:04:05Z", None)


def test_timestamp_rejections() -> None:
    assert parse_timestamp("garbage") == Normalized(None, UNPARSEABLE_TIMESTAMP)
    assert parse_timestamp("3000-01-01") == Normalized(None, IMPLAUSIBLE_TIMESTAMP)
    assert parse_timestamp("") == Normalized(None, None)


def test_an_offset_of_a_day_or_more_is_a_reason_not_a_crash() -> None:
    assert parse_timestamp("2024-01-01T10:00:00+25:00") == Normalized(None, UNPARSEABLE_TIMESTAMP)
    assert parse_timestamp("01/02/2024 10:00 +2400") == Normalized(None, UNPARSEABLE_TIMESTAMP)


_PLAINISH = (
    r"\A(?:\d{4}|１９９９|0000)-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,8})?(?:Z|z|[+-]\d{2}:\d{2}| UTC)?\Z"
)


@given(
    texts=st.lists(st.one_of(st.from_regex(_PLAINISH, fullmatch=True), st.text(max_size=25)), max_size=30),
    region=st.sampled_from(["US", "GB", "ZZ"]),
)
@example(texts=["2024-02-30 10:00:00", "1899-12-31T23:00:00-02:00", "2100-12-31T23:30:00-01:00"], region="US")
@example(texts=["2024-01-01T24:00:00", "2024-01-01T10:00:60", "1969-12-31T23:59:59.999+00:00"], region="GB")
def test_the_batch_reader_agrees_with_parse_timestamp(texts: list[str], region: str) -> None:
    """read_timestamps' plain-ISO path is an optimization only: value and reason per text must be
    what parse_timestamp gives, for plain ISO, near misses (bad dates, hour 24, out-of-range
    years and offsets, non-ASCII digits) and arbitrary text."""
    values, reasons = read_timestamps(texts, region)
    assert [Normalized(v, r) for v, r in zip(values, reasons, strict=True)] == [
        parse_timestamp(t, region) for t in texts
    ]
