"""Opaque cursors for keyset pagination.

A cursor is the last id of the previous page, base64-wrapped so clients treat it as a token
rather than building their own (and so its format can change without breaking them).
"""

from __future__ import annotations

import base64
import binascii
import json

from fastapi import HTTPException

MAX_CURSOR_ID = 256


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode("utf-8")).decode("ascii")


def decode_cursor(cursor: str | None) -> str | None:
    """The id to continue after; 422 for anything this API did not hand out."""
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        after = data["after"]
        if not isinstance(after, str) or len(after) > MAX_CURSOR_ID:
            raise ValueError
        return after
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        raise HTTPException(422, "invalid cursor") from None


def next_cursor(ids: list[str], limit: int) -> str | None:
    """A cursor only when the page is full: a short page is the last one."""
    return encode_cursor(ids[-1]) if ids and len(ids) >= limit else None
