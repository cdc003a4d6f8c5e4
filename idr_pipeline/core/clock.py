"""The one clock of the product: timezone-aware UTC, and its text form for stored timestamps."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_timestamp() -> str:
    """ISO 8601 with microseconds and ``Z``: the spelling of every ``created_at`` and
    ``updated_at`` the identity graph writes, so batch and stream timestamps order together
    as text."""
    return utc_now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def naive_utc_now() -> datetime:
    """UTC without its zone, as the store's DATETIME columns hold it on every backend."""
    return utc_now().replace(tzinfo=None)
