"""standardize_frame: the batch contract the Spark job depends on (rows, order, pass-through)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idr_pipeline.core.schema import CANONICAL_COLUMNS
from idr_pipeline.standardize import standardize_frame, validate_clean

PASS_THROUGH = ["extras", "_batch_id", "_ingested_at", "_line_number", "_trust", "_duplicate_count", "_raw"]

GOOD = {
    "record_id": " crm-1 ",
    "source": "crm",
    "source_customer_id": "C-001",
    "first_name": "Dr. José  O'NEIL Jr.",
    "last_name": "SMITH",
    "email": " John.Doe+promo@GoogleMail.com ",
    "phone": "(415) 555-2671",
    "street": "123 North Main Street Apartment 4",
    "city": "SAN  FRANCISCO",
    "state": "calif.",
    "postcode": "94105-1234",
    "country": "usa",
    "dob": "03/07/1985",
    "national_id": "123-45-6780",
    "ip_address": "::ffff:8.8.8.8",
    "device_id": "ABCDEF01-2345-4789-8ABC-DEF012345678",
    "anonymous_id": None,
    "updated_at": "2024-01-02 03:04:05+02:00",
}
GOOD_OUT = {
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
    "ip_address": "8.8.8.8",
    "device_id": "abcdef01-2345-4789-8abc-def012345678",
    "anonymous_id": None,
    "updated_at": "2024-01-02T01:04:05Z",
    "_reasons": None,
    "_quarantine_reason": None,
}


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=CANONICAL_COLUMNS).astype(object)
    df = df.where(df.notna(), None)
    n = len(df)
    df["extras"] = [f'{{"loyalty": "{i}"}}' for i in range(n)]
    df["_batch_id"] = "batch-7"
    df["_ingested_at"] = "2025-01-01T00:00:00Z"
    df["_line_number"] = np.arange(10, 10 + n, dtype=np.int64)
    df["_trust"] = np.int32(2)
    df["_duplicate_count"] = np.ones(n, dtype=np.int64)
    df["_raw"] = [f"raw line {i}" for i in range(n)]
    return df


def test_golden_row() -> None:
    out = standardize_frame(_frame([GOOD]))
    assert out.iloc[0][list(GOOD_OUT)].to_dict() == GOOD_OUT


def test_rows_order_index_and_pass_through_are_kept() -> None:
    rows = [GOOD, {"record_id": "x", "source": "web", "email": "test@@x.com"}, GOOD, {}] * 5
    pdf = _frame(rows)
    pdf.index = pd.RangeIndex(100, 100 + len(pdf))
    before = pdf.copy()
    out = standardize_frame(pdf)
    assert len(out) == len(pdf)
    assert out.index.equals(pdf.index)
    pd.testing.assert_frame_equal(out[PASS_THROUGH], before[PASS_THROUGH])
    pd.testing.assert_frame_equal(pdf, before)  # the input is not modified in place
    assert list(out.columns) == [*pdf.columns, "email_key", "_reasons", "_quarantine_reason"]


def test_garbage_rows_are_quarantined_with_a_reason() -> None:
    rows = [
        GOOD,
        {"record_id": "g1", "source": "web", "email": "test@@x.com", "phone": "0000000000", "city": "Paris"},
        {"record_id": None, "source": "web", "email": "a@example.com"},
        {"record_id": "g3", "source": "  ", "email": "a@example.com"},
        {"record_id": "g4", "source": "web"},
        {"record_id": "g5", "source": "web", "first_name": "Ann", "last_name": "Lee"},
        {"record_id": "g6", "source": "web", "first_name": "Ann", "postcode": "02134"},
        {"record_id": "g7", "source": "web", "anonymous_id": "9b2f3c1e-aaaa-4bbb-8ccc-123456789abc"},
        {"record_id": "g8", "source": "web", "ip_address": "8.8.8.8", "country": "US", "dob": "1990-01-01"},
    ]
    out = standardize_frame(_frame(rows))
    reasons = out["_quarantine_reason"].tolist()
    assert reasons == [
        None,
        "no_usable_fields: email:invalid_syntax;phone:invalid_number",
        "missing_record_id",
        "missing_source",
        "no_usable_fields",
        None,  # a full name alone: other records of Ann Lee can match it
        None,
        None,
        "no_usable_fields",
    ]
    assert out.loc[1, "_reasons"] == "email:invalid_syntax;phone:invalid_number"
    assert out.loc[1, "city"] == "Paris"


def test_phone_and_postcode_follow_the_row_country() -> None:
    rows = [
        {**GOOD, "record_id": "uk", "country": "United Kingdom", "phone": "020 7946 0018", "postcode": "sw1a1aa",
         "dob": "03/07/1985"},
        {**GOOD, "record_id": "none", "country": None, "phone": "020 7946 0018", "postcode": "sw1a1aa"},
    ]  # fmt: skip
    out = standardize_frame(_frame(rows), default_region="US")
    assert out.loc[0, ["country", "phone", "postcode", "dob"]].tolist() == [
        "GB",
        "+442079460018",
        "SW1A 1AA",
        "1985-07-03",
    ]
    assert out.loc[1, ["country", "phone", "postcode"]].tolist() == [None, None, None]
    assert out.loc[1, "_reasons"] == "phone:invalid_number;postcode:invalid_postcode"
    gb = standardize_frame(_frame(rows[1:]), default_region="GB")
    assert gb.loc[0, ["phone", "postcode"]].tolist() == ["+442079460018", "SW1A 1AA"]


def test_non_string_values_are_read_as_text() -> None:
    pdf = _frame([GOOD])
    odd = {
        "phone": 4155552671.0,
        "postcode": 2134,
        "source_customer_id": np.int64(12345),
        "dob": pd.Timestamp("1985-03-07"),
        "ip_address": {"v4": "8.8.8.8"},
        "national_id": float("nan"),
        "device_id": True,
    }
    for column, value in odd.items():
        cell = np.empty(1, dtype=object)
        cell[0] = value
        pdf[column] = cell
    out = standardize_frame(pdf)
    row = out.iloc[0]
    assert (row["phone"], row["postcode"], row["source_customer_id"]) == ("+14155552671", "02134", "12345")
    assert row["dob"] == "1985-03-07"
    assert row["ip_address"] is None and row["national_id"] is None and row["device_id"] is None
    assert row["_reasons"] == "ip_address:wrong_type;device_id:wrong_type"


def test_missing_canonical_columns_and_empty_frames() -> None:
    out = standardize_frame(pd.DataFrame({"record_id": ["r1"], "source": ["s"], "email": ["a@example.com"]}))
    assert out.loc[0, "email_key"] == "a@example.com"
    assert set(CANONICAL_COLUMNS) <= set(out.columns)
    empty = standardize_frame(_frame([]))
    assert len(empty) == 0 and "_quarantine_reason" in empty.columns
    validate_clean(empty[empty["_quarantine_reason"].isna()])


def test_validate_clean_passes_on_usable_rows() -> None:
    rows = [GOOD, {**GOOD, "record_id": "2", "email": "bad@", "country": "DE", "postcode": "10115"}, {}]
    out = standardize_frame(_frame(rows))
    usable = out[out["_quarantine_reason"].isna()]
    assert len(usable) == 2
    assert validate_clean(usable) is not None


_field_text = st.none() | st.text(max_size=25) | st.sampled_from(list(filter(None, GOOD.values())))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.fixed_dictionaries({c: _field_text for c in CANONICAL_COLUMNS}), min_size=1, max_size=8),
    region=st.sampled_from(["US", "GB", "FR", "ZZ"]),
)
def test_any_batch_keeps_its_rows_and_meets_the_contract(rows: list[dict], region: str) -> None:
    pdf = _frame(rows)
    out = standardize_frame(pdf, default_region=region)
    assert len(out) == len(pdf)
    pd.testing.assert_frame_equal(out[PASS_THROUGH], pdf[PASS_THROUGH])
    validate_clean(out[out["_quarantine_reason"].isna()])


@pytest.mark.parametrize("column", ["email", "phone", "dob", "country"])
def test_standardizing_twice_changes_nothing(column: str) -> None:
    once = standardize_frame(_frame([GOOD, {**GOOD, "country": "GB", "phone": "07911 123456"}]))
    twice = standardize_frame(once)
    pd.testing.assert_series_equal(twice[column], once[column])


def test_a_nameless_row_with_dob_and_address_is_usable() -> None:
    out = standardize_frame(
        _frame(
            [
                {"record_id": "r1", "source": "crm", "dob": "1980-02-03", "postcode": "2615"},
                {"record_id": "r2", "source": "crm", "dob": "1980-02-03", "city": "Canberra"},
            ]
        )
    )
    assert out["_quarantine_reason"].isna().tolist() == [True, False]


def test_collapse_whitespace_agrees_with_the_regex_it_replaced_on_every_code_point():
    import re
    import sys

    from idr_pipeline.standardize.base import collapse_whitespace

    regex = re.compile(r"\s+")
    for code in range(sys.maxunicode + 1):
        text = f" a{chr(code)}{chr(code)}b\t"
        assert collapse_whitespace(text) == regex.sub(" ", text).strip(), hex(code)
