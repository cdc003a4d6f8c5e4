"""One micro-batch of landed events, resolved and rolled up as the Spark feature step would.

The stream service keeps ``event_aggregates`` current between batch publishes; for the two
to agree (and the daily batch to be a reconciliation that changes nothing when nothing went
wrong), every rule here is the Python twin of a Spark rule:

* identity keys as :func:`idr_pipeline.segments.resolved_events.resolve_event_identities`
  builds them (the batch's identifier normalization, the Gmail-folded e-mail key, the web
  account key), looked up in the store's ``identifiers``; a value two identities hold resolves
  nobody; rungs in the same order (user_id, e-mail, cookie, identify event);
* values as :func:`idr_pipeline.segments.aggregates.build_event_aggregates` keeps them
  (category and campaign lower-cased, longer than the DSL can name -> "", campaign only on ad
  clicks, product only on purchases, a missing price counts 0);
* whole 24-hour periods back from the as-of instant (``days_ago``), which the service sets to
  the end of the current UTC day, the instant the batch's current daily partition uses too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from idr_pipeline.segments.aggregates import AGGREGATE_DAYS
from idr_pipeline.segments.resolved_events import USER_ID_SOURCE, as_of_end
from idr_pipeline.standardize.email import email_match_key
from idr_pipeline.standardize.identifiers import normalize_identifier
from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.tables import AGGREGATE_VALUE_CHARS, AGGREGATED_EVENT_TYPES, STREAM_IDENTIFY_LINKS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
_DAY_US = 86_400 * 1_000_000
#: Holders of held aggregates that are cookies rather than identities carry this prefix.
COOKIE = "anonymous_id:"
_CHUNK = 10_000


def anchor_of(now: datetime) -> datetime:
    """The as-of instant of the current day: the next UTC midnight (windows end there, exclusive)."""
    return as_of_end(now.astimezone(UTC).date())


def day_number(ts: datetime) -> int:
    """Days since 1970-01-01 of the UTC day holding ``ts``."""
    return (ts.astimezone(UTC) - EPOCH) // DAY


def day_start(day: int) -> datetime:
    return EPOCH + day * DAY


def days_ago(end: datetime, ts: datetime) -> int:
    """Spark's ``floor((end - ts - 1 µs) / 1 day)``: 0 for ``end - 1 day <= ts < end``."""
    gap = (end - ts) // timedelta(microseconds=1)
    return (gap - 1) // _DAY_US


def _value(text: str | None) -> str:
    return text if text is not None and len(text) <= AGGREGATE_VALUE_CHARS else ""


