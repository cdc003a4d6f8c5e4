"""The clean-profile contract rejects what a broken normalizer would let through."""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from idr_pipeline.standardize import CLEAN_PROFILE_SCHEMA, contract, validate_clean
from idr_pipeline.standardize.identifiers import MAX_ID_LENGTH
from idr_pipeline.standardize.whitespace import WHITESPACE_ESCAPES

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


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA, pd.NaT])
def test_every_spelling_of_missing_passes_the_checks(missing: object) -> None:
    """The checks pass missing values themselves; pandera is not asked to drop them first."""
    row = {k: (missing if k not in ("record_id", "source") else v) for k, v in VALID.items()}
    validate_clean(pd.DataFrame([VALID, row], dtype=object))


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


# --- The Arrow fast path: a check's verdicts are its Python predicate's, value by value. ---

_NOT_REGEX: dict[str, Callable[[str], object]] = {
    "is_lower_case": contract._is_lower,
    "is_calendar_date": contract._parses_as_date,
    "is_compressed_ip_address": contract._canonical_ip,
    "uuid_is_lower_case": contract._uuid_is_lower,
    f"str_length(1, {MAX_ID_LENGTH})": lambda text: 1 <= len(text) <= MAX_ID_LENGTH,
}


def _python_predicate(error: str) -> Callable[[str], object]:
    """What the check named ``error`` meant before Arrow: the ``re`` pattern or the predicate."""
    if error.startswith("str_matches('"):
        return re.compile(error.removeprefix("str_matches('").removesuffix("')")).match
    return _NOT_REGEX[error]


CHECKS: dict[str, pa.Check] = {
    check.error: check
    for column in CLEAN_PROFILE_SCHEMA.columns.values()
    for check in column.checks
    if check.error != "row_is_not_quarantined"
}


def test_every_element_check_has_a_python_reference() -> None:
    patterns = {
        contract.EMAIL_PATTERN,
        contract.E164_PATTERN,
        contract.ISO_DATE_PATTERN,
        contract.ISO_TIMESTAMP_PATTERN,
        contract.COUNTRY_PATTERN,
        contract.NAME_PATTERN,
        contract.TIDY_TEXT_PATTERN,
        contract.STATE_PATTERN,
        contract.POSTCODE_PATTERN,
        contract.NATIONAL_ID_PATTERN,
    }
    assert set(CHECKS) == {f"str_matches('{p}')" for p in patterns} | set(_NOT_REGEX)


def test_the_re2_whitespace_class_is_exactly_str_isspace() -> None:
    everything = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    spaces = pc.match_substring_regex(pyarrow.array(everything), f"^[{WHITESPACE_ESCAPES}]$")
    assert spaces.to_pylist() == [c.isspace() for c in everything]


# Characters where Python's and RE2's readings part: Unicode digits and spaces, a trailing
# newline (Python's `$` matches before it), and letters whose case is not ASCII's.
_TRAPS = "0123456789aAfFzZ-.:@+' T\n\t\x1c\x85\u00a0\u2003\u3000\u0660\u0663\uff11İıßǅK\u212a"
_trap_text = st.text(st.sampled_from(_TRAPS) | st.characters(), max_size=24)
_octet = st.integers(0, 300).map(str) | st.integers(0, 99).map(lambda n: f"0{n}")
_shaped = st.one_of(
    st.emails(),
    st.builds(
        lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
        st.sampled_from([0, 1, 999, 1000, 1900, 2023, 2024, 9999]) | st.integers(0, 10_000),
        st.integers(0, 13),
        st.integers(0, 32),
    ),
    # Around the identifier length limit, counted in code points, not UTF-8 bytes.
    st.builds(str.__mul__, st.sampled_from(["a", "é", "\U0001f600"]), st.integers(126, 130)),
    st.builds(lambda d, t: f"{d}T{t}Z", st.dates().map(str), st.times().map(lambda t: f"{t:%H:%M:%S}")),
    st.lists(_octet, min_size=4, max_size=4).map(".".join),
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda ip: ip.exploded),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.from_regex(r"\+[0-9]{5,16}", fullmatch=True),
    st.from_regex(r"[A-Za-z][A-Za-z' -]{0,12}", fullmatch=True),
    st.sampled_from(
        [
            "2023-02-30",
            "0999-01-01",
            "0000-01-01",
            "2024-02-29",
            "2023-02-29",
            "::ffff:1.2.3.4",
            "1.2.3.04",
            "256.1.1.1",
            "ABCDEF01-2345-4789-8ABC-DEF012345678\n",
            "a@b.c\n",
            "a\u00a0b@c.d",
            "+1415555\u0662671",
            "crm-1\n",
            "JOHN@EXAMPLE.COM",
            "İ@x.com",
            "ß@x.com",
        ]
    ),
)
# A shaped value, then perhaps upper-cased or with a trap glued to either end.
_text_value = st.builds(
    lambda text, upper, before, after: before + (text.upper() if upper else text) + after,
    _shaped | _trap_text,
    st.booleans(),
    st.sampled_from(["", "", "", " ", "\u00a0", "0"]),
    st.sampled_from(["", "", "", "\n", " ", "\u2003", "\u0660", "X"]),
)
_not_text = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=4))


@settings(max_examples=500, deadline=None)
@given(
    error=st.sampled_from(sorted(CHECKS)),
    values=st.lists(_text_value, max_size=12) | st.lists(_text_value | _not_text, max_size=12),
)
@example(error=f"str_matches('{contract.TIDY_TEXT_PATTERN}')", values=["a\u00a0b", "ab"])
@example(error=f"str_matches('{contract.EMAIL_PATTERN}')", values=["a@b\u00a0.c", "a@b.c"])
@example(error="is_lower_case", values=["ǅ@x.com", "a@x.com"])
@example(error="uuid_is_lower_case", values=["ABCDEF01-2345-4789-8ABC-DEF012345678\n"])
@example(error="is_calendar_date", values=["2023-02-30", "0999-01-01", "0000-01-01", "2024-02-29"])
@example(error="is_compressed_ip_address", values=["1.2.3.4", "::ffff:1.2.3.4", "01.2.3.4"])
@example(error=f"str_matches('{contract.TIDY_TEXT_PATTERN}')", values=["ok", "lone \ud800"])
def test_checks_give_their_python_predicates_verdicts(error: str, values: list[object]) -> None:
    """The Arrow fast path may only accept what Python accepts, and Python judges the rest."""
    predicate = _python_predicate(error)
    expected = [pd.isna(v) or (isinstance(v, str) and bool(predicate(v))) for v in values]
    verdicts = CHECKS[error]._check_fn(pd.Series(values, dtype=object))
    assert verdicts.tolist() == expected
