"""Properties every normalizer owes the pipeline, checked on arbitrary and on realistic text.

* Never raise: one odd value must not kill a Spark task holding a hundred thousand rows.
* Idempotent: normalizing a normalized value changes nothing, so re-running the job (or
  standardizing data that another job already cleaned) cannot drift.
* Honest results: a value or a known reason code, never both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from hypothesis import example, given, settings
from hypothesis import strategies as st

from idr_pipeline.standardize import (
    email_match_key,
    normalize_city,
    normalize_country,
    normalize_dob,
    normalize_email,
    normalize_identifier,
    normalize_ip,
    normalize_name,
    normalize_national_id,
    normalize_phone,
    normalize_postcode,
    normalize_state,
    normalize_street,
    parse_timestamp,
)
from idr_pipeline.standardize.base import ALL_REASONS, Normalized

TODAY = date(2025, 6, 1)
REGIONS = ["US", "GB", "CA", "DE", "FR", "IN", "BR", "JP"]

Normalizer = Callable[[str | None, str], Normalized]
NORMALIZERS: dict[str, Normalizer] = {
    "email": lambda v, r: normalize_email(v),
    "name": lambda v, r: normalize_name(v),
    "street": lambda v, r: normalize_street(v),
    "city": lambda v, r: normalize_city(v),
    "state": lambda v, r: normalize_state(v),
    "country": lambda v, r: normalize_country(v),
    "national_id": lambda v, r: normalize_national_id(v),
    "identifier": lambda v, r: normalize_identifier(v),
    "ip": lambda v, r: normalize_ip(v),
    "phone": normalize_phone,
    "postcode": normalize_postcode,
    "dob": lambda v, r: normalize_dob(v, r, today=TODAY),
    "timestamp": parse_timestamp,
}

# Text shaped like the fields (so the interesting branches run), plus anything at all.
_shaped = st.from_regex(
    r"\A[ \t]?(?:[A-Za-z0-9 .,'#/+()@:_-]|é|ß|İ|ǅ|Ø|\u00a0){0,40}[ \t]?\Z", fullmatch=True
) | st.sampled_from(
    [
        "+1 (415) 555-2671",
        "John.Doe+x@GoogleMail.com",
        "123 N. Main St. Apt 4",
        "03/07/1985",
        "2024-01-02T03:04:05+02:00",
        "SW1A 1AA",
        "::ffff:1.2.3.4",
        "ABCDEF01-2345-4789-8ABC-DEF012345678",
        "123-45-6780",
        "Dr. José O'NEIL Jr.",
    ]
)
_any_text = st.text(max_size=60) | _shaped


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(NORMALIZERS)), text=_any_text, region=st.sampled_from(REGIONS))
@example(field="name", text="ǅ-'a", region="US")
@example(field="email", text="İ@x.com", region="US")
def test_never_raises_and_is_idempotent(field: str, text: str, region: str) -> None:
    normalize = NORMALIZERS[field]
    result = normalize(text, region)
    assert isinstance(result, Normalized)
    assert result.value is None or result.reason is None
    assert result.reason is None or result.reason in ALL_REASONS
    if result.value is not None:
        assert result.value == result.value.strip() and result.value != ""
        assert normalize(result.value, region) == result, f"{field} not idempotent on {text!r}"


@settings(max_examples=200, deadline=None)
@given(text=_any_text)
def test_email_key_is_idempotent_and_agrees_with_the_address(text: str) -> None:
    key = email_match_key(text)
    if normalize_email(text).value is None:
        assert key is None
    else:
        assert key is not None
        assert email_match_key(key) == key


@given(field=st.sampled_from(sorted(NORMALIZERS)), region=st.sampled_from(REGIONS))
def test_none_and_blank_are_empty_without_reason(field: str, region: str) -> None:
    for blank in (None, "", "   ", "\t\n"):
        assert NORMALIZERS[field](blank, region) == Normalized(None, None)
