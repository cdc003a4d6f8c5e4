"""Street lines: USPS abbreviations make differently written equal addresses equal strings."""

from __future__ import annotations

import pytest

from idr_pipeline.standardize import normalize_street
from idr_pipeline.standardize.base import INVALID_STREET, PLACEHOLDER, Normalized


@pytest.mark.parametrize(
    "raw",
    [
        "123 N. Main St. Apt 4",
        "123 North Main Street Apartment 4",
        "123 north main street, apt #4",
        "123 NORTH MAIN ST # 4",
        "123  N  Main  Str.,  Apt. 4",
    ],
)
def test_spellings_of_one_address_agree(raw: str) -> None:
    assert normalize_street(raw) == Normalized("123 N Main St Apt 4", None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # 'North' is the street's name here, not a direction, so it stays.
        ("1 North Street", "1 North St"),
        ("P.O. Box 12", "PO Box 12"),
        ("45 W 1ST AVE STE 200", "45 W 1st Ave Ste 200"),
        ("9 Elm Boulevard Northeast", "9 Elm Blvd NE"),
        ("12b Rue de la Paix", "12B Rue De La Paix"),
    ],
)
def test_abbreviation_positions(raw: str, expected: str) -> None:
    assert normalize_street(raw) == Normalized(expected, None)


def test_rejections() -> None:
    assert normalize_street("#") == Normalized(None, INVALID_STREET)
    assert normalize_street("n/a") == Normalized(None, PLACEHOLDER)
    assert normalize_street("   ") == Normalized(None, None)
