"""E-mail addresses: one canonical spelling per mailbox, plus a looser key for matching.

Syntax checking is delegated to ``email-validator`` (offline: no DNS look-ups, which would make
the Spark job slow and non-deterministic). The match key exists because Gmail ignores dots and
``+tags`` in the local part, so 'J.Smith+shop@gmail.com' and 'jsmith@gmail.com' reach the same
person; other providers make no such promise, so their addresses are compared as written.
"""

from __future__ import annotations

from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from idr_pipeline.standardize.base import (
    EMPTY,
    INVALID_SYNTAX,
    PLACEHOLDER,
    Normalized,
    is_placeholder,
)

GMAIL_DOMAINS: frozenset[str] = frozenset({"gmail.com", "googlemail.com"})
_MAILTO = "mailto:"


def normalize_email(value: str | None) -> Normalized:
    """Trimmed, lower-cased, syntax-checked address; invalid ones come back as a reason."""
    if value is None:
        return EMPTY
    return _normalize_email(value)


@lru_cache(maxsize=65536)
def _normalize_email(value: str) -> Normalized:
    text = value.strip()
    if text.lower().startswith(_MAILTO):
        text = text[len(_MAILTO) :].strip()
    if not text:
        return EMPTY
    if is_placeholder(text):
        return Normalized(None, PLACEHOLDER)
    try:
        result = validate_email(text.lower(), check_deliverability=False)
    except EmailNotValidError:
        return Normalized(None, INVALID_SYNTAX)
    # email-validator NFC-normalises the local part and IDNA-decodes the domain; lower-case the
    # result again so the output is a fixed point of this function.
    return Normalized(result.normalized.lower(), None)


def email_match_key(email: str | None) -> str | None:
    """Key under which two addresses count as the same mailbox (Gmail dot/+tag folding)."""
    if email is None:
        return None
    return _email_match_key(email)


@lru_cache(maxsize=65536)
def _email_match_key(email: str) -> str | None:
    normalized = normalize_email(email).value
    if normalized is None:
        return None
    local, _, domain = normalized.rpartition("@")
    if domain in GMAIL_DOMAINS:
        base = local.split("+", 1)[0].replace(".", "")
        if base:
            return f"{base}@gmail.com"
    return normalized
