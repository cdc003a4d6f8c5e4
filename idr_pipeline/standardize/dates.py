"""Dates of birth and record timestamps, from the many ways people and systems write them.

Hand-rolled on purpose: general parsers (dateutil, pandas) guess silently, e.g. read '1' as the
first of the current month or resolve '03/07/1985' without regard to where the data came from.
Here the ambiguous dd/mm vs mm/dd reading follows the data's region (month first only for the
US), a day above 12 overrides that, and two-digit years pivot so that a birth date is never in
the future.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from idr_pipeline.standardize.base import (
    BEFORE_1900,
    EMPTY,
    FUTURE_DATE,
    IMPLAUSIBLE_TIMESTAMP,
    PLACEHOLDER,
    UNPARSEABLE_DATE,
    UNPARSEABLE_TIMESTAMP,
    Normalized,
    collapse_whitespace,
    is_placeholder,
)
from idr_pipeline.standardize.canonical import arrow_strings as _arrow_strings
from idr_pipeline.standardize.canonical import true_where

# Regions that write the month first (the US and the territories that follow its conventions).
MONTH_FIRST_REGIONS: frozenset[str] = frozenset({"US", "PR", "GU", "VI", "AS", "MP", "UM"})
# The classic 'unknown birthday' filler of legacy systems.
PLACEHOLDER_DOBS: frozenset[date] = frozenset({date(1900, 1, 1)})
MIN_DOB_YEAR = 1900
TIMESTAMP_YEARS = range(1900, 2101)

MONTHS: dict[str, int] = {}
for _number, _name in enumerate(
    "january february march april may june july august september october november december".split(), start=1
):
    MONTHS[_name] = _number
    MONTHS[_name[:3]] = _number
MONTHS["sept"] = 9
# Weekdays, ordinal endings and filler words carry no date information.
_IGNORED_WORDS = frozenset(
    "mon monday tue tues tuesday wed wednesday thu thur thurs thursday fri friday sat saturday sun sunday "
    "st nd rd th of the".split()
)

_TIME = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d{2}:?\d{2})?)?"
_ISO = re.compile(rf"^(\d{{4}})([-/.])(\d{{1,2}})\2(\d{{1,2}}){_TIME}$", re.IGNORECASE)
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_NUMERIC = re.compile(rf"^(\d{{1,2}})([-/. ])(\d{{1,2}})\2(\d{{4}}|\d{{2}}){_TIME}$", re.IGNORECASE)
_WORDY = re.compile(r"^[A-Za-z0-9 ,./-]+$")
_WORD_TOKENS = re.compile(r"[a-z]+|\d+")
_EPOCH = re.compile(r"^-?\d+(?:\.\d+)?$")
_DATE_TIME = re.compile(
    r"^(?P<date>.+?)(?:[ T,]+(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.\d+)?)?\s*"
    r"(?P<ampm>[ap]\.?m\.?)?\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}:?\d{2})?)?$",
    re.IGNORECASE,
)


def is_day_first(region: str | None) -> bool:
    """Whether an ambiguous '03/07' means 3 July (most of the world) or March 7 (US)."""
    return (region or "").strip().upper() not in MONTH_FIRST_REGIONS


def parse_date(text: str, day_first: bool = False, today: date | None = None) -> date | None:
    """Calendar date written in ``text``, or None when no supported format reads it."""
    return _parse_date(collapse_whitespace(text), day_first, today or date.today())


def _parse_date(text: str, day_first: bool, today: date) -> date | None:
    if match := _ISO.match(text):
        return _make_date(int(match[1]), int(match[3]), int(match[4]))
    if match := _COMPACT.match(text):
        parsed = _make_date(int(match[1]), int(match[2]), int(match[3]))
        if parsed is not None:
            return parsed
        return _parse_date(f"{text[:2]}/{text[2:4]}/{text[4:]}", day_first, today)
    if match := _NUMERIC.match(text):
        return _numeric(int(match[1]), int(match[3]), match[4], day_first, today)
    if _WORDY.match(text):
        return _with_month_name(text, today)
    return None


def _numeric(first: int, second: int, year: str, day_first: bool, today: date) -> date | None:
    if first > 12 >= second:
        day, month = first, second
    elif second > 12 >= first:
        month, day = first, second
    elif day_first:
        day, month = first, second
    else:
        month, day = first, second
    return _with_year(year, month, day, today)


def _with_month_name(text: str, today: date) -> date | None:
    """'07-Mar-1985', 'March 7, 1985', 'Thu 7th of March 85': one month word, day, year."""
    tokens = [t for t in _WORD_TOKENS.findall(text.lower()) if t not in _IGNORED_WORDS]
    words = [t for t in tokens if t.isalpha()]
    numbers = [t for t in tokens if t.isdigit()]
    if len(words) != 1 or words[0] not in MONTHS or len(numbers) != 2:
        return None
    month = MONTHS[words[0]]
    long_years = [n for n in numbers if len(n) == 4]
    if len(long_years) == 1:
        year = long_years[0]
        day = numbers[1] if numbers[0] == year else numbers[0]
    elif not long_years:
        day, year = numbers
    else:
        return None
    if len(day) > 2 or len(year) not in (2, 4):
        return None
    return _with_year(year, month, int(day), today)


def _with_year(year: str, month: int, day: int, today: date) -> date | None:
    if len(year) == 4:
        return _make_date(int(year), month, day)
    # Two-digit year: this century unless that would put the date in the future.
    recent = _make_date(2000 + int(year), month, day)
    if recent is not None and recent <= today:
        return recent
    return _make_date(1900 + int(year), month, day)


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def normalize_dob(value: str | None, default_region: str = "US", today: date | None = None) -> Normalized:
    """ISO 'YYYY-MM-DD' birth date; future, pre-1900 and filler dates are rejected."""
    if value is None:
        return EMPTY
    return _normalize_dob(value, is_day_first(default_region), today or date.today())


@lru_cache(maxsize=65536)
def _normalize_dob(value: str, day_first: bool, today: date) -> Normalized:
    text = collapse_whitespace(value)
    if not text:
        return EMPTY
    if is_placeholder(text):
        return Normalized(None, PLACEHOLDER)
    parsed = _parse_date(text, day_first, today)
    if parsed is None:
        return Normalized(None, UNPARSEABLE_DATE)
    if parsed > today:
        return Normalized(None, FUTURE_DATE)
    if parsed.year < MIN_DOB_YEAR:
        return Normalized(None, BEFORE_1900)
    if parsed in PLACEHOLDER_DOBS:
        return Normalized(None, PLACEHOLDER)
    return Normalized(parsed.isoformat(), None)


def parse_timestamp(value: str | None, default_region: str = "US") -> Normalized:
    """UTC 'YYYY-MM-DDTHH:MM:SSZ' from ISO-8601, epoch seconds/millis, or a date with a time."""
    if value is None:
        return EMPTY
    return _parse_timestamp(value, is_day_first(default_region), date.today())


def timestamp_reader(default_region: str = "US") -> Callable[[str | None], Normalized]:
    """``parse_timestamp`` for many values of one region: the region's day order and today's
    date are looked up once, not per value (a batch's timestamps are nearly all distinct)."""
    day_first, today = is_day_first(default_region), date.today()

    def read(value: str | None) -> Normalized:
        return EMPTY if value is None else _parse_timestamp(value, day_first, today)

    return read


# The shapes systems write timestamps in (ISO 8601 with a 'T' or a space, optional fraction and
# UTC offset), in ASCII digits only: what ``read_timestamps`` reads without the general path.
_PLAIN_ISO_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})?", re.ASCII
)


