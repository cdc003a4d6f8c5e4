"""Turning caller values into one canonical Python form per column kind.

Rows arrive from pandas, Spark ``Row.asDict()``, JSON and hand-written dicts, so the same date can
be a ``str``, a ``date`` or a ``pandas.Timestamp`` and a missing value can be ``None``, ``NaN`` or
``NaT``. Change detection compares what a caller sends with what the database holds; unless both
sides are in one canonical form, a rerun would see phantom changes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from idr_pipeline.store.tables import Column


def is_missing(value: Any) -> bool:
    """None, float NaN, and pandas' NA/NaT (recognized by type name to avoid importing pandas)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return type(value).__name__ in {"NAType", "NaTType"}


def _unwrap_numpy(value: Any) -> Any:
    # numpy scalars expose .item(); converting keeps drivers and json from choking on them.
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        return value.item()
    return value


def to_utc_naive(value: datetime) -> datetime:
    """Stores hold naive UTC: DATETIME has no zone, so mixing offsets would silently shift times."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return to_utc_naive(value.to_pydatetime() if hasattr(value, "to_pydatetime") else value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return to_utc_naive(datetime.fromisoformat(value.strip()))
    raise TypeError(f"cannot interpret {value!r} as a timestamp")


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value.strip()[:10])
    raise TypeError(f"cannot interpret {value!r} as a date")


def _to_json_text(value: Any) -> str:
    # Strings are taken to be JSON already; sorted keys make equal documents equal text.
    if isinstance(value, str):
        return value
    if isinstance(value, tuple | set | frozenset):
        value = sorted(value) if isinstance(value, set | frozenset) else list(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def converter(column: Column) -> Callable[[Any, datetime], Any]:
    """A function turning a caller value into ``column``'s canonical value.

    Built once per column and upsert, because a load calls it once per value of every row:
    the plain-string case returns before any of the general checks run.
    """
    general = _CONVERT[column.kind]
    plain_str = column.kind == "str" and column.allowed is None

    nullable_without_default = column.nullable and column.default is None

    def convert(value: Any, now: datetime) -> Any:
        if plain_str and type(value) is str:
            return value
        if value is None and nullable_without_default:
            return None
        value = _unwrap_numpy(value)
        if is_missing(value):
            value = now if column.default == "now" else column.default
            if value is None:
                if not column.nullable:
                    raise ValueError(f"column {column.name!r} must not be empty")
                return None
        try:
            result = general(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"column {column.name!r}: {exc}") from exc
        if column.allowed is not None and result not in column.allowed:
            raise ValueError(
                f"column {column.name!r} must be one of {sorted(column.allowed)}, got {result!r}"
            )
        return result

    return convert


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "str": lambda v: v if isinstance(v, str) else str(v),
    "int": int,
    # Rounded so a value read back from either backend compares equal to the one written.
    "float": lambda v: round(float(v), 9),
    "date": _to_date,
    "datetime": _to_datetime,
    "json": _to_json_text,
}
