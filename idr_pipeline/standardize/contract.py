"""The contract a clean profile row satisfies, checked on every batch the Spark job emits.

The normalizers are meant to guarantee these shapes already; the schema is the independent
second opinion, so a regression in one normalizer fails the job loudly instead of quietly
seeding the identity graph with keys that can never match (a phone without '+', an upper-case
email). The patterns are deliberately simpler than the normalizers: they state the output
shape, not how to get there.

Each check judges a column's distinct values twice over, cheaply then exactly: an Arrow
kernel over all of them at once accepts the ones that certainly pass, and the Python predicate
judges the rest. So the verdicts are the Python predicates' own, at a fraction of their cost
(most values of a clean batch are distinct, and nearly all of them pass).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from idr_pipeline.standardize.canonical import DOTTED_QUAD, arrow_strings
from idr_pipeline.standardize.identifiers import MAX_ID_LENGTH
from idr_pipeline.standardize.whitespace import WHITESPACE_ESCAPES

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
E164_PATTERN = r"^\+[1-9]\d{6,14}$"
ISO_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
ISO_TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
NAME_PATTERN = r"^[A-Za-z][A-Za-z'-]*(?: [A-Za-z][A-Za-z'-]*)*$"
# One space between words, none at the ends: what collapse_whitespace leaves behind.
TIDY_TEXT_PATTERN = r"^\S+(?: \S+)*$"
STATE_PATTERN = r"^[A-Z0-9]+(?: [A-Z0-9]+)*$"
POSTCODE_PATTERN = r"^[A-Z0-9][A-Z0-9 -]*$"
NATIONAL_ID_PATTERN = r"^[A-Z0-9]{6,20}$"
UUID_LIKE_UPPER = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"


#: Judges many strings at once, true only where the matching Python predicate is true.
_FastAccept = Callable[[pyarrow.StringArray], pyarrow.BooleanArray]


def _on_distinct(test: Callable[[str], bool], name: str, fast: _FastAccept | None = None) -> pa.Check:
    """An element-wise check run once per distinct value and broadcast back to the rows.

    The contract runs on every clean row of every batch, and most columns repeat a few values
    (cities, states, names, dates); per row, the checks cost as much as standardizing itself.
    A value that is not a ``str`` fails every such check, which is why the columns are declared
    ``object``: pandera's own ``str`` test is a per-row ``isinstance`` over every column.

    Many columns are mostly distinct even so (record ids, emails, phones, device ids), and one
    Python call per value was most of the contract's cost. ``fast`` accepts the distinct
    strings it can in one Arrow pass; it may be stricter than ``test`` but never laxer, and
    ``test`` judges whatever it leaves, so the verdicts are ``test``'s.
    """

    def check(series: pd.Series) -> pd.Series:
        column = _distinct(series)
        codes, uniques = column.codes, column.uniques
        ok = np.zeros(len(uniques), dtype=bool)
        text = None if fast is None else column.text()
        if text is not None:  # None: a value that is not a str, or has no UTF-8 form
            ok = pc.fill_null(fast(text), False).to_numpy(zero_copy_only=False, writable=True)
        for i in np.flatnonzero(~ok):
            ok[i] = isinstance(uniques[i], str) and bool(test(uniques[i]))
        return pd.Series(np.append(ok, True)[codes], index=series.index)  # code -1: missing

    # Missing values pass above (factorize and ``isna`` agree on what is missing), so pandera
    # need not find and drop them before every check.
    return pa.Check(check, error=name, ignore_na=False)


class _Distinct:
    """A column's factorization, and its distinct values as Arrow strings once asked for."""

    def __init__(self, series: pd.Series) -> None:
        self.series = series  # held, so that its id is not reused while this is cached
        self.codes, self.uniques = pd.factorize(series)
        self._text: pyarrow.Array | None = None
        self._converted = False

    def text(self) -> pyarrow.Array | None:
        if not self._converted:
            self._text, self._converted = arrow_strings(np.asarray(self.uniques, dtype=object)), True
        return self._text


#: The columns factorized so far in the current :func:`validate_clean`, by the Series' id.
_COLUMNS: ContextVar[dict[int, _Distinct] | None] = ContextVar("contract_columns", default=None)


def _distinct(series: pd.Series) -> _Distinct:
    """The column's :class:`_Distinct`, shared by its checks within one validation.

    pandera hands every check of a column the same Series, and six columns have two or three
    checks: factorizing and converting each once saved a third of that work. The cache lives
    only while :func:`validate_clean` runs, when nothing changes the frame.
    """
    columns = _COLUMNS.get()
    if columns is None:
        return _Distinct(series)
    found = columns.get(id(series))
    if found is None or found.series is not series:
        found = columns[id(series)] = _Distinct(series)
    return found


@contextmanager
def _sharing_columns() -> Iterator[None]:
    token = _COLUMNS.set({})
    try:
        yield
    finally:
        _COLUMNS.reset(token)


def _re2(pattern: str) -> str:
    """``pattern`` for RE2 (Arrow's regex engine), matching no string that Python's does not.

    Python's ``\\d``, ``\\s`` and ``\\S`` are Unicode-aware and RE2's ASCII-only, so RE2's
    ``[^@\\s]`` would let a no-break space through. Digits become ASCII digits (stricter: a
    Unicode digit is left to Python) and whitespace every character ``str.isspace`` accepts.
    ``\\s`` only ever appears inside a bracket class in these patterns. Python's ``$`` also
    matches before a final newline and RE2's does not: stricter again.
    """
    return (
        pattern.replace(r"\d", "[0-9]")
        .replace(r"\S", f"[^{WHITESPACE_ESCAPES}]")
        .replace(r"\s", WHITESPACE_ESCAPES)
    )


