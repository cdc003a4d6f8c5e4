"""Country, state, city and postcode: the address parts read according to the row's country."""

from __future__ import annotations

import pytest

from idr_pipeline.standardize import normalize_city, normalize_country, normalize_postcode, normalize_state
from idr_pipeline.standardize.base import INVALID_POSTCODE, UNKNOWN_COUNTRY, Normalized


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("usa", "US"),
        ("U.S.A.", "US"),
        ("United States of America", "US"),
        ("UK", "GB"),
        ("United Kingdom", "GB"),
        ("GBR", "GB"),
        ("Deutschland", "DE"),
        ("Côte d'Ivoire", "CI"),
        ("South Korea", "KR"),
        ("the netherlands", "NL"),
    ],
)
def test_country(raw: str, code: str) -> None:
    assert normalize_country(raw) == Normalized(code, None)


def test_unknown_country() -> None:
    assert normalize_country("Atlantis") == Normalized(None, UNKNOWN_COUNTRY)


@pytest.mark.parametrize(
    ("raw", "code"), [("calif.", "CA"), ("California", "CA"), ("ny", "NY"), ("Québec", "QC")]
)
def test_state(raw: str, code: str) -> None:
    assert normalize_state(raw) == Normalized(code, None)


def test_city() -> None:
    assert normalize_city("SAN  FRANCISCO") == Normalized("San Francisco", None)
    assert normalize_city("St. Louis") == Normalized("St Louis", None)


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("94105-1234", "US", "94105"),
        ("941051234", "US", "94105"),
        ("2134", "US", "02134"),
        ("sw1a1aa", "GB", "SW1A 1AA"),
        ("SW1A 1AA", "GB", "SW1A 1AA"),
        ("k1a0b1", "CA", "K1A 0B1"),
        ("75008", "FR", "75008"),
    ],
)
def test_postcode_by_country(raw: str, country: str, expected: str) -> None:
    assert normalize_postcode(raw, country) == Normalized(expected, None)


@pytest.mark.parametrize(
    ("raw", "country"), [("00000", "US"), ("ABCDE", "US"), ("12345", "GB"), ("hello", "FR")]
)
def test_invalid_postcodes(raw: str, country: str) -> None:
    assert normalize_postcode(raw, country) == Normalized(None, INVALID_POSTCODE)
