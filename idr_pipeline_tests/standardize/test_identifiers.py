"""National ids, device/anonymous/customer ids and IP addresses: strong keys, strict on fillers."""

from __future__ import annotations

import pytest

from idr_pipeline.standardize import normalize_identifier, normalize_ip, normalize_national_id
from idr_pipeline.standardize.base import INVALID_ID, INVALID_IP, INVALID_NATIONAL_ID, PLACEHOLDER, Normalized


@pytest.mark.parametrize("raw", ["123-45-6780", "123456780", " 123 45 6780 ", "123.45.6780", 123456780])
def test_ssn_digits_only(raw: str | int) -> None:
    assert normalize_national_id(str(raw)) == Normalized("123456780", None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("000-12-3456", INVALID_NATIONAL_ID),
        ("666-12-3456", INVALID_NATIONAL_ID),
        ("912-34-5678", INVALID_NATIONAL_ID),
        ("123-00-4567", INVALID_NATIONAL_ID),
        ("123-45-0000", INVALID_NATIONAL_ID),
        ("XXX-XX-1234", INVALID_NATIONAL_ID),
        ("1111111", PLACEHOLDER),
        ("hello", INVALID_NATIONAL_ID),
        ("111-11-1111", PLACEHOLDER),
        ("999999999", PLACEHOLDER),
        ("123-45-6789", PLACEHOLDER),
        ("078-05-1120", PLACEHOLDER),
        ("n/a", PLACEHOLDER),
    ],
)
def test_ssn_rejections(raw: str, reason: str) -> None:
    assert normalize_national_id(raw) == Normalized(None, reason)


@pytest.mark.parametrize(
    ("raw", "expected"), [("4190723", "4190723"), ("1234-5678", "12345678"), ("1234567890", "1234567890")]
)
def test_digit_ids_of_other_lengths_are_other_countries_schemes(raw: str, expected: str) -> None:
    """FEBRL's 7-digit Australian ids, Swedish personnummer: kept as keys, without SSN rules."""
    assert normalize_national_id(raw) == Normalized(expected, None)


def test_foreign_national_id_kept_upper_case() -> None:
    assert normalize_national_id("ab 12 34 56 c") == Normalized("AB123456C", None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ABCDEF01-2345-4789-8ABC-DEF012345678", "abcdef01-2345-4789-8abc-def012345678"),
        ("{abcdef01-2345-4789-8abc-def012345678}", "abcdef01-2345-4789-8abc-def012345678"),
        (
            "urn:uuid:ABCDEF0123454789 8ABCDEF012345678".replace(" ", ""),
            "abcdef01-2345-4789-8abc-def012345678",
        ),
        ("  CUST-00042 ", "CUST-00042"),
        ("ab12", "ab12"),
    ],
)
def test_identifiers(raw: str, expected: str) -> None:
    assert normalize_identifier(raw) == Normalized(expected, None)


@pytest.mark.parametrize(
    "raw",
    [
        "00000000-0000-0000-0000-000000000000",
        "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
        "0",
        "-1",
        "0000",
        "null",
        "guest",
    ],
)
def test_identifier_placeholders(raw: str) -> None:
    assert normalize_identifier(raw) == Normalized(None, PLACEHOLDER)


def test_identifier_too_long_or_binary() -> None:
    assert normalize_identifier("a" * 64 + "b" * 65) == Normalized(None, INVALID_ID)
    assert normalize_identifier("abc\x00def") == Normalized(None, INVALID_ID)
    assert normalize_identifier("a" * 64 + "b" * 64).value is not None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8.8.8.8", "8.8.8.8"),
        (" 010.000.000.001 ", "10.0.0.1"),
        ("192.168.1.20:51234", "192.168.1.20"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:8.8.4.4", "8.8.4.4"),
    ],
)
def test_ip_addresses(raw: str, expected: str) -> None:
    assert normalize_ip(raw) == Normalized(expected, None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("256.1.1.1", INVALID_IP),
        ("1.2.3", INVALID_IP),
        ("localhost", INVALID_IP),
        ("2001:db8:::1", INVALID_IP),
        ("0.0.0.0", PLACEHOLDER),
        ("255.255.255.255", PLACEHOLDER),
        ("::", PLACEHOLDER),
        ("unknown", PLACEHOLDER),
    ],
)
def test_ip_rejections(raw: str, reason: str) -> None:
    assert normalize_ip(raw) == Normalized(None, reason)