def read_timestamps(values: Sequence[str], default_region: str = "US") -> tuple[np.ndarray, np.ndarray]:
    """(values, reasons) of ``parse_timestamp`` for many distinct strings at once.

    A batch's timestamps are nearly all distinct and nearly all plain ISO 8601, for which the
    general path's whitespace, placeholder and epoch checks, its cache and ``strftime`` are
    most of the cost per value, and this path skips them. Anything else, or
    anything the plain path cannot read, takes the general path, so the results are the same.
    """
    read = timestamp_reader(default_region)
    n = len(values)
    out, reasons = np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    plain, seconds = _plain_iso_seconds(values)
    for i in np.flatnonzero(~plain):
        text = values[i]
        if _PLAIN_ISO_TIMESTAMP.fullmatch(text):
            try:
                moment = _as_utc(datetime.fromisoformat(text))
            except ValueError:
                moment = None
            if moment is not None and moment.year in TIMESTAMP_YEARS:
                seconds[i], plain[i] = int(moment.timestamp()), True
                continue
        out[i], reasons[i] = read(text)
    if plain.any():
        spelled = np.datetime_as_string(seconds[plain].astype("datetime64[s]"), unit="s")
        out[plain] = np.char.add(spelled, "Z").astype(object)
    return out, reasons


# The commonest plain ISO shapes, which ``datetime.fromisoformat`` certainly reads: a fraction
# of three or six digits, an offset within a day.
_FAST_ISO_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3}|\.[0-9]{6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?$"
)


