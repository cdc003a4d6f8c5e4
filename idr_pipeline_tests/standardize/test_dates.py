"""Dates of birth and timestamps: many spellings in, one ISO spelling out."""

from __future__ import annotations

from datetime import date

import pytest

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