def _matches(pattern: str) -> pa.Check:
    re2 = _re2(pattern)
    return _on_distinct(
        re.compile(pattern).match,
        f"str_matches('{pattern}')",
        lambda values: pc.match_substring_regex(values, re2),
    )


def _is_lower(text: str) -> bool:
    return text == text.lower()


def _ascii_and_lower(values: pyarrow.StringArray) -> pyarrow.BooleanArray:
    """Where ``_is_lower`` holds for certain: lower-casing ASCII is all ``str.lower`` does to it."""
    return pc.and_(pc.string_is_ascii(values), pc.equal(pc.ascii_lower(values), values))


def _parses_as_date(text: str) -> bool:
    try:
        return date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def _written_back_alike(values: pyarrow.StringArray) -> pyarrow.BooleanArray:
    """Dates from year 1000 on that Arrow reads and writes back unchanged.

    The round trip is the test because Arrow's strptime rolls an impossible day over
    (2023-02-30 reads as 2023-03-02) instead of refusing it.
    """
    shaped = pc.match_substring_regex(values, r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}$")
    parsed = pc.strptime(values, format="%Y-%m-%d", unit="s", error_is_null=True)
    return pc.and_kleene(shaped, pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), values))


def _canonical_ip(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).compressed == text
    except ValueError:
        return False


_UUID_LIKE = re.compile(UUID_LIKE_UPPER)
#: No ``$``, so that RE2 misses only what Python's pattern misses too (whose ``$`` also
#: matches before a final newline).
_UUID_PREFIX = UUID_LIKE_UPPER.removesuffix("$")


def _uuid_is_lower(text: str) -> bool:
    """A UUID-shaped id must be lower-case, or iOS and Android spellings would not join."""
    return not _UUID_LIKE.match(text) or _is_lower(text)


def _not_uuid_or_lower(values: pyarrow.StringArray) -> pyarrow.BooleanArray:
    return pc.or_(pc.invert(pc.match_substring_regex(values, _UUID_PREFIX)), _ascii_and_lower(values))


def _id_length_ok(text: str) -> bool:
    return 1 <= len(text) <= MAX_ID_LENGTH


def _id_lengths_ok(values: pyarrow.StringArray) -> pyarrow.BooleanArray:
    """Exact: ``utf8_length`` counts code points, as ``len`` does."""
    lengths = pc.utf8_length(values)
    return pc.and_(pc.greater_equal(lengths, 1), pc.less_equal(lengths, MAX_ID_LENGTH))


def _text(pattern: str = TIDY_TEXT_PATTERN, *checks: pa.Check) -> pa.Column:
    return pa.Column(object, nullable=True, checks=[_matches(pattern), *checks])


def _identifier() -> pa.Column:
    return _text(
        TIDY_TEXT_PATTERN,
        _on_distinct(_id_length_ok, f"str_length(1, {MAX_ID_LENGTH})", _id_lengths_ok),
        _on_distinct(_uuid_is_lower, "uuid_is_lower_case", _not_uuid_or_lower),
    )


_EMAIL_CHECKS = (_on_distinct(_is_lower, "is_lower_case", _ascii_and_lower),)

CLEAN_PROFILE_SCHEMA = pa.DataFrameSchema(
    {
        "record_id": pa.Column(object, nullable=False, checks=_matches(TIDY_TEXT_PATTERN)),
        "source": pa.Column(object, nullable=False, checks=_matches(TIDY_TEXT_PATTERN)),
        "source_customer_id": _identifier(),
        "first_name": _text(NAME_PATTERN),
        "last_name": _text(NAME_PATTERN),
        "email": _text(EMAIL_PATTERN, *_EMAIL_CHECKS),
        "email_key": _text(EMAIL_PATTERN, *_EMAIL_CHECKS),
        "phone": _text(E164_PATTERN),
        "street": _text(),
        "city": _text(),
        "state": _text(STATE_PATTERN),
        "postcode": _text(POSTCODE_PATTERN),
        "country": _text(COUNTRY_PATTERN),
        "dob": _text(
            ISO_DATE_PATTERN, _on_distinct(_parses_as_date, "is_calendar_date", _written_back_alike)
        ),
        "national_id": _text(NATIONAL_ID_PATTERN),
        "ip_address": pa.Column(
            object,
            nullable=True,
            checks=_on_distinct(
                _canonical_ip,
                "is_compressed_ip_address",
                lambda values: pc.match_substring_regex(values, DOTTED_QUAD),
            ),
        ),
        "device_id": _identifier(),
        "anonymous_id": _identifier(),
        "updated_at": _text(ISO_TIMESTAMP_PATTERN),
        "_reasons": pa.Column(str, nullable=True, required=False),
        "_quarantine_reason": pa.Column(
            object,
            nullable=True,
            required=False,
            checks=pa.Check(lambda s: s.isna(), ignore_na=False, error="row_is_not_quarantined"),
        ),
    },
    strict=False,
    name="clean_profile",
)


def validate_clean(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` unchanged if every row meets the contract, else ``SchemaErrors`` naming every failure.

    Lazy validation so that one run reports all broken columns and values at once, which is
    what you need to fix a normalizer, rather than only the first. In place because the schema
    neither coerces, fills nor drops anything: pandera's defensive copy of the whole batch
    changed nothing and cost more than a third of the validation.
    """
    with _sharing_columns():
        return CLEAN_PROFILE_SCHEMA.validate(df, lazy=True, inplace=True)