def _plain_iso_seconds(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(read, UTC epoch seconds) of the plain path of ``read_timestamps``, as array arithmetic.

    Where a value has the plain shape, a valid calendar date and clock time, and lands in
    :data:`TIMESTAMP_YEARS` in UTC, the plain path's ``fromisoformat`` and ``_as_utc`` give
    these seconds (the fraction is cut, as ``replace(microsecond=0)`` does after a whole-minute
    offset); every other value is left to the per-value loop.
    """
    n = len(values)
    read, seconds = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64)
    text = _arrow_strings(np.asarray(values, dtype=object))
    if text is None or n == 0:
        return read, seconds
    shaped = true_where(pc.match_substring_regex(text, _FAST_ISO_TIMESTAMP))
    if not shaped.any():
        return read, seconds
    rows = text.filter(pa.array(shaped))
    year, month, day, hour, minute, second = (
        _ints(pc.utf8_slice_codeunits(rows, start, start + width))
        for start, width in ((0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2))
    )
    zoned = true_where(pc.match_substring_regex(rows, r"[+-][0-9]{2}:[0-9]{2}$"))
    offset = np.zeros(len(rows), dtype=np.int64)
    if zoned.any():
        tail = pc.utf8_slice_codeunits(rows.filter(pa.array(zoned)), -6)
        sign = np.where(true_where(pc.starts_with(tail, "-")), -1, 1)
        hours, minutes = (_ints(pc.utf8_slice_codeunits(tail, a, a + 2)) for a in (1, 4))
        offset[zoned] = sign * (hours * 3600 + minutes * 60)
    valid = _is_date(year, month, day) & (hour <= 23) & (minute <= 59) & (second <= 59)
    moment = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    utc_year = moment.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970
    valid &= (utc_year >= TIMESTAMP_YEARS.start) & (utc_year < TIMESTAMP_YEARS.stop)
    read[np.flatnonzero(shaped)[valid]] = True
    seconds[read] = moment[valid]
    return read, seconds


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's ``days_from_civil``)."""
    year = year - (month <= 2)
    era = np.floor_divide(year, 400)
    year_of_era = year - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


@lru_cache(maxsize=65536)
def _parse_timestamp(value: str, day_first: bool, today: date) -> Normalized:
    text = collapse_whitespace(value)
    if not text:
        return EMPTY
    if is_placeholder(text):
        return Normalized(None, PLACEHOLDER)
    moment = _read_timestamp(text, day_first, today)
    if moment is None:
        return Normalized(None, UNPARSEABLE_TIMESTAMP)
    if moment.year not in TIMESTAMP_YEARS:
        return Normalized(None, IMPLAUSIBLE_TIMESTAMP)
    return Normalized(moment.strftime("%Y-%m-%dT%H:%M:%SZ"), None)


def _read_timestamp(text: str, day_first: bool, today: date) -> datetime | None:
    if _EPOCH.match(text):
        compact = _COMPACT.match(text)
        as_date = compact and _make_date(int(compact[1]), int(compact[2]), int(compact[3]))
        if as_date and as_date.year in TIMESTAMP_YEARS:
            return datetime(as_date.year, as_date.month, as_date.day, tzinfo=UTC)
        return _from_epoch(float(text))
    try:
        return _as_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    match = _DATE_TIME.match(text)
    if match is None:
        return None
    day = _parse_date(match["date"], day_first, today)
    if day is None:
        return None
    if match["h"] is None:
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return _with_time(day, match)


def _from_epoch(number: float) -> datetime | None:
    """Seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude."""
    for scale in (1e9, 1e6, 1e3):
        if abs(number) >= 1e8 * scale:
            number /= scale
            break
    try:
        return datetime.fromtimestamp(number, tz=UTC).replace(microsecond=0)
    except (OverflowError, OSError, ValueError):
        return None


def _with_time(day: date, match: re.Match[str]) -> datetime | None:
    hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"] or 0)
    ampm = (match["ampm"] or "").lower().replace(".", "")
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    try:
        # An offset of a day or more ('+25:00') is as unreadable as hour 25: a reason, not a crash.
        tz = _offset(match["tz"])
        return _as_utc(datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=tz))
    except ValueError:
        return None