def value_key(row: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(event_type, category, product_id, campaign) as event_aggregates holds them."""
    kind = row["type"]
    category = row.get("category")
    campaign = row.get("campaign")
    return (
        kind,
        _value(category.lower() if category is not None else None),
        _value(row.get("product_id")) if kind == "purchase" else "",
        _value(campaign.lower() if campaign is not None else None) if kind == "ad_click" else "",
    )


@lru_cache(maxsize=1 << 20)
def _normalized(value: str) -> str | None:
    return normalize_identifier(value).value


@lru_cache(maxsize=1 << 20)
def _email_key(value: str) -> str | None:
    return email_match_key(value)


def _identifier(value: Any) -> str | None:
    # Cached: a visitor's cookie repeats in every event of a session.
    return _normalized(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Keys:
    """The look-up keys of one event, each already in the identifiers table's spelling."""

    user: str | None
    email: str | None
    anon: str | None


def event_keys(row: Mapping[str, Any], user_id_source: str = USER_ID_SOURCE) -> Keys:
    user = _identifier(row.get("user_id"))
    email = row.get("email")
    return Keys(
        f"{user_id_source}:{user}" if user is not None else None,
        _email_key(email) if isinstance(email, str) and email else None,
        _identifier(row.get("anonymous_id")),
    )


def unique_lookup(store: IdentityStore, id_type: str, values: Iterable[str]) -> dict[str, str]:
    """``value -> identity`` for the values exactly one identity holds in the store."""
    owners: dict[str, set[str]] = {}
    wanted = sorted(set(values))
    for i in range(0, len(wanted), _CHUNK):
        for r in store.select_rows("identifiers", {"id_type": id_type, "id_value": wanted[i : i + _CHUNK]}):
            owners.setdefault(r["id_value"], set()).add(r["identity_id"])
    return {v: next(iter(ids)) for v, ids in owners.items() if len(ids) == 1}


def identify_links(store: IdentityStore, cookies: Iterable[str]) -> dict[str, str | None]:
    """The stored cookie links: identity, or None for a cookie two identities claimed."""
    out: dict[str, str | None] = {}
    wanted = sorted(set(cookies))
    for i in range(0, len(wanted), _CHUNK):
        for r in store.select_rows(STREAM_IDENTIFY_LINKS.name, {"anonymous_id": wanted[i : i + _CHUNK]}):
            out[r["anonymous_id"]] = r["identity_id"]
    return out


@dataclass
class Resolution:
    """Per event: its identity (or None) and the rung that found it; the links this batch made."""

    identities: list[str | None]
    rungs: list[str | None]
    keys: list[Keys]
    #: Cookie -> identity (None: now ambiguous) for links this batch created or changed.
    link_changes: dict[str, str | None] = field(default_factory=dict)


def resolve(store: IdentityStore, rows: Sequence[Mapping[str, Any]]) -> Resolution:
    """Resolve one micro-batch's events against the store, identify events first.

    An identify event ties its cookie to the identity its user_id or e-mail resolves to; the
    link is kept in ``stream_identify_links`` (written by the caller from ``link_changes``) so
    later events of the cookie resolve too, and a cookie claimed by two identities resolves
    nobody, as in the batch.
    """
    keys = [event_keys(r) for r in rows]
    by_user = unique_lookup(store, "source_customer_key", (k.user for k in keys if k.user))
    by_email = unique_lookup(store, "email_key", (k.email for k in keys if k.email))
    by_anon = unique_lookup(store, "anonymous_id", (k.anon for k in keys if k.anon))
    stored = identify_links(store, (k.anon for k in keys if k.anon))
    claims: dict[str, set[str]] = {}
    for row, k in zip(rows, keys, strict=True):
        if row["type"] == "identify" and k.anon:
            strong = by_user.get(k.user) if k.user else None
            strong = strong or (by_email.get(k.email) if k.email else None)
            if strong:
                claims.setdefault(k.anon, set()).add(strong)
    links: dict[str, str | None] = dict(stored)
    changes: dict[str, str | None] = {}
    for cookie, ids in claims.items():
        if cookie in stored:
            new = stored[cookie] if stored[cookie] is not None and ids == {stored[cookie]} else None
        else:
            new = next(iter(ids)) if len(ids) == 1 else None
        if cookie not in stored or new != stored[cookie]:
            changes[cookie] = new
        links[cookie] = new
    identities: list[str | None] = []
    rungs: list[str | None] = []
    for k in keys:
        found = [
            ("user_id", by_user.get(k.user) if k.user else None),
            ("email_key", by_email.get(k.email) if k.email else None),
            ("anonymous_id", by_anon.get(k.anon) if k.anon else None),
            ("identify", links.get(k.anon) if k.anon else None),
        ]
        rung, identity = next(((r, i) for r, i in found if i is not None), (None, None))
        identities.append(identity)
        rungs.append(rung)
    return Resolution(identities, rungs, keys, changes)


def in_aggregate_window(end: datetime, ts: datetime) -> bool:
    return end - timedelta(days=AGGREGATE_DAYS) <= ts < end


def is_aggregated_type(kind: str | None) -> bool:
    return kind in AGGREGATED_EVENT_TYPES


def window_start_day(end: datetime) -> int:
    """The first day any event_aggregates row of this as-of instant can hold."""
    return day_number(end - timedelta(days=AGGREGATE_DAYS))


def birthday_today(dob: str | date | None, on: date) -> bool:
    """True when an age may have changed on ``on``: ``dob``'s month and day, and for 29 February
    both 28 February and 1 March (the Spark rule and the SQL compiler count it differently)."""
    if dob is None:
        return False
    try:
        born = dob if isinstance(dob, date) else date.fromisoformat(str(dob)[:10])
    except ValueError:
        return False
    if (born.month, born.day) == (on.month, on.day):
        return True
    return (born.month, born.day) == (2, 29) and (on.month, on.day) in ((2, 28), (3, 1))
