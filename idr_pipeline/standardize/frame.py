"""Apply the field normalizers to a whole pandas batch (one Arrow batch of ``mapInPandas``).

Speed comes from repetition: a batch holds far fewer distinct values than rows (shared
cities, states, countries, household phones and addresses), so every column is factorized and
each distinct value is normalized once, then broadcast back with a numpy take. The per-value
functions are also ``lru_cache``d, which carries the benefit across batches in one worker. Id-like
columns, where nearly every value is distinct, first let a vectorized test (:mod:`canonical`)
pick out the values that are already canonical, so only the others pay for a Python call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from idr_pipeline.core.schema import CANONICAL_COLUMNS
from idr_pipeline.standardize import canonical
from idr_pipeline.standardize.base import WRONG_TYPE, Normalized, collapse_whitespace
from idr_pipeline.standardize.country import normalize_country
from idr_pipeline.standardize.dates import fast_dobs, normalize_dob, read_timestamps
from idr_pipeline.standardize.email import (
    canonical_emails,
    fast_match_keys,
    match_key_of_normalized,
    normalize_email,
)
from idr_pipeline.standardize.identifiers import normalize_identifier, normalize_national_id
from idr_pipeline.standardize.ip import normalize_ip
from idr_pipeline.standardize.locality import normalize_city, normalize_state
from idr_pipeline.standardize.names import normalize_name
from idr_pipeline.standardize.phone import fast_e164, normalize_phone
from idr_pipeline.standardize.postcode import normalize_postcode
from idr_pipeline.standardize.street import normalize_street

EMAIL_KEY = "email_key"
REASONS = "_reasons"
QUARANTINE_REASON = "_quarantine_reason"
ADDED_COLUMNS = [EMAIL_KEY, REASONS, QUARANTINE_REASON]

MISSING_RECORD_ID = "missing_record_id"
MISSING_SOURCE = "missing_source"
NO_USABLE_FIELDS = "no_usable_fields"

# Normalizers that need nothing but the value itself.
PLAIN_FIELDS: dict[str, Callable[[str | None], Normalized]] = {
    "source_customer_id": normalize_identifier,
    "first_name": normalize_name,
    "last_name": normalize_name,
    "email": normalize_email,
    "street": normalize_street,
    "city": normalize_city,
    "state": normalize_state,
    "national_id": normalize_national_id,
    "ip_address": normalize_ip,
    "device_id": normalize_identifier,
    "anonymous_id": normalize_identifier,
}
# Normalizers that read the value according to the row's country (or the default region).
REGIONAL_FIELDS: dict[str, Callable[[str | None, str], Normalized]] = {
    "phone": normalize_phone,
    "postcode": normalize_postcode,
    # People write their birthday the way their country does, whatever system records it.
    "dob": normalize_dob,
}
# Distinct values of these that the test accepts map to themselves, without the normalizer.
FAST_ACCEPT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "record_id": canonical.tidy_keys,
    "source": canonical.tidy_keys,
    "source_customer_id": canonical.canonical_identifiers,
    "device_id": canonical.canonical_identifiers,
    "anonymous_id": canonical.canonical_identifiers,
    "ip_address": canonical.canonical_ips,
}
# Like FAST_ACCEPT, for fields whose values are less often already canonical.
PLAIN_ACCEPT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "email": canonical_emails,
    "national_id": canonical.canonical_ssns,
}
#: Reads distinct values in one go: (done, values) where ``values[done]`` is what the normalizer
#: would return for them, with no reason.
FastMap = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
# Distinct values of these that the reader marks done take its values, without the normalizer.
REGIONAL_FAST: dict[str, Callable[[np.ndarray, str], tuple[np.ndarray, np.ndarray]]] = {
    "phone": fast_e164,
    "dob": fast_dobs,
}
# Any one of these identifies a person well enough to link on.
STRONG_FIELDS = [EMAIL_KEY, "phone", "national_id", "device_id", "anonymous_id", "source_customer_id"]
NAME_FIELDS = ["first_name", "last_name"]
# A single name is evidence together with something that places or dates its bearer.
NAME_CONTEXT_FIELDS = ["dob", "street", "postcode", "city", "state"]

_Column = np.ndarray  # object array of str | None, one entry per row


def standardize_frame(pdf: pd.DataFrame, default_region: str = "US") -> pd.DataFrame:
    """Normalized copy of ``pdf``: same rows, order and index; non-canonical columns untouched.

    Canonical columns are replaced by their normalized values (a rejected value becomes null),
    and three columns are added: ``email_key`` (the Gmail-folded match key), ``_reasons``
    ('field:reason;...' for every populated value that was rejected, else null) and
    ``_quarantine_reason`` (null when the row is usable; see :func:`quarantine_reasons`).
    Values that are not strings (numbers from JSON, say) are read as text rather than refused.
    """
    region = (default_region or "US").strip().upper()
    n = len(pdf)
    values: dict[str, _Column] = {}
    reasons: dict[str, _Column] = {}
    texts: dict[str, tuple[_Column, _Column]] = {
        c: _as_text(pdf[c]) if c in pdf.columns else (_nulls(n), _nulls(n)) for c in CANONICAL_COLUMNS
    }

    for key in ("record_id", "source"):
        values[key], _ = _map_unique(texts[key][0], _key_text, FAST_ACCEPT.get(key))
    values["country"], reasons["country"] = _map_unique(texts["country"][0], normalize_country)
    regions = np.where(pd.isna(values["country"]), region, values["country"])
    for field, normalize in PLAIN_FIELDS.items():
        accept = FAST_ACCEPT.get(field) or PLAIN_ACCEPT.get(field)
        values[field], reasons[field] = _map_unique(texts[field][0], normalize, accept)
    for field, normalize in REGIONAL_FIELDS.items():
        values[field], reasons[field] = _map_by_region(
            texts[field][0], regions, normalize, REGIONAL_FAST.get(field)
        )
    values["updated_at"], reasons["updated_at"] = _map_unique_batch(
        texts["updated_at"][0], lambda uniques: read_timestamps(uniques, region)
    )
    email_key, _ = _map_unique(
        values["email"], lambda v: Normalized(match_key_of_normalized(v)), fast=fast_match_keys
    )

    for field, (_, wrong_type) in texts.items():
        if field in reasons:
            reasons[field] = np.where(pd.isna(wrong_type), reasons[field], wrong_type)
    reason_text = _join_reasons({f: reasons[f] for f in CANONICAL_COLUMNS if f in reasons}, n)

    out = pdf.copy()
    for field in CANONICAL_COLUMNS:
        out[field] = values[field]
    out[EMAIL_KEY] = email_key
    out[REASONS] = reason_text
    out[QUARANTINE_REASON] = quarantine_reasons(out, reason_text)
    return out


def quarantine_reasons(out: pd.DataFrame, reason_text: _Column) -> _Column:
    """Why a normalized row cannot join the clean profiles (null when it can).

    A row without ``record_id`` or ``source`` cannot be traced back or deduplicated. Beyond
    that, a row is usable when it could ever be linked to, or told apart from, someone else:
    one strong identifier (email key, phone, national id, device id, anonymous id, source
    customer id) suffices; so does a full name (given and family name), which other records of
    the person can match; a single name needs a date of birth or a place (street, postcode,
    city, state) beside it; without a name, a date of birth with a street or postcode does.
    Country and IP address never suffice on their own: they are shared by whole countries and
    carrier networks, so a row holding only those would become a singleton identity that no
    one can ever resolve.
    """
    present = {c: out[c].notna().to_numpy() for c in [*STRONG_FIELDS, *NAME_FIELDS, *NAME_CONTEXT_FIELDS]}
    strong = np.logical_or.reduce([present[c] for c in STRONG_FIELDS])
    named = np.logical_or.reduce([present[c] for c in NAME_FIELDS])
    full_name = np.logical_and.reduce([present[c] for c in NAME_FIELDS])
    placed = np.logical_or.reduce([present[c] for c in NAME_CONTEXT_FIELDS])
    # Without a name, a date of birth together with an address still singles out one person.
    addressed = present["street"] | present["postcode"]
    usable = strong | full_name | (named & placed) | (present["dob"] & addressed)

    result = _nulls(len(out))
    for i in np.flatnonzero(~usable):
        detail = reason_text[i]
        result[i] = f"{NO_USABLE_FIELDS}: {detail}" if detail else NO_USABLE_FIELDS
    result[out["source"].isna().to_numpy()] = MISSING_SOURCE
    result[out["record_id"].isna().to_numpy()] = MISSING_RECORD_ID
    return result


def _nulls(n: int) -> _Column:
    return np.full(n, None, dtype=object)


def _key_text(value: str) -> Normalized:
    """record_id and source are keys from other systems: trimmed, otherwise left alone."""
    return Normalized(collapse_whitespace(value) or None)


def _map_unique(
    column: _Column,
    normalize: Callable[[str], Normalized],
    accept: Callable[[np.ndarray], np.ndarray] | None = None,
    fast: FastMap | None = None,
) -> tuple[_Column, _Column]:
    """Normalize each distinct non-null value once and broadcast (value, reason) to the rows.

    ``accept`` marks distinct values that ``normalize`` would return unchanged with no reason;
    those are kept as they are without calling it. ``fast`` does the same for values it can
    normalize itself, with the values it gives.
    """
    if fast is None and accept is not None:
        fast = _unchanged(accept)

    def normalize_many(uniques: np.ndarray) -> tuple[Sequence[str | None], Sequence[str | None]]:
        if fast is None:
            results = [normalize(u) for u in uniques]
            return [r.value for r in results], [r.reason for r in results]
        done, found = fast(uniques)
        rest = np.flatnonzero(~done)
        results = [normalize(u) for u in uniques[rest]]
        found, why = np.array(found, dtype=object), _nulls(len(uniques))
        found[rest], why[rest] = [r.value for r in results], [r.reason for r in results]
        return found, why

    return _map_unique_batch(column, normalize_many)


def _unchanged(accept: Callable[[np.ndarray], np.ndarray]) -> FastMap:
    """An ``accept`` test as a :data:`FastMap`: the values it accepts are their own result."""
    return lambda uniques: (accept(uniques), uniques)


def _map_unique_batch(
    column: _Column, normalize_many: Callable[[np.ndarray], tuple[Sequence[str | None], Sequence[str | None]]]
) -> tuple[_Column, _Column]:
    """Like :func:`_map_unique`, for a normalizer that reads all distinct values in one call."""
    codes, uniques = pd.factorize(column)
    found, why = normalize_many(np.asarray(uniques, dtype=object))
    # The extra trailing slot is what code -1 (a null input) picks up.
    value_table, reason_table = _nulls(len(uniques) + 1), _nulls(len(uniques) + 1)
    value_table[:-1], reason_table[:-1] = found, why
    return value_table[codes], reason_table[codes]


def _map_by_region(
    column: _Column,
    regions: _Column,
    normalize: Callable[[str, str], Normalized],
    fast: Callable[[np.ndarray, str], tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[_Column, _Column]:
    """Like :func:`_map_unique`, once per region (a batch has only a handful of countries)."""
    values, reasons = _nulls(len(column)), _nulls(len(column))
    for region in pd.unique(regions):
        rows = regions == region
        values[rows], reasons[rows] = _map_unique(
            column[rows],
            lambda v, r=region: normalize(v, r),
            fast=None if fast is None else lambda uniques, r=region: fast(uniques, r),
        )
    return values, reasons


def _join_reasons(reasons: dict[str, _Column], n: int) -> _Column:
    """'email:invalid_syntax;phone:invalid_number' per row; reasons are sparse, so loop on hits."""
    parts: dict[int, list[str]] = {}
    for field, column in reasons.items():
        for i in np.flatnonzero(pd.notna(column)):
            parts.setdefault(int(i), []).append(f"{field}:{column[i]}")
    out = _nulls(n)
    for i, labels in parts.items():
        out[i] = ";".join(labels)
    return out


def _as_text(series: pd.Series) -> tuple[_Column, _Column]:
    """(text, reason) per row: strings as they are; other scalars as text; containers refused."""
    column = series.to_numpy(dtype=object, na_value=None)
    reasons = _nulls(len(column))
    if pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
        return column, reasons
    column = column.copy()
    for i, value in enumerate(column):
        if value is not None and not isinstance(value, str):
            column[i], reasons[i] = _scalar_text(value)
    return column, reasons


def _scalar_text(value: object) -> tuple[str | None, str | None]:
    """Text a source meant by a non-string value (JSON numbers, Parquet dates, bytes)."""
    if isinstance(value, bool | np.bool_ | dict | list | tuple | set):
        return None, WRONG_TYPE
    if isinstance(value, int | np.integer):
        return str(int(value)), None
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return None, None
        if np.isinf(value):
            return None, WRONG_TYPE
        # 4155552671.0 is a phone number and 2134.0 a ZIP that lost its zero; '.0' is noise.
        return (str(int(value)) if float(value).is_integer() else repr(float(value))), None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None, WRONG_TYPE
        return (str(int(value)) if value == value.to_integral_value() else str(value)), None
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat(), None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace"), None
    return str(value), None