def _offset(text: str | None) -> timezone:
    if not text or text.upper() in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _as_utc(moment: datetime) -> datetime:
    """Naive timestamps are taken to be UTC already: sources that omit the zone log in UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


# Numeric dates in ASCII, one pattern per separator (RE2 has no back-references): each is a
# subset of what ``_ISO``, ``_COMPACT`` or ``_NUMERIC`` reads, without a time and without any
# whitespace but a single space separator, so ``collapse_whitespace`` leaves the value alone.
_FAST_ISO = "|".join(rf"^[0-9]{{4}}{s}[0-9]{{1,2}}{s}[0-9]{{1,2}}$" for s in ("-", "/", r"\."))
_FAST_COMPACT = r"^[0-9]{8}$"
_FAST_NUMERIC = "|".join(
    rf"^[0-9]{{1,2}}{s}[0-9]{{1,2}}{s}(?:[0-9]{{4}}|[0-9]{{2}})$" for s in ("-", "/", r"\.", " ")
)


def fast_dobs(values: np.ndarray, default_region: str = "US") -> tuple[np.ndarray, np.ndarray]:
    """(done, ISO date) for the values ``normalize_dob`` reads as a plausible birth date.

    A batch's birth dates are mostly numeric ('03/07/1985', '1985-03-07', '19850307',
    '3/7/85'), and the per-value path is a chain of Python calls for each. Here the distinct values
    of those shapes are read as Arrow and numpy arrays with the same rules: the ISO and compact
    readings, the region's day order unless a part above 12 decides it, the two-digit year's
    pivot, then the calendar and the plausibility checks. Only values that come out as a
    usable date are done; the rest (a compact date that is not one, names of months,
    anything rejected) take ``normalize_dob``.
    """
    n = len(values)
    done, out = np.zeros(n, dtype=bool), np.full(n, None, dtype=object)
    text = _arrow_strings(values)
    if text is None or n == 0:
        return done, out
    parts = pc.split_pattern_regex(text, r"[-/. ]")
    year, month, day = (np.zeros(n, dtype=np.int64) for _ in range(3))
    short_year = np.zeros(n, dtype=bool)
    iso = true_where(pc.match_substring_regex(text, _FAST_ISO))
    if iso.any():
        year[iso], month[iso], day[iso] = (_part(parts, i, iso) for i in range(3))
    compact = true_where(pc.match_substring_regex(text, _FAST_COMPACT))
    if compact.any():
        digits = text.filter(pa.array(compact))
        year[compact], month[compact], day[compact] = (
            _ints(pc.utf8_slice_codeunits(digits, a, b)) for a, b in ((0, 4), (4, 6), (6, 8))
        )
    numeric = true_where(pc.match_substring_regex(text, _FAST_NUMERIC))
    if numeric.any():
        first, second, spelled_year = (_part(parts, i, numeric) for i in range(3))
        short_year[numeric] = _ints(pc.utf8_length(pc.list_element(parts.filter(pa.array(numeric)), 2))) == 2
        month_first = np.where(
            (first > 12) & (second <= 12),
            False,
            np.where((second > 12) & (first <= 12), True, not is_day_first(default_region)),
        )
        month[numeric] = np.where(month_first, first, second)
        day[numeric] = np.where(month_first, second, first)
        year[numeric] = spelled_year
    today = date.today()
    today_key = today.year * 10000 + today.month * 100 + today.day
    # Two-digit years: this century unless that date is invalid or in the future (_with_year).
    recent = year + 2000
    this_century = _is_date(recent, month, day) & (recent * 10000 + month * 100 + day <= today_key)
    year = np.where(short_year, np.where(this_century, recent, year + 1900), year)
    key = year * 10000 + month * 100 + day
    done = (iso | compact | numeric) & _is_date(year, month, day)
    done &= (key <= today_key) & (year >= MIN_DOB_YEAR)
    done &= ~np.isin(key, [d.year * 10000 + d.month * 100 + d.day for d in PLACEHOLDER_DOBS])
    if done.any():
        spelled = np.char.add(
            np.char.add(year[done].astype("U4"), "-"), np.char.zfill(month[done].astype("U2"), 2)
        )
        out[done] = np.char.add(np.char.add(spelled, "-"), np.char.zfill(day[done].astype("U2"), 2)).astype(
            object
        )
    return done, out


def _is_date(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Where ``date(year, month, day)`` would not raise (years 1 to 9999, the Gregorian calendar)."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    lengths = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 1, 12) - 1]
    lengths = lengths + (leap & (month == 2))
    return (year >= 1) & (year <= 9999) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= lengths)


def _part(parts: pa.Array, index: int, rows: np.ndarray) -> np.ndarray:
    return _ints(pc.list_element(parts.filter(pa.array(rows)), index))


def _ints(text: pa.Array) -> np.ndarray:
    return np.asarray(pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
