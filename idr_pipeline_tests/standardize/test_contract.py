"""The clean-profile contract rejects what a broken normaliser would let through."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pytest

from idr_pipeline.standardize import CLEAN_PROFILE_SCHEMA, validate_clean

VALID = {
    "record_id": "crm-1",
    "source": "crm",
    "source_customer_id": "C-001",
    "first_name": "Jose O'Neil Jr",
    "last_name": "Smith",
    "email": "john.doe+promo@googlemail.com",
    "email_key": "johndoe@gmail.com",
    "phone": "+14155552671",
    "street": "123 N Main St Apt 4",
    "city": "San Francisco",
    "state": "CA",
    "postcode": "94105",
    "country": "US",
    "dob": "1985-03-07",
    "national_id": "123456780",
    "ip_address": "2001:db8::1",
    "device_id": "abcdef01-2345-4789-8abc-def012345678",
    "anonymous_id": None,
    "updated_at": "2024-01-02T01:04:05Z",
    "_reasons": None,
    "_quarantine_reason": None,
    "_anything_else": 42,
}


def test_valid_row_and_all_null_optionals_pass() -> None:
    nulls = {k: (None if k not in ("record_id", "source") else v) for k, v in VALID.items()}
    df = pd.DataFrame([VALID, nulls], dtype=object)
    pd.testing.assert_frame_equal(validate_clean(df), df)


@pytest.mark.parametrize(
    ("column", "bad"),
    [
        ("record_id", None),
        ("source", None),
        ("email", "John@Example.com"),
        ("email", "not-an-email"),
        ("email_key", "JOHN@gmail.com"),
        ("phone", "4155552671"),
        ("phone", "+0123456789"),
        ("dob", "03/07/1985"),
        ("dob", "1985-02-30"),
        ("country", "usa"),
        ("ip_address", "2001:0db8::0001"),
        ("ip_address", "999.1.1.1"),
        ("device_id", "ABCDEF01-2345-4789-8ABC-DEF012345678"),
        ("updated_at", "2024-01-02 01:04:05"),
        ("first_name", " Jose"),
        ("national_id", "123-45-6780"),
        ("state", "ca"),
        ("_quarantine_reason", "no_usable_fields"),
        # not strings at all
        ("first_name", 5),
        ("record_id", 7.5),
        ("ip_address", b"1.2.3.4"),
    ],
)
def test_off_contract_values_fail_with_every_case_listed(column: str, bad: object) -> None:
    df = pd.DataFrame([VALID, {**VALID, column: bad}], dtype=object)
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        validate_clean(df)
    failures = caught.value.failure_cases
    assert set(failures["column"]) == {column}
    assert set(failures["index"].dropna()) == {1}


def test_extra_columns_are_allowed_and_schema_is_not_strict() -> None:
    assert CLEAN_PROFILE_SCHEMA.strict is False
