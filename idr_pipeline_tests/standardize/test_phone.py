"""Phone numbers: every common way of writing one line gives the same E.164 string."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from idr_pipeline.standardize import normalize_phone
from idr_pipeline.standardize.base import INVALID_NUMBER, PLACEHOLDER, Normalized


@pytest.mark.parametrize(
    "raw",
    [
        "(415) 555-2671",
        "415.555.2671",
        "+1 415 555 2671",
        "001-415-555-2671",
        "1-415-555-2671",
        "4155552671",
        "415-555-2671 ext. 12",
        " +1 (415) 555-2671 ",
    ],
)
def test_us_formats(raw: str) -> None:
    assert normalize_phone(raw, "US") == Normalized("+14155552671", None)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 20 7946 0018", "US", "+442079460018"),
        ("00 44 20 7946 0018", "GB", "+442079460018"),
        ("07911 123456", "GB", "+447911123456"),
        ("+44 (0)7911 123456", "GB", "+447911123456"),
    ],
)
def test_uk_numbers(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == Normalized(expected, None)


@pytest.mark.parametrize("raw", ["0000000000", "12", "555-0000", "(999) 999-9999", "call me", "07911 123456"])
def test_invalid_numbers_for_us(raw: str) -> None:
    assert normalize_phone(raw, "US") == Normalized(None, INVALID_NUMBER)


def test_placeholder_and_empty() -> None:
    assert normalize_phone("N/A") == Normalized(None, PLACEHOLDER)
    assert normalize_phone("  ") == Normalized(None, None)
    assert normalize_phone(None) == Normalized(None, None)


def test_unknown_region_still_reads_international_numbers() -> None:
    assert normalize_phone("+1 415 555 2671", "XX").value == "+14155552671"
    assert normalize_phone("4155552671", "XX") == Normalized(None, INVALID_NUMBER)


_FORMATS = [
    "{a}{b}{c}",
    "({a}) {b}-{c}",
    "{a}.{b}.{c}",
    "{a}-{b}-{c}",
    "+1 {a} {b} {c}",
    "1 ({a}) {b} {c}",
    "+1-{a}-{b}-{c}",
    "001 {a} {b} {c}",
    "  {a}   {b}{c} ",
]


@given(
    area=st.sampled_from(["212", "312", "415", "617", "713", "206"]),
    exchange=st.integers(200, 999).filter(lambda e: e % 100 != 11 and e != 555),
    line=st.integers(0, 9999),
)
def test_all_formats_of_one_number_agree(area: str, exchange: int, line: int) -> None:
    parts = {"a": area, "b": f"{exchange:03d}", "c": f"{line:04d}"}
    results = {normalize_phone(f.format(**parts), "US") for f in _FORMATS}
    assert results == {Normalized(f"+1{area}{exchange:03d}{line:04d}", None)}


@given(
    text=st.from_regex(r"\A\s?(?:00|\+|1|0)?[0-9 ().-]{0,16}\Z", fullmatch=True),
    region=st.sampled_from(["US", "CA", "GB", "ZZ", "PR"]),
)
@example(text="00(43051.733", region="PR")
@example(text="0.062-4)020326809", region="PR")
def test_cache_key_does_not_change_the_reading(text: str, region: str) -> None:
    """Punctuation squeezing and the +1 shortcut must give what libphonenumber makes of the raw text."""
    from idr_pipeline.standardize.phone import _normalize_phone

    assert normalize_phone(text, region) == _normalize_phone.__wrapped__(text, region)


@given(
    national=st.from_regex(r"\A[2-9][0-9]{9}\Z", fullmatch=True),
    region=st.sampled_from(["US", "CA", "GB", "ZZ"]),
)
@example(national="2125550100", region="US")  # a 555 fiction number: invalid
@example(national="8005550199", region="GB")  # toll free
def test_the_nanp_shortcut_reads_numbers_as_libphonenumber_parses_them(national: str, region: str) -> None:
    """'+1' and ten digits skip phonenumbers.parse; validity and the E.164 text must not change."""
    import phonenumbers

    from idr_pipeline.standardize.phone import _parse_valid

    text = "+1" + national
    parsed = phonenumbers.parse(text, region)
    expected = parsed if phonenumbers.is_valid_number(parsed) else None
    got = _parse_valid(text, region)
    assert (got is None) == (expected is None)
    if got is not None:
        assert got == expected
        assert phonenumbers.format_number(got, phonenumbers.PhoneNumberFormat.E164) == text


@given(
    country_code=st.sampled_from([1, 7, 44, 61, 33, 49, 262, 290, 599, 800, 882]),
    national=st.from_regex(r"\A[0-9]{4,12}\Z", fullmatch=True),
)
@example(country_code=1, national="2125550100")  # a 555 fiction number: invalid everywhere
@example(country_code=1, national="4165550199")  # Toronto: valid in CA, not the main region US
@example(country_code=1, national="2684601234")  # Antigua, a region with a leading-digits rule
@example(country_code=44, national="7624123456")  # Isle of Man under the UK's code
@example(country_code=7, national="7012345678")  # Kazakhstan under Russia's code
def test_validity_from_the_main_region_first_agrees_with_libphonenumber(
    country_code: int, national: str
) -> None:
    """The main-region shortcut is an optimization only: it must accept exactly what
    ``is_valid_number`` accepts, for shared country codes (+1, +7, +44, +262, +599), single-region
    ones, and non-geographic ones (+800, +882)."""
    import phonenumbers

    from idr_pipeline.standardize.phone import _is_valid

    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
    assert _is_valid(number) == phonenumbers.is_valid_number(number)


@given(
    region=st.sampled_from(["US", "CA", "GB", "DE", "FR", "AU", "RU", "IN", "BR", "JP", "IT", "AG"]),
    national=st.from_regex(r"\A0?[0-9]{4,12}\Z", fullmatch=True),
)
@example(region="US", national="2125550100")  # a 555 fiction number: invalid
@example(region="US", national="8005550199")  # toll free, tested after fixed line and mobile
@example(region="GB", national="7911123456")  # a UK mobile, not a fixed line
@example(region="IT", national="0212345678")  # Milan: an Italian leading zero
@example(region="DE", national="002030000")  # 00 dials out: +20, an Egyptian number, not German
def test_validity_by_type_in_any_order_agrees_with_libphonenumber(region: str, national: str) -> None:
    """Fixed line and mobile are tried first; a number is valid for a region exactly when
    libphonenumber says so, whichever type matches."""
    import phonenumbers

    from idr_pipeline.standardize.phone import _valid_in

    try:
        number = phonenumbers.parse(national, region)
    except phonenumbers.NumberParseException:
        return
    assert _valid_in(number, region) == phonenumbers.is_valid_number_for_region(number, region)
